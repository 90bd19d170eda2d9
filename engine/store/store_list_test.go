package store

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/uptrace/bun"
)

func TestFindDatasources(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, s *Store) {
		ctx := t.Context()
		for _, d := range []struct {
			name, typ string
			status    DatasourceStatus
		}{
			{"erp", "postgres", DatasourceHealthy},
			{"crm", "mysql", DatasourceCritical},
			{"wiki", "postgres", DatasourceCritical},
			{"auth", "postgres", DatasourceHealthy},
			{"blog", "sqlite", ""},
		} {
			mustNoErr(t, "CreateDatasource", s.CreateDatasource(ctx, &Datasource{Name: d.name, Type: d.typ, Status: d.status}))
		}
		for _, tc := range []struct {
			name string
			f    DatasourceFilter
			want []string
		}{
			{"all", DatasourceFilter{}, []string{"auth", "blog", "crm", "erp", "wiki"}},
			{"type", DatasourceFilter{Type: "postgres"}, []string{"auth", "erp", "wiki"}},
			{"status", DatasourceFilter{Status: DatasourceCritical}, []string{"crm", "wiki"}},
			{"type and status", DatasourceFilter{Type: "postgres", Status: DatasourceCritical}, []string{"wiki"}},
			{"unknown by default", DatasourceFilter{Status: DatasourceUnknown}, []string{"blog"}},
			{"page", DatasourceFilter{Limit: 2, Offset: 1}, []string{"blog", "crm"}},
			{"filtered page", DatasourceFilter{Type: "postgres", Limit: 1, Offset: 1}, []string{"erp"}},
			{"past the end", DatasourceFilter{Offset: 5}, nil},
			{"no match", DatasourceFilter{Type: "files"}, nil},
		} {
			got, err := s.FindDatasources(ctx, tc.f)
			mustNoErr(t, "FindDatasources "+tc.name, err)
			if got == nil {
				t.Errorf("FindDatasources(%s) = nil, want an empty slice", tc.name)
			}
			if names := namesOf(got, func(d Datasource) string { return d.Name }); !slices.Equal(names, tc.want) {
				t.Errorf("FindDatasources(%s) = %v, want %v", tc.name, names, tc.want)
			}
		}
	})
}

func TestFindBackupJobs(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, s *Store) {
		ctx := t.Context()
		ds1, ds2 := &Datasource{Name: "one", Type: "postgres"}, &Datasource{Name: "two", Type: "mysql"}
		mustNoErr(t, "CreateDatasource", s.CreateDatasource(ctx, ds1))
		mustNoErr(t, "CreateDatasource", s.CreateDatasource(ctx, ds2))
		for _, j := range []struct {
			name string
			ds   *Datasource
		}{
			{"nightly", ds1}, {SyncBackupJobName("0001"), ds1}, {"hourly", ds2}, {"a sync: not internal", ds2}, {"weekly", ds1},
		} {
			mustNoErr(t, "CreateBackupJob", s.CreateBackupJob(ctx, &BackupJob{Name: j.name, DatasourceID: j.ds.ID}))
		}
		for _, tc := range []struct {
			name string
			f    BackupJobFilter
			want []string
		}{
			{"all", BackupJobFilter{}, []string{"a sync: not internal", "hourly", "nightly", SyncBackupJobName("0001"), "weekly"}},
			{"without sync jobs", BackupJobFilter{ExcludeSyncJobs: true}, []string{"a sync: not internal", "hourly", "nightly", "weekly"}},
			{"datasource", BackupJobFilter{DatasourceID: ds1.ID, ExcludeSyncJobs: true}, []string{"nightly", "weekly"}},
			{"page", BackupJobFilter{ExcludeSyncJobs: true, Limit: 2, Offset: 2}, []string{"nightly", "weekly"}},
			{"past the end", BackupJobFilter{Offset: 9}, nil},
		} {
			got, err := s.FindBackupJobs(ctx, tc.f)
			mustNoErr(t, "FindBackupJobs "+tc.name, err)
			if names := namesOf(got, func(j BackupJob) string { return j.Name }); !slices.Equal(names, tc.want) {
				t.Errorf("FindBackupJobs(%s) = %v, want %v", tc.name, names, tc.want)
			}
		}
	})
}

// TestListExecutionRecords: the records are the executions ListExecutions
// returns, in the same order, with the stored metadata left as JSON.
func TestListExecutionRecords(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, s *Store) {
		ctx := t.Context()
		ds := &Datasource{Name: "one", Type: "postgres"}
		mustNoErr(t, "CreateDatasource", s.CreateDatasource(ctx, ds))
		job := &BackupJob{Name: "nightly", DatasourceID: ds.ID}
		mustNoErr(t, "CreateBackupJob", s.CreateBackupJob(ctx, job))
		for i, md := range []map[string]any{nil, {"database_version": "15.4", "table_rows": map[string]any{"public.a": 3.0}}} {
			x := &Execution{JobID: job.ID, DatasourceID: ds.ID, Operation: OperationBackup, Status: ExecutionCompleted,
				Metadata: md, CreatedAt: time.Now().Add(time.Duration(i) * time.Second)}
			mustNoErr(t, "CreateExecution", s.CreateExecution(ctx, x))
		}
		f := ExecutionFilter{JobID: job.ID, Status: ExecutionCompleted}
		xs, err := s.ListExecutions(ctx, f)
		mustNoErr(t, "ListExecutions", err)
		rs, err := s.ListExecutionRecords(ctx, f)
		mustNoErr(t, "ListExecutionRecords", err)
		if len(rs) != len(xs) || len(xs) != 2 {
			t.Fatalf("%d records, %d executions, want 2", len(rs), len(xs))
		}
		for i := range xs {
			r := rs[i]
			if r.ID != xs[i].ID || r.Status != xs[i].Status || r.Metadata != nil {
				t.Errorf("record %d: %+v, want %+v without decoded metadata", i, r.Execution, xs[i])
			}
			var md map[string]any
			if len(r.RawMetadata) > 0 {
				mustNoErr(t, "decode raw metadata", json.Unmarshal(r.RawMetadata, &md))
			}
			if len(md) != len(xs[i].Metadata) || fmt.Sprint(md) != fmt.Sprint(xs[i].Metadata) {
				t.Errorf("record %d metadata %s, want %v", i, r.RawMetadata, xs[i].Metadata)
			}
		}
	})
}

// TestCompletedBackupsByDatasource: only datasources with completed
// backups, by name, with their count and newest completed backup.
func TestCompletedBackupsByDatasource(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, s *Store) {
		ctx := t.Context()
		base := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
		newest := map[string]string{}
		for _, ds := range []struct {
			name     string
			statuses []ExecutionStatus
		}{
			{"b-two-completed", []ExecutionStatus{ExecutionCompleted, ExecutionFailed, ExecutionCompleted, ExecutionFailed}},
			{"a-one-completed", []ExecutionStatus{ExecutionCompleted}},
			{"c-only-failed", []ExecutionStatus{ExecutionFailed, ExecutionCancelled}},
			{"d-none", nil},
		} {
			d := &Datasource{Name: ds.name, Type: "sqlite"}
			mustNoErr(t, "CreateDatasource", s.CreateDatasource(ctx, d))
			for i, st := range ds.statuses {
				x := &Execution{DatasourceID: d.ID, Operation: OperationBackup, Status: st, CreatedAt: base.Add(time.Duration(i) * time.Minute)}
				mustNoErr(t, "CreateExecution", s.CreateExecution(ctx, x))
				if st == ExecutionCompleted {
					newest[ds.name] = x.ID
				}
			}
			// A completed restore is not a backup.
			mustNoErr(t, "CreateExecution", s.CreateExecution(ctx, &Execution{DatasourceID: d.ID, Operation: OperationRestore,
				Status: ExecutionCompleted, CreatedAt: base.Add(time.Hour)}))
		}
		got, err := s.CompletedBackupsByDatasource(ctx)
		mustNoErr(t, "CompletedBackupsByDatasource", err)
		if len(got) != 2 || got[0].Name != "a-one-completed" || got[1].Name != "b-two-completed" {
			t.Fatalf("got %+v, want a-one-completed and b-two-completed", got)
		}
		for i, want := range []int{1, 2} {
			if g := got[i]; g.Count != want || g.LastID != newest[g.Name] || g.Type != "sqlite" || g.LastAt.IsZero() {
				t.Errorf("%s: %+v, want %d completed, newest %s", g.Name, g, want, newest[g.Name])
			}
		}
	})
}

func namesOf[T any](rows []T, name func(T) string) []string {
	var out []string
	for _, r := range rows {
		out = append(out, name(r))
	}
	return out
}

// TestListQueryPlans checks on SQLite that the API's list queries read one
// page through an index, in index order: no full scan, no sort of every
// row (see migrations_indexes.go). It explains the SQL the Store runs, as
// captured by a query hook.
func TestListQueryPlans(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s := openTestStore(t, sqliteTestURL(t))
	ds := &Datasource{Name: "one", Type: "postgres"}
	mustNoErr(t, "CreateDatasource", s.CreateDatasource(ctx, ds))
	job := &BackupJob{Name: "nightly", DatasourceID: ds.ID}
	mustNoErr(t, "CreateBackupJob", s.CreateBackupJob(ctx, job))
	// The old index is gone: the new one has its columns first.
	var n int
	mustNoErr(t, "count indexes", s.db.NewRaw("SELECT count(*) FROM sqlite_master WHERE type = 'index' AND name = ?",
		"backup_executions_job_id_created_at_idx").Scan(ctx, &n))
	if n != 0 {
		t.Errorf("index backup_executions_job_id_created_at_idx still exists")
	}

	hook := &lastQuery{}
	s.read.AddQueryHook(hook) // the pool the List and Find methods use
	for _, tc := range []struct {
		name  string
		run   func() error
		index string
	}{
		{"datasources", func() error { _, err := s.FindDatasources(ctx, DatasourceFilter{Limit: 50}); return err },
			"sqlite_autoindex_datasources_"},
		{"datasources by type", func() error {
			_, err := s.FindDatasources(ctx, DatasourceFilter{Type: "postgres", Limit: 50})
			return err
		}, "sqlite_autoindex_datasources_"},
		{"backup jobs", func() error {
			_, err := s.FindBackupJobs(ctx, BackupJobFilter{ExcludeSyncJobs: true, Limit: 50})
			return err
		}, "backup_jobs_name_id_idx"},
		{"job executions", func() error {
			_, err := s.ListExecutions(ctx, ExecutionFilter{JobID: job.ID, Limit: 50})
			return err
		}, "backup_executions_job_id_created_at_id_idx"},
		{"job executions by status", func() error {
			_, err := s.ListExecutions(ctx, ExecutionFilter{JobID: job.ID, Status: ExecutionCompleted, Limit: 50})
			return err
		}, "backup_executions_job_id_status_created_at_id_idx"},
	} {
		mustNoErr(t, tc.name, tc.run())
		query := hook.get()
		var plan []string
		rows, err := s.db.QueryContext(ctx, "EXPLAIN QUERY PLAN "+query)
		mustNoErr(t, "explain "+tc.name, err)
		for rows.Next() {
			var id, parent, unused int
			var detail string
			mustNoErr(t, "scan plan", rows.Scan(&id, &parent, &unused, &detail))
			plan = append(plan, detail)
		}
		mustNoErr(t, "plan rows", rows.Err())
		rows.Close()
		text := strings.Join(plan, "; ")
		if !strings.Contains(text, "USING INDEX "+tc.index) && !strings.Contains(text, "USING COVERING INDEX "+tc.index) {
			t.Errorf("%s: plan %q does not use index %s\n(query %s)", tc.name, text, tc.index, query)
		}
		if strings.Contains(text, "TEMP B-TREE") {
			t.Errorf("%s: plan %q sorts the rows instead of reading them in index order\n(query %s)", tc.name, text, query)
		}
	}
}

// lastQuery is a bun query hook that keeps the last query's SQL.
type lastQuery struct {
	mu    sync.Mutex
	query string
}

func (h *lastQuery) BeforeQuery(ctx context.Context, _ *bun.QueryEvent) context.Context { return ctx }

func (h *lastQuery) AfterQuery(_ context.Context, e *bun.QueryEvent) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.query = e.Query
}

func (h *lastQuery) get() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.query
}

// TestReadsDoNotWaitForTheWriter checks on SQLite that the Store's reads go
// through their own pool: they answer while a write transaction holds the
// single writer connection (they used to wait behind it), and the pool
// refuses writes.
func TestReadsDoNotWaitForTheWriter(t *testing.T) {
	t.Parallel()
	s := openTestStore(t, sqliteTestURL(t))
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	mustNoErr(t, "CreateDatasource", s.CreateDatasource(ctx, &Datasource{Name: "one", Type: "sqlite"}))
	tx, err := s.db.BeginTx(ctx, nil)
	mustNoErr(t, "begin", err)
	defer tx.Rollback()
	_, err = tx.NewInsert().Model(&Datasource{ID: "uncommitted", Name: "two", Type: "sqlite", Status: DatasourceUnknown,
		CreatedAt: now(), UpdatedAt: now()}).Exec(ctx)
	mustNoErr(t, "insert in the transaction", err)

	got, err := s.FindDatasources(ctx, DatasourceFilter{})
	mustNoErr(t, "FindDatasources while a write transaction is open", err)
	if names := namesOf(got, func(d Datasource) string { return d.Name }); !slices.Equal(names, []string{"one"}) {
		t.Errorf("FindDatasources = %v, want [one] (committed rows only)", names)
	}
	if _, err := s.read.NewInsert().Model(&Datasource{ID: "x", Name: "x", Type: "sqlite", Status: DatasourceUnknown,
		CreatedAt: now(), UpdatedAt: now()}).Exec(ctx); err == nil {
		t.Errorf("insert through the read pool succeeded, want a query_only error")
	}
}
