package index

import (
	"encoding/binary"
	"math"
	"testing"
)

// fuzzBase picks the base offset a fuzz input is decoded against: the one
// in its header, so that decoding gets past the header often, or flip's
// value when flip is set, to exercise the mismatch path.
func fuzzBase(file []byte, flip int64) int64 {
	if flip != 0 || len(file) < HeaderSize {
		return flip
	}
	return int64(binary.BigEndian.Uint64(file[baseAt:]))
}

// maxChecked bounds the entries a fuzz iteration checks against the linear
// scan, which is quadratic.
const maxChecked = 256

// FuzzDecodeOffsets: decoding never panics; when it succeeds, FileBytes is
// the input and every Lookup agrees with a linear scan of the entries.
func FuzzDecodeOffsets(f *testing.F) {
	f.Add([]byte(nil), int64(0))
	f.Add(NewOffsets(0).FileBytes(), int64(0))
	f.Add(cat(header("SLXO", 1, 0, 100), offsetEntry(0, 0), offsetEntry(3, 40), offsetEntry(9, 4000)), int64(0))
	f.Add(cat(header("SLXO", 1, 0, math.MaxInt64-5), offsetEntry(1, 1), offsetEntry(5, 2)), int64(0))
	f.Add(cat(header("SLXO", 2, 0, 0), offsetEntry(0, 0)), int64(0))
	f.Add(cat(header("SLXO", 1, 0, 7), offsetEntry(0, 0), []byte{1}), int64(0))
	f.Fuzz(func(t *testing.T, file []byte, flip int64) {
		base := fuzzBase(file, flip)
		in := string(file)
		x, err := DecodeOffsets("f", base, file)
		if err != nil {
			if _, ok := err.(*CorruptError); !ok {
				t.Fatalf("error %v is not a *CorruptError", err)
			}
			return
		}
		if string(x.FileBytes()) != in {
			t.Fatalf("FileBytes differs from the input")
		}
		var es []pair
		for i := 0; i < x.Len() && i < maxChecked; i++ {
			at := HeaderSize + i*OffsetEntrySize
			es = append(es, pair{
				base + int64(binary.BigEndian.Uint32(file[at:])),
				int64(binary.BigEndian.Uint32(file[at+4:])),
			})
		}
		if len(es) < x.Len() {
			// Lookups past the checked prefix would disagree with the
			// truncated model, so check only targets inside it.
			x.TruncateFrom(es[len(es)-1].a + 1)
		}
		targets := []int64{math.MinInt64, base - 1, base, math.MaxInt64}
		for _, e := range es {
			targets = append(targets, e.a-1, e.a, e.a+1)
		}
		for _, target := range targets {
			o, p := x.Lookup(target)
			wo, wp := modelOffsetsLookup(base, es, target)
			if o != wo || p != wp {
				t.Fatalf("Lookup(%d) = (%d, %d), linear scan (%d, %d)", target, o, p, wo, wp)
			}
		}
	})
}

// FuzzDecodeTimes: decoding never panics; when it succeeds, FileBytes is
// the input and every Lookup agrees with a linear scan of the entries.
func FuzzDecodeTimes(f *testing.F) {
	f.Add([]byte(nil), int64(0))
	f.Add(NewTimes(3).FileBytes(), int64(0))
	f.Add(cat(header("SLXT", 1, 0, 100), timeEntry(-5, 0), timeEntry(10, 0), timeEntry(1<<40, 9)), int64(0))
	f.Add(cat(header("SLXT", 1, 0, math.MaxInt64), timeEntry(1, 0)), int64(0))
	f.Add(cat(header("SLXT", 1, 0, 0), timeEntry(math.MinInt64, 1), timeEntry(math.MaxInt64, 2)), int64(0))
	f.Add(cat(header("SLXT", 1, 0, 0), timeEntry(5, 1), timeEntry(5, 2)), int64(0))
	f.Fuzz(func(t *testing.T, file []byte, flip int64) {
		base := fuzzBase(file, flip)
		in := string(file)
		x, err := DecodeTimes("f", base, file)
		if err != nil {
			if _, ok := err.(*CorruptError); !ok {
				t.Fatalf("error %v is not a *CorruptError", err)
			}
			return
		}
		if string(x.FileBytes()) != in {
			t.Fatalf("FileBytes differs from the input")
		}
		var es []pair
		for i := 0; i < x.Len() && i < maxChecked; i++ {
			at := HeaderSize + i*TimeEntrySize
			es = append(es, pair{
				int64(binary.BigEndian.Uint64(file[at:])),
				base + int64(binary.BigEndian.Uint32(file[at+8:])),
			})
		}
		targets := []int64{math.MinInt64, math.MaxInt64, 0}
		for _, e := range es {
			targets = append(targets, e.a, e.a+1, e.a-1) // wrap-around is just another target
		}
		if len(es) < x.Len() {
			// Past the checked prefix the truncated model would disagree.
			targets = targets[:0]
			for _, e := range es {
				targets = append(targets, e.a)
			}
		}
		for _, target := range targets {
			o, ok := x.Lookup(target)
			wo, wok, wstart := modelTimesLookup(base, es, target)
			if o != wo || ok != wok {
				t.Fatalf("Lookup(%d) = (%d, %v), linear scan (%d, %v)", target, o, ok, wo, wok)
			}
			if s := x.ScanStart(target); s != wstart {
				t.Fatalf("ScanStart(%d) = %d, linear scan %d", target, s, wstart)
			}
		}
	})
}
