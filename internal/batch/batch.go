// Package batch parses, verifies and rewrites Kafka RecordBatch v2 (magic 2)
// byte slices, and decodes the records inside them.
//
// Batches are stored byte for byte as the producer sent them: the broker
// parses the 61-byte header, checks the CRC, and then rewrites only the
// fields Kafka itself rewrites (baseOffset, partitionLeaderEpoch, and, for
// LogAppendTime topics, the timestamp type and maxTimestamp). A Fetch is then
// a byte-range read. The layout and what we check are in
// docs/format/batch.md.
//
// ParseHeader, Verify, Validate and Iter never allocate on success and never
// panic on any input. Records decompresses and decodes the records of one
// batch; its output is bounded by a limit. The Set* functions rewrite a batch
// that Validate (or ParseHeader) has accepted and panic on a buffer shorter
// than the batch it claims to be, because that is a bug in the caller, not bad
// input.
//
// Everything in the package is safe for concurrent use; an Iter is not.
package batch

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
)

// Byte offsets of the header fields. The CRC covers everything from
// attributesOff to the end of the batch, so baseOffset, batchLength and
// partitionLeaderEpoch can be rewritten without recomputing it.
const (
	baseOffsetOff           = 0
	lengthOff               = 8
	partitionLeaderEpochOff = 12
	magicOff                = 16
	crcOff                  = 17
	attributesOff           = 21
	lastOffsetDeltaOff      = 23
	baseTimestampOff        = 27
	maxTimestampOff         = 35
	producerIDOff           = 43
	producerEpochOff        = 51
	baseSequenceOff         = 53
	numRecordsOff           = 57
)

const (
	// HeaderSize is the size of a RecordBatch v2 header, up to and
	// including the record count.
	HeaderSize = 61

	// lengthFieldEnd is where batchLength starts counting: the batch is
	// lengthFieldEnd + batchLength bytes long.
	lengthFieldEnd = lengthOff + 4

	// minLength is the smallest batchLength that still covers the header.
	minLength = HeaderSize - lengthFieldEnd

	// Magic is the only message format version this package understands.
	Magic = 2
)

// Attribute bits.
const (
	codecMask        = 0x07
	timestampTypeBit = 0x08 // set: LogAppendTime; clear: CreateTime
	transactionalBit = 0x10
	controlBit       = 0x20
	deleteHorizonBit = 0x40 // KIP-534: baseTimestamp is the compaction delete horizon
)

// Codec is the compression codec in the low three bits of the attributes.
type Codec int8

// The codecs Kafka defines. Values 5 to 7 are invalid.
const (
	CodecNone Codec = iota
	CodecGzip
	CodecSnappy
	CodecLZ4
	CodecZstd
)

func (c Codec) String() string {
	switch c {
	case CodecNone:
		return "none"
	case CodecGzip:
		return "gzip"
	case CodecSnappy:
		return "snappy"
	case CodecLZ4:
		return "lz4"
	case CodecZstd:
		return "zstd"
	}
	return fmt.Sprintf("codec(%d)", int8(c))
}

// Valid reports whether c is one of the codecs Kafka defines.
func (c Codec) Valid() bool { return c >= CodecNone && c <= CodecZstd }

// Header is the decoded fixed-size header of a RecordBatch v2.
type Header struct {
	BaseOffset           int64
	Length               int32 // bytes after the batchLength field
	PartitionLeaderEpoch int32
	Magic                int8
	CRC                  uint32 // CRC-32C of attributes through the end of the batch
	Attributes           int16
	LastOffsetDelta      int32
	BaseTimestamp        int64
	MaxTimestamp         int64
	ProducerID           int64
	ProducerEpoch        int16
	BaseSequence         int32
	NumRecords           int32
}

// Size is the total size of the batch in bytes, header included.
func (h Header) Size() int { return lengthFieldEnd + int(h.Length) }

// LastOffset is the offset of the last record the batch covers. After
// compaction records may be missing, but the range is kept.
func (h Header) LastOffset() int64 { return h.BaseOffset + int64(h.LastOffsetDelta) }

// Codec is the batch's compression codec.
func (h Header) Codec() Codec { return Codec(h.Attributes & codecMask) }

// LogAppendTime reports whether the timestamp type is LogAppendTime, in
// which case MaxTimestamp is the broker's append time and stands for every
// record's timestamp.
func (h Header) LogAppendTime() bool { return h.Attributes&timestampTypeBit != 0 }

// Transactional reports whether the batch belongs to a transaction.
func (h Header) Transactional() bool { return h.Attributes&transactionalBit != 0 }

// Control reports whether the batch holds control records (transaction
// markers) rather than data.
func (h Header) Control() bool { return h.Attributes&controlBit != 0 }

// HasDeleteHorizon reports whether compaction has set BaseTimestamp to the
// delete horizon (KIP-534).
func (h Header) HasDeleteHorizon() bool { return h.Attributes&deleteHorizonBit != 0 }

var (
	// ErrCorrupt marks bytes that are not a well-formed RecordBatch v2.
	// Every *CorruptError matches it.
	ErrCorrupt = errors.New("batch: corrupt")
	// ErrTruncated marks bytes that end inside a batch. It also matches
	// ErrCorrupt: in a request that is corruption, while at the tail of a
	// segment it is a torn write, which recovery truncates away.
	ErrTruncated = errors.New("batch: truncated")
	// ErrUnsupportedMagic marks a message set in the old formats (magic 0
	// or 1), which the broker answers with UNSUPPORTED_FOR_MESSAGE_FORMAT
	// rather than CORRUPT_MESSAGE. It does not match ErrCorrupt.
	ErrUnsupportedMagic = errors.New("batch: unsupported magic")
	// ErrTooLarge marks records that would decompress past the limit.
	ErrTooLarge = errors.New("batch: too large")
)

// CorruptError says which check failed and where.
type CorruptError struct {
	// Offset is the byte offset of the offending field, counted from the
	// start of the buffer handed to the function that failed (for Iter,
	// the start of the record set).
	Offset int64
	// Reason says which check failed.
	Reason string
	// Err is ErrCorrupt or ErrTruncated.
	Err error
}

func (e *CorruptError) Error() string {
	return fmt.Sprintf("%v: %s at byte %d", e.Err, e.Reason, e.Offset)
}

// Unwrap lets errors.Is match both ErrTruncated and ErrCorrupt.
func (e *CorruptError) Unwrap() []error {
	if e.Err == ErrCorrupt {
		return []error{ErrCorrupt}
	}
	return []error{e.Err, ErrCorrupt}
}

func corrupt(off int64, format string, args ...any) error {
	return &CorruptError{Offset: off, Reason: fmt.Sprintf(format, args...), Err: ErrCorrupt}
}

func truncated(off int64, format string, args ...any) error {
	return &CorruptError{Offset: off, Reason: fmt.Sprintf(format, args...), Err: ErrTruncated}
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// ParseHeader decodes the header at the start of b. It checks only what is
// needed to trust the header's own fields: that b holds a whole header, that
// the magic is 2, and that batchLength covers at least the header. It does
// not check the CRC or that b holds the whole batch.
func ParseHeader(b []byte) (Header, error) { return parseHeader(b, 0) }

// parseHeader is ParseHeader with base added to the offsets in errors, so
// that Iter can report positions within the record set.
func parseHeader(b []byte, base int64) (Header, error) {
	// The magic sits at byte 16 in every message format version, so it
	// can be read before we know the rest of the layout.
	if len(b) <= magicOff {
		return Header{}, truncated(base+int64(len(b)), "header needs %d bytes, have %d", HeaderSize, len(b))
	}
	if m := int8(b[magicOff]); m != Magic {
		if m == 0 || m == 1 {
			return Header{}, fmt.Errorf("%w: magic %d at byte %d", ErrUnsupportedMagic, m, base+magicOff)
		}
		return Header{}, corrupt(base+magicOff, "unknown magic %d", m)
	}
	if len(b) < HeaderSize {
		return Header{}, truncated(base+int64(len(b)), "header needs %d bytes, have %d", HeaderSize, len(b))
	}
	be := binary.BigEndian
	h := Header{
		BaseOffset:           int64(be.Uint64(b[baseOffsetOff:])),
		Length:               int32(be.Uint32(b[lengthOff:])),
		PartitionLeaderEpoch: int32(be.Uint32(b[partitionLeaderEpochOff:])),
		Magic:                int8(b[magicOff]),
		CRC:                  be.Uint32(b[crcOff:]),
		Attributes:           int16(be.Uint16(b[attributesOff:])),
		LastOffsetDelta:      int32(be.Uint32(b[lastOffsetDeltaOff:])),
		BaseTimestamp:        int64(be.Uint64(b[baseTimestampOff:])),
		MaxTimestamp:         int64(be.Uint64(b[maxTimestampOff:])),
		ProducerID:           int64(be.Uint64(b[producerIDOff:])),
		ProducerEpoch:        int16(be.Uint16(b[producerEpochOff:])),
		BaseSequence:         int32(be.Uint32(b[baseSequenceOff:])),
		NumRecords:           int32(be.Uint32(b[numRecordsOff:])),
	}
	if h.Length < minLength {
		return Header{}, corrupt(base+lengthOff, "batch length %d is shorter than the %d-byte header", h.Length, minLength)
	}
	return h, nil
}

// Verify checks that b is exactly one batch whose bytes are intact: the
// header parses, batchLength matches len(b), the CRC matches, the codec is
// known, and the record count fits the offset range
// (0 <= NumRecords <= LastOffsetDelta+1). It accepts batches that compaction
// has thinned, so it is the check for reading segments back; Validate is the
// stricter check for what producers send.
func Verify(b []byte) (Header, error) {
	h, err := ParseHeader(b)
	if err != nil {
		return Header{}, err
	}
	if n := h.Size(); len(b) < n {
		return Header{}, truncated(int64(len(b)), "batch length %d needs %d bytes, have %d", h.Length, n, len(b))
	} else if len(b) > n {
		return Header{}, corrupt(lengthOff, "batch length %d accounts for %d bytes, have %d", h.Length, n, len(b))
	}
	if got := crc32.Checksum(b[attributesOff:], castagnoli); got != h.CRC {
		return Header{}, corrupt(crcOff, "crc %#08x does not match computed %#08x", h.CRC, got)
	}
	if c := h.Codec(); !c.Valid() {
		return Header{}, corrupt(attributesOff, "unknown compression codec %d", int8(c))
	}
	if h.LastOffsetDelta < 0 {
		return Header{}, corrupt(lastOffsetDeltaOff, "negative last offset delta %d", h.LastOffsetDelta)
	}
	if h.NumRecords < 0 || int64(h.NumRecords) > int64(h.LastOffsetDelta)+1 {
		return Header{}, corrupt(numRecordsOff, "record count %d outside [0, last offset delta %d + 1]", h.NumRecords, h.LastOffsetDelta)
	}
	return h, nil
}

// Validate checks a batch a producer sent: everything Verify checks, and
// that the batch is dense, NumRecords >= 1 and NumRecords ==
// LastOffsetDelta+1, as Kafka's LogValidator requires. It does not decode
// the records; Records does.
func Validate(b []byte) (Header, error) {
	h, err := Verify(b)
	if err != nil {
		return Header{}, err
	}
	if h.NumRecords < 1 {
		return Header{}, corrupt(numRecordsOff, "batch has no records")
	}
	if int64(h.NumRecords) != int64(h.LastOffsetDelta)+1 {
		return Header{}, corrupt(numRecordsOff, "record count %d does not match last offset delta %d + 1", h.NumRecords, h.LastOffsetDelta)
	}
	return h, nil
}

// mustHeader panics unless b holds a whole header, so that a misuse of the
// Set* functions fails loudly at the call rather than in a slice expression.
func mustHeader(b []byte, fn string) {
	if len(b) < HeaderSize {
		panic(fmt.Sprintf("batch.%s: buffer of %d bytes is shorter than a header", fn, len(b)))
	}
}

// SetBaseOffset rewrites baseOffset in place. The CRC does not cover it.
func SetBaseOffset(b []byte, offset int64) {
	mustHeader(b, "SetBaseOffset")
	binary.BigEndian.PutUint64(b[baseOffsetOff:], uint64(offset))
}

// SetPartitionLeaderEpoch rewrites partitionLeaderEpoch in place. The CRC
// does not cover it.
func SetPartitionLeaderEpoch(b []byte, epoch int32) {
	mustHeader(b, "SetPartitionLeaderEpoch")
	binary.BigEndian.PutUint32(b[partitionLeaderEpochOff:], uint32(epoch))
}

// SetMaxTimestampLogAppendTime marks the batch as LogAppendTime and sets
// maxTimestamp to ts, for topics with message.timestamp.type=LogAppendTime.
// Both fields are under the CRC, so the CRC is recomputed; Kafka does the
// same, and it is the only case in which the broker changes a batch's CRC.
// The record timestamps are left alone: readers take maxTimestamp as every
// record's timestamp when the bit is set.
//
// b must start with a batch whose header ParseHeader accepts and hold all
// of it; it may be followed by other bytes.
func SetMaxTimestampLogAppendTime(b []byte, ts int64) {
	mustHeader(b, "SetMaxTimestampLogAppendTime")
	be := binary.BigEndian
	n := lengthFieldEnd + int(int32(be.Uint32(b[lengthOff:])))
	if n < HeaderSize || n > len(b) {
		panic(fmt.Sprintf("batch.SetMaxTimestampLogAppendTime: batch of %d bytes in a buffer of %d", n, len(b)))
	}
	attrs := be.Uint16(b[attributesOff:])
	be.PutUint16(b[attributesOff:], attrs|timestampTypeBit)
	be.PutUint64(b[maxTimestampOff:], uint64(ts))
	be.PutUint32(b[crcOff:], crc32.Checksum(b[attributesOff:n], castagnoli))
}
