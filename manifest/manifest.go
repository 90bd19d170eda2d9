package manifest

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Version is the manifest format version this package writes.
const Version = "1.0"

// Errors reported when reading a backup. Each is wrapped with the file it
// concerns and what to do, and can be tested with errors.Is.
var (
	// ErrNoManifest reports a run folder without manifest.json: the backup
	// never completed and must not be restored.
	ErrNoManifest = errors.New("no manifest.json")
	// ErrInvalidManifest reports a manifest.json that cannot be trusted.
	ErrInvalidManifest = errors.New("invalid manifest")
	// ErrMissingPart reports a part listed in the manifest that is not in storage.
	ErrMissingPart = errors.New("missing part")
	// ErrSizeMismatch reports a part whose size differs from the manifest (truncated or grown).
	ErrSizeMismatch = errors.New("part size mismatch")
	// ErrChecksumMismatch reports a part or a whole stream whose sha256 differs from the manifest.
	ErrChecksumMismatch = errors.New("checksum mismatch")
)

// Manifest is the content of manifest.json, the commit marker of a backup.
type Manifest struct {
	Version        string      `json:"version"`
	CreatedAt      time.Time   `json:"created_at"`
	ExecutionID    string      `json:"execution_id"`
	JobID          string      `json:"job_id"`
	DatasourceType string      `json:"datasource_type"`
	BackupType     string      `json:"backup_type"`
	Compression    Compression `json:"compression"`
	// Encryption, when set, says the compressed stream is encrypted (age)
	// and to whom; the part files then end in ".age".
	Encryption          *Encryption `json:"encryption,omitempty"`
	TotalSizeBytes      int64       `json:"total_size_bytes"`
	CompressedSizeBytes int64       `json:"compressed_size_bytes"`
	CompressionRatio    float64     `json:"compression_ratio"`
	Checksum            string      `json:"checksum"`
	Chunks              []Chunk     `json:"chunks"`
	Metadata            Metadata    `json:"metadata"`
}

// Chunk is one part file of a backup, in stream order.
type Chunk struct {
	Number    int    `json:"number"`
	File      string `json:"file"`
	Checksum  string `json:"checksum"`
	SizeBytes int64  `json:"size_bytes"`
}

// Metadata describes the content of a dump. Extra holds any further
// driver-specific keys; they are written flat beside the named fields.
type Metadata struct {
	DatabaseVersion string `json:"database_version,omitempty"`
	TablesBackedUp  int    `json:"tables_backed_up"`
	RowsApproximate int64  `json:"rows_approximate"`
	// TableRows maps each table to its row count in the dump, when the
	// driver knows it ("schema.table" for PostgreSQL, the bare name for
	// MySQL, whose dumps hold one database); verification compares a
	// restored copy against it.
	TableRows map[string]int64 `json:"table_rows,omitempty"`
	Extra     map[string]any   `json:"-"`
}

var metadataKeys = map[string]bool{"database_version": true, "tables_backed_up": true, "rows_approximate": true, "table_rows": true}

// MarshalJSON writes the named fields and Extra as one flat object.
func (md Metadata) MarshalJSON() ([]byte, error) {
	out := make(map[string]any, len(md.Extra)+3)
	for k, v := range md.Extra {
		if !metadataKeys[k] {
			out[k] = v
		}
	}
	if md.DatabaseVersion != "" {
		out["database_version"] = md.DatabaseVersion
	}
	out["tables_backed_up"] = md.TablesBackedUp
	out["rows_approximate"] = md.RowsApproximate
	if len(md.TableRows) > 0 {
		out["table_rows"] = md.TableRows
	}
	return json.Marshal(out)
}

// UnmarshalJSON reads the named fields and keeps the other keys in Extra.
func (md *Metadata) UnmarshalJSON(b []byte) error {
	type named Metadata
	var n named
	if err := json.Unmarshal(b, &n); err != nil {
		return err
	}
	var all map[string]any
	if err := json.Unmarshal(b, &all); err != nil {
		return err
	}
	*md = Metadata(n)
	md.Extra = nil
	for k, v := range all {
		if !metadataKeys[k] {
			if md.Extra == nil {
				md.Extra = make(map[string]any)
			}
			md.Extra[k] = v
		}
	}
	return nil
}

// Marshal encodes m as indented JSON, after validating it.
func (m *Manifest) Marshal() ([]byte, error) {
	if err := m.Validate(); err != nil {
		return nil, err
	}
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode manifest: %w", err)
	}
	return append(b, '\n'), nil
}

// Parse decodes and validates a manifest.json. Unknown fields are ignored so
// newer writers stay readable; a missing or inconsistent field is an error
// matching ErrInvalidManifest.
func Parse(data []byte) (*Manifest, error) {
	var m Manifest
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("%w: decode manifest.json: %v", ErrInvalidManifest, err)
	}
	if err := m.Validate(); err != nil {
		return nil, err
	}
	return &m, nil
}

// FileBase is the name of the backup file (or the base of its part
// names): BaseName, and ".age" when it is encrypted.
func (m *Manifest) FileBase() (string, error) {
	base, err := BaseName(m.DatasourceType, m.Compression)
	if err == nil && m.Encryption != nil {
		base += "." + AgeFormat
	}
	return base, err
}

// Validate checks that m is complete and self-consistent: a known version,
// type and compression, a sha256 checksum, chunks numbered from 1 whose file
// names follow the naming rules and whose sizes add up.
func (m *Manifest) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalidManifest, fmt.Sprintf(format, args...))
	}
	if !strings.HasPrefix(m.Version, "1.") {
		return bad("version %q: this DataGuardian reads version 1.x manifests", m.Version)
	}
	base, err := m.FileBase()
	if err != nil {
		return bad("%v", err)
	}
	if e := m.Encryption; e != nil && (e.Format != AgeFormat || (len(e.Recipients) == 0) == !e.Passphrase) {
		return bad("encryption: format %q with %d recipients and passphrase %v: this DataGuardian reads age, to public keys or with a passphrase",
			e.Format, len(e.Recipients), e.Passphrase)
	}
	if err := checkSum(m.Checksum); err != nil {
		return bad("checksum: %v", err)
	}
	if len(m.Chunks) == 0 {
		return bad("chunks: a manifest lists at least one part")
	}
	if m.TotalSizeBytes < 0 || m.CompressedSizeBytes < 0 {
		return bad("sizes must not be negative")
	}
	var sum int64
	for i, c := range m.Chunks {
		want := base
		if len(m.Chunks) > 1 {
			want = PartName(base, i+1)
		}
		if c.Number != i+1 || c.File != want {
			return bad("chunk %d: expected number %d named %q, found number %d named %q", i+1, i+1, want, c.Number, c.File)
		}
		if err := checkSum(c.Checksum); err != nil {
			return bad("chunk %d checksum: %v", c.Number, err)
		}
		if c.SizeBytes < 0 {
			return bad("chunk %d: negative size", c.Number)
		}
		sum += c.SizeBytes
	}
	if sum != m.CompressedSizeBytes {
		return bad("chunk sizes add up to %d bytes but compressed_size_bytes is %d", sum, m.CompressedSizeBytes)
	}
	return nil
}

func checkSum(s string) error {
	h, ok := strings.CutPrefix(s, "sha256:")
	if !ok {
		return fmt.Errorf("%q does not start with \"sha256:\"", s)
	}
	if len(h) != 64 {
		return fmt.Errorf("%q is not 64 hex digits", s)
	}
	if _, err := hex.DecodeString(h); err != nil {
		return fmt.Errorf("%q is not hex", s)
	}
	return nil
}

func formatSum(sum []byte) string { return "sha256:" + hex.EncodeToString(sum) }
