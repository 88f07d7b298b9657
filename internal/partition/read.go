package partition

import (
	"errors"
	"fmt"
	"math"

	"github.com/sluice-io/sluice/internal/batch"
	"github.com/sluice-io/sluice/internal/segment"
)

// ReadResult is what a fetch of one partition gets.
type ReadResult struct {
	// Range holds whole batches starting with the one that holds the
	// requested offset; Range.Handle is nil when there is nothing to
	// read. The caller must call Release.
	Range    segment.Range
	LogStart int64
	End      int64 // high watermark
}

// Release drops the file reference a read holds.
func (r *ReadResult) Release() {
	if r.Range.Handle != nil {
		r.Range.Handle.Release()
		r.Range.Handle = nil
	}
}

// Read returns up to maxBytes of whole batches from offset (at least one
// batch if any is readable), below the end. Reading exactly at the end
// returns an empty result; outside [log start, end] is
// ErrOffsetOutOfRange.
func (p *Partition) Read(offset, maxBytes int64) (ReadResult, error) {
	return p.ReadUpTo(offset, maxBytes, math.MaxInt64)
}

// ReadUpTo is Read that also stops before upTo: a read_committed fetch
// passes the last stable offset, so no batch of an open transaction is
// returned. upTo must be a batch boundary (the last stable offset is).
func (p *Partition) ReadUpTo(offset, maxBytes, upTo int64) (ReadResult, error) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	res := ReadResult{LogStart: p.mu.logStart, End: p.mu.end}
	if p.mu.closed {
		return res, ErrClosed
	}
	if offset < p.mu.logStart || offset > p.mu.end {
		return res, fmt.Errorf("%w: %d not in [%d, %d]", ErrOffsetOutOfRange, offset, p.mu.logStart, p.mu.end)
	}
	upTo = min(upTo, p.mu.end)
	for i := p.segmentForLocked(offset); i < len(p.mu.segs) && offset < upTo; i++ {
		s := p.mu.segs[i]
		limit := s.Size()
		if upTo < s.Next() {
			var err error
			if limit, err = s.Position(p.env, upTo, limit); err != nil {
				return res, err
			}
		}
		r, err := s.Read(p.env, offset, maxBytes, limit)
		if err != nil {
			return res, err
		}
		if r.Handle != nil {
			res.Range = r
			return res, nil
		}
		// Nothing at or after offset in this segment: continue in the
		// next one.
		if i+1 < len(p.mu.segs) {
			offset = max(offset, p.mu.segs[i+1].Base())
		}
	}
	return res, nil
}

// OffsetForTimestamp returns the offset and timestamp of the first record
// whose timestamp is at least ts, as ListOffsets by timestamp does; ok is
// false when every record is older.
func (p *Partition) OffsetForTimestamp(ts int64) (offset, recordTS int64, ok bool, err error) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	for _, s := range p.mu.segs {
		if s.Next() <= p.mu.logStart {
			continue
		}
		maxTS, err := s.LoadMaxTimestamp(p.env)
		if err != nil {
			return 0, 0, false, err
		}
		if maxTS < ts {
			continue
		}
		base, found, err := s.FindTimestamp(p.env, ts)
		if err != nil {
			return 0, 0, false, err
		}
		if !found {
			continue
		}
		pos, err := s.PositionOf(p.env, base)
		if err != nil {
			return 0, 0, false, err
		}
		b, err := s.ReadBatch(p.env, pos)
		if err != nil {
			return 0, 0, false, err
		}
		offset, recordTS, err = firstRecordAtOrAfter(b, ts)
		if err != nil {
			return 0, 0, false, err
		}
		if offset < p.mu.logStart {
			offset = p.mu.logStart
		}
		return offset, recordTS, true, nil
	}
	return 0, 0, false, nil
}

// MaxTimestamp returns the offset and timestamp of the record with the
// largest timestamp (ListOffsets with timestamp -3).
func (p *Partition) MaxTimestamp() (offset, ts int64, ok bool, err error) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	best := int64(-1)
	var bestSeg *segment.Segment
	for _, s := range p.mu.segs {
		if s.Next() <= p.mu.logStart {
			continue
		}
		m, err := s.LoadMaxTimestamp(p.env)
		if err != nil {
			return 0, 0, false, err
		}
		if m > best {
			best, bestSeg = m, s
		}
	}
	if bestSeg == nil {
		return 0, 0, false, nil
	}
	base, found, err := bestSeg.FindTimestamp(p.env, best)
	if err != nil || !found {
		return 0, 0, false, err
	}
	pos, err := bestSeg.PositionOf(p.env, base)
	if err != nil {
		return 0, 0, false, err
	}
	b, err := bestSeg.ReadBatch(p.env, pos)
	if err != nil {
		return 0, 0, false, err
	}
	offset, ts, err = recordWithTimestamp(b, best)
	return offset, ts, err == nil, err
}

var errStop = errors.New("stop")

// firstRecordAtOrAfter decodes a batch to find the first record with a
// timestamp of at least ts. A LogAppendTime batch stamps every record with
// its max timestamp.
func firstRecordAtOrAfter(b []byte, ts int64) (int64, int64, error) {
	h, err := batch.ParseHeader(b)
	if err != nil {
		return 0, 0, err
	}
	if h.LogAppendTime() {
		return h.BaseOffset, h.MaxTimestamp, nil
	}
	off, rts := h.BaseOffset, h.MaxTimestamp
	err = batch.Records(b, func(r *batch.Record) error {
		if t := h.BaseTimestamp + r.TimestampDelta; t >= ts {
			off, rts = h.BaseOffset+int64(r.OffsetDelta), t
			return errStop
		}
		return nil
	})
	if err != nil && !errors.Is(err, errStop) {
		return 0, 0, err
	}
	return off, rts, nil
}

// recordWithTimestamp finds the last record in b whose timestamp is ts.
func recordWithTimestamp(b []byte, ts int64) (int64, int64, error) {
	h, err := batch.ParseHeader(b)
	if err != nil {
		return 0, 0, err
	}
	if h.LogAppendTime() {
		return h.LastOffset(), h.MaxTimestamp, nil
	}
	off := h.LastOffset()
	err = batch.Records(b, func(r *batch.Record) error {
		if h.BaseTimestamp+r.TimestampDelta == ts {
			off = h.BaseOffset + int64(r.OffsetDelta)
		}
		return nil
	})
	return off, ts, err
}
