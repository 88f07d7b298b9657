package batch

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"sync"
)

// DecompressedBytesMax is the largest records section Records will
// decompress, and so the most memory one call can take for its output.
// Kafka's default max.message.bytes is about 1 MiB of compressed data;
// 64 MiB leaves room for highly compressible batches while refusing bombs.
const DecompressedBytesMax = 64 << 20

// Record is one record of a batch, as encoded in it. Key, Value and the
// header fields alias the batch (or the decompressed copy of its records)
// and are valid only during the callback that receives them; copy what you
// keep.
type Record struct {
	Attributes     int8 // unused by Kafka so far; kept for fidelity
	OffsetDelta    int32
	TimestampDelta int64
	// Key is nil exactly when KeyNull is set. When building, a nil Key is
	// written as null; use an empty, non-nil slice for an empty key.
	Key     []byte
	Value   []byte
	KeyNull bool
	// ValueNull marks a tombstone on a compacted topic. Value follows the
	// same nil convention as Key.
	ValueNull bool
	Headers   []RecordHeader
}

// RecordHeader is a record header. Kafka does not allow a null header key;
// the value may be null.
type RecordHeader struct {
	Key       []byte
	Value     []byte
	ValueNull bool
}

// scratch is the per-call state of Records, pooled so that decoding an
// uncompressed batch does not allocate.
type scratch struct {
	buf  []byte
	rec  Record
	hdrs []RecordHeader
}

// scratchBufBytesMax bounds the decompression buffer a pooled scratch keeps,
// so that one huge batch does not pin its memory in the pool forever.
const scratchBufBytesMax = 4 << 20

var scratches = sync.Pool{New: func() any { return new(scratch) }}

// Records decodes the records of the batch b and calls fn for each, in
// order, stopping at the first error fn returns (which Records returns
// unwrapped). It decompresses the records section and refuses one that
// would decompress past DecompressedBytesMax with ErrTooLarge.
//
// b must be exactly one batch, as for Validate, but Records does not check
// the CRC: call Validate or Verify first on bytes you have not checked. It
// does check every record's framing, and that there are exactly NumRecords
// records with nothing after them, as Kafka's reader does.
//
// The *Record passed to fn is reused; see Record for how long its slices
// stay valid.
func Records(b []byte, fn func(r *Record) error) error {
	return RecordsLimit(b, DecompressedBytesMax, fn)
}

// RecordsLimit is Records with the bound on the (decompressed) records
// section set to maxBytes; a negative maxBytes counts as 0.
func RecordsLimit(b []byte, maxBytes int, fn func(r *Record) error) error {
	return recordsRaw(b, maxBytes, func(r *Record, _ []byte) error { return fn(r) })
}

// recordsRaw is RecordsLimit that also hands fn each record's encoded
// bytes (its length varint and body, uncompressed), which alias the batch
// or the decompression buffer for the duration of the call.
func recordsRaw(b []byte, maxBytes int, fn func(r *Record, raw []byte) error) error {
	maxBytes = max(maxBytes, 0)
	h, err := ParseHeader(b)
	if err != nil {
		return err
	}
	if n := h.Size(); len(b) < n {
		return truncated(int64(len(b)), "batch length %d needs %d bytes, have %d", h.Length, n, len(b))
	} else if len(b) > n {
		return corrupt(lengthOff, "batch length %d accounts for %d bytes, have %d", h.Length, n, len(b))
	}
	if h.NumRecords < 0 {
		return corrupt(numRecordsOff, "negative record count %d", h.NumRecords)
	}
	codec := h.Codec()
	if !codec.Valid() {
		return corrupt(attributesOff, "unknown compression codec %d", int8(codec))
	}
	s := scratches.Get().(*scratch)
	defer func() {
		s.rec = Record{}
		clear(s.hdrs)
		s.hdrs = s.hdrs[:0]
		if cap(s.buf) > scratchBufBytesMax {
			s.buf = nil
		}
		scratches.Put(s)
	}()
	d := recordDecoder{compressed: codec != CodecNone, s: s}
	if !d.compressed {
		if len(b)-HeaderSize > maxBytes {
			return errTooLarge(maxBytes)
		}
		d.data = b[HeaderSize:]
	} else {
		out, err := decompress(codec, s.buf, b[HeaderSize:], maxBytes)
		if err != nil {
			if errors.Is(err, ErrTooLarge) {
				return err
			}
			return corrupt(HeaderSize, "decompressing %v records: %v", codec, err)
		}
		s.buf = out
		d.data = out
	}
	return d.decode(h.NumRecords, fn)
}

// recordDecoder walks the records section. pos is the read position in
// data; errors report it as a byte offset in the batch when the records are
// uncompressed, and as a position in the decompressed records otherwise.
type recordDecoder struct {
	data       []byte
	pos        int
	compressed bool
	s          *scratch
}

func (d *recordDecoder) fail(at int, rec int32, format string, args ...any) error {
	reason := fmt.Sprintf("record %d: ", rec) + fmt.Sprintf(format, args...)
	if d.compressed {
		return corrupt(HeaderSize, "%s (byte %d of the decompressed records)", reason, at)
	}
	return corrupt(int64(HeaderSize+at), "%s", reason)
}

func (d *recordDecoder) decode(n int32, fn func(*Record, []byte) error) error {
	for i := int32(0); i < n; i++ {
		if d.pos >= len(d.data) {
			return d.fail(d.pos, i, "missing; the batch claims %d records", n)
		}
		at := d.pos
		length, ok := d.varint32()
		if !ok {
			return d.fail(at, i, "bad length varint")
		}
		if length < 0 || int(length) > len(d.data)-d.pos {
			return d.fail(at, i, "length %d with %d bytes left", length, len(d.data)-d.pos)
		}
		end := d.pos + int(length)
		if err := d.record(i, end); err != nil {
			return err
		}
		if d.pos != end {
			return d.fail(at, i, "length %d but its fields take %d bytes", length, d.pos-(end-int(length)))
		}
		if err := fn(&d.s.rec, d.data[at:end]); err != nil {
			return err
		}
	}
	if d.pos != len(d.data) {
		return d.fail(d.pos, n, "%d bytes after the last of %d records", len(d.data)-d.pos, n)
	}
	return nil
}

// record decodes one record body, which must end at end, into d.s.rec.
func (d *recordDecoder) record(i int32, end int) error {
	body := d.data[:end]
	r := &d.s.rec
	*r = Record{}
	at := d.pos
	if d.pos >= len(body) {
		return d.fail(at, i, "no attributes byte")
	}
	r.Attributes = int8(body[d.pos])
	d.pos++
	at = d.pos
	ts, n := binary.Varint(body[d.pos:])
	if n <= 0 {
		return d.fail(at, i, "bad timestamp delta varint")
	}
	r.TimestampDelta = ts
	d.pos += n
	at = d.pos
	od, ok := d.varint32In(body)
	if !ok {
		return d.fail(at, i, "bad offset delta varint")
	}
	r.OffsetDelta = od
	var err error
	if r.Key, r.KeyNull, err = d.bytes(body, i, "key"); err != nil {
		return err
	}
	if r.Value, r.ValueNull, err = d.bytes(body, i, "value"); err != nil {
		return err
	}
	at = d.pos
	nh, ok := d.varint32In(body)
	if !ok {
		return d.fail(at, i, "bad header count varint")
	}
	// Every header takes at least two bytes, so a larger count cannot be
	// honest; checking first bounds the headers slice by the input.
	if nh < 0 || int(nh) > (len(body)-d.pos)/2 {
		return d.fail(at, i, "header count %d with %d bytes left", nh, len(body)-d.pos)
	}
	hdrs := d.s.hdrs[:0]
	for j := int32(0); j < nh; j++ {
		key, null, err := d.bytes(body, i, "header key")
		if err != nil {
			return err
		}
		if null {
			return d.fail(d.pos, i, "header %d has a null key", j)
		}
		val, vnull, err := d.bytes(body, i, "header value")
		if err != nil {
			return err
		}
		hdrs = append(hdrs, RecordHeader{Key: key, Value: val, ValueNull: vnull})
	}
	d.s.hdrs = hdrs
	if nh > 0 {
		r.Headers = hdrs
	}
	return nil
}

// bytes reads a varint length and that many bytes. A negative length means
// null, as in Kafka's reader (which treats every negative length so).
func (d *recordDecoder) bytes(body []byte, i int32, what string) ([]byte, bool, error) {
	at := d.pos
	n, ok := d.varint32In(body)
	if !ok {
		return nil, false, d.fail(at, i, "bad %s length varint", what)
	}
	if n < 0 {
		return nil, true, nil
	}
	if int(n) > len(body)-d.pos {
		return nil, false, d.fail(at, i, "%s length %d with %d bytes left", what, n, len(body)-d.pos)
	}
	v := body[d.pos : d.pos+int(n) : d.pos+int(n)]
	d.pos += int(n)
	return v, false, nil
}

func (d *recordDecoder) varint32() (int32, bool) { return d.varint32In(d.data) }

// varint32In reads a zigzag varint of at most five bytes, as Kafka's
// readVarint does, from b at d.pos.
func (d *recordDecoder) varint32In(b []byte) (int32, bool) {
	v, n := binary.Varint(b[d.pos:])
	if n <= 0 || n > binary.MaxVarintLen32 || v < math.MinInt32 || v > math.MaxInt32 {
		return 0, false
	}
	d.pos += n
	return int32(v), true
}
