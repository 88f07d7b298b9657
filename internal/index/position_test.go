package index

import "testing"

func TestLookupPosition(t *testing.T) {
	x := NewOffsets(100)
	for _, e := range [][2]int64{{100, 0}, {110, 4096}, {125, 9000}} {
		if err := x.Append(e[0], e[1]); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct{ pos, off, at int64 }{
		{-1, 100, 0}, {0, 100, 0}, {4095, 100, 0}, {4096, 110, 4096},
		{8999, 110, 4096}, {9000, 125, 9000}, {1 << 40, 125, 9000},
	} {
		off, at := x.LookupPosition(tc.pos)
		if off != tc.off || at != tc.at {
			t.Errorf("LookupPosition(%d) = (%d, %d), want (%d, %d)", tc.pos, off, at, tc.off, tc.at)
		}
	}
	if off, at := NewOffsets(7).LookupPosition(50); off != 7 || at != 0 {
		t.Errorf("empty index: (%d, %d)", off, at)
	}
}
