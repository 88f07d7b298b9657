package group

import (
	"cmp"
	"slices"
	"time"

	"github.com/sluice-io/sluice/internal/group/consumer"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// consumerGroup wraps one consumer-protocol (KIP-848) group, the pure
// state machine of internal/group/consumer, with what the coordinator
// needs around it:
//
//   - durable, the latest durable record of each of the group's keys: the
//     group's image in the offsets log, as a compacted log would hold it.
//     consumer.Group has no rollback: when an append fails the group is
//     rebuilt from this image (New + Replay), which is exactly what a
//     restart would load. It is bounded by the group (one group record and
//     three per member).
//   - busy and queue: at most one append of the group's records is in
//     flight. Heartbeats arriving meanwhile wait in queue, so a failed
//     append never leaves later, already acknowledged, changes built on
//     state the log does not have. queue is empty whenever busy is false.
type consumerGroup struct {
	g       *consumer.Group
	durable map[string]durableRecord
	seq     uint64

	busy     bool
	queue    []*call
	needMeta bool // TopicsChanged arrived while busy; run it once idle

	// emptySince is when the group last had no members (zero while it
	// has some): the base of its deletion once it also has no offsets.
	// Not durable: a loaded group counts from the load.
	emptySince time.Time

	// clients remembers each member's client id and address for
	// ConsumerGroupDescribe; the heartbeat carries neither to the state
	// machine. Not durable, bounded by the members.
	clients map[string]Client

	// loggedEpoch is the group epoch of the last "group rebalanced" line.
	loggedEpoch int32
}

type durableRecord struct {
	rec Record
	seq uint64
}

func newConsumerGroup(id string, opts consumer.Options, now time.Time) *consumerGroup {
	return &consumerGroup{
		g:          consumer.New(id, opts),
		durable:    make(map[string]durableRecord),
		emptySince: now,
		clients:    make(map[string]Client),
	}
}

// remember records recs as durable, in order; a tombstone forgets its key.
func (cg *consumerGroup) remember(recs []Record) {
	for _, r := range recs {
		if _, ok := consumer.RecordGroup(r.Key); !ok {
			continue // the classic tombstone of a converted group
		}
		if r.Value == nil {
			delete(cg.durable, string(r.Key))
			continue
		}
		cg.seq++
		cg.durable[string(r.Key)] = durableRecord{r, cg.seq}
	}
}

// rebuild discards the in-memory group and replays its durable image.
// The records were written by this process, so Replay failing means our
// own state is broken; the group then starts over empty.
func (cg *consumerGroup) rebuild(st *state) {
	id := cg.g.ID()
	recs := make([]durableRecord, 0, len(cg.durable))
	for _, r := range cg.durable {
		recs = append(recs, r)
	}
	slices.SortFunc(recs, func(a, b durableRecord) int { return cmp.Compare(a.seq, b.seq) })
	cg.g = consumer.New(id, st.env.opts.Consumer)
	for _, r := range recs {
		if err := cg.g.Replay(asConsumer(r.rec)); err != nil {
			st.log.Error("group: rebuilding a consumer group from its own records failed", "group", id, "err", err)
			cg.g = consumer.New(id, st.env.opts.Consumer)
			clear(cg.durable)
			return
		}
	}
	cg.loggedEpoch = cg.g.Epoch()
}

// ctopics is the broker's topics as the consumer package sees them.
func (e *env) ctopics() consumer.Topics { return consumerTopics{e.opts.Topics} }

// isEmpty reports whether a classic group has no members, not even
// pending ones: Kafka then lets the other protocol take the group id.
func (g *classicGroup) isEmpty() bool {
	return (g.state == stateEmpty || g.state == stateDead) && len(g.members) == 0 && len(g.pending) == 0
}

func toRecords(recs []consumer.Record) []Record {
	out := make([]Record, len(recs))
	for i, r := range recs {
		out[i] = Record{Key: r.Key, Value: r.Value}
	}
	return out
}

// consumerHeartbeat handles a ConsumerGroupHeartbeat. A group id belongs
// to one protocol: as Kafka's getOrMaybeCreateConsumerGroup, a joining
// member (epoch 0) creates the group or converts an empty classic group;
// any other classic group is GROUP_ID_NOT_FOUND.
func (st *state) consumerHeartbeat(now time.Time, c *call, req *kmsg.ConsumerGroupHeartbeatRequest, fx *effects) {
	fail := func(code int16, msg string) {
		resp := req.ResponseKind().(*kmsg.ConsumerGroupHeartbeatResponse)
		resp.ErrorCode, resp.ErrorMessage = code, kmsg.StringPtr(msg)
		fx.reply(c, resp)
	}
	if req.Group == "" {
		fail(kerr.InvalidRequest.Code, "GroupId can't be empty.")
		return
	}
	join := req.MemberEpoch == 0
	g := st.groups[req.Group]
	var convert []Record
	switch {
	case g == nil && !join:
		fail(kerr.GroupIDNotFound.Code, "Consumer group "+req.Group+" not found.")
		return
	case g == nil:
		g = st.newGroup(req.Group, now)
		g.consumer = newConsumerGroup(g.id, st.env.opts.Consumer, now)
	case g.consumer != nil:
	case join && g.classic.isEmpty():
		// Kafka deletes the empty classic group (its metadata, not its
		// offsets) and starts a consumer group in its place.
		st.log.Info("group: converting an empty classic group to a consumer group", "group", g.id)
		g.classic = newClassicGroup(g.id, st.env, now)
		g.consumer = newConsumerGroup(g.id, st.env.opts.Consumer, now)
		convert = []Record{groupTombstone(g.id)}
	default:
		fail(kerr.GroupIDNotFound.Code, "Group "+req.Group+" is not a consumer group.")
		return
	}
	st.touch(g)
	cg := g.consumer
	if cg.busy {
		if len(cg.queue) >= st.env.opts.MaxQueuedRequests {
			fail(kerr.CoordinatorNotAvailable.Code, "too many heartbeats queued for the group")
			return
		}
		cg.queue = append(cg.queue, c)
		return
	}
	st.runHeartbeat(now, g, c, req, convert, fx)
}

func (st *state) runHeartbeat(now time.Time, g *group, c *call, req *kmsg.ConsumerGroupHeartbeatRequest, pre []Record, fx *effects) {
	cg := g.consumer
	resp, crecs := cg.g.Heartbeat(now, st.env.ctopics(), req)
	recs := append(pre, toRecords(crecs)...)
	if len(recs) == 0 {
		st.noteClient(cg, c, resp)
		fx.reply(c, resp)
		return
	}
	st.consumerWrite(g, recs, fx, func(err error, fx *effects) {
		if err != nil {
			fx.reply(c, errorResponse(req, kerr.CoordinatorNotAvailable.Code))
			return
		}
		st.noteClient(cg, c, resp)
		fx.reply(c, resp)
	})
}

func (st *state) noteClient(cg *consumerGroup, c *call, resp *kmsg.ConsumerGroupHeartbeatResponse) {
	if resp.ErrorCode != 0 || resp.MemberID == nil {
		return
	}
	if resp.MemberEpoch < 0 {
		delete(cg.clients, *resp.MemberID)
		return
	}
	cg.clients[*resp.MemberID] = c.client
	if len(cg.clients) > 2*cg.g.Members()+16 {
		keep := make(map[string]Client, cg.g.Members())
		for _, m := range cg.g.Describe(st.env.ctopics(), false).Members {
			if cl, ok := cg.clients[m.MemberID]; ok {
				keep[m.MemberID] = cl
			}
		}
		cg.clients = keep
	}
}

// consumerWrite appends recs, the records of one change of g's consumer
// group, with g busy until they are durable or failed. On failure the
// group is rebuilt from its durable image. then runs after either, and
// the requests that queued meanwhile run after it.
func (st *state) consumerWrite(g *group, recs []Record, fx *effects, then func(err error, fx *effects)) {
	cg := g.consumer
	cg.busy = true
	fx.write(g.id, recs, func(now time.Time, err error, fx *effects) {
		cg.busy = false
		if err != nil {
			st.log.Warn("group: consumer group change not durable; rebuilding the group from its records", "group", g.id, "err", err)
			cg.rebuild(st)
		} else {
			cg.remember(recs)
			if e := cg.g.Epoch(); e != cg.loggedEpoch {
				// A new group epoch is a new target assignment: the
				// KIP-848 counterpart of a classic rebalance.
				cg.loggedEpoch = e
				d := cg.g.Describe(st.env.ctopics(), false)
				fx.event("group rebalanced", "group", g.id, "epoch", e, "members", len(d.Members), "assignor", d.AssignorName)
			}
		}
		if then != nil {
			then(err, fx)
		}
		st.touch(g)
		st.drain(now, g, fx)
	})
}

// drain runs what waited for g's consumer group to be idle, until it is
// busy again.
func (st *state) drain(now time.Time, g *group, fx *effects) {
	cg := g.consumer
	if cg.needMeta && !cg.busy {
		cg.needMeta = false
		st.consumerMetadata(now, g, fx)
	}
	for !cg.busy && len(cg.queue) > 0 {
		c := cg.queue[0]
		cg.queue = cg.queue[1:]
		st.runHeartbeat(now, g, c, c.req.(*kmsg.ConsumerGroupHeartbeatRequest), nil, fx)
	}
	if len(cg.queue) == 0 {
		cg.queue = nil // let the backing array go
	}
}

// consumerTick runs the session and revocation timeouts of g's consumer
// group.
func (st *state) consumerTick(now time.Time, g *group, fx *effects) {
	cg := g.consumer
	if cg.busy {
		return // rescheduled once the append is done
	}
	if recs := cg.g.Tick(now, st.env.ctopics()); len(recs) > 0 {
		st.consumerWrite(g, toRecords(recs), fx, nil)
	}
}

func (st *state) consumerMetadata(now time.Time, g *group, fx *effects) {
	cg := g.consumer
	if cg.busy {
		cg.needMeta = true
		return
	}
	if recs := cg.g.MetadataChanged(now, st.env.ctopics()); len(recs) > 0 {
		st.consumerWrite(g, toRecords(recs), fx, nil)
	}
	st.touch(g)
}

// topicsChanged tells every consumer group that topics were created,
// deleted or grew partitions.
func (st *state) topicsChanged(now time.Time, fx *effects) {
	for _, g := range st.sortedGroups() {
		if g.consumer != nil {
			st.consumerMetadata(now, g, fx)
		}
	}
}

// consumerDescribe handles a ConsumerGroupDescribe.
func (st *state) consumerDescribe(req *kmsg.ConsumerGroupDescribeRequest) *kmsg.ConsumerGroupDescribeResponse {
	resp := req.ResponseKind().(*kmsg.ConsumerGroupDescribeResponse)
	for _, id := range req.Groups {
		g := st.groups[id]
		var d kmsg.ConsumerGroupDescribeResponseGroup
		switch {
		case id == "":
			d = kmsg.NewConsumerGroupDescribeResponseGroup()
			d.ErrorCode = kerr.InvalidGroupID.Code
		case g == nil || g.consumer == nil:
			d = kmsg.NewConsumerGroupDescribeResponseGroup()
			d.Group = id
			d.ErrorCode = kerr.GroupIDNotFound.Code
			msg := "Group " + id + " not found."
			if g != nil {
				msg = "Group " + id + " is not a consumer group."
			}
			d.ErrorMessage = kmsg.StringPtr(msg)
		default:
			cg := g.consumer
			d = cg.g.Describe(st.env.ctopics(), req.IncludeAuthorizedOperations)
			for i := range d.Members {
				m := &d.Members[i]
				if cl, ok := cg.clients[m.MemberID]; ok {
					m.ClientID, m.ClientHost = cl.ID, cl.Host
				}
			}
		}
		d.Group = id
		resp.Groups = append(resp.Groups, d)
	}
	return resp
}

// subscribed is the set of g's offset topics that some member of its
// consumer group subscribes to: their offsets do not expire.
func (cg *consumerGroup) subscribed(g *group) map[string]struct{} {
	subs := make(map[string]struct{})
	if cg.g.Members() == 0 {
		return subs
	}
	for t := range g.offsets {
		if cg.g.Subscribed(t) {
			subs[t] = struct{}{}
		}
	}
	return subs
}

// expireConsumer is expire for a consumer group: offsets of topics no
// member subscribes to expire retention after their commit, and the
// group is deleted once it has neither members nor offsets.
func (st *state) expireConsumer(now time.Time, g *group, fx *effects) {
	cg := g.consumer
	if cg.busy {
		return
	}
	retention := st.env.opts.OffsetsRetention
	subs := cg.subscribed(g)
	var recs []Record
	for _, tp := range sortedOffsets(g) {
		if _, ok := subs[tp.topic]; ok || g.pendingTxn(tp.topic, tp.partition) {
			continue
		}
		if o := g.offsets[tp.topic][tp.partition]; !now.Before(o.committed.Add(retention)) {
			recs = append(recs, offsetTombstone(g.id, tp.topic, tp.partition))
			g.deleteOffset(tp.topic, tp.partition)
		}
	}
	deleteGroup := cg.g.Members() == 0 && g.numOffsets() == 0 && len(g.txn) == 0 &&
		(len(recs) > 0 || (!cg.emptySince.IsZero() && !now.Before(cg.emptySince.Add(emptyGroupGrace))))
	if deleteGroup {
		recs = append(recs, toRecords(cg.g.Delete())...)
		delete(st.groups, g.id)
	}
	if len(recs) > 0 {
		st.log.Info("group: offsets expired", "group", g.id, "tombstones", len(recs), "deleted", deleteGroup)
		fx.write(g.id, recs, nil)
	}
}
