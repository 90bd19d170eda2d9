package main

import (
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dataguardian/dataguardian/manifest"
)

// progressInterval is how often a progress line is redrawn (4 times a second).
const progressInterval = 250 * time.Millisecond

// progress counts the bytes of one phase (backup, verify, restore) and, on
// a terminal, redraws a status line on stderr: bytes, rate, elapsed. When
// stderr is not a terminal it only counts.
type progress struct {
	label string
	total int64 // expected bytes, 0 when unknown
	n     atomic.Int64
	start time.Time
	out   *redactingWriter // nil: print nothing
	done  chan struct{}
	wg    sync.WaitGroup
	once  sync.Once
}

func (c *cli) startProgress(label string, total int64) *progress {
	p := &progress{label: label, total: total, start: time.Now(), done: make(chan struct{})}
	if !c.tty {
		return p
	}
	p.out = c.stderr
	p.wg.Go(func() {
		t := time.NewTicker(progressInterval)
		defer t.Stop()
		for {
			select {
			case <-p.done:
				return
			case <-t.C:
				p.out.setStatus(p.render(time.Since(p.start)))
			}
		}
	})
	return p
}

// stop ends the redraws and leaves the final figures on their own line.
func (p *progress) stop() {
	p.once.Do(func() {
		close(p.done)
		p.wg.Wait()
		if p.out != nil {
			p.out.line(p.render(time.Since(p.start)))
		}
	})
}

func (p *progress) render(elapsed time.Duration) string {
	n := p.n.Load()
	rate := 0.0
	if s := elapsed.Seconds(); s > 0 {
		rate = float64(n) / s
	}
	done := manifest.FormatBytes(n)
	if p.total > 0 {
		done += " of " + manifest.FormatBytes(p.total)
	}
	return fmt.Sprintf("%s: %s, %s/s, %s", p.label, done, manifest.FormatBytes(int64(rate)), elapsed.Truncate(time.Second))
}

func (p *progress) reader(r io.Reader) io.Reader { return progressReader{r, p} }
func (p *progress) writer(w io.Writer) io.Writer { return progressWriter{w, p} }

type progressReader struct {
	r io.Reader
	p *progress
}

func (r progressReader) Read(b []byte) (int, error) {
	n, err := r.r.Read(b)
	r.p.n.Add(int64(n))
	return n, err
}

type progressWriter struct {
	w io.Writer
	p *progress
}

func (w progressWriter) Write(b []byte) (int, error) {
	n, err := w.w.Write(b)
	w.p.n.Add(int64(n))
	return n, err
}
