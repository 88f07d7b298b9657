package group

import (
	"slices"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Transactional offsets (KIP-98, KIP-447), as Kafka's group coordinator
// keeps them (OffsetMetadataManager):
//
//   - TxnOffsetCommit appends the offsets as a transactional batch of the
//     producer and answers once it is durable. The offsets are then
//     pending for (group, producer): OffsetFetch does not show them, and
//     one with RequireStable gets UNSTABLE_OFFSET_COMMIT for their
//     partitions.
//   - The transaction's COMMIT or ABORT marker in the group's offsets-log
//     partition (CompleteTxn at run time, Record.Control in Load) ends
//     them: an abort drops them; a commit makes each one the committed
//     offset unless the committed offset was written later in the log
//     (Kafka keeps the most recent record, whichever kind it is).
//   - An offset tombstone (OffsetDelete, DeleteGroups, deleted topics)
//     deletes the partition's pending offsets of every producer with the
//     committed one, as Kafka's replay of a tombstone does.
//   - Pending offsets do not expire, a committed offset with pending ones
//     on its partition does not expire either, and a group with pending
//     offsets is not deleted by retention.
//
// Log order is kept as a sequence number per offset (offset.seq): the
// record's position during Load, then one per record appended, in Append
// order, which the Log keeps per partition.

// txnKey names one producer's transaction in one offsets-log partition:
// what a marker ends.
type txnKey struct {
	partition int32
	pid       int64
}

// txnFlight counts one key's TxnOffsetCommit appends not yet done, and
// the markers reported meanwhile. A marker reported while an append of
// the same transaction is in flight means a client that sent EndTxn
// before its TxnOffsetCommit was answered; those offsets are dropped when
// the append completes, as Kafka's coordinator drops them, rather than
// left pending for the producer's next transaction to end.
type txnFlight struct {
	n     int
	ended int
}

func (st *state) nextSeq() uint64 {
	st.seq++
	return st.seq
}

func (st *state) txnKeyOf(g *group, pid int64) txnKey {
	return txnKey{Partition(g.id, st.env.opts.NumPartitions), pid}
}

// pendingTxn reports whether some producer has a pending offset for the
// partition: its committed offset does not expire meanwhile.
func (g *group) pendingTxn(topic string, partition int32) bool {
	tp := topicPartition{topic, partition}
	for _, ps := range g.txn {
		if _, ok := ps[tp]; ok {
			return true
		}
	}
	return false
}

// unstable reports whether a fetch with RequireStable must not answer
// for the partition: a transactional offset is pending or being written.
func (g *group) unstable(topic string, partition int32) bool {
	return g.txnWriting[topicPartition{topic, partition}] > 0 || g.pendingTxn(topic, partition)
}

// pendingOnly lists, sorted, the partitions with pending offsets but no
// committed one, of the topics keep accepts (nil: every topic); a tombstone
// must delete them too.
func (g *group) pendingOnly(keep func(string) bool) []topicPartition {
	seen := make(map[topicPartition]struct{})
	var out []topicPartition
	for _, ps := range g.txn {
		for tp := range ps {
			if _, dup := seen[tp]; dup {
				continue
			}
			seen[tp] = struct{}{}
			if _, ok := g.offsets[tp.topic][tp.partition]; ok || (keep != nil && !keep(tp.topic)) {
				continue
			}
			out = append(out, tp)
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

// addPending records a durable transactional offset of producer pid; a
// later one of the same transaction for the partition replaces it.
func (st *state) addPending(g *group, pid int64, tp topicPartition, o offset) {
	ps := g.txn[pid]
	if ps == nil {
		ps = make(map[topicPartition]offset)
		g.txn[pid] = ps
		k := st.txnKeyOf(g, pid)
		gs := st.txns[k]
		if gs == nil {
			gs = make(map[*group]struct{})
			st.txns[k] = gs
		}
		gs[g] = struct{}{}
	}
	ps[tp] = o
}

// forgetOffset applies an offset tombstone: the committed offset and
// every producer's pending one for the partition go.
func (st *state) forgetOffset(g *group, topic string, partition int32) {
	g.deleteOffset(topic, partition)
	tp := topicPartition{topic, partition}
	for pid, ps := range g.txn {
		delete(ps, tp)
		if len(ps) == 0 {
			delete(g.txn, pid)
			if gs := st.txns[st.txnKeyOf(g, pid)]; gs != nil {
				delete(gs, g)
				if len(gs) == 0 {
					delete(st.txns, st.txnKeyOf(g, pid))
				}
			}
		}
	}
}

// completeTxn ends producer e.producerID's transaction in partition
// e.partition: its pending offsets in the groups of that partition are
// committed in log order or dropped. The index holds groups, not ids, so
// a group deleted while its tombstones are in flight is still finished
// and comes back right should the tombstones fail.
func (st *state) completeTxn(now time.Time, e txnEnd) {
	k := txnKey{e.partition, e.producerID}
	if f := st.txnFlights[k]; f != nil {
		f.ended++
	}
	gs := st.txns[k]
	delete(st.txns, k)
	for g := range gs {
		ps := g.txn[e.producerID]
		delete(g.txn, e.producerID)
		if e.commit {
			for tp, o := range ps {
				if cur, ok := g.offsets[tp.topic][tp.partition]; !ok || o.seq > cur.seq {
					g.setOffset(tp.topic, tp.partition, o)
				}
			}
		}
		st.log.Debug("group: transactional offsets ended", "group", g.id, "producer", e.producerID,
			"epoch", e.epoch, "commit", e.commit, "offsets", len(ps))
		if st.groups[g.id] == g {
			st.touch(g) // retention may go ahead now
		}
	}
}

// txnCommit handles a TxnOffsetCommit: the offsets are appended as a
// transactional batch of the producer, pending once durable, and the
// request is answered then.
func (st *state) txnCommit(now time.Time, c *call, req *kmsg.TxnOffsetCommitRequest, fx *effects) {
	resp := errorResponse(req, 0).(*kmsg.TxnOffsetCommitResponse)
	failAll := func(code int16) {
		for i := range resp.Topics {
			for j := range resp.Topics[i].Partitions {
				resp.Topics[i].Partitions[j].ErrorCode = code
			}
		}
		fx.reply(c, resp)
	}
	if req.Group == "" {
		failAll(kerr.InvalidGroupID.Code)
		return
	}
	if req.ProducerID < 0 || req.ProducerEpoch < 0 {
		// Without a producer the batch would be a plain commit,
		// visible at once: refuse rather than write that.
		failAll(kerr.InvalidProducerIDMapping.Code)
		return
	}
	// Before v3 the request names no member: it may commit whatever the
	// group's state, as Kafka accepts from older transactional clients.
	generation, memberID, instanceID := int32(-1), "", (*string)(nil)
	if req.Version >= 3 {
		generation, memberID, instanceID = req.Generation, req.MemberID, req.InstanceID
	}
	g := st.groups[req.Group]
	if g == nil {
		if generation >= 0 {
			failAll(kerr.IllegalGeneration.Code)
			return
		}
		g = st.newGroup(req.Group, now)
	}
	st.touch(g)
	if code := st.validateTxnCommit(now, g, generation, memberID, instanceID); code != 0 {
		failAll(code)
		return
	}

	type target struct {
		rp *kmsg.TxnOffsetCommitResponseTopicPartition
		tp topicPartition
		o  offset
	}
	var targets []target
	var recs []Record
	var buf []byte
	for i, t := range req.Topics {
		rt := &resp.Topics[i]
		name, parts, code := st.resolveTopic(req.Version >= 6, t.Topic, t.TopicID)
		for j, p := range t.Partitions {
			rp := &rt.Partitions[j]
			o, pcode := st.checkOffset(now, code, parts, p.Partition, p.Offset, req.Version >= 2, p.LeaderEpoch, p.Metadata)
			if rp.ErrorCode = pcode; pcode != 0 {
				continue
			}
			targets = append(targets, target{rp, topicPartition{name, p.Partition}, o})
			var r Record
			buf, r = appendOffsetRecord(buf, g.id, name, p.Partition, o)
			r.Transactional, r.ProducerID, r.ProducerEpoch = true, req.ProducerID, req.ProducerEpoch
			recs = append(recs, r)
		}
	}
	if len(recs) == 0 {
		fx.reply(c, resp)
		return
	}
	pid := req.ProducerID
	k := st.txnKeyOf(g, pid)
	f := st.txnFlights[k]
	if f == nil {
		f = &txnFlight{}
		st.txnFlights[k] = f
	}
	f.n++
	ended := f.ended
	g.inflight++
	for _, t := range targets {
		g.txnWriting[t.tp]++
	}
	fx.write(g.id, recs, func(now time.Time, err error, fx *effects) {
		g.inflight--
		for _, t := range targets {
			if g.txnWriting[t.tp]--; g.txnWriting[t.tp] <= 0 {
				delete(g.txnWriting, t.tp)
			}
		}
		if f.n--; f.n == 0 && st.txnFlights[k] == f {
			delete(st.txnFlights, k)
		}
		switch {
		case err != nil:
			code := commitErrorCode(err)
			for _, t := range targets {
				t.rp.ErrorCode = code
			}
		case f.ended != ended:
			st.log.Warn("group: transaction ended before its offsets were durable; dropping them",
				"group", g.id, "producer", pid, "offsets", len(targets))
		case st.groups[g.id] == g:
			for _, t := range targets {
				st.addPending(g, pid, t.tp, t.o)
			}
		}
		fx.reply(c, resp)
	})
}

// validateTxnCommit checks who commits, as Kafka's
// validateTransactionalOffsetCommit: a classic group as for OffsetCommit
// but in any state when no member is named and without
// REBALANCE_IN_PROGRESS; a consumer-protocol group by member id and epoch,
// a stale epoch being ILLEGAL_GENERATION, whatever the version.
func (st *state) validateTxnCommit(now time.Time, g *group, generation int32, memberID string, instanceID *string) int16 {
	cg := g.consumer
	if cg == nil {
		return g.classic.validateCommit(now, generation, memberID, instanceID, true)
	}
	code := cg.g.ValidateCommit(memberID, generation)
	if code == kerr.StaleMemberEpoch.Code {
		return kerr.IllegalGeneration.Code
	}
	return code
}
