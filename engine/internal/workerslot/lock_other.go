//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package workerslot

import (
	"errors"
	"os"
)

// lockFile is not available here: workers run without a stable identity,
// and the tasks of a crashed process wait for their leases to expire.
func lockFile(*os.File) error { return errors.ErrUnsupported }
