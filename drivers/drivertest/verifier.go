package drivertest

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/dataguardian/dataguardian/drivers"
	"github.com/dataguardian/dataguardian/manifest"
)

// VerifierHarness tells RunVerifier how to exercise a driver that
// implements drivers.Verifier.
type VerifierHarness struct {
	// Driver is the driver under test; it must implement drivers.Verifier.
	Driver drivers.Driver
	// NewSource creates a populated datasource (cleaned up with t) of at
	// least two tables, one of them with rows.
	NewSource func(t *testing.T) drivers.Source
	// Equal fails t when a and b do not hold the same data.
	Equal func(t testing.TB, a, b drivers.Source)
	// DatabaseExists reports whether database name exists on the server
	// the sources of NewSource live on.
	DatabaseExists func(t *testing.T, name string) bool
	// Drop drops database name from that server if it exists. RunVerifier
	// calls it when a subtest ends, so that a faulty Verify leaves nothing.
	Drop func(t *testing.T, name string)
	// MaxNameLen is the length of the longest verification database name
	// the driver accepts: the passing verification uses a name that long,
	// and one character more must be refused.
	MaxNameLen int
	// BreakDump returns a copy of dump (a dump of a NewSource datasource)
	// that the driver starts restoring and then fails on.
	BreakDump func(dump []byte) []byte
	// CheckBroken fails t unless err is the error Verify gives for the
	// output of BreakDump.
	CheckBroken func(t *testing.T, err error)
}

// RunVerifier runs the conformance suite of drivers.Verifier against h: a
// verification that passes and drops its database, one that keeps it,
// metadata that does not match the backup, existing and invalid database
// names refused, and a cancelled verification and a failed restore that
// leave no database behind.
func RunVerifier(t *testing.T, h VerifierHarness) {
	t.Helper()
	if h.Driver == nil || h.NewSource == nil || h.Equal == nil || h.DatabaseExists == nil || h.Drop == nil ||
		h.MaxNameLen <= 0 || h.BreakDump == nil || h.CheckBroken == nil {
		t.Fatal("drivertest: every VerifierHarness field must be set")
	}
	v, ok := h.Driver.(drivers.Verifier)
	if !ok {
		t.Fatalf("drivertest: %T does not implement drivers.Verifier", h.Driver)
	}
	src := h.NewSource(t)
	data, md := (&suite{h: Harness{Driver: h.Driver}}).dumpBytes(t, src)
	if len(md.TableRows) < 2 || slices.Max(slices.Collect(maps.Values(md.TableRows))) == 0 {
		t.Fatalf("drivertest: the source needs two tables, one with rows; the backup recorded %v", md.TableRows)
	}
	vs := &verifySuite{h: h, v: v, src: src, data: data, md: md}
	t.Run("OK", vs.testOK)
	t.Run("Keep", vs.testKeep)
	t.Run("Tampered", vs.testTampered)
	t.Run("RefusesExisting", vs.testRefusesExisting)
	t.Run("RefusesBadNames", vs.testRefusesBadNames)
	t.Run("Cancelled", vs.testCancelled)
	t.Run("FailedRestore", vs.testFailedRestore)
}

// Dump dumps src with d into memory, failing t on error: the dump's bytes
// and the metadata Dump returned.
func Dump(t *testing.T, d drivers.Driver, src drivers.Source) ([]byte, drivers.Metadata) {
	t.Helper()
	var buf bytes.Buffer
	md, err := d.Dump(t.Context(), src, &buf, nil)
	if err != nil {
		t.Fatalf("dump: %v", err)
	}
	return buf.Bytes(), md
}

// dumpBytes backs src up through the pipeline (one uncompressed part) and
// reads it back: the dump's bytes and the metadata of its stored manifest,
// as a verification after a backup gets them.
func (s *suite) dumpBytes(t *testing.T, src drivers.Source) ([]byte, drivers.Metadata) {
	t.Helper()
	st := newStorage(t)
	res := s.mustBackup(t, st, src, manifest.None, 0)
	var data []byte
	m, err := manifest.Read(t.Context(), st, res.Dir, func(_ context.Context, r io.Reader) error {
		var err error
		data, err = io.ReadAll(r)
		return err
	})
	if err != nil {
		t.Fatalf("read the backup back: %v", err)
	}
	return data, m.Metadata
}

// verifySuite shares one source and its dump between the subtests.
type verifySuite struct {
	h    VerifierHarness
	v    drivers.Verifier
	src  drivers.Source // never changed
	data []byte         // a dump of src
	md   drivers.Metadata
}

// newName returns a fresh valid verification database name, dropped when
// t ends should Verify leave it; long makes it MaxNameLen long.
func (s *verifySuite) newName(t *testing.T, long bool) string {
	t.Helper()
	name := "dgverify_" + strings.ToLower(rand.Text()[:12])
	if long {
		name += strings.Repeat("_", max(s.h.MaxNameLen-len(name), 0))
	}
	t.Cleanup(func() { s.h.Drop(t, name) })
	return name
}

// verify verifies r against md into database name.
func (s *verifySuite) verify(ctx context.Context, t *testing.T, r io.Reader, md drivers.Metadata, name string, keep bool) (*drivers.VerifyReport, error) {
	t.Helper()
	return s.v.Verify(ctx, s.src, r, md, &drivers.VerifyOptions{Database: name, Keep: keep, Logf: t.Logf})
}

// gone fails t when database name, which Verify created, is still there.
func (s *verifySuite) gone(t *testing.T, name, what string) {
	t.Helper()
	if s.h.DatabaseExists(t, name) {
		t.Errorf("%s left database %s behind", what, name)
	}
}

// testOK verifies into a name of MaxNameLen characters.
func (s *verifySuite) testOK(t *testing.T) {
	name := s.newName(t, true)
	rep, err := s.verify(t.Context(), t, bytes.NewReader(s.data), s.md, name, false)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK || rep.Kept || rep.Database != name || len(rep.Problems) > 0 ||
		len(rep.Tables) != len(s.md.TableRows) || len(rep.Tables) != s.md.TablesBackedUp {
		t.Fatalf("report %+v for metadata %+v", rep, s.md)
	}
	seen := map[string]bool{}
	for _, tc := range rep.Tables {
		want, ok := s.md.TableRows[tc.Table]
		if !ok || seen[tc.Table] || !tc.OK || tc.Rows != want || tc.ExpectedRows != want {
			t.Errorf("table check %+v; the backup recorded %v", tc, s.md.TableRows)
		}
		seen[tc.Table] = true
	}
	s.gone(t, name, "a passed verification")
}

func (s *verifySuite) testKeep(t *testing.T) {
	name := s.newName(t, false)
	rep, err := s.verify(t.Context(), t, bytes.NewReader(s.data), s.md, name, true)
	if err != nil || !rep.OK || !rep.Kept || rep.Database != name {
		t.Fatalf("verify: %+v, %v", rep, err)
	}
	if !s.h.DatabaseExists(t, name) {
		t.Fatalf("kept verification database %s is gone", name)
	}
	kept := s.src
	kept.Database = name
	s.h.Equal(t, s.src, kept)
}

// tamper returns a copy of md with one more row in its largest table, its
// smallest table left out and a table the backup lacks, and those three
// table names.
func tamper(md drivers.Metadata) (bad drivers.Metadata, more, left, ghost string) {
	names := slices.Sorted(maps.Keys(md.TableRows))
	byRows := func(a, b string) int { return cmp.Compare(md.TableRows[a], md.TableRows[b]) }
	more = slices.MaxFunc(names, byRows)
	left = slices.MinFunc(slices.DeleteFunc(names, func(n string) bool { return n == more }), byRows)
	ghost = more + "_vanished"
	bad = md
	bad.TableRows = maps.Clone(md.TableRows)
	bad.TableRows[more]++
	delete(bad.TableRows, left)
	bad.TableRows[ghost] = 3
	return bad, more, left, ghost
}

func (s *verifySuite) testTampered(t *testing.T) {
	bad, more, left, ghost := tamper(s.md)
	name := s.newName(t, false)
	rep, err := s.verify(t.Context(), t, bytes.NewReader(s.data), bad, name, false)
	if err != nil {
		t.Fatal(err)
	}
	if rep.OK || len(rep.Problems) != 3 {
		t.Fatalf("tampered metadata: report %+v, want 3 problems (%s, %s, %s)", rep, more, left, ghost)
	}
	problems := strings.Join(rep.Problems, "\n")
	for _, want := range []string{left, ghost} {
		if !strings.Contains(problems, want) {
			t.Errorf("problems do not mention %s:\n%s", want, problems)
		}
	}
	n := s.md.TableRows[more]
	if !slices.ContainsFunc(rep.Problems, func(p string) bool {
		return strings.Contains(p, more+" ") && strings.Contains(p, fmt.Sprint(" ", n, " ")) && strings.Contains(p, fmt.Sprint(" ", n+1))
	}) {
		t.Errorf("no problem names %s with %d rows against %d recorded:\n%s", more, n, n+1, problems)
	}
	checked := map[string]bool{}
	for _, tc := range rep.Tables {
		checked[tc.Table] = true
		if wantOK := tc.Table != more && tc.Table != left && tc.Table != ghost; tc.OK != wantOK {
			t.Errorf("table check %+v, want OK %v", tc, wantOK)
		}
	}
	for _, want := range []string{more, left, ghost} {
		if !checked[want] {
			t.Errorf("no table check for %s: %+v", want, rep.Tables)
		}
	}
	s.gone(t, name, "a failed verification")
}

// testRefusesExisting verifies into the source's database and into a kept
// verification database: both are refused and left as they were.
func (s *verifySuite) testRefusesExisting(t *testing.T) {
	name := s.newName(t, false)
	if rep, err := s.verify(t.Context(), t, bytes.NewReader(s.data), s.md, name, true); err != nil || !rep.OK {
		t.Fatalf("verify: %+v, %v", rep, err)
	}
	kept := s.src
	kept.Database = name
	for _, existing := range []string{s.src.Database, name} {
		_, err := s.verify(t.Context(), t, bytes.NewReader(s.data), s.md, existing, false)
		if err == nil || !strings.Contains(err.Error(), "already exists") {
			t.Errorf("verify into existing database %s: %v", existing, err)
		}
		if !s.h.DatabaseExists(t, existing) {
			t.Errorf("a refused verification dropped the existing database %s", existing)
		}
	}
	s.h.Equal(t, s.src, kept)
}

func (s *verifySuite) testRefusesBadNames(t *testing.T) {
	names := []string{"", "Upper", "a-b", "a b", "x`y", "x'y", `x"; DROP DATABASE postgres; --`, "dg/verify", "é", strings.Repeat("a", s.h.MaxNameLen+1)}
	for _, name := range names {
		_, err := s.verify(t.Context(), t, bytes.NewReader(s.data), s.md, name, false)
		if !errors.Is(err, drivers.ErrInvalidSource) {
			t.Errorf("name %q: %v, want an error matching %v", name, err, drivers.ErrInvalidSource)
		}
	}
}

func (s *verifySuite) testCancelled(t *testing.T) {
	name := s.newName(t, false)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	r := CancelAfter(bytes.NewReader(s.data), int64(len(s.data)/2), cancel)
	if _, err := s.verify(ctx, t, r, s.md, name, false); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled verify: %v, want an error matching context.Canceled", err)
	}
	s.gone(t, name, "a cancelled verification")
}

func (s *verifySuite) testFailedRestore(t *testing.T) {
	name := s.newName(t, false)
	broken := s.h.BreakDump(slices.Clone(s.data))
	_, err := s.verify(t.Context(), t, bytes.NewReader(broken), s.md, name, false)
	if err == nil {
		t.Fatal("verify of a broken dump succeeded")
	}
	t.Logf("expected error: %v", err)
	s.h.CheckBroken(t, err)
	s.gone(t, name, "a failed restore")
}
