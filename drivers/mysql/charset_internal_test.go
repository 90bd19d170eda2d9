package mysql

import (
	"bytes"
	"strings"
	"testing"
)

// The note lands on a line of its own after the header, whatever the
// write sizes, and readHead finds it behind the sandbox line.
func TestNoteWriter(t *testing.T) {
	script := sandboxLine + "\n-- MariaDB dump 10.19  Distrib 10.11.19-MariaDB\n--\n-- Host: x\nCREATE TABLE `t` (x int);\n"
	note := charsetNote("latin1", "latin1_swedish_ci")
	want := strings.Replace(script, "MariaDB\n", "MariaDB\n"+string(note), 1)
	for _, size := range []int{1, 7, len(script)} {
		var out bytes.Buffer
		nw := &noteWriter{w: &out, note: note}
		for s := script; s != ""; s = s[min(size, len(s)):] {
			if n, err := nw.Write([]byte(s[:min(size, len(s))])); err != nil || n != min(size, len(s)) {
				t.Fatalf("write: %d, %v", n, err)
			}
		}
		if out.String() != want {
			t.Fatalf("writes of %d: got\n%s\nwant\n%s", size, out.String(), want)
		}
		_, cs, err := readHead(t.Context(), &out)
		if err != nil || cs != (dbCharset{"latin1", "latin1_swedish_ci"}) {
			t.Fatalf("readHead: %+v, %v", cs, err)
		}
	}
}
