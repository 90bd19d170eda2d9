package local

import (
	"os"
	"syscall"
)

// syncFileRangeWrite is SYNC_FILE_RANGE_WRITE of <linux/fs.h>: start the
// writeback of the dirty pages in the range, without waiting for it.
const syncFileRangeWrite = 2

// startWriteback starts writing bytes [off, off+n) of f to disk. It is
// advice: an error changes nothing, the fsync after the last write decides.
func startWriteback(f *os.File, off, n int64) {
	rc, err := f.SyscallConn()
	if err != nil {
		return
	}
	_ = rc.Control(func(fd uintptr) { _ = syscall.SyncFileRange(int(fd), off, n, syncFileRangeWrite) })
}
