package index

import (
	"encoding/binary"
	"fmt"
)

// Times is the time index of one segment: a sparse map from timestamps to
// offsets.
//
// An entry (timestamp, offset) means: offset is the base offset of the
// batch that raised the segment's running maximum timestamp to timestamp.
// So every batch before offset has a maximum timestamp below timestamp.
// Entries are strictly increasing in timestamp and non-decreasing in
// offset. Only new maxima are indexed: Append ignores a timestamp that is
// not greater than the last one.
//
// Its memory is the file encoding itself: a header and 12-byte entries.
type Times struct {
	base int64
	// buf is the header followed by the entries, exactly as on disk.
	buf []byte
}

// NewTimes returns an empty time index for the segment whose first offset
// is baseOffset.
func NewTimes(baseOffset int64) *Times {
	return &Times{base: baseOffset, buf: newFile(timesMagic, baseOffset)}
}

// DecodeTimes decodes a whole time index file, with the same checks and the
// same ownership of file as DecodeOffsets: timestamps must strictly
// increase and offsets must not decrease.
func DecodeTimes(path string, baseOffset int64, file []byte) (*Times, error) {
	if err := checkHeader(path, timesMagic, baseOffset, file); err != nil {
		return nil, err
	}
	n := (len(file) - HeaderSize) / TimeEntrySize
	var lastTS int64
	var lastRel uint32
	for i := range n {
		at := HeaderSize + i*TimeEntrySize
		ts := int64(binary.BigEndian.Uint64(file[at:]))
		rel := binary.BigEndian.Uint32(file[at+8:])
		if !checkAbsolute(baseOffset, rel) {
			return nil, corrupt(path, at, "relative offset %d overflows int64 past base offset %d", rel, baseOffset)
		}
		if i > 0 && ts <= lastTS {
			return nil, corrupt(path, at, "entry %d: timestamp %d does not follow %d", i, ts, lastTS)
		}
		if i > 0 && rel < lastRel {
			return nil, corrupt(path, at, "entry %d: relative offset %d is below %d", i, rel, lastRel)
		}
		lastTS, lastRel = ts, rel
	}
	if tail := (len(file) - HeaderSize) % TimeEntrySize; tail != 0 {
		at := HeaderSize + n*TimeEntrySize
		return nil, corrupt(path, at, "torn entry: %d of %d bytes", tail, TimeEntrySize)
	}
	return &Times{base: baseOffset, buf: file[:len(file):len(file)]}, nil
}

// BaseOffset returns the segment's base offset.
func (x *Times) BaseOffset() int64 { return x.base }

// Len returns the number of entries.
func (x *Times) Len() int { return (len(x.buf) - HeaderSize) / TimeEntrySize }

func (x *Times) entry(i int) (ts int64, rel uint32) {
	at := HeaderSize + i*TimeEntrySize
	return int64(binary.BigEndian.Uint64(x.buf[at:])), binary.BigEndian.Uint32(x.buf[at+8:])
}

// Append indexes timestamp at offset if timestamp is a new maximum; a
// timestamp not greater than the last entry's is ignored and returns nil.
// offset must be the base offset of the batch that raised the maximum (see
// Times), must not be below the last entry's (ErrNotIncreasing), and
// offset-BaseOffset() must fit a uint32 (ErrRelativeOverflow). On error the
// index is unchanged.
func (x *Times) Append(timestamp, offset int64) error {
	n := x.Len()
	var lastTS int64
	var lastRel uint32
	if n > 0 {
		lastTS, lastRel = x.entry(n - 1)
		if timestamp <= lastTS {
			return nil
		}
	}
	rel, err := relative(x.base, offset)
	if err != nil {
		return err
	}
	if n > 0 && rel < lastRel {
		return fmt.Errorf("%w: offset %d after %d", ErrNotIncreasing, offset, x.base+int64(lastRel))
	}
	x.buf = binary.BigEndian.AppendUint64(x.buf, uint64(timestamp))
	x.buf = binary.BigEndian.AppendUint32(x.buf, rel)
	return nil
}

// search returns the first entry whose timestamp is >= timestamp, or Len().
func (x *Times) search(timestamp int64) int {
	lo, hi := 0, x.Len()
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		if int64(binary.BigEndian.Uint64(x.buf[HeaderSize+mid*TimeEntrySize:])) < timestamp {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	return lo
}

// Lookup returns the offset of the first entry whose timestamp is >=
// timestamp; ok is false if every entry is smaller (or there are none).
//
// If the segment indexed every batch that raised its maximum, offset is the
// base offset of the first batch holding a timestamp >= timestamp. If the
// index is sparser than that, a batch before offset may hold one too; use
// ScanStart for a bound that holds either way.
func (x *Times) Lookup(timestamp int64) (offset int64, ok bool) {
	i := x.search(timestamp)
	if i == x.Len() {
		return 0, false
	}
	_, rel := x.entry(i)
	return x.base + int64(rel), true
}

// ScanStart returns an offset at or before the first record whose
// timestamp is >= timestamp, however sparse the index: the offset of the
// last entry whose timestamp is below timestamp, or BaseOffset() if there is
// none. It is correct because every batch before an entry's offset has a
// maximum timestamp below that entry's timestamp.
func (x *Times) ScanStart(timestamp int64) int64 {
	i := x.search(timestamp)
	if i == 0 {
		return x.base
	}
	_, rel := x.entry(i - 1)
	return x.base + int64(rel)
}

// Last returns the last entry, whose timestamp is the segment's maximum so
// far; ok is false if the index is empty.
func (x *Times) Last() (timestamp, offset int64, ok bool) {
	n := x.Len()
	if n == 0 {
		return 0, 0, false
	}
	ts, rel := x.entry(n - 1)
	return ts, x.base + int64(rel), true
}

// TruncateFrom drops every entry whose offset is >= offset, as when the log
// is truncated to end before offset. If the segment indexed every batch
// that raised its maximum, Last's timestamp is then the running maximum of
// the batches that remain; with a sparser index the caller must recompute
// it from those batches, which may hold maxima that were never indexed.
func (x *Times) TruncateFrom(offset int64) {
	n := searchU32(x.buf, TimeEntrySize, 8, x.Len(), relativeClamped(x.base, offset))
	x.buf = x.buf[:HeaderSize+n*TimeEntrySize]
}

// FileBytes returns the header and entries exactly as they belong on disk,
// with the same contract as Offsets.FileBytes.
func (x *Times) FileBytes() []byte { return x.buf }

func (x *Times) memBytes() int64 { return int64(cap(x.buf)) }
