package engine

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/dataguardian/dataguardian/drivers"
	"github.com/dataguardian/dataguardian/internal/testsvc"
)

// TestHealthAtScale measures health cycles over 1,000 datasources: live
// SQLite files, live PostgreSQL, addresses on 127.0.0.0/8 with nothing
// listening and servers that accept and never answer. One cycle must
// finish within 2 × the per-check timeout, and heap and goroutines must
// stay flat over 100 cycles. It takes about a minute, so it runs only with
// DG_BENCH_HEALTH=1:
//
//	DG_BENCH_HEALTH=1 go test -run TestHealthAtScale -v ./engine/
func TestHealthAtScale(t *testing.T) {
	if os.Getenv("DG_BENCH_HEALTH") != "1" {
		t.Skip("set DG_BENCH_HEALTH=1 to measure 1,000-datasource health cycles")
	}
	const (
		timeout = time.Second
		cycles  = 100
		nLive   = 300 // SQLite
		nPG     = 50  // live PostgreSQL (the server allows 100 connections)
		nSilent = 100 // accept, never answer
		total   = 1000
	)
	ctx := t.Context()
	e, _ := newHealthEngine(t, sqliteTestURL(t))
	pg, err := drivers.ParseDSN("postgres", testsvc.PostgresDSN(t))
	mustNoErr(t, "parse dsn", err)
	dir := t.TempDir()
	var files []string
	for i := range 30 {
		p := filepath.Join(dir, fmt.Sprintf("live%d.db", i))
		makeSQLite(t, p, 10)
		files = append(files, p)
	}
	var silent []int
	for range 20 {
		silent = append(silent, silentListener(t))
	}
	for i := range total {
		ds := &Datasource{Name: fmt.Sprintf("ds%04d", i), Database: "app", Username: "app"}
		switch {
		case i < nLive:
			ds.Type, ds.Path = "sqlite", files[i%len(files)]
		case i < nLive+nPG:
			ds.Type, ds.Host, ds.Port, ds.Database, ds.Username = "postgres", pg.Host, pg.Port, pg.Database, pg.Username
		case i < nLive+nPG+nSilent:
			ds.Type, ds.Host, ds.Port = "postgres", "127.0.0.1", silent[i%len(silent)]
			if i%2 == 0 {
				ds.Type = "mysql"
			}
		default: // nothing listens on 127.x.y.z:5432 / :3306
			ds.Type, ds.Host, ds.Port = "postgres", fmt.Sprintf("127.%d.%d.%d", 1+i%250, i%200, 1+i%250), 5432
			if i%2 == 0 {
				ds.Type, ds.Port = "mysql", 3306
			}
		}
		pw := "pw"
		if i < nLive+nPG {
			pw = ""
		}
		createDS(t, e, ds, pw)
	}
	want := map[HealthStatus]int{HealthOK: nLive + nPG, HealthTimeout: nSilent, HealthUnreachable: total - nLive - nPG - nSilent}

	lateLive := 0
	run := func(o HealthOptions) HealthCycleReport {
		t.Helper()
		rep, err := e.RunHealthCycle(ctx, o)
		if err != nil {
			t.Fatal(err)
		}
		// At a 200 ms timeout on a loaded machine a live database may
		// answer late (timeout); everything else must be exact.
		c := rep.Checks
		if rep.Checked != total || rep.Errors != 0 || c[HealthUnreachable] != want[HealthUnreachable] ||
			c[HealthTimeout] < nSilent || c[HealthOK]+c[HealthTimeout] != nLive+nPG+nSilent {
			t.Fatalf("cycle checked %d, %d errors, checks %v; want %d, 0, %v", rep.Checked, rep.Errors, rep.Checks, total, want)
		}
		lateLive += c[HealthTimeout] - nSilent
		return rep
	}
	measure := func() (heap uint64, goroutines int) {
		// Let the abandoned checks of the last cycle (pings past their
		// timeout, connections closing) end: count when the number of
		// goroutines stops falling, or after 2 × Timeout + 2 s.
		for deadline, last, steady := time.Now().Add(2*timeout+2*time.Second), runtime.NumGoroutine(), 0; steady < 3 && time.Now().Before(deadline); {
			time.Sleep(200 * time.Millisecond)
			if n := runtime.NumGoroutine(); n < last {
				last, steady = n, 0
			} else {
				steady++
			}
		}
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc, runtime.NumGoroutine()
	}

	// The default concurrency (32) for comparison: the silent servers
	// queue up behind each other.
	rep := run(HealthOptions{Timeout: timeout})
	t.Logf("Concurrency 32 (default): one cycle of %d in %s", total, rep.Duration)

	o := HealthOptions{Timeout: timeout, Concurrency: 256}
	if n, err := strconv.Atoi(os.Getenv("DG_BENCH_HEALTH_CONCURRENCY")); err == nil {
		o.Concurrency = n
	}
	var durs []time.Duration
	var heap10, heap100 uint64
	var gor10, gor100 int
	heap0, gor0 := measure()
	for i := 1; i <= cycles; i++ {
		rep := run(o)
		durs = append(durs, rep.Duration)
		switch i {
		case 10:
			heap10, gor10 = measure()
		case cycles:
			heap100, gor100 = measure()
		}
	}
	slices.Sort(durs)
	p50, p95, worst := durs[len(durs)/2], durs[len(durs)*95/100], durs[len(durs)-1]
	t.Logf("Concurrency %d, Timeout %s: %d cycles of %d datasources: p50 %s, p95 %s, max %s",
		o.Concurrency, timeout, cycles, total, p50, p95, worst)
	t.Logf("live databases that answered after the timeout, over all cycles: %d of %d checks", lateLive, (cycles+1)*(nLive+nPG))
	t.Logf("heap: %.1f MiB before, %.1f MiB after 10 cycles, %.1f MiB after %d; goroutines %d, %d, %d",
		mib(heap0), mib(heap10), mib(heap100), cycles, gor0, gor10, gor100)
	if p95 > 2*timeout {
		t.Errorf("p95 cycle %s, want within 2 × Timeout = %s", p95, 2*timeout)
	}
	if heap100 > heap10+heap10/2+4<<20 {
		t.Errorf("heap grew from %.1f MiB (cycle 10) to %.1f MiB (cycle %d)", mib(heap10), mib(heap100), cycles)
	}
	if gor100 > gor10+2 {
		t.Errorf("goroutines grew from %d (cycle 10) to %d (cycle %d)", gor10, gor100, cycles)
	}
}

func mib(n uint64) float64 { return float64(n) / (1 << 20) }
