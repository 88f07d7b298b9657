package index

import "math"

// LookupPosition returns the greatest entry whose position is <= pos: the
// last indexed batch boundary at or before a byte position, which lets a
// reader find where max_bytes ends without reading the batches in between.
// With no such entry it returns (BaseOffset(), 0).
func (x *Offsets) LookupPosition(pos int64) (entryOffset, position int64) {
	if pos < 0 {
		return x.base, 0
	}
	key := uint64(pos) + 1
	if pos > math.MaxUint32 {
		key = math.MaxUint32 + 1
	}
	i := searchU32(x.buf, OffsetEntrySize, 4, x.Len(), key)
	if i == 0 {
		return x.base, 0
	}
	rel, p := x.entry(i - 1)
	return x.base + int64(rel), int64(p)
}
