package manifest

import (
	"crypto/sha256"
	"hash"
)

// streamHash computes the sha256 of every part of a stream cut into parts,
// and of the whole stream. The first part's bytes are the first bytes of
// the whole stream, so its sum is the whole hash's state at its end: only
// the later parts need a second hash, and an unsplit backup, the common
// case, is hashed once.
type streamHash struct {
	whole, part hash.Hash
	n           int // parts started
}

func newStreamHash() *streamHash { return &streamHash{whole: sha256.New(), part: sha256.New()} }

// startPart begins the next part.
func (h *streamHash) startPart() {
	h.n++
	if h.n > 1 {
		h.part.Reset()
	}
}

func (h *streamHash) Write(p []byte) {
	h.whole.Write(p)
	if h.n > 1 {
		h.part.Write(p)
	}
}

// partSum is the checksum of the part written since startPart.
func (h *streamHash) partSum() string {
	if h.n <= 1 {
		return formatSum(h.whole.Sum(nil))
	}
	return formatSum(h.part.Sum(nil))
}

// wholeSum is the checksum of everything written.
func (h *streamHash) wholeSum() string { return formatSum(h.whole.Sum(nil)) }
