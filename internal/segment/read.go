package segment

import (
	"errors"
	"fmt"

	"github.com/sluice-io/sluice/internal/batch"
	"github.com/sluice-io/sluice/internal/index"
	"github.com/sluice-io/sluice/internal/vfs"
)

// headerPrefix is how much of a batch header locating reads need: base
// offset, length, leader epoch, magic, CRC, attributes, lastOffsetDelta.
const headerPrefix = 27

// maxScanBatchBytes bounds a single batch during scans, so a corrupt length
// cannot make recovery allocate without limit.
const maxScanBatchBytes = 256 << 20

// Env is what reads of sealed segments share across a broker: the
// descriptor cache, and the index cache (the hot tier of sealed segments'
// indexes; the index files are the cold tier, read on demand).
type Env struct {
	Files   *FileCache
	Indexes *index.Cache
}

// IndexKey names the segment's indexes in the index cache.
func (s *Segment) IndexKey() index.Key { return index.Key{Dir: s.dir, BaseOffset: s.base} }

// Range is a byte range of whole batches in a segment's log file. The
// caller owns a reference on Handle and must Release it.
type Range struct {
	Handle *Handle
	Pos    int64
	Len    int64
	// First and Last are the first offset of the first batch and the last
	// offset of the last batch in the range.
	First, Last int64
}

// Indexes returns the segment's indexes, loading them from their files (or
// rebuilding them from the log when the files are missing or corrupt) for a
// sealed segment.
func (s *Segment) Indexes(env *Env) (*index.Offsets, *index.Times, error) {
	if s.offsets != nil {
		return s.offsets, s.times, nil
	}
	key := s.IndexKey()
	if o, t, ok := env.Indexes.Get(key); ok {
		return o, t, nil
	}
	o, t, err := s.loadIndexFiles()
	if err != nil {
		h, herr := s.acquireLog(env.Files)
		if herr != nil {
			return nil, nil, herr
		}
		o, t, err = s.rebuildIndexes(h.File())
		h.Release()
		if err != nil {
			return nil, nil, err
		}
	}
	env.Indexes.Put(key, o, t)
	return o, t, nil
}

func (s *Segment) loadIndexFiles() (*index.Offsets, *index.Times, error) {
	ob, err := vfs.ReadFile(s.fs, s.Path(IndexSuffix), 0)
	if err != nil {
		return nil, nil, err
	}
	o, err := index.DecodeOffsets(s.Path(IndexSuffix), s.base, ob)
	if err != nil {
		return nil, nil, err
	}
	tb, err := vfs.ReadFile(s.fs, s.Path(TimeIndexSuffix), 0)
	if err != nil {
		return nil, nil, err
	}
	t, err := index.DecodeTimes(s.Path(TimeIndexSuffix), s.base, tb)
	if err != nil {
		return nil, nil, err
	}
	return o, t, nil
}

// rebuildIndexes scans a sealed segment's log and rewrites its index files.
func (s *Segment) rebuildIndexes(f vfs.File) (*index.Offsets, *index.Times, error) {
	tmp := newSegment(s.fs, s.dir, s.base, s.opts)
	tmp.offsets, tmp.times = index.NewOffsets(s.base), index.NewTimes(s.base)
	end, err := tmp.scan(f, 0, s.size, s.base, false)
	if err != nil {
		return nil, nil, err
	}
	if end != s.size {
		return nil, nil, &CorruptError{Path: s.Path(LogSuffix), Offset: end, Err: errors.New("sealed segment does not parse to its end")}
	}
	// Best effort: a failure to persist the rebuilt index only costs a
	// rebuild next time.
	_ = tmp.writeIndexes()
	return tmp.offsets, tmp.times, nil
}

// Read returns whole batches starting with the one that holds offset, at
// most maxBytes of them unless the first batch alone is larger (a fetch
// always makes progress), never reading at or past limit (the size
// published to readers).
func (s *Segment) Read(env *Env, offset, maxBytes, limit int64) (Range, error) {
	if offset >= s.next || limit <= 0 {
		return Range{}, nil
	}
	o, _, err := s.Indexes(env)
	if err != nil {
		return Range{}, err
	}
	h, err := s.acquireLog(env.Files)
	if err != nil {
		return Range{}, err
	}
	_, pos := o.Lookup(offset)
	start, first, err := s.seek(h.File(), pos, offset, limit)
	if err != nil {
		h.Release()
		return Range{}, err
	}
	if start >= limit {
		h.Release()
		return Range{}, nil
	}
	end, last, err := s.extent(h.File(), o, start, maxBytes, limit)
	if err != nil {
		h.Release()
		return Range{}, err
	}
	return Range{Handle: h, Pos: start, Len: end - start, First: first, Last: last}, nil
}

// Position returns the file position of the batch holding offset (its
// start), or limit when no batch below limit holds it. A read_committed
// fetch uses it to stop at the last stable offset, which is always a batch
// boundary.
func (s *Segment) Position(env *Env, offset, limit int64) (int64, error) {
	if offset >= s.next {
		return limit, nil
	}
	o, _, err := s.Indexes(env)
	if err != nil {
		return 0, err
	}
	h, err := s.acquireLog(env.Files)
	if err != nil {
		return 0, err
	}
	defer h.Release()
	_, pos := o.Lookup(offset)
	at, _, err := s.seek(h.File(), pos, offset, limit)
	return at, err
}

// seek scans batch headers from pos (a batch boundary) to the batch whose
// last offset is >= offset.
func (s *Segment) seek(f vfs.File, pos, offset, limit int64) (at, base int64, err error) {
	var hdr [headerPrefix]byte
	for pos < limit {
		if err := readFull(f, hdr[:], pos); err != nil {
			return 0, 0, s.corrupt(pos, err)
		}
		base, size, last := peek(hdr[:])
		if size <= 0 || pos+size > limit {
			return 0, 0, s.corrupt(pos, fmt.Errorf("batch length %d past the end %d", size, limit))
		}
		if last >= offset {
			return pos, base, nil
		}
		pos += size
	}
	return limit, 0, nil
}

// extent finds the end of the range of whole batches from start that fits
// in maxBytes (at least one batch) and stays below limit.
func (s *Segment) extent(f vfs.File, o *index.Offsets, start, maxBytes, limit int64) (end, last int64, err error) {
	want := start + maxBytes
	if want > limit || want < start {
		want = limit
	}
	// Jump with the index to the last indexed batch boundary that fits,
	// then walk headers from there.
	pos := start
	if _, p := o.LookupPosition(want); p > start {
		pos = p
	}
	var hdr [headerPrefix]byte
	last = -1
	for pos < limit {
		if err := readFull(f, hdr[:], pos); err != nil {
			return 0, 0, s.corrupt(pos, err)
		}
		_, size, l := peek(hdr[:])
		if size <= 0 || pos+size > limit {
			return 0, 0, s.corrupt(pos, fmt.Errorf("batch length %d past the end %d", size, limit))
		}
		if pos+size > want && pos > start {
			break
		}
		pos += size
		last = l
	}
	if last < 0 && pos > start {
		// The index jump landed past the only batch we walked; find
		// the last offset before pos by reading from start.
		last, err = s.lastOffsetBefore(f, start, pos)
	}
	return pos, last, err
}

func (s *Segment) lastOffsetBefore(f vfs.File, from, to int64) (int64, error) {
	var hdr [headerPrefix]byte
	last := int64(-1)
	for pos := from; pos < to; {
		if err := readFull(f, hdr[:], pos); err != nil {
			return 0, s.corrupt(pos, err)
		}
		_, size, l := peek(hdr[:])
		if size <= 0 {
			return 0, s.corrupt(pos, errors.New("zero batch length"))
		}
		pos += size
		last = l
	}
	return last, nil
}

// peek decodes the fields of a batch header prefix that locating needs.
func peek(b []byte) (base, size, last int64) {
	base = int64(be64(b[0:]))
	size = 12 + int64(int32(be32(b[8:])))
	last = base + int64(int32(be32(b[23:])))
	return base, size, last
}

func be32(b []byte) uint32 {
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}
func be64(b []byte) uint64 { return uint64(be32(b))<<32 | uint64(be32(b[4:])) }

func (s *Segment) corrupt(pos int64, err error) error {
	return &CorruptError{Path: s.Path(LogSuffix), Offset: pos, Err: err}
}

// FindTimestamp returns the base offset of the first batch whose max
// timestamp is at least ts.
func (s *Segment) FindTimestamp(env *Env, ts int64) (int64, bool, error) {
	_, t, err := s.Indexes(env)
	if err != nil {
		return 0, false, err
	}
	off, ok := t.Lookup(ts)
	return off, ok, nil
}

// LoadMaxTimestamp fills in the max timestamp of a lazily opened segment
// from its time index (retention needs it).
func (s *Segment) LoadMaxTimestamp(env *Env) (int64, error) {
	if s.maxTS >= 0 || s.size == 0 {
		return s.maxTS, nil
	}
	_, t, err := s.Indexes(env)
	if err != nil {
		return 0, err
	}
	if ts, _, ok := t.Last(); ok {
		s.maxTS = ts
	}
	return s.maxTS, nil
}

// ReadBatch reads the whole batch at pos.
func (s *Segment) ReadBatch(env *Env, pos int64) ([]byte, error) {
	h, err := s.acquireLog(env.Files)
	if err != nil {
		return nil, err
	}
	defer h.Release()
	var hdr [headerPrefix]byte
	if err := readFull(h.File(), hdr[:], pos); err != nil {
		return nil, s.corrupt(pos, err)
	}
	_, size, _ := peek(hdr[:])
	if size < batch.HeaderSize || size > maxScanBatchBytes || pos+size > s.size {
		return nil, s.corrupt(pos, fmt.Errorf("batch length %d", size))
	}
	b := make([]byte, size)
	if err := readFull(h.File(), b, pos); err != nil {
		return nil, s.corrupt(pos, err)
	}
	return b, nil
}

// PositionOf returns the byte position of the batch that holds offset: its
// Position within the whole log.
func (s *Segment) PositionOf(env *Env, offset int64) (int64, error) {
	return s.Position(env, offset, s.size)
}
