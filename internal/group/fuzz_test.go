package group

import (
	"testing"
	"time"

	"github.com/sluice-io/sluice/internal/group/consumer"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// FuzzDecodeRecord feeds arbitrary keys and values to the decoder Load
// uses. Invariants: it never panics; what it accepts, applying to a
// state never panics either; the records this package writes decode to
// what was written.
func FuzzDecodeRecord(f *testing.F) {
	e := &env{opts: Options{Log: nopLog{}, Topics: testTopics}.withDefaults(), newID: func() string { return "x" }}
	now := time.Unix(1_700_000_000, 0)
	g := newClassicGroup("g", e, now)
	g.protocolType, g.protocol, g.generation, g.leader = "consumer", "range", 3, "m"
	g.members["m"] = &member{id: "m", instanceID: kmsg.StringPtr("i"), sessionTimeout: time.Second,
		protocols: []kmsg.JoinGroupRequestProtocol{{Name: "range", Metadata: []byte{1}}}, assignment: []byte{2}}
	g.order = []string{"m"}
	for _, r := range []Record{
		offsetRecord("g", "orders", 3, offset{offset: 42, leaderEpoch: 5, metadata: "md", committed: now}),
		offsetTombstone("g", "orders", 3),
		groupRecord(g, now, nil),
		groupTombstone("g"),
		{Key: []byte{0, 3, 0, 0}, Value: []byte{0}},
		{Key: []byte{0, 0, 0, 1, 'g', 0, 1, 't', 0, 0, 0, 0}, Value: []byte{0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}},
	} {
		f.Add(r.Key, r.Value, r.Value == nil)
	}
	// A consumer-protocol group's records, from a real join.
	join := kmsg.NewPtrConsumerGroupHeartbeatRequest()
	join.Group, join.MemberID, join.RebalanceTimeoutMillis = "g", "m", 1000
	join.SubscribedTopicNames, join.Topics = []string{"orders"}, []kmsg.ConsumerGroupHeartbeatRequestTopic{}
	_, crecs := consumer.New("g", consumer.Options{}).Heartbeat(now, consumerTopics{testTopics}, join)
	for _, r := range crecs {
		f.Add(r.Key, r.Value, false)
		f.Add(r.Key, []byte(nil), true)
	}
	f.Fuzz(func(t *testing.T, key, value []byte, tombstone bool) {
		if tombstone {
			value = nil
		}
		d, err := decodeRecord(Record{Key: key, Value: value})
		if err != nil {
			return
		}
		st := newState(e)
		if d.kind != kindSkip {
			st.apply(d, now)
			st.apply(d, now) // replaying a record twice is harmless
		}
		for _, g := range st.groups {
			st.touch(g)
		}
		st.settle(now)
		fx := &effects{}
		st.tick(now.Add(365*24*time.Hour), fx)
		st.describe(&kmsg.DescribeGroupsRequest{Version: 5, Groups: []string{d.group}})
	})
}

func TestRecordRoundTrip(t *testing.T) {
	now := time.UnixMilli(1_700_000_000_123)
	o := offset{offset: 42, leaderEpoch: 5, metadata: "md", committed: now}
	d, err := decodeRecord(offsetRecord("grp", "orders", 3, o))
	if err != nil {
		t.Fatal(err)
	}
	if d.kind != kindOffset || d.group != "grp" || d.topic != "orders" || d.partition != 3 ||
		d.offset.Offset != 42 || d.offset.LeaderEpoch != 5 || d.offset.Metadata != "md" ||
		d.offset.CommitTimestamp != now.UnixMilli() || d.offset.Version != offsetValueVersion {
		t.Fatalf("offset record decoded to %+v %+v", d, d.offset)
	}
	if d, err := decodeRecord(groupTombstone("grp")); err != nil || d.kind != kindGroup || d.meta != nil {
		t.Fatalf("group tombstone: %+v %v", d, err)
	}
	if _, err := decodeRecord(Record{Key: []byte{0xff, 0xff}}); err == nil {
		t.Fatal("negative key version accepted")
	}
	if _, err := decodeRecord(Record{Key: []byte{0, 1, 0, 5, 'a'}}); err == nil {
		t.Fatal("truncated key accepted")
	}
}
