package proc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"syscall"
)

// HoldBack is how many trailing bytes of its input RunFeed keeps from the
// tool until the input has reached io.EOF.
const HoldBack = 64 << 10

// RunFeed runs c with r as its standard input (c.Stdin is ignored), for
// restore tools that commit when their input ends (pg_restore
// --single-transaction, mariadb with a trailing COMMIT).
//
// The last HoldBack bytes of r reach the tool only after r returned
// io.EOF, so a reader that checks its data at the end (checksums) fails
// before the tool has seen the end of its input; the tool is then stopped
// and does not commit. When the tool succeeds, RunFeed reads what it left
// of r to io.EOF and returns r's error if there is one. A read error of r
// is returned in preference to the tool's complaint about its cut input;
// errors.Is sees both.
//
// RunFeed returns only after it has stopped reading r.
func (c Cmd) RunFeed(ctx context.Context, r io.Reader) error {
	pr, pw, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("%s: stdin pipe: %w", baseName(c.Path), err)
	}
	src := &holdBack{r: r, keep: HoldBack}
	if rc, err := pw.SyscallConn(); err == nil {
		rc.Control(func(fd uintptr) { setPipeSize(fd, stdoutPipeSize) })
	}
	copied := make(chan error, 1)
	go func() {
		// Large writes into a large pipe: the tool reads while we
		// decompress the next piece, instead of both taking turns at
		// 32 KiB. (struct{io.Writer} hides ReadFrom, which would ignore
		// the buffer.)
		bp := stdoutBufs.Get().(*[]byte)
		_, err := io.CopyBuffer(struct{ io.Writer }{pw}, src, *bp)
		stdoutBufs.Put(bp)
		pw.Close()
		copied <- err
	}()
	c.Stdin = pr // an *os.File: the child reads it directly
	runErr := c.Run(ctx)
	pr.Close() // a copy still writing gets EPIPE and ends
	copyErr := <-copied
	readErr := src.err // set only by r, not by writes to the pipe
	if runErr != nil {
		if readErr != nil && ctx.Err() == nil {
			return fmt.Errorf("read %s input: %w (%w)", baseName(c.Path), readErr, runErr)
		}
		return runErr
	}
	if copyErr != nil && readErr == nil && !errors.Is(copyErr, syscall.EPIPE) {
		return fmt.Errorf("feed %s: %w", baseName(c.Path), copyErr)
	}
	if readErr != nil {
		return fmt.Errorf("read %s input: %w", baseName(c.Path), readErr)
	}
	// The tool stopped reading before the end: read the rest so the
	// input's final checks run.
	if n, err := io.Copy(io.Discard, src); err != nil {
		return fmt.Errorf("read %s input after it finished: %w", baseName(c.Path), err)
	} else if n > 0 && c.Logf != nil {
		c.Logf("%s: %d trailing input bytes left unread by the tool", baseName(c.Path), n)
	}
	return nil
}

// holdBack passes r on but keeps its last keep bytes until r reached EOF.
// err records r's first error other than io.EOF.
type holdBack struct {
	r    io.Reader
	keep int
	buf  []byte
	eof  bool
	err  error
}

func (h *holdBack) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	for {
		if h.err != nil {
			return 0, h.err
		}
		if avail := len(h.buf) - h.keep; h.eof || avail > 0 {
			if h.eof {
				avail = len(h.buf)
			}
			if avail == 0 {
				return 0, io.EOF
			}
			n := copy(p, h.buf[:avail])
			h.buf = h.buf[:copy(h.buf, h.buf[n:])]
			return n, nil
		}
		if cap(h.buf) < h.keep+32<<10 {
			nb := make([]byte, len(h.buf), h.keep+64<<10)
			copy(nb, h.buf)
			h.buf = nb
		}
		n, err := h.r.Read(h.buf[len(h.buf):cap(h.buf)])
		h.buf = h.buf[:len(h.buf)+n]
		if err == io.EOF {
			h.eof = true
		} else if err != nil {
			h.err = err
		}
	}
}
