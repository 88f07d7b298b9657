package group

import (
	"errors"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// fakeClock is Options.Now for tests that move time by hand. The owner
// goroutine still sleeps on a real timer, armed from the fake time: once
// the clock passes a deadline the next owner step fires it at once.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *fakeClock { return &fakeClock{now: time.Unix(1_700_000_000, 0)} }

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }

func (c *fakeClock) advance(d time.Duration) { c.mu.Lock(); c.now = c.now.Add(d); c.mu.Unlock() }

// syncTopics is a topic table the test can change while the coordinator
// reads it.
type syncTopics struct {
	mu sync.Mutex
	m  map[string]TopicInfo
}

func newSyncTopics() *syncTopics {
	return &syncTopics{m: maps.Clone(map[string]TopicInfo(testTopics))}
}

func (s *syncTopics) Topic(name string) (TopicInfo, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.m[name]
	return t, ok
}

func (s *syncTopics) TopicByID(id [16]byte) (TopicInfo, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, t := range s.m {
		if t.ID == id {
			return t, true
		}
	}
	return TopicInfo{}, false
}

func (s *syncTopics) List() []TopicInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Collect(maps.Values(s.m))
}

func (s *syncTopics) set(t TopicInfo) { s.mu.Lock(); s.m[t.Name] = t; s.mu.Unlock() }

var ordersID = testTopics["orders"].ID

// cgMember is a consumer-protocol client as the test drives it: it owns
// what the last response assigned it and reports that on each heartbeat.
type cgMember struct {
	id    string
	group string
	subs  []string
	epoch int32
	owned []int32 // partitions of "orders"
}

func (m *cgMember) request() *kmsg.ConsumerGroupHeartbeatRequest {
	r := kmsg.NewPtrConsumerGroupHeartbeatRequest()
	r.Version = 1
	r.Group, r.MemberID, r.MemberEpoch = m.group, m.id, m.epoch
	r.Topics = []kmsg.ConsumerGroupHeartbeatRequestTopic{}
	if len(m.owned) > 0 {
		t := kmsg.NewConsumerGroupHeartbeatRequestTopic()
		t.TopicID, t.Partitions = ordersID, slices.Clone(m.owned)
		r.Topics = append(r.Topics, t)
	}
	if m.epoch == 0 {
		r.RebalanceTimeoutMillis = 60_000
		r.SubscribedTopicNames = m.subs
	}
	return r
}

// beat sends one heartbeat and applies the response; it returns the
// error code.
func (m *cgMember) beat(t *testing.T, c *Coordinator) int16 {
	t.Helper()
	r := do[*kmsg.ConsumerGroupHeartbeatResponse](t, c, m.request())
	if r.ErrorCode != 0 {
		return r.ErrorCode
	}
	if r.MemberID == nil || *r.MemberID != m.id {
		t.Fatalf("member id %v, want %s", r.MemberID, m.id)
	}
	m.epoch = r.MemberEpoch
	if r.Assignment != nil {
		m.owned = nil
		for _, tp := range r.Assignment.Topics {
			if tp.TopicID == ordersID {
				m.owned = slices.Clone(tp.Partitions)
			}
		}
	}
	return 0
}

func (m *cgMember) mustBeat(t *testing.T, c *Coordinator) {
	t.Helper()
	if code := m.beat(t, c); code != 0 {
		t.Fatalf("member %s heartbeat: %v", m.id, kerr.ErrorForCode(code))
	}
}

// converge heartbeats every member in turn until a round changes
// nothing; the owned partitions must never overlap.
func converge(t *testing.T, c *Coordinator, ms ...*cgMember) {
	t.Helper()
	for range 10 {
		changed := false
		for _, m := range ms {
			before, owned := m.epoch, slices.Clone(m.owned)
			m.mustBeat(t, c)
			changed = changed || before != m.epoch || !slices.Equal(owned, m.owned)
			checkDisjoint(t, ms)
		}
		if !changed {
			return
		}
	}
	t.Fatal("the group did not converge in 10 rounds")
}

func checkDisjoint(t *testing.T, ms []*cgMember) {
	t.Helper()
	seen := map[int32]string{}
	for _, m := range ms {
		for _, p := range m.owned {
			if o, ok := seen[p]; ok {
				t.Fatalf("partition %d owned by %s and %s", p, o, m.id)
			}
			seen[p] = m.id
		}
	}
}

func allOwned(ms ...*cgMember) []int32 {
	var out []int32
	for _, m := range ms {
		out = append(out, m.owned...)
	}
	slices.Sort(out)
	return out
}

func describeCG(t *testing.T, c *Coordinator, id string) kmsg.ConsumerGroupDescribeResponseGroup {
	t.Helper()
	r := kmsg.NewPtrConsumerGroupDescribeRequest()
	r.Version = 1
	r.Groups = []string{id}
	return do[*kmsg.ConsumerGroupDescribeResponse](t, c, r).Groups[0]
}

func fetchReq(group, member string, epoch int32) *kmsg.OffsetFetchRequest {
	r := kmsg.NewPtrOffsetFetchRequest()
	r.Version = 9
	g := kmsg.NewOffsetFetchRequestGroup()
	g.Group, g.MemberEpoch = group, epoch
	if member != "" {
		g.MemberID = kmsg.StringPtr(member)
	}
	r.Groups = []kmsg.OffsetFetchRequestGroup{g}
	return r
}

func listGroups(t *testing.T, c *Coordinator, states, types []string) []kmsg.ListGroupsResponseGroup {
	t.Helper()
	r := kmsg.NewPtrListGroupsRequest()
	r.Version = 5
	r.StatesFilter, r.TypesFilter = states, types
	return do[*kmsg.ListGroupsResponse](t, c, r).Groups
}

func TestConsumerGroupLifecycle(t *testing.T) {
	log, clk := newMemLog(), newClock()
	opts := func(o *Options) { o.Now = clk.Now }
	c := loaded(t, log, opts)

	a := &cgMember{id: "member-a", group: "cg", subs: []string{"orders"}}
	a.mustBeat(t, c)
	if a.epoch != 1 || !slices.Equal(a.owned, []int32{0, 1, 2}) {
		t.Fatalf("first member: epoch %d owns %v", a.epoch, a.owned)
	}
	b := &cgMember{id: "member-b", group: "cg", subs: []string{"orders"}}
	b.mustBeat(t, c)
	if len(b.owned) != 0 {
		t.Fatalf("second member got %v while the first still owns everything", b.owned)
	}
	// a is asked to revoke, reports it, then b gets what a released.
	converge(t, c, a, b)
	if got := allOwned(a, b); !slices.Equal(got, []int32{0, 1, 2}) || len(a.owned) == 0 || len(b.owned) == 0 {
		t.Fatalf("after the rebalance a owns %v, b owns %v", a.owned, b.owned)
	}
	if a.epoch != 2 || b.epoch != 2 {
		t.Fatalf("epochs %d, %d, want 2", a.epoch, b.epoch)
	}
	d := describeCG(t, c, "cg")
	if d.ErrorCode != 0 || d.State != "Stable" || len(d.Members) != 2 || d.Epoch != 2 {
		t.Fatalf("ConsumerGroupDescribe: %+v", d)
	}
	if d.Members[0].ClientID != "app" || d.Members[0].ClientHost != "/10.0.0.7" {
		t.Fatalf("member client %q %q", d.Members[0].ClientID, d.Members[0].ClientHost)
	}

	// Commits are checked against the member epoch.
	ok := commitReq("cg", a.epoch, a.id, "orders", a.owned...)
	if codes := commitCodes(do[*kmsg.OffsetCommitResponse](t, c, ok)); slices.ContainsFunc(codes, func(c int16) bool { return c != 0 }) {
		t.Fatalf("commit at the current epoch: %v", codes)
	}
	for _, tc := range []struct {
		name    string
		req     *kmsg.OffsetCommitRequest
		version int16
		want    *kerr.Error
	}{
		{"stale epoch", commitReq("cg", a.epoch-1, a.id, "orders", 0), 9, kerr.StaleMemberEpoch},
		{"unknown member", commitReq("cg", 2, "nobody", "orders", 0), 9, kerr.UnknownMemberID},
		{"v8 from a member", commitReq("cg", a.epoch, a.id, "orders", 0), 8, kerr.UnsupportedVersion},
	} {
		tc.req.Version = tc.version
		wantCode(t, tc.name, commitCodes(do[*kmsg.OffsetCommitResponse](t, c, tc.req))[0], tc.want)
	}
	f := do[*kmsg.OffsetFetchResponse](t, c, fetchReq("cg", a.id, a.epoch))
	if f.Groups[0].ErrorCode != 0 || len(f.Groups[0].Topics) != 1 {
		t.Fatalf("fetch by the member: %+v", f.Groups[0])
	}
	f = do[*kmsg.OffsetFetchResponse](t, c, fetchReq("cg", a.id, a.epoch+5))
	wantCode(t, "fetch at a wrong epoch", f.Groups[0].ErrorCode, kerr.StaleMemberEpoch)
	f = do[*kmsg.OffsetFetchResponse](t, c, fetchReq("cg", "", -1))
	wantCode(t, "fetch by an admin client", f.Groups[0].ErrorCode, nil)

	// Admin APIs see a consumer group.
	if gs := listGroups(t, c, []string{"stable"}, []string{"consumer"}); len(gs) != 1 ||
		gs[0].GroupType != "consumer" || gs[0].GroupState != "Stable" || gs[0].ProtocolType != "consumer" {
		t.Fatalf("ListGroups: %+v", gs)
	}
	if gs := listGroups(t, c, nil, []string{"classic"}); len(gs) != 0 {
		t.Fatalf("ListGroups of classic groups: %+v", gs)
	}
	dg := kmsg.NewPtrDescribeGroupsRequest()
	dg.Version, dg.Groups = 6, []string{"cg"}
	rg := do[*kmsg.DescribeGroupsResponse](t, c, dg).Groups[0]
	if rg.State != "Dead" || rg.ErrorCode != kerr.GroupIDNotFound.Code {
		t.Fatalf("DescribeGroups of a consumer group: %+v", rg)
	}
	od := kmsg.NewPtrOffsetDeleteRequest()
	od.Group = "cg"
	odt := kmsg.NewOffsetDeleteRequestTopic()
	odt.Topic, odt.Partitions = "orders", []kmsg.OffsetDeleteRequestTopicPartition{{Partition: 0}}
	od.Topics = append(od.Topics, odt)
	odr := do[*kmsg.OffsetDeleteResponse](t, c, od)
	wantCode(t, "OffsetDelete of a subscribed topic", odr.Topics[0].Partitions[0].ErrorCode, kerr.GroupSubscribedToTopic)
	del := kmsg.NewPtrDeleteGroupsRequest()
	del.Groups = []string{"cg"}
	wantCode(t, "DeleteGroups with members", do[*kmsg.DeleteGroupsResponse](t, c, del).Groups[0].ErrorCode, kerr.NonEmptyGroup)
	if gi := c.Groups(); len(gi) != 1 || gi[0].Type != "consumer" || gi[0].Members != 2 || gi[0].State != "Stable" {
		t.Fatalf("Groups: %+v", gi)
	}

	// b stops heartbeating: past the session timeout (45 s by default)
	// it is removed and a takes everything back.
	clk.advance(30 * time.Second)
	a.mustBeat(t, c)
	clk.advance(20 * time.Second)
	deadline := time.Now().Add(5 * time.Second)
	for len(describeCG(t, c, "cg").Members) != 1 {
		if time.Now().After(deadline) {
			t.Fatal("b was not expired")
		}
		time.Sleep(time.Millisecond)
	}
	wantCode(t, "heartbeat of an expired member", b.beat(t, c), kerr.UnknownMemberID)
	converge(t, c, a)
	if !slices.Equal(a.owned, []int32{0, 1, 2}) || a.epoch != 3 {
		t.Fatalf("after b expired a owns %v at epoch %d", a.owned, a.epoch)
	}

	// A restarted coordinator resumes the group from the log: a carries
	// on at its epoch.
	c.Close()
	c2 := loaded(t, log, opts)
	before := slices.Clone(a.owned)
	a.mustBeat(t, c2)
	if a.epoch != 3 || !slices.Equal(a.owned, before) {
		t.Fatalf("after the load a is at epoch %d owning %v", a.epoch, a.owned)
	}
	if got := c2.Committed("cg"); len(got["orders"]) == 0 {
		t.Fatalf("committed after the load: %v", got)
	}

	// a leaves; the empty group can be deleted, offsets and all.
	a.epoch = -1
	a.mustBeat(t, c2)
	if gs := listGroups(t, c2, []string{"Empty"}, nil); len(gs) != 1 || gs[0].Group != "cg" {
		t.Fatalf("ListGroups after the leave: %+v", gs)
	}
	wantCode(t, "DeleteGroups of the empty group", do[*kmsg.DeleteGroupsResponse](t, c2, del).Groups[0].ErrorCode, nil)
	if gs := listGroups(t, c2, nil, nil); len(gs) != 0 {
		t.Fatalf("ListGroups after the delete: %+v", gs)
	}
	if d := describeCG(t, c2, "cg"); d.ErrorCode != kerr.GroupIDNotFound.Code {
		t.Fatalf("ConsumerGroupDescribe after the delete: %+v", d)
	}
	c2.Close()
	c3 := loaded(t, log, opts)
	if gs := listGroups(t, c3, nil, nil); len(gs) != 0 {
		t.Fatalf("ListGroups after the delete and a load: %+v", gs)
	}
}

func TestConsumerAndClassicDoNotMix(t *testing.T) {
	c := loaded(t, newMemLog(), nil)

	// A classic group with a member.
	jr := do[*kmsg.JoinGroupResponse](t, c, joinReq("classic", ""))
	wantCode(t, "classic join", jr.ErrorCode, nil)
	m := &cgMember{id: "x", group: "classic", subs: []string{"orders"}}
	wantCode(t, "consumer heartbeat to a classic group", m.beat(t, c), kerr.GroupIDNotFound)

	// A consumer group with a member.
	n := &cgMember{id: "y", group: "consumer", subs: []string{"orders"}}
	n.mustBeat(t, c)
	jr = do[*kmsg.JoinGroupResponse](t, c, joinReq("consumer", ""))
	wantCode(t, "classic join to a consumer group", jr.ErrorCode, kerr.InconsistentGroupProtocol)
	wantCode(t, "classic heartbeat to a consumer group",
		do[*kmsg.HeartbeatResponse](t, c, hbReq("consumer", "y", 1)).ErrorCode, kerr.UnknownMemberID)
	wantCode(t, "sync to a consumer group",
		do[*kmsg.SyncGroupResponse](t, c, syncReq("consumer", "y", 1, nil)).ErrorCode, kerr.UnknownMemberID)

	// A heartbeat that is not a join does not create a group.
	ghost := &cgMember{id: "z", group: "nothing", epoch: 3}
	wantCode(t, "heartbeat to no group", ghost.beat(t, c), kerr.GroupIDNotFound)

	// An empty classic group (offsets only) becomes a consumer group
	// and keeps its offsets.
	r := do[*kmsg.OffsetCommitResponse](t, c, commitReq("simple", -1, "", "orders", 0))
	wantCode(t, "simple commit", commitCodes(r)[0], nil)
	s := &cgMember{id: "s", group: "simple", subs: []string{"orders"}}
	s.mustBeat(t, c)
	if got := c.Committed("simple"); got["orders"][0] != 100 {
		t.Fatalf("offsets after the conversion: %v", got)
	}
	// And an empty consumer group becomes classic on a JoinGroup.
	s.epoch = -1
	s.mustBeat(t, c)
	jr = do[*kmsg.JoinGroupResponse](t, c, joinReq("simple", ""))
	wantCode(t, "join to an empty consumer group", jr.ErrorCode, nil)
	if gs := listGroups(t, c, nil, []string{"consumer"}); len(gs) != 1 || gs[0].Group != "consumer" {
		t.Fatalf("consumer groups after the conversions: %+v", gs)
	}
	if got := c.Committed("simple"); got["orders"][0] != 100 {
		t.Fatalf("offsets after the conversion back: %v", got)
	}
}

func TestConsumerGroupFailedAppendRebuilds(t *testing.T) {
	log := newMemLog()
	c := loaded(t, log, nil)
	a := &cgMember{id: "a", group: "f", subs: []string{"orders"}}
	a.mustBeat(t, c)
	a.mustBeat(t, c)

	log.setFail(errors.New("disk on fire"))
	b := &cgMember{id: "b", group: "f", subs: []string{"orders"}}
	wantCode(t, "join while the log fails", b.beat(t, c), kerr.CoordinatorNotAvailable)
	log.setFail(nil)

	// The group is what the log holds: a alone, at its epoch, owning
	// everything; b was never a member.
	d := describeCG(t, c, "f")
	if len(d.Members) != 1 || d.Members[0].MemberID != "a" || d.Epoch != 1 {
		t.Fatalf("after the failed append: %+v", d)
	}
	a.mustBeat(t, c)
	if a.epoch != 1 || !slices.Equal(a.owned, []int32{0, 1, 2}) {
		t.Fatalf("a after the failed append: epoch %d owns %v", a.epoch, a.owned)
	}
	b.epoch = 0
	b.mustBeat(t, c)
	converge(t, c, a, b)
	if got := allOwned(a, b); !slices.Equal(got, []int32{0, 1, 2}) || a.epoch != 2 {
		t.Fatalf("after b joined: a %v at %d, b %v", a.owned, a.epoch, b.owned)
	}
}

func TestConsumerHeartbeatWaitsForDurability(t *testing.T) {
	log := newMemLog()
	c := loaded(t, log, nil)
	log.mu.Lock()
	log.hold = true
	log.mu.Unlock()
	a := &cgMember{id: "a", group: "d", subs: []string{"orders"}}
	ch := c.Do(a.request())
	b := &cgMember{id: "b", group: "d", subs: []string{"orders"}}
	ch2 := c.Do(b.request()) // queued behind a's append
	c.Groups()               // the owner has handled both
	select {
	case r := <-ch:
		t.Fatalf("heartbeat answered before its records were durable: %+v", r)
	case r := <-ch2:
		t.Fatalf("queued heartbeat answered: %+v", r)
	default:
	}
	log.release() // a's append; b's, issued once a's is done, is not held
	r := wait(t, ch).(*kmsg.ConsumerGroupHeartbeatResponse)
	if r.ErrorCode != 0 || r.MemberEpoch != 1 {
		t.Fatalf("a: %+v", r)
	}
	r2 := wait(t, ch2).(*kmsg.ConsumerGroupHeartbeatResponse)
	if r2.ErrorCode != 0 || r2.MemberEpoch != 2 {
		t.Fatalf("b: %+v", r2)
	}
}

func TestConsumerGroupTopicsChanged(t *testing.T) {
	log, topics := newMemLog(), newSyncTopics()
	c := loaded(t, log, func(o *Options) { o.Topics = topics })
	a := &cgMember{id: "a", group: "t", subs: []string{"orders"}}
	converge(t, c, a)
	info := testTopics["orders"]
	info.Partitions = 4
	topics.set(info)
	c.TopicsChanged()
	converge(t, c, a)
	if a.epoch != 2 || !slices.Equal(a.owned, []int32{0, 1, 2, 3}) {
		t.Fatalf("after the topic grew: epoch %d owns %v", a.epoch, a.owned)
	}
}

func TestConsumerGroupRetention(t *testing.T) {
	log, clk := newMemLog(), newClock()
	c := loaded(t, log, func(o *Options) { o.Now = clk.Now; o.OffsetsRetention = time.Hour })
	a := &cgMember{id: "a", group: "r", subs: []string{"orders"}}
	converge(t, c, a)
	r := do[*kmsg.OffsetCommitResponse](t, c, commitReq("r", a.epoch, a.id, "orders", 0))
	wantCode(t, "commit", commitCodes(r)[0], nil)
	a.epoch = -1
	a.mustBeat(t, c)
	clk.advance(time.Hour + time.Second)
	deadline := time.Now().Add(5 * time.Second)
	for len(c.Groups()) != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("the empty consumer group was not expired: %+v, offsets %v", c.Groups(), c.Committed("r"))
		}
		time.Sleep(time.Millisecond)
	}
}

func TestConsumerGroupBeforeLoad(t *testing.T) {
	c := newCoordinator(t, newMemLog(), nil)
	a := &cgMember{id: "a", group: "l", subs: []string{"orders"}}
	wantCode(t, "heartbeat before load", a.beat(t, c), kerr.CoordinatorLoadInProgress)
	r := kmsg.NewPtrConsumerGroupDescribeRequest()
	r.Groups = []string{"l", "m"}
	d := do[*kmsg.ConsumerGroupDescribeResponse](t, c, r)
	if len(d.Groups) != 2 || d.Groups[1].Group != "m" || d.Groups[1].ErrorCode != kerr.CoordinatorLoadInProgress.Code {
		t.Fatalf("ConsumerGroupDescribe before load: %+v", d.Groups)
	}
}

// Each new group epoch (a new target assignment) is logged once, as a
// classic rebalance is.
func TestConsumerGroupRebalanceLogged(t *testing.T) {
	var buf syncBuffer
	log, clk := newMemLog(), newClock()
	c := loaded(t, log, func(o *Options) {
		o.Now = clk.Now
		o.Logger = slog.New(slog.NewTextHandler(&buf, nil))
	})
	a := &cgMember{id: "member-a", group: "cg", subs: []string{"orders"}}
	a.mustBeat(t, c)
	b := &cgMember{id: "member-b", group: "cg", subs: []string{"orders"}}
	b.mustBeat(t, c)
	converge(t, c, a, b)
	a.mustBeat(t, c) // steady: no new epoch
	out := buf.String()
	if n := strings.Count(out, "group rebalanced"); n != 2 || !strings.Contains(out, "epoch=1 members=1") || !strings.Contains(out, "epoch=2 members=2") {
		t.Fatalf("want two rebalance lines (epochs 1 and 2):\n%s", out)
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }
