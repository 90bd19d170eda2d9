package drivertest

import (
	"context"
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
		s.Host, s.Port = "127.0.0.1", silentServer(t)
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		start := time.Now()
		h := d.Ping(ctx, s)
		if h.Status != drivers.HealthTimeout || time.Since(start) > 3*time.Second {
			t.Fatalf("silent server: %+v after %v, want %s", h, time.Since(start), drivers.HealthTimeout)
		}
	})
}

// silentServer listens on a free loopback port, accepts every connection
// and never answers; it stops with t. It returns the port.
func silentServer(t *testing.T) int {
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
		}
	})
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	return ln.Addr().(*net.TCPAddr).Port
}
