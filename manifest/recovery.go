package manifest

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/dataguardian/dataguardian/storage"
)

// Names of the by-hand recovery aids Write puts in every run folder beside
// the parts, before manifest.json. manifest.json stays the commit marker and
// the authority; a reader never needs these files (older backups lack them).
const (
	// SumsFileName lists the sha256 of every part, as sha256sum writes
	// it: run "sha256sum -c SHA256SUMS" inside the folder.
	SumsFileName = "SHA256SUMS"
	// RecoveryFileName says what the backup is and gives the exact
	// commands that recover it without DataGuardian.
	RecoveryFileName = "RECOVERY.txt"
)

// ErrSumsMismatch reports a SHA256SUMS that disagrees with manifest.json
// (edited, or left from another backup). The parts are judged by
// manifest.json; the error only says the aid would mislead a person.
var ErrSumsMismatch = errors.New("SHA256SUMS disagrees with manifest.json")

// maxSumsSize bounds how much of a SHA256SUMS is read.
const maxSumsSize = 16 << 20

// Sums returns the content of SHA256SUMS for m: one line "<hex>  <file>"
// per part, in order, which "sha256sum -c SHA256SUMS" checks.
func (m *Manifest) Sums() []byte {
	var b bytes.Buffer
	for _, c := range m.Chunks {
		fmt.Fprintf(&b, "%s  %s\n", strings.TrimPrefix(c.Checksum, "sha256:"), c.File)
	}
	return b.Bytes()
}

// toolNames describe each datasource type's format and how a person loads
// it with the database's own tool. Placeholders are in capitals.
var toolNames = map[string]struct {
	format string
	tool   string   // what step 5 is done with
	note   string   // connection hints
	cmds   []string // %s is the recovered file
}{
	"postgres": {"pg_dump custom format", "PostgreSQL's pg_restore",
		"DB is the target database; add -h HOST -p PORT -U USER to both commands as needed. pg_restore needs the database to exist",
		[]string{"createdb DB", "pg_restore --no-owner --no-acl -d DB %s"}},
	"mysql": {"SQL script (mysqldump)", "the mysql client",
		"DB is the target database; add -h HOST -P PORT -u USER -p to both commands as needed. The script does not create the database",
		[]string{"mysql -e 'CREATE DATABASE DB'", "mysql DB < %s"}},
	"mariadb": {"SQL script (mariadb-dump)", "the mariadb/mysql client",
		"DB is the target database; add -h HOST -P PORT -u USER -p to both commands as needed. The script does not create the database",
		[]string{"mysql -e 'CREATE DATABASE DB'", "mysql DB < %s"}},
	"mongodb": {"mongodump archive", "mongorestore",
		"add --uri 'mongodb://USER@HOST:27017' as needed; --drop replaces the collections the archive holds",
		[]string{"mongorestore --archive=%s --drop"}},
	"sqlserver": {"SQL Server BACPAC", "SqlPackage",
		"HOST and DB name the target server and a new database",
		[]string{"SqlPackage /Action:Import /SourceFile:%s /TargetServerName:HOST /TargetDatabaseName:DB"}},
	"sqlite": {"SQLite database file", "a plain copy",
		"app.db stands for the path of your database; stop the application that uses it first",
		[]string{"cp %s app.db"}},
	"files": {"tar archive", "tar",
		"DIR is the directory to restore into; tar replaces files of the same name there",
		[]string{"mkdir -p DIR", "tar -xf %s -C DIR"}},
}

// Recovery returns the text of RECOVERY.txt for m: what the backup is and
// the numbered steps that recover it by hand. Every command is on a line
// of its own starting with "  $ ", in the order to run them, inside a copy
// of the run folder; the last step loads the data with the database's own
// tool and uses placeholders (DB, DIR, HOST) in capitals.
func (m *Manifest) Recovery() []byte {
	base, err := m.FileBase()
	if err != nil { // m did not validate; still say what little is known
		base = "backup"
	}
	compressed := strings.TrimSuffix(base, "."+AgeFormat) // the decrypted file
	format, _ := FormatFor(m.DatasourceType)
	plain := "backup." + format // the decompressed file
	tool := toolNames[m.DatasourceType]
	sum := strings.TrimPrefix(m.Checksum, "sha256:")

	var b strings.Builder
	line := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	cmd := func(c string) { line("  $ %s", c) }

	title := "DataGuardian backup: how to recover it by hand"
	line("%s\n%s\n", title, strings.Repeat("=", len(title)))
	line("This folder holds one complete backup. manifest.json describes it and is")
	line("the authority; this file and %s help you recover it without", SumsFileName)
	line("DataGuardian, with standard tools only.\n")
	field := func(name, format string, args ...any) { line("  %-18s %s", name+":", fmt.Sprintf(format, args...)) }
	field("Datasource type", "%s", m.DatasourceType)
	field("Format", "%s (%s)", format, tool.format)
	field("Compression", "%s", m.Compression)
	if e := m.Encryption; e != nil && e.Passphrase {
		field("Encryption", "age, with a passphrase")
	} else if e != nil {
		field("Encryption", "age, to %s", strings.Join(e.Recipients, ", "))
	}
	field("Created at", "%s", m.CreatedAt.UTC().Format(time.RFC3339))
	field("Job ID", "%s", m.JobID)
	if m.ExecutionID != "" {
		field("Execution ID", "%s", m.ExecutionID)
	}
	if n := len(m.Chunks); n == 1 {
		field("Parts", "1 (%s)", m.Chunks[0].File)
	} else if n > 1 {
		field("Parts", "%d (%s to %s)", n, m.Chunks[0].File, m.Chunks[n-1].File)
	}
	field("Total size", "%s uncompressed", bytesText(m.TotalSizeBytes))
	field("Compressed size", "%s", bytesText(m.CompressedSizeBytes))
	field("Checksum", "%s", m.Checksum)
	line("%-20s (sha256 of the parts joined in order)\n", "")

	split := len(m.Chunks) > 1
	var room int64
	if split {
		room += m.CompressedSizeBytes
	}
	if m.Compression != None {
		room += m.TotalSizeBytes
	}
	if m.Encryption != nil {
		room += m.CompressedSizeBytes
	}
	if room > 0 {
		line("Copy this folder (cp -r) to a disk with room for about %s more, cd", FormatBytes(room))
		line("into the copy and run these commands there:\n")
	} else {
		line("cd into this folder, or a copy of it, and run these commands there:\n")
	}

	line("1. Check every part; each line must end in \"OK\":")
	cmd("sha256sum -c " + SumsFileName)
	line("")
	if split {
		files := make([]string, len(m.Chunks))
		for i, c := range m.Chunks {
			files[i] = c.File
		}
		line("2. Join the parts, in this order, into one file:")
		cmd("cat " + strings.Join(files, " ") + " > " + base)
	} else {
		line("2. The backup is one file, %s: there is nothing to join.", base)
	}
	line("")
	line("3. Check the whole file against the manifest's checksum; it must print")
	line("   \"%s: OK\":", base)
	cmd(fmt.Sprintf("echo '%s  %s' | sha256sum -c -", sum, base))
	line("")
	step := 4
	if e := m.Encryption; e != nil {
		if e.Passphrase {
			line("%d. Decrypt it with age (https://age-encryption.org; Debian: apt install age),", step)
			line("   which asks for the passphrase:")
			cmd(fmt.Sprintf("age -d -o %s %s", compressed, base))
		} else {
			for _, l := range wrap(fmt.Sprintf("%d. Decrypt it with age (https://age-encryption.org; Debian: apt install age). "+
				"KEY.txt stands for the key file (age-keygen's output) of one of: %s", step, strings.Join(e.Recipients, ", ")), 72) {
				line("%s", l)
			}
			cmd(fmt.Sprintf("age -d -i KEY.txt -o %s %s", compressed, base))
		}
		line("")
		step++
	}
	switch m.Compression {
	case Gzip:
		line("%d. Decompress it:", step)
		cmd(fmt.Sprintf("gunzip -c %s > %s", compressed, plain))
	case Zstd:
		line("%d. Decompress it:", step)
		cmd(fmt.Sprintf("zstd -d %s -o %s", compressed, plain))
	case LZ4:
		line("%d. Decompress it:", step)
		cmd(fmt.Sprintf("lz4 -d %s %s", compressed, plain))
	default:
		line("%d. It is not compressed: %s is the %s itself.", step, plain, tool.format)
	}
	line("")
	step++
	if tool.tool == "" {
		line("%d. Load %s with the database's own tool.", step, plain)
		return []byte(b.String())
	}
	for _, l := range wrap(fmt.Sprintf("%d. Load it with %s. %s:", step, tool.tool, tool.note), 72) {
		line("%s", l)
	}
	for _, c := range tool.cmds {
		if strings.Contains(c, "%s") {
			c = fmt.Sprintf(c, plain)
		}
		cmd(c)
	}
	return []byte(b.String())
}

// wrap breaks text into lines of at most width bytes where it can, the
// lines after the first indented by three spaces.
func wrap(text string, width int) []string {
	var out []string
	cur := ""
	for _, w := range strings.Fields(text) {
		switch {
		case cur == "":
			cur = w
		case len(cur)+1+len(w) > width:
			out = append(out, cur)
			cur = "   " + w
		default:
			cur += " " + w
		}
	}
	return append(out, cur)
}

// bytesText is "512 bytes" or "3355443 bytes (3.2 MiB)".
func bytesText(n int64) string {
	if n < 1024 {
		return fmt.Sprintf("%d bytes", n)
	}
	return fmt.Sprintf("%d bytes (%s)", n, FormatBytes(n))
}

// FormatBytes formats n in binary units, as people read sizes: "512 B",
// "3.2 MiB".
func FormatBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 5; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// WriteRecoveryFiles puts SHA256SUMS and RECOVERY.txt for m into the run
// folder dir on s, replacing any there. Each Put is atomic (the storage
// contract): a reader sees the whole file or none. Write calls it before
// manifest.json; a copy of a backup to another storage should too.
func WriteRecoveryFiles(ctx context.Context, s storage.Storage, dir string, m *Manifest) error {
	for _, f := range []struct {
		name string
		data []byte
	}{{SumsFileName, m.Sums()}, {RecoveryFileName, m.Recovery()}} {
		if err := s.Put(ctx, dir+"/"+f.name, bytes.NewReader(f.data), nil); err != nil {
			return fmt.Errorf("write %s: %w", f.name, err)
		}
	}
	return nil
}

// checkSumsFile compares dir/SHA256SUMS, when there is one, with the parts
// m lists: the same files with the same sha256, in any order, in text or
// binary ("*file") mode. A missing SHA256SUMS is fine.
func checkSumsFile(ctx context.Context, s storage.Storage, dir string, m *Manifest) error {
	rc, err := s.Open(ctx, dir+"/"+SumsFileName, 0, maxSumsSize+1)
	if errors.Is(err, storage.ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("verify backup %s: %w", dir, err)
	}
	data, err := io.ReadAll(rc)
	rc.Close()
	if err != nil {
		return fmt.Errorf("verify backup %s: read %s: %w", dir, SumsFileName, err)
	}
	bad := func(format string, args ...any) error {
		return fmt.Errorf("verify backup %s: %w: %s; the parts match manifest.json, which is the authority: delete %s or write it again as the manifest's chunks say",
			dir, ErrSumsMismatch, fmt.Sprintf(format, args...), SumsFileName)
	}
	if len(data) > maxSumsSize {
		return bad("it is larger than %d bytes", maxSumsSize)
	}
	want := make(map[string]string, len(m.Chunks))
	for _, c := range m.Chunks {
		want[c.File] = strings.TrimPrefix(c.Checksum, "sha256:")
	}
	seen := make(map[string]bool, len(want))
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, maxSumsSize)
	for n := 1; sc.Scan(); n++ {
		l := strings.TrimSuffix(sc.Text(), "\r")
		if strings.TrimSpace(l) == "" {
			continue
		}
		sum, file, ok := strings.Cut(l, " ")
		if !ok || (!strings.HasPrefix(file, " ") && !strings.HasPrefix(file, "*")) {
			return bad("line %d is not \"<sha256>  <file>\"", n)
		}
		file = file[1:]
		w, listed := want[file]
		switch {
		case !listed:
			return bad("line %d names %q, which is not a part of this backup", n, file)
		case seen[file]:
			return bad("line %d lists %s a second time", n, file)
		case !strings.EqualFold(sum, w):
			return bad("line %d says %s is %s, manifest.json says sha256:%s", n, file, sum, w)
		}
		seen[file] = true
	}
	for _, c := range m.Chunks {
		if !seen[c.File] {
			return bad("it does not list %s", c.File)
		}
	}
	return nil
}
