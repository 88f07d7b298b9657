package consumer

import (
	"fmt"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// fakeTopics is the broker's topic table for tests; IDs are derived from a
// counter so runs are deterministic.
type fakeTopics struct {
	byName map[string]TopicInfo
	next   byte
	lists  int
}

func newTopics() *fakeTopics { return &fakeTopics{byName: map[string]TopicInfo{}} }

func (f *fakeTopics) add(name string, parts int32) TopicInfo {
	f.next++
	t := TopicInfo{Name: name, Partitions: parts}
	t.ID[0], t.ID[15] = 0xAB, f.next
	f.byName[name] = t
	return t
}

func (f *fakeTopics) grow(name string, parts int32) {
	t := f.byName[name]
	t.Partitions = parts
	f.byName[name] = t
}

func (f *fakeTopics) Topic(name string) (TopicInfo, bool) {
	t, ok := f.byName[name]
	return t, ok
}

func (f *fakeTopics) TopicByID(id [16]byte) (TopicInfo, bool) {
	for _, t := range f.byName {
		if t.ID == id {
			return t, true
		}
	}
	return TopicInfo{}, false
}

func (f *fakeTopics) List() []TopicInfo {
	f.lists++
	var out []TopicInfo
	for _, t := range f.byName {
		out = append(out, t)
	}
	slices.SortFunc(out, func(a, b TopicInfo) int { return compareStr(a.Name, b.Name) })
	return out
}

func compareStr(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// client simulates a consumer: it owns exactly what the last response
// carrying an assignment gave it, revoking at once.
type client struct {
	id       string
	inst     *string
	epoch    int32
	owned    assignment
	topics   []string
	regex    *string
	assignor *string
	gone     bool // the server no longer knows this member
}

type harness struct {
	t      testing.TB
	g      *Group
	topics *fakeTopics
	now    time.Time
	log    []Record
}

func newHarness(t testing.TB, opts Options) *harness {
	if err := opts.Validate(); err != nil {
		t.Fatal(err)
	}
	return &harness{t: t, g: New("g1", opts), topics: newTopics(), now: time.Unix(1_700_000_000, 0)}
}

func (h *harness) persist(recs []Record) { h.log = append(h.log, recs...) }

func (h *harness) request(c *client, full bool) *kmsg.ConsumerGroupHeartbeatRequest {
	req := kmsg.NewPtrConsumerGroupHeartbeatRequest()
	req.Version = 1
	req.Group = h.g.ID()
	req.MemberID = c.id
	req.MemberEpoch = c.epoch
	if full || c.epoch == 0 {
		req.InstanceID = c.inst
		req.RebalanceTimeoutMillis = 60_000
		req.ServerAssignor = c.assignor
		if c.regex != nil {
			req.SubscribedTopicRegex = c.regex
		} else {
			req.SubscribedTopicNames = slices.Clone(c.topics)
			if req.SubscribedTopicNames == nil {
				req.SubscribedTopicNames = []string{}
			}
		}
		req.Topics = []kmsg.ConsumerGroupHeartbeatRequestTopic{}
		if c.epoch != 0 {
			for _, id := range c.owned.topicIDs() {
				req.Topics = append(req.Topics, kmsg.ConsumerGroupHeartbeatRequestTopic{TopicID: id, Partitions: slices.Clone(c.owned[id])})
			}
		}
	}
	return req
}

// beat sends one heartbeat (full or keepalive) and applies the response to
// the client the way franz-go does.
func (h *harness) beat(c *client, full bool) *kmsg.ConsumerGroupHeartbeatResponse {
	h.t.Helper()
	req := h.request(c, full)
	resp, recs := h.g.Heartbeat(h.now, h.topics, req)
	h.persist(recs)
	h.apply(c, resp)
	h.check()
	return resp
}

func (h *harness) apply(c *client, resp *kmsg.ConsumerGroupHeartbeatResponse) {
	if resp.ErrorCode != 0 {
		if resp.ErrorCode == codeUnknownMemberID {
			c.gone = true
		}
		c.owned = assignment{}
		c.epoch = 0
		return
	}
	if resp.MemberID != nil {
		c.id = *resp.MemberID
	}
	c.epoch = resp.MemberEpoch
	c.gone = false
	if resp.Assignment != nil {
		c.owned = assignment{}
		for _, t := range resp.Assignment.Topics {
			for _, p := range t.Partitions {
				c.owned.add(t.TopicID, p)
			}
		}
	}
}

func (h *harness) leave(c *client, epoch int32) *kmsg.ConsumerGroupHeartbeatResponse {
	h.t.Helper()
	req := kmsg.NewPtrConsumerGroupHeartbeatRequest()
	req.Version = 1
	req.Group = h.g.ID()
	req.MemberID = c.id
	req.MemberEpoch = epoch
	req.InstanceID = c.inst
	resp, recs := h.g.Heartbeat(h.now, h.topics, req)
	h.persist(recs)
	if resp.ErrorCode == 0 {
		c.owned, c.epoch, c.gone = assignment{}, 0, true
	}
	h.check()
	return resp
}

func (h *harness) tick() {
	h.persist(h.g.Tick(h.now, h.topics))
	h.check()
}

func (h *harness) metadataChanged() {
	h.persist(h.g.MetadataChanged(h.now, h.topics))
	h.check()
}

// check asserts the group's invariants: the owner index matches the
// members' assigned and revoking sets, no partition is held by two members
// and no two targets overlap.
func (h *harness) check() {
	h.t.Helper()
	if err := h.g.check(); err != nil {
		h.t.Fatal(err)
	}
}

// checkClients asserts that no partition is owned by two clients the
// server still knows.
func checkClients(t testing.TB, g *Group, clients []*client) {
	t.Helper()
	seen := map[tp]string{}
	for _, c := range clients {
		if c.gone || g.members[c.id] == nil || c.epoch == 0 {
			continue
		}
		for id, ps := range c.owned {
			for _, p := range ps {
				if o, dup := seen[tp{id, p}]; dup {
					t.Fatalf("partition %x/%d owned by clients %s and %s", id[15], p, o, c.id)
				}
				seen[tp{id, p}] = c.id
			}
		}
	}
}

func (g *Group) check() error {
	g.settle()
	want := map[tp]string{}
	for _, id := range g.memberIDs() {
		m := g.members[id]
		if m.epoch > g.targetEpoch {
			return fmt.Errorf("member %s epoch %d > target epoch %d", id, m.epoch, g.targetEpoch)
		}
		for _, a := range []assignment{m.assigned, m.revoking} {
			for tid, ps := range a {
				if len(ps) == 0 || !slices.IsSorted(ps) {
					return fmt.Errorf("member %s bad partitions %v", id, ps)
				}
				for _, p := range ps {
					if o, dup := want[tp{tid, p}]; dup {
						return fmt.Errorf("partition %x/%d held by %s and %s", tid[15], p, o, id)
					}
					want[tp{tid, p}] = id
				}
			}
		}
		if (m.state == stateUnrevoked) != (len(m.revoking) > 0) {
			return fmt.Errorf("member %s state %d with %d revoking", id, m.state, len(m.revoking))
		}
	}
	if !reflect.DeepEqual(want, g.owners) {
		return fmt.Errorf("owner index %v, members say %v", g.owners, want)
	}
	targets := map[tp]string{}
	for id, a := range g.target {
		if g.members[id] == nil {
			return fmt.Errorf("target for unknown member %s", id)
		}
		for tid, ps := range a {
			for _, p := range ps {
				if o, dup := targets[tp{tid, p}]; dup {
					return fmt.Errorf("partition %x/%d targeted to %s and %s", tid[15], p, o, id)
				}
				targets[tp{tid, p}] = id
			}
		}
	}
	if g.targetEpoch > g.epoch {
		return fmt.Errorf("target epoch %d > group epoch %d", g.targetEpoch, g.epoch)
	}
	return nil
}

// snapshot is the durable state of a group, for comparing a group with its
// replay.
type snapshot struct {
	Epoch, TargetEpoch int32
	SubMeta            map[string]TopicInfo
	Members            map[string]memberSnapshot
	Target             map[string]assignment
}

type memberSnapshot struct {
	Inst, Rack         string
	Timeout            time.Duration
	Topics             []string
	Regex, Assignor    string
	Epoch, Prev        int32
	State              memberState
	Assigned, Revoking assignment
}

func (g *Group) snapshot() snapshot {
	g.settle()
	s := snapshot{Epoch: g.epoch, TargetEpoch: g.targetEpoch, SubMeta: g.subMeta, Members: map[string]memberSnapshot{}, Target: map[string]assignment{}}
	for id, m := range g.members {
		ms := memberSnapshot{Timeout: m.rebalanceTimeout, Topics: m.topics, Regex: m.regex, Assignor: m.assignor,
			Epoch: m.epoch, Prev: m.prevEpoch, State: m.state, Assigned: m.assigned, Revoking: m.revoking}
		if m.instanceID != nil {
			ms.Inst = "i:" + *m.instanceID
		}
		if m.rackID != nil {
			ms.Rack = "r:" + *m.rackID
		}
		if len(ms.Topics) == 0 {
			ms.Topics = nil
		}
		s.Members[id] = ms
	}
	for id, a := range g.target {
		if len(a) > 0 {
			s.Target[id] = a
		}
	}
	return s
}

// replay rebuilds a group from recs.
func replay(t testing.TB, id string, opts Options, recs []Record) *Group {
	t.Helper()
	g := New(id, opts)
	for i, r := range recs {
		if err := g.Replay(r); err != nil {
			t.Fatalf("replay record %d: %v", i, err)
		}
	}
	return g
}

// compact keeps the last record of each key, in the order of those last
// records, as a compacted topic does (tombstones kept).
func compact(recs []Record) []Record {
	last := map[string]int{}
	for i, r := range recs {
		last[string(r.Key)] = i
	}
	var out []Record
	for i, r := range recs {
		if last[string(r.Key)] == i {
			out = append(out, r)
		}
	}
	return out
}

// checkReplay asserts that both the full log and its compaction rebuild a
// group equal to h.g.
func (h *harness) checkReplay() {
	h.t.Helper()
	want := h.g.snapshot()
	for name, recs := range map[string][]Record{"full": h.log, "compacted": compact(h.log)} {
		r := replay(h.t, h.g.ID(), h.g.opts, recs)
		if got := r.snapshot(); !reflect.DeepEqual(got, want) {
			h.t.Fatalf("%s replay differs:\n got %+v\nwant %+v", name, got, want)
		}
		if err := r.check(); err != nil {
			h.t.Fatalf("%s replay: %v", name, err)
		}
		if got, want := r.Describe(h.topics, false), h.g.Describe(h.topics, false); !reflect.DeepEqual(got, want) {
			h.t.Fatalf("%s replay describes differently:\n got %+v\nwant %+v", name, got, want)
		}
	}
}

func assignmentOf(topics *fakeTopics, spec map[string][]int32) assignment {
	a := assignment{}
	for name, ps := range spec {
		for _, p := range ps {
			a.add(topics.byName[name].ID, p)
		}
	}
	return a
}

func strp(s string) *string { return &s }
