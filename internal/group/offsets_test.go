package group

import (
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func (h *harness) commit(req *kmsg.OffsetCommitRequest) *kmsg.OffsetCommitResponse {
	h.t.Helper()
	c := h.do("c", req)
	h.flush(nil)
	return h.answers[c].(*kmsg.OffsetCommitResponse)
}

func TestCommitValidation(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.MaxOffsetMetadataBytes = 8 })
	req := commitReq("g", -1, "", "orders", 0, 3, -1)
	unknown := kmsg.NewOffsetCommitRequestTopic()
	unknown.Topic = "nope"
	unknown.Partitions = []kmsg.OffsetCommitRequestTopicPartition{{Partition: 0}}
	big := kmsg.NewOffsetCommitRequestTopic()
	big.Topic = "payments"
	big.Partitions = []kmsg.OffsetCommitRequestTopicPartition{{Partition: 0, Metadata: kmsg.StringPtr(strings.Repeat("x", 9))}}
	req.Topics = append(req.Topics, unknown, big)
	got := commitCodes(h.commit(req))
	want := []int16{0, kerr.UnknownTopicOrPartition.Code, kerr.UnknownTopicOrPartition.Code,
		kerr.UnknownTopicOrPartition.Code, kerr.OffsetMetadataTooLarge.Code}
	if !equal(got, want) {
		t.Fatalf("codes %v, want %v", got, want)
	}

	// v10 names topics by id.
	v10 := kmsg.NewPtrOffsetCommitRequest()
	v10.Version, v10.Group = 10, "g"
	v10.Topics = []kmsg.OffsetCommitRequestTopic{
		{TopicID: testTopics["payments"].ID, Partitions: []kmsg.OffsetCommitRequestTopicPartition{{Partition: 0, Offset: 5}}},
		{TopicID: [16]byte{9}, Partitions: []kmsg.OffsetCommitRequestTopicPartition{{Partition: 0, Offset: 5}}},
	}
	r := h.commit(v10)
	if r.Topics[0].TopicID != testTopics["payments"].ID || r.Topics[0].Partitions[0].ErrorCode != 0 ||
		r.Topics[1].Partitions[0].ErrorCode != kerr.UnknownTopicID.Code {
		t.Fatalf("v10 commit: %+v", r)
	}
	if o := h.st.groups["g"].offsets["payments"][0]; o.offset != 5 {
		t.Fatalf("v10 commit stored %+v", o)
	}

	wantCode(t, "empty group id", commitCodes(h.commit(commitReq("", -1, "", "orders", 0)))[0], kerr.InvalidGroupID)
	wantCode(t, "member of a missing group", commitCodes(h.commit(commitReq("missing", 3, "m", "orders", 0)))[0], kerr.IllegalGeneration)
	if _, ok := h.st.groups["missing"]; ok {
		t.Fatal("a rejected commit created a group")
	}
}

func TestCommitGenerationChecks(t *testing.T) {
	h := newHarness(t, nil)
	ids := h.stableGroup("g", 1)
	wantCode(t, "member, right generation", commitCodes(h.commit(commitReq("g", 1, ids[0], "orders", 0)))[0], nil)
	wantCode(t, "member, old generation", commitCodes(h.commit(commitReq("g", 0, ids[0], "orders", 0)))[0], kerr.IllegalGeneration)
	wantCode(t, "unknown member", commitCodes(h.commit(commitReq("g", 1, "ghost", "orders", 0)))[0], kerr.UnknownMemberID)
	wantCode(t, "simple commit to a group with members", commitCodes(h.commit(commitReq("g", -1, "", "orders", 0)))[0], kerr.UnknownMemberID)
	h.do("n", joinReq("g", ""))     // preparing
	h.do("c", joinReq("g", ids[0])) // completing, generation 2
	wantCode(t, "while completing", commitCodes(h.commit(commitReq("g", 2, ids[0], "orders", 0)))[0], kerr.RebalanceInProgress)
}

func TestOffsetFetch(t *testing.T) {
	h := newHarness(t, nil)
	h.commit(commitReq("g", -1, "", "orders", 2, 0))
	h.commit(commitReq("g", -1, "", "payments", 0))

	// v5: named partitions, one never committed.
	f := kmsg.NewPtrOffsetFetchRequest()
	f.Version, f.Group = 5, "g"
	f.Topics = []kmsg.OffsetFetchRequestTopic{{Topic: "orders", Partitions: []int32{0, 1}}}
	r := h.st.fetch(f)
	p0, p1 := r.Topics[0].Partitions[0], r.Topics[0].Partitions[1]
	if p0.Offset != 100 || p0.LeaderEpoch != 7 || *p0.Metadata != "meta" || p1.Offset != -1 || p1.LeaderEpoch != -1 {
		t.Fatalf("fetch: %+v %+v", p0, p1)
	}

	// Null topics: everything, sorted.
	f.Topics = nil
	r = h.st.fetch(f)
	if len(r.Topics) != 2 || r.Topics[0].Topic != "orders" || len(r.Topics[0].Partitions) != 2 || r.Topics[0].Partitions[0].Partition != 0 {
		t.Fatalf("fetch all: %+v", r.Topics)
	}

	// v8: several groups; v10: topic ids.
	f8 := kmsg.NewPtrOffsetFetchRequest()
	f8.Version = 10
	f8.Groups = []kmsg.OffsetFetchRequestGroup{
		{Group: "g", Topics: []kmsg.OffsetFetchRequestGroupTopic{{TopicID: testTopics["payments"].ID, Partitions: []int32{0}}, {TopicID: [16]byte{9}, Partitions: []int32{0}}}},
		{Group: "nobody", Topics: []kmsg.OffsetFetchRequestGroupTopic{{TopicID: testTopics["orders"].ID, Partitions: []int32{0}}}},
		{Group: ""},
	}
	r = h.st.fetch(f8)
	if len(r.Groups) != 3 {
		t.Fatalf("%d groups", len(r.Groups))
	}
	g := r.Groups[0]
	if g.Topics[0].Partitions[0].Offset != 100 || g.Topics[1].Partitions[0].ErrorCode != kerr.UnknownTopicID.Code {
		t.Fatalf("v10 fetch: %+v", g)
	}
	if p := r.Groups[1].Topics[0].Partitions[0]; p.Offset != -1 || p.ErrorCode != 0 {
		t.Fatalf("unknown group: %+v", p)
	}
	wantCode(t, "empty group id", r.Groups[2].ErrorCode, kerr.InvalidGroupID)
	f8.Groups = []kmsg.OffsetFetchRequestGroup{{Group: "g"}}
	if all := h.st.fetch(f8).Groups[0].Topics; len(all) != 2 || all[0].TopicID != testTopics["orders"].ID {
		t.Fatalf("v10 fetch all: %+v", all)
	}
}

func consumerMeta(topics ...string) []byte {
	m := kmsg.NewConsumerMemberMetadata()
	m.Version = 0
	m.Topics = topics
	return m.AppendTo(nil)
}

func TestOffsetDelete(t *testing.T) {
	h := newHarness(t, nil)
	subscribed := func(r *kmsg.JoinGroupRequest) {
		r.Protocols = []kmsg.JoinGroupRequestProtocol{{Name: "range", Metadata: consumerMeta("orders")}}
	}
	ids := h.stableGroup("g", 1, subscribed)
	h.commit(commitReq("g", 1, ids[0], "orders", 0))
	h.commit(commitReq("g", 1, ids[0], "payments", 0))
	del := kmsg.NewPtrOffsetDeleteRequest()
	del.Group = "g"
	del.Topics = []kmsg.OffsetDeleteRequestTopic{
		{Topic: "orders", Partitions: []kmsg.OffsetDeleteRequestTopicPartition{{Partition: 0}}},
		{Topic: "payments", Partitions: []kmsg.OffsetDeleteRequestTopicPartition{{Partition: 0}}},
		{Topic: "nope", Partitions: []kmsg.OffsetDeleteRequestTopicPartition{{Partition: 0}}},
	}
	c := h.do("c", del)
	if h.answered(c) {
		t.Fatal("OffsetDelete answered before its tombstones were durable")
	}
	h.flush(nil)
	r := h.answers[c].(*kmsg.OffsetDeleteResponse)
	wantCode(t, "top level", r.ErrorCode, nil)
	wantCode(t, "subscribed topic", r.Topics[0].Partitions[0].ErrorCode, kerr.GroupSubscribedToTopic)
	wantCode(t, "unsubscribed topic", r.Topics[1].Partitions[0].ErrorCode, nil)
	wantCode(t, "unknown topic", r.Topics[2].Partitions[0].ErrorCode, kerr.UnknownTopicOrPartition)
	if got := h.st.committed("g"); len(got["payments"]) != 0 || len(got["orders"]) != 1 {
		t.Fatalf("after delete: %v", got)
	}

	other := newHarness(t, nil)
	other.stableGroup("connect", 1, withProtocolType("connect"))
	del.Group = "connect"
	wantCode(t, "non-consumer group with members", other.answers[other.do("c", del)].(*kmsg.OffsetDeleteResponse).ErrorCode, kerr.NonEmptyGroup)
	del.Group = "none"
	wantCode(t, "unknown group", other.answers[other.do("c", del)].(*kmsg.OffsetDeleteResponse).ErrorCode, kerr.GroupIDNotFound)
}

func TestDeleteDescribeListGroups(t *testing.T) {
	h := newHarness(t, nil)
	ids := h.stableGroup("busy", 1)
	h.commit(commitReq("idle", -1, "", "orders", 0))

	l := kmsg.NewPtrListGroupsRequest()
	l.Version = 5
	lr := h.st.list(l)
	if len(lr.Groups) != 2 || lr.Groups[0].Group != "busy" || lr.Groups[0].GroupState != "Stable" || lr.Groups[0].GroupType != "classic" {
		t.Fatalf("list: %+v", lr.Groups)
	}
	l.StatesFilter = []string{"empty"}
	if lr := h.st.list(l); len(lr.Groups) != 1 || lr.Groups[0].Group != "idle" {
		t.Fatalf("list Empty: %+v", lr.Groups)
	}
	l.StatesFilter, l.TypesFilter = nil, []string{"consumer"}
	if lr := h.st.list(l); len(lr.Groups) != 0 {
		t.Fatalf("list consumer-protocol groups: %+v", lr.Groups)
	}

	d := kmsg.NewPtrDescribeGroupsRequest()
	d.Version, d.Groups = 6, []string{"busy", "missing", ""}
	dr := h.st.describe(d)
	busy := dr.Groups[0]
	if busy.State != "Stable" || busy.Protocol != "range" || len(busy.Members) != 1 ||
		busy.Members[0].MemberID != ids[0] || string(busy.Members[0].MemberAssignment) != "a-"+ids[0] ||
		string(busy.Members[0].ProtocolMetadata) != "range-meta" || busy.Members[0].ClientHost != "/10.0.0.1" {
		t.Fatalf("describe: %+v", busy)
	}
	wantCode(t, "describe missing v6", dr.Groups[1].ErrorCode, kerr.GroupIDNotFound)
	if dr.Groups[1].State != "Dead" {
		t.Fatalf("missing group state %q", dr.Groups[1].State)
	}
	wantCode(t, "describe empty id", dr.Groups[2].ErrorCode, kerr.InvalidGroupID)

	del := kmsg.NewPtrDeleteGroupsRequest()
	del.Version, del.Groups = 2, []string{"busy", "idle", "missing", "idle"}
	c := h.do("c", del)
	if h.answered(c) {
		t.Fatal("DeleteGroups answered before its tombstones were durable")
	}
	h.flush(nil)
	r := h.answers[c].(*kmsg.DeleteGroupsResponse)
	wantCode(t, "busy", r.Groups[0].ErrorCode, kerr.NonEmptyGroup)
	wantCode(t, "idle", r.Groups[1].ErrorCode, nil)
	wantCode(t, "missing", r.Groups[2].ErrorCode, kerr.GroupIDNotFound)
	wantCode(t, "idle twice", r.Groups[3].ErrorCode, kerr.GroupIDNotFound)
	if _, ok := h.st.groups["idle"]; ok {
		t.Fatal("deleted group still there")
	}
	last := h.written[len(h.written)-1]
	if len(last) != 2 || last[0].Value != nil || last[1].Value != nil {
		t.Fatalf("DeleteGroups wrote %d records, want an offset and a group tombstone", len(last))
	}

	// A failed append puts the group back.
	h.commit(commitReq("again", -1, "", "orders", 0))
	del.Groups = []string{"again"}
	c = h.do("c", del)
	h.flush(errTest)
	wantCode(t, "delete on a failing log", h.answers[c].(*kmsg.DeleteGroupsResponse).Groups[0].ErrorCode, kerr.CoordinatorNotAvailable)
	if got := h.st.committed("again"); got["orders"][0] != 100 {
		t.Fatalf("group not restored after a failed delete: %v", got)
	}
}

func TestOffsetRetention(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.OffsetsRetention = time.Hour })
	// Standalone: each offset expires an hour after its commit.
	h.commit(commitReq("solo", -1, "", "orders", 0))
	h.advance(30 * time.Minute)
	h.commit(commitReq("solo", -1, "", "orders", 1))
	h.advance(30 * time.Minute)
	if got := h.st.committed("solo"); len(got["orders"]) != 1 || got["orders"][1] != 101 {
		t.Fatalf("after an hour: %v", got)
	}
	h.advance(30 * time.Minute)
	if _, ok := h.st.groups["solo"]; ok {
		t.Fatal("a group with every offset expired is kept")
	}
	last := h.written[len(h.written)-1]
	if len(last) != 2 || last[0].Value != nil || last[1].Value != nil {
		t.Fatalf("expiry wrote %d records, want an offset and a group tombstone", len(last))
	}

	// A consumer group's offsets live while it has members, then expire
	// an hour after it became Empty.
	ids := h.stableGroup("g", 1)
	h.commit(commitReq("g", 1, ids[0], "orders", 0))
	for range 2 * 60 * 12 { // two hours of heartbeats every 5s
		h.advance(5 * time.Second)
		wantCode(t, "heartbeat", h.heartbeat("g", ids[0], 1), nil)
	}
	if got := h.st.committed("g"); got["orders"][0] != 100 {
		t.Fatalf("a live group's offsets expired: %v", got)
	}
	lv := kmsg.NewPtrLeaveGroupRequest()
	lv.Version, lv.Group, lv.MemberID = 1, "g", ids[0]
	h.do("c", lv)
	h.wantState("g", stateEmpty, 2)
	h.advance(59 * time.Minute)
	if got := h.st.committed("g"); got["orders"][0] != 100 {
		t.Fatalf("offsets expired before the retention since Empty: %v", got)
	}
	h.advance(time.Minute)
	if _, ok := h.st.groups["g"]; ok {
		t.Fatalf("an Empty group's offsets survived retention: %v", h.st.committed("g"))
	}
}

func TestTopicsDeleted(t *testing.T) {
	h := newHarness(t, nil)
	h.commit(commitReq("a", -1, "", "orders", 0, 1))
	h.commit(commitReq("a", -1, "", "payments", 0))
	fx := &effects{}
	h.st.topicsDeleted(h.now, []string{"orders"}, fx)
	h.run(fx)
	if got := h.st.committed("a"); len(got) != 1 || len(got["payments"]) != 1 {
		t.Fatalf("after deleting orders: %v", got)
	}
	if last := h.written[len(h.written)-1]; len(last) != 2 || last[0].Value != nil {
		t.Fatalf("wrote %d records, want two tombstones", len(last))
	}
}

func equal(a, b []int16) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
