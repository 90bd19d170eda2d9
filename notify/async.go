package notify

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// Defaults of Async.
const (
	DefaultDeliveryTimeout = 2 * time.Minute
	DefaultMaxPending      = 64
	DefaultCloseWait       = 5 * time.Second
)

// Async delivers notifications in the background, each on a goroutine of
// its own with its own deadline, so a slow SMTP server or webhook never
// blocks the caller: at most MaxPending deliveries run at once, and a
// notification beyond them is dropped with a warning. Close stops it. The
// zero value is not usable: use NewAsync.
type Async struct {
	log     *slog.Logger
	timeout time.Duration
	wait    time.Duration

	mu     sync.Mutex // guards closed and wg.Add
	closed bool
	wg     sync.WaitGroup
	slots  chan struct{}
	base   context.Context
	cancel context.CancelFunc
}

// AsyncOptions configure an Async; zero values are the defaults.
type AsyncOptions struct {
	Timeout    time.Duration // one delivery; 0 means DefaultDeliveryTimeout
	MaxPending int           // deliveries at once; 0 means DefaultMaxPending
	CloseWait  time.Duration // see Close; 0 means DefaultCloseWait
	Logger     *slog.Logger  // nil means slog.Default()
}

// NewAsync returns an Async configured by opts.
func NewAsync(opts AsyncOptions) *Async {
	a := &Async{log: opts.Logger, timeout: opts.Timeout, wait: opts.CloseWait}
	if a.log == nil {
		a.log = slog.Default()
	}
	if a.timeout <= 0 {
		a.timeout = DefaultDeliveryTimeout
	}
	if a.wait <= 0 {
		a.wait = DefaultCloseWait
	}
	a.slots = make(chan struct{}, cmpOr(opts.MaxPending, DefaultMaxPending))
	a.base, a.cancel = context.WithCancel(context.Background())
	return a
}

func cmpOr(n, def int) int {
	if n > 0 {
		return n
	}
	return def
}

// Deliver sends x to to on a goroutine of its own; failures are logged.
func (a *Async) Deliver(to Notifier, x Notification) {
	a.mu.Lock()
	if a.closed {
		a.mu.Unlock()
		a.log.Warn("notification not delivered: closed", "type", x.Type)
		return
	}
	select {
	case a.slots <- struct{}{}:
	default:
		a.mu.Unlock()
		a.log.Warn("notification not delivered: too many deliveries pending", "type", x.Type, "pending", cap(a.slots))
		return
	}
	a.wg.Add(1)
	a.mu.Unlock()
	go func() {
		defer func() { <-a.slots; a.wg.Done() }()
		ctx, cancel := context.WithTimeout(a.base, a.timeout)
		defer cancel()
		if err := to.Notify(ctx, x); err != nil {
			a.log.Warn("deliver notification", "type", x.Type, "err", err)
		}
	}()
}

// Close stops new deliveries, waits up to CloseWait for pending ones, then
// cancels them and waits up to CloseWait again.
func (a *Async) Close() {
	a.mu.Lock()
	a.closed = true
	a.mu.Unlock()
	done := make(chan struct{})
	go func() { a.wg.Wait(); close(done) }()
	t := time.NewTimer(a.wait)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
		a.cancel()
		t.Reset(a.wait)
		select {
		case <-done:
		case <-t.C:
			a.log.Warn("notification deliveries still running at close")
		}
	}
	a.cancel()
}
