package main

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/dataguardian/dataguardian/drivers"
	"github.com/dataguardian/dataguardian/manifest"
	"github.com/dataguardian/dataguardian/storage"
	"github.com/dataguardian/dataguardian/storage/local"
	"github.com/google/uuid"
)

// Defaults of the backup flags, the same as the engine's job defaults.
const (
	defaultCompression   = manifest.Gzip
	defaultMaxFileSizeMB = 1024
)

// backupOutput is the --json output of backup.
type backupOutput struct {
	Dir      string   `json:"dir"` // absolute path of the run folder
	Key      string   `json:"key"` // "{job_id}/{YYYY-MM-DD_HHmmss}" under the storage
	Storage  string   `json:"storage"`
	Source   string   `json:"source"` // without its password
	Manifest *summary `json:"manifest"`
}

func (c *cli) backup(ctx context.Context, args []string) error {
	fs, asJSON := c.flags("backup")
	var sf sourceFlags
	sf.register(fs, "datasource type: postgres, mysql, mariadb, sqlite or files (required)",
		"what to back up: a postgres:// or mysql:// URL, user:pass@tcp(host:3306)/db, or a file or directory path (required)")
	storageDir := fs.String("storage", "", "storage directory the run folder is created in (required; created if missing), or "+remoteHelp)
	jobID := fs.String("job-id", "", "job ID, the first folder level (default TYPE-NAME, e.g. sqlite-app)")
	compression := fs.String("compression", string(defaultCompression), "gzip, zstd, lz4 or none")
	maxMB := fs.Int64("max-file-size-mb", defaultMaxFileSizeMB, "split the compressed backup into parts of at most this many MiB")
	var recipients pathList
	fs.Var(&recipients, "age-recipient", "encrypt the backup with age to this public key (age1…, from age-keygen); repeat it for more. "+
		"Restore with --age-identity and a matching secret key")
	if _, err := c.parse(fs, args); err != nil {
		return err
	}
	var encrypt *manifest.Encrypt
	for _, r := range recipients {
		if err := manifest.CheckRecipient(r); err != nil {
			return usagef("--age-recipient: %v", err)
		}
	}
	if len(recipients) > 0 {
		encrypt = &manifest.Encrypt{Recipients: recipients}
	}
	if err := required([2]string{"type", sf.typ}, [2]string{"dsn", sf.dsn}, [2]string{"storage", *storageDir}); err != nil {
		return err
	}
	comp, err := manifest.ParseCompression(*compression)
	if err != nil || *compression == "" {
		return usagef("--compression %q: use gzip, zstd, lz4 or none", *compression)
	}
	if *maxMB <= 0 {
		return usagef("--max-file-size-mb %d: give a positive number of MiB", *maxMB)
	}
	drv, err := lookupDriver(sf.typ)
	if err != nil {
		return usagef("--type: %v", err)
	}
	src, err := c.source(drv.Type(), &sf)
	if err != nil {
		return err
	}
	if *jobID == "" {
		*jobID = defaultJobID(src)
	}
	var st storage.Storage
	root := *storageDir
	if isRemote(root) {
		if st, _, err = c.openRemote(ctx, root, false); err != nil {
			return err
		}
	} else {
		l, err := local.New(root)
		if err != nil {
			return err
		}
		st, root = l, l.Root()
	}

	p := c.startProgress("backup", 0)
	res, err := manifest.Write(ctx, []manifest.Destination{{Name: "local", Storage: st}},
		manifest.WriteOptions{JobID: *jobID, ExecutionID: uuid.NewString(), DatasourceType: drv.Type(), Compression: comp, PartSize: *maxMB << 20,
			Encrypt: encrypt},
		func(ctx context.Context, w io.Writer) (manifest.Metadata, error) {
			return drv.Dump(ctx, src, p.writer(w), &drivers.DumpOptions{Logf: c.logf("[BACKUP]")})
		})
	p.stop()
	if err != nil {
		return fmt.Errorf("back up %s: %w (no manifest.json was written: nothing to restore from this run)", src, err)
	}
	dir := remoteJoin(root, res.Dir)
	if !isRemote(root) {
		dir = filepath.Join(root, filepath.FromSlash(res.Dir))
	}
	out := backupOutput{Dir: dir, Key: res.Dir, Storage: root,
		Source: src.String(), Manifest: summarize(res.Manifest)}
	if *asJSON {
		return c.printJSON(out)
	}
	if c.tty {
		c.stderr.line("backed up " + src.String() + ": " + describe(out.Manifest))
	}
	c.stdout.line(out.Dir)
	return nil
}

// defaultJobID derives a stable job ID from a source: "TYPE-NAME", NAME
// being the database name, or the base name of the path (without its
// extension for sqlite), lowercased with every run of other characters than
// a-z and 0-9 turned into one "-": /srv/App.db → "sqlite-app", /var/www →
// "files-www", postgres://…/shop → "postgres-shop".
func defaultJobID(src drivers.Source) string {
	name := src.Database
	if src.Path != "" {
		name = filepath.Base(src.Path)
		if src.Type == "sqlite" {
			name = strings.TrimSuffix(name, filepath.Ext(name))
		}
	}
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(name) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			if dash && b.Len() > 0 {
				b.WriteByte('-')
			}
			b.WriteRune(r)
			dash = false
		} else {
			dash = true
		}
		if b.Len() >= 48 {
			break
		}
	}
	if b.Len() == 0 {
		return src.Type
	}
	return src.Type + "-" + b.String()
}
