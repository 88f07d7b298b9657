package batch

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
)

// BuildOptions are the producer fields of a batch made by Build. The zero
// value makes a plain, non-idempotent batch.
type BuildOptions struct {
	// Idempotent writes ProducerID, ProducerEpoch and BaseSequence. When
	// neither it nor Transactional is set, all three are written as -1,
	// which is what a non-idempotent producer sends; without this switch
	// the zero value would claim to be producer 0.
	Idempotent    bool
	ProducerID    int64
	ProducerEpoch int16
	BaseSequence  int32
	// Transactional sets the transactional attribute and implies
	// Idempotent.
	Transactional bool
	// Control sets the control attribute; the records should then be
	// control records (a transaction marker), which Build does not check.
	Control bool
}

// Build encodes records as a RecordBatch v2 compressed with codec, the way
// a producer would: baseOffset 0, partitionLeaderEpoch -1, CreateTime
// timestamps, maxTimestamp the largest record timestamp. Record i gets
// offset delta i (Record.OffsetDelta is ignored); its timestamp is
// baseTimestamp + TimestampDelta. Key and Value are null when nil or when
// KeyNull/ValueNull is set.
//
// Build exists for tests, benchmarks and the bench producer; the broker
// never re-encodes a batch.
func Build(codec Codec, baseTimestamp int64, records []Record, opts BuildOptions) ([]byte, error) {
	if len(records) == 0 {
		return nil, errors.New("batch: build: no records")
	}
	if len(records) > math.MaxInt32 {
		return nil, fmt.Errorf("batch: build: %d records do not fit a batch", len(records))
	}
	if !codec.Valid() {
		return nil, fmt.Errorf("batch: build: unknown codec %d", int8(codec))
	}
	var raw, body []byte
	maxDelta := records[0].TimestampDelta
	for i := range records {
		r := &records[i]
		maxDelta = max(maxDelta, r.TimestampDelta)
		body = appendRecord(body[:0], r, int32(i))
		raw = binary.AppendVarint(raw, int64(len(body)))
		raw = append(raw, body...)
	}

	b := make([]byte, HeaderSize, HeaderSize+len(raw)+64)
	b, err := Compress(codec, b, raw)
	if err != nil {
		return nil, err
	}
	if len(b)-lengthFieldEnd > math.MaxInt32 {
		return nil, fmt.Errorf("batch: build: %d bytes do not fit a batch", len(b))
	}

	attrs := int16(codec)
	if opts.Transactional {
		attrs |= transactionalBit
	}
	if opts.Control {
		attrs |= controlBit
	}
	pid, epoch, seq := int64(-1), int16(-1), int32(-1)
	if opts.Idempotent || opts.Transactional {
		pid, epoch, seq = opts.ProducerID, opts.ProducerEpoch, opts.BaseSequence
	}
	be := binary.BigEndian
	be.PutUint64(b[baseOffsetOff:], 0)
	be.PutUint32(b[lengthOff:], uint32(len(b)-lengthFieldEnd))
	be.PutUint32(b[partitionLeaderEpochOff:], math.MaxUint32) // -1: no leader epoch yet
	b[magicOff] = Magic
	be.PutUint16(b[attributesOff:], uint16(attrs))
	be.PutUint32(b[lastOffsetDeltaOff:], uint32(len(records)-1))
	be.PutUint64(b[baseTimestampOff:], uint64(baseTimestamp))
	be.PutUint64(b[maxTimestampOff:], uint64(baseTimestamp+maxDelta))
	be.PutUint64(b[producerIDOff:], uint64(pid))
	be.PutUint16(b[producerEpochOff:], uint16(epoch))
	be.PutUint32(b[baseSequenceOff:], uint32(seq))
	be.PutUint32(b[numRecordsOff:], uint32(len(records)))
	be.PutUint32(b[crcOff:], crc32.Checksum(b[attributesOff:], castagnoli))
	return b, nil
}

// appendRecord appends the body of r (everything after its length) with
// offset delta i.
func appendRecord(dst []byte, r *Record, i int32) []byte {
	dst = append(dst, byte(r.Attributes))
	dst = binary.AppendVarint(dst, r.TimestampDelta)
	dst = binary.AppendVarint(dst, int64(i))
	dst = appendNullable(dst, r.Key, r.KeyNull)
	dst = appendNullable(dst, r.Value, r.ValueNull)
	dst = binary.AppendVarint(dst, int64(len(r.Headers)))
	for _, h := range r.Headers {
		// Header keys cannot be null, so nil is written as empty.
		dst = binary.AppendVarint(dst, int64(len(h.Key)))
		dst = append(dst, h.Key...)
		dst = appendNullable(dst, h.Value, h.ValueNull)
	}
	return dst
}

func appendNullable(dst, v []byte, null bool) []byte {
	if null || v == nil {
		return binary.AppendVarint(dst, -1)
	}
	dst = binary.AppendVarint(dst, int64(len(v)))
	return append(dst, v...)
}
