package index

import (
	"encoding/binary"
	"fmt"
	"math"
)

// Offsets is the offset index of one segment: a sparse map from offsets to
// the byte position of the batch holding them in the segment's .log.
// Entries are strictly increasing in both offset and position.
//
// Its memory is the file encoding itself: a header and 8-byte entries.
type Offsets struct {
	base int64
	// buf is the header followed by the entries, exactly as on disk.
	// len(buf) >= HeaderSize and (len(buf)-HeaderSize)%OffsetEntrySize == 0.
	buf []byte
}

// NewOffsets returns an empty offset index for the segment whose first
// offset is baseOffset.
func NewOffsets(baseOffset int64) *Offsets {
	return &Offsets{base: baseOffset, buf: newFile(offsetsMagic, baseOffset)}
}

// DecodeOffsets decodes a whole offset index file. path is used only in
// errors. It checks the header (magic, version, flags, base offset), that
// the file ends on an entry boundary, and that entries strictly increase in
// both fields; any failure is a *CorruptError.
//
// The returned index keeps file as its memory, so the caller must not
// modify file afterwards. The index never writes into file: its capacity is
// clipped, so the first Append copies. That makes read-only memory, such as
// a mapped file, safe to pass.
func DecodeOffsets(path string, baseOffset int64, file []byte) (*Offsets, error) {
	if err := checkHeader(path, offsetsMagic, baseOffset, file); err != nil {
		return nil, err
	}
	n := (len(file) - HeaderSize) / OffsetEntrySize
	var lastRel, lastPos uint32
	for i := range n {
		at := HeaderSize + i*OffsetEntrySize
		rel := binary.BigEndian.Uint32(file[at:])
		pos := binary.BigEndian.Uint32(file[at+4:])
		if !checkAbsolute(baseOffset, rel) {
			return nil, corrupt(path, at, "relative offset %d overflows int64 past base offset %d", rel, baseOffset)
		}
		if i > 0 && rel <= lastRel {
			return nil, corrupt(path, at, "entry %d: relative offset %d does not follow %d", i, rel, lastRel)
		}
		if i > 0 && pos <= lastPos {
			return nil, corrupt(path, at, "entry %d: position %d does not follow %d", i, pos, lastPos)
		}
		lastRel, lastPos = rel, pos
	}
	if tail := (len(file) - HeaderSize) % OffsetEntrySize; tail != 0 {
		at := HeaderSize + n*OffsetEntrySize
		return nil, corrupt(path, at, "torn entry: %d of %d bytes", tail, OffsetEntrySize)
	}
	return &Offsets{base: baseOffset, buf: file[:len(file):len(file)]}, nil
}

// BaseOffset returns the segment's base offset.
func (x *Offsets) BaseOffset() int64 { return x.base }

// Len returns the number of entries.
func (x *Offsets) Len() int { return (len(x.buf) - HeaderSize) / OffsetEntrySize }

// entry returns entry i as stored.
func (x *Offsets) entry(i int) (rel, pos uint32) {
	at := HeaderSize + i*OffsetEntrySize
	return binary.BigEndian.Uint32(x.buf[at:]), binary.BigEndian.Uint32(x.buf[at+4:])
}

// Append adds an entry mapping offset to position. Both must be greater
// than the last entry's (ErrNotIncreasing); offset-BaseOffset() and position
// must fit a uint32 (ErrRelativeOverflow, meaning the segment must roll).
// On error the index is unchanged.
func (x *Offsets) Append(offset, position int64) error {
	rel, err := relative(x.base, offset)
	if err != nil {
		return err
	}
	if position < 0 || position > math.MaxUint32 {
		return fmt.Errorf("%w: position %d does not fit uint32", ErrRelativeOverflow, position)
	}
	if n := x.Len(); n > 0 {
		lastRel, lastPos := x.entry(n - 1)
		if rel <= lastRel {
			return fmt.Errorf("%w: offset %d after %d", ErrNotIncreasing, offset, x.base+int64(lastRel))
		}
		if uint32(position) <= lastPos {
			return fmt.Errorf("%w: position %d after %d", ErrNotIncreasing, position, lastPos)
		}
	}
	x.buf = binary.BigEndian.AppendUint32(x.buf, rel)
	x.buf = binary.BigEndian.AppendUint32(x.buf, uint32(position))
	return nil
}

// Lookup returns the greatest entry whose offset is <= offset: the batch at
// position is where a scan for offset starts. With no such entry it returns
// (BaseOffset(), 0), the start of the segment.
func (x *Offsets) Lookup(offset int64) (entryOffset, position int64) {
	if offset < x.base {
		return x.base, 0
	}
	// i is the first entry past offset; the answer is the one before it.
	i := searchU32(x.buf, OffsetEntrySize, 0, x.Len(), relativeClamped(x.base, offset)+1)
	if i == 0 {
		return x.base, 0
	}
	rel, pos := x.entry(i - 1)
	return x.base + int64(rel), int64(pos)
}

// Last returns the last entry; ok is false if the index is empty.
func (x *Offsets) Last() (offset, position int64, ok bool) {
	n := x.Len()
	if n == 0 {
		return 0, 0, false
	}
	rel, pos := x.entry(n - 1)
	return x.base + int64(rel), int64(pos), true
}

// TruncateFrom drops every entry whose offset is >= offset, as when the log
// is truncated to end before offset.
func (x *Offsets) TruncateFrom(offset int64) {
	x.truncate(searchU32(x.buf, OffsetEntrySize, 0, x.Len(), relativeClamped(x.base, offset)))
}

// TruncateFromPosition drops every entry whose position is >= pos, as when
// the .log is truncated to pos bytes (for example after a torn write).
func (x *Offsets) TruncateFromPosition(pos int64) {
	var key uint64
	switch {
	case pos <= 0:
		key = 0
	case pos > math.MaxUint32:
		key = math.MaxUint32 + 1
	default:
		key = uint64(pos)
	}
	x.truncate(searchU32(x.buf, OffsetEntrySize, 4, x.Len(), key))
}

// truncate keeps the first n entries. It only reslices: bytes a caller got
// from an earlier FileBytes may be overwritten by later Appends.
func (x *Offsets) truncate(n int) {
	x.buf = x.buf[:HeaderSize+n*OffsetEntrySize]
}

// FileBytes returns the header and entries exactly as they belong on disk.
// A writer that has written w bytes appends FileBytes()[w:]; after a
// truncation it truncates the file to len(FileBytes()). The slice is valid
// until the next mutation and must not be modified.
func (x *Offsets) FileBytes() []byte { return x.buf }

// memBytes is the memory the index holds, for the cache's accounting.
func (x *Offsets) memBytes() int64 { return int64(cap(x.buf)) }
