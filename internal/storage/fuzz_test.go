package storage

import (
	"reflect"
	"testing"

	"github.com/sluice-io/sluice/internal/partition"
)

// FuzzDecodeCheckpoint: the decoder never panics, and whatever it accepts
// re-encodes to a checkpoint that decodes to the same content.
func FuzzDecodeCheckpoint(f *testing.F) {
	f.Add(encodeCheckpoint(checkpoint{lsn: 7, parts: map[partKey]partition.FlushState{{partition: 1}: {SegmentBase: 3, Position: 9, Next: 12, LogStart: 1}}}))
	f.Add(encodeCheckpoint(checkpoint{parts: map[partKey]partition.FlushState{}}))
	f.Add(encodeCheckpoint(checkpoint{lsn: 9, parts: map[partKey]partition.FlushState{
		{partition: 1}: {Next: 4, CleanedTo: 2, Producers: []byte("snapshot")},
		{partition: 2}: {Next: 8},
	}}))
	f.Fuzz(func(t *testing.T, b []byte) {
		cp, err := decodeCheckpoint("checkpoint", b)
		if err != nil {
			return
		}
		again, err := decodeCheckpoint("checkpoint", encodeCheckpoint(cp))
		if err != nil || again.lsn != cp.lsn || len(again.parts) != len(cp.parts) {
			t.Fatalf("round trip: %v", err)
		}
		for k, v := range cp.parts {
			if !reflect.DeepEqual(again.parts[k], v) {
				t.Fatalf("entry %v changed", k)
			}
		}
	})
}

// FuzzDecodeMeta: never panics; accepted input round-trips exactly.
func FuzzDecodeMeta(f *testing.F) {
	f.Add(encodeMeta(partition.ID{Topic: "orders", TopicID: topicID(1), Partition: 3}))
	f.Fuzz(func(t *testing.T, b []byte) {
		id, err := decodeMeta("partition.metadata", b)
		if err != nil {
			return
		}
		if string(encodeMeta(id)) != string(b) {
			t.Fatalf("round trip changed bytes")
		}
	})
}

// FuzzDecodeRecord: never panics on any WAL payload.
func FuzzDecodeRecord(f *testing.F) {
	f.Add(appendRecordHeader(nil, recBatch, partKey{partition: 2}))
	f.Fuzz(func(t *testing.T, b []byte) {
		kind, k, body, err := decodeRecord(b)
		if err != nil {
			return
		}
		again := append(appendRecordHeader(nil, kind, k), body...)
		if string(again) != string(b) {
			t.Fatalf("round trip changed bytes")
		}
	})
}
