package mysql

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"strconv"
	"syscall"
	"time"

	"github.com/dataguardian/dataguardian/drivers"
)

// Ping connects with go-sql-driver/mysql and runs SELECT 1, timing it.
// On success the Health carries the server version and, in Metadata,
// "uptime_seconds" and "active_connections" (status Uptime and
// Threads_connected) and, when src.Database is set, "size_bytes" (data and
// index length from information_schema). Failures are classified:
// HealthAuthFailed for access denied (errors 1044, 1045, 1698),
// HealthUnreachable for a refused connection or an unknown or unroutable
// host, HealthTimeout when ctx (10 s when it has no deadline) ends first,
// HealthError for anything else. ErrorText never holds the password.
func (d *Driver) Ping(ctx context.Context, src drivers.Source) drivers.Health {
	h := drivers.Health{Status: drivers.HealthError}
	c, err := checkSource(src, false)
	if err != nil {
		h.ErrorText = redacted(fmt.Errorf("ping mysql: %w", err), src.Password).Error()
		return h
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, pingTimeout)
		defer cancel()
	}
	db, err := d.open(c, c.database)
	if err != nil {
		h.ErrorText = redacted(fmt.Errorf("ping mysql %s: %w", c, err), c.password).Error()
		return h
	}
	defer db.Close()
	start := time.Now()
	var one int
	err = db.QueryRowContext(ctx, "SELECT 1").Scan(&one)
	h.Latency = time.Since(start)
	if err != nil {
		h.Status = classify(ctx, err)
		h.ErrorText = redacted(fmt.Errorf("ping mysql %s: %s", c, describeErr(err)), c.password).Error()
		return h
	}
	meta, ver, err := serverInfo(ctx, db, c.database)
	if err != nil {
		h.Status = classify(ctx, err)
		h.ErrorText = redacted(fmt.Errorf("ping mysql %s: %s", c, describeErr(err)), c.password).Error()
		return h
	}
	h.Status, h.Version, h.Metadata = drivers.HealthOK, ver, meta
	return h
}

// serverInfo reads the version, uptime, connections and database size.
func serverInfo(ctx context.Context, db *sql.DB, database string) (map[string]any, string, error) {
	ver, raw, err := version(ctx, db)
	if err != nil {
		return nil, "", err
	}
	meta := map[string]any{"server_version": raw}
	rows, err := db.QueryContext(ctx, "SHOW GLOBAL STATUS WHERE Variable_name IN ('Uptime', 'Threads_connected')")
	if err != nil {
		return nil, "", err
	}
	defer rows.Close()
	for rows.Next() {
		var k, v string
		if err := rows.Scan(&k, &v); err != nil {
			return nil, "", err
		}
		n, _ := strconv.ParseInt(v, 10, 64)
		switch k {
		case "Uptime":
			meta["uptime_seconds"] = n
		case "Threads_connected":
			meta["active_connections"] = n
		}
	}
	if err := rows.Err(); err != nil {
		return nil, "", err
	}
	if database != "" {
		var size sql.NullInt64
		if err := db.QueryRowContext(ctx, "SELECT SUM(DATA_LENGTH + INDEX_LENGTH) FROM information_schema.TABLES WHERE TABLE_SCHEMA = ?", database).Scan(&size); err != nil {
			return nil, "", err
		}
		meta["size_bytes"] = size.Int64
	}
	return meta, ver, nil
}

// classify maps a connection or query error to a Health status.
func classify(ctx context.Context, err error) string {
	var nerr net.Error
	var dns *net.DNSError
	switch {
	case isAuth(err):
		return drivers.HealthAuthFailed
	case errors.Is(err, context.DeadlineExceeded) || ctx.Err() != nil:
		return drivers.HealthTimeout
	case errors.As(err, &dns),
		errors.Is(err, syscall.ECONNREFUSED),
		errors.Is(err, syscall.EHOSTUNREACH),
		errors.Is(err, syscall.ENETUNREACH),
		errors.Is(err, syscall.ECONNRESET) && isDial(err):
		return drivers.HealthUnreachable
	case errors.As(err, &nerr) && nerr.Timeout():
		return drivers.HealthTimeout
	}
	return drivers.HealthError
}

// isDial reports whether err happened while dialling.
func isDial(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}
