package mysql

import (
	"bytes"
	"fmt"
	"io"
	"regexp"
)

// A dump records the database's default character set and collation in a
// comment line of its own after the script's header, which Restore reads
// to create the database as it was; a client restoring by hand ignores it.
const notePrefix = "-- DataGuardian: database"

// noteRE reads the note.
var noteRE = regexp.MustCompile(`(?m)^-- DataGuardian: database CHARACTER SET ([A-Za-z0-9_]+) COLLATE ([A-Za-z0-9_]+)\r?$`)

// charsetNote is the note line for charset and collation.
func charsetNote(charset, collation string) []byte {
	return fmt.Appendf(nil, "%s CHARACTER SET %s COLLATE %s\n", notePrefix, charset, collation)
}

// readNote returns the character set and collation the note in head
// records, or "" when it has none.
func readNote(head []byte) (charset, collation string) {
	if m := noteRE.FindSubmatch(head); m != nil {
		return string(m[1]), string(m[2])
	}
	return "", ""
}

// noteWriter passes a dump script to w and adds note, a line of its own,
// after the script's header line ("-- MariaDB dump ..." or "-- MySQL
// dump ..."). It stops looking after headSize bytes without one.
type noteWriter struct {
	w    io.Writer
	note []byte
	line []byte // the start of the current line
	seen int
	done bool
}

func (n *noteWriter) Write(p []byte) (int, error) {
	if n.done || len(n.note) == 0 {
		return n.w.Write(p)
	}
	for i, b := range p {
		n.seen++
		if b != '\n' {
			if len(n.line) < 32 {
				n.line = append(n.line, b)
			}
			if n.seen >= headSize {
				n.done = true
				break
			}
			continue
		}
		if !bytes.HasPrefix(n.line, []byte("-- MariaDB dump")) && !bytes.HasPrefix(n.line, []byte("-- MySQL dump")) {
			n.line = n.line[:0]
			continue
		}
		n.done = true
		k, err := n.w.Write(p[:i+1])
		if err != nil {
			return k, err
		}
		if _, err := n.w.Write(n.note); err != nil {
			return k, err
		}
		m, err := n.w.Write(p[i+1:])
		return k + m, err
	}
	return n.w.Write(p)
}
