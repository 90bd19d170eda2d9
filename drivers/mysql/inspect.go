package mysql

import (
	"context"
	"fmt"

	"github.com/dataguardian/dataguardian/drivers"
)

// Empty reports whether target.Database does not exist or holds no table,
// view, routine or event. It only reads information_schema, which shows
// an account only the objects it has privileges on: inspect with the
// account that restores. A server that does not answer is an error.
func (d *Driver) Empty(ctx context.Context, target drivers.Source) (empty bool, err error) {
	c, err := checkSource(target, true)
	if err != nil {
		return false, fmt.Errorf("inspect mysql: %w", err)
	}
	defer func() { err = redacted(err, c.password) }()
	db, err := d.open(c, "")
	if err != nil {
		return false, fmt.Errorf("inspect mysql %s: %w", c, err)
	}
	defer db.Close()
	var n int64
	if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?", c.database).Scan(&n); err != nil {
		return false, ctxErr(ctx, fmt.Errorf("inspect mysql %s: look up database: %w", c, err))
	}
	if n == 0 {
		return true, nil
	}
	err = db.QueryRowContext(ctx, `SELECT
	  (SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = ?) +
	  (SELECT COUNT(*) FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = ?) +
	  (SELECT COUNT(*) FROM information_schema.EVENTS WHERE EVENT_SCHEMA = ?)`,
		c.database, c.database, c.database).Scan(&n)
	if err != nil {
		return false, ctxErr(ctx, fmt.Errorf("inspect mysql %s: list objects: %w", c, err))
	}
	return n == 0, nil
}
