package producer

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"sort"
)

// Snapshot file layout (docs/format/producer.md), big-endian:
//
//	magic "SLPS" | version u16 | flags u16 | offset i64 | count u32
//	count x (producer id i64 | epoch i16 | coordinator epoch i32 |
//	         last timestamp i64 | txn first offset i64 | batches u8 |
//	         batches x (first seq i32 | last seq i32 | first offset i64 |
//	                    last offset i64 | timestamp i64))
//	crc32c u32 over everything before it
const (
	snapshotMagic      = "SLPS"
	snapshotVersion    = 1
	snapHeaderBytes    = 4 + 2 + 2 + 8 + 4
	snapEntryBytes     = 8 + 2 + 4 + 8 + 8 + 1
	snapBatchBytes     = 4 + 4 + 8 + 8 + 8
	snapTrailerBytes   = 4
	snapEntryBytesMax  = snapEntryBytes + BatchesRetained*snapBatchBytes
	snapshotBytesFloor = snapHeaderBytes + snapTrailerBytes
)

// ErrCorruptSnapshot matches every *CorruptSnapshotError.
var ErrCorruptSnapshot = errors.New("producer: corrupt snapshot")

// CorruptSnapshotError says where a snapshot fails its checks.
type CorruptSnapshotError struct {
	Path   string
	Offset int // byte position in the file
	Reason string
}

func (e *CorruptSnapshotError) Error() string {
	return fmt.Sprintf("producer: corrupt snapshot %s at byte %d: %s", e.Path, e.Offset, e.Reason)
}

func (e *CorruptSnapshotError) Unwrap() error { return ErrCorruptSnapshot }

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// SnapshotBytesMax is the largest snapshot a state with opts can encode
// (plus slack for producers recovery admitted past the limit, which the
// decoder accepts up to twice MaxProducers).
func SnapshotBytesMax(opts Options) int {
	return snapshotBytesFloor + 2*opts.WithDefaults().MaxProducers*snapEntryBytesMax
}

// Snapshot encodes the state as it is after every batch below offset.
func (s *State) Snapshot(offset int64) []byte {
	pids := make([]int64, 0, len(s.producers))
	for pid := range s.producers {
		pids = append(pids, pid)
	}
	// Sorted, so that equal states encode to equal bytes.
	sort.Slice(pids, func(i, j int) bool { return pids[i] < pids[j] })
	b := make([]byte, 0, snapshotBytesFloor+len(pids)*snapEntryBytesMax)
	b = append(b, snapshotMagic...)
	b = binary.BigEndian.AppendUint16(b, snapshotVersion)
	b = binary.BigEndian.AppendUint16(b, 0)
	b = binary.BigEndian.AppendUint64(b, uint64(offset))
	b = binary.BigEndian.AppendUint32(b, uint32(len(pids)))
	for _, pid := range pids {
		e := s.producers[pid]
		b = binary.BigEndian.AppendUint64(b, uint64(pid))
		b = binary.BigEndian.AppendUint16(b, uint16(e.Epoch))
		b = binary.BigEndian.AppendUint32(b, uint32(e.CoordinatorEpoch))
		b = binary.BigEndian.AppendUint64(b, uint64(e.LastTimestamp))
		b = binary.BigEndian.AppendUint64(b, uint64(e.TxnFirstOffset))
		b = append(b, byte(len(e.Batches)))
		for _, m := range e.Batches {
			b = binary.BigEndian.AppendUint32(b, uint32(m.FirstSeq))
			b = binary.BigEndian.AppendUint32(b, uint32(m.LastSeq))
			b = binary.BigEndian.AppendUint64(b, uint64(m.FirstOffset))
			b = binary.BigEndian.AppendUint64(b, uint64(m.LastOffset))
			b = binary.BigEndian.AppendUint64(b, uint64(m.Timestamp))
		}
	}
	return binary.BigEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
}

// DecodeSnapshot decodes a snapshot (path names it in errors) into a state
// with opts, and returns the offset it was taken at. It never panics; any
// damage is a *CorruptSnapshotError. Every entry is checked for
// consistency with that offset, so a decoded state is one that some log
// could have built.
func DecodeSnapshot(path string, b []byte, opts Options) (*State, int64, error) {
	bad := func(off int, format string, args ...any) (*State, int64, error) {
		return nil, 0, &CorruptSnapshotError{Path: path, Offset: off, Reason: fmt.Sprintf(format, args...)}
	}
	if len(b) < snapshotBytesFloor {
		return bad(0, "%d bytes is too short", len(b))
	}
	if string(b[:4]) != snapshotMagic {
		return bad(0, "magic %q", b[:4])
	}
	if v := binary.BigEndian.Uint16(b[4:]); v != snapshotVersion {
		return bad(4, "version %d, this binary reads %d", v, snapshotVersion)
	}
	if f := binary.BigEndian.Uint16(b[6:]); f != 0 {
		// No flag is defined: one set means a newer writer.
		return bad(6, "unknown flags %#04x", f)
	}
	body := b[:len(b)-snapTrailerBytes]
	if sum, got := binary.BigEndian.Uint32(b[len(body):]), crc32.Checksum(body, castagnoli); sum != got {
		return bad(len(body), "crc %#08x, computed %#08x", sum, got)
	}
	offset := int64(binary.BigEndian.Uint64(b[8:]))
	if offset < 0 {
		return bad(8, "offset %d", offset)
	}
	n := int(binary.BigEndian.Uint32(b[16:]))
	if n > (len(body)-snapHeaderBytes)/snapEntryBytes {
		return bad(16, "%d producers do not fit %d bytes", n, len(body))
	}
	s := New(opts)
	pos := snapHeaderBytes
	be := binary.BigEndian
	for i := 0; i < n; i++ {
		if len(body)-pos < snapEntryBytes {
			return bad(pos, "producer %d of %d is cut short", i, n)
		}
		at := pos
		e := &Entry{
			ProducerID:       int64(be.Uint64(body[pos:])),
			Epoch:            int16(be.Uint16(body[pos+8:])),
			CoordinatorEpoch: int32(be.Uint32(body[pos+10:])),
			LastTimestamp:    int64(be.Uint64(body[pos+14:])),
			TxnFirstOffset:   int64(be.Uint64(body[pos+22:])),
		}
		nb := int(body[pos+30])
		pos += snapEntryBytes
		switch {
		case e.ProducerID < 0:
			return bad(at, "producer id %d", e.ProducerID)
		case s.producers[e.ProducerID] != nil:
			return bad(at, "producer %d twice", e.ProducerID)
		case e.TxnFirstOffset < NoOffset || e.TxnFirstOffset >= offset:
			return bad(at+22, "producer %d transaction starts at %d, snapshot at %d", e.ProducerID, e.TxnFirstOffset, offset)
		case nb > BatchesRetained:
			return bad(at+30, "producer %d has %d batches, at most %d", e.ProducerID, nb, BatchesRetained)
		case len(body)-pos < nb*snapBatchBytes:
			return bad(pos, "producer %d batches cut short", e.ProducerID)
		}
		prev := int64(-1)
		for j := 0; j < nb; j++ {
			m := BatchMeta{
				FirstSeq:    int32(be.Uint32(body[pos:])),
				LastSeq:     int32(be.Uint32(body[pos+4:])),
				FirstOffset: int64(be.Uint64(body[pos+8:])),
				LastOffset:  int64(be.Uint64(body[pos+16:])),
				Timestamp:   int64(be.Uint64(body[pos+24:])),
			}
			if m.FirstOffset <= prev || m.LastOffset < m.FirstOffset || m.LastOffset >= offset ||
				m.LastOffset-m.FirstOffset > math.MaxInt32 {
				return bad(pos, "producer %d batch %d at offsets [%d, %d] after %d, snapshot at %d",
					e.ProducerID, j, m.FirstOffset, m.LastOffset, prev, offset)
			}
			prev = m.LastOffset
			e.Batches = append(e.Batches, m)
			pos += snapBatchBytes
		}
		s.producers[e.ProducerID] = e
		if e.TxnFirstOffset != NoOffset {
			s.addOngoing(openTxn{first: e.TxnFirstOffset, pid: e.ProducerID})
		}
	}
	if pos != len(body) {
		return bad(pos, "%d bytes after the last producer", len(body)-pos)
	}
	return s, offset, nil
}
