package postgres

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"syscall"
	"time"

	"github.com/dataguardian/dataguardian/drivers"
)

// Ping connects with pgdriver (not the tools) and measures `SELECT 1`. An
// OK Health carries the server version and Metadata "uptime_seconds",
// "active_connections" (client sessions of the whole server) and
// "database_size_bytes", plus "connect_ms", the time to connect and log in.
//
// Failures are classified: "timeout" (ctx's deadline, the connect timeout
// or a network timeout; without a deadline Ping allows 5 s), "auth_failed" (SQLSTATE 28P01,
// 28000 or 42501: wrong password, unknown role, no CONNECT privilege),
// "unreachable" (connection refused, unknown host, no route), "error"
// (anything else, e.g. a database that does not exist). ErrorText never
// contains the password.
func (d *Driver) Ping(ctx context.Context, src drivers.Source) drivers.Health {
	c, err := parseSource(src)
	if err != nil {
		return drivers.Health{Status: drivers.HealthError, ErrorText: err.Error()}
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, pingTimeout)
		defer cancel()
	}
	deadline, _ := ctx.Deadline()
	budget := time.Until(deadline)

	start := time.Now()
	s, err := c.connect(ctx, c.database)
	if err != nil {
		return c.failed(ctx, err, min(budget, c.connectTimeout), "connect")
	}
	defer s.close()
	connected := time.Since(start)

	start = time.Now()
	if _, err := s.conn.ExecContext(ctx, "SELECT 1"); err != nil {
		return c.failed(ctx, err, budget, "SELECT 1")
	}
	latency := max(time.Since(start), time.Microsecond)

	// The server answered SELECT 1: it is up, the details are a bonus.
	h := drivers.Health{Status: drivers.HealthOK, Latency: latency}
	_, version, err := s.serverVersion(ctx)
	if err != nil {
		h.ErrorText = c.redact(err.Error())
		return h
	}
	h.Version = version
	var uptime, conns, size int64
	err = s.conn.QueryRowContext(ctx, `SELECT extract(epoch FROM now() - pg_postmaster_start_time())::bigint,
	  (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'),
	  pg_database_size(current_database())`).Scan(&uptime, &conns, &size)
	if err != nil {
		h.ErrorText = c.redact(fmt.Sprintf("read server details: %v", err))
		return h
	}
	h.Metadata = map[string]any{
		"uptime_seconds":      uptime,
		"active_connections":  conns,
		"database_size_bytes": size,
		"connect_ms":          connected.Milliseconds(),
	}
	return h
}

// failed classifies err of step into a Health.
func (c conf) failed(ctx context.Context, err error, budget time.Duration, step string) drivers.Health {
	status, text := classify(ctx, err)
	switch status {
	case drivers.HealthTimeout:
		text = fmt.Sprintf("connection to %s timed out after %dms (%s)", c.where(), budget.Milliseconds(), step)
	case drivers.HealthAuthFailed:
		text = fmt.Sprintf("authentication as %q on %s failed: %s", c.user, c.where(), text)
	default:
		text = fmt.Sprintf("%s %s: %s", step, c.where(), text)
	}
	return drivers.Health{Status: status, ErrorText: c.redact(text)}
}

// classify maps a connection or query error to a Health status and a short
// description.
func classify(ctx context.Context, err error) (string, string) {
	switch state := sqlState(err); state {
	case "28P01", "28000", "42501":
		return drivers.HealthAuthFailed, err.Error()
	case "":
	default:
		return drivers.HealthError, err.Error()
	}
	var nerr net.Error
	var dnsErr *net.DNSError
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.Is(ctx.Err(), context.DeadlineExceeded),
		errors.Is(err, os.ErrDeadlineExceeded), errors.As(err, &nerr) && nerr.Timeout():
		return drivers.HealthTimeout, err.Error()
	case errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.EHOSTUNREACH),
		errors.Is(err, syscall.ENETUNREACH), errors.Is(err, syscall.ENOENT), errors.As(err, &dnsErr):
		return drivers.HealthUnreachable, err.Error()
	}
	return drivers.HealthError, err.Error()
}
