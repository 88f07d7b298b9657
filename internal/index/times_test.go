package index

import (
	"errors"
	"math"
	"testing"
)

// timesOf builds a time index from (timestamp, offset) pairs, failing the
// test on any Append error.
func timesOf(t testing.TB, base int64, pairs ...[2]int64) *Times {
	t.Helper()
	x := NewTimes(base)
	for _, p := range pairs {
		if err := x.Append(p[0], p[1]); err != nil {
			t.Fatalf("Append(%d, %d): %v", p[0], p[1], err)
		}
	}
	return x
}

func TestTimesLookup(t *testing.T) {
	const base = 100
	three := [][2]int64{{1000, 100}, {2000, 110}, {3000, 110}}
	tests := []struct {
		name      string
		entries   [][2]int64
		target    int64
		wantOff   int64
		wantOK    bool
		wantStart int64
	}{
		{"empty", nil, 5, 0, false, base},
		{"before first", three, 500, 100, true, base},
		{"min int64", three, math.MinInt64, 100, true, base},
		{"exact first", three, 1000, 100, true, base},
		{"between", three, 1500, 110, true, 100},
		{"exact middle", three, 2000, 110, true, 100},
		{"exact last", three, 3000, 110, true, 110},
		{"after last", three, 3001, 0, false, 110},
		{"max int64", three, math.MaxInt64, 0, false, 110},
		{"negative timestamps", [][2]int64{{-50, 101}, {-10, 102}}, -20, 102, true, 101},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			x := timesOf(t, base, tc.entries...)
			got, ok := x.Lookup(tc.target)
			if got != tc.wantOff || ok != tc.wantOK {
				t.Errorf("Lookup(%d) = (%d, %v), want (%d, %v)", tc.target, got, ok, tc.wantOff, tc.wantOK)
			}
			if got := x.ScanStart(tc.target); got != tc.wantStart {
				t.Errorf("ScanStart(%d) = %d, want %d", tc.target, got, tc.wantStart)
			}
		})
	}
}

func TestTimesAppend(t *testing.T) {
	const base = 1000
	tests := []struct {
		name      string
		timestamp int64
		offset    int64
		want      error
		wantLen   int
	}{
		{"new maximum", 600, 1020, nil, 2},
		{"new maximum at same offset", 600, 1010, nil, 2},
		{"equal timestamp ignored", 500, 1020, nil, 1},
		{"smaller timestamp ignored", 400, 1020, nil, 1},
		{"smaller timestamp ignored even with a bad offset", 400, 1, nil, 1},
		{"offset goes back", 600, 1005, ErrNotIncreasing, 1},
		{"offset below base", 600, 999, ErrRelativeOverflow, 1},
		{"relative offset past uint32", 600, base + math.MaxUint32 + 1, ErrRelativeOverflow, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			x := timesOf(t, base, [2]int64{500, 1010})
			err := x.Append(tc.timestamp, tc.offset)
			if !errors.Is(err, tc.want) || (tc.want == nil && err != nil) {
				t.Fatalf("Append(%d, %d) = %v, want %v", tc.timestamp, tc.offset, err, tc.want)
			}
			if x.Len() != tc.wantLen {
				t.Fatalf("Len() = %d, want %d", x.Len(), tc.wantLen)
			}
		})
	}
}

func TestTimesLastAndLen(t *testing.T) {
	x := NewTimes(9)
	if _, _, ok := x.Last(); ok || x.Len() != 0 || x.BaseOffset() != 9 || len(x.FileBytes()) != HeaderSize {
		t.Fatalf("empty index is not empty")
	}
	x = timesOf(t, 9, [2]int64{5, 9}, [2]int64{7, 12})
	if ts, off, ok := x.Last(); !ok || ts != 7 || off != 12 || x.Len() != 2 {
		t.Fatalf("Last() = (%d, %d, %v), Len %d", ts, off, ok, x.Len())
	}
	if len(x.FileBytes()) != HeaderSize+2*TimeEntrySize {
		t.Fatalf("%d file bytes", len(x.FileBytes()))
	}
}

func TestTimesTruncateFrom(t *testing.T) {
	entries := [][2]int64{{1000, 100}, {2000, 110}, {3000, 110}, {4000, 130}}
	tests := []struct {
		name    string
		at      int64
		wantLen int
	}{
		{"min int64", math.MinInt64, 0},
		{"at base", 100, 0},
		{"between", 105, 1},
		{"exact shared offset drops both", 110, 1},
		{"after shared offset", 111, 3},
		{"exact last", 130, 3},
		{"after last", 131, 4},
		{"max int64", math.MaxInt64, 4},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			x := timesOf(t, 100, entries...)
			x.TruncateFrom(tc.at)
			if x.Len() != tc.wantLen {
				t.Fatalf("Len() = %d, want %d", x.Len(), tc.wantLen)
			}
			want := timesOf(t, 100, entries[:tc.wantLen]...)
			if string(x.FileBytes()) != string(want.FileBytes()) {
				t.Fatalf("bytes differ from a freshly built index")
			}
			if err := x.Append(9000, 200); err != nil {
				t.Fatalf("Append after truncation: %v", err)
			}
		})
	}
}

func TestTimesLookupAllocs(t *testing.T) {
	x := NewTimes(0)
	for i := range int64(1000) {
		if err := x.Append(i*3, i*10); err != nil {
			t.Fatal(err)
		}
	}
	var sink int64
	allocs := testing.AllocsPerRun(100, func() {
		for _, target := range []int64{math.MinInt64, 0, 5, 1500, 2997, math.MaxInt64} {
			o, _ := x.Lookup(target)
			sink += o + x.ScanStart(target)
		}
	})
	if allocs != 0 {
		t.Errorf("Lookup allocates %v times per run", allocs)
	}
	_ = sink
}
