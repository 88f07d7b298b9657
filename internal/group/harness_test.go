package group

import (
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// fakeTopics is a fixed set of topics.
type fakeTopics map[string]TopicInfo

func (f fakeTopics) Topic(name string) (TopicInfo, bool) { t, ok := f[name]; return t, ok }
func (f fakeTopics) TopicByID(id [16]byte) (TopicInfo, bool) {
	for _, t := range f {
		if t.ID == id {
			return t, true
		}
	}
	return TopicInfo{}, false
}

func (f fakeTopics) List() []TopicInfo {
	out := make([]TopicInfo, 0, len(f))
	for _, t := range f {
		out = append(out, t)
	}
	return out
}

var testTopics = fakeTopics{
	"orders":   {Name: "orders", ID: [16]byte{1}, Partitions: 3},
	"payments": {Name: "payments", ID: [16]byte{2}, Partitions: 1},
}

// harness drives the pure state machine with a fake clock: no goroutine,
// no sleeps. Writes stay pending until flush.
type harness struct {
	t       *testing.T
	st      *state
	now     time.Time
	answers map[*call]kmsg.Response
	pending []write
	written [][]Record
	events  []event
	ids     int
}

func newHarness(t *testing.T, mod func(*Options)) *harness {
	t.Helper()
	opts := Options{Log: nopLog{}, Topics: testTopics, InitialRebalanceDelay: -1}
	if mod != nil {
		mod(&opts)
	}
	if err := opts.Validate(); err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, now: time.Unix(1_700_000_000, 0), answers: make(map[*call]kmsg.Response)}
	e := &env{opts: opts.withDefaults()}
	e.newID = func() string { h.ids++; return fmt.Sprint(h.ids) }
	h.st = newState(e)
	return h
}

type nopLog struct{}

func (nopLog) Append(int32, []Record, func(error)) {}

func (h *harness) run(fx *effects) {
	for _, r := range fx.replies {
		if _, dup := h.answers[r.to]; dup {
			h.t.Fatalf("request %T answered twice", r.to.req)
		}
		h.answers[r.to] = r.resp
	}
	for _, w := range fx.writes {
		h.pending = append(h.pending, w)
		h.written = append(h.written, w.recs)
	}
	h.events = append(h.events, fx.events...)
	h.st.settle(h.now)
}

// do hands req to the state machine from client id.
func (h *harness) do(client string, req kmsg.Request) *call {
	h.t.Helper()
	c := newCall(req, Client{ID: client, Host: "/10.0.0.1"})
	fx := &effects{}
	h.st.handle(h.now, c, fx)
	h.run(fx)
	return c
}

// flush completes every pending write with err, including writes the
// continuations issue.
func (h *harness) flush(err error) {
	for len(h.pending) > 0 {
		w := h.pending[0]
		h.pending = h.pending[1:]
		fx := &effects{}
		h.st.complete(h.now, w, err, fx)
		h.run(fx)
	}
}

// advance moves the clock and fires every deadline due, as the owner
// goroutine's timer would.
func (h *harness) advance(d time.Duration) {
	h.now = h.now.Add(d)
	fx := &effects{}
	h.st.tick(h.now, fx)
	h.run(fx)
	// Whatever was due has been dealt with: a deadline still due would
	// spin the owner goroutine.
	if next := h.st.next(); !next.IsZero() && !next.After(h.now) {
		h.t.Fatalf("deadline %v still due after a tick at %v", next, h.now)
	}
}

func (h *harness) answered(c *call) bool { _, ok := h.answers[c]; return ok }

func (h *harness) joinResp(c *call) *kmsg.JoinGroupResponse {
	h.t.Helper()
	r, ok := h.answers[c]
	if !ok {
		h.t.Fatalf("JoinGroup not answered")
	}
	return r.(*kmsg.JoinGroupResponse)
}

func (h *harness) syncResp(c *call) *kmsg.SyncGroupResponse {
	h.t.Helper()
	r, ok := h.answers[c]
	if !ok {
		h.t.Fatalf("SyncGroup not answered")
	}
	return r.(*kmsg.SyncGroupResponse)
}

func (h *harness) group(id string) *classicGroup {
	h.t.Helper()
	g := h.st.groups[id]
	if g == nil {
		h.t.Fatalf("group %q does not exist", id)
	}
	return g.classic
}

func (h *harness) wantState(id string, s groupState, gen int32) {
	h.t.Helper()
	g := h.group(id)
	if g.state != s || g.generation != gen {
		h.t.Fatalf("group %q: state %v generation %d, want %v %d", id, g.state, g.generation, s, gen)
	}
}

type joinOpt func(*kmsg.JoinGroupRequest)

func withVersion(v int16) joinOpt { return func(r *kmsg.JoinGroupRequest) { r.Version = v } }
func withInstance(id string) joinOpt {
	return func(r *kmsg.JoinGroupRequest) { r.InstanceID = kmsg.StringPtr(id) }
}
func withProtocols(names ...string) joinOpt {
	return func(r *kmsg.JoinGroupRequest) {
		r.Protocols = nil
		for _, n := range names {
			r.Protocols = append(r.Protocols, kmsg.JoinGroupRequestProtocol{Name: n, Metadata: []byte(n + "-meta")})
		}
	}
}
func withProtocolType(t string) joinOpt { return func(r *kmsg.JoinGroupRequest) { r.ProtocolType = t } }
func withTimeouts(session, rebalance time.Duration) joinOpt {
	return func(r *kmsg.JoinGroupRequest) {
		r.SessionTimeoutMillis = int32(session / time.Millisecond)
		r.RebalanceTimeoutMillis = int32(rebalance / time.Millisecond)
	}
}

func joinReq(group, memberID string, opts ...joinOpt) *kmsg.JoinGroupRequest {
	r := kmsg.NewPtrJoinGroupRequest()
	r.Version = 3 // one-step join unless a test asks for v4+
	r.Group, r.MemberID = group, memberID
	r.SessionTimeoutMillis, r.RebalanceTimeoutMillis = 10_000, 30_000
	r.ProtocolType = "consumer"
	withProtocols("range")(r)
	for _, o := range opts {
		o(r)
	}
	return r
}

func syncReq(group, memberID string, gen int32, assign map[string]string) *kmsg.SyncGroupRequest {
	r := kmsg.NewPtrSyncGroupRequest()
	r.Version = 5
	r.Group, r.MemberID, r.Generation = group, memberID, gen
	for m, a := range assign {
		r.GroupAssignment = append(r.GroupAssignment, kmsg.SyncGroupRequestGroupAssignment{MemberID: m, MemberAssignment: []byte(a)})
	}
	return r
}

func hbReq(group, memberID string, gen int32) *kmsg.HeartbeatRequest {
	r := kmsg.NewPtrHeartbeatRequest()
	r.Version = 4
	r.Group, r.MemberID, r.Generation = group, memberID, gen
	return r
}

func (h *harness) heartbeat(group, memberID string, gen int32) int16 {
	h.t.Helper()
	c := h.do("c", hbReq(group, memberID, gen))
	return h.answers[c].(*kmsg.HeartbeatResponse).ErrorCode
}

// stableGroup joins members one by one (one-step joins), has the first
// (the leader) sync an assignment of "a-<id>" for everyone, flushes the
// group record and returns the member ids.
func (h *harness) stableGroup(group string, n int, opts ...joinOpt) []string {
	h.t.Helper()
	var ids []string
	var joins []*call
	for i := range n {
		// Later members join a group that is already rebalancing or
		// stable; every existing member must rejoin to complete.
		c := h.do(fmt.Sprintf("client%d", i), joinReq(group, "", opts...))
		joins = append(joins, c)
		for j, id := range ids {
			if h.answered(joins[j]) {
				joins[j] = h.do("c", joinReq(group, id, opts...))
			}
		}
		if !h.answered(c) {
			continue
		}
		ids = append(ids, h.joinResp(c).MemberID)
	}
	// After the last join every member has an answer for one generation.
	ids = ids[:0]
	for _, c := range joins {
		ids = append(ids, h.joinResp(c).MemberID)
	}
	g := h.group(group)
	leader, gen := g.leader, g.generation
	assign := map[string]string{}
	for _, id := range ids {
		assign[id] = "a-" + id
	}
	var syncs []*call
	for _, id := range ids {
		if id == leader {
			syncs = append(syncs, h.do("c", syncReq(group, id, gen, assign)))
		} else {
			syncs = append(syncs, h.do("c", syncReq(group, id, gen, nil)))
		}
	}
	h.flush(nil)
	for _, c := range syncs {
		if code := h.syncResp(c).ErrorCode; code != 0 {
			h.t.Fatalf("sync: %v", kerr.ErrorForCode(code))
		}
	}
	h.wantState(group, stateStable, gen)
	return ids
}

func wantCode(t *testing.T, what string, got int16, want *kerr.Error) {
	t.Helper()
	var w int16
	if want != nil {
		w = want.Code
	}
	if got != w {
		t.Fatalf("%s: got %v, want %v", what, kerr.ErrorForCode(got), kerr.ErrorForCode(w))
	}
}
