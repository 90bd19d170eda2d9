package drivertest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/dataguardian/dataguardian/drivers"
)

// RunPingFailures checks how a network driver's Ping reports a server it
// cannot talk to, from src (a reachable source whose Host and Port it
// replaces): "Unreachable", a closed port, must answer HealthUnreachable
// within 3 s; "Timeout", a server that accepts connections and never
// answers, must answer HealthTimeout soon after the context's 1 s deadline.
func RunPingFailures(t *testing.T, d drivers.Driver, src drivers.Source) {
	t.Run("Unreachable", func(t *testing.T) {
		s := src
		s.Host, s.Port = "127.0.0.1", 1
		start := time.Now()
		h := d.Ping(t.Context(), s)
		if h.Status != drivers.HealthUnreachable || time.Since(start) > 3*time.Second {
			t.Fatalf("closed port: %+v after %v, want %s", h, time.Since(start), drivers.HealthUnreachable)
		}
	})
	t.Run("Timeout", func(t *testing.T) {
		s := src
		s.Host, s.Port = "127.0.0.1", SilentServer(t)
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		start := time.Now()
		h := d.Ping(ctx, s)
		if h.Status != drivers.HealthTimeout || time.Since(start) > 3*time.Second {
			t.Fatalf("silent server: %+v after %v, want %s", h, time.Since(start), drivers.HealthTimeout)
		}
	})
}

// SilentServer listens on a free loopback port, accepts every connection
// and never answers; it stops with t. It returns the port.
func SilentServer(t *testing.T) int {
	t.Helper()
	return silentServerNotify(t, nil, false)
}

// silentServerNotify is SilentServer calling notify (when not nil) after
// each connection it accepts or, with firstByte, once a connection has
// sent it a byte.
func silentServerNotify(t *testing.T, notify func(), firstByte bool) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		var held []net.Conn
		defer func() {
			for _, c := range held {
				c.Close()
			}
		}()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			held = append(held, c) // accepted, never answered
			switch {
			case notify == nil:
			case firstByte:
				wg.Go(func() {
					if _, err := c.Read(make([]byte, 1)); err == nil {
						notify()
					}
				})
			default:
				notify()
			}
		}
	})
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	return ln.Addr().(*net.TCPAddr).Port
}

// hangBound is how long RunConnectTimeouts lets a call run before it
// reports a hang: far more than any connect timeout it sets.
const hangBound = 45 * time.Second

// ConnectHarness tells RunConnectTimeouts how to exercise a network driver.
type ConnectHarness struct {
	// Driver is the driver under test.
	Driver drivers.Driver
	// Source is a reachable source with data; a backup of it is restored.
	// Its Host and Port are replaced by those of a silent server.
	Source drivers.Source
	// Option is the Source option holding the connect timeout in whole
	// seconds ("connect_timeout").
	Option string
	// ClientSpeaksFirst says that the client sends the first bytes of the
	// protocol (PostgreSQL), so that a cancellation can be made to land
	// in the middle of the handshake; else (MySQL) the test cancels when
	// the server accepts.
	ClientSpeaksFirst bool
}

// RunConnectTimeouts checks how a network driver connects to a server that
// accepts connections and never answers.
//
// With a connect timeout of 1 s and a context of a minute, Ping must
// answer HealthTimeout, and Dump and Restore must fail with an error
// matching context.DeadlineExceeded (not context.Canceled), all before the
// context ends: the connect timeout bounds the whole handshake. With a
// connect timeout of 10 minutes, cancelling the context in the middle of
// the handshake must end Ping, Dump and Restore at once (an error matching
// context.Canceled), well within 45 s.
func RunConnectTimeouts(t *testing.T, h ConnectHarness) {
	t.Helper()
	d, src, opt := h.Driver, h.Source, h.Option
	backup, _ := Dump(t, d, src)
	silent := func(t *testing.T, seconds string, notify func()) drivers.Source {
		s := src
		s.Host, s.Port = "127.0.0.1", silentServerNotify(t, notify, h.ClientSpeaksFirst)
		s.Options = maps.Clone(src.Options)
		if s.Options == nil {
			s.Options = map[string]string{}
		}
		s.Options[opt] = seconds
		return s
	}
	ops := []struct {
		name string
		run  func(ctx context.Context, s drivers.Source) error
	}{
		{"Ping", func(ctx context.Context, s drivers.Source) error {
			h := d.Ping(ctx, s)
			switch h.Status {
			case drivers.HealthOK:
				return nil
			case drivers.HealthTimeout:
				if ctx.Err() != nil {
					return fmt.Errorf("%w: %s", ctx.Err(), h.ErrorText)
				}
				return fmt.Errorf("%w: %s", context.DeadlineExceeded, h.ErrorText)
			}
			return fmt.Errorf("status %s: %s", h.Status, h.ErrorText)
		}},
		{"Dump", func(ctx context.Context, s drivers.Source) error {
			_, err := d.Dump(ctx, s, io.Discard, nil)
			return err
		}},
		{"Restore", func(ctx context.Context, s drivers.Source) error {
			return d.Restore(ctx, s, bytes.NewReader(backup), nil)
		}},
	}
	// within runs op and fails t unless it returns within hangBound.
	within := func(t *testing.T, ctx context.Context, run func(context.Context, drivers.Source) error, s drivers.Source) error {
		t.Helper()
		done := make(chan error, 1)
		go func() { done <- run(ctx, s) }()
		select {
		case err := <-done:
			return err
		case <-time.After(hangBound):
			t.Fatalf("still connecting to a silent server after %v", hangBound)
			return nil
		}
	}
	for _, op := range ops {
		t.Run(op.name+"Timeout", func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
			defer cancel()
			err := within(t, ctx, op.run, silent(t, "1", nil))
			if err == nil || !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) || ctx.Err() != nil {
				t.Fatalf("silent server, connect timeout 1 s: %v (context: %v); want a timeout before the context's deadline", err, ctx.Err())
			}
			t.Logf("error: %v", err)
		})
		t.Run(op.name+"Cancel", func(t *testing.T) {
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			err := within(t, ctx, op.run, silent(t, "600", cancel))
			if op.name == "Ping" {
				if err == nil {
					t.Fatal("Ping of a silent server succeeded")
				}
				return // a Health has no error to match
			}
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("silent server, cancelled: %v; want an error matching context.Canceled", err)
			}
		})
	}
}
