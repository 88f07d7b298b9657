package index

import (
	"encoding/binary"
	"errors"
	"math"
	"strings"
	"testing"
)

// header encodes a header by hand from the format document, independently
// of the package's encoder.
func header(magic string, ver, flags uint16, base int64) []byte {
	b := []byte(magic)
	b = binary.BigEndian.AppendUint16(b, ver)
	b = binary.BigEndian.AppendUint16(b, flags)
	return binary.BigEndian.AppendUint64(b, uint64(base))
}

func offsetEntry(rel, pos uint32) []byte {
	return binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint32(nil, rel), pos)
}

func timeEntry(ts int64, rel uint32) []byte {
	return binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint64(nil, uint64(ts)), rel)
}

func cat(parts ...[]byte) []byte {
	var b []byte
	for _, p := range parts {
		b = append(b, p...)
	}
	return b
}

func TestHeaderLayout(t *testing.T) {
	if got, want := NewOffsets(0x0102030405060708).FileBytes(), header("SLXO", 1, 0, 0x0102030405060708); string(got) != string(want) {
		t.Errorf("offsets header % x, want % x", got, want)
	}
	if got, want := NewTimes(-2).FileBytes(), header("SLXT", 1, 0, -2); string(got) != string(want) {
		t.Errorf("times header % x, want % x", got, want)
	}
	x := offsetsOf(t, 10, [2]int64{12, 0x0a0b0c0d})
	if got, want := x.FileBytes()[HeaderSize:], offsetEntry(2, 0x0a0b0c0d); string(got) != string(want) {
		t.Errorf("offset entry % x, want % x", got, want)
	}
	y := timesOf(t, 10, [2]int64{-3, 15})
	if got, want := y.FileBytes()[HeaderSize:], timeEntry(-3, 5); string(got) != string(want) {
		t.Errorf("time entry % x, want % x", got, want)
	}
}

type corruptCase struct {
	name   string
	base   int64
	file   []byte
	offset int64
	reason string // a substring of the reason
}

func checkCorrupt(t *testing.T, tc corruptCase, err error) {
	t.Helper()
	var ce *CorruptError
	if !errors.As(err, &ce) {
		t.Fatalf("err = %v, want *CorruptError", err)
	}
	if !errors.Is(err, ErrCorrupt) {
		t.Errorf("errors.Is(err, ErrCorrupt) is false")
	}
	if ce.Path != "p/00000000000000000100.index" || ce.Offset != tc.offset || !strings.Contains(ce.Reason, tc.reason) {
		t.Errorf("got %+v, want offset %d and reason containing %q", *ce, tc.offset, tc.reason)
	}
	want := "index: corrupt p/00000000000000000100.index at byte "
	if !strings.HasPrefix(err.Error(), want) {
		t.Errorf("Error() = %q, want prefix %q", err.Error(), want)
	}
}

func TestDecodeOffsetsCorrupt(t *testing.T) {
	const base = 100
	h := header("SLXO", 1, 0, base)
	tests := []corruptCase{
		{"empty file", base, nil, 0, "short header"},
		{"short header", base, h[:10], 0, "short header"},
		{"wrong magic", base, cat(header("SLXT", 1, 0, base)), 0, "magic"},
		{"garbage magic", base, cat(header("\x00\x00\x00\x00", 1, 0, base)), 0, "magic"},
		{"newer version", base, header("SLXO", 2, 0, base), 4, "newer"},
		{"version zero", base, header("SLXO", 0, 0, base), 4, "unknown version"},
		{"unknown flags", base, header("SLXO", 1, 1, base), 6, "flags"},
		{"wrong base offset", base, header("SLXO", 1, 0, base+1), 8, "base offset"},
		{"torn first entry", base, cat(h, offsetEntry(0, 0)[:5]), 16, "torn"},
		{"torn third entry", base, cat(h, offsetEntry(0, 0), offsetEntry(1, 10), []byte{0}), 32, "torn"},
		{"repeated offset", base, cat(h, offsetEntry(0, 0), offsetEntry(0, 10)), 24, "relative offset"},
		{"decreasing offset", base, cat(h, offsetEntry(0, 0), offsetEntry(5, 10), offsetEntry(4, 20)), 32, "relative offset"},
		{"repeated position", base, cat(h, offsetEntry(0, 7), offsetEntry(1, 7)), 24, "position"},
		{"decreasing position", base, cat(h, offsetEntry(0, 7), offsetEntry(1, 6)), 24, "position"},
		// Preallocated zeros after real entries (a crash before trimming)
		// are not entries.
		{"zero tail", base, cat(h, offsetEntry(0, 0), offsetEntry(3, 9), make([]byte, 8)), 32, "relative offset"},
		{"bad entry before torn tail", base, cat(h, offsetEntry(2, 0), offsetEntry(1, 9), []byte{1, 2}), 24, "relative offset"},
		{"offset overflows int64", math.MaxInt64 - 1, cat(header("SLXO", 1, 0, math.MaxInt64-1), offsetEntry(2, 0)), 16, "overflows"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			x, err := DecodeOffsets("p/00000000000000000100.index", tc.base, tc.file)
			if x != nil {
				t.Errorf("got an index with an error")
			}
			checkCorrupt(t, tc, err)
		})
	}
}

func TestDecodeTimesCorrupt(t *testing.T) {
	const base = 100
	h := header("SLXT", 1, 0, base)
	tests := []corruptCase{
		{"empty file", base, nil, 0, "short header"},
		{"short header", base, h[:15], 0, "short header"},
		{"wrong magic", base, header("SLXO", 1, 0, base), 0, "magic"},
		{"newer version", base, header("SLXT", 0xffff, 0, base), 4, "newer"},
		{"unknown flags", base, header("SLXT", 1, 0x8000, base), 6, "flags"},
		{"wrong base offset", base, header("SLXT", 1, 0, 0), 8, "base offset"},
		{"torn first entry", base, cat(h, timeEntry(5, 0)[:11]), 16, "torn"},
		{"torn second entry", base, cat(h, timeEntry(5, 0), timeEntry(6, 0)[:1]), 28, "torn"},
		{"repeated timestamp", base, cat(h, timeEntry(5, 0), timeEntry(5, 1)), 28, "timestamp"},
		{"decreasing timestamp", base, cat(h, timeEntry(5, 0), timeEntry(9, 1), timeEntry(-1, 2)), 40, "timestamp"},
		{"decreasing offset", base, cat(h, timeEntry(5, 3), timeEntry(6, 2)), 28, "relative offset"},
		{"offset overflows int64", math.MaxInt64, cat(header("SLXT", 1, 0, math.MaxInt64), timeEntry(1, 1)), 16, "overflows"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			x, err := DecodeTimes("p/00000000000000000100.index", tc.base, tc.file)
			if x != nil {
				t.Errorf("got an index with an error")
			}
			checkCorrupt(t, tc, err)
		})
	}
}

func TestDecodeValid(t *testing.T) {
	h := header("SLXO", 1, 0, 100)
	// Equal offsets are valid in the time index (non-decreasing), and the
	// full uint32 range is valid in both.
	o, err := DecodeOffsets("x", 100, cat(h, offsetEntry(0, 0), offsetEntry(math.MaxUint32, math.MaxUint32)))
	if err != nil {
		t.Fatal(err)
	}
	if off, pos := o.Lookup(math.MaxInt64); off != 100+math.MaxUint32 || pos != math.MaxUint32 {
		t.Errorf("Lookup = (%d, %d)", off, pos)
	}
	tm, err := DecodeTimes("x", 100, cat(header("SLXT", 1, 0, 100), timeEntry(math.MinInt64, 4), timeEntry(0, 4), timeEntry(math.MaxInt64, 4)))
	if err != nil {
		t.Fatal(err)
	}
	if off, ok := tm.Lookup(1); !ok || off != 104 {
		t.Errorf("Lookup = (%d, %v)", off, ok)
	}
	// A header-only file is an empty index.
	if e, err := DecodeOffsets("x", 100, h); err != nil || e.Len() != 0 {
		t.Errorf("header only: %v", err)
	}
}

func TestRoundTrip(t *testing.T) {
	o := offsetsOf(t, 1<<40, [2]int64{1 << 40, 0}, [2]int64{1<<40 + 17, 4096}, [2]int64{1<<40 + 99, 1 << 30})
	o2, err := DecodeOffsets("o", 1<<40, append([]byte(nil), o.FileBytes()...))
	if err != nil {
		t.Fatal(err)
	}
	if string(o2.FileBytes()) != string(o.FileBytes()) || o2.Len() != 3 || o2.BaseOffset() != 1<<40 {
		t.Fatalf("offsets round trip differs")
	}
	for _, target := range []int64{0, 1 << 40, 1<<40 + 50, 1<<40 + 99, math.MaxInt64} {
		a1, b1 := o.Lookup(target)
		a2, b2 := o2.Lookup(target)
		if a1 != a2 || b1 != b2 {
			t.Errorf("Lookup(%d): (%d, %d) before, (%d, %d) after", target, a1, b1, a2, b2)
		}
	}

	tm := timesOf(t, 5, [2]int64{-7, 5}, [2]int64{100, 5}, [2]int64{1700000000000, 77})
	tm2, err := DecodeTimes("t", 5, append([]byte(nil), tm.FileBytes()...))
	if err != nil {
		t.Fatal(err)
	}
	if string(tm2.FileBytes()) != string(tm.FileBytes()) || tm2.Len() != 3 {
		t.Fatalf("times round trip differs")
	}
	ts, off, ok := tm2.Last()
	if !ok || ts != 1700000000000 || off != 77 {
		t.Errorf("Last() = (%d, %d, %v)", ts, off, ok)
	}
}

// TestDecodeDoesNotWriteInput checks the ownership contract: a decoded index
// keeps the caller's slice but never writes into it, even where the slice
// has spare capacity.
func TestDecodeDoesNotWriteInput(t *testing.T) {
	backing := make([]byte, 64)
	file := append(backing[:0], cat(header("SLXO", 1, 0, 0), offsetEntry(0, 0))...)
	snapshot := string(backing)
	x, err := DecodeOffsets("x", 0, file)
	if err != nil {
		t.Fatal(err)
	}
	if err := x.Append(5, 50); err != nil {
		t.Fatal(err)
	}
	x.TruncateFrom(1)
	if err := x.Append(3, 30); err != nil {
		t.Fatal(err)
	}
	if string(backing) != snapshot {
		t.Errorf("decoded index wrote into the caller's memory")
	}

	tbacking := make([]byte, 64)
	tfile := append(tbacking[:0], cat(header("SLXT", 1, 0, 0), timeEntry(1, 0))...)
	tsnap := string(tbacking)
	y, err := DecodeTimes("y", 0, tfile)
	if err != nil {
		t.Fatal(err)
	}
	if err := y.Append(2, 1); err != nil {
		t.Fatal(err)
	}
	if string(tbacking) != tsnap {
		t.Errorf("decoded time index wrote into the caller's memory")
	}
}
