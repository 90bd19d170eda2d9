package drivertest

import (
	"context"
	"path/filepath"
	"slices"
	"testing"

	"github.com/dataguardian/dataguardian/drivers"
)

// RunInspector checks drivers.Inspector on d: Empty must report empty as
// empty (a missing or empty target: call RunInspector once for each) and
// full, which holds data, as not empty, without an error and without
// changing anything: for sources with a Path, the directory holding each
// is fingerprinted before and after. Empty of a cancelled context must
// not report a target empty.
func RunInspector(t *testing.T, d drivers.Driver, empty, full drivers.Source) {
	t.Helper()
	in, ok := d.(drivers.Inspector)
	if !ok {
		t.Fatalf("drivertest: %T does not implement drivers.Inspector", d)
	}
	for _, c := range []struct {
		name string
		src  drivers.Source
		want bool
	}{{"Empty", empty, true}, {"Full", full, false}} {
		t.Run(c.name, func(t *testing.T) {
			var dir string
			var before []string
			if c.src.Path != "" {
				dir = filepath.Dir(filepath.Clean(c.src.Path))
				before = fingerprint(t, dir)
			}
			got, err := in.Empty(t.Context(), c.src)
			if err != nil || got != c.want {
				t.Fatalf("Empty(%s) = %v, %v; want %v", c.src, got, err, c.want)
			}
			if dir != "" {
				if after := fingerprint(t, dir); !slices.Equal(before, after) {
					t.Errorf("Empty changed %s:\nbefore %q\nafter  %q", dir, before, after)
				}
			}
		})
	}
	t.Run("Cancelled", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		if got, err := in.Empty(ctx, full); got && err == nil {
			t.Fatalf("Empty(%s) with a cancelled context reported an empty target", full)
		}
	})
}
