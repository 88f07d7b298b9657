package batch

import (
	"bytes"
	"encoding/binary"
	"errors"
	"runtime"
	"strings"
	"testing"
)

var allCodecs = []Codec{CodecNone, CodecGzip, CodecSnappy, CodecLZ4, CodecZstd}

func collect(t testing.TB, b []byte) []Record {
	t.Helper()
	var out []Record
	err := Records(b, func(r *Record) error {
		c := *r
		c.Key = cloneNil(r.Key)
		c.Value = cloneNil(r.Value)
		c.Headers = nil
		for _, h := range r.Headers {
			c.Headers = append(c.Headers, RecordHeader{Key: cloneNil(h.Key), Value: cloneNil(h.Value), ValueNull: h.ValueNull})
		}
		out = append(out, c)
		return nil
	})
	if err != nil {
		t.Fatalf("Records: %v", err)
	}
	return out
}

// cloneNil is bytes.Clone, which also keeps nil and empty apart.
func cloneNil(b []byte) []byte { return bytes.Clone(b) }

// checkSame compares what Build was given with what Records decoded.
func checkSame(t testing.TB, in, out []Record) {
	t.Helper()
	if len(in) != len(out) {
		t.Fatalf("%d records in, %d out", len(in), len(out))
	}
	for i := range in {
		a, b := &in[i], &out[i]
		keyNull := a.KeyNull || a.Key == nil
		valNull := a.ValueNull || a.Value == nil
		if b.OffsetDelta != int32(i) || b.TimestampDelta != a.TimestampDelta ||
			b.KeyNull != keyNull || (b.Key == nil) != keyNull || !bytes.Equal(a.Key, b.Key) ||
			b.ValueNull != valNull || (b.Value == nil) != valNull || (!valNull && !bytes.Equal(a.Value, b.Value)) ||
			len(a.Headers) != len(b.Headers) {
			t.Fatalf("record %d:\n in %+v\nout %+v", i, *a, *b)
		}
		for j := range a.Headers {
			x, y := a.Headers[j], b.Headers[j]
			if !bytes.Equal(x.Key, y.Key) || y.Key == nil || x.ValueNull != y.ValueNull || !bytes.Equal(x.Value, y.Value) || (y.Value == nil) != y.ValueNull {
				t.Fatalf("record %d header %d: in %+v out %+v", i, j, x, y)
			}
		}
	}
}

func TestRoundTripEveryCodec(t *testing.T) {
	sizes := []struct {
		n, valueBytes int
	}{
		{1, 0},
		{1, 10},
		{100, 200},
		// Past the 32 KiB xerial and 64 KiB lz4 block sizes.
		{40, 20 << 10},
	}
	for _, codec := range allCodecs {
		for _, sz := range sizes {
			recs := testRecords(uint64(sz.n), sz.n, sz.valueBytes)
			b := mustBuild(t, codec, recs, BuildOptions{})
			h, err := Validate(b)
			if err != nil {
				t.Fatalf("%v %d records: %v", codec, sz.n, err)
			}
			if h.Codec() != codec || h.NumRecords != int32(sz.n) {
				t.Fatalf("%v: header %+v", codec, h)
			}
			checkSame(t, recs, collect(t, b))
		}
	}
}

func TestCompressRoundTrip(t *testing.T) {
	src := bytes.Repeat([]byte("sluice "), 20000)
	for _, codec := range allCodecs {
		prefix := []byte("keep")
		out, err := Compress(codec, prefix, src)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.HasPrefix(out, prefix) {
			t.Fatalf("%v: Compress did not append to dst", codec)
		}
		got, err := decompress(codec, nil, out[len(prefix):], len(src))
		if err != nil || !bytes.Equal(got, src) {
			t.Fatalf("%v: round trip: %v", codec, err)
		}
		if _, err := decompress(codec, nil, out[len(prefix):], len(src)-1); !errors.Is(err, ErrTooLarge) {
			t.Fatalf("%v: one byte over the limit: %v", codec, err)
		}
		// Empty input round-trips too.
		out, err = Compress(codec, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := decompress(codec, nil, out, 0); err != nil || len(got) != 0 {
			t.Fatalf("%v: empty round trip: %q, %v", codec, got, err)
		}
	}
	if _, err := Compress(Codec(5), nil, src); err == nil {
		t.Fatal("Compress with codec 5")
	}
}

// A batch whose records decompress far past the limit must be refused
// without the decoder ever holding that much.
func TestDecompressionBombBounded(t *testing.T) {
	const bombBytes = 16 << 20
	const limit = 64 << 10
	recs := []Record{{Value: make([]byte, bombBytes)}}
	for _, codec := range allCodecs[1:] {
		b := mustBuild(t, codec, recs, BuildOptions{})
		// Warm the pools, so that only this call's allocations count.
		_ = RecordsLimit(b, limit, func(*Record) error { return nil })
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		err := RecordsLimit(b, limit, func(*Record) error { t.Fatal("callback called"); return nil })
		runtime.ReadMemStats(&after)
		if !errors.Is(err, ErrTooLarge) || errors.Is(err, ErrCorrupt) {
			t.Fatalf("%v: %v", codec, err)
		}
		if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 4<<20 {
			t.Errorf("%v: refusing the bomb allocated %d bytes", codec, alloc)
		}
	}
	// The same batch is fine under the default limit.
	b := mustBuild(t, CodecZstd, recs, BuildOptions{})
	if err := Records(b, func(r *Record) error {
		if len(r.Value) != bombBytes {
			t.Fatalf("value of %d bytes", len(r.Value))
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	// A negative limit is a limit of zero, not a panic.
	for _, codec := range allCodecs {
		b := mustBuild(t, codec, []Record{{Value: []byte("x")}}, BuildOptions{})
		if err := RecordsLimit(b, -1, func(*Record) error { return nil }); !errors.Is(err, ErrTooLarge) {
			t.Fatalf("%v with a negative limit: %v", codec, err)
		}
	}
	// An uncompressed batch is held to the limit as well.
	plain := mustBuild(t, CodecNone, []Record{{Value: make([]byte, limit)}}, BuildOptions{})
	if err := RecordsLimit(plain, limit, func(*Record) error { return nil }); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("uncompressed over the limit: %v", err)
	}
}

// rawBatch wraps an already-encoded records section in a valid header.
func rawBatch(codec Codec, count int32, records []byte) []byte {
	b := make([]byte, HeaderSize, HeaderSize+len(records))
	b = append(b, records...)
	be := binary.BigEndian
	be.PutUint32(b[lengthOff:], uint32(len(b)-lengthFieldEnd))
	b[magicOff] = Magic
	be.PutUint16(b[attributesOff:], uint16(codec))
	be.PutUint32(b[lastOffsetDeltaOff:], uint32(max(count-1, 0)))
	be.PutUint32(b[numRecordsOff:], uint32(count))
	return recrc(b)
}

// rec encodes one record from its fields given as varints and raw bytes.
func rec(fields ...any) []byte {
	var body []byte
	for _, f := range fields {
		switch f := f.(type) {
		case int:
			body = binary.AppendVarint(body, int64(f))
		case byte:
			body = append(body, f)
		case string:
			body = append(body, f...)
		case []byte:
			body = append(body, f...)
		}
	}
	return append(binary.AppendVarint(nil, int64(len(body))), body...)
}

func TestRecordsRejects(t *testing.T) {
	// attributes, timestampDelta, offsetDelta, key, value, headers
	good := rec(byte(0), 5, 0, 1, "k", 1, "v", 0)
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	tests := []struct {
		name    string
		count   int32
		records []byte
		reason  string
	}{
		{"missing record", 2, good, "record 1: missing"},
		{"trailing bytes", 1, cat(good, []byte{0}), "1 bytes after the last of 1 records"},
		{"bad length varint", 1, bytes.Repeat([]byte{0xff}, 6), "record 0: bad length varint"},
		{"negative length", 1, binary.AppendVarint(nil, -3), "record 0: length -3"},
		{"length past end", 1, cat(binary.AppendVarint(nil, 50), good), "record 0: length 50"},
		{"empty record", 1, rec(), "record 0: no attributes byte"},
		{"key past record", 1, rec(byte(0), 0, 0, 9, "k", -1, 0), "record 0: key length 9"},
		{"value past record", 1, rec(byte(0), 0, 0, -1, 4, "v"), "record 0: value length 4"},
		{"fields short of length", 1, rec(byte(0), 0, 0, -1, -1, 0, byte(0)), "record 0: length 7 but its fields take 6"},
		{"negative header count", 1, rec(byte(0), 0, 0, -1, -1, -1), "record 0: header count -1"},
		{"huge header count", 1, rec(byte(0), 0, 0, -1, -1, 1<<30), "record 0: header count 1073741824"},
		{"null header key", 1, rec(byte(0), 0, 0, -1, -1, 1, -1, -1), "record 0: header 0 has a null key"},
		{"header value past end", 1, rec(byte(0), 0, 0, -1, -1, 1, 1, "h", 7), "record 0: header value length 7"},
		{"offset delta too wide", 1, rec(byte(0), 0, []byte{0x80, 0x80, 0x80, 0x80, 0x80, 0x01}, -1, -1, 0), "record 0: bad offset delta varint"},
		{"offset delta out of int32", 1, rec(byte(0), 0, []byte{0xff, 0xff, 0xff, 0xff, 0x1f}, -1, -1, 0), "record 0: bad offset delta varint"},
		{"second record bad", 2, cat(good, rec(byte(0), 0, 1, 3)), "record 1: key length 3 with 0 bytes left"},
	}
	for _, tt := range tests {
		for _, codec := range []Codec{CodecNone, CodecZstd} {
			t.Run(tt.name+"/"+codec.String(), func(t *testing.T) {
				payload, err := Compress(codec, nil, tt.records)
				if err != nil {
					t.Fatal(err)
				}
				b := rawBatch(codec, tt.count, payload)
				err = Records(b, func(*Record) error { return nil })
				var ce *CorruptError
				if !errors.As(err, &ce) || !errors.Is(err, ErrCorrupt) || !strings.Contains(ce.Reason, tt.reason) {
					t.Fatalf("got %v, want reason %q", err, tt.reason)
				}
				if codec == CodecNone && ce.Offset < HeaderSize {
					t.Fatalf("offset %d is inside the header", ce.Offset)
				}
				if codec != CodecNone && !strings.Contains(ce.Reason, "decompressed records") {
					t.Fatalf("compressed error does not say where: %v", err)
				}
			})
		}
	}

	// A good batch of those records decodes, with the null conventions.
	b := rawBatch(CodecNone, 2, cat(good, rec(byte(0), -2, 1, -1, 0, 1, 1, "h", -1)))
	got := collect(t, b)
	if len(got) != 2 || string(got[0].Key) != "k" || got[0].TimestampDelta != 5 ||
		!got[1].KeyNull || got[1].Key != nil || got[1].ValueNull || got[1].Value == nil ||
		len(got[1].Headers) != 1 || !got[1].Headers[0].ValueNull || got[1].TimestampDelta != -2 {
		t.Fatalf("decoded %+v", got)
	}
}

func TestRecordsRejectsBadFraming(t *testing.T) {
	good := mustBuild(t, CodecGzip, testRecords(7, 3, 10), BuildOptions{})
	for name, tc := range map[string]struct {
		b  []byte
		is error
	}{
		"short":       {good[:len(good)-1], ErrTruncated},
		"trailing":    {append(bytes.Clone(good), 0), ErrCorrupt},
		"codec 6":     {func() []byte { b := bytes.Clone(good); b[attributesOff+1] = 6; return b }(), ErrCorrupt},
		"old magic":   {func() []byte { b := bytes.Clone(good); b[magicOff] = 1; return b }(), ErrUnsupportedMagic},
		"neg count":   {recrc(put32(numRecordsOff, -1)(bytes.Clone(good))), ErrCorrupt},
		"bad gzip":    {rawBatch(CodecGzip, 1, []byte("not gzip at all")), ErrCorrupt},
		"bad snappy":  {rawBatch(CodecSnappy, 1, []byte{0x05, 0xff, 0xff}), ErrCorrupt},
		"snappy bomb": {rawBatch(CodecSnappy, 1, []byte{0xff, 0xff, 0xff, 0xff, 0x0f, 1}), ErrTooLarge},
		"bad xerial":  {rawBatch(CodecSnappy, 1, append(append([]byte{}, xerialMagic...), 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 1)), ErrCorrupt},
		"bad lz4":     {rawBatch(CodecLZ4, 1, []byte{0x04, 0x22, 0x4d, 0x18, 0xff}), ErrCorrupt},
		"bad zstd":    {rawBatch(CodecZstd, 1, []byte{0x28, 0xb5, 0x2f, 0xfd, 0xff, 0xff}), ErrCorrupt},
		"short gzip":  {rawBatch(CodecGzip, 1, func() []byte { c, _ := Compress(CodecGzip, nil, rec(byte(0), 0, 0, -1, -1, 0)); return c[:len(c)-4] }()), ErrCorrupt},
		"short zstd":  {rawBatch(CodecZstd, 1, func() []byte { c, _ := Compress(CodecZstd, nil, rec(byte(0), 0, 0, -1, -1, 0)); return c[:len(c)-2] }()), ErrCorrupt},
		"empty lz4":   {rawBatch(CodecLZ4, 1, nil), ErrCorrupt},
		"empty gzip":  {rawBatch(CodecGzip, 1, nil), ErrCorrupt},
		"count large": {rawBatch(CodecNone, 1<<30, rec(byte(0), 0, 0, -1, -1, 0)), ErrCorrupt},
	} {
		err := Records(tc.b, func(*Record) error { return nil })
		if !errors.Is(err, tc.is) {
			t.Errorf("%s: got %v, want %v", name, err, tc.is)
		}
	}
}

func TestRecordsCallbackError(t *testing.T) {
	stop := errors.New("stop")
	b := mustBuild(t, CodecLZ4, testRecords(8, 10, 10), BuildOptions{})
	calls := 0
	err := Records(b, func(*Record) error {
		calls++
		if calls == 3 {
			return stop
		}
		return nil
	})
	if err != stop || calls != 3 {
		t.Fatalf("err %v after %d calls", err, calls)
	}
}

func TestBuildRejects(t *testing.T) {
	if _, err := Build(CodecNone, 0, nil, BuildOptions{}); err == nil {
		t.Error("Build with no records")
	}
	if _, err := Build(Codec(7), 0, []Record{{}}, BuildOptions{}); err == nil {
		t.Error("Build with codec 7")
	}
}

func TestCodecString(t *testing.T) {
	want := []string{"none", "gzip", "snappy", "lz4", "zstd"}
	for i, c := range allCodecs {
		if c.String() != want[i] || !c.Valid() {
			t.Errorf("codec %d: %q", i, c)
		}
	}
	if Codec(5).Valid() || Codec(-1).Valid() || Codec(5).String() != "codec(5)" {
		t.Error("invalid codecs")
	}
}

// TestXerialGolden decodes snappy in the xerial framing snappy-java's
// SnappyOutputStream writes (as the Java producer does), built by hand so
// that it does not depend on our encoder: the header, then two blocks, each
// a big-endian length and a raw snappy block of literals.
func TestXerialGolden(t *testing.T) {
	src := []byte{
		0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0, // magic
		0, 0, 0, 1, 0, 0, 0, 1, // version, minimum compatible version
		0, 0, 0, 7, 0x05, 0x10, 'h', 'e', 'l', 'l', 'o', // "hello"
		0, 0, 0, 8, 0x06, 0x14, ' ', 'w', 'o', 'r', 'l', 'd', // " world"
	}
	got, err := decompress(CodecSnappy, nil, src, 100)
	if err != nil || string(got) != "hello world" {
		t.Fatalf("got %q, %v", got, err)
	}
	if _, err := decompress(CodecSnappy, nil, src, 10); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("over the limit: %v", err)
	}
	for _, cut := range []int{17, 20, 26, 30} {
		if _, err := decompress(CodecSnappy, nil, src[:cut], 100); err == nil {
			t.Errorf("cut at %d: no error", cut)
		}
	}
	// The same payload without the framing is a raw snappy block.
	if got, err := decompress(CodecSnappy, nil, src[20:27], 100); err != nil || string(got) != "hello" {
		t.Fatalf("raw block: %q, %v", got, err)
	}
}
