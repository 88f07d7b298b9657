package batch

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math/rand/v2"
	"strings"
	"testing"
)

// testRecords returns n records with keys and values of up to valueBytes
// bytes drawn from a seeded generator, with a mix of null and empty keys,
// null values and headers.
func testRecords(seed uint64, n, valueBytes int) []Record {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	recs := make([]Record, n)
	for i := range recs {
		r := &recs[i]
		r.TimestampDelta = int64(i * 3)
		switch i % 4 {
		case 0: // null key
		case 1:
			r.Key = []byte{}
		default:
			r.Key = fmt.Appendf(nil, "key-%d", rng.IntN(1000))
		}
		if i%7 == 6 {
			r.ValueNull = true
		} else {
			v := make([]byte, rng.IntN(valueBytes+1))
			// Half random, half repetitive, so every codec has work.
			for j := range v {
				if j%2 == 0 {
					v[j] = byte(rng.Uint32())
				} else {
					v[j] = 'a' + byte(j%7)
				}
			}
			r.Value = v
		}
		if i%3 == 0 {
			r.Headers = []RecordHeader{
				{Key: []byte("trace"), Value: fmt.Appendf(nil, "t%d", i)},
				{Key: []byte("nullv"), ValueNull: true},
				{Key: []byte{}, Value: []byte{}},
			}
		}
	}
	return recs
}

func mustBuild(t testing.TB, codec Codec, recs []Record, opts BuildOptions) []byte {
	t.Helper()
	b, err := Build(codec, 1_700_000_000_000, recs, opts)
	if err != nil {
		t.Fatalf("Build(%v): %v", codec, err)
	}
	return b
}

// recrc recomputes the CRC after a test has edited fields under it, so
// that the check under test is the one that fires.
func recrc(b []byte) []byte {
	binary.BigEndian.PutUint32(b[crcOff:], crc32.Checksum(b[attributesOff:], castagnoli))
	return b
}

func put32(off int, v int32) func([]byte) []byte {
	return func(b []byte) []byte { binary.BigEndian.PutUint32(b[off:], uint32(v)); return b }
}

func TestParseHeaderFields(t *testing.T) {
	recs := testRecords(1, 5, 10)
	b := mustBuild(t, CodecGzip, recs, BuildOptions{
		ProducerID: 77, ProducerEpoch: 3, BaseSequence: 41, Transactional: true,
	})
	SetBaseOffset(b, 1234)
	SetPartitionLeaderEpoch(b, 9)
	h, err := ParseHeader(b)
	if err != nil {
		t.Fatal(err)
	}
	want := Header{
		BaseOffset: 1234, Length: int32(len(b) - 12), PartitionLeaderEpoch: 9, Magic: 2,
		CRC: binary.BigEndian.Uint32(b[17:]), Attributes: int16(CodecGzip) | 0x10,
		LastOffsetDelta: 4, BaseTimestamp: 1_700_000_000_000, MaxTimestamp: 1_700_000_000_012,
		ProducerID: 77, ProducerEpoch: 3, BaseSequence: 41, NumRecords: 5,
	}
	if h != want {
		t.Fatalf("header\n got %+v\nwant %+v", h, want)
	}
	if h.Size() != len(b) || h.LastOffset() != 1238 || h.Codec() != CodecGzip ||
		!h.Transactional() || h.Control() || h.LogAppendTime() || h.HasDeleteHorizon() {
		t.Fatalf("accessors disagree with %+v", h)
	}
	// A plain batch: producer fields -1, no attribute bits but the codec.
	h, err = ParseHeader(mustBuild(t, CodecNone, recs, BuildOptions{ProducerID: 5}))
	if err != nil {
		t.Fatal(err)
	}
	if h.ProducerID != -1 || h.ProducerEpoch != -1 || h.BaseSequence != -1 || h.PartitionLeaderEpoch != -1 || h.Attributes != 0 {
		t.Fatalf("plain batch header %+v", h)
	}
	h, _ = ParseHeader(mustBuild(t, CodecNone, recs[:1], BuildOptions{Control: true}))
	if !h.Control() {
		t.Fatal("control bit not set")
	}
}

func TestValidateRejects(t *testing.T) {
	good := mustBuild(t, CodecNone, testRecords(2, 3, 20), BuildOptions{})
	n := len(good)
	tests := []struct {
		name   string
		edit   func([]byte) []byte
		is     error
		not    error // must not match
		offset int64
		reason string
	}{
		{"empty", func(b []byte) []byte { return b[:0] }, ErrTruncated, nil, 0, "header needs"},
		{"short before magic", func(b []byte) []byte { return b[:10] }, ErrTruncated, nil, 10, "header needs"},
		{"short header", func(b []byte) []byte { return b[:40] }, ErrTruncated, nil, 40, "header needs"},
		{"short batch", func(b []byte) []byte { return b[:n-1] }, ErrTruncated, nil, int64(n - 1), "batch length"},
		{"length below header", put32(lengthOff, 48), ErrCorrupt, ErrTruncated, lengthOff, "shorter than"},
		{"negative length", put32(lengthOff, -1), ErrCorrupt, ErrTruncated, lengthOff, "shorter than"},
		{"length too long", put32(lengthOff, int32(n-12+1)), ErrTruncated, nil, int64(n), "batch length"},
		{"trailing bytes", func(b []byte) []byte { return append(b, 0) }, ErrCorrupt, ErrTruncated, lengthOff, "accounts for"},
		{"magic 0", func(b []byte) []byte { b[magicOff] = 0; return b }, ErrUnsupportedMagic, ErrCorrupt, 0, ""},
		{"magic 1", func(b []byte) []byte { b[magicOff] = 1; return b }, ErrUnsupportedMagic, ErrCorrupt, 0, ""},
		{"magic 1 short", func(b []byte) []byte { b[magicOff] = 1; return b[:26] }, ErrUnsupportedMagic, ErrCorrupt, 0, ""},
		{"magic 3", func(b []byte) []byte { b[magicOff] = 3; return b }, ErrCorrupt, ErrUnsupportedMagic, magicOff, "unknown magic"},
		{"magic -1", func(b []byte) []byte { b[magicOff] = 0xff; return b }, ErrCorrupt, ErrUnsupportedMagic, magicOff, "unknown magic"},
		{"bad crc field", func(b []byte) []byte { b[crcOff] ^= 1; return b }, ErrCorrupt, nil, crcOff, "crc"},
		{"bad crc payload", func(b []byte) []byte { b[n-1] ^= 0x80; return b }, ErrCorrupt, nil, crcOff, "crc"},
		{"bad crc attributes", func(b []byte) []byte { b[attributesOff+1] |= 0x08; return b }, ErrCorrupt, nil, crcOff, "crc"},
		{"unknown codec", func(b []byte) []byte { b[attributesOff+1] |= 5; return recrc(b) }, ErrCorrupt, nil, attributesOff, "codec"},
		{"count above delta", func(b []byte) []byte { return recrc(put32(numRecordsOff, 4)(b)) }, ErrCorrupt, nil, numRecordsOff, "record count 4"},
		{"count below delta", func(b []byte) []byte { return recrc(put32(numRecordsOff, 2)(b)) }, ErrCorrupt, nil, numRecordsOff, "does not match"},
		{"no records", func(b []byte) []byte { return recrc(put32(numRecordsOff, 0)(b)) }, ErrCorrupt, nil, numRecordsOff, "no records"},
		{"negative count", func(b []byte) []byte { return recrc(put32(numRecordsOff, -1)(b)) }, ErrCorrupt, nil, numRecordsOff, "record count -1"},
		{"negative delta", func(b []byte) []byte { return recrc(put32(lastOffsetDeltaOff, -1)(b)) }, ErrCorrupt, nil, lastOffsetDeltaOff, "negative last offset delta"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := tt.edit(bytes.Clone(good))
			h, err := Validate(b)
			if err == nil {
				t.Fatalf("Validate accepted: %+v", h)
			}
			if h != (Header{}) {
				t.Errorf("Validate returned a header with its error: %+v", h)
			}
			if !errors.Is(err, tt.is) {
				t.Fatalf("error %q is not %q", err, tt.is)
			}
			if tt.not != nil && errors.Is(err, tt.not) {
				t.Fatalf("error %q should not be %q", err, tt.not)
			}
			var ce *CorruptError
			if errors.As(err, &ce) {
				if ce.Offset != tt.offset || !strings.Contains(ce.Reason, tt.reason) {
					t.Fatalf("error %q: want offset %d and reason containing %q", err, tt.offset, tt.reason)
				}
			} else if tt.is != ErrUnsupportedMagic {
				t.Fatalf("error %q is not a *CorruptError", err)
			}
		})
	}
	if _, err := Validate(good); err != nil {
		t.Fatalf("the unedited batch: %v", err)
	}
}

// Verify is the check for batches read back from segments, where
// compaction may have removed records but kept the offset range.
func TestVerifyAcceptsCompactedBatches(t *testing.T) {
	good := mustBuild(t, CodecNone, testRecords(3, 3, 20), BuildOptions{})
	for _, count := range []int32{0, 1, 3} {
		b := recrc(put32(numRecordsOff, count)(bytes.Clone(good)))
		h, err := Verify(b)
		if err != nil || h.NumRecords != count {
			t.Fatalf("Verify with %d of 3 records: %+v, %v", count, h, err)
		}
		if _, err := Validate(b); (err == nil) != (count == 3) {
			t.Fatalf("Validate with %d of 3 records: %v", count, err)
		}
	}
}

func TestSetters(t *testing.T) {
	recs := testRecords(4, 10, 50)
	for _, codec := range []Codec{CodecNone, CodecZstd} {
		b := mustBuild(t, codec, recs, BuildOptions{Idempotent: true, ProducerID: 1, BaseSequence: 5})
		before, _ := ParseHeader(b)
		SetBaseOffset(b, 1<<40)
		SetPartitionLeaderEpoch(b, 17)
		h, err := Validate(b)
		if err != nil {
			t.Fatalf("%v: after SetBaseOffset/SetPartitionLeaderEpoch: %v", codec, err)
		}
		if h.BaseOffset != 1<<40 || h.PartitionLeaderEpoch != 17 || h.CRC != before.CRC || h.LastOffset() != 1<<40+9 {
			t.Fatalf("%v: %+v", codec, h)
		}

		// LogAppendTime changes the CRC; followed by another batch, only
		// the first may be covered.
		two := append(bytes.Clone(b), b...)
		SetMaxTimestampLogAppendTime(two, 42)
		h, err = Validate(two[:len(b)])
		if err != nil {
			t.Fatalf("%v: after SetMaxTimestampLogAppendTime: %v", codec, err)
		}
		if !h.LogAppendTime() || h.MaxTimestamp != 42 || h.CRC == before.CRC ||
			h.BaseTimestamp != before.BaseTimestamp || h.Codec() != codec || !bytes.Equal(two[len(b):], b) {
			t.Fatalf("%v: LogAppendTime header %+v", codec, h)
		}
		if err := Records(two[:len(b)], func(*Record) error { return nil }); err != nil {
			t.Fatalf("%v: records after LogAppendTime: %v", codec, err)
		}
	}
}

func TestSettersPanicOnShortBuffer(t *testing.T) {
	for name, fn := range map[string]func([]byte){
		"SetBaseOffset":                func(b []byte) { SetBaseOffset(b, 1) },
		"SetPartitionLeaderEpoch":      func(b []byte) { SetPartitionLeaderEpoch(b, 1) },
		"SetMaxTimestampLogAppendTime": func(b []byte) { SetMaxTimestampLogAppendTime(b, 1) },
	} {
		func() {
			defer func() {
				if r := recover(); r == nil || !strings.Contains(fmt.Sprint(r), name) {
					t.Errorf("%s: want a panic naming it, got %v", name, r)
				}
			}()
			fn(make([]byte, HeaderSize-1))
		}()
	}
	// A header claiming more bytes than the buffer holds.
	b := mustBuild(t, CodecNone, testRecords(5, 2, 5), BuildOptions{})
	defer func() {
		if recover() == nil {
			t.Error("SetMaxTimestampLogAppendTime on a truncated batch did not panic")
		}
	}()
	SetMaxTimestampLogAppendTime(b[:len(b)-1], 1)
}

func TestIter(t *testing.T) {
	var set []byte
	var starts []int
	for i, codec := range []Codec{CodecNone, CodecLZ4, CodecSnappy} {
		b := mustBuild(t, codec, testRecords(uint64(i), i+1, 30), BuildOptions{})
		SetBaseOffset(b, int64(i*10))
		starts = append(starts, len(set))
		set = append(set, b...)
	}
	got := 0
	it := NewIter(set)
	for it.Next() {
		h, raw := it.Header(), it.Batch()
		if it.Offset() != starts[got] || h.BaseOffset != int64(got*10) || len(raw) != h.Size() {
			t.Fatalf("batch %d: offset %d header %+v len %d", got, it.Offset(), h, len(raw))
		}
		if _, err := Validate(raw); err != nil {
			t.Fatalf("batch %d: %v", got, err)
		}
		got++
	}
	if it.Err() != nil || got != 3 || it.Offset() != len(set) {
		t.Fatalf("clean end: %d batches, offset %d, err %v", got, it.Offset(), it.Err())
	}
	if it.Next() {
		t.Fatal("Next after the end")
	}

	empty := NewIter(nil)
	if empty.Next() || empty.Err() != nil {
		t.Fatal("empty record set")
	}

	// A torn tail: the bytes end inside the last batch.
	for _, cut := range []int{1, 10, HeaderSize - 1, HeaderSize, len(set) - starts[2] - 1} {
		it := NewIter(set[:starts[2]+cut])
		n := 0
		for it.Next() {
			n++
		}
		if n != 2 || !errors.Is(it.Err(), ErrTruncated) || it.Offset() != starts[2] {
			t.Fatalf("cut %d: %d batches, offset %d, err %v", cut, n, it.Offset(), it.Err())
		}
		if it.Next() {
			t.Fatal("Next after an error")
		}
	}

	// Damage in the second header is reported at its position in the set.
	bad := bytes.Clone(set)
	bad[starts[1]+magicOff] = 7
	it = NewIter(bad)
	for it.Next() {
	}
	var ce *CorruptError
	if !errors.As(it.Err(), &ce) || ce.Offset != int64(starts[1]+magicOff) || errors.Is(it.Err(), ErrTruncated) || it.Offset() != starts[1] {
		t.Fatalf("bad magic: offset %d, err %v", it.Offset(), it.Err())
	}
	bad[starts[1]+magicOff] = 1
	it = NewIter(bad)
	for it.Next() {
	}
	if !errors.Is(it.Err(), ErrUnsupportedMagic) {
		t.Fatalf("old magic: %v", it.Err())
	}
}

func TestZeroAllocs(t *testing.T) {
	b := mustBuild(t, CodecNone, testRecords(6, 20, 100), BuildOptions{})
	set := append(append(bytes.Clone(b), b...), b...)
	var sink int64
	for name, fn := range map[string]func(){
		"ParseHeader": func() {
			h, _ := ParseHeader(b)
			sink += h.BaseOffset
		},
		"Validate": func() {
			h, _ := Validate(b)
			sink += h.BaseOffset
		},
		"Verify": func() {
			h, _ := Verify(b)
			sink += h.BaseOffset
		},
		"Iter": func() {
			for it := NewIter(set); it.Next(); {
				sink += int64(len(it.Batch())) + it.Header().BaseOffset
			}
		},
		"SetBaseOffset":                func() { SetBaseOffset(b, sink) },
		"SetMaxTimestampLogAppendTime": func() { SetMaxTimestampLogAppendTime(b, sink) },
	} {
		if n := testing.AllocsPerRun(100, fn); n != 0 {
			t.Errorf("%s allocates %v times per call", name, n)
		}
	}
	if raceEnabled {
		return // sync.Pool drops items at random under the race detector
	}
	fn := func(r *Record) error { sink += int64(len(r.Key) + len(r.Value) + len(r.Headers)); return nil }
	if n := testing.AllocsPerRun(100, func() { _ = Records(b, fn) }); n != 0 {
		t.Errorf("Records on an uncompressed batch allocates %v times per call", n)
	}
}
