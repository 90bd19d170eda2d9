package proc

import "syscall"

// setPipeSize asks for a pipe buffer of size bytes; a refusal (above
// /proc/sys/fs/pipe-max-size for an unprivileged user) keeps the default.
func setPipeSize(fd uintptr, size int) {
	_, _, _ = syscall.Syscall(syscall.SYS_FCNTL, fd, syscall.F_SETPIPE_SZ, uintptr(size))
}
