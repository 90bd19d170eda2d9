package engine

import (
	"context"
	"fmt"
)

// executeRestore runs a queued restore or verification execution.
func (e *Engine) executeRestore(ctx context.Context, exec *Execution) error {
	return fmt.Errorf("%w: queued %s executions are not implemented yet", ErrInvalid, exec.Operation)
}
