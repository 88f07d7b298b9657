package consumer

import (
	"reflect"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestSingleMemberGetsAll(t *testing.T) {
	h := newHarness(t, Options{})
	h.topics.add("t", 4)
	c := &client{id: "a", topics: []string{"t"}}
	resp := h.beat(c, true)
	if resp.ErrorCode != 0 || resp.MemberEpoch != 1 || *resp.MemberID != "a" {
		t.Fatalf("join: %+v", resp)
	}
	if want := assignmentOf(h.topics, map[string][]int32{"t": {0, 1, 2, 3}}); !c.owned.equal(want) {
		t.Fatalf("owned %v, want %v", c.owned, want)
	}
	if resp.HeartbeatIntervalMillis != 5000 {
		t.Fatalf("heartbeat interval %d", resp.HeartbeatIntervalMillis)
	}
	if s := h.g.State(); s != "stable" {
		t.Fatalf("state %s", s)
	}
	// A keepalive carries no assignment when nothing changed.
	if resp := h.beat(c, false); resp.Assignment != nil || resp.MemberEpoch != 1 {
		t.Fatalf("keepalive: %+v", resp)
	}
	// A full request always does.
	if resp := h.beat(c, true); resp.Assignment == nil {
		t.Fatalf("full request without assignment")
	}
	h.checkReplay()
}

func TestEmptyMemberIDIsGenerated(t *testing.T) {
	h := newHarness(t, Options{})
	h.topics.add("t", 1)
	c := &client{topics: []string{"t"}}
	resp := h.beat(c, true)
	if resp.ErrorCode != 0 || resp.MemberID == nil || *resp.MemberID == "" {
		t.Fatalf("join: %+v", resp)
	}
}

// TestRevocationBeforeAssignment walks the two-member handover step by step:
// the partition moves only once the first member reported it revoked.
func TestRevocationBeforeAssignment(t *testing.T) {
	h := newHarness(t, Options{})
	h.topics.add("t", 4)
	a := &client{id: "a", topics: []string{"t"}}
	b := &client{id: "b", topics: []string{"t"}}
	all := []*client{a, b}
	step := func(c *client, full bool) *kmsg.ConsumerGroupHeartbeatResponse {
		t.Helper()
		r := h.beat(c, full)
		checkClients(t, h.g, all)
		return r
	}
	step(a, true)
	// b joins at epoch 2; everything is still a's, so it gets nothing yet.
	r := step(b, true)
	if r.MemberEpoch != 2 || b.owned.count() != 0 || h.g.State() != "reconciling" {
		t.Fatalf("b join: epoch %d owned %v state %s", r.MemberEpoch, b.owned, h.g.State())
	}
	// a is asked to give up two partitions and stays at epoch 1.
	r = step(a, false)
	if r.MemberEpoch != 1 || r.Assignment == nil || a.owned.count() != 2 {
		t.Fatalf("a revoke: %+v owned %v", r, a.owned)
	}
	// b still gets nothing: a has not confirmed.
	if r := step(b, false); r.Assignment != nil || b.owned.count() != 0 {
		t.Fatalf("b early: %+v", r)
	}
	// a confirms with a full heartbeat listing what it owns: epoch 2.
	if r := step(a, true); r.MemberEpoch != 2 {
		t.Fatalf("a confirm: %+v", r)
	}
	if r := step(b, false); r.Assignment == nil || b.owned.count() != 2 {
		t.Fatalf("b after release: %+v owned %v", r, b.owned)
	}
	if h.g.State() != "stable" {
		t.Fatalf("state %s", h.g.State())
	}
	h.checkReplay()

	// a leaves: b gets everything.
	if r := h.leave(a, -1); r.ErrorCode != 0 || r.MemberEpoch != -1 {
		t.Fatalf("leave: %+v", r)
	}
	if r := step(b, false); r.MemberEpoch != 3 || b.owned.count() != 4 {
		t.Fatalf("b after leave: %+v owned %v", r, b.owned)
	}
	// Leaving again is an unknown member.
	if r := h.leave(a, -1); r.ErrorCode != codeUnknownMemberID {
		t.Fatalf("second leave: %+v", r)
	}
	h.checkReplay()
}

func TestSessionTimeout(t *testing.T) {
	h := newHarness(t, Options{SessionTimeout: 10 * time.Second, HeartbeatInterval: time.Second})
	h.topics.add("t", 4)
	a := &client{id: "a", topics: []string{"t"}}
	b := &client{id: "b", topics: []string{"t"}}
	h.beat(a, true)
	h.beat(b, true)
	for range 3 {
		h.beat(a, true)
		h.beat(b, true)
	}
	if h.g.State() != "stable" {
		t.Fatalf("state %s", h.g.State())
	}
	// Only a keeps heartbeating.
	for range 3 {
		h.now = h.now.Add(4 * time.Second)
		h.beat(a, false)
		if d := h.g.Deadline(); !d.After(h.now) {
			h.tick()
		}
	}
	if h.g.Members() != 1 {
		t.Fatalf("members %d", h.g.Members())
	}
	h.beat(a, false)
	if a.owned.count() != 4 {
		t.Fatalf("a owns %v", a.owned)
	}
	if r := h.beat(b, false); r.ErrorCode != codeUnknownMemberID {
		t.Fatalf("expired member heartbeat: %+v", r)
	}
	h.checkReplay()
}

func TestRebalanceTimeoutFencesMemberThatNeverRevokes(t *testing.T) {
	h := newHarness(t, Options{})
	h.topics.add("t", 4)
	a := &client{id: "a", topics: []string{"t"}}
	b := &client{id: "b", topics: []string{"t"}}
	h.beat(a, true)
	h.beat(b, true)
	// a is told to revoke but keeps reporting all four partitions.
	stubborn := a.owned.clone()
	h.beat(a, true)
	a.owned = stubborn
	h.beat(a, true)
	a.owned = stubborn
	if m := h.g.members["a"]; m.state != stateUnrevoked {
		t.Fatalf("a state %d", m.state)
	}
	// Within the rebalance timeout (60s as the client sent), nothing.
	h.now = h.now.Add(30 * time.Second)
	h.beat(b, false)
	h.tick()
	if h.g.Members() != 2 {
		t.Fatal("fenced too early")
	}
	h.now = h.now.Add(31 * time.Second)
	h.beat(b, false) // keep b's session alive
	h.tick()
	if h.g.Members() != 1 || h.g.members["a"] != nil {
		t.Fatalf("a not fenced: members %d", h.g.Members())
	}
	h.beat(b, false)
	if b.owned.count() != 4 {
		t.Fatalf("b owns %v", b.owned)
	}
	h.checkReplay()
}

func TestFencedAndUnknown(t *testing.T) {
	h := newHarness(t, Options{})
	h.topics.add("t", 2)
	a := &client{id: "a", topics: []string{"t"}}
	h.beat(a, true)
	for _, tc := range []struct {
		name  string
		id    string
		epoch int32
		want  int16
	}{
		{"future epoch", "a", 5, codeFencedMemberEpoch},
		{"unknown member", "zz", 1, codeUnknownMemberID},
		{"epoch below -2", "a", -3, codeInvalidRequest},
		{"empty id", "", 1, codeInvalidRequest},
	} {
		req := h.request(&client{id: tc.id, epoch: tc.epoch}, false)
		resp, recs := h.g.Heartbeat(h.now, h.topics, req)
		if resp.ErrorCode != tc.want || len(recs) != 0 {
			t.Errorf("%s: code %d records %d, want %d", tc.name, resp.ErrorCode, len(recs), tc.want)
		}
	}
	// b joins; a's epoch moves on, so a's old epoch becomes stale for
	// OffsetCommit and a previous epoch is only accepted with a subset.
	b := &client{id: "b", topics: []string{"t"}}
	h.beat(b, true)
	h.beat(a, false)
	h.beat(a, true)
	if a.epoch != 2 {
		t.Fatalf("a epoch %d", a.epoch)
	}
	if code := h.g.ValidateCommit("a", 1); code != codeStaleMemberEpoch {
		t.Fatalf("commit at old epoch: %d", code)
	}
	if code := h.g.ValidateCommit("a", 2); code != 0 {
		t.Fatalf("commit at current epoch: %d", code)
	}
	if code := h.g.ValidateCommit("x", 2); code != codeUnknownMemberID {
		t.Fatalf("commit from unknown: %d", code)
	}
	if code := h.g.ValidateCommit("", -1); code != 0 {
		t.Fatalf("admin commit: %d", code)
	}
	// The previous epoch with owned partitions that are a subset: accepted
	// (the response that bumped the epoch was lost).
	old := &client{id: "a", epoch: 1, owned: a.owned.clone(), topics: []string{"t"}}
	if r := h.beat(old, true); r.ErrorCode != 0 || r.MemberEpoch != 2 {
		t.Fatalf("previous epoch: %+v", r)
	}
	// Keepalive at the previous epoch: no owned partitions to check, fenced.
	old = &client{id: "a", epoch: 1, topics: []string{"t"}}
	if r := h.beat(old, false); r.ErrorCode != codeFencedMemberEpoch {
		t.Fatalf("previous epoch keepalive: %+v", r)
	}
	// The fenced client rejoins with its ID at epoch 0 and gets its
	// partitions back.
	h.beat(old, true)
	if old.epoch != h.g.targetEpoch || old.owned.count() != 1 {
		t.Fatalf("rejoin: epoch %d owned %v", old.epoch, old.owned)
	}
	h.checkReplay()
}

func TestRequestValidation(t *testing.T) {
	h := newHarness(t, Options{MaxSize: 1})
	h.topics.add("t", 2)
	base := func() *kmsg.ConsumerGroupHeartbeatRequest {
		return h.request(&client{id: "x", topics: []string{"t"}}, true)
	}
	for _, tc := range []struct {
		name string
		mod  func(*kmsg.ConsumerGroupHeartbeatRequest)
		want int16
	}{
		{"unsupported assignor", func(r *kmsg.ConsumerGroupHeartbeatRequest) { r.ServerAssignor = strp("sticky") }, codeUnsupportedAssign},
		{"bad regex", func(r *kmsg.ConsumerGroupHeartbeatRequest) { r.SubscribedTopicRegex = strp("a(") }, codeInvalidRegex},
		{"no rebalance timeout", func(r *kmsg.ConsumerGroupHeartbeatRequest) { r.RebalanceTimeoutMillis = -1 }, codeInvalidRequest},
		{"owned on join", func(r *kmsg.ConsumerGroupHeartbeatRequest) {
			r.Topics = []kmsg.ConsumerGroupHeartbeatRequestTopic{{Partitions: []int32{0}}}
		}, codeInvalidRequest},
		{"no subscription", func(r *kmsg.ConsumerGroupHeartbeatRequest) { r.SubscribedTopicNames = nil }, codeInvalidRequest},
		{"static leave without instance", func(r *kmsg.ConsumerGroupHeartbeatRequest) { r.MemberEpoch = -2 }, codeInvalidRequest},
	} {
		req := base()
		tc.mod(req)
		resp, recs := h.g.Heartbeat(h.now, h.topics, req)
		if resp.ErrorCode != tc.want || len(recs) != 0 {
			t.Errorf("%s: code %d, want %d", tc.name, resp.ErrorCode, tc.want)
		}
	}
	h.beat(&client{id: "a", topics: []string{"t"}}, true)
	c := &client{id: "b", topics: []string{"t"}}
	if r := h.beat(c, true); r.ErrorCode != codeGroupMaxSize {
		t.Fatalf("max size: %+v", r)
	}
	// A known member rejoining is not a new member.
	if r := h.beat(&client{id: "a", topics: []string{"t"}}, true); r.ErrorCode != 0 {
		t.Fatalf("rejoin at max size: %+v", r)
	}
}

func TestStaticMemberTemporaryLeave(t *testing.T) {
	h := newHarness(t, Options{})
	h.topics.add("t", 4)
	a := &client{id: "a1", inst: strp("ia"), topics: []string{"t"}}
	b := &client{id: "b1", inst: strp("ib"), topics: []string{"t"}}
	all := []*client{a, b}
	for range 3 {
		h.beat(a, true)
		h.beat(b, true)
	}
	if h.g.State() != "stable" {
		t.Fatalf("state %s", h.g.State())
	}
	kept := a.owned.clone()
	epoch := h.g.Epoch()

	// A second process with instance ib cannot join while b1 is active.
	intruder := &client{id: "b2", inst: strp("ib"), topics: []string{"t"}}
	if r := h.beat(intruder, true); r.ErrorCode != codeUnreleasedInst {
		t.Fatalf("intruder: %+v", r)
	}

	if r := h.leave(a, -2); r.ErrorCode != 0 || r.MemberEpoch != -2 {
		t.Fatalf("static leave: %+v", r)
	}
	// No rebalance: b keeps its half, a's half stays reserved.
	h.beat(b, true)
	if h.g.Epoch() != epoch || b.owned.count() != 2 {
		t.Fatalf("after static leave: epoch %d b owns %v", h.g.Epoch(), b.owned)
	}
	// a restarts with a new member ID and the same instance ID.
	a2 := &client{id: "a2", inst: strp("ia"), topics: []string{"t"}}
	all = append(all, a2)
	r := h.beat(a2, true)
	if r.ErrorCode != 0 || !a2.owned.equal(kept) || h.g.Epoch() != epoch {
		t.Fatalf("static rejoin: %+v owned %v want %v epoch %d", r, a2.owned, kept, h.g.Epoch())
	}
	checkClients(t, h.g, all)
	// The old incarnation is fenced.
	a.epoch = r.MemberEpoch
	if r := h.beat(a, true); r.ErrorCode != codeFencedInst {
		t.Fatalf("old incarnation: %+v", r)
	}
	h.checkReplay()

	// A static member that leaves temporarily and never comes back is
	// removed when its session expires.
	h.leave(a2, -2)
	h.now = h.now.Add(DefaultSessionTimeout / 2)
	h.beat(b, false)
	h.now = h.now.Add(DefaultSessionTimeout/2 + time.Second)
	h.beat(b, false)
	h.tick()
	if h.g.Members() != 1 {
		t.Fatalf("members %d", h.g.Members())
	}
	h.beat(b, false)
	if b.owned.count() != 4 {
		t.Fatalf("b owns %v", b.owned)
	}
	h.checkReplay()
}

func TestRegexPicksUpNewTopic(t *testing.T) {
	h := newHarness(t, Options{})
	h.topics.add("logs-a", 2)
	h.topics.add("other", 2)
	c := &client{id: "a", regex: strp("logs-.*")}
	h.beat(c, true)
	if want := assignmentOf(h.topics, map[string][]int32{"logs-a": {0, 1}}); !c.owned.equal(want) {
		t.Fatalf("owned %v want %v", c.owned, want)
	}
	if !h.g.Subscribed("logs-zzz") || h.g.Subscribed("other") {
		t.Fatal("Subscribed disagrees with the regex")
	}
	lists := h.topics.lists
	h.beat(c, false)
	h.beat(c, true)
	if h.topics.lists != lists {
		t.Fatal("heartbeats listed topics again")
	}
	epoch := h.g.Epoch()
	h.topics.add("unrelated", 3)
	h.metadataChanged()
	if h.g.Epoch() != epoch {
		t.Fatal("epoch bumped for an unrelated topic")
	}
	h.topics.add("logs-b", 3)
	h.metadataChanged()
	if h.g.Epoch() != epoch+1 {
		t.Fatal("no bump for a matching topic")
	}
	h.beat(c, false)
	if want := assignmentOf(h.topics, map[string][]int32{"logs-a": {0, 1}, "logs-b": {0, 1, 2}}); !c.owned.equal(want) {
		t.Fatalf("owned %v want %v", c.owned, want)
	}
	// More partitions are a metadata change too.
	h.topics.grow("logs-a", 4)
	h.metadataChanged()
	h.beat(c, false)
	if c.owned.count() != 7 {
		t.Fatalf("owned %v", c.owned)
	}
	h.checkReplay()
}

func TestRangeCoPartitioning(t *testing.T) {
	h := newHarness(t, Options{Assignors: []string{AssignorRange}})
	h.topics.add("x", 5)
	h.topics.add("y", 5)
	cs := []*client{
		{id: "m1", topics: []string{"x", "y"}, assignor: strp("range")},
		{id: "m2", topics: []string{"x", "y"}},
		{id: "m3", topics: []string{"x", "y"}},
	}
	for range 4 {
		for _, c := range cs {
			h.beat(c, true)
		}
	}
	if h.g.State() != "stable" {
		t.Fatalf("state %s", h.g.State())
	}
	x, y := h.topics.byName["x"].ID, h.topics.byName["y"].ID
	want := [][]int32{{0, 1}, {2, 3}, {4}}
	for i, c := range cs {
		if !reflect.DeepEqual(c.owned[x], want[i]) || !reflect.DeepEqual(c.owned[y], want[i]) {
			t.Errorf("%s owns x=%v y=%v, want %v of both", c.id, c.owned[x], c.owned[y], want[i])
		}
	}
	if d := h.g.Describe(h.topics, false); d.AssignorName != "range" || d.State != "Stable" {
		t.Fatalf("describe: %+v", d)
	}
	h.checkReplay()
}

func TestDescribe(t *testing.T) {
	h := newHarness(t, Options{})
	h.topics.add("t", 2)
	c := &client{id: "a", inst: strp("i"), topics: []string{"t"}}
	h.beat(c, true)
	d := h.g.Describe(h.topics, true)
	if d.Group != "g1" || d.State != "Stable" || d.Epoch != 1 || d.AssignmentEpoch != 1 || d.AssignorName != "uniform" || len(d.Members) != 1 || d.AuthorizedOperations == -2147483648 {
		t.Fatalf("describe: %+v", d)
	}
	m := d.Members[0]
	if m.MemberID != "a" || *m.InstanceID != "i" || m.MemberEpoch != 1 || m.MemberType != 1 ||
		len(m.Assignment.TopicPartitions) != 1 || m.Assignment.TopicPartitions[0].Topic != "t" ||
		!reflect.DeepEqual(m.Assignment, m.TargetAssignment) {
		t.Fatalf("member: %+v", m)
	}
}

func TestDeleteAndReplay(t *testing.T) {
	h := newHarness(t, Options{})
	h.topics.add("t", 3)
	a := &client{id: "a", topics: []string{"t"}}
	b := &client{id: "b", topics: []string{"t"}}
	h.beat(a, true)
	h.beat(b, true)
	h.beat(a, true)
	// A replayed group answers the next heartbeat exactly like the original.
	r := replay(t, "g1", Options{}, h.log)
	req := h.request(b, false)
	want, wantRecs := h.g.Heartbeat(h.now, h.topics, req)
	got, gotRecs := r.Heartbeat(h.now, h.topics, req)
	if !reflect.DeepEqual(got, want) || !reflect.DeepEqual(gotRecs, wantRecs) {
		t.Fatalf("replayed group answers %+v %v, original %+v %v", got, gotRecs, want, wantRecs)
	}
	h.persist(wantRecs)
	if !h.g.Subscribed("t") {
		t.Fatal("not subscribed")
	}
	h.persist(h.g.Delete())
	if h.g.State() != "dead" || h.g.Members() != 0 {
		t.Fatalf("after delete: %s %d", h.g.State(), h.g.Members())
	}
	for name, recs := range map[string][]Record{"full": h.log, "compacted": compact(h.log)} {
		r := replay(t, "g1", Options{}, recs)
		if r.Members() != 0 || r.Epoch() != 0 {
			t.Fatalf("%s: replay after delete: %d members epoch %d", name, r.Members(), r.Epoch())
		}
	}
	// Records of another group or kind are refused.
	if err := r.Replay(Record{Key: groupKey("other"), Value: []byte{0, 1}}); err == nil {
		t.Fatal("replayed another group's record")
	}
	if id, ok := RecordGroup(memberKey(keyMember, "g1", "a")); !ok || id != "g1" {
		t.Fatalf("RecordGroup: %q %v", id, ok)
	}
	if _, ok := RecordGroup([]byte{0, 1, 0, 1, 'x'}); ok {
		t.Fatal("offset commit key taken as ours")
	}
}

func TestOptionsValidate(t *testing.T) {
	if err := (Options{}).Validate(); err != nil {
		t.Fatal(err)
	}
	err := Options{SessionTimeout: time.Second, HeartbeatInterval: 2 * time.Second, MaxSize: -1, Assignors: []string{"x", "range", "range"}}.Validate()
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{"heartbeat interval", "max size", `"x"`, "twice"} {
		if !contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
}

func contains(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}
