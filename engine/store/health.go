package store

import (
	"context"
	"fmt"
	"time"

	"github.com/uptrace/bun"
)

// RecordHealth records health checks (one per datasource) in one
// transaction: for each check whose datasource still exists, next gets
// that datasource's stored status and failure count (the rows are locked
// on PostgreSQL) and returns the new ones, which are written with the
// check's time; then the checks are inserted. A check whose datasource
// was deleted meanwhile is dropped and next is not called for it.
func (s *Store) RecordHealth(ctx context.Context, checks []*HealthCheck, next func(i int, cur *Datasource) (DatasourceStatus, int)) error {
	ids := make([]string, len(checks))
	for i, hc := range checks {
		ids[i] = hc.DatasourceID
	}
	pg := s.postgres()
	return s.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		var cur []Datasource
		q := tx.NewSelect().Model(&cur).Column("id", "status", "consecutive_failures").Where("id IN (?)", bun.In(ids))
		if pg {
			q = q.For("UPDATE")
		}
		if err := q.Scan(ctx); err != nil {
			return fmt.Errorf("read datasource status: %w", dbError(err))
		}
		byID := make(map[string]*Datasource, len(cur))
		for i := range cur {
			byID[cur[i].ID] = &cur[i]
		}
		hcs := make([]*HealthCheck, 0, len(checks))
		updated := now()
		for i, hc := range checks {
			c, ok := byID[hc.DatasourceID]
			if !ok {
				continue // deleted meanwhile
			}
			status, failures := next(i, c)
			_, err := tx.NewUpdate().Model((*Datasource)(nil)).
				Set("? = ?", bun.Ident("status"), status).
				Set("? = ?", bun.Ident("consecutive_failures"), failures).
				Set("? = ?", bun.Ident("last_health_check_at"), hc.CheckedAt).
				Set("? = ?", bun.Ident("updated_at"), updated).
				Where("? = ?", bun.Ident("id"), hc.DatasourceID).Exec(ctx)
			if err != nil {
				return fmt.Errorf("update datasource %s status: %w", hc.DatasourceID, dbError(err))
			}
			hcs = append(hcs, hc)
		}
		if len(hcs) == 0 {
			return nil
		}
		for _, hc := range hcs {
			stamp(tx, hc, true)
		}
		if _, err := tx.NewInsert().Model(&hcs).Exec(ctx); err != nil {
			return fmt.Errorf("create health checks: %w", dbError(err))
		}
		return nil
	})
}

// DatasourcesToCheck returns the enabled datasources, least recently
// checked (never checked) first.
func (s *Store) DatasourcesToCheck(ctx context.Context) ([]Datasource, error) {
	return listRows[Datasource](ctx, s.db.NewSelect().
		Where("? = ?", bun.Ident("enabled"), true).
		OrderExpr("? ASC NULLS FIRST, ? ASC", bun.Ident("last_health_check_at"), bun.Ident("name")))
}

// PruneHealthChecks deletes the health checks older than before and
// returns how many.
func (s *Store) PruneHealthChecks(ctx context.Context, before time.Time) (int64, error) {
	res, err := s.db.NewDelete().Model((*HealthCheck)(nil)).
		Where("? < ?", bun.Ident("checked_at"), before.UTC().Truncate(time.Microsecond)).Exec(ctx)
	if err != nil {
		return 0, dbError(err)
	}
	n, _ := res.RowsAffected()
	return n, nil
}
