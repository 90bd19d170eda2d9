package manifest

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

func sampleManifest() *Manifest {
	sum := "sha256:" + strings.Repeat("ab", 32)
	return &Manifest{
		Version: Version, CreatedAt: time.Date(2025, 2, 13, 6, 0, 1, 0, time.UTC),
		ExecutionID: "exec-1", JobID: "job-1", DatasourceType: "postgres", BackupType: "full",
		Compression: Gzip, TotalSizeBytes: 1000, CompressedSizeBytes: 350, CompressionRatio: 0.35,
		Checksum: sum,
		Chunks: []Chunk{
			{Number: 1, File: "backup.dump.gz.part-001", Checksum: sum, SizeBytes: 200},
			{Number: 2, File: "backup.dump.gz.part-002", Checksum: sum, SizeBytes: 150},
		},
		Metadata: Metadata{DatabaseVersion: "PostgreSQL 16.1", TablesBackedUp: 48, RowsApproximate: 4200000, Extra: map[string]any{"server": "db1"}},
	}
}

func TestManifestRoundTripAndFields(t *testing.T) {
	m := sampleManifest()
	data, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	// The exact field names of spec §3.
	var raw map[string]any
	if err := json.Unmarshal(data, &raw); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"version", "created_at", "execution_id", "job_id", "datasource_type", "backup_type", "compression",
		"total_size_bytes", "compressed_size_bytes", "compression_ratio", "checksum", "chunks", "metadata"} {
		if _, ok := raw[k]; !ok {
			t.Errorf("manifest.json lacks %q", k)
		}
	}
	md := raw["metadata"].(map[string]any)
	if md["database_version"] != "PostgreSQL 16.1" || md["tables_backed_up"] != 48.0 || md["server"] != "db1" {
		t.Errorf("metadata not flat: %v", md)
	}
	chunk := raw["chunks"].([]any)[0].(map[string]any)
	for _, k := range []string{"number", "file", "checksum", "size_bytes"} {
		if _, ok := chunk[k]; !ok {
			t.Errorf("chunk lacks %q", k)
		}
	}
	back, err := Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	if back.Metadata.Extra["server"] != "db1" || back.Metadata.RowsApproximate != 4200000 || !back.CreatedAt.Equal(m.CreatedAt) || len(back.Chunks) != 2 {
		t.Errorf("round trip lost data: %+v", back)
	}
}

func TestValidateRejects(t *testing.T) {
	cases := map[string]func(m *Manifest){
		"version":        func(m *Manifest) { m.Version = "2.0" },
		"checksum":       func(m *Manifest) { m.Checksum = "md5:abc" },
		"short checksum": func(m *Manifest) { m.Checksum = "sha256:abcd" },
		"no chunks":      func(m *Manifest) { m.Chunks = nil },
		"chunk number":   func(m *Manifest) { m.Chunks[1].Number = 3 },
		"chunk name":     func(m *Manifest) { m.Chunks[0].File = "../etc/passwd" },
		"unsplit suffix": func(m *Manifest) { m.Chunks = m.Chunks[:1]; m.CompressedSizeBytes = 200 },
		"sizes":          func(m *Manifest) { m.CompressedSizeBytes = 1 },
		"compression":    func(m *Manifest) { m.Compression = "rar" },
		"type":           func(m *Manifest) { m.DatasourceType = "excel" },
	}
	for name, mutate := range cases {
		m := sampleManifest()
		mutate(m)
		if err := m.Validate(); !errors.Is(err, ErrInvalidManifest) {
			t.Errorf("%s: Validate = %v, want ErrInvalidManifest", name, err)
		}
	}
}

func FuzzParse(f *testing.F) {
	data, _ := sampleManifest().Marshal()
	f.Add(data)
	f.Add([]byte(`{"version":"1.0","chunks":[{"number":1,"file":"../../x"}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := Parse(b)
		if err != nil {
			return
		}
		// Whatever parses must name only files inside its run folder.
		for _, c := range m.Chunks {
			if strings.ContainsAny(c.File, "/\\") || strings.HasPrefix(c.File, ".") {
				t.Fatalf("accepted chunk file %q", c.File)
			}
		}
		if _, err := m.Marshal(); err != nil {
			t.Fatalf("parsed manifest does not marshal: %v", err)
		}
	})
}

func containsAll(s string, subs ...string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}
