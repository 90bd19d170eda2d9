package mysql

import (
	"bytes"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"strings"
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

// sqlQuote quotes s as mariadb-dump does: backslash escapes for the quote,
// the backslash and the control characters.
func sqlQuote(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `'`, `\'`, "\n", `\n`, "\r", `\r`, "\x00", `\0`, "\x1a", `\Z`)
	return "'" + r.Replace(s) + "'"
}

// Random values full of quotes, backslashes, parentheses and semicolons,
// cut into random writes: every row is counted, once.
func TestRowCounterRandom(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	alphabet := []string{"a", "0", `\`, `\\`, "'", "''", "(", ")", ";", "),(", "\n", " ", "é"}
	for round := range 200 {
		var b strings.Builder
		b.WriteString("-- MariaDB dump 10.19\nCREATE TABLE `t` (\n  `a` text\n);\n")
		want := int64(0)
		for range 1 + rng.IntN(5) {
			b.WriteString("INSERT INTO `t` VALUES ")
			if rng.IntN(2) == 0 {
				b.WriteString("\n")
			}
			for j := range 1 + rng.IntN(20) {
				if j > 0 {
					b.WriteString(",")
				}
				var v strings.Builder
				for range rng.IntN(3 * len(alphabet)) {
					v.WriteString(alphabet[rng.IntN(len(alphabet))])
				}
				fmt.Fprintf(&b, "(%d,%s,0x%X,NULL)", j, sqlQuote(v.String()), j)
				want++
			}
			b.WriteString(";\n")
		}
		b.WriteString("-- Dump completed\n")
		s := b.String()
		var out bytes.Buffer
		c := newRowCounter(&out)
		for p := s; len(p) > 0; {
			k := min(len(p), 1+rng.IntN(64))
			c.Write([]byte(p[:k]))
			p = p[k:]
		}
		if out.String() != s || c.rows["t"] != want || c.state != stHead {
			t.Fatalf("round %d: %d rows counted, want %d (state %d)\n%s", round, c.rows["t"], want, c.state, s)
		}
	}
}

// dumpLines is n rows of the realistic table bench/mysql.sh dumps, in
// mariadb-dump's format (one tuple per line).
func dumpLines(n int) []byte {
	rng := rand.New(rand.NewPCG(1, 2))
	hex := func(k int) string {
		const digits = "0123456789abcdef"
		b := make([]byte, k)
		for i := range b {
			b[i] = digits[rng.IntN(16)]
		}
		return string(b)
	}
	var b bytes.Buffer
	b.WriteString("-- MariaDB dump 10.19\nCREATE TABLE `events` (\n  `id` bigint(20) NOT NULL\n);\nINSERT INTO `events` VALUES ")
	for i := range n {
		if i > 0 {
			b.WriteString(",\n")
		}
		note := "NULL"
		if i%3 == 0 {
			note = fmt.Sprintf("'customer asked about order %d'", i)
		}
		fmt.Fprintf(&b, "(%d,'2024-01-01 02:12:25','acct-%d','%s','%s',%d.%02d,'paid',%s)", i, i%50000, hex(64), hex(32), rng.IntN(10000), rng.IntN(100), note)
	}
	b.WriteString(";\n-- Dump completed\n")
	return b.Bytes()
}

// BenchmarkRowCounter measures the counter on the realistic rows, in the
// 32 KiB writes a pipe delivers.
func BenchmarkRowCounter(b *testing.B) {
	data := dumpLines(100000)
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		c := newRowCounter(io.Discard)
		for p := data; len(p) > 0; {
			k := min(len(p), 32<<10)
			c.Write(p[:k])
			p = p[k:]
		}
		if c.rows["events"] != 100000 {
			b.Fatalf("%d rows counted", c.rows["events"])
		}
	}
}
