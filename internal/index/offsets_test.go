package index

import (
	"errors"
	"math"
	"testing"
)

// offsetsOf builds an offset index from (offset, position) pairs, failing
// the test on any Append error.
func offsetsOf(t testing.TB, base int64, pairs ...[2]int64) *Offsets {
	t.Helper()
	x := NewOffsets(base)
	for _, p := range pairs {
		if err := x.Append(p[0], p[1]); err != nil {
			t.Fatalf("Append(%d, %d): %v", p[0], p[1], err)
		}
	}
	return x
}

func TestOffsetsLookup(t *testing.T) {
	const base = 100
	three := [][2]int64{{100, 0}, {110, 4096}, {125, 9000}}
	tests := []struct {
		name    string
		entries [][2]int64
		target  int64
		wantOff int64
		wantPos int64
	}{
		{"empty", nil, 150, base, 0},
		{"empty below base", nil, 5, base, 0},
		{"below base", three, 99, base, 0},
		{"min int64", three, math.MinInt64, base, 0},
		{"exact first", three, 100, 100, 0},
		{"between first and second", three, 105, 100, 0},
		{"exact middle", three, 110, 110, 4096},
		{"just before last", three, 124, 110, 4096},
		{"exact last", three, 125, 125, 9000},
		{"after last", three, 1 << 40, 125, 9000},
		{"max int64", three, math.MaxInt64, 125, 9000},
		{"before first entry past base", [][2]int64{{103, 50}}, 102, base, 0},
		{"single exact", [][2]int64{{103, 50}}, 103, 103, 50},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			x := offsetsOf(t, base, tc.entries...)
			gotOff, gotPos := x.Lookup(tc.target)
			if gotOff != tc.wantOff || gotPos != tc.wantPos {
				t.Errorf("Lookup(%d) = (%d, %d), want (%d, %d)", tc.target, gotOff, gotPos, tc.wantOff, tc.wantPos)
			}
		})
	}
}

func TestOffsetsAppendErrors(t *testing.T) {
	const base = 1000
	tests := []struct {
		name     string
		offset   int64
		position int64
		want     error
	}{
		{"offset below base", 999, 100, ErrRelativeOverflow},
		{"relative offset past uint32", base + math.MaxUint32 + 1, 100, ErrRelativeOverflow},
		{"max int64 offset", math.MaxInt64, 100, ErrRelativeOverflow},
		{"negative position", 1020, -1, ErrRelativeOverflow},
		{"position past uint32", 1020, math.MaxUint32 + 1, ErrRelativeOverflow},
		{"same offset", 1010, 600, ErrNotIncreasing},
		{"smaller offset", 1005, 600, ErrNotIncreasing},
		{"same position", 1020, 500, ErrNotIncreasing},
		{"smaller position", 1020, 400, ErrNotIncreasing},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			x := offsetsOf(t, base, [2]int64{1010, 500})
			before := string(x.FileBytes())
			err := x.Append(tc.offset, tc.position)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Append(%d, %d) = %v, want %v", tc.offset, tc.position, err, tc.want)
			}
			if string(x.FileBytes()) != before {
				t.Errorf("failed Append changed the index")
			}
		})
	}
}

func TestOffsetsAppendLimits(t *testing.T) {
	// The largest representable entry is accepted.
	x := offsetsOf(t, 7, [2]int64{7, 0}, [2]int64{7 + math.MaxUint32, math.MaxUint32})
	off, pos, ok := x.Last()
	if !ok || off != 7+math.MaxUint32 || pos != math.MaxUint32 {
		t.Fatalf("Last() = (%d, %d, %v)", off, pos, ok)
	}
	if got, _ := x.Lookup(math.MaxInt64); got != off {
		t.Errorf("Lookup(max) = %d, want %d", got, off)
	}
	// A base near the top of int64 still works for offsets up to MaxInt64.
	y := offsetsOf(t, math.MaxInt64-10, [2]int64{math.MaxInt64, 1})
	if got, pos := y.Lookup(math.MaxInt64); got != math.MaxInt64 || pos != 1 {
		t.Errorf("Lookup near top = (%d, %d)", got, pos)
	}
	// A negative base is arithmetic like any other.
	z := offsetsOf(t, math.MinInt64, [2]int64{math.MinInt64 + 5, 1})
	if got, _ := z.Lookup(math.MaxInt64); got != math.MinInt64+5 {
		t.Errorf("Lookup with min base = %d", got)
	}
}

func TestOffsetsLastAndLen(t *testing.T) {
	x := NewOffsets(50)
	if _, _, ok := x.Last(); ok || x.Len() != 0 {
		t.Fatalf("empty: Last ok=%v Len=%d", ok, x.Len())
	}
	if x.BaseOffset() != 50 || len(x.FileBytes()) != HeaderSize {
		t.Fatalf("empty: base %d, %d file bytes", x.BaseOffset(), len(x.FileBytes()))
	}
	x = offsetsOf(t, 50, [2]int64{50, 0}, [2]int64{60, 10})
	if off, pos, ok := x.Last(); !ok || off != 60 || pos != 10 || x.Len() != 2 {
		t.Fatalf("Last() = (%d, %d, %v), Len %d", off, pos, ok, x.Len())
	}
	if len(x.FileBytes()) != HeaderSize+2*OffsetEntrySize {
		t.Fatalf("%d file bytes", len(x.FileBytes()))
	}
}

func TestOffsetsTruncate(t *testing.T) {
	entries := [][2]int64{{100, 0}, {110, 4096}, {125, 9000}}
	tests := []struct {
		name    string
		byPos   bool
		at      int64
		wantLen int
	}{
		{"offset below base", false, 50, 0},
		{"offset at base", false, 100, 0},
		{"offset min int64", false, math.MinInt64, 0},
		{"offset between", false, 105, 1},
		{"offset exact middle", false, 110, 1},
		{"offset exact last", false, 125, 2},
		{"offset after last", false, 126, 3},
		{"offset max int64", false, math.MaxInt64, 3},
		{"position negative", true, -1, 0},
		{"position zero", true, 0, 0},
		{"position between", true, 100, 1},
		{"position exact middle", true, 4096, 1},
		{"position exact last", true, 9000, 2},
		{"position after last", true, 9001, 3},
		{"position past uint32", true, math.MaxUint32 + 10, 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			x := offsetsOf(t, 100, entries...)
			if tc.byPos {
				x.TruncateFromPosition(tc.at)
			} else {
				x.TruncateFrom(tc.at)
			}
			if x.Len() != tc.wantLen {
				t.Fatalf("Len() = %d, want %d", x.Len(), tc.wantLen)
			}
			if len(x.FileBytes()) != HeaderSize+tc.wantLen*OffsetEntrySize {
				t.Fatalf("%d file bytes for %d entries", len(x.FileBytes()), tc.wantLen)
			}
			// The truncated index equals one built from the kept entries,
			// and accepts appends after its new last entry.
			want := offsetsOf(t, 100, entries[:tc.wantLen]...)
			if string(x.FileBytes()) != string(want.FileBytes()) {
				t.Fatalf("bytes differ from a freshly built index")
			}
			if err := x.Append(200, 20000); err != nil {
				t.Fatalf("Append after truncation: %v", err)
			}
		})
	}
}

func TestOffsetsLookupAllocs(t *testing.T) {
	x := NewOffsets(0)
	for i := range int64(1000) {
		if err := x.Append(i*10, i*100); err != nil {
			t.Fatal(err)
		}
	}
	var sink int64
	allocs := testing.AllocsPerRun(100, func() {
		for _, target := range []int64{-1, 0, 5, 4990, 9990, 1 << 40} {
			o, p := x.Lookup(target)
			sink += o + p
		}
	})
	if allocs != 0 {
		t.Errorf("Lookup allocates %v times per run", allocs)
	}
	_ = sink
}

func BenchmarkOffsetsLookup(b *testing.B) {
	x := NewOffsets(0)
	for i := range int64(1 << 16) {
		if err := x.Append(i*10, i*100); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	var sink int64
	for i := 0; b.Loop(); i++ {
		o, _ := x.Lookup(int64(i*7919) % (10 << 16))
		sink += o
	}
	_ = sink
}
