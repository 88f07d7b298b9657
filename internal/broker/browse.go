package broker

import (
	"errors"
	"fmt"

	"github.com/sluice-io/sluice/internal/batch"
	"github.com/sluice-io/sluice/internal/partition"
)

// Browsing: operators reading a few records of a partition (the admin
// console). It reads the committed log through the same path as Fetch and
// decodes it here, so it never touches the produce path; every call is
// bounded in records, bytes read and bytes kept.

// Bounds of one Browse call.
const (
	// BrowseRecordsMax is the most records one call returns.
	BrowseRecordsMax = 200
	// BrowseReadBytesMax bounds the batch bytes one call reads from the
	// log. The first batch is read even when larger, as Fetch does, so
	// that one large batch does not make an offset unreadable; it is
	// still bounded by BrowseBatchBytesMax.
	BrowseReadBytesMax = 4 << 20
	// BrowseBatchBytesMax is the largest single batch Browse reads;
	// a larger one is an error rather than an allocation.
	BrowseBatchBytesMax = 64 << 20
	// BrowseFieldBytesMax is the most of a key, value, header key or
	// header value a browsed record keeps; the rest is cut and the record
	// marked Truncated.
	BrowseFieldBytesMax = 4096
	// BrowseHeadersMax is the most headers a browsed record keeps.
	BrowseHeadersMax = 64
	// browseReadsMax bounds the reads of one call: each read returns at
	// least one batch, and retention racing the reads restarts at most
	// this often too.
	browseReadsMax = 64
)

// ErrUnknownTopicOrPartition is returned by Browse for a topic or
// partition that does not exist.
var ErrUnknownTopicOrPartition = errUnknownTopic

// BrowseResult is what Browse read of one partition.
type BrowseResult struct {
	LogStart, HighWatermark int64
	Records                 []BrowseRecord
}

// BrowseRecord is one record, copied out of the log. Key, Value and header
// values are nil when null, and cut to BrowseFieldBytesMax.
type BrowseRecord struct {
	Offset      int64
	TimestampMs int64 // the record's timestamp, or the batch's log-append time
	Key, Value  []byte
	// KeySize and ValueSize are the full lengths, -1 for null.
	KeySize, ValueSize int
	// Truncated is set when a key, value, header key or value, or the
	// list of headers was cut.
	Truncated bool
	Headers   []BrowseHeader
}

// BrowseHeader is one record header.
type BrowseHeader struct {
	Key   string
	Value []byte
}

// Browse reads up to limit records of one partition, committed ones only
// (below the high watermark), in offset order, decoding compressed batches
// and skipping control batches (transaction markers). It starts at offset,
// at the log start if offset is below it, or, for a negative offset, at
// max(log start, high watermark - limit): the last limit records. At or
// past the high watermark it returns no records. limit is clamped to
// [1, BrowseRecordsMax]; a call reads at most about BrowseReadBytesMax of
// the log, so it may return fewer records than asked where batches are
// large. Unknown topics and partitions are ErrUnknownTopicOrPartition.
func (b *Broker) Browse(topic string, part int32, offset int64, limit int) (BrowseResult, error) {
	p := b.topic(topic).partition(part)
	if p == nil {
		return BrowseResult{}, fmt.Errorf("%w: %s-%d", ErrUnknownTopicOrPartition, topic, part)
	}
	limit = min(max(limit, 1), BrowseRecordsMax)
	logStart, hw := p.Offsets()
	res := BrowseResult{LogStart: logStart, HighWatermark: hw}
	if offset < 0 {
		offset = max(hw-int64(limit), logStart)
	}
	pos := max(offset, logStart)
	budget := int64(BrowseReadBytesMax)
	for range browseReadsMax {
		if len(res.Records) >= limit || pos >= hw || budget <= 0 {
			break
		}
		// Stop at the high watermark taken above: it is a batch
		// boundary, and what arrives meanwhile is for the next call.
		rr, err := p.ReadUpTo(pos, budget, hw)
		if errors.Is(err, partition.ErrOffsetOutOfRange) && rr.LogStart > pos {
			// Retention removed what we were about to read: go
			// on from the new log start, as a consumer would.
			res.LogStart, pos = rr.LogStart, rr.LogStart
			continue
		}
		if err != nil {
			if errors.Is(err, partition.ErrClosed) {
				err = fmt.Errorf("%w: %s-%d", ErrUnknownTopicOrPartition, topic, part)
			}
			return res, fmt.Errorf("broker: browse %s-%d at %d: %w", topic, part, pos, err)
		}
		if rr.Range.Handle == nil {
			break
		}
		buf, err := readRange(rr)
		if err != nil {
			return res, fmt.Errorf("broker: browse %s-%d at %d: %w", topic, part, pos, err)
		}
		budget -= int64(len(buf))
		next, err := appendBrowsed(&res, buf, pos, hw, limit)
		if err != nil {
			return res, fmt.Errorf("broker: browse %s-%d at %d: %w", topic, part, pos, err)
		}
		pos = max(next, rr.Range.Last+1)
	}
	return res, nil
}

// readRange copies a read's bytes into memory and releases its file.
func readRange(rr partition.ReadResult) ([]byte, error) {
	defer rr.Release()
	rg := rr.Range
	if rg.Len > BrowseBatchBytesMax {
		return nil, fmt.Errorf("a batch of %d bytes at offset %d is larger than the %d a browse reads", rg.Len, rg.First, BrowseBatchBytesMax)
	}
	buf := make([]byte, rg.Len)
	if _, err := rg.Handle.File().ReadAt(buf, rg.Pos); err != nil {
		return nil, fmt.Errorf("read %s at %d: %w", rg.Handle.File().Name(), rg.Pos, err)
	}
	return buf, nil
}

// appendBrowsed decodes the batches in buf, appending the records at or
// after from and below hw to res until it holds limit; it returns the
// offset after the last batch it went through.
func appendBrowsed(res *BrowseResult, buf []byte, from, hw int64, limit int) (next int64, err error) {
	next = from
	it := batch.NewIter(buf)
	for it.Next() && len(res.Records) < limit {
		raw := it.Batch()
		h, err := batch.Verify(raw)
		if err != nil {
			return next, fmt.Errorf("batch at offset %d: %w", it.Header().BaseOffset, err)
		}
		if h.BaseOffset >= hw {
			break
		}
		if h.Control() || h.LastOffset() < from {
			next = max(next, h.LastOffset()+1)
			continue
		}
		err = batch.Records(raw, func(r *batch.Record) error {
			off := h.BaseOffset + int64(r.OffsetDelta)
			if off < from || off >= hw || len(res.Records) >= limit {
				return nil
			}
			res.Records = append(res.Records, browsed(h, r, off))
			return nil
		})
		if err != nil {
			return next, fmt.Errorf("records of the batch at offset %d: %w", h.BaseOffset, err)
		}
		// A batch cut short by the limit is resumed from its last
		// record by the next call, which starts at an offset.
		next = max(next, h.LastOffset()+1)
	}
	if err := it.Err(); err != nil {
		return next, err
	}
	return next, nil
}

// browsed copies one record out of the (reused) decoding buffers.
func browsed(h batch.Header, r *batch.Record, off int64) BrowseRecord {
	out := BrowseRecord{Offset: off, TimestampMs: h.BaseTimestamp + r.TimestampDelta, KeySize: -1, ValueSize: -1}
	if h.LogAppendTime() {
		out.TimestampMs = h.MaxTimestamp
	}
	clip := func(b []byte, null bool) []byte {
		if null {
			return nil
		}
		if len(b) > BrowseFieldBytesMax {
			out.Truncated = true
			b = b[:BrowseFieldBytesMax]
		}
		return append(make([]byte, 0, len(b)), b...)
	}
	if !r.KeyNull {
		out.KeySize = len(r.Key)
	}
	if !r.ValueNull {
		out.ValueSize = len(r.Value)
	}
	out.Key, out.Value = clip(r.Key, r.KeyNull), clip(r.Value, r.ValueNull)
	hdrs := r.Headers
	if len(hdrs) > BrowseHeadersMax {
		hdrs, out.Truncated = hdrs[:BrowseHeadersMax], true
	}
	for _, rh := range hdrs {
		out.Headers = append(out.Headers, BrowseHeader{Key: string(clip(rh.Key, false)), Value: clip(rh.Value, rh.ValueNull)})
	}
	return out
}
