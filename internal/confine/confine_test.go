package confine

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// tree makes root/{allowed/{data,src,store},outside} and returns the
// resolved root (t.TempDir may itself sit behind a symbolic link).
func tree(t *testing.T) string {
	t.Helper()
	root, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"allowed/data", "allowed/src", "allowed/store", "outside"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func policy(t *testing.T, root string) *Policy {
	t.Helper()
	p, err := New(Options{
		Roots:     []string{filepath.Join(root, "allowed")},
		Protected: []string{filepath.Join(root, "allowed/data")},
		Widen:     "start the server with --allow-path DIR",
	})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestSource(t *testing.T) {
	root := tree(t)
	p := policy(t, root)
	link := filepath.Join(root, "allowed/escape")
	if err := os.Symlink(filepath.Join(root, "outside"), link); err != nil {
		t.Fatal(err)
	}
	dataLink := filepath.Join(root, "allowed/src/data-link")
	if err := os.Symlink(filepath.Join(root, "allowed/data"), dataLink); err != nil {
		t.Fatal(err)
	}
	dangling := filepath.Join(root, "allowed/dangling")
	if err := os.Symlink(filepath.Join(root, "nowhere"), dangling); err != nil {
		t.Fatal(err)
	}
	store := filepath.Join(root, "allowed/store")
	for _, tc := range []struct {
		path string
		want error // nil: allowed
	}{
		{filepath.Join(root, "allowed/src"), nil},
		{filepath.Join(root, "allowed/src/app.db"), nil},         // missing file: its directory decides
		{filepath.Join(root, "allowed/src/new/dir/app.db"), nil}, // several missing levels
		{filepath.Join(root, "allowed"), ErrProtected},           // holds the data directory
		{filepath.Join(root, "allowed/data"), ErrProtected},      // is it
		{filepath.Join(root, "allowed/data/secret.key"), ErrProtected},
		{dataLink, ErrProtected}, // a link to it
		{filepath.Join(root, "outside"), ErrOutside},
		{filepath.Join(root, "allowed/../outside"), ErrOutside}, // cleaned first
		{link, ErrOutside}, // a link out of the root
		{filepath.Join(link, "sub/file"), ErrOutside},
		{"/", ErrFilesystemRoot},
		{"/etc", ErrOutside},
		{"../../etc", ErrRelative},
		{"relative/dir", ErrRelative},
		{"", ErrRelative},
		{store, ErrOverlap},
		{filepath.Join(store, "job"), ErrOverlap},
		{dangling, nil}, // checked below: an error, whatever its kind
	} {
		_, err := p.Source(tc.path, store)
		if tc.path == dangling {
			if err == nil {
				t.Errorf("Source(%q) = nil, want an error for a dangling link", tc.path)
			}
			continue
		}
		if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
			t.Errorf("Source(%q) = %v, want %v", tc.path, err, tc.want)
		}
	}
}

func TestStorage(t *testing.T) {
	root := tree(t)
	p := policy(t, root)
	src := filepath.Join(root, "allowed/src")
	for _, tc := range []struct {
		path string
		want error
	}{
		{filepath.Join(root, "allowed/store"), nil},
		{filepath.Join(root, "allowed/data/backups"), nil}, // below the data directory: the default layout
		{filepath.Join(root, "allowed/data"), ErrProtected},
		{filepath.Join(root, "allowed"), ErrProtected},
		{filepath.Join(root, "outside"), ErrOutside},
		{"/", ErrFilesystemRoot},
		{"backups", ErrRelative},
		{src, ErrOverlap},
		{filepath.Join(src, "backups"), ErrOverlap},
	} {
		_, err := p.Storage(tc.path, src)
		if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
			t.Errorf("Storage(%q) = %v, want %v", tc.path, err, tc.want)
		}
	}
}

func TestUnconfinedStillProtects(t *testing.T) {
	root := tree(t)
	p, err := New(Options{Protected: []string{filepath.Join(root, "allowed/data")}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Source(filepath.Join(root, "outside")); err != nil {
		t.Errorf("unconfined: %v", err)
	}
	if _, err := p.Source(filepath.Join(root, "allowed/data")); !errors.Is(err, ErrProtected) {
		t.Errorf("unconfined data directory: %v, want ErrProtected", err)
	}
	if _, err := p.Source("relative"); !errors.Is(err, ErrRelative) {
		t.Errorf("unconfined relative: %v, want ErrRelative", err)
	}
	var nilPolicy *Policy
	if _, err := nilPolicy.Source("/"); !errors.Is(err, ErrFilesystemRoot) {
		t.Errorf("nil policy, /: %v", err)
	}
}

func TestEmptyRootsAllowNothing(t *testing.T) {
	root := tree(t)
	p, err := New(Options{Roots: []string{}, Widen: "use --allow-path"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = p.Source(filepath.Join(root, "allowed/src"))
	if !errors.Is(err, ErrOutside) {
		t.Fatalf("err = %v, want ErrOutside", err)
	}
}

func TestRootSlashRefused(t *testing.T) {
	if _, err := New(Options{Roots: []string{"/"}}); !errors.Is(err, ErrFilesystemRoot) {
		t.Fatalf("New with root / = %v, want ErrFilesystemRoot", err)
	}
}

func TestNestedRootsListedOnce(t *testing.T) {
	root := tree(t)
	p, err := New(Options{Roots: []string{filepath.Join(root, "allowed/store"), filepath.Join(root, "allowed"), filepath.Join(root, "allowed")}})
	if err != nil {
		t.Fatal(err)
	}
	if got := p.Roots(); len(got) != 1 || got[0] != filepath.Join(root, "allowed") {
		t.Fatalf("Roots() = %v, want the outer root once", got)
	}
}
