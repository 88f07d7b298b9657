package group

import (
	"bytes"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// groupState is the state of a classic group, as Kafka names them.
type groupState int8

const (
	stateEmpty groupState = iota
	statePreparingRebalance
	stateCompletingRebalance
	stateStable
	stateDead
)

var stateNames = [...]string{"Empty", "PreparingRebalance", "CompletingRebalance", "Stable", "Dead"}

func (s groupState) String() string { return stateNames[s] }

// member is one member of a classic group.
type member struct {
	id               string
	instanceID       *string // static membership (KIP-345)
	clientID         string
	clientHost       string
	rebalanceTimeout time.Duration
	sessionTimeout   time.Duration
	protocols        []kmsg.JoinGroupRequestProtocol
	assignment       []byte
	join             *call     // a JoinGroup parked until the join phase completes
	sync             *call     // a SyncGroup parked until the leader's assignment is stored
	expires          time.Time // session deadline; ignored while a call is parked
}

func (m *member) metadataFor(protocol string) []byte {
	for _, p := range m.protocols {
		if p.Name == protocol {
			return p.Metadata
		}
	}
	return nil
}

func (m *member) supports(protocol string) bool {
	for _, p := range m.protocols {
		if p.Name == protocol {
			return true
		}
	}
	return false
}

// matches reports whether protos are the member's protocols, in order.
func (m *member) matches(protos []kmsg.JoinGroupRequestProtocol) bool {
	if len(protos) != len(m.protocols) {
		return false
	}
	for i, p := range protos {
		if p.Name != m.protocols[i].Name || !bytes.Equal(p.Metadata, m.protocols[i].Metadata) {
			return false
		}
	}
	return true
}

func (m *member) parked() bool { return m.join != nil || m.sync != nil }

// env is what a group needs from its coordinator: the options and a
// source of unique ids.
type env struct {
	opts  Options // with defaults applied
	newID func() string
}

// classicGroup is the classic (JoinGroup/SyncGroup) group protocol as a
// pure state machine: every method takes the logical time, changes the
// group and reports what to do through effects. It does no I/O, starts
// no goroutines and reads no clock. Not safe for concurrent use: the
// coordinator's owner goroutine drives it.
type classicGroup struct {
	id  string
	env *env

	state        groupState
	stateSince   time.Time // Kafka's currentStateTimestamp; the base of offset expiry once Empty
	protocolType string
	protocol     string
	generation   int32
	leader       string

	members map[string]*member
	order   []string             // member ids in join order: leader succession, deterministic output
	static  map[string]string    // instance id -> member id
	pending map[string]time.Time // members told MEMBER_ID_REQUIRED -> when they expire

	// PreparingRebalance: the join phase ends at joinDeadline, or as
	// soon as every member rejoined unless this is the initial delay of
	// a group that was Empty (which waits so that members starting
	// together land in one generation).
	joinDeadline     time.Time
	initialDelay     bool
	initialStep      time.Duration
	initialRemaining time.Duration
	newMemberAdded   bool

	// CompletingRebalance and Stable: members that got their JoinGroup
	// response must SyncGroup by syncDeadline or are removed.
	pendingSync  map[string]struct{}
	syncDeadline time.Time
	storing      bool // the leader's assignment is being made durable
}

func newClassicGroup(id string, e *env, now time.Time) *classicGroup {
	return &classicGroup{
		id:         id,
		env:        e,
		state:      stateEmpty,
		stateSince: now,
		members:    make(map[string]*member),
		static:     make(map[string]string),
		pending:    make(map[string]time.Time),
	}
}

func (g *classicGroup) setState(s groupState, now time.Time) {
	g.state = s
	g.stateSince = now
}

// rebalanceTimeout is the longest rebalance timeout of the members: how
// long the join phase waits and how long members have to SyncGroup.
func (g *classicGroup) rebalanceTimeout() time.Duration {
	var d time.Duration
	for _, m := range g.members {
		d = max(d, m.rebalanceTimeout)
	}
	return d
}

func (g *classicGroup) newMemberID(instanceID *string, clientID string) string {
	prefix := clientID
	if instanceID != nil {
		prefix = *instanceID
	}
	if prefix == "" {
		prefix = "sluice"
	}
	return prefix + "-" + g.env.newID()
}

// validateMember checks a request's member id and instance id, as
// Kafka's ClassicGroup.validateMember.
func (g *classicGroup) validateMember(memberID string, instanceID *string) int16 {
	if instanceID != nil {
		known, ok := g.static[*instanceID]
		if !ok {
			return kerr.UnknownMemberID.Code
		}
		if known != memberID {
			return kerr.FencedInstanceID.Code
		}
		return 0
	}
	if g.members[memberID] == nil {
		return kerr.UnknownMemberID.Code
	}
	return 0
}

// supportsProtocols reports whether a member with these protocols can be
// in the group: an Empty group takes anything non-empty, otherwise the
// type must match and one protocol must be supported by every member.
func (g *classicGroup) supportsProtocols(protocolType string, protos []kmsg.JoinGroupRequestProtocol) bool {
	if len(g.members) == 0 {
		return protocolType != "" && len(protos) > 0
	}
	if protocolType != g.protocolType {
		return false
	}
	for _, p := range protos {
		all := true
		for _, m := range g.members {
			if !m.supports(p.Name) {
				all = false
				break
			}
		}
		if all {
			return true
		}
	}
	return false
}

// selectProtocol picks the protocol of the next generation: among those
// every member supports, the one most members list first. Ties go to
// the protocol seen first in join order, so the choice is deterministic.
func (g *classicGroup) selectProtocol() string {
	var candidates []string
	for _, id := range g.order {
		for _, p := range g.members[id].protocols {
			if slices.Contains(candidates, p.Name) {
				continue
			}
			all := true
			for _, m := range g.members {
				if !m.supports(p.Name) {
					all = false
					break
				}
			}
			if all {
				candidates = append(candidates, p.Name)
			}
		}
	}
	votes := make(map[string]int, len(candidates))
	for _, id := range g.order {
		for _, p := range g.members[id].protocols {
			if slices.Contains(candidates, p.Name) {
				votes[p.Name]++
				break
			}
		}
	}
	best, bestVotes := "", 0
	for _, c := range candidates {
		if votes[c] > bestVotes {
			best, bestVotes = c, votes[c]
		}
	}
	return best
}

func (g *classicGroup) allJoined() bool {
	if len(g.pending) > 0 {
		return false
	}
	for _, m := range g.members {
		if m.join == nil {
			return false
		}
	}
	return true
}

func copyProtocols(in []kmsg.JoinGroupRequestProtocol) []kmsg.JoinGroupRequestProtocol {
	out := make([]kmsg.JoinGroupRequestProtocol, len(in))
	for i, p := range in {
		out[i] = kmsg.JoinGroupRequestProtocol{Name: p.Name, Metadata: slices.Clone(p.Metadata)}
	}
	return out
}

func ms(v int32) time.Duration { return time.Duration(v) * time.Millisecond }

func joinTimeouts(req *kmsg.JoinGroupRequest) (rebalance, session time.Duration) {
	session = ms(req.SessionTimeoutMillis)
	rebalance = session // v0 has no rebalance timeout; Kafka uses the session timeout
	if req.Version >= 1 {
		rebalance = ms(req.RebalanceTimeoutMillis)
	}
	return rebalance, session
}

// joinResponse is the JoinGroup response for m in the current
// generation; the leader's carries every member's metadata.
func (g *classicGroup) joinResponse(c *call, m *member, withMembers bool) *kmsg.JoinGroupResponse {
	resp := c.req.ResponseKind().(*kmsg.JoinGroupResponse)
	resp.Generation = g.generation
	resp.ProtocolType = kmsg.StringPtr(g.protocolType)
	resp.Protocol = kmsg.StringPtr(g.protocol)
	resp.LeaderID = g.leader
	resp.MemberID = m.id
	if withMembers {
		for _, id := range g.order {
			o := g.members[id]
			resp.Members = append(resp.Members, kmsg.JoinGroupResponseMember{
				MemberID:         o.id,
				InstanceID:       o.instanceID,
				ProtocolMetadata: o.metadataFor(g.protocol),
			})
		}
	}
	return resp
}

func joinError(c *call, memberID string, code int16) *kmsg.JoinGroupResponse {
	resp := c.req.ResponseKind().(*kmsg.JoinGroupResponse)
	resp.ErrorCode = code
	resp.MemberID = memberID
	return resp
}

func syncError(c *call, code int16) *kmsg.SyncGroupResponse {
	resp := c.req.ResponseKind().(*kmsg.SyncGroupResponse)
	resp.ErrorCode = code
	return resp
}

// join handles a JoinGroup whose group id and session timeout the
// caller has already checked.
func (g *classicGroup) join(now time.Time, c *call, fx *effects) {
	req := c.req.(*kmsg.JoinGroupRequest)
	if g.state == stateDead {
		fx.reply(c, joinError(c, req.MemberID, kerr.CoordinatorNotAvailable.Code))
		return
	}
	if !g.acceptJoining(req.MemberID) {
		if m := g.members[req.MemberID]; m != nil {
			g.removeMember(m, fx)
			g.maybeCompleteJoin(now, fx)
		}
		fx.reply(c, joinError(c, "", kerr.GroupMaxSizeReached.Code))
		return
	}
	if !g.supportsProtocols(req.ProtocolType, req.Protocols) {
		fx.reply(c, joinError(c, req.MemberID, kerr.InconsistentGroupProtocol.Code))
		return
	}
	if req.MemberID == "" {
		g.joinUnknown(now, c, req, fx)
	} else {
		g.joinKnown(now, c, req, fx)
	}
}

// acceptJoining is Kafka's group.max.size rule. A group Empty or Dead
// takes anyone; while preparing, members already waiting are kept and
// others come in while fewer than the maximum wait, which lets a lowered
// limit shed the last rejoiners. Members the group told
// MEMBER_ID_REQUIRED count against the limit too, so that map stays
// bounded.
func (g *classicGroup) acceptJoining(memberID string) bool {
	max := g.env.opts.MaxGroupSize
	if memberID == "" && len(g.pending) >= max {
		return false
	}
	if _, ok := g.pending[memberID]; ok && memberID != "" {
		memberID = "" // a pending member joins as a new one
	}
	m := g.members[memberID]
	switch g.state {
	case statePreparingRebalance:
		if m != nil && m.join != nil {
			return true
		}
		n := 0
		for _, o := range g.members {
			if o.join != nil {
				n++
			}
		}
		return n < max
	case stateCompletingRebalance, stateStable:
		return m != nil || len(g.members) < max
	default:
		return true
	}
}

func (g *classicGroup) joinUnknown(now time.Time, c *call, req *kmsg.JoinGroupRequest, fx *effects) {
	newID := g.newMemberID(req.InstanceID, c.client.ID)
	if req.InstanceID != nil {
		if old, ok := g.static[*req.InstanceID]; ok && g.members[old] != nil {
			g.replaceStatic(now, c, req, g.members[old], newID, fx)
			return
		}
	}
	// KIP-394: a dynamic member first learns its id, then joins with it,
	// so a client that dies between the two never becomes a member.
	if req.Version >= 4 && req.InstanceID == nil {
		_, session := joinTimeouts(req)
		g.pending[newID] = now.Add(session)
		fx.reply(c, joinError(c, newID, kerr.MemberIDRequired.Code))
		return
	}
	g.addMember(now, c, req, newID, fx)
}

func (g *classicGroup) joinKnown(now time.Time, c *call, req *kmsg.JoinGroupRequest, fx *effects) {
	if _, ok := g.pending[req.MemberID]; ok && req.InstanceID == nil {
		g.addMember(now, c, req, req.MemberID, fx)
		return
	}
	if code := g.validateMember(req.MemberID, req.InstanceID); code != 0 {
		fx.reply(c, joinError(c, req.MemberID, code))
		return
	}
	m := g.members[req.MemberID]
	switch g.state {
	case statePreparingRebalance:
		g.updateMember(now, m, c, req, fx)
		g.maybeCompleteJoin(now, fx)
	case stateCompletingRebalance:
		if m.matches(req.Protocols) {
			// The member lost its JoinGroup response; repeat it.
			m.expires = now.Add(m.sessionTimeout)
			fx.reply(c, g.joinResponse(c, m, m.id == g.leader))
			return
		}
		g.updateMember(now, m, c, req, fx)
		g.prepareRebalance(now, fx)
	case stateStable:
		// The leader rejoining forces a rebalance: that is how it asks
		// for one when topic metadata changed.
		if m.id == g.leader || !m.matches(req.Protocols) {
			g.updateMember(now, m, c, req, fx)
			g.prepareRebalance(now, fx)
			return
		}
		m.expires = now.Add(m.sessionTimeout)
		fx.reply(c, g.joinResponse(c, m, false))
	default:
		fx.reply(c, joinError(c, req.MemberID, kerr.UnknownMemberID.Code))
	}
}

// updateMember takes a known member's new JoinGroup and parks it.
func (g *classicGroup) updateMember(now time.Time, m *member, c *call, req *kmsg.JoinGroupRequest, fx *effects) {
	if m.join != nil && m.join != c {
		fx.reply(m.join, joinError(m.join, m.id, kerr.RebalanceInProgress.Code))
	}
	m.protocols = copyProtocols(req.Protocols)
	m.rebalanceTimeout, m.sessionTimeout = joinTimeouts(req)
	m.join = c
	m.expires = now.Add(m.sessionTimeout)
}

func (g *classicGroup) addMember(now time.Time, c *call, req *kmsg.JoinGroupRequest, id string, fx *effects) {
	delete(g.pending, id)
	rebalance, session := joinTimeouts(req)
	m := &member{
		id:               id,
		instanceID:       cloneStr(req.InstanceID),
		clientID:         c.client.ID,
		clientHost:       c.client.Host,
		rebalanceTimeout: rebalance,
		sessionTimeout:   session,
		protocols:        copyProtocols(req.Protocols),
		join:             c,
		expires:          now.Add(session),
	}
	if g.state == statePreparingRebalance && g.initialDelay {
		g.newMemberAdded = true
	}
	if len(g.members) == 0 {
		g.protocolType = req.ProtocolType
	}
	g.members[id] = m
	g.order = append(g.order, id)
	if g.leader == "" {
		g.leader = id
	}
	if m.instanceID != nil {
		g.static[*m.instanceID] = id
	}
	g.rebalanceOrCompleteJoin(now, fx)
}

func cloneStr(s *string) *string {
	if s == nil {
		return nil
	}
	v := *s
	return &v
}

// replaceStatic gives a static member that rejoined without its member
// id a new id in place of old (KIP-345). old is fenced. In a Stable
// group whose protocol would not change there is no rebalance: the
// member keeps its assignment once the new id is durable.
func (g *classicGroup) replaceStatic(now time.Time, c *call, req *kmsg.JoinGroupRequest, old *member, newID string, fx *effects) {
	if old.join != nil {
		fx.reply(old.join, joinError(old.join, old.id, kerr.FencedInstanceID.Code))
	}
	if old.sync != nil {
		fx.reply(old.sync, syncError(old.sync, kerr.FencedInstanceID.Code))
	}
	oldLeader := g.leader
	nm := *old
	nm.id = newID
	nm.join, nm.sync = nil, nil
	nm.clientID, nm.clientHost = c.client.ID, c.client.Host
	nm.protocols = copyProtocols(req.Protocols)
	nm.rebalanceTimeout, nm.sessionTimeout = joinTimeouts(req)
	nm.expires = now.Add(nm.sessionTimeout)
	old.join, old.sync = nil, nil
	g.swapMember(old, &nm)
	nm.join = c

	switch g.state {
	case stateStable:
		if g.selectProtocol() != g.protocol {
			g.prepareRebalance(now, fx)
			return
		}
		gen := g.generation
		fx.write(g.id, []Record{groupRecord(g, now, nil)}, func(now time.Time, err error, fx *effects) {
			if nm.join != c {
				return // a rebalance or a newer join answered it
			}
			nm.join = nil
			if err != nil {
				if g.members[nm.id] == &nm && g.generation == gen {
					old.expires = now.Add(old.sessionTimeout)
					g.swapMember(&nm, old)
				}
				resp := joinError(c, "", groupErrorCode(err))
				resp.Generation = g.generation
				resp.LeaderID = oldLeader
				fx.reply(c, resp)
				return
			}
			nm.expires = now.Add(nm.sessionTimeout)
			// KIP-814: from v9 the leader learns it leads but skips the
			// assignment, which a Stable group would not distribute.
			// Older leaders are told the old leader id so they act as
			// followers.
			if req.Version >= 9 {
				isLeader := g.leader == nm.id
				resp := g.joinResponse(c, &nm, isLeader)
				resp.SkipAssignment = isLeader
				fx.reply(c, resp)
				return
			}
			resp := g.joinResponse(c, &nm, false)
			resp.LeaderID = oldLeader
			fx.reply(c, resp)
		})
	case stateCompletingRebalance:
		// The leader may already be assigning to the old id.
		g.prepareRebalance(now, fx)
	case statePreparingRebalance:
		g.maybeCompleteJoin(now, fx)
	}
}

// swapMember puts to in from's place: same slot in join order, same
// static mapping, leadership and pending-sync status.
func (g *classicGroup) swapMember(from, to *member) {
	delete(g.members, from.id)
	g.members[to.id] = to
	if i := slices.Index(g.order, from.id); i >= 0 {
		g.order[i] = to.id
	}
	if to.instanceID != nil {
		g.static[*to.instanceID] = to.id
	}
	if g.leader == from.id {
		g.leader = to.id
	}
	if _, ok := g.pendingSync[from.id]; ok {
		delete(g.pendingSync, from.id)
		g.pendingSync[to.id] = struct{}{}
	}
}

// removeMember drops m, answering its parked calls with
// UNKNOWN_MEMBER_ID so a live client rejoins. It changes no state.
func (g *classicGroup) removeMember(m *member, fx *effects) {
	if m.join != nil {
		fx.reply(m.join, joinError(m.join, "", kerr.UnknownMemberID.Code))
		m.join = nil
	}
	if m.sync != nil {
		fx.reply(m.sync, syncError(m.sync, kerr.UnknownMemberID.Code))
		m.sync = nil
	}
	delete(g.members, m.id)
	if i := slices.Index(g.order, m.id); i >= 0 {
		g.order = slices.Delete(g.order, i, i+1)
	}
	if m.instanceID != nil && g.static[*m.instanceID] == m.id {
		delete(g.static, *m.instanceID)
	}
	delete(g.pendingSync, m.id)
	if g.leader == m.id {
		g.leader = ""
		if len(g.order) > 0 {
			g.leader = g.order[0]
		}
	}
}

// removeMemberAndUpdate removes m and moves the group on: a Stable or
// completing group rebalances, a preparing one may now be complete.
func (g *classicGroup) removeMemberAndUpdate(now time.Time, m *member, fx *effects) {
	g.removeMember(m, fx)
	switch g.state {
	case stateStable, stateCompletingRebalance:
		g.prepareRebalance(now, fx)
	case statePreparingRebalance:
		g.maybeCompleteJoin(now, fx)
	}
}

func (g *classicGroup) rebalanceOrCompleteJoin(now time.Time, fx *effects) {
	switch g.state {
	case stateEmpty, stateStable, stateCompletingRebalance:
		g.prepareRebalance(now, fx)
	case statePreparingRebalance:
		g.maybeCompleteJoin(now, fx)
	}
}

func (g *classicGroup) maybeCompleteJoin(now time.Time, fx *effects) {
	if g.state == statePreparingRebalance && !g.initialDelay && g.allJoined() {
		g.completeJoin(now, fx)
	}
}

// prepareRebalance starts a join phase.
func (g *classicGroup) prepareRebalance(now time.Time, fx *effects) {
	if g.state == stateCompletingRebalance {
		for _, id := range g.order {
			m := g.members[id]
			m.assignment = nil
			if m.sync != nil {
				fx.reply(m.sync, syncError(m.sync, kerr.RebalanceInProgress.Code))
				m.sync = nil
			}
		}
	}
	g.pendingSync = nil
	g.storing = false
	initial := g.state == stateEmpty
	g.setState(statePreparingRebalance, now)
	if initial {
		delay := g.env.opts.InitialRebalanceDelay
		if delay <= 0 {
			g.completeJoin(now, fx)
			return
		}
		g.initialDelay = true
		g.newMemberAdded = false
		g.initialStep = delay
		g.initialRemaining = max(g.rebalanceTimeout()-delay, 0)
		g.joinDeadline = now.Add(delay)
		return
	}
	g.initialDelay = false
	g.joinDeadline = now.Add(g.rebalanceTimeout())
	g.maybeCompleteJoin(now, fx)
}

// electJoinedLeader keeps the leader if it rejoined, else picks the first
// member that did. false: nobody rejoined.
func (g *classicGroup) electJoinedLeader() bool {
	if l := g.members[g.leader]; l != nil && l.join != nil {
		return true
	}
	for _, id := range g.order {
		if g.members[id].join != nil {
			g.leader = id
			return true
		}
	}
	return false
}

// completeJoin ends the join phase: members that did not rejoin are
// removed (static ones are kept, they may come back), the generation
// advances and every waiting member gets its JoinGroup response.
func (g *classicGroup) completeJoin(now time.Time, fx *effects) {
	if g.state != statePreparingRebalance {
		return
	}
	for _, id := range slices.Clone(g.order) {
		if m := g.members[id]; m.join == nil && m.instanceID == nil {
			g.removeMember(m, fx)
		}
	}
	g.initialDelay = false
	if len(g.members) > 0 && !g.electJoinedLeader() {
		// Only static members that have not rejoined remain: wait
		// another round for them or for their sessions to expire.
		g.joinDeadline = now.Add(g.rebalanceTimeout())
		return
	}
	g.generation++
	if len(g.members) == 0 {
		g.protocol = ""
		g.setState(stateEmpty, now)
		fx.write(g.id, []Record{groupRecord(g, now, nil)}, nil)
		return
	}
	g.protocol = g.selectProtocol()
	g.setState(stateCompletingRebalance, now)
	fx.event("group rebalanced", "group", g.id, "generation", g.generation, "members", len(g.members), "protocol", g.protocol)
	g.pendingSync = make(map[string]struct{}, len(g.members))
	for _, id := range g.order {
		m := g.members[id]
		g.pendingSync[id] = struct{}{}
		if m.join != nil {
			fx.reply(m.join, g.joinResponse(m.join, m, id == g.leader))
			m.join = nil
		}
		m.expires = now.Add(m.sessionTimeout)
	}
	g.syncDeadline = now.Add(g.rebalanceTimeout())
}

// sync handles a SyncGroup.
func (g *classicGroup) sync(now time.Time, c *call, fx *effects) {
	req := c.req.(*kmsg.SyncGroupRequest)
	fail := func(code int16) { fx.reply(c, syncError(c, code)) }
	if g.state == stateDead {
		fail(kerr.CoordinatorNotAvailable.Code)
		return
	}
	if code := g.validateMember(req.MemberID, req.InstanceID); code != 0 {
		fail(code)
		return
	}
	if req.Generation != g.generation {
		fail(kerr.IllegalGeneration.Code)
		return
	}
	if (req.ProtocolType != nil && *req.ProtocolType != g.protocolType) ||
		(req.Protocol != nil && *req.Protocol != g.protocol) {
		fail(kerr.InconsistentGroupProtocol.Code)
		return
	}
	m := g.members[req.MemberID]
	switch g.state {
	case statePreparingRebalance:
		fail(kerr.RebalanceInProgress.Code)
	case stateCompletingRebalance:
		if m.sync != nil && m.sync != c {
			fx.reply(m.sync, syncError(m.sync, kerr.RebalanceInProgress.Code))
		}
		m.sync = c
		delete(g.pendingSync, m.id)
		if m.id != g.leader || g.storing {
			return
		}
		assignment := make(map[string][]byte, len(g.members))
		for _, a := range req.GroupAssignment {
			if g.members[a.MemberID] != nil {
				assignment[a.MemberID] = a.MemberAssignment
			}
		}
		for id := range g.members {
			if assignment[id] == nil {
				assignment[id] = []byte{}
			}
		}
		g.storing = true
		gen := g.generation
		fx.write(g.id, []Record{groupRecord(g, now, assignment)}, func(now time.Time, err error, fx *effects) {
			g.assignmentStored(now, gen, assignment, err, fx)
		})
	case stateStable:
		delete(g.pendingSync, m.id)
		m.expires = now.Add(m.sessionTimeout)
		fx.reply(c, g.syncResponse(c, m))
	default:
		fail(kerr.UnknownMemberID.Code)
	}
}

func (g *classicGroup) syncResponse(c *call, m *member) *kmsg.SyncGroupResponse {
	resp := c.req.ResponseKind().(*kmsg.SyncGroupResponse)
	resp.ProtocolType = kmsg.StringPtr(g.protocolType)
	resp.Protocol = kmsg.StringPtr(g.protocol)
	resp.MemberAssignment = m.assignment
	if resp.MemberAssignment == nil {
		resp.MemberAssignment = []byte{}
	}
	return resp
}

// assignmentStored finishes the leader's SyncGroup once the group record
// is durable (or failed). A group that moved on since ignores it.
func (g *classicGroup) assignmentStored(now time.Time, gen int32, assignment map[string][]byte, err error, fx *effects) {
	if g.state != stateCompletingRebalance || g.generation != gen {
		return
	}
	g.storing = false
	if err != nil {
		code := groupErrorCode(err)
		for _, id := range g.order {
			if m := g.members[id]; m.sync != nil {
				fx.reply(m.sync, syncError(m.sync, code))
				m.sync = nil
			}
		}
		g.prepareRebalance(now, fx)
		return
	}
	for _, id := range g.order {
		m := g.members[id]
		m.assignment = assignment[id]
		if m.sync != nil {
			fx.reply(m.sync, g.syncResponse(m.sync, m))
			m.sync = nil
			m.expires = now.Add(m.sessionTimeout)
		}
	}
	g.setState(stateStable, now)
}

// heartbeat handles a Heartbeat and returns its error code.
func (g *classicGroup) heartbeat(now time.Time, req *kmsg.HeartbeatRequest) int16 {
	if g.state == stateDead {
		return kerr.CoordinatorNotAvailable.Code
	}
	if code := g.validateMember(req.MemberID, req.InstanceID); code != 0 {
		return code
	}
	if req.Generation != g.generation {
		return kerr.IllegalGeneration.Code
	}
	m := g.members[req.MemberID]
	switch g.state {
	case statePreparingRebalance:
		m.expires = now.Add(m.sessionTimeout)
		return kerr.RebalanceInProgress.Code
	case stateCompletingRebalance, stateStable:
		m.expires = now.Add(m.sessionTimeout)
		return 0
	default:
		return kerr.UnknownMemberID.Code
	}
}

// leave handles a LeaveGroup; v3+ may name several members.
func (g *classicGroup) leave(now time.Time, c *call, fx *effects) {
	req := c.req.(*kmsg.LeaveGroupRequest)
	resp := req.ResponseKind().(*kmsg.LeaveGroupResponse)
	if g.state == stateDead {
		resp.ErrorCode = kerr.CoordinatorNotAvailable.Code
		fx.reply(c, resp)
		return
	}
	identities := req.Members
	if req.Version < 3 {
		identities = []kmsg.LeaveGroupRequestMember{{MemberID: req.MemberID}}
	}
	var leaving []*member
	pendingLeft := false
	for _, id := range identities {
		r := kmsg.NewLeaveGroupResponseMember()
		r.MemberID, r.InstanceID = id.MemberID, id.InstanceID
		switch {
		case id.InstanceID != nil:
			m := g.members[g.static[*id.InstanceID]]
			switch {
			case m == nil:
				r.ErrorCode = kerr.UnknownMemberID.Code
			case id.MemberID != "" && id.MemberID != m.id:
				r.ErrorCode = kerr.FencedInstanceID.Code
			default:
				if !slices.Contains(leaving, m) {
					leaving = append(leaving, m)
				}
			}
		default:
			if _, ok := g.pending[id.MemberID]; ok {
				delete(g.pending, id.MemberID)
				pendingLeft = true
			} else if m := g.members[id.MemberID]; m != nil {
				if !slices.Contains(leaving, m) {
					leaving = append(leaving, m)
				}
			} else {
				r.ErrorCode = kerr.UnknownMemberID.Code
			}
		}
		resp.Members = append(resp.Members, r)
	}
	if req.Version < 3 {
		resp.ErrorCode = resp.Members[0].ErrorCode
		resp.Members = nil
	}
	fx.reply(c, resp)
	for _, m := range leaving {
		g.removeMember(m, fx)
	}
	if len(leaving) > 0 {
		g.rebalanceOrCompleteJoin(now, fx)
	} else if pendingLeft {
		g.maybeCompleteJoin(now, fx)
	}
}

// validateCommit checks an OffsetCommit (txn false) or TxnOffsetCommit
// against the group, as Kafka's ClassicGroup.validateOffsetCommit; a
// valid member's session is renewed. A transactional commit naming no
// member is accepted in any state (older transactional clients send no
// member), and one from a member is not refused while the group
// completes a rebalance.
func (g *classicGroup) validateCommit(now time.Time, generation int32, memberID string, instanceID *string, txn bool) int16 {
	if g.state == stateDead {
		return kerr.CoordinatorNotAvailable.Code
	}
	// Generation -1 is an admin client or a consumer outside group
	// management: it may commit while the group has no members.
	if generation < 0 && g.state == stateEmpty {
		return 0
	}
	if generation >= 0 || memberID != "" || instanceID != nil {
		if code := g.validateMember(memberID, instanceID); code != 0 {
			return code
		}
		if generation != g.generation {
			return kerr.IllegalGeneration.Code
		}
	} else if !txn && g.state != stateEmpty {
		return kerr.UnknownMemberID.Code
	}
	if !txn && g.state == stateCompletingRebalance {
		return kerr.RebalanceInProgress.Code
	}
	if m := g.members[memberID]; m != nil {
		m.expires = now.Add(m.sessionTimeout)
	}
	return 0
}

// tick runs what is due at now: expired pending members and sessions,
// the end of a join phase, members that never synced.
func (g *classicGroup) tick(now time.Time, fx *effects) {
	pendingExpired := false
	for id, dl := range g.pending {
		if !now.Before(dl) {
			delete(g.pending, id)
			pendingExpired = true
		}
	}
	for _, id := range slices.Clone(g.order) {
		if m := g.members[id]; m != nil && !m.parked() && !now.Before(m.expires) {
			g.removeMemberAndUpdate(now, m, fx)
		}
	}
	if g.state == statePreparingRebalance && !now.Before(g.joinDeadline) {
		if g.initialDelay && g.newMemberAdded && g.initialRemaining > 0 {
			// Members keep arriving: wait one more step, within the
			// rebalance timeout.
			g.newMemberAdded = false
			step := min(g.initialStep, g.initialRemaining)
			g.initialRemaining = max(g.initialRemaining-g.initialStep, 0)
			g.initialStep = step
			g.joinDeadline = now.Add(step)
		} else {
			g.completeJoin(now, fx)
		}
	}
	if (g.state == stateCompletingRebalance || g.state == stateStable) &&
		len(g.pendingSync) > 0 && !now.Before(g.syncDeadline) {
		for _, id := range slices.Clone(g.order) {
			if _, ok := g.pendingSync[id]; ok {
				g.removeMember(g.members[id], fx)
			}
		}
		g.prepareRebalance(now, fx)
	}
	if pendingExpired {
		g.maybeCompleteJoin(now, fx)
	}
}

// deadline is the earliest time tick has work, zero if none.
func (g *classicGroup) deadline() time.Time {
	var d time.Time
	earliest := func(t time.Time) {
		if !t.IsZero() && (d.IsZero() || t.Before(d)) {
			d = t
		}
	}
	for _, t := range g.pending {
		earliest(t)
	}
	for _, m := range g.members {
		if !m.parked() {
			earliest(m.expires)
		}
	}
	switch g.state {
	case statePreparingRebalance:
		earliest(g.joinDeadline)
	case stateCompletingRebalance, stateStable:
		if len(g.pendingSync) > 0 {
			earliest(g.syncDeadline)
		}
	}
	return d
}

// abort answers every parked call with code; the coordinator is closing.
func (g *classicGroup) abort(code int16, fx *effects) {
	for _, id := range g.order {
		m := g.members[id]
		if m.join != nil {
			fx.reply(m.join, joinError(m.join, m.id, code))
			m.join = nil
		}
		if m.sync != nil {
			fx.reply(m.sync, syncError(m.sync, code))
			m.sync = nil
		}
	}
}

// subscribedTopics parses the members' consumer-protocol metadata. ok is
// false when the group is not a "consumer" group or a member's metadata
// does not parse; Kafka then treats every topic as subscribed.
func (g *classicGroup) subscribedTopics() (topics map[string]struct{}, ok bool) {
	if g.protocolType != "consumer" {
		return nil, false
	}
	topics = make(map[string]struct{})
	for _, m := range g.members {
		var md kmsg.ConsumerMemberMetadata
		if err := md.ReadFrom(m.metadataFor(g.protocol)); err != nil {
			return nil, false
		}
		for _, t := range md.Topics {
			topics[t] = struct{}{}
		}
	}
	return topics, true
}
