package consumer

import (
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// reconcile moves m one step towards its target assignment, as Kafka's
// CurrentAssignmentBuilder. owned is what the member reported owning (nil:
// unchanged since its last heartbeat, so it may still own everything).
func (g *Group) reconcile(now time.Time, m *member, owned []kmsg.ConsumerGroupHeartbeatRequestTopic) {
	if m.state == stateStable && m.epoch == g.targetEpoch {
		return
	}
	switch m.state {
	case stateUnrevoked:
		if ownsAny(owned, m.revoking) {
			return
		}
		g.nextAssignment(now, m, min(m.epoch+1, g.targetEpoch), owned)
	default:
		g.nextAssignment(now, m, m.epoch, owned)
	}
}

// ownsAny reports whether the member still owns one of the partitions in
// a; with no report (nil) it must be assumed to.
func ownsAny(owned []kmsg.ConsumerGroupHeartbeatRequestTopic, a assignment) bool {
	if owned == nil {
		return len(a) > 0
	}
	for _, t := range owned {
		for _, p := range t.Partitions {
			if a.has(t.TopicID, p) {
				return true
			}
		}
	}
	return false
}

// nextAssignment is Kafka's CurrentAssignmentBuilder.computeNextAssignment:
//
//	assigned   = current ∩ target
//	revoking   = current − target
//	pending    = target − assigned − partitions another member still holds
//
// If the member still owns partitions to revoke it stays at epoch with the
// smaller assignment and must revoke them first. Otherwise it moves to the
// target epoch and gets the pending partitions now; it waits in
// stateUnreleased for those other members still hold.
func (g *Group) nextAssignment(now time.Time, m *member, epoch int32, owned []kmsg.ConsumerGroupHeartbeatRequestTopic) {
	target := g.target[m.id]
	assigned, revoking, pending := assignment{}, assignment{}, assignment{}
	unreleased := false
	for id, ps := range m.assigned {
		for _, p := range ps {
			if target.has(id, p) {
				assigned.add(id, p)
			} else {
				revoking.add(id, p)
			}
		}
	}
	for id, ps := range target {
		for _, p := range ps {
			if assigned.has(id, p) {
				continue
			}
			if o, held := g.owners[tp{id, p}]; held && o != m.id {
				unreleased = true
				continue
			}
			pending.add(id, p)
		}
	}
	old := *m
	g.release(m)
	switch {
	case len(revoking) > 0 && ownsAny(owned, revoking):
		m.state = stateUnrevoked
		m.prevEpoch, m.epoch = m.epoch, epoch
		m.assigned, m.revoking = assigned, revoking
	default:
		for id, ps := range pending {
			for _, p := range ps {
				assigned.add(id, p)
			}
		}
		m.state = stateStable
		if unreleased {
			m.state = stateUnreleased
		}
		m.prevEpoch, m.epoch = m.epoch, g.targetEpoch
		m.assigned, m.revoking = assigned, assignment{}
	}
	g.own(m)
	changed := m.state != old.state || m.epoch != old.epoch || m.prevEpoch != old.prevEpoch ||
		!m.assigned.equal(old.assigned) || !m.revoking.equal(old.revoking)
	if !changed {
		return
	}
	g.dirtyCurrent[m.id] = true
	// Kafka (re)starts the rebalance timeout whenever a member that must
	// revoke changes, and cancels it once it has nothing to revoke.
	if m.state == stateUnrevoked {
		m.revokeDeadline = now.Add(m.rebalanceTimeout)
	} else {
		m.revokeDeadline = time.Time{}
	}
}

// release forgets m's ownership of what it is assigned and revoking.
func (g *Group) release(m *member) {
	for _, a := range []assignment{m.assigned, m.revoking} {
		for id, ps := range a {
			for _, p := range ps {
				if g.owners[tp{id, p}] == m.id {
					delete(g.owners, tp{id, p})
				}
			}
		}
	}
}

// own records m as the holder of what it is assigned and revoking. The
// reconciliation never gives a member a partition another one holds, so
// a conflict means the state is broken; the first holder is kept.
func (g *Group) own(m *member) {
	for _, a := range []assignment{m.assigned, m.revoking} {
		for id, ps := range a {
			for _, p := range ps {
				if _, held := g.owners[tp{id, p}]; !held {
					g.owners[tp{id, p}] = m.id
				}
			}
		}
	}
}

// removeMember drops m and queues the tombstones of its records, current
// assignment first and metadata last, as Kafka orders them.
func (g *Group) removeMember(m *member) {
	g.release(m)
	delete(g.members, m.id)
	delete(g.target, m.id)
	if m.instanceID != nil && g.static[*m.instanceID] == m.id {
		delete(g.static, *m.instanceID)
	}
	delete(g.dirtyMeta, m.id)
	delete(g.dirtyTarget, m.id)
	delete(g.dirtyCurrent, m.id)
	g.out = append(g.out,
		Record{Key: memberKey(keyCurrent, g.id, m.id)},
		Record{Key: memberKey(keyTarget, g.id, m.id)},
		Record{Key: memberKey(keyMember, g.id, m.id)},
	)
}

// bump advances the group epoch and computes the target assignment at it.
func (g *Group) bump() {
	g.epoch++
	g.computeTarget()
	g.dirtyGroup = true
}

// computeTarget runs the group's assignor over the members' subscriptions
// resolved against subMeta, and records which member targets changed.
func (g *Group) computeTarget() {
	in := assignInput{}
	for _, t := range g.subMeta {
		in.topics = append(in.topics, t)
	}
	slices.SortFunc(in.topics, func(a, b TopicInfo) int {
		if a.Name < b.Name {
			return -1
		}
		if a.Name > b.Name {
			return 1
		}
		return 0
	})
	for _, id := range g.memberIDs() {
		m := g.members[id]
		am := assignMember{id: id, key: id, topics: map[string]bool{}, prev: g.target[id]}
		if m.instanceID != nil {
			am.key = *m.instanceID
		}
		for _, t := range g.memberTopics(m) {
			if _, ok := g.subMeta[t]; ok {
				am.topics[t] = true
			}
		}
		in.members = append(in.members, am)
	}
	next := runAssignor(g.assignor(), in)
	for id, a := range next {
		if !a.equal(g.target[id]) {
			g.target[id] = a
			g.dirtyTarget[id] = true
		}
	}
	g.targetEpoch = g.epoch
}

// memberTopics returns the topic names m subscribes to: its names and the
// cached matches of its regex.
func (g *Group) memberTopics(m *member) []string {
	if m.regex == "" {
		return m.topics
	}
	return append(slices.Clone(m.topics), g.regexTopics[m.regex]...)
}

// refreshMeta resolves every subscription against topics and reports
// whether the metadata of the subscribed topics differs from subMeta, the
// metadata the target assignment was computed with. Topics.List is called
// only when a regex is not resolved yet.
func (g *Group) refreshMeta(topics Topics) bool {
	g.stale = false
	used := map[string]bool{}
	var all []TopicInfo
	for _, m := range g.members {
		if m.regex == "" || used[m.regex] {
			continue
		}
		used[m.regex] = true
		if _, ok := g.regexTopics[m.regex]; ok {
			continue
		}
		if all == nil {
			all = topics.List()
			if all == nil {
				all = []TopicInfo{}
			}
		}
		re := g.compiled(m.regex)
		matches := []string{}
		for _, t := range all {
			if re != nil && re.MatchString(t.Name) {
				matches = append(matches, t.Name)
			}
		}
		slices.Sort(matches)
		g.regexTopics[m.regex] = matches
	}
	for re := range g.regexTopics {
		if !used[re] {
			delete(g.regexTopics, re)
		}
	}
	for re := range g.regexCache {
		if !used[re] {
			delete(g.regexCache, re)
		}
	}
	next := map[string]TopicInfo{}
	for _, m := range g.members {
		for _, name := range g.memberTopics(m) {
			if _, done := next[name]; done {
				continue
			}
			if t, ok := topics.Topic(name); ok && t.Partitions > 0 {
				t.Name = name
				next[name] = t
			}
		}
	}
	changed := len(next) != len(g.subMeta)
	for name, t := range next {
		if old, ok := g.subMeta[name]; !ok || old != t {
			changed = true
		}
	}
	if changed {
		g.subMeta = next
		g.dirtyGroup = true
	}
	return changed
}

func (g *Group) metaStale() bool { return g.stale }

// flush returns the records queued by the current call: tombstones first,
// in the order members were removed, then the group record, then each
// changed member's metadata, target and current assignment.
func (g *Group) flush() []Record {
	out := g.out
	g.out = nil
	if g.dirtyGroup {
		out = append(out, Record{Key: groupKey(g.id), Value: g.encodeGroup()})
		g.dirtyGroup = false
	}
	ids := make([]string, 0, len(g.dirtyMeta)+len(g.dirtyTarget)+len(g.dirtyCurrent))
	for _, d := range []map[string]bool{g.dirtyMeta, g.dirtyTarget, g.dirtyCurrent} {
		for id := range d {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	ids = slices.Compact(ids)
	for _, id := range ids {
		m := g.members[id]
		if m == nil {
			continue
		}
		if g.dirtyMeta[id] {
			out = append(out, Record{Key: memberKey(keyMember, g.id, id), Value: encodeMember(m)})
		}
		if g.dirtyTarget[id] {
			out = append(out, Record{Key: memberKey(keyTarget, g.id, id), Value: encodeTarget(g.target[id])})
		}
		if g.dirtyCurrent[id] {
			out = append(out, Record{Key: memberKey(keyCurrent, g.id, id), Value: encodeCurrent(m)})
		}
	}
	clear(g.dirtyMeta)
	clear(g.dirtyTarget)
	clear(g.dirtyCurrent)
	return out
}

// discardPending drops queued records. Only used when a request fails
// validation after nothing was changed.
func (g *Group) discardPending() {
	g.out = nil
	g.dirtyGroup = false
	clear(g.dirtyMeta)
	clear(g.dirtyTarget)
	clear(g.dirtyCurrent)
}

// settle rebuilds what Replay does not restore directly: members whose
// metadata record never arrived are dropped, targets of unknown members
// too, and the static-member and partition-owner indexes are rebuilt.
func (g *Group) settle() {
	if !g.replayed {
		return
	}
	g.replayed = false
	for id, m := range g.members {
		if !m.hasMeta {
			delete(g.members, id)
		}
	}
	for id := range g.target {
		if g.members[id] == nil {
			delete(g.target, id)
		}
	}
	clear(g.static)
	clear(g.owners)
	for _, id := range g.memberIDs() {
		m := g.members[id]
		if m.instanceID != nil {
			g.static[*m.instanceID] = id
		}
		g.own(m)
	}
	clear(g.regexTopics)
	g.stale = true
	g.unarmed = true
}
