package engine

import (
	"encoding/base64"
	"errors"
	"sync/atomic"
	"testing"
	"time"
)

// TestDownloadTicket: a ticket opens the backup it was made for, names
// its holder, and nothing else: not another backup, not once expired, not
// changed, not under another secret key; a backup that is not completed
// gets none.
func TestDownloadTicket(t *testing.T) {
	var now atomic.Int64
	now.Store(time.Date(2026, 12, 5, 4, 0, 0, 0, time.UTC).Unix())
	e := newSQLiteEngine(t, Config{Now: func() time.Time { return time.Unix(now.Load(), 0) }})
	ctx := t.Context()
	f := newFixture(t, e, BackupJob{})
	done, err := e.RunBackup(ctx, f.job.ID)
	mustNoErr(t, "backup", err)
	queued := &Execution{JobID: f.job.ID, DatasourceID: f.ds.ID, Operation: OperationBackup}
	mustNoErr(t, "create execution", e.store.CreateExecution(ctx, queued))

	tk, expires, err := e.DownloadTicket(ctx, done.ID, "token-1", time.Minute)
	mustNoErr(t, "ticket", err)
	if want := time.Unix(now.Load(), 0).Add(time.Minute); !expires.Equal(want) {
		t.Errorf("expires %v, want %v", expires, want)
	}
	if holder, err := e.CheckDownloadTicket(tk, done.ID); err != nil || holder != "token-1" {
		t.Fatalf("check: %q, %v", holder, err)
	}
	changed := []byte(tk)
	changed[len(changed)-5] ^= 2
	other := newSQLiteEngine(t, Config{})
	for what, check := range map[string]func() error{
		"another backup": func() error { _, err := e.CheckDownloadTicket(tk, queued.ID); return err },
		"changed":        func() error { _, err := e.CheckDownloadTicket(string(changed), done.ID); return err },
		"another key":    func() error { _, err := other.CheckDownloadTicket(tk, done.ID); return err },
		"not base64":     func() error { _, err := e.CheckDownloadTicket("%%%", done.ID); return err },
		"no purpose": func() error {
			s, _ := e.sealer.Seal([]byte(`{"x":"` + done.ID + `","e":9999999999}`))
			_, err := e.CheckDownloadTicket(base64.RawURLEncoding.EncodeToString(s), done.ID)
			return err
		},
	} {
		if err := check(); !errors.Is(err, ErrInvalidTicket) {
			t.Errorf("%s: %v, want ErrInvalidTicket", what, err)
		}
	}
	now.Add(60)
	if _, err := e.CheckDownloadTicket(tk, done.ID); !errors.Is(err, ErrInvalidTicket) {
		t.Errorf("expired: %v", err)
	}
	if _, _, err := e.DownloadTicket(ctx, queued.ID, "", time.Minute); !errors.Is(err, ErrNotRestorable) {
		t.Errorf("a queued backup's ticket: %v", err)
	}
	if _, _, err := e.DownloadTicket(ctx, "00000000-0000-4000-8000-000000000000", "", time.Minute); !errors.Is(err, ErrNotFound) {
		t.Errorf("an unknown execution's ticket: %v", err)
	}
}
