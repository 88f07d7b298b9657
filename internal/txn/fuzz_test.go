package txn

import (
	"math"
	"reflect"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

func sampleMeta() meta {
	return meta{pid: 42, lastPID: -1, epoch: 7, lastEpoch: -1, timeoutMs: 60_000, state: kmsg.TransactionStateOngoing,
		parts: map[TopicPartition]struct{}{{"orders", 2}: {}, {"orders", 0}: {}, {"__consumer_offsets", 9}: {}},
		start: time.UnixMilli(1_700_000_000_000), updated: time.UnixMilli(1_700_000_001_000)}
}

// FuzzDecodeRecord feeds arbitrary keys and values to the decoder Load
// uses. Invariants: it never panics; what it accepts applies to a state
// without panicking, and the state then answers Describe, List, a tick
// and Load's completion of prepared transactions; the records this
// package writes decode to what was written.
func FuzzDecodeRecord(f *testing.F) {
	m := sampleMeta()
	rot := m
	rot.lastPID, rot.state, rot.parts = 3, kmsg.TransactionStateEmpty, nil
	for _, r := range []Record{
		txnRecord("app", &m),
		txnRecord("app", &rot),
		txnTombstone("app"),
		pidBlockRecord(3000),
		{Key: pidBlockKey()},
		{Key: []byte{0, 0, 0, 1, 'a'}, Value: []byte{0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0}},
	} {
		f.Add(r.Key, r.Value, r.Value == nil)
	}
	f.Fuzz(func(t *testing.T, key, value []byte, tombstone bool) {
		if tombstone {
			value = nil
		}
		d, err := decodeRecord(Record{Key: key, Value: value})
		if err != nil {
			return
		}
		st := newState(Options{Log: nopLog{}, Markers: nopMarkers{}, Topics: testTopics}.withDefaults())
		st.apply(d)
		st.apply(d) // replaying a record twice is harmless
		now := time.UnixMilli(1_700_000_000_000)
		fx := &effects{}
		st.loaded(now, fx)
		if st.pids.next != st.pids.end || st.pids.end < 0 {
			t.Fatalf("producer ids [%d, %d)", st.pids.next, st.pids.end)
		}
		st.describe(&kmsg.DescribeTransactionsRequest{TransactionalIDs: []string{d.id}})
		st.list(now, &kmsg.ListTransactionsRequest{Version: 1, DurationFilterMillis: 0})
		st.tick(now.Add(365*24*time.Hour), fx)
		for _, w := range fx.writes {
			for _, r := range w.recs {
				if _, err := decodeRecord(r); err != nil {
					t.Fatalf("a record we wrote does not decode: %v", err)
				}
			}
		}
	})
}

func TestRecordRoundTrip(t *testing.T) {
	for _, m := range []meta{sampleMeta(), func() meta {
		m := sampleMeta()
		m.lastPID, m.epoch, m.state, m.parts, m.start = 9, math.MaxInt16-1, kmsg.TransactionStateEmpty, nil, time.Time{}
		return m
	}()} {
		d, err := decodeRecord(txnRecord("app", &m))
		if err != nil {
			t.Fatal(err)
		}
		if d.kind != kindTxn || d.id != "app" || !reflect.DeepEqual(*d.meta, m) {
			t.Fatalf("decoded %+v, want %+v", d.meta, m)
		}
	}
	d, err := decodeRecord(pidBlockRecord(12345))
	if err != nil || d.kind != kindPIDBlock || d.pidEnd != 12345 {
		t.Fatalf("block: %+v %v", d, err)
	}
	if d, err := decodeRecord(txnTombstone("x")); err != nil || d.meta != nil || d.id != "x" {
		t.Fatalf("tombstone: %+v %v", d, err)
	}
	for _, bad := range []Record{
		{Key: []byte{0}},
		{Key: []byte{0, 1, 0, 0}}, // unknown key version
		{Key: pidBlockKey(), Value: []byte{0, 1, 0, 0, 0, 0}}, // short
		{Key: txnKey("a"), Value: []byte{0, 9}},               // value version 9
	} {
		if _, err := decodeRecord(bad); err == nil {
			t.Fatalf("%v decoded", bad)
		}
	}
	// Partition is Kafka's: abs(String.hashCode) % n.
	for id, want := range map[string]int32{"": 0, "a": 97 % 50, "txn-1": javaHash("txn-1") % 50} {
		if got := Partition(id, 50); got != want {
			t.Fatalf("Partition(%q) = %d, want %d", id, got, want)
		}
	}
}

func javaHash(s string) int32 {
	var h int32
	for _, r := range s {
		h = 31*h + r
	}
	if h < 0 {
		h = -h
	}
	return h
}
