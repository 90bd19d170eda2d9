package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/dataguardian/dataguardian/drivers"
)

// userObjectsQuery tells whether the database holds a table, partitioned
// table, view, materialized view, sequence, foreign table or function of
// its own: outside information_schema and the pg_* schemas.
const userObjectsQuery = `SELECT EXISTS (
  SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
  WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
    AND n.nspname <> 'information_schema' AND n.nspname !~ '^pg_'
) OR EXISTS (
  SELECT 1 FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
  WHERE n.nspname <> 'information_schema' AND n.nspname !~ '^pg_'
)`

// Empty reports whether target.Database does not exist or holds none of
// its own tables, views, sequences, foreign tables or functions (schemas
// other than information_schema and pg_*; objects of extensions count).
// It only reads the catalogs. A role that cannot connect, or a server that
// does not answer, is an error.
func (d *Driver) Empty(ctx context.Context, target drivers.Source) (bool, error) {
	c, err := parseSource(target)
	if err != nil {
		return false, fmt.Errorf("inspect postgres: %w", err)
	}
	s, err := c.connect(ctx, c.database)
	if sqlState(err) == stateInvalidCatalog {
		return true, nil
	}
	var found bool
	if err == nil {
		defer s.close()
		err = s.conn.QueryRowContext(ctx, userObjectsQuery).Scan(&found)
	}
	if err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil && !errors.Is(err, ctxErr) {
			err = fmt.Errorf("%w (%v)", ctxErr, err)
		}
		return false, c.redactErr(fmt.Errorf("inspect postgres %s: %w", c.where(), err))
	}
	return !found, nil
}
