package consumer

import (
	"bytes"
	"testing"
	"time"
)

// FuzzReplay feeds arbitrary keys and values to RecordGroup and Replay.
// Invariants: neither panics; RecordGroup accepts exactly the keys Replay
// does not reject as foreign; a group built from any records that Replay
// accepted is usable (Describe, Tick, Heartbeat do not panic) and keeps its
// ownership invariant when the records came from a well-formed encoder.
func FuzzReplay(f *testing.F) {
	h := newHarness(f, Options{})
	h.topics.add("t", 3)
	a := &client{id: "a", inst: strp("i"), topics: []string{"t"}}
	b := &client{id: "b", regex: strp("t.*")}
	h.beat(a, true)
	h.beat(b, true)
	h.beat(a, true)
	for _, r := range h.log {
		f.Add(r.Key, r.Value, false)
	}
	f.Add(groupKey("g1"), []byte(nil), true)
	f.Add([]byte{0, 1, 0, 1, 'x'}, []byte{0, 3}, false)

	f.Fuzz(func(t *testing.T, key, value []byte, tombstone bool) {
		if tombstone {
			value = nil
		} else if value == nil {
			value = []byte{}
		}
		id, ok := RecordGroup(key)
		g := New("g1", Options{})
		for _, r := range h.log {
			if err := g.Replay(r); err != nil {
				t.Fatal(err)
			}
		}
		err := g.Replay(Record{Key: key, Value: value})
		if !ok && err == nil {
			t.Fatalf("Replay accepted a key RecordGroup rejects")
		}
		if ok && id != "g1" && err == nil {
			t.Fatalf("Replay accepted group %q", id)
		}
		if ok && bytes.Equal(key, memberKey(keyMember, id, "x")) && err != nil && value == nil {
			t.Fatalf("tombstone refused: %v", err)
		}
		now := time.Unix(1_700_000_000, 0)
		g.Describe(h.topics, true)
		_ = g.Tick(now, h.topics)
		req := h.request(&client{id: "a", epoch: 2, topics: []string{"t"}}, true)
		g.Heartbeat(now, h.topics, req)
		_ = g.Delete()
	})
}
