package manifest

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// FileName is the name of the manifest inside a run folder.
const FileName = "manifest.json"

// RunFolderLayout is the time layout of a run folder name (UTC).
const RunFolderLayout = "2006-01-02_150405"

// ErrUnknownType reports a datasource type with no file format.
var ErrUnknownType = errors.New("unknown datasource type")

var formats = map[string]string{
	"postgres":  "dump",
	"mysql":     "sql",
	"mariadb":   "sql",
	"mongodb":   "archive",
	"sqlserver": "bacpac",
	"sqlite":    "db",
	"files":     "tar",
}

// FormatFor returns the base file format of a datasource type: "dump" for
// postgres, "sql" for mysql and mariadb, "archive" for mongodb, "bacpac" for
// sqlserver, "db" for sqlite and "tar" for files.
func FormatFor(datasourceType string) (string, error) {
	f, ok := formats[datasourceType]
	if !ok {
		return "", fmt.Errorf("%w %q: use postgres, mysql, mariadb, mongodb, sqlserver, sqlite or files", ErrUnknownType, datasourceType)
	}
	return f, nil
}

// BaseName returns the name of an unsplit backup file, such as
// "backup.dump.gz" for postgres with gzip or "backup.tar" for files without
// compression. SQL Server backups allow only gzip or none.
func BaseName(datasourceType string, c Compression) (string, error) {
	f, err := FormatFor(datasourceType)
	if err != nil {
		return "", err
	}
	if err := c.validate(); err != nil {
		return "", err
	}
	if datasourceType == "sqlserver" && c != Gzip && c != None {
		return "", fmt.Errorf("%w %q for sqlserver: bacpac backups support only gzip or none", ErrUnknownCompression, c)
	}
	name := "backup." + f
	if ext := c.Extension(); ext != "" {
		name += "." + ext
	}
	return name, nil
}

// PartName returns the name of part n (from 1) of a split backup:
// PartName("backup.dump.gz", 1) is "backup.dump.gz.part-001".
func PartName(base string, n int) string {
	return fmt.Sprintf("%s.part-%03d", base, n)
}

// RunFolder returns the run folder name for t, in UTC: "2025-02-13_060001".
func RunFolder(t time.Time) string {
	return t.UTC().Format(RunFolderLayout)
}

var partSuffix = regexp.MustCompile(`\.part-(\d{3,})$`)

// ParsePartName splits a part file name into its base name and number. An
// unsplit file name returns number 0.
func ParsePartName(name string) (base string, n int, err error) {
	m := partSuffix.FindStringSubmatch(name)
	if m == nil {
		return name, 0, nil
	}
	n, err = strconv.Atoi(m[1])
	if err != nil || n < 1 {
		return "", 0, fmt.Errorf("part name %q: part numbers start at 001", name)
	}
	return strings.TrimSuffix(name, m[0]), n, nil
}
