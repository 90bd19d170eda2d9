//go:build !linux

package proc

// setPipeSize does nothing where the pipe size cannot be set.
func setPipeSize(uintptr, int) {}
