package batch

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"
)

// fuzzSeeds are valid batches of every codec, plus a record set of two.
func fuzzSeeds(f *testing.F) [][]byte {
	var seeds [][]byte
	for i, codec := range allCodecs {
		b, err := Build(codec, 1000, testRecords(uint64(i), 1+i*3, 40), BuildOptions{Transactional: i%2 == 1, ProducerID: 9})
		if err != nil {
			f.Fatal(err)
		}
		seeds = append(seeds, b)
	}
	return seeds
}

// encodeHeader writes h back in the wire layout, independently of the
// package's parser, so the fuzzer can check that parsing round-trips.
func encodeHeader(h Header) []byte {
	be := binary.BigEndian
	b := be.AppendUint64(nil, uint64(h.BaseOffset))
	b = be.AppendUint32(b, uint32(h.Length))
	b = be.AppendUint32(b, uint32(h.PartitionLeaderEpoch))
	b = append(b, byte(h.Magic))
	b = be.AppendUint32(b, h.CRC)
	b = be.AppendUint16(b, uint16(h.Attributes))
	b = be.AppendUint32(b, uint32(h.LastOffsetDelta))
	b = be.AppendUint64(b, uint64(h.BaseTimestamp))
	b = be.AppendUint64(b, uint64(h.MaxTimestamp))
	b = be.AppendUint64(b, uint64(h.ProducerID))
	b = be.AppendUint16(b, uint16(h.ProducerEpoch))
	b = be.AppendUint32(b, uint32(h.BaseSequence))
	return be.AppendUint32(b, uint32(h.NumRecords))
}

// FuzzParseHeader: ParseHeader never panics; what it accepts is a magic-2
// header whose length covers the header, and it re-encodes to the same
// bytes. Iter over the same bytes never panics and never reads past them.
func FuzzParseHeader(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		f.Add(s)
		f.Add(s[:HeaderSize])
	}
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := ParseHeader(b)
		if err != nil {
			if h != (Header{}) {
				t.Fatalf("header %+v with error %v", h, err)
			}
			if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrUnsupportedMagic) {
				t.Fatalf("error %v matches no sentinel", err)
			}
		} else {
			if h.Magic != Magic || h.Size() < HeaderSize || !bytes.Equal(encodeHeader(h), b[:HeaderSize]) {
				t.Fatalf("accepted %+v from %x", h, b[:HeaderSize])
			}
		}
		total := 0
		it := NewIter(b)
		for it.Next() {
			if it.Offset() != total || len(it.Batch()) != it.Header().Size() {
				t.Fatalf("batch at %d: offset %d, %d bytes, header %+v", total, it.Offset(), len(it.Batch()), it.Header())
			}
			total += len(it.Batch())
		}
		if (it.Err() == nil) != (total == len(b)) || it.Offset() != total {
			t.Fatalf("iteration stopped at %d of %d (offset %d): %v", total, len(b), it.Offset(), it.Err())
		}
	})
}

// FuzzValidate: Validate never panics. When it accepts, so does Verify;
// the header round-trips; the batch stays valid after each in-place
// rewrite, which changes only the fields it should; and decoding its
// records does not panic. Each input is also tried with its CRC fixed up,
// so that mutations reach the checks behind the CRC.
func FuzzValidate(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		f.Add(s, int64(5), int32(3), int64(77))
	}
	f.Fuzz(func(t *testing.T, b []byte, offset int64, epoch int32, ts int64) {
		checkValidate(t, b, offset, epoch, ts)
		if len(b) >= HeaderSize {
			checkValidate(t, recrc(bytes.Clone(b)), offset, epoch, ts)
		}
	})
}

func checkValidate(t *testing.T, b []byte, offset int64, epoch int32, ts int64) {
	t.Helper()
	h, err := Validate(b)
	if err != nil {
		if h != (Header{}) {
			t.Fatalf("Validate returned a header with its error %v", err)
		}
		return
	}
	if vh, err := Verify(b); err != nil || vh != h {
		t.Fatalf("Verify disagrees: %+v, %v", vh, err)
	}
	if h.Size() != len(b) || !bytes.Equal(encodeHeader(h), b[:HeaderSize]) || h.NumRecords != h.LastOffsetDelta+1 {
		t.Fatalf("accepted header %+v", h)
	}

	c := bytes.Clone(b)
	SetBaseOffset(c, offset)
	SetPartitionLeaderEpoch(c, epoch)
	h2, err := Validate(c)
	if err != nil {
		t.Fatalf("after SetBaseOffset/SetPartitionLeaderEpoch: %v", err)
	}
	want := h
	want.BaseOffset, want.PartitionLeaderEpoch = offset, epoch
	if h2 != want || !bytes.Equal(c[HeaderSize:], b[HeaderSize:]) {
		t.Fatalf("rewrite changed more than two fields: %+v", h2)
	}

	SetMaxTimestampLogAppendTime(c, ts)
	h3, err := Validate(c)
	if err != nil {
		t.Fatalf("after SetMaxTimestampLogAppendTime: %v", err)
	}
	want.MaxTimestamp, want.Attributes, want.CRC = ts, h.Attributes|timestampTypeBit, h3.CRC
	if h3 != want || !h3.LogAppendTime() {
		t.Fatalf("LogAppendTime rewrite: %+v", h3)
	}

	_ = RecordsLimit(b, 1<<20, func(*Record) error { return nil })
}
