package mysql

import (
	"bytes"
	"maps"
	"testing"
)

const script = "/*M!999999\\- enable the sandbox mode */ \n-- MariaDB dump 10.19\n" +
	"/*!40101 SET NAMES utf8mb4 */;\n" +
	"DROP TABLE IF EXISTS `a``b`;\n" +
	"CREATE TABLE `a``b` (\n  `id` int(11) NOT NULL,\n  `s` text\n) ENGINE=InnoDB;\n" +
	"INSERT INTO `a``b` VALUES (1,'x),(y'),(2,'it\\'s \\\\'),(3,NULL),(4,'(('),(5,0x00FF28);\n" +
	"INSERT INTO `a``b` VALUES (6,'line\\nnext ''quoted'' );');\n" +
	"INSERT INTO `a``b` VALUES\n(7,'a;b'),\n(8,');\\n('),\n(9,NULL);\n" +
	"CREATE TABLE `empty` (\n  `id` int\n);\n" +
	"/*!50001 CREATE VIEW `v` AS SELECT 1 AS `x` */;\n" +
	"CREATE TABLE `cols` (\n  `a` int\n);\n" +
	"INSERT INTO `cols` (`a`, `VALUES`) VALUES (1,'a'),(2,'b');\n" +
	"INSERT INTO `émoji 😀` VALUES ('😀 (');\n" +
	"-- INSERT INTO `fake` VALUES (1);\n" +
	"-- Dump completed\n"

func TestRowCounter(t *testing.T) {
	want := map[string]int64{"a`b": 9, "empty": 0, "cols": 2, "émoji 😀": 1}
	wantTables := []string{"a`b", "empty", "cols", "émoji 😀"}
	// Every split of the script in two writes, then byte by byte.
	for cut := 0; cut <= len(script); cut++ {
		var out bytes.Buffer
		c := newRowCounter(&out)
		c.Write([]byte(script[:cut]))
		c.Write([]byte(script[cut:]))
		if out.String() != script {
			t.Fatalf("cut %d: output differs from input", cut)
		}
		if !maps.Equal(c.rows, want) || len(c.tables) != len(wantTables) || c.state != stHead || len(c.head) != 0 {
			t.Fatalf("cut %d: rows %v tables %q state %d, want %v %q", cut, c.rows, c.tables, c.state, want, wantTables)
		}
	}
	c := newRowCounter(&bytes.Buffer{})
	for i := range len(script) {
		c.Write([]byte{script[i]})
	}
	if !maps.Equal(c.rows, want) {
		t.Fatalf("byte by byte: rows %v, want %v", c.rows, want)
	}
}

func TestQuoteOption(t *testing.T) {
	for in, want := range map[string]string{
		"":                 `""`,
		"plain":            `"plain"`,
		`p'a"s$s;w&o|r d#`: `"p\'a\"s$s;w&o|r d#"`,
		"a\\b\n\t":         `"a\\b\n\t"`,
	} {
		if got := quoteOption(in); got != want {
			t.Errorf("quoteOption(%q) = %s, want %s", in, got, want)
		}
	}
}

func TestPrettyVersion(t *testing.T) {
	for raw, want := range map[string]string{
		"10.11.19-MariaDB-0+deb12u1": "MariaDB 10.11.19",
		"5.5.5-10.6.12-MariaDB-log":  "MariaDB 10.6.12",
		"8.0.36":                     "MySQL 8.0.36",
		"8.4.0-commercial":           "MySQL 8.4.0",
	} {
		if got := prettyVersion(raw); got != want {
			t.Errorf("prettyVersion(%q) = %q, want %q", raw, got, want)
		}
	}
}
