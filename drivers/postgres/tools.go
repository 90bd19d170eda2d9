package postgres

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/dataguardian/dataguardian/drivers/internal/proc"
)

// ErrToolTooOld reports that the pg_dump or pg_restore found is older than
// the server's major version. Its message names both versions and the fix.
var ErrToolTooOld = errors.New("PostgreSQL client tool older than the server")

// ErrToolNotFound reports that no pg_dump or pg_restore was found.
var ErrToolNotFound = errors.New("PostgreSQL client tool not found")

// libDirs is where Debian-style installations keep each major version's
// tools; a variable for tests.
var libDirs = "/usr/lib/postgresql/*/bin"

// versionTimeout bounds one `tool --version`.
const versionTimeout = 10 * time.Second

// toolKey identifies a cached tool choice.
type toolKey struct {
	name  string
	major int // majorKey of the server
}

// tool is one client program and its version.
type tool struct {
	path    string
	version int // PG_VERSION_NUM style: 150004, 90600
}

// findTool returns the program name (pg_dump, pg_restore) whose major
// version is at least the server's (server_version_num serverNum). It
// looks in BinDir only when that is set, else in PATH and then in the
// versioned directories, newest first. Choices are cached per name and
// server major; failures are not, so installing a client takes effect at
// once.
func (d *Driver) findTool(ctx context.Context, name string, serverNum int) (tool, error) {
	key := toolKey{name, majorKey(serverNum)}
	d.mu.Lock()
	defer d.mu.Unlock()
	if t, ok := d.tools[key]; ok {
		return t, nil
	}
	var tooOld []string
	var problems []string
	for _, p := range d.candidates(name) {
		v, err := toolVersion(ctx, p)
		if err != nil {
			if ctx.Err() != nil {
				return tool{}, ctx.Err()
			}
			problems = append(problems, err.Error())
			continue
		}
		if majorKey(v) < key.major {
			tooOld = append(tooOld, fmt.Sprintf("%s %s (%s)", name, majorName(v), p))
			continue
		}
		t := tool{path: p, version: v}
		if d.tools == nil {
			d.tools = make(map[toolKey]tool)
		}
		d.tools[key] = t
		d.logger().Debug("postgres client tool chosen", "tool", name, "path", p, "version", versionName(v), "server_major", majorName(serverNum))
		return t, nil
	}
	server := majorName(serverNum)
	fix := fmt.Sprintf("install postgresql-client-%s (or newer) or set BinDir to a directory holding %s %s or newer", server, name, server)
	where := "in PATH or " + libDirs
	if d.BinDir != "" {
		where = "in BinDir " + d.BinDir
		fix = fmt.Sprintf("put %s %s or newer in %s, or install postgresql-client-%s and clear BinDir", name, server, d.BinDir, server)
	}
	if len(tooOld) > 0 {
		return tool{}, fmt.Errorf("%w: found %s, but the server is PostgreSQL %s: %s", ErrToolTooOld, strings.Join(tooOld, ", "), server, fix)
	}
	msg := fmt.Sprintf("no %s %s", name, where)
	if len(problems) > 0 {
		msg += " that runs (" + strings.Join(problems, "; ") + ")"
	}
	return tool{}, fmt.Errorf("%w: %s: %s", ErrToolNotFound, msg, fix)
}

// candidates lists the paths of name to try, in order.
func (d *Driver) candidates(name string) []string {
	if d.BinDir != "" {
		return []string{filepath.Join(d.BinDir, name)}
	}
	var out []string
	seen := map[string]bool{}
	add := func(p string) {
		if !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	if p, err := exec.LookPath(name); err == nil {
		if abs, err := filepath.Abs(p); err == nil {
			p = abs
		}
		add(p)
	}
	dirs, _ := filepath.Glob(libDirs)
	// Newest major first: /usr/lib/postgresql/16/bin before .../9.6/bin.
	sort.SliceStable(dirs, func(i, j int) bool {
		return dirVersion(dirs[i]) > dirVersion(dirs[j])
	})
	for _, dir := range dirs {
		add(filepath.Join(dir, name))
	}
	return out
}

// dirVersion reads the major version out of /usr/lib/postgresql/<v>/bin.
func dirVersion(dir string) int {
	v, _ := parseVersion(filepath.Base(filepath.Dir(dir)))
	return v
}

// toolVersion runs `path --version`.
func toolVersion(ctx context.Context, path string) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, versionTimeout)
	defer cancel()
	var out bytes.Buffer
	if err := (proc.Cmd{Path: path, Args: []string{"--version"}, Stdout: &out, Drop: dropEnv}).Run(ctx); err != nil {
		return 0, fmt.Errorf("run %s --version: %w", path, err)
	}
	m := toolVersionRE.FindStringSubmatch(out.String())
	if m == nil {
		return 0, fmt.Errorf("%s --version printed %q, not a PostgreSQL version", path, strings.TrimSpace(out.String()))
	}
	return parseVersion(m[1])
}

// toolVersionRE finds the version in "pg_dump (PostgreSQL) 15.4 (Debian ...)".
var toolVersionRE = regexp.MustCompile(`\(PostgreSQL\)\s+([0-9][0-9.]*)`)

// parseVersion turns "15.4", "16", "9.6.24" into PG_VERSION_NUM form
// (150004, 160000, 90624).
func parseVersion(s string) (int, error) {
	parts := strings.Split(strings.TrimRight(s, "."), ".")
	nums := make([]int, 3)
	for i := 0; i < len(parts) && i < 3; i++ {
		n, err := strconv.Atoi(parts[i])
		if err != nil {
			return 0, fmt.Errorf("version %q: %w", s, err)
		}
		nums[i] = n
	}
	if nums[0] >= 10 {
		return nums[0]*10000 + nums[1], nil
	}
	return nums[0]*10000 + nums[1]*100 + nums[2], nil
}

// majorKey orders major versions: 9.6 → 906, 15 → 1500.
func majorKey(num int) int {
	if num >= 100000 {
		return num / 10000 * 100
	}
	return num / 100
}

// majorName is the major version as people write it: "9.6", "15".
func majorName(num int) string {
	if num >= 100000 {
		return strconv.Itoa(num / 10000)
	}
	return fmt.Sprintf("%d.%d", num/10000, num/100%100)
}

// versionName is the full version: "9.6.24", "15.4".
func versionName(num int) string {
	if num >= 100000 {
		return fmt.Sprintf("%d.%d", num/10000, num%10000)
	}
	return fmt.Sprintf("%d.%d.%d", num/10000, num/100%100, num%100)
}
