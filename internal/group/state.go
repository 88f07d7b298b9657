package group

import (
	"container/heap"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// emptyGroupGrace is how long a group with neither members nor offsets
// lingers before it is deleted: Kafka's offsets.retention.check.interval.ms
// default, the period at which Kafka's cleanup would find it.
const emptyGroupGrace = 10 * time.Minute

// offset is one committed offset.
type offset struct {
	offset      int64
	leaderEpoch int32
	metadata    string
	committed   time.Time
	seq         uint64 // position in the log: of two offsets, the later record wins
}

// group is everything the coordinator keeps for one group id: the
// membership protocol and the committed offsets, which belong to the
// group whatever its protocol.
//
// A group id is either classic or consumer (KIP-848): when consumer is
// set, classic is an empty classic group that nothing uses (kept so the
// classic code never meets a nil).
type group struct {
	id       string
	classic  *classicGroup
	consumer *consumerGroup
	offsets  map[string]map[int32]offset // topic -> partition
	inflight int                         // offset writes not yet done; retention waits for them

	// txn holds pending transactional offsets by producer id, durable
	// but not yet committed or aborted (txnoffsets.go); txnWriting
	// counts transactional writes in flight per partition.
	txn        map[int64]map[topicPartition]offset
	txnWriting map[topicPartition]int

	scheduled time.Time // the deadline pushed on the heap, zero if none
}

func (g *group) numOffsets() int {
	n := 0
	for _, ps := range g.offsets {
		n += len(ps)
	}
	return n
}

func (g *group) setOffset(topic string, partition int32, o offset) {
	ps := g.offsets[topic]
	if ps == nil {
		ps = make(map[int32]offset)
		g.offsets[topic] = ps
	}
	ps[partition] = o
}

func (g *group) deleteOffset(topic string, partition int32) {
	if ps := g.offsets[topic]; ps != nil {
		delete(ps, partition)
		if len(ps) == 0 {
			delete(g.offsets, topic)
		}
	}
}

// state is the coordinator's whole mutable state: a pure state machine
// like classicGroup, driven by the owner goroutine (or a test).
type state struct {
	env    *env
	log    *slog.Logger
	groups map[string]*group
	timers deadlines
	dirty  []*group // groups touched by the current step, to reschedule

	seq        uint64                         // last offset sequence number given out
	txns       map[txnKey]map[*group]struct{} // groups with pending offsets of a transaction
	txnFlights map[txnKey]*txnFlight          // transactional appends in flight
}

func newState(e *env) *state {
	return &state{env: e, log: e.opts.Logger, groups: make(map[string]*group),
		txns: make(map[txnKey]map[*group]struct{}), txnFlights: make(map[txnKey]*txnFlight)}
}

func (st *state) newGroup(id string, now time.Time) *group {
	g := &group{id: id, classic: newClassicGroup(id, st.env, now), offsets: make(map[string]map[int32]offset),
		txn: make(map[int64]map[topicPartition]offset), txnWriting: make(map[topicPartition]int)}
	st.groups[id] = g
	return g
}

func (st *state) touch(g *group) { st.dirty = append(st.dirty, g) }

// handle runs one request; its responses and writes land in fx.
func (st *state) handle(now time.Time, c *call, fx *effects) {
	switch req := c.req.(type) {
	case *kmsg.JoinGroupRequest:
		st.join(now, c, req, fx)
	case *kmsg.SyncGroupRequest:
		if req.Group == "" {
			fx.reply(c, syncError(c, kerr.InvalidGroupID.Code))
		} else if g := st.groups[req.Group]; g == nil || g.consumer != nil {
			// No member of a consumer group uses the classic protocol
			// here, so the member is unknown to it, as Kafka 4 answers.
			fx.reply(c, syncError(c, kerr.UnknownMemberID.Code))
		} else {
			g.classic.sync(now, c, fx)
			st.touch(g)
		}
	case *kmsg.HeartbeatRequest:
		resp := req.ResponseKind().(*kmsg.HeartbeatResponse)
		if req.Group == "" {
			resp.ErrorCode = kerr.InvalidGroupID.Code
		} else if g := st.groups[req.Group]; g == nil || g.consumer != nil {
			resp.ErrorCode = kerr.UnknownMemberID.Code
		} else {
			// A heartbeat only pushes a session deadline later, so the
			// group's scheduled wake-up stays valid (at worst early):
			// no touch, which would cost a pass over the members.
			resp.ErrorCode = g.classic.heartbeat(now, req)
		}
		fx.reply(c, resp)
	case *kmsg.LeaveGroupRequest:
		if req.Group == "" {
			fx.reply(c, errorResponse(req, kerr.InvalidGroupID.Code))
		} else if g := st.groups[req.Group]; g == nil || g.consumer != nil {
			fx.reply(c, errorResponse(req, kerr.UnknownMemberID.Code))
		} else {
			g.classic.leave(now, c, fx)
			st.touch(g)
		}
	case *kmsg.OffsetCommitRequest:
		st.commit(now, c, req, fx)
	case *kmsg.TxnOffsetCommitRequest:
		st.txnCommit(now, c, req, fx)
	case *kmsg.OffsetFetchRequest:
		fx.reply(c, st.fetch(req))
	case *kmsg.OffsetDeleteRequest:
		st.deleteOffsets(c, req, fx)
	case *kmsg.DeleteGroupsRequest:
		st.deleteGroups(c, req, fx)
	case *kmsg.DescribeGroupsRequest:
		fx.reply(c, st.describe(req))
	case *kmsg.ListGroupsRequest:
		fx.reply(c, st.list(req))
	case *kmsg.ConsumerGroupHeartbeatRequest:
		st.consumerHeartbeat(now, c, req, fx)
	case *kmsg.ConsumerGroupDescribeRequest:
		fx.reply(c, st.consumerDescribe(req))
	default:
		fx.reply(c, errorResponse(req, kerr.UnsupportedVersion.Code))
	}
}

func (st *state) join(now time.Time, c *call, req *kmsg.JoinGroupRequest, fx *effects) {
	if req.Group == "" {
		fx.reply(c, joinError(c, req.MemberID, kerr.InvalidGroupID.Code))
		return
	}
	opts := st.env.opts
	if s := ms(req.SessionTimeoutMillis); s < opts.MinSessionTimeout || s > opts.MaxSessionTimeout {
		fx.reply(c, joinError(c, req.MemberID, kerr.InvalidSessionTimeout.Code))
		return
	}
	g := st.groups[req.Group]
	if g == nil {
		if req.MemberID != "" {
			fx.reply(c, joinError(c, req.MemberID, kerr.UnknownMemberID.Code))
			return
		}
		g = st.newGroup(req.Group, now)
	}
	if g.consumer != nil {
		cg := g.consumer
		if cg.busy || cg.g.Members() > 0 {
			// Kafka 4 would let a classic member join a consumer
			// group; this coordinator keeps the protocols apart.
			fx.reply(c, joinError(c, "", kerr.InconsistentGroupProtocol.Code))
			return
		}
		// An empty consumer group becomes classic, as Kafka's
		// bidirectional migration policy allows; its offsets stay.
		st.log.Info("group: converting an empty consumer group to a classic group", "group", g.id)
		recs := toRecords(cg.g.Delete())
		g.consumer = nil
		g.classic = newClassicGroup(g.id, st.env, now)
		fx.write(g.id, recs, nil)
	}
	g.classic.join(now, c, fx)
	st.touch(g)
}

// complete runs a write's continuation once its append is done.
func (st *state) complete(now time.Time, w write, err error, fx *effects) {
	if err != nil {
		st.log.Warn("group: offsets-log append failed", "group", w.group, "records", len(w.recs), "err", err)
	}
	if w.then != nil {
		w.then(now, err, fx)
	}
	if g := st.groups[w.group]; g != nil {
		st.touch(g)
	}
}

// settle reschedules the groups the last step touched and deletes the
// ones left with nothing in them.
func (st *state) settle(now time.Time) {
	dirty := st.dirty
	st.dirty = nil
	for _, g := range dirty {
		if st.groups[g.id] != g {
			continue
		}
		if cg := g.consumer; cg != nil {
			n := cg.g.Members()
			switch {
			case n > 0:
				cg.emptySince = time.Time{}
			case cg.emptySince.IsZero():
				cg.emptySince = now
			}
			if n == 0 && len(cg.durable) == 0 && !cg.busy && g.numOffsets() == 0 && g.inflight == 0 && len(g.txn) == 0 {
				delete(st.groups, g.id) // never durable: a failed first join
				continue
			}
			st.schedule(g, now)
			continue
		}
		c := g.classic
		if c.state == stateEmpty && c.generation == 0 && c.protocolType == "" &&
			len(c.members) == 0 && len(c.pending) == 0 && g.numOffsets() == 0 && g.inflight == 0 && len(g.txn) == 0 {
			// Never written to the log (a failed first join, or a
			// commit that stored nothing): forget it quietly.
			delete(st.groups, g.id)
			continue
		}
		st.schedule(g, now)
	}
}

func (st *state) schedule(g *group, now time.Time) {
	var d time.Time
	switch {
	case g.consumer == nil:
		d = g.classic.deadline()
	case !g.consumer.busy: // a busy group is rescheduled when its append is done
		d = g.consumer.g.Deadline()
	}
	if r := st.retentionDeadline(g); !r.IsZero() && (d.IsZero() || r.Before(d)) {
		d = r
	}
	if d.Equal(g.scheduled) {
		return
	}
	g.scheduled = d
	if !d.IsZero() {
		heap.Push(&st.timers, deadline{at: d, g: g})
	}
	// Stale entries are skipped when popped; rebuild once they dominate
	// so the heap stays bounded by the number of groups.
	if len(st.timers) > 2*len(st.groups)+64 {
		st.timers = st.timers[:0]
		for _, g := range st.groups {
			if !g.scheduled.IsZero() {
				st.timers = append(st.timers, deadline{at: g.scheduled, g: g})
			}
		}
		heap.Init(&st.timers)
	}
}

// next is the earliest scheduled deadline, zero if none.
func (st *state) next() time.Time {
	for len(st.timers) > 0 {
		top := st.timers[0]
		if st.groups[top.g.id] == top.g && top.g.scheduled.Equal(top.at) {
			return top.at
		}
		heap.Pop(&st.timers)
	}
	return time.Time{}
}

// tick runs every group whose deadline is due.
func (st *state) tick(now time.Time, fx *effects) {
	for len(st.timers) > 0 && !now.Before(st.timers[0].at) {
		e := heap.Pop(&st.timers).(deadline)
		g := e.g
		if st.groups[g.id] != g || !g.scheduled.Equal(e.at) {
			continue
		}
		g.scheduled = time.Time{}
		if g.consumer != nil {
			st.consumerTick(now, g, fx)
		} else {
			g.classic.tick(now, fx)
		}
		st.expire(now, g, fx)
		st.touch(g)
	}
}

// retentionDeadline is when some of g's offsets expire, or g itself is
// due for deletion, as Kafka's offsetExpirationCondition decides:
//   - an Empty group with a protocol type: all offsets, retention after
//     the group became Empty;
//   - a group without one (offsets committed outside group management):
//     each offset, retention after its commit;
//   - a Stable "consumer" group: offsets of topics nobody subscribes to,
//     retention after their commit.
func (st *state) retentionDeadline(g *group) time.Time {
	if g.inflight > 0 {
		return time.Time{}
	}
	if cg := g.consumer; cg != nil {
		// Kafka's consumer groups expire each offset of a topic no
		// member subscribes to, retention after its commit; the group
		// goes once it has neither members nor offsets.
		if cg.busy {
			return time.Time{}
		}
		if g.numOffsets() == 0 {
			if cg.g.Members() > 0 || cg.emptySince.IsZero() || len(g.txn) > 0 {
				return time.Time{}
			}
			return cg.emptySince.Add(emptyGroupGrace)
		}
		if t := oldestCommit(g, cg.subscribed(g)); !t.IsZero() {
			return t.Add(st.env.opts.OffsetsRetention)
		}
		return time.Time{}
	}
	c := g.classic
	retention := st.env.opts.OffsetsRetention
	if c.state == stateEmpty && g.numOffsets() == 0 {
		if len(c.pending) > 0 {
			return time.Time{} // the pending members' expiry wakes it
		}
		if len(g.txn) > 0 {
			return time.Time{} // CompleteTxn wakes it
		}
		return c.stateSince.Add(emptyGroupGrace)
	}
	// Every deadline returned must be one expire acts on, or the owner
	// would wake up again at once.
	switch {
	case c.state == stateEmpty && c.protocolType != "":
		if !oldestCommit(g, nil).IsZero() { // some offset without pending transactional ones
			return c.stateSince.Add(retention)
		}
	case c.protocolType == "":
		if t := oldestCommit(g, nil); !t.IsZero() {
			return t.Add(retention)
		}
	case c.state == stateStable:
		if subs, ok := c.subscribedTopics(); ok {
			if t := oldestCommit(g, subs); !t.IsZero() {
				return t.Add(retention)
			}
		}
	}
	return time.Time{}
}

// oldestCommit is the earliest commit time among g's offsets of topics
// not in skip, leaving out partitions with pending transactional offsets,
// which do not expire (zero if none is left).
func oldestCommit(g *group, skip map[string]struct{}) time.Time {
	var t time.Time
	for topic, ps := range g.offsets {
		if _, ok := skip[topic]; ok {
			continue
		}
		for p, o := range ps {
			if len(g.txn) > 0 && g.pendingTxn(topic, p) {
				continue
			}
			if t.IsZero() || o.committed.Before(t) {
				t = o.committed
			}
		}
	}
	return t
}

// expire drops g's expired offsets, and g itself once it is Empty with
// no offsets left, writing the tombstones.
func (st *state) expire(now time.Time, g *group, fx *effects) {
	if g.inflight > 0 {
		return
	}
	if g.consumer != nil {
		st.expireConsumer(now, g, fx)
		return
	}
	c := g.classic
	retention := st.env.opts.OffsetsRetention
	var recs []Record
	drop := func(topic string, p int32) {
		recs = append(recs, offsetTombstone(g.id, topic, p))
		g.deleteOffset(topic, p)
	}
	switch {
	case c.state == stateEmpty && c.protocolType != "":
		if !now.Before(c.stateSince.Add(retention)) {
			for _, tp := range sortedOffsets(g) {
				if !g.pendingTxn(tp.topic, tp.partition) {
					drop(tp.topic, tp.partition)
				}
			}
		}
	case c.protocolType == "" || c.state == stateStable:
		var subs map[string]struct{}
		if c.protocolType != "" {
			var ok bool
			if subs, ok = c.subscribedTopics(); !ok {
				break
			}
		}
		for _, tp := range sortedOffsets(g) {
			if _, ok := subs[tp.topic]; ok || g.pendingTxn(tp.topic, tp.partition) {
				continue
			}
			if o := g.offsets[tp.topic][tp.partition]; !now.Before(o.committed.Add(retention)) {
				drop(tp.topic, tp.partition)
			}
		}
	}
	deleteGroup := c.state == stateEmpty && len(c.pending) == 0 && g.numOffsets() == 0 && len(g.txn) == 0 &&
		(len(recs) > 0 || !now.Before(c.stateSince.Add(emptyGroupGrace)))
	if deleteGroup {
		recs = append(recs, groupTombstone(g.id))
		c.setState(stateDead, now)
		delete(st.groups, g.id)
	}
	if len(recs) > 0 {
		st.log.Info("group: offsets expired", "group", g.id, "tombstones", len(recs), "deleted", deleteGroup)
		// Applied at once: should the tombstones fail to land, the
		// offsets come back at the next load and expire again.
		fx.write(g.id, recs, nil)
	}
}

type topicPartition struct {
	topic     string
	partition int32
}

func sortedOffsets(g *group) []topicPartition {
	var out []topicPartition
	for t, ps := range g.offsets {
		for p := range ps {
			out = append(out, topicPartition{t, p})
		}
	}
	slices.SortFunc(out, func(a, b topicPartition) int {
		if c := strings.Compare(a.topic, b.topic); c != 0 {
			return c
		}
		return int(a.partition) - int(b.partition)
	})
	return out
}

// topicsDeleted forgets and tombstones every offset of the named topics.
func (st *state) topicsDeleted(now time.Time, names []string, fx *effects) {
	gone := make(map[string]struct{}, len(names))
	for _, n := range names {
		gone[n] = struct{}{}
	}
	isGone := func(t string) bool { _, ok := gone[t]; return ok }
	for _, g := range st.sortedGroups() {
		var recs []Record
		// Pending transactional offsets of the topics go too, as
		// Kafka's onTopicsDeleted: one tombstone per partition.
		for _, tp := range append(sortedOffsets(g), g.pendingOnly(isGone)...) {
			if isGone(tp.topic) {
				recs = append(recs, offsetTombstone(g.id, tp.topic, tp.partition))
				st.forgetOffset(g, tp.topic, tp.partition)
			}
		}
		if len(recs) > 0 {
			fx.write(g.id, recs, nil)
			st.touch(g)
		}
	}
	st.topicsChanged(now, fx)
}

func (st *state) sortedGroups() []*group {
	out := make([]*group, 0, len(st.groups))
	for _, g := range st.groups {
		out = append(out, g)
	}
	slices.SortFunc(out, func(a, b *group) int { return strings.Compare(a.id, b.id) })
	return out
}

// abort answers every parked call with code: the coordinator is closing.
func (st *state) abort(code int16, fx *effects) {
	for _, g := range st.groups {
		g.classic.abort(code, fx)
	}
}

// deadline is one entry of the timer heap.
type deadline struct {
	at time.Time
	g  *group
}

type deadlines []deadline

func (h deadlines) Len() int           { return len(h) }
func (h deadlines) Less(i, j int) bool { return h[i].at.Before(h[j].at) }
func (h deadlines) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *deadlines) Push(x any)        { *h = append(*h, x.(deadline)) }
func (h *deadlines) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}
