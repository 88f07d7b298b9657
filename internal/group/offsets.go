package group

import (
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// commit handles an OffsetCommit. Offsets become visible, and the
// request is answered, only once their records are durable.
func (st *state) commit(now time.Time, c *call, req *kmsg.OffsetCommitRequest, fx *effects) {
	resp := errorResponse(req, 0).(*kmsg.OffsetCommitResponse)
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
	g := st.groups[req.Group]
	if g == nil {
		if req.Generation >= 0 {
			// A group member commits to a group that is gone: its
			// generation is stale.
			failAll(kerr.IllegalGeneration.Code)
			return
		}
		g = st.newGroup(req.Group, now)
	}
	st.touch(g)
	if code := st.validateCommit(now, g, req); code != 0 {
		failAll(code)
		return
	}

	type target struct {
		rp        *kmsg.OffsetCommitResponseTopicPartition
		topic     string
		partition int32
		o         offset
	}
	n, size := 0, 0
	for _, t := range req.Topics {
		n += len(t.Partitions)
		for _, p := range t.Partitions {
			meta := 0
			if p.Metadata != nil {
				meta = len(*p.Metadata)
			}
			size += offsetRecordBytes(req.Group, t.Topic, meta)
		}
	}
	targets := make([]target, 0, n)
	recs := make([]Record, 0, n)
	buf := make([]byte, 0, size)
	for i, t := range req.Topics {
		rt := &resp.Topics[i]
		name, parts, code := st.resolveTopic(req.Version >= 10, t.Topic, t.TopicID)
		for j, p := range t.Partitions {
			rp := &rt.Partitions[j]
			o, pcode := st.checkOffset(now, code, parts, p.Partition, p.Offset, req.Version >= 6, p.LeaderEpoch, p.Metadata)
			if rp.ErrorCode = pcode; pcode != 0 {
				continue
			}
			targets = append(targets, target{rp, name, p.Partition, o})
			var r Record
			buf, r = appendOffsetRecord(buf, g.id, name, p.Partition, o)
			recs = append(recs, r)
		}
	}
	if len(recs) == 0 {
		fx.reply(c, resp)
		return
	}
	g.inflight++
	fx.write(g.id, recs, func(now time.Time, err error, fx *effects) {
		g.inflight--
		if err != nil {
			code := commitErrorCode(err)
			for _, t := range targets {
				t.rp.ErrorCode = code
			}
		} else if st.groups[g.id] == g {
			for _, t := range targets {
				// Appends complete in log order, so this one is the
				// latest record unless a transaction written after it
				// was committed first (Kafka: the later record wins).
				if cur, ok := g.offsets[t.topic][t.partition]; !ok || t.o.seq > cur.seq {
					g.setOffset(t.topic, t.partition, t.o)
				}
			}
		}
		fx.reply(c, resp)
	})
}

// checkOffset validates one partition of an OffsetCommit or a
// TxnOffsetCommit (topicCode is its topic's resolution error; the leader
// epoch counts only when the version carries it) and returns the offset
// to record, or the partition's error code.
func (st *state) checkOffset(now time.Time, topicCode int16, parts, partition int32, off int64, withEpoch bool, epoch int32, meta *string) (offset, int16) {
	switch {
	case topicCode != 0:
		return offset{}, topicCode
	case partition < 0 || partition >= parts:
		return offset{}, kerr.UnknownTopicOrPartition.Code
	case meta != nil && len(*meta) > st.env.opts.MaxOffsetMetadataBytes:
		return offset{}, kerr.OffsetMetadataTooLarge.Code
	}
	o := offset{offset: off, leaderEpoch: -1, committed: now, seq: st.nextSeq()}
	if withEpoch {
		o.leaderEpoch = epoch
	}
	if meta != nil {
		o.metadata = *meta
	}
	return o, 0
}

// validateCommit checks who commits. A consumer-protocol group checks
// the member id and epoch (the request's generation field) as Kafka's
// ConsumerGroup.validateOffsetCommit, which also wants OffsetCommit v9+
// from a member of the new protocol.
func (st *state) validateCommit(now time.Time, g *group, req *kmsg.OffsetCommitRequest) int16 {
	cg := g.consumer
	if cg == nil {
		return g.classic.validateCommit(now, req.Generation, req.MemberID, req.InstanceID, false)
	}
	if code := cg.g.ValidateCommit(req.MemberID, req.Generation); code != 0 {
		return code
	}
	if req.Generation >= 0 && req.Version < 9 {
		return kerr.UnsupportedVersion.Code
	}
	return 0
}

// resolveTopic finds a request's topic by id (byID) or by name, and
// returns its name and partition count, or the error code for every
// partition of it.
func (st *state) resolveTopic(byID bool, name string, id [16]byte) (string, int32, int16) {
	topics := st.env.opts.Topics
	if byID {
		info, ok := topics.TopicByID(id)
		if !ok {
			return "", 0, kerr.UnknownTopicID.Code
		}
		return info.Name, info.Partitions, 0
	}
	info, ok := topics.Topic(name)
	if !ok {
		return name, 0, kerr.UnknownTopicOrPartition.Code
	}
	return name, info.Partitions, 0
}

// fetch handles an OffsetFetch. Commits not yet durable and pending
// transactional offsets are not visible; with RequireStable (v7+) a
// partition with a transactional offset pending or being written is
// answered UNSTABLE_OFFSET_COMMIT, as Kafka does, so the client retries
// once the transaction is over.
func (st *state) fetch(req *kmsg.OffsetFetchRequest) *kmsg.OffsetFetchResponse {
	resp := req.ResponseKind().(*kmsg.OffsetFetchResponse)
	stable := req.Version >= 7 && req.RequireStable
	if req.Version >= 8 {
		for _, rg := range req.Groups {
			resp.Groups = append(resp.Groups, st.fetchGroup(req.Version, stable, rg))
		}
		return resp
	}
	// Before v8 the request names one group; answer it as one group of
	// the newer shape, then fold it back.
	rg := kmsg.NewOffsetFetchRequestGroup()
	rg.Group = req.Group
	if req.Topics != nil {
		rg.Topics = make([]kmsg.OffsetFetchRequestGroupTopic, 0, len(req.Topics))
	}
	for _, t := range req.Topics {
		gt := kmsg.NewOffsetFetchRequestGroupTopic()
		gt.Topic, gt.Partitions = t.Topic, t.Partitions
		rg.Topics = append(rg.Topics, gt)
	}
	sg := st.fetchGroup(req.Version, stable, rg)
	if req.Version >= 2 {
		resp.ErrorCode = sg.ErrorCode
	}
	for _, t := range sg.Topics {
		rt := kmsg.NewOffsetFetchResponseTopic()
		rt.Topic = t.Topic
		for _, p := range t.Partitions {
			rp := kmsg.NewOffsetFetchResponseTopicPartition()
			rp.Partition, rp.Offset, rp.LeaderEpoch, rp.Metadata = p.Partition, p.Offset, p.LeaderEpoch, p.Metadata
			rp.ErrorCode = p.ErrorCode
			if req.Version < 2 && sg.ErrorCode != 0 {
				rp.ErrorCode = sg.ErrorCode // no group-level code before v2
			}
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return resp
}

func (st *state) fetchGroup(version int16, stable bool, rg kmsg.OffsetFetchRequestGroup) kmsg.OffsetFetchResponseGroup {
	sg := kmsg.NewOffsetFetchResponseGroup()
	sg.Group = rg.Group
	if rg.Group == "" {
		sg.ErrorCode = kerr.InvalidGroupID.Code
		return sg
	}
	g := st.groups[rg.Group]
	if g != nil && g.consumer != nil && (rg.MemberID != nil || rg.MemberEpoch >= 0) {
		// Kafka's ConsumerGroup.validateOffsetFetch: a fetch naming
		// a member (v9+) must come from it at its current epoch; one
		// with neither (admin clients, older versions) is accepted.
		id := ""
		if rg.MemberID != nil {
			id = *rg.MemberID
		}
		if code := g.consumer.g.ValidateCommit(id, rg.MemberEpoch); code != 0 {
			sg.ErrorCode = code
			return sg
		}
	}
	byID := version >= 10
	part := func(p int32) kmsg.OffsetFetchResponseGroupTopicPartition {
		sp := kmsg.NewOffsetFetchResponseGroupTopicPartition()
		sp.Partition, sp.Offset, sp.Metadata = p, -1, kmsg.StringPtr("")
		return sp
	}
	fill := func(sp *kmsg.OffsetFetchResponseGroupTopicPartition, o offset) {
		sp.Offset, sp.LeaderEpoch, sp.Metadata = o.offset, o.leaderEpoch, kmsg.StringPtr(o.metadata)
	}
	unstable := func(topic string, p int32) bool { return stable && g != nil && g.unstable(topic, p) }
	if rg.Topics == nil { // every committed offset
		if g == nil {
			return sg
		}
		topics := make([]string, 0, len(g.offsets))
		for t := range g.offsets {
			topics = append(topics, t)
		}
		slices.Sort(topics)
		for _, t := range topics {
			st2 := kmsg.NewOffsetFetchResponseGroupTopic()
			st2.Topic = t
			if byID {
				info, ok := st.env.opts.Topics.Topic(t)
				if !ok {
					continue // a deleted topic has no id to name it by
				}
				st2.TopicID = info.ID
			}
			ps := make([]int32, 0, len(g.offsets[t]))
			for p := range g.offsets[t] {
				ps = append(ps, p)
			}
			slices.Sort(ps)
			for _, p := range ps {
				sp := part(p)
				if unstable(t, p) {
					sp.ErrorCode = kerr.UnstableOffsetCommit.Code
				} else {
					fill(&sp, g.offsets[t][p])
				}
				st2.Partitions = append(st2.Partitions, sp)
			}
			sg.Topics = append(sg.Topics, st2)
		}
		return sg
	}
	for _, t := range rg.Topics {
		st2 := kmsg.NewOffsetFetchResponseGroupTopic()
		st2.Topic, st2.TopicID = t.Topic, t.TopicID
		name, code := t.Topic, int16(0)
		if byID {
			name, _, code = st.resolveTopic(true, "", t.TopicID)
		}
		for _, p := range t.Partitions {
			sp := part(p)
			sp.ErrorCode = code
			if code == 0 && unstable(name, p) {
				sp.ErrorCode = kerr.UnstableOffsetCommit.Code
			} else if g != nil && code == 0 {
				if o, ok := g.offsets[name][p]; ok {
					fill(&sp, o)
				}
			}
			st2.Partitions = append(st2.Partitions, sp)
		}
		sg.Topics = append(sg.Topics, st2)
	}
	return sg
}

// deleteOffsets handles an OffsetDelete, answered once the tombstones
// are durable.
func (st *state) deleteOffsets(c *call, req *kmsg.OffsetDeleteRequest, fx *effects) {
	resp := req.ResponseKind().(*kmsg.OffsetDeleteResponse)
	if req.Group == "" {
		resp.ErrorCode = kerr.InvalidGroupID.Code
		fx.reply(c, resp)
		return
	}
	g := st.groups[req.Group]
	if g == nil || (g.consumer == nil && g.classic.state == stateDead) {
		resp.ErrorCode = kerr.GroupIDNotFound.Code
		fx.reply(c, resp)
		return
	}
	cg := g.classic
	var subs map[string]struct{}
	subsKnown := true
	if g.consumer != nil {
		// Any consumer group may delete offsets of topics its members
		// do not subscribe to, by name or by regex.
		subs = make(map[string]struct{})
		for _, t := range req.Topics {
			if g.consumer.g.Subscribed(t.Topic) {
				subs[t.Topic] = struct{}{}
			}
		}
	} else if cg.state != stateEmpty {
		if cg.protocolType != "consumer" {
			resp.ErrorCode = kerr.NonEmptyGroup.Code
			fx.reply(c, resp)
			return
		}
		subs, subsKnown = cg.subscribedTopics()
	}
	type target struct {
		rp        *kmsg.OffsetDeleteResponseTopicPartition
		topic     string
		partition int32
	}
	var targets []target
	var recs []Record
	for _, t := range req.Topics {
		rt := kmsg.NewOffsetDeleteResponseTopic()
		rt.Topic = t.Topic
		_, _, code := st.resolveTopic(false, t.Topic, [16]byte{})
		if code == 0 {
			if _, ok := subs[t.Topic]; ok || !subsKnown {
				code = kerr.GroupSubscribedToTopic.Code
			}
		}
		for _, p := range t.Partitions {
			rp := kmsg.NewOffsetDeleteResponseTopicPartition()
			rp.Partition, rp.ErrorCode = p.Partition, code
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	for i := range resp.Topics {
		rt := &resp.Topics[i]
		for j := range rt.Partitions {
			rp := &rt.Partitions[j]
			if rp.ErrorCode != 0 {
				continue
			}
			// A partition with only pending transactional offsets
			// gets a tombstone too, which deletes them (Kafka).
			if _, ok := g.offsets[rt.Topic][rp.Partition]; ok || g.pendingTxn(rt.Topic, rp.Partition) {
				targets = append(targets, target{rp, rt.Topic, rp.Partition})
				recs = append(recs, offsetTombstone(g.id, rt.Topic, rp.Partition))
			}
		}
	}
	if len(recs) == 0 {
		fx.reply(c, resp)
		return
	}
	g.inflight++
	st.touch(g)
	fx.write(g.id, recs, func(now time.Time, err error, fx *effects) {
		g.inflight--
		if err != nil {
			code := commitErrorCode(err)
			for _, t := range targets {
				t.rp.ErrorCode = code
			}
		} else {
			for _, t := range targets {
				st.forgetOffset(g, t.topic, t.partition)
			}
		}
		fx.reply(c, resp)
	})
}

// committed snapshots one group's offsets for inspection.
func (st *state) committed(id string) map[string]map[int32]int64 {
	g := st.groups[id]
	if g == nil {
		return nil
	}
	out := make(map[string]map[int32]int64, len(g.offsets))
	for t, ps := range g.offsets {
		m := make(map[int32]int64, len(ps))
		for p, o := range ps {
			m[p] = o.offset
		}
		out[t] = m
	}
	return out
}
