package manifest

import (
	"encoding/binary"
	"math/bits"
	"slices"
	"sync"
)

// The lz4 frames DataGuardian writes are those of the lz4 command-line
// tool at its default settings (level 1): independent blocks of at most 4
// MiB, a content checksum, no block checksums, no content size. Any lz4
// decoder reads them: `lz4 -d`, and pierrec/lz4's reader (NewDecompressor).
//
// Their blocks are compressed as the reference library's LZ4_compress_fast
// does at acceleration 1 (hashes of 5-byte sequences, a search that steps
// faster the longer it finds nothing), with a hash table of 8192 entries
// where the reference has 4096. Measured on 32 MiB of each data set (CPU
// time, single goroutine): a mariadb-dump of the realistic bench table
// 196 MB/s at a ratio of 0.711, against 145 MB/s and 0.707 for
// pierrec/lz4's block compressor (a 65536-entry table, which finds more of
// the short matches random-looking values hold and costs cache misses); a
// pg_dump -Fc -Z0 of it 225 MB/s and 0.720 against 151 MB/s and 0.710;
// synthetic SQL text (internal/sqltext) about the same speed, 0.290 against
// 0.280. The reference's 4096 entries are 10-15% faster still but 2-2.5%
// larger on the realistic sets and 7% on the synthetic one; 16384 entries
// cost 20% of the speed for ratios within 1% of pierrec/lz4's.
const (
	lz4Magic         = 0x184D2204
	lz4FrameFlags    = 0x64 // version 01, independent blocks, content checksum
	lz4FrameBD       = 0x70 // blocks of at most 4 MiB
	lz4MaxBlock      = 4 << 20
	lz4HashLog       = 13 // 8192 entries, 32 KiB
	lz4MinMatch      = 4
	lz4LastLiterals  = 5  // a block ends with at least 5 literals
	lz4MFLimit       = 12 // and its last match starts at least 12 bytes before its end
	lz4MaxDistance   = 65535
	lz4SkipTrigger   = 6
	lz4UncompressedB = 1 << 31 // block size flag: the block is stored as is
)

// lz4Table maps the hash of a 5-byte sequence to the last position it was
// seen at in the block being compressed.
type lz4Table [1 << lz4HashLog]uint32

var lz4Tables = sync.Pool{New: func() any { return new(lz4Table) }}

// lz4Header is the frame header: magic, FLG, BD and the header checksum
// (the second byte of the xxh32 of FLG and BD).
var lz4Header = func() []byte {
	h := binary.LittleEndian.AppendUint32(nil, lz4Magic)
	h = append(h, lz4FrameFlags, lz4FrameBD)
	return append(h, byte(xxh32(h[4:6])>>8))
}()

// appendLZ4Frame appends to dst one complete lz4 frame holding src.
func appendLZ4Frame(dst, src []byte) []byte {
	t := lz4Tables.Get().(*lz4Table)
	defer lz4Tables.Put(t)
	dst = append(dst, lz4Header...)
	for p := src; len(p) > 0; {
		block := p[:min(len(p), lz4MaxBlock)]
		p = p[len(block):]
		at := len(dst)
		dst = lz4CompressBlock(append(dst, 0, 0, 0, 0), block, t)
		n := uint32(len(dst) - at - 4)
		if int(n) >= len(block) { // incompressible: store it as is
			dst = append(dst[:at+4], block...)
			n = uint32(len(block)) | lz4UncompressedB
		}
		binary.LittleEndian.PutUint32(dst[at:], n)
	}
	dst = append(dst, 0, 0, 0, 0) // end mark
	return binary.LittleEndian.AppendUint32(dst, xxh32(src))
}

func lz4Hash(seq uint64) uint32 {
	const prime5bytes = 889523592379
	return uint32(((seq << 24) * prime5bytes) >> (64 - lz4HashLog))
}

func le32(b []byte, i int) uint32 { return binary.LittleEndian.Uint32(b[i:]) }
func le64(b []byte, i int) uint64 { return binary.LittleEndian.Uint64(b[i:]) }

// lz4CompressBound is the largest size of the block of n bytes.
func lz4CompressBound(n int) int { return n + n/255 + 16 }

// lz4CompressBlock appends to dst the lz4 block (a sequence of literals
// and matches, without size) of src, at most lz4MaxBlock bytes, using t as
// its hash table.
func lz4CompressBlock(dst, src []byte, t *lz4Table) []byte {
	*t = lz4Table{}
	start := len(dst)
	dst = slices.Grow(dst, lz4CompressBound(len(src)))
	out := dst[start : start+lz4CompressBound(len(src))]
	n, di, anchor := len(src), 0, 0

	if n >= lz4MFLimit+1 {
		mflimitPlusOne := n - lz4MFLimit + 1 // matches start before this
		matchLimit := n - lz4LastLiterals    // and end before this
		t[lz4Hash(le64(src, 0))] = 0
		ip := 1
		forwardH := lz4Hash(le64(src, ip))
	search:
		for {
			var match int
			var ok bool
			ip, match, forwardH, ok = lz4Search(src, t, ip, forwardH, mflimitPlusOne)
			if !ok {
				break
			}
			// Extend the match backwards over the pending literals.
			for ip > anchor && match > 0 && src[ip-1] == src[match-1] {
				ip--
				match--
			}
			token := di
			out[token] = 0
			di = lz4Length(out, di+1, ip-anchor, &out[token], 4)
			di += copy(out[di:], src[anchor:ip])
			for {
				off := ip - match
				out[di], out[di+1] = byte(off), byte(off>>8)
				ip += lz4MinMatch
				ml := lz4Count(src, ip, match+lz4MinMatch, matchLimit)
				ip += ml
				di = lz4Length(out, di+2, ml, &out[token], 0)
				anchor = ip
				if ip >= mflimitPlusOne {
					break search
				}
				t[lz4Hash(le64(src, ip-2))] = uint32(ip - 2)
				// A match right here needs no literals: take it.
				h := lz4Hash(le64(src, ip))
				match = int(t[h])
				t[h] = uint32(ip)
				if match+lz4MaxDistance < ip || le32(src, match) != le32(src, ip) {
					break
				}
				token = di
				out[token] = 0
				di++
			}
			ip++
			forwardH = lz4Hash(le64(src, ip))
		}
	}
	token := di
	out[token] = 0
	di = lz4Length(out, di+1, n-anchor, &out[token], 4)
	di += copy(out[di:], src[anchor:])
	return dst[:start+di]
}

// lz4Search finds the next match from ip on, stepping faster the longer
// none is found, and returns its position, that of the earlier occurrence
// and the hash to search on with; ok is false when no match starts before
// mflimitPlusOne. forwardH is the hash of the sequence at ip. (A function
// of its own: the loop keeps its few variables in registers.)
func lz4Search(src []byte, t *lz4Table, ip int, forwardH uint32, mflimitPlusOne int) (at, match int, h uint32, ok bool) {
	forwardIP, step, searchMatchNb := ip, 1, 1<<lz4SkipTrigger
	for {
		h := forwardH
		ip = forwardIP
		forwardIP += step
		step = searchMatchNb >> lz4SkipTrigger
		searchMatchNb++
		if forwardIP > mflimitPlusOne {
			return ip, 0, 0, false
		}
		forwardH = lz4Hash(le64(src, forwardIP))
		match := int(t[h])
		t[h] = uint32(ip)
		if match+lz4MaxDistance >= ip && le32(src, match) == le32(src, ip) {
			return ip, match, forwardH, true
		}
	}
}

// lz4Length stores length l in the token's nibble at shift (4: literals,
// 0: match), and its remainder from 15 on in bytes of 255 and a last one
// from out[di] on, and returns the index after them.
func lz4Length(out []byte, di, l int, token *byte, shift uint) int {
	if l < 15 {
		*token |= byte(l << shift)
		return di
	}
	*token |= 15 << shift
	for l -= 15; l >= 255; l -= 255 {
		out[di] = 255
		di++
	}
	out[di] = byte(l)
	return di + 1
}

// lz4Count is how many bytes from src[i] on equal those from src[m] on
// (m < i), stopping at limit.
func lz4Count(src []byte, i, m, limit int) int {
	begin := i
	for i+8 <= limit {
		if x := le64(src, i) ^ le64(src, m); x != 0 {
			return i - begin + bits.TrailingZeros64(x)>>3
		}
		i, m = i+8, m+8
	}
	for i < limit && src[i] == src[m] {
		i, m = i+1, m+1
	}
	return i - begin
}

// xxh32 is the xxHash32 of b with seed 0, the lz4 frame checksum.
func xxh32(b []byte) uint32 {
	const (
		p1 uint32 = 2654435761
		p2 uint32 = 2246822519
		p3 uint32 = 3266489917
		p4 uint32 = 668265263
		p5 uint32 = 374761393
	)
	n := len(b)
	var h uint32
	if n >= 16 {
		v1, v2, v3, v4 := uint32(606290984), p2, uint32(0), uint32(1640531535) // p1+p2, p2, 0, -p1 (mod 2^32)
		for ; len(b) >= 16; b = b[16:] {
			v1 = bits.RotateLeft32(v1+binary.LittleEndian.Uint32(b)*p2, 13) * p1
			v2 = bits.RotateLeft32(v2+binary.LittleEndian.Uint32(b[4:])*p2, 13) * p1
			v3 = bits.RotateLeft32(v3+binary.LittleEndian.Uint32(b[8:])*p2, 13) * p1
			v4 = bits.RotateLeft32(v4+binary.LittleEndian.Uint32(b[12:])*p2, 13) * p1
		}
		h = bits.RotateLeft32(v1, 1) + bits.RotateLeft32(v2, 7) + bits.RotateLeft32(v3, 12) + bits.RotateLeft32(v4, 18)
	} else {
		h = p5
	}
	h += uint32(n)
	for ; len(b) >= 4; b = b[4:] {
		h = bits.RotateLeft32(h+binary.LittleEndian.Uint32(b)*p3, 17) * p4
	}
	for _, c := range b {
		h = bits.RotateLeft32(h+uint32(c)*p5, 11) * p1
	}
	h ^= h >> 15
	h *= p2
	h ^= h >> 13
	h *= p3
	h ^= h >> 16
	return h
}
