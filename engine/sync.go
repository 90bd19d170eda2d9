package engine

import (
	"context"
	"fmt"
)

// executeSync runs a queued database sync execution.
func (e *Engine) executeSync(ctx context.Context, exec *Execution) error {
	return fmt.Errorf("%w: queued sync executions are not implemented yet", ErrInvalid)
}
