package batch

import (
	"bytes"
	"fmt"
	"testing"
)

// TestFilter keeps every other record of a batch in each codec and checks
// that the result verifies, keeps the header fields compaction must keep,
// and holds exactly the kept records with their original deltas.
func TestFilter(t *testing.T) {
	for _, codec := range allCodecs {
		t.Run(codec.String(), func(t *testing.T) {
			var in []Record
			for i := 0; i < 10; i++ {
				r := Record{TimestampDelta: int64(i * 3), Key: []byte(fmt.Sprint("k", i)), Value: bytes.Repeat([]byte{byte(i)}, 50)}
				if i == 4 {
					r.Value, r.ValueNull = nil, true // a tombstone
				}
				if i == 6 {
					r.Headers = []RecordHeader{{Key: []byte("h"), Value: []byte("v")}}
				}
				in = append(in, r)
			}
			b, err := Build(codec, 1000, in, BuildOptions{Idempotent: true, ProducerID: 7, ProducerEpoch: 2, BaseSequence: 40})
			if err != nil {
				t.Fatal(err)
			}
			SetBaseOffset(b, 500)
			orig, _ := Verify(b)

			out, kept, err := Filter(b, func(r *Record) bool { return r.OffsetDelta%2 == 0 })
			if err != nil || kept != 5 {
				t.Fatalf("kept %d, %v", kept, err)
			}
			h, err := Verify(out)
			if err != nil {
				t.Fatalf("filtered batch does not verify: %v", err)
			}
			if h.NumRecords != 5 || h.BaseOffset != 500 || h.LastOffsetDelta != 9 || h.Codec() != codec ||
				h.BaseTimestamp != orig.BaseTimestamp || h.MaxTimestamp != orig.MaxTimestamp ||
				h.ProducerID != 7 || h.ProducerEpoch != 2 || h.BaseSequence != 40 || h.Attributes != orig.Attributes {
				t.Fatalf("header %+v, original %+v", h, orig)
			}
			got := collect(t, out)
			for i, r := range got {
				want := in[2*i]
				if r.OffsetDelta != int32(2*i) || r.TimestampDelta != want.TimestampDelta || !bytes.Equal(r.Key, want.Key) ||
					r.ValueNull != want.ValueNull || !bytes.Equal(r.Value, want.Value) || len(r.Headers) != len(want.Headers) {
					t.Fatalf("record %d: %+v, want %+v", i, r, want)
				}
			}

			if same, n, _ := Filter(b, func(*Record) bool { return true }); &same[0] != &b[0] || n != 10 {
				t.Fatal("keeping everything should return the batch itself")
			}
			if none, n, _ := Filter(b, func(*Record) bool { return false }); none != nil || n != 0 {
				t.Fatal("keeping nothing should return nil")
			}
		})
	}
}

func TestEmpty(t *testing.T) {
	b := Empty(100, 41, 3, 12345)
	h, err := Verify(b)
	if err != nil {
		t.Fatal(err)
	}
	if h.BaseOffset != 100 || h.LastOffset() != 141 || h.NumRecords != 0 || h.PartitionLeaderEpoch != 3 ||
		h.MaxTimestamp != 12345 || h.ProducerID != -1 || h.Codec() != CodecNone || h.Control() || h.Transactional() {
		t.Fatalf("header %+v", h)
	}
	if n := len(collect(t, b)); n != 0 {
		t.Fatalf("%d records", n)
	}
}
