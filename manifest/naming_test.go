package manifest

import (
	"errors"
	"testing"
	"time"
)

// The extension table of spec §3, row by row.
func TestBaseNameSpecTable(t *testing.T) {
	table := map[string][5]string{ // gzip, zstd, lz4, none
		"postgres":  {"backup.dump.gz", "backup.dump.zst", "backup.dump.lz4", "backup.dump"},
		"mysql":     {"backup.sql.gz", "backup.sql.zst", "backup.sql.lz4", "backup.sql"},
		"mariadb":   {"backup.sql.gz", "backup.sql.zst", "backup.sql.lz4", "backup.sql"},
		"mongodb":   {"backup.archive.gz", "backup.archive.zst", "backup.archive.lz4", "backup.archive"},
		"sqlserver": {"backup.bacpac.gz", "", "", "backup.bacpac"},
		"sqlite":    {"backup.db.gz", "backup.db.zst", "backup.db.lz4", "backup.db"},
		"files":     {"backup.tar.gz", "backup.tar.zst", "backup.tar.lz4", "backup.tar"},
	}
	for typ, want := range table {
		for i, c := range []Compression{Gzip, Zstd, LZ4, None} {
			got, err := BaseName(typ, c)
			if want[i] == "" {
				if !errors.Is(err, ErrUnknownCompression) {
					t.Errorf("BaseName(%s, %s) = %q, %v; want ErrUnknownCompression", typ, c, got, err)
				}
				continue
			}
			if err != nil || got != want[i] {
				t.Errorf("BaseName(%s, %s) = %q, %v; want %q", typ, c, got, err, want[i])
			}
		}
	}
	if _, err := BaseName("oracle", Gzip); !errors.Is(err, ErrUnknownType) {
		t.Errorf("unknown type: err = %v", err)
	}
	if _, err := BaseName("postgres", "bzip2"); !errors.Is(err, ErrUnknownCompression) {
		t.Errorf("unknown compression: err = %v", err)
	}
}

func TestPartAndFolderNames(t *testing.T) {
	if got := PartName("backup.dump.gz", 1); got != "backup.dump.gz.part-001" {
		t.Errorf("PartName = %q", got)
	}
	if got := PartName("backup.sql.zst", 1234); got != "backup.sql.zst.part-1234" {
		t.Errorf("PartName(1234) = %q", got)
	}
	base, n, err := ParsePartName("backup.dump.gz.part-003")
	if err != nil || base != "backup.dump.gz" || n != 3 {
		t.Errorf("ParsePartName = %q %d %v", base, n, err)
	}
	if _, n, _ := ParsePartName("backup.dump.gz"); n != 0 {
		t.Errorf("unsplit name has part number %d", n)
	}
	if _, _, err := ParsePartName("backup.dump.gz.part-000"); err == nil {
		t.Error("part-000 accepted")
	}
	sp := time.FixedZone("BRT", -3*3600)
	if got := RunFolder(time.Date(2025, 2, 13, 3, 0, 1, 0, sp)); got != "2025-02-13_060001" {
		t.Errorf("RunFolder = %q, want UTC 2025-02-13_060001", got)
	}
}

func TestParseCompression(t *testing.T) {
	for in, want := range map[string]Compression{"gzip": Gzip, "gz": Gzip, "zstd": Zstd, "zst": Zstd, "lz4": LZ4, "none": None, "": None} {
		if got, err := ParseCompression(in); err != nil || got != want {
			t.Errorf("ParseCompression(%q) = %q, %v", in, got, err)
		}
	}
	_, err := ParseCompression("brotli")
	if !errors.Is(err, ErrUnknownCompression) || !containsAll(err.Error(), "brotli", "gzip, zstd, lz4 or none") {
		t.Errorf("err = %v, want a message naming the value and the choices", err)
	}
}
