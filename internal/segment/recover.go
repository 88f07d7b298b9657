package segment

import (
	"errors"
	"fmt"
	"io"

	"github.com/sluice-io/sluice/internal/batch"
	"github.com/sluice-io/sluice/internal/index"
	"github.com/sluice-io/sluice/internal/vfs"
)

// scanChunkBytes is the read size of recovery scans.
const scanChunkBytes = 1 << 20

// scan validates batches in f from pos up to limit, adding them to the
// indexes, and returns the position after the last good batch. expect is
// the offset the batch at pos must start at. It stops, without error, at
// the first batch that is torn, fails its CRC (when verify is set) or does
// not continue the offsets: that is where a crash cut the log.
func (s *Segment) scan(f vfs.File, pos, limit, expect int64, verify bool) (int64, error) {
	buf := make([]byte, 0, scanChunkBytes)
	bufPos := pos // file position of buf[0]
	for pos < limit {
		// Make sure the header is in buf.
		if pos+batch.HeaderSize > bufPos+int64(len(buf)) {
			var err error
			buf, bufPos, err = fill(f, buf, pos, limit, batch.HeaderSize)
			if err != nil {
				return 0, err
			}
			if int64(len(buf)) < batch.HeaderSize {
				return pos, nil // torn header
			}
		}
		h, err := batch.ParseHeader(buf[pos-bufPos:])
		if err != nil || h.BaseOffset != expect {
			return pos, nil
		}
		size := int64(h.Size())
		if size > maxScanBatchBytes || pos+size > limit {
			return pos, nil
		}
		if pos+size > bufPos+int64(len(buf)) {
			buf, bufPos, err = fill(f, buf, pos, limit, int(size))
			if err != nil {
				return 0, err
			}
			if int64(len(buf)) < size {
				return pos, nil
			}
		}
		b := buf[pos-bufPos : pos-bufPos+size]
		if verify {
			if h, err = batch.Verify(b); err != nil {
				return pos, nil
			}
		}
		s.indexBatch(h, pos)
		pos += size
		expect = h.LastOffset() + 1
	}
	return pos, nil
}

// fill reads from pos into buf (reusing its storage) at least need bytes if
// the file has them, and up to a chunk.
func fill(f vfs.File, buf []byte, pos, limit int64, need int) ([]byte, int64, error) {
	n := scanChunkBytes
	if need > n {
		n = need
	}
	if rem := limit - pos; int64(n) > rem {
		n = int(rem)
	}
	if cap(buf) < n {
		buf = make([]byte, n)
	}
	buf = buf[:n]
	m, err := f.ReadAt(buf, pos)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, 0, fmt.Errorf("segment: read %s: %w", f.Name(), err)
	}
	return buf[:m], pos, nil
}

// Recover opens an existing segment to be appended to (or flushed, if it is
// not the last one), trusting the first trusted bytes of its log and the
// index entries below them, and validating everything after with CRCs. The
// log is truncated after the last good batch. It returns how many bytes
// were cut off.
func Recover(fsys vfs.FS, dir string, base, trusted int64, opts Options) (*Segment, int64, error) {
	s := newSegment(fsys, dir, base, opts)
	f, err := fsys.OpenRW(s.Path(LogSuffix))
	if err != nil {
		return nil, 0, fmt.Errorf("segment: recover: %w", err)
	}
	s.active = newHandle(f)
	size, err := f.Size()
	if err != nil {
		s.Close()
		return nil, 0, fmt.Errorf("segment: recover: %w", err)
	}
	if trusted > size {
		// The checkpoint says more was flushed than the file holds:
		// the file was damaged outside our control. Verify it all.
		trusted = 0
	}
	o, t, err := s.loadIndexFiles()
	if err != nil {
		o, t, trusted = index.NewOffsets(base), index.NewTimes(base), 0
	}
	// Restart indexing from the last entry inside the trusted prefix and
	// verify from there: at most an index interval is re-checked.
	from, pos := o.LookupPosition(trusted)
	if pos >= trusted && pos > 0 {
		from, pos = base, 0
	}
	o.TruncateFrom(from)
	t.TruncateFrom(from)
	s.offsets, s.times = o, t
	s.offsetsWritten, s.timesWritten = rewriteIndex, rewriteIndex
	if _, lastPos, ok := o.Last(); ok {
		s.lastIndexedPos = lastPos
	}
	if ts, _, ok := t.Last(); ok {
		s.maxTS = ts
	}
	s.next = from
	end, err := s.scan(f, pos, size, from, true)
	if err != nil {
		s.Close()
		return nil, 0, err
	}
	if end < size {
		if err := f.Truncate(end); err != nil {
			s.Close()
			return nil, 0, fmt.Errorf("segment: truncate torn tail of %s: %w", s.Path(LogSuffix), err)
		}
	}
	s.size, s.writebackFrom = end, end
	s.flushedSize = min(trusted, end)
	return s, size - end, nil
}

// TruncateTo removes every batch whose last offset is at or after offset,
// so the segment ends before the batch holding offset. The log file is
// truncated but not synced; the caller flushes.
func (s *Segment) TruncateTo(env *Env, offset int64) error {
	if offset >= s.next {
		return nil
	}
	if s.active == nil {
		// Truncating a sealed segment makes it writable again: the
		// partition turns it into the active one.
		f, err := s.fs.OpenRW(s.Path(LogSuffix))
		if err != nil {
			return fmt.Errorf("segment: truncate: %w", err)
		}
		env.Files.Evict(s.Path(LogSuffix))
		o, t, err := s.Indexes(env)
		if err != nil {
			_ = f.Close()
			return err
		}
		env.Indexes.Remove(s.IndexKey())
		s.active = newHandle(f)
		s.offsets, s.times = o, t
		s.offsetsWritten, s.timesWritten = rewriteIndex, rewriteIndex
	}
	s.state = Active
	pos := int64(0)
	base := s.base
	if offset > s.base {
		_, p := s.offsets.Lookup(offset)
		at, b, err := s.seek(s.active.f, p, offset, s.size)
		if err != nil {
			return err
		}
		pos, base = at, b
		if at >= s.size {
			return nil
		}
	}
	if err := s.active.f.Truncate(pos); err != nil {
		return fmt.Errorf("segment: truncate %s: %w", s.Path(LogSuffix), err)
	}
	s.offsets.TruncateFrom(base)
	s.times.TruncateFrom(base)
	s.offsetsWritten, s.timesWritten = rewriteIndex, rewriteIndex
	s.size, s.next, s.writebackFrom = pos, base, pos
	if s.flushedSize > pos {
		s.flushedSize = pos
	}
	s.maxTS, s.lastIndexedPos = -1, -1
	if ts, _, ok := s.times.Last(); ok {
		s.maxTS = ts
	}
	if _, p, ok := s.offsets.Last(); ok {
		s.lastIndexedPos = p
	}
	return nil
}
