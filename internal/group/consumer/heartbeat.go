package consumer

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Kafka error codes this package answers with.
var (
	codeInvalidRequest    = kerr.InvalidRequest.Code
	codeUnknownMemberID   = kerr.UnknownMemberID.Code
	codeFencedMemberEpoch = kerr.FencedMemberEpoch.Code
	codeStaleMemberEpoch  = kerr.StaleMemberEpoch.Code
	codeUnsupportedAssign = kerr.UnsupportedAssignor.Code
	codeUnreleasedInst    = kerr.UnreleasedInstanceID.Code
	codeFencedInst        = kerr.FencedInstanceID.Code
	codeGroupMaxSize      = kerr.GroupMaxSizeReached.Code
	codeInvalidRegex      = kerr.InvalidRegularExpression.Code
)

type hbError struct {
	code int16
	msg  string
}

func errf(code int16, format string, args ...any) *hbError {
	return &hbError{code, fmt.Sprintf(format, args...)}
}

// Heartbeat applies one ConsumerGroupHeartbeat at now. It returns the
// response and the records that must be durable before the response is
// sent; see the package documentation for what to do when the append fails.
// A request that fails validation changes nothing and returns no records.
func (g *Group) Heartbeat(now time.Time, topics Topics, req *kmsg.ConsumerGroupHeartbeatRequest) (*kmsg.ConsumerGroupHeartbeatResponse, []Record) {
	g.settle()
	g.arm(now)
	resp := req.ResponseKind().(*kmsg.ConsumerGroupHeartbeatResponse)
	resp.Version = req.Version
	if err := g.validate(req); err != nil {
		resp.ErrorCode, resp.ErrorMessage = err.code, &err.msg
		return resp, nil
	}
	var err *hbError
	switch req.MemberEpoch {
	case epochLeave:
		err = g.leave(now, topics, req, resp)
	case epochStaticLeave:
		err = g.staticLeave(now, req, resp)
	default:
		err = g.heartbeat(now, topics, req, resp)
	}
	if err != nil {
		g.discardPending()
		*resp = *req.ResponseKind().(*kmsg.ConsumerGroupHeartbeatResponse)
		resp.Version = req.Version
		resp.ErrorCode, resp.ErrorMessage = err.code, &err.msg
		return resp, nil
	}
	return resp, g.flush()
}

// validate checks the request on its own, as Kafka's
// throwIfConsumerGroupHeartbeatRequestIsInvalid, plus this package's limits.
func (g *Group) validate(req *kmsg.ConsumerGroupHeartbeatRequest) *hbError {
	switch {
	case req.MemberEpoch < epochStaticLeave:
		return errf(codeInvalidRequest, "MemberEpoch %d is invalid.", req.MemberEpoch)
	case req.MemberEpoch != epochJoin && req.MemberID == "":
		return errf(codeInvalidRequest, "MemberId can't be empty.")
	case req.MemberEpoch == epochStaticLeave && req.InstanceID == nil:
		return errf(codeInvalidRequest, "InstanceId can't be null.")
	}
	if req.MemberEpoch == epochJoin {
		if req.RebalanceTimeoutMillis == -1 {
			return errf(codeInvalidRequest, "RebalanceTimeoutMs must be provided in first request.")
		}
		if req.Topics == nil || len(req.Topics) > 0 {
			return errf(codeInvalidRequest, "TopicPartitions must be empty when (re-)joining.")
		}
		if req.SubscribedTopicNames == nil && req.SubscribedTopicRegex == nil {
			return errf(codeInvalidRequest, "Either SubscribedTopicNames or SubscribedTopicRegex must be non-null when (re-)joining.")
		}
	}
	if len(req.MemberID) > idBytesMax || strLen(req.InstanceID) > idBytesMax || strLen(req.RackID) > idBytesMax {
		return errf(codeInvalidRequest, "an ID is longer than %d bytes", idBytesMax)
	}
	if len(req.SubscribedTopicNames) > subscribedTopicsMax {
		return errf(codeInvalidRequest, "more than %d subscribed topics", subscribedTopicsMax)
	}
	for _, t := range req.SubscribedTopicNames {
		if len(t) > topicNameBytesMax {
			return errf(codeInvalidRequest, "a subscribed topic name is longer than %d bytes", topicNameBytesMax)
		}
	}
	if req.ServerAssignor != nil && !slices.Contains(g.opts.Assignors, *req.ServerAssignor) {
		return errf(codeUnsupportedAssign, "ServerAssignor %s is not supported. Supported assignors: %v.", *req.ServerAssignor, g.opts.Assignors)
	}
	if re := req.SubscribedTopicRegex; re != nil && *re != "" {
		if len(*re) > regexBytesMax {
			return errf(codeInvalidRegex, "SubscribedTopicRegex is longer than %d bytes", regexBytesMax)
		}
		if g.regexCache[*re] == nil { // not compiled yet (the cache holds only valid ones in use)
			if _, err := compileRegex(*re); err != nil {
				return errf(codeInvalidRegex, "SubscribedTopicRegex %q is invalid: %v", *re, err)
			}
		}
	}
	return nil
}

func strLen(s *string) int {
	if s == nil {
		return 0
	}
	return len(*s)
}

// isFullRequest reports whether the member sent everything (it does on
// joining and after errors); Kafka then always answers with the assignment.
func isFullRequest(req *kmsg.ConsumerGroupHeartbeatRequest) bool {
	return req.MemberEpoch == epochJoin ||
		(req.RebalanceTimeoutMillis != -1 &&
			(req.SubscribedTopicNames != nil || req.SubscribedTopicRegex != nil) &&
			req.Topics != nil)
}

func (g *Group) heartbeat(now time.Time, topics Topics, req *kmsg.ConsumerGroupHeartbeatRequest, resp *kmsg.ConsumerGroupHeartbeatResponse) *hbError {
	var m *member
	subChanged := false
	if req.MemberEpoch == epochJoin {
		var err *hbError
		m, subChanged, err = g.join(req)
		if err != nil {
			return err
		}
	} else {
		if req.InstanceID != nil {
			owner, ok := g.static[*req.InstanceID]
			if !ok {
				return errf(codeUnknownMemberID, "Instance id %s is unknown.", *req.InstanceID)
			}
			if owner != req.MemberID {
				return errf(codeFencedInst, "Static member %s with instance id %s was fenced by member %s.", req.MemberID, *req.InstanceID, owner)
			}
		}
		m = g.members[req.MemberID]
		if m == nil {
			return errf(codeUnknownMemberID, "Member %s is not a member of group %s.", req.MemberID, g.id)
		}
		if err := m.checkEpoch(req.MemberEpoch, req.Topics); err != nil {
			return err
		}
	}
	if g.updateMember(m, req) {
		subChanged = true
	}
	g.dead = false
	m.sessionDeadline = now.Add(g.opts.SessionTimeout)

	if subChanged || g.metaStale() {
		metaChanged := g.refreshMeta(topics)
		if subChanged || metaChanged {
			g.bump()
		}
	}
	before := m.assigned
	g.reconcile(now, m, req.Topics)

	resp.MemberID = kmsg.StringPtr(m.id)
	resp.MemberEpoch = m.epoch
	resp.HeartbeatIntervalMillis = int32(g.opts.HeartbeatInterval / time.Millisecond)
	if isFullRequest(req) || !before.equal(m.assigned) {
		a := kmsg.NewConsumerGroupHeartbeatResponseAssignment()
		for _, id := range m.assigned.topicIDs() {
			t := kmsg.NewConsumerGroupHeartbeatResponseAssignmentTopic()
			t.TopicID = id
			t.Partitions = slices.Clone(m.assigned[id])
			a.Topics = append(a.Topics, t)
		}
		if a.Topics == nil {
			a.Topics = []kmsg.ConsumerGroupHeartbeatResponseAssignmentTopic{}
		}
		resp.Assignment = &a
	}
	return nil
}

// join finds or creates the member of a heartbeat with epoch 0. It changes
// nothing when it returns an error.
func (g *Group) join(req *kmsg.ConsumerGroupHeartbeatRequest) (*member, bool, *hbError) {
	id := req.MemberID
	if id == "" {
		id = newMemberID()
	}
	if req.InstanceID != nil {
		if owner, ok := g.static[*req.InstanceID]; ok && owner != id && g.members[owner] != nil {
			old := g.members[owner]
			if old.epoch != epochStaticLeave {
				return nil, false, errf(codeUnreleasedInst, "Static member %s with instance id %s cannot join the group because the instance id is owned by %s member.", id, *req.InstanceID, owner)
			}
			if _, taken := g.members[id]; taken {
				return nil, false, errf(codeInvalidRequest, "Member id %s is already used by another member.", id)
			}
			return g.replaceStatic(old, id), false, nil
		}
	}
	if m := g.members[id]; m != nil {
		if req.InstanceID != nil && m.instanceID != nil && *m.instanceID != *req.InstanceID {
			return nil, false, errf(codeInvalidRequest, "Member %s cannot change its instance id.", id)
		}
		if m.epoch == epochStaticLeave {
			// The static member comes back under the same member ID:
			// it keeps what it owned, as with a new ID.
			m.epoch, m.prevEpoch, m.state = 0, 0, stateStable
			g.dirtyCurrent[m.id] = true
			return m, false, nil
		}
		// The member lost its state (a lost response, a fencing error)
		// and rejoins with its ID: the client abandoned every partition,
		// so the server drops them too and hands back the member's
		// target on this very heartbeat, as far as no one else holds it.
		g.release(m)
		m.assigned, m.revoking = assignment{}, assignment{}
		m.epoch, m.prevEpoch, m.state = 0, 0, stateStable
		m.revokeDeadline = time.Time{}
		g.dirtyCurrent[m.id] = true
		return m, false, nil
	}
	if len(g.members) >= g.opts.MaxSize {
		return nil, false, errf(codeGroupMaxSize, "The consumer group has reached its maximum capacity of %d members.", g.opts.MaxSize)
	}
	m := &member{id: id, assigned: assignment{}, revoking: assignment{}, rebalanceTimeout: defaultRebalanceTimeout, hasMeta: true}
	g.members[id] = m
	g.dirtyMeta[id] = true
	g.dirtyCurrent[id] = true
	return m, true, nil
}

// replaceStatic moves the assignment of a static member that left
// temporarily (epoch -2) to the new member that rejoins with its instance
// ID, as Kafka's replaceMember: the new member starts at epoch 0 owning what
// the old one owned, so no other member got those partitions meanwhile.
func (g *Group) replaceStatic(old *member, id string) *member {
	m := &member{
		id:               id,
		instanceID:       cloneStr(old.instanceID),
		rackID:           cloneStr(old.rackID),
		rebalanceTimeout: old.rebalanceTimeout,
		topics:           slices.Clone(old.topics),
		regex:            old.regex,
		assignor:         old.assignor,
		assigned:         old.assigned.clone(),
		revoking:         assignment{},
		hasMeta:          true,
	}
	target := g.target[old.id]
	g.removeMember(old)
	g.members[id] = m
	g.static[*m.instanceID] = id
	if target != nil {
		g.target[id] = target
	}
	g.own(m)
	g.dirtyMeta[id] = true
	g.dirtyTarget[id] = true
	g.dirtyCurrent[id] = true
	return m
}

// checkEpoch validates a heartbeat's epoch, as Kafka's
// throwIfConsumerGroupMemberEpochIsInvalid: the member's current epoch, or
// its previous one when it reports owning a subset of its assignment (the
// response that bumped its epoch may have been lost).
func (m *member) checkEpoch(epoch int32, owned []kmsg.ConsumerGroupHeartbeatRequestTopic) *hbError {
	if epoch > m.epoch {
		return errf(codeFencedMemberEpoch, "The consumer group member has a greater member epoch (%d) than the one known by the group coordinator (%d). The member must abandon all its partitions and rejoin.", epoch, m.epoch)
	}
	if epoch < m.epoch && (epoch != m.prevEpoch || !isSubset(owned, m.assigned)) {
		return errf(codeFencedMemberEpoch, "The consumer group member has a smaller member epoch (%d) than the one known by the group coordinator (%d). The member must abandon all its partitions and rejoin.", epoch, m.epoch)
	}
	return nil
}

func isSubset(owned []kmsg.ConsumerGroupHeartbeatRequestTopic, a assignment) bool {
	if owned == nil {
		return false
	}
	for _, t := range owned {
		for _, p := range t.Partitions {
			if !a.has(t.TopicID, p) {
				return false
			}
		}
	}
	return true
}

// updateMember applies the optional fields of a heartbeat; it reports
// whether the subscription changed (which bumps the group epoch). A new
// server assignor does not: Kafka uses it from the next bump on.
func (g *Group) updateMember(m *member, req *kmsg.ConsumerGroupHeartbeatRequest) bool {
	changed, sub := false, false
	if req.InstanceID != nil && m.instanceID == nil {
		m.instanceID = cloneStr(req.InstanceID)
		g.static[*m.instanceID] = m.id
		changed = true
	}
	if req.RackID != nil && (m.rackID == nil || *m.rackID != *req.RackID) {
		m.rackID = cloneStr(req.RackID)
		changed = true
	}
	if ms := req.RebalanceTimeoutMillis; ms > 0 {
		if d := min(time.Duration(ms)*time.Millisecond, rebalanceTimeoutMax); d != m.rebalanceTimeout {
			m.rebalanceTimeout = d
			changed = true
		}
	}
	if req.ServerAssignor != nil && *req.ServerAssignor != m.assignor {
		m.assignor = *req.ServerAssignor
		changed = true
	}
	if req.SubscribedTopicNames != nil {
		names := slices.Clone(req.SubscribedTopicNames)
		slices.Sort(names)
		names = slices.Compact(names)
		if !slices.Equal(names, m.topics) {
			m.topics = names
			changed, sub = true, true
		}
	}
	if req.SubscribedTopicRegex != nil && *req.SubscribedTopicRegex != m.regex {
		m.regex = *req.SubscribedTopicRegex
		changed, sub = true, true
	}
	if changed {
		g.dirtyMeta[m.id] = true
	}
	return sub
}

func (g *Group) leave(now time.Time, topics Topics, req *kmsg.ConsumerGroupHeartbeatRequest, resp *kmsg.ConsumerGroupHeartbeatResponse) *hbError {
	m, err := g.leavingMember(req)
	if err != nil {
		return err
	}
	g.removeMember(m)
	g.refreshMeta(topics)
	g.bump()
	resp.MemberID = kmsg.StringPtr(req.MemberID)
	resp.MemberEpoch = epochLeave
	return nil
}

func (g *Group) leavingMember(req *kmsg.ConsumerGroupHeartbeatRequest) (*member, *hbError) {
	if req.InstanceID != nil {
		owner, ok := g.static[*req.InstanceID]
		if !ok {
			return nil, errf(codeUnknownMemberID, "Instance id %s is unknown.", *req.InstanceID)
		}
		if owner != req.MemberID {
			return nil, errf(codeFencedInst, "Static member %s with instance id %s was fenced by member %s.", req.MemberID, *req.InstanceID, owner)
		}
	}
	m := g.members[req.MemberID]
	if m == nil {
		return nil, errf(codeUnknownMemberID, "Member %s is not a member of group %s.", req.MemberID, g.id)
	}
	return m, nil
}

// staticLeave keeps a static member that leaves temporarily (epoch -2):
// its assignment stays reserved for it until its session expires, so that
// it gets the same partitions back when it restarts, without a rebalance.
// What it was revoking is released.
func (g *Group) staticLeave(now time.Time, req *kmsg.ConsumerGroupHeartbeatRequest, resp *kmsg.ConsumerGroupHeartbeatResponse) *hbError {
	m, err := g.leavingMember(req)
	if err != nil {
		return err
	}
	g.release(m)
	m.revoking = assignment{}
	m.prevEpoch, m.epoch = m.epoch, epochStaticLeave
	m.state = stateStable
	m.revokeDeadline = time.Time{}
	m.sessionDeadline = now.Add(g.opts.SessionTimeout)
	g.own(m)
	g.dirtyCurrent[m.id] = true
	resp.MemberID = kmsg.StringPtr(req.MemberID)
	resp.MemberEpoch = epochStaticLeave
	return nil
}

// Tick expires members whose session ran out and fences members that did
// not revoke partitions within their rebalance timeout, recomputing the
// target assignment; it returns the records to persist.
func (g *Group) Tick(now time.Time, topics Topics) []Record {
	g.settle()
	g.arm(now)
	var gone []*member
	for _, m := range g.members {
		expired := !m.sessionDeadline.After(now)
		fenced := !m.revokeDeadline.IsZero() && !m.revokeDeadline.After(now)
		if expired || fenced {
			gone = append(gone, m)
		}
	}
	// Removed in ID order so the tombstones come out deterministically.
	slices.SortFunc(gone, func(a, b *member) int { return strings.Compare(a.id, b.id) })
	for _, m := range gone {
		g.removeMember(m)
	}
	metaChanged := g.metaStale() && g.refreshMeta(topics)
	if len(gone) > 0 {
		g.refreshMeta(topics)
	}
	if len(gone) > 0 || metaChanged {
		g.bump()
	}
	return g.flush()
}

// Deadline is the earliest time Tick has work to do; zero when none. After
// Replay it is in the past until the first call that takes a time arms the
// timers again.
func (g *Group) Deadline() time.Time {
	if g.replayed || g.unarmed {
		return time.Unix(0, 0)
	}
	var d time.Time
	for _, m := range g.members {
		for _, t := range []time.Time{m.sessionDeadline, m.revokeDeadline} {
			if !t.IsZero() && (d.IsZero() || t.Before(d)) {
				d = t
			}
		}
	}
	return d
}

// MetadataChanged is called when topics are created, deleted or get
// partitions. If the metadata of the topics the group subscribes to
// changed, the group bumps its epoch and recomputes the target assignment.
// It returns the records to persist.
func (g *Group) MetadataChanged(now time.Time, topics Topics) []Record {
	g.settle()
	g.arm(now)
	clear(g.regexTopics)
	if g.refreshMeta(topics) {
		g.bump()
	}
	return g.flush()
}

// arm starts the timers of members restored by Replay: their session
// starts over at now, as Kafka does when a coordinator loads a group.
func (g *Group) arm(now time.Time) {
	if !g.unarmed {
		return
	}
	g.unarmed = false
	for _, m := range g.members {
		m.sessionDeadline = now.Add(g.opts.SessionTimeout)
		if m.state == stateUnrevoked {
			m.revokeDeadline = now.Add(m.rebalanceTimeout)
		}
	}
}

func newMemberID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return base64.RawURLEncoding.EncodeToString(b[:])
}
