package manifest

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/dataguardian/dataguardian/storage"
)

// maxManifestSize bounds how much of a manifest.json is read.
const maxManifestSize = 64 << 20

// Load reads and validates dir/manifest.json from s. A run folder without a
// manifest gives an error matching ErrNoManifest: that backup never completed.
func Load(ctx context.Context, s storage.Storage, dir string) (*Manifest, error) {
	rc, err := s.Open(ctx, dir+"/"+FileName, 0, maxManifestSize+1)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, fmt.Errorf("load backup %s: %w: the backup is incomplete (it failed or is still running) and cannot be restored; choose a completed backup", dir, ErrNoManifest)
	}
	if err != nil {
		return nil, fmt.Errorf("load backup %s: %w", dir, err)
	}
	defer rc.Close()
	data, err := io.ReadAll(rc)
	if err != nil {
		return nil, fmt.Errorf("load backup %s: read manifest: %w", dir, err)
	}
	if len(data) > maxManifestSize {
		return nil, fmt.Errorf("load backup %s: %w: manifest.json is larger than %d bytes", dir, ErrInvalidManifest, maxManifestSize)
	}
	m, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("load backup %s: %w", dir, err)
	}
	return m, nil
}

// Verify checks that every part of the backup is present with the size and
// sha256 the manifest records, and that the whole stream matches the
// manifest checksum. When the folder holds a SHA256SUMS (older backups do
// not), it must list the same parts and sums, else the error matches
// ErrSumsMismatch. It reads every byte once and touches nothing else; run
// it before a restore so a corrupt backup never reaches the target.
func Verify(ctx context.Context, s storage.Storage, dir string, m *Manifest) error {
	for _, c := range m.Chunks {
		obj, err := s.Stat(ctx, dir+"/"+c.File)
		if errors.Is(err, storage.ErrNotFound) {
			return fmt.Errorf("verify backup %s: chunk %d: %w %s: copy it back from another storage or restore another backup", dir, c.Number, ErrMissingPart, c.File)
		}
		if err != nil {
			return fmt.Errorf("verify backup %s: %w", dir, err)
		}
		if obj.Size != c.SizeBytes {
			return sizeError(dir, c, obj.Size)
		}
	}
	pr := newPartsReader(ctx, s, dir, m)
	defer pr.Close()
	if _, err := io.Copy(io.Discard, pr); err != nil {
		return err
	}
	return checkSumsFile(ctx, s, dir, m)
}

// OpenStream returns the decompressed backup stream. It checks every part's
// size and sha256 as it goes and the whole checksum at the end, so a reader
// that consumes it to io.EOF has read verified data. Use Verify first to
// fail before the data reaches anything.
func OpenStream(ctx context.Context, s storage.Storage, dir string, m *Manifest, opts ...ReadOption) (io.ReadCloser, error) {
	var o readOptions
	for _, opt := range opts {
		opt(&o)
	}
	pr := newPartsReader(ctx, s, dir, m)
	var compressed io.Reader = pr
	if m.Encryption != nil {
		r, err := decryptFrom(pr, m.Encryption, o.identities)
		if err != nil {
			pr.Close()
			return nil, fmt.Errorf("open backup %s: %w", dir, err)
		}
		compressed = r
	}
	dr, err := NewDecompressor(compressed, m.Compression)
	if err != nil {
		pr.Close()
		if errors.Is(err, ErrChecksumMismatch) || errors.Is(err, ErrSizeMismatch) || errors.Is(err, ErrMissingPart) {
			return nil, err
		}
		return nil, fmt.Errorf("open backup %s: %w", dir, err)
	}
	return &stream{dec: dr, parts: pr, closers: []io.Closer{dr, pr}}, nil
}

// stream is the decompressed backup. A damaged part usually trips the
// decompressor's own check before the part's sha256 is computed; the parts
// are then read on to name the damage (ErrChecksumMismatch and friends)
// rather than report a bare decompression error.
type stream struct {
	dec     io.Reader
	parts   *partsReader
	closers []io.Closer
}

func (s *stream) Read(p []byte) (int, error) {
	n, err := s.dec.Read(p)
	if err == nil || err == io.EOF || s.parts.err != nil && s.parts.err != io.EOF {
		return n, err
	}
	if _, perr := io.Copy(io.Discard, s.parts); perr != nil {
		return n, perr
	}
	return n, fmt.Errorf("decompress backup %s: %w", s.parts.dir, err)
}

func (s *stream) Close() error {
	var errs []error
	for _, c := range s.closers {
		errs = append(errs, c.Close())
	}
	return errors.Join(errs...)
}

func sizeError(dir string, c Chunk, got int64) error {
	what := "truncated"
	if got > c.SizeBytes {
		what = "longer than recorded"
	}
	return fmt.Errorf("verify backup %s: chunk %d %s: %w: %s (%d bytes, manifest says %d): the part is damaged; copy it back from another storage or restore another backup",
		dir, c.Number, c.File, ErrSizeMismatch, what, got, c.SizeBytes)
}

// partsReader concatenates the parts in order while checking each part's
// size and checksum, and the whole checksum at the end.
type partsReader struct {
	ctx  context.Context
	s    storage.Storage
	dir  string
	m    *Manifest
	i    int // index of the open part
	cur  io.ReadCloser
	read int64 // bytes read of the open part
	sums *streamHash
	err  error
}

func newPartsReader(ctx context.Context, s storage.Storage, dir string, m *Manifest) *partsReader {
	return &partsReader{ctx: ctx, s: s, dir: dir, m: m, i: -1, sums: newStreamHash()}
}

func (p *partsReader) Read(b []byte) (int, error) {
	for p.err == nil {
		if p.cur == nil {
			p.err = p.next()
			continue
		}
		n, err := p.cur.Read(b)
		p.read += int64(n)
		p.sums.Write(b[:n])
		c := p.m.Chunks[p.i]
		if p.read > c.SizeBytes {
			p.err = sizeError(p.dir, c, p.read)
			return 0, p.err
		}
		if err == io.EOF {
			p.err = p.endPart()
			err = nil
		} else if err != nil {
			p.err = fmt.Errorf("read backup %s: %s: %w", p.dir, c.File, err)
			return 0, p.err
		}
		if n > 0 {
			return n, nil
		}
	}
	return 0, p.err
}

func (p *partsReader) next() error {
	if err := p.ctx.Err(); err != nil {
		return err
	}
	p.i++
	if p.i == len(p.m.Chunks) {
		if got := p.sums.wholeSum(); got != p.m.Checksum {
			return fmt.Errorf("verify backup %s: whole stream: %w: manifest says %s, parts hash to %s: restore another backup", p.dir, ErrChecksumMismatch, p.m.Checksum, got)
		}
		return io.EOF
	}
	c := p.m.Chunks[p.i]
	rc, err := p.s.Open(p.ctx, p.dir+"/"+c.File, 0, -1)
	if errors.Is(err, storage.ErrNotFound) {
		return fmt.Errorf("verify backup %s: chunk %d: %w %s: copy it back from another storage or restore another backup", p.dir, c.Number, ErrMissingPart, c.File)
	}
	if err != nil {
		return fmt.Errorf("read backup %s: %w", p.dir, err)
	}
	p.cur, p.read = rc, 0
	p.sums.startPart()
	return nil
}

func (p *partsReader) endPart() error {
	c := p.m.Chunks[p.i]
	p.cur.Close()
	p.cur = nil
	if p.read != c.SizeBytes {
		return sizeError(p.dir, c, p.read)
	}
	if got := p.sums.partSum(); got != c.Checksum {
		return fmt.Errorf("verify backup %s: chunk %d %s: %w: manifest says %s, file hashes to %s: the part is corrupt; copy it back from another storage or restore another backup",
			p.dir, c.Number, c.File, ErrChecksumMismatch, c.Checksum, got)
	}
	return nil
}

func (p *partsReader) Close() error {
	if p.cur != nil {
		p.cur.Close()
		p.cur = nil
	}
	if p.err == nil {
		p.err = errors.New("backup stream closed")
	}
	return nil
}
