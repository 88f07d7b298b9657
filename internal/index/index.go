// Package index implements the sparse per-segment indexes: the offset index
// (offset -> byte position in the segment's .log) and the time index
// (timestamp -> offset), the equivalents of Kafka's .index and .timeindex.
//
// The indexes are in-memory structures whose memory is their exact file
// encoding (docs/format/index.md) and little else, because the indexes of
// thousands of segments may be cached at once. This package does no file
// I/O: the segment package appends FileBytes()[written:] to the file on
// disk, truncates the file to len(FileBytes()) after a truncation, and hands
// whole file contents to DecodeOffsets and DecodeTimes when it reopens a
// segment.
//
// Lookups are binary searches over the raw entry bytes and do not allocate.
//
// Concurrency: Offsets and Times are not safe for concurrent use while one
// goroutine mutates them (Append, Truncate*). Once no goroutine mutates an
// index, as for a sealed segment, any number of goroutines may call its
// read methods concurrently. Cache is safe for concurrent use.
package index

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strconv"
)

// Sizes of the encoded structures, in bytes.
const (
	HeaderSize      = 16
	OffsetEntrySize = 8
	TimeEntrySize   = 12
)

// version is the only format version this binary reads and writes. A file
// with a newer version was written by a newer binary; we refuse it rather
// than guess at its layout.
const version = 1

// Magics tell the two index kinds apart, so that a .timeindex renamed to
// .index (or handed to the wrong decoder) fails loudly.
const (
	offsetsMagic = "SLXO"
	timesMagic   = "SLXT"
)

// Header field positions.
const (
	magicAt   = 0
	versionAt = 4
	flagsAt   = 6
	baseAt    = 8
)

var (
	// ErrCorrupt matches every *CorruptError through errors.Is.
	ErrCorrupt = errors.New("index: corrupt")
	// ErrNotIncreasing is returned by Append when an entry does not advance
	// past the last one.
	ErrNotIncreasing = errors.New("index: entry not increasing")
	// ErrRelativeOverflow is returned by Append when an offset minus the
	// segment's base offset, or a byte position, does not fit the uint32
	// the entry stores. Either way the segment is full: roll a new one.
	ErrRelativeOverflow = errors.New("index: relative offset or position out of range")
)

// CorruptError reports an index file that cannot be decoded. Offset is the
// byte offset in the file of the structure (header field or entry) that is
// wrong or incomplete. The caller typically rebuilds the index from the log.
type CorruptError struct {
	Path   string
	Offset int64
	Reason string
}

func (e *CorruptError) Error() string {
	return "index: corrupt " + e.Path + " at byte " + strconv.FormatInt(e.Offset, 10) + ": " + e.Reason
}

// Is makes errors.Is(err, ErrCorrupt) true for every *CorruptError.
func (e *CorruptError) Is(target error) bool { return target == ErrCorrupt }

func corrupt(path string, off int, format string, args ...any) error {
	return &CorruptError{Path: path, Offset: int64(off), Reason: fmt.Sprintf(format, args...)}
}

// newFile returns a buffer holding only the header.
func newFile(magic string, baseOffset int64) []byte {
	b := make([]byte, HeaderSize, HeaderSize+16*OffsetEntrySize)
	copy(b[magicAt:], magic)
	binary.BigEndian.PutUint16(b[versionAt:], version)
	binary.BigEndian.PutUint16(b[flagsAt:], 0)
	binary.BigEndian.PutUint64(b[baseAt:], uint64(baseOffset))
	return b
}

// checkHeader validates the header of file. The entries are the caller's:
// it checks the whole ones first and a torn final one last, so that the
// error names the earliest bad byte.
func checkHeader(path, magic string, baseOffset int64, file []byte) error {
	if len(file) < HeaderSize {
		return corrupt(path, 0, "short header: %d bytes, want %d", len(file), HeaderSize)
	}
	if got := string(file[magicAt : magicAt+4]); got != magic {
		return corrupt(path, magicAt, "magic %q, want %q", got, magic)
	}
	if v := binary.BigEndian.Uint16(file[versionAt:]); v != version {
		if v > version {
			return corrupt(path, versionAt, "version %d is newer than the supported %d", v, version)
		}
		return corrupt(path, versionAt, "unknown version %d", v)
	}
	if f := binary.BigEndian.Uint16(file[flagsAt:]); f != 0 {
		return corrupt(path, flagsAt, "unknown flags %#04x", f)
	}
	if b := int64(binary.BigEndian.Uint64(file[baseAt:])); b != baseOffset {
		return corrupt(path, baseAt, "base offset %d, want %d (misplaced file?)", b, baseOffset)
	}
	return nil
}

// relative converts an absolute offset to the uint32 an entry stores.
func relative(baseOffset, offset int64) (uint32, error) {
	if offset < baseOffset {
		return 0, fmt.Errorf("%w: offset %d is below the base offset %d", ErrRelativeOverflow, offset, baseOffset)
	}
	// The difference of two int64s with offset >= baseOffset always fits a
	// uint64, so this cannot wrap.
	d := uint64(offset) - uint64(baseOffset)
	if d > math.MaxUint32 {
		return 0, fmt.Errorf("%w: offset %d is %d past the base offset %d", ErrRelativeOverflow, offset, d, baseOffset)
	}
	return uint32(d), nil
}

// relativeClamped converts offset to a search key over relative offsets:
// 0 for offsets at or below the base, MaxUint32+1 for offsets past any
// representable entry.
func relativeClamped(baseOffset, offset int64) uint64 {
	if offset <= baseOffset {
		return 0
	}
	d := uint64(offset) - uint64(baseOffset)
	if d > math.MaxUint32 {
		return math.MaxUint32 + 1
	}
	return d
}

// checkAbsolute reports whether baseOffset+rel is a valid int64, which a
// decoded entry must satisfy for Lookup to return it.
func checkAbsolute(baseOffset int64, rel uint32) bool {
	return baseOffset <= math.MaxInt64-int64(rel)
}

// searchU32 returns the first entry index i in [0, n) whose big-endian
// uint32 at HeaderSize+i*stride+field is >= target, or n. The values must be
// non-decreasing.
func searchU32(buf []byte, stride, field, n int, target uint64) int {
	lo, hi := 0, n
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		if uint64(binary.BigEndian.Uint32(buf[HeaderSize+mid*stride+field:])) < target {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	return lo
}
