package producer

import (
	"bytes"
	"testing"
)

// FuzzDecodeSnapshot: the decoder never panics; what it accepts encodes
// back to the same bytes (the format has one encoding per state), and its
// entries lie below the snapshot's offset.
func FuzzDecodeSnapshot(f *testing.F) {
	s := New(Options{})
	for i, st := range []step{data(1, 0, 0, 2).tx(), data(2, 1, 5, 1), marker(1, 0, Abort, 3), data(3, 0, 0, 1).tx()} {
		s.Update(st.batch(int64(i * 2)))
	}
	f.Add(s.Snapshot(10))
	f.Add(New(Options{}).Snapshot(0))
	f.Add([]byte("SLPS"))
	f.Fuzz(func(t *testing.T, b []byte) {
		st, off, err := DecodeSnapshot("fuzz", b, Options{})
		if err != nil {
			return
		}
		if again := st.Snapshot(off); !bytes.Equal(again, b) {
			t.Fatalf("re-encoding differs:\n%x\n%x", b, again)
		}
		for _, e := range st.producers {
			if e.TxnFirstOffset >= off || (len(e.Batches) > 0 && e.Batches[len(e.Batches)-1].LastOffset >= off) {
				t.Fatalf("entry past offset %d: %+v", off, e)
			}
		}
	})
}
