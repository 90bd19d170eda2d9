package proc

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"
)

var errEnd = errors.New("checksum mismatch at the end")

// endErrReader returns data, then err instead of io.EOF.
type endErrReader struct {
	r   io.Reader
	err error
}

func (e *endErrReader) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err == io.EOF {
		err = e.err
	}
	return n, err
}

func TestRunFeedPassesEverything(t *testing.T) {
	data := bytes.Repeat([]byte("0123456789abcdef"), 50_000) // 800 KB
	var out bytes.Buffer
	err := Cmd{Path: "cat", Stdout: &out}.RunFeed(context.Background(), bytes.NewReader(data))
	if err != nil || !bytes.Equal(out.Bytes(), data) {
		t.Fatalf("err %v, got %d bytes of %d", err, out.Len(), len(data))
	}
}

// The tool never sees the last HoldBack bytes of an input that fails at its
// end, so it cannot act on a complete input.
func TestRunFeedHoldsBackTheEnd(t *testing.T) {
	data := bytes.Repeat([]byte("x"), 3*HoldBack)
	var out bytes.Buffer
	err := Cmd{Path: "cat", Stdout: &out}.RunFeed(context.Background(), &endErrReader{bytes.NewReader(data), errEnd})
	if !errors.Is(err, errEnd) {
		t.Fatalf("err = %v", err)
	}
	if out.Len() > len(data)-HoldBack {
		t.Fatalf("the tool saw %d of %d bytes; the last %d must wait for EOF", out.Len(), len(data), HoldBack)
	}
}

// A tool that stops reading early succeeds only once the rest of its
// input has been read, and fails if that rest fails.
func TestRunFeedDrainsAfterTheTool(t *testing.T) {
	data := bytes.Repeat([]byte("y"), 4*HoldBack)
	r := bytes.NewReader(data)
	if err := (Cmd{Path: "head", Args: []string{"-c", "10"}}).RunFeed(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	if r.Len() != 0 {
		t.Fatalf("%d bytes left unread", r.Len())
	}
	err := Cmd{Path: "head", Args: []string{"-c", "10"}}.RunFeed(context.Background(), &endErrReader{bytes.NewReader(data), errEnd})
	if !errors.Is(err, errEnd) {
		t.Fatalf("err = %v", err)
	}
}

func TestRunFeedToolFailure(t *testing.T) {
	err := Cmd{Path: "sh", Args: []string{"-c", "head -c 5 >/dev/null; echo bad input >&2; exit 2"}}.RunFeed(context.Background(), strings.NewReader(strings.Repeat("z", 1<<20)))
	if !errors.Is(err, ErrToolFailed) || !strings.Contains(err.Error(), "bad input") {
		t.Fatalf("err = %v", err)
	}
}
