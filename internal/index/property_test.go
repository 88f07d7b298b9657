package index

import (
	"flag"
	"math"
	"math/rand/v2"
	"testing"
	"time"
)

var seedFlag = flag.Uint64("index.seed", 0, "seed for the property tests (0 = from the clock)")

// seed returns the seed for one property test and logs it, so a failure can
// be replayed with -index.seed.
func seed(t *testing.T) *rand.Rand {
	t.Helper()
	s := *seedFlag
	if s == 0 {
		s = uint64(time.Now().UnixNano())
	}
	t.Logf("seed %d (replay with -index.seed=%d)", s, s)
	return rand.New(rand.NewPCG(s, s^0x9e3779b97f4a7c15))
}

type pair struct{ a, b int64 }

// modelOffsetsLookup is the linear-scan specification of Offsets.Lookup.
func modelOffsetsLookup(base int64, es []pair, offset int64) (int64, int64) {
	off, pos := base, int64(0)
	for _, e := range es {
		if e.a <= offset {
			off, pos = e.a, e.b
		}
	}
	return off, pos
}

// modelTimesLookup is the linear-scan specification of Times.Lookup and
// Times.ScanStart.
func modelTimesLookup(base int64, es []pair, ts int64) (off int64, ok bool, start int64) {
	start = base
	for _, e := range es {
		if e.a >= ts {
			return e.b, true, start
		}
		start = e.b
	}
	return 0, false, start
}

func TestOffsetsProperty(t *testing.T) {
	r := seed(t)
	for round := range 200 {
		base := r.Int64N(1 << 50)
		x := NewOffsets(base)
		var model []pair
		next := func() (int64, int64) {
			if len(model) == 0 {
				return base + r.Int64N(3), r.Int64N(3)
			}
			l := model[len(model)-1]
			return l.a + 1 + r.Int64N(20), l.b + 1 + r.Int64N(5000)
		}
		for range 1 + r.IntN(300) {
			switch op := r.IntN(20); {
			case op < 12:
				o, p := next()
				if err := x.Append(o, p); err != nil {
					t.Fatalf("round %d: Append(%d, %d): %v", round, o, p, err)
				}
				model = append(model, pair{o, p})
			case op < 14 && len(model) > 0:
				// Not increasing in one field: must fail and change nothing.
				l := model[len(model)-1]
				o, p := next()
				if r.IntN(2) == 0 {
					o = l.a - r.Int64N(3)
				} else {
					p = l.b - r.Int64N(3)
				}
				if err := x.Append(o, p); err == nil {
					t.Fatalf("round %d: Append(%d, %d) after (%d, %d) succeeded", round, o, p, l.a, l.b)
				}
			case op < 15 && len(model) > 0:
				at := model[r.IntN(len(model))].a + r.Int64N(3) - 1
				x.TruncateFrom(at)
				for len(model) > 0 && model[len(model)-1].a >= at {
					model = model[:len(model)-1]
				}
			case op < 16 && len(model) > 0:
				at := model[r.IntN(len(model))].b + r.Int64N(3) - 1
				x.TruncateFromPosition(at)
				for len(model) > 0 && model[len(model)-1].b >= at {
					model = model[:len(model)-1]
				}
			case op < 17:
				y, err := DecodeOffsets("p", base, append([]byte(nil), x.FileBytes()...))
				if err != nil {
					t.Fatalf("round %d: decode of our own bytes: %v", round, err)
				}
				x = y
			default:
				var target int64
				if len(model) > 0 && r.IntN(4) != 0 {
					target = model[r.IntN(len(model))].a + r.Int64N(5) - 2
				} else {
					target = base + r.Int64N(10000) - 100
				}
				go1, gp1 := x.Lookup(target)
				wo, wp := modelOffsetsLookup(base, model, target)
				if go1 != wo || gp1 != wp {
					t.Fatalf("round %d: Lookup(%d) = (%d, %d), model (%d, %d)", round, target, go1, gp1, wo, wp)
				}
			}
			if x.Len() != len(model) {
				t.Fatalf("round %d: Len() = %d, model %d", round, x.Len(), len(model))
			}
			o, p, ok := x.Last()
			if ok != (len(model) > 0) || (ok && (o != model[len(model)-1].a || p != model[len(model)-1].b)) {
				t.Fatalf("round %d: Last() = (%d, %d, %v)", round, o, p, ok)
			}
		}
	}
}

func TestTimesProperty(t *testing.T) {
	r := seed(t)
	for round := range 200 {
		base := r.Int64N(1 << 50)
		x := NewTimes(base)
		var model []pair
		for range 1 + r.IntN(300) {
			switch op := r.IntN(20); {
			case op < 12:
				// Timestamps wander, so many are ignored; offsets never go back.
				ts := r.Int64N(2000) - 100
				o := base + r.Int64N(3)
				if len(model) > 0 {
					l := model[len(model)-1]
					ts = l.a + r.Int64N(40) - 20
					o = l.b + r.Int64N(3)
				}
				if err := x.Append(ts, o); err != nil {
					t.Fatalf("round %d: Append(%d, %d): %v", round, ts, o, err)
				}
				if len(model) == 0 || ts > model[len(model)-1].a {
					model = append(model, pair{ts, o})
				}
			case op < 13 && len(model) > 0:
				l := model[len(model)-1]
				if err := x.Append(l.a+1, l.b-1-r.Int64N(3)); err == nil {
					t.Fatalf("round %d: Append with a smaller offset succeeded", round)
				}
			case op < 15 && len(model) > 0:
				at := model[r.IntN(len(model))].b + r.Int64N(3) - 1
				x.TruncateFrom(at)
				for len(model) > 0 && model[len(model)-1].b >= at {
					model = model[:len(model)-1]
				}
			case op < 16:
				y, err := DecodeTimes("t", base, append([]byte(nil), x.FileBytes()...))
				if err != nil {
					t.Fatalf("round %d: decode of our own bytes: %v", round, err)
				}
				x = y
			default:
				var target int64
				if len(model) > 0 && r.IntN(4) != 0 {
					target = model[r.IntN(len(model))].a + r.Int64N(5) - 2
				} else {
					target = r.Int64N(3000) - 200
				}
				gotOff, gotOK := x.Lookup(target)
				wantOff, wantOK, wantStart := modelTimesLookup(base, model, target)
				if gotOff != wantOff || gotOK != wantOK {
					t.Fatalf("round %d: Lookup(%d) = (%d, %v), model (%d, %v)", round, target, gotOff, gotOK, wantOff, wantOK)
				}
				if got := x.ScanStart(target); got != wantStart {
					t.Fatalf("round %d: ScanStart(%d) = %d, model %d", round, target, got, wantStart)
				}
			}
			if x.Len() != len(model) {
				t.Fatalf("round %d: Len() = %d, model %d", round, x.Len(), len(model))
			}
		}
	}
}

// TestTimesSemantics drives the time index the way the segment is meant to
// (docs/format/index.md): each entry is the running maximum timestamp and
// the base offset of the batch that raised it. It checks against a log of
// batches that Lookup finds exactly the first batch holding a timestamp at
// or above the target when every raise is indexed, and that ScanStart is a
// safe starting point however sparse the index.
func TestTimesSemantics(t *testing.T) {
	r := seed(t)
	for round := range 100 {
		type batch struct{ base, maxTS int64 }
		var log []batch
		const segBase = 1000
		dense, sparse := NewTimes(segBase), NewTimes(segBase)
		every := 1 + r.IntN(5)
		runMax, raisedAt := int64(math.MinInt64), int64(0)
		off := int64(segBase)
		for i := range 1 + r.IntN(100) {
			b := batch{off, r.Int64N(1000)}
			log = append(log, b)
			off += 1 + r.Int64N(10)
			if b.maxTS > runMax {
				runMax, raisedAt = b.maxTS, b.base
			}
			if err := dense.Append(runMax, raisedAt); err != nil {
				t.Fatal(err)
			}
			if i%every == 0 {
				if err := sparse.Append(runMax, raisedAt); err != nil {
					t.Fatal(err)
				}
			}
		}
		for target := int64(-1); target <= 1001; target++ {
			first, found := int64(0), false
			for _, b := range log {
				if b.maxTS >= target {
					first, found = b.base, true
					break
				}
			}
			got, ok := dense.Lookup(target)
			if ok != found || (found && got != first) {
				t.Fatalf("round %d: dense Lookup(%d) = (%d, %v), first batch (%d, %v)", round, target, got, ok, first, found)
			}
			for _, x := range []*Times{dense, sparse} {
				if s := x.ScanStart(target); found && s > first {
					t.Fatalf("round %d: ScanStart(%d) = %d skips batch %d", round, target, s, first)
				}
			}
		}
	}
}
