package batch

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"math"
)

// Filter returns the batch b with only the records keep accepts, for log
// compaction. Every header field but batchLength, the record count and the
// CRC is kept: the base offset, lastOffsetDelta (so the batch still claims
// its whole offset range, and an idempotent producer's last sequence is
// unchanged), the timestamps, the producer fields and the attributes. The
// kept records are copied byte for byte, with their original offset and
// timestamp deltas, and compressed again with the batch's own codec.
//
// It returns b itself when every record is kept and nil when none is; the
// caller then decides what stands in for the batch (see Empty). b must be
// one whole batch that Verify accepts; keep sees records as Records passes
// them.
func Filter(b []byte, keep func(r *Record) bool) (out []byte, kept int, err error) {
	h, err := ParseHeader(b)
	if err != nil {
		return nil, 0, err
	}
	var raw []byte
	err = recordsRaw(b, DecompressedBytesMax, func(r *Record, enc []byte) error {
		if keep(r) {
			raw = append(raw, enc...)
			kept++
		}
		return nil
	})
	if err != nil {
		return nil, 0, err
	}
	switch {
	case kept == int(h.NumRecords):
		return b, kept, nil
	case kept == 0:
		return nil, 0, nil
	}
	out = make([]byte, HeaderSize, HeaderSize+len(raw)+64)
	copy(out, b[:HeaderSize])
	if out, err = Compress(h.Codec(), out, raw); err != nil {
		return nil, 0, err
	}
	if len(out)-lengthFieldEnd > math.MaxInt32 {
		return nil, 0, fmt.Errorf("batch: filter: %d bytes do not fit a batch", len(out))
	}
	be := binary.BigEndian
	be.PutUint32(out[lengthOff:], uint32(len(out)-lengthFieldEnd))
	be.PutUint32(out[numRecordsOff:], uint32(kept))
	be.PutUint32(out[crcOff:], crc32.Checksum(out[attributesOff:], castagnoli))
	return out, kept, nil
}

// Empty returns a batch without records that claims the offsets
// [baseOffset, baseOffset+lastOffsetDelta]. Compaction writes one in place
// of a run of batches that lost every record, so that a segment's batches
// still claim contiguous offsets (which recovery checks) and a consumer
// reading the range moves past it, as Kafka's consumers do with the empty
// batches Kafka's cleaner keeps (KAFKA-5443). It is uncompressed and
// non-idempotent (producer id, epoch and sequence -1); both timestamps are
// maxTimestamp.
func Empty(baseOffset int64, lastOffsetDelta, leaderEpoch int32, maxTimestamp int64) []byte {
	b := make([]byte, HeaderSize)
	be := binary.BigEndian
	be.PutUint64(b[baseOffsetOff:], uint64(baseOffset))
	be.PutUint32(b[lengthOff:], uint32(HeaderSize-lengthFieldEnd))
	be.PutUint32(b[partitionLeaderEpochOff:], uint32(leaderEpoch))
	b[magicOff] = Magic
	be.PutUint32(b[lastOffsetDeltaOff:], uint32(lastOffsetDelta))
	be.PutUint64(b[baseTimestampOff:], uint64(maxTimestamp))
	be.PutUint64(b[maxTimestampOff:], uint64(maxTimestamp))
	be.PutUint64(b[producerIDOff:], math.MaxUint64) // -1
	be.PutUint16(b[producerEpochOff:], math.MaxUint16)
	be.PutUint32(b[baseSequenceOff:], math.MaxUint32)
	be.PutUint32(b[crcOff:], crc32.Checksum(b[attributesOff:], castagnoli))
	return b
}
