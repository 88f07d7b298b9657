package group

import (
	"slices"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// The ListGroups types of classic and consumer-protocol groups.
const (
	groupType         = "classic"
	consumerGroupType = "consumer"
)

// deleteGroups handles a DeleteGroups: Empty groups are removed at once
// and answered once their tombstones are durable; a failed append puts
// the group back.
func (st *state) deleteGroups(c *call, req *kmsg.DeleteGroupsRequest, fx *effects) {
	resp := req.ResponseKind().(*kmsg.DeleteGroupsResponse)
	waiting := 0
	var deleted []*group
	for _, id := range req.Groups {
		rg := kmsg.NewDeleteGroupsResponseGroup()
		rg.Group = id
		g := st.groups[id]
		switch {
		case id == "":
			rg.ErrorCode = kerr.InvalidGroupID.Code
		case g == nil || (g.consumer == nil && g.classic.state == stateDead) || slicesContains(deleted, g):
			rg.ErrorCode = kerr.GroupIDNotFound.Code
		case g.consumer != nil:
			// A change not yet durable counts as members: the group
			// may be gaining one.
			if g.consumer.busy || g.consumer.g.Members() > 0 {
				rg.ErrorCode = kerr.NonEmptyGroup.Code
			} else {
				deleted = append(deleted, g)
			}
		case g.classic.state != stateEmpty || len(g.classic.pending) > 0:
			rg.ErrorCode = kerr.NonEmptyGroup.Code
		default:
			deleted = append(deleted, g)
		}
		resp.Groups = append(resp.Groups, rg)
	}
	if len(deleted) == 0 {
		fx.reply(c, resp)
		return
	}
	for _, g := range deleted {
		var recs []Record
		// Partitions with only pending transactional offsets get a
		// tombstone too, as Kafka's deleteAllOffsets: replayed, it
		// deletes them.
		for _, tp := range append(sortedOffsets(g), g.pendingOnly(nil)...) {
			recs = append(recs, offsetTombstone(g.id, tp.topic, tp.partition))
		}
		if g.consumer != nil {
			recs = append(recs, toRecords(g.consumer.g.Delete())...)
		} else {
			recs = append(recs, groupTombstone(g.id))
		}
		prev := g.classic.state
		g.classic.state = stateDead
		delete(st.groups, g.id)
		waiting++
		fx.write(g.id, recs, func(now time.Time, err error, fx *effects) {
			if err != nil {
				code := groupErrorCode(err)
				for i := range resp.Groups {
					if resp.Groups[i].Group == g.id && resp.Groups[i].ErrorCode == 0 {
						resp.Groups[i].ErrorCode = code
					}
				}
				if st.groups[g.id] == nil {
					g.classic.state = prev
					if g.consumer != nil {
						g.consumer.rebuild(st)
					}
					st.groups[g.id] = g
					st.touch(g)
				}
			}
			if waiting--; waiting == 0 {
				fx.reply(c, resp)
			}
		})
	}
}

func slicesContains(gs []*group, g *group) bool {
	for _, x := range gs {
		if x == g {
			return true
		}
	}
	return false
}

// describe handles a DescribeGroups. Member metadata and assignments are
// shown only for a Stable group, as Kafka does.
func (st *state) describe(req *kmsg.DescribeGroupsRequest) *kmsg.DescribeGroupsResponse {
	resp := req.ResponseKind().(*kmsg.DescribeGroupsResponse)
	for _, id := range req.Groups {
		rg := kmsg.NewDescribeGroupsResponseGroup()
		rg.Group = id
		g := st.groups[id]
		switch {
		case id == "":
			rg.ErrorCode = kerr.InvalidGroupID.Code
		case g == nil || g.consumer != nil:
			// Kafka 4 describes only classic groups here; a consumer
			// group is answered as missing, with a message from v6.
			rg.State = stateDead.String()
			if req.Version >= 6 {
				rg.ErrorCode = kerr.GroupIDNotFound.Code
				if g != nil {
					rg.ErrorMessage = kmsg.StringPtr("Group " + id + " is not a classic group.")
				}
			}
		default:
			cg := g.classic
			rg.State = cg.state.String()
			rg.ProtocolType = cg.protocolType
			stable := cg.state == stateStable
			if stable {
				rg.Protocol = cg.protocol
			}
			for _, mid := range cg.order {
				m := cg.members[mid]
				rm := kmsg.NewDescribeGroupsResponseGroupMember()
				rm.MemberID, rm.InstanceID = m.id, m.instanceID
				rm.ClientID, rm.ClientHost = m.clientID, m.clientHost
				if stable {
					rm.ProtocolMetadata = m.metadataFor(cg.protocol)
					rm.MemberAssignment = m.assignment
				}
				rg.Members = append(rg.Members, rm)
			}
		}
		if req.IncludeAuthorizedOperations {
			// No ACLs yet: everything a group allows (READ, DELETE,
			// DESCRIBE, as bits of Kafka's AclOperation codes).
			rg.AuthorizedOperations = 1<<3 | 1<<6 | 1<<8
		}
		resp.Groups = append(resp.Groups, rg)
	}
	return resp
}

// list handles a ListGroups; filters match case-insensitively, as Kafka's.
func (st *state) list(req *kmsg.ListGroupsRequest) *kmsg.ListGroupsResponse {
	resp := req.ResponseKind().(*kmsg.ListGroupsResponse)
	match := func(filter []string, v string) bool {
		if len(filter) == 0 {
			return true
		}
		for _, f := range filter {
			if strings.EqualFold(f, v) {
				return true
			}
		}
		return false
	}
	for _, g := range st.sortedGroups() {
		protocolType, state, typ := g.classic.protocolType, g.classic.state.String(), groupType
		if g.consumer != nil {
			protocolType, state, typ = "consumer", g.consumer.g.KafkaState(), consumerGroupType
		}
		if !match(req.StatesFilter, state) || !match(req.TypesFilter, typ) {
			continue
		}
		rg := kmsg.NewListGroupsResponseGroup()
		rg.Group, rg.ProtocolType = g.id, protocolType
		rg.GroupState, rg.GroupType = state, typ
		resp.Groups = append(resp.Groups, rg)
	}
	return resp
}

// GroupInfo summarises one group for the CLI, metrics and the admin
// listener. For a consumer-protocol group Type is "consumer", Protocol the
// server assignor and Generation the group epoch.
type GroupInfo struct {
	ID, ProtocolType, Protocol, State string
	Type                              string // "classic" or "consumer", as ListGroups
	Members                           int
	Generation                        int32
	// MemberList holds the members, sorted by id (len is Members).
	MemberList []MemberInfo
}

// MemberInfo is one member of a group as operators see it.
type MemberInfo struct {
	ID         string
	InstanceID string // static membership's group.instance.id; "" if none
	ClientID   string
	Host       string // the client's address as the broker saw it
	// Assigned is what the member owns now, sorted by topic with
	// partitions ascending. A classic member's assignment is decoded
	// only for protocol type "consumer" (ConsumerProtocolAssignment);
	// other protocol types and undecodable bytes give none.
	Assigned []TopicPartitions
}

// TopicPartitions is a set of partitions of one topic.
type TopicPartitions struct {
	Topic      string
	Partitions []int32
}

func (st *state) infos() []GroupInfo {
	out := make([]GroupInfo, 0, len(st.groups))
	for _, g := range st.sortedGroups() {
		if c := g.consumer; c != nil {
			d := c.g.Describe(st.env.ctopics(), false)
			gi := GroupInfo{
				ID: g.id, ProtocolType: "consumer", Protocol: d.AssignorName, State: c.g.KafkaState(), Type: consumerGroupType,
				Members: len(d.Members), Generation: d.Epoch, MemberList: make([]MemberInfo, 0, len(d.Members)),
			}
			for _, dm := range d.Members {
				mi := MemberInfo{ID: dm.MemberID, InstanceID: derefStr(dm.InstanceID)}
				// The heartbeat carries no client id or address to
				// the state machine; the coordinator remembers them.
				if cl, ok := c.clients[dm.MemberID]; ok {
					mi.ClientID, mi.Host = cl.ID, cl.Host
				}
				for _, tp := range dm.Assignment.TopicPartitions {
					// A topic deleted since it was assigned has no
					// name any more; there is nothing to show for it.
					if tp.Topic != "" {
						mi.Assigned = append(mi.Assigned, TopicPartitions{Topic: tp.Topic, Partitions: tp.Partitions})
					}
				}
				mi.Assigned = normalizeAssigned(mi.Assigned)
				gi.MemberList = append(gi.MemberList, mi)
			}
			slices.SortFunc(gi.MemberList, func(a, b MemberInfo) int { return strings.Compare(a.ID, b.ID) })
			out = append(out, gi)
			continue
		}
		cg := g.classic
		gi := GroupInfo{
			ID: g.id, ProtocolType: cg.protocolType, Protocol: cg.protocol, State: cg.state.String(), Type: groupType,
			Members: len(cg.members), Generation: cg.generation, MemberList: make([]MemberInfo, 0, len(cg.members)),
		}
		for _, m := range cg.members {
			mi := MemberInfo{ID: m.id, InstanceID: derefStr(m.instanceID), ClientID: m.clientID, Host: m.clientHost}
			if cg.protocolType == consumerGroupType {
				mi.Assigned = decodeConsumerAssignment(m.assignment)
			}
			gi.MemberList = append(gi.MemberList, mi)
		}
		slices.SortFunc(gi.MemberList, func(a, b MemberInfo) int { return strings.Compare(a.ID, b.ID) })
		out = append(out, gi)
	}
	return out
}

func derefStr(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// decodeConsumerAssignment reads a classic "consumer" member's assignment
// (Kafka's ConsumerProtocolAssignment, as the group leader wrote it). The
// bytes come from a client: anything that does not decode gives nil.
func decodeConsumerAssignment(b []byte) []TopicPartitions {
	if len(b) == 0 {
		return nil
	}
	var a kmsg.ConsumerMemberAssignment
	if err := a.ReadFrom(b); err != nil {
		return nil
	}
	out := make([]TopicPartitions, 0, len(a.Topics))
	for _, t := range a.Topics {
		out = append(out, TopicPartitions{Topic: t.Topic, Partitions: t.Partitions})
	}
	return normalizeAssigned(out)
}

// normalizeAssigned sorts by topic, merges a topic listed twice and sorts
// and deduplicates its partitions, on copies: the input may alias state.
func normalizeAssigned(in []TopicPartitions) []TopicPartitions {
	if len(in) == 0 {
		return nil
	}
	byTopic := make(map[string][]int32, len(in))
	for _, t := range in {
		byTopic[t.Topic] = append(byTopic[t.Topic], t.Partitions...)
	}
	out := make([]TopicPartitions, 0, len(byTopic))
	for topic, ps := range byTopic {
		ps = slices.Clone(ps)
		slices.Sort(ps)
		out = append(out, TopicPartitions{Topic: topic, Partitions: slices.Compact(ps)})
	}
	slices.SortFunc(out, func(a, b TopicPartitions) int { return strings.Compare(a.Topic, b.Topic) })
	return out
}

// apply replays one decoded offsets-log record; later records win. Only
// a consumer-protocol record can fail, when its value does not decode.
func (st *state) apply(d decoded, now time.Time) error {
	g := st.groups[d.group]
	switch d.kind {
	case kindConsumer:
		if g == nil {
			g = st.newGroup(d.group, now)
		}
		if g.consumer == nil {
			if d.rec.Value == nil {
				return nil // nothing of a consumer group to delete
			}
			// A later consumer group took the id over.
			g.classic = newClassicGroup(d.group, st.env, now)
			g.consumer = newConsumerGroup(d.group, st.env.opts.Consumer, now)
		}
		if err := g.consumer.g.Replay(asConsumer(d.rec)); err != nil {
			return err
		}
		g.consumer.remember([]Record{d.rec})
		g.consumer.loggedEpoch = g.consumer.g.Epoch() // a restart is no rebalance
	case kindOffset:
		if d.offset == nil {
			// A tombstone deletes pending transactional offsets
			// too, as Kafka's replay does.
			if g != nil {
				st.forgetOffset(g, d.topic, d.partition)
			}
			return nil
		}
		if g == nil {
			g = st.newGroup(d.group, now)
		}
		o := offset{offset: d.offset.Offset, leaderEpoch: -1, metadata: d.offset.Metadata,
			committed: time.UnixMilli(d.offset.CommitTimestamp), seq: d.seq}
		if d.offset.Version >= 3 {
			o.leaderEpoch = d.offset.LeaderEpoch
		}
		if d.txn {
			// Pending until a marker of the producer ends it.
			st.addPending(g, d.pid, topicPartition{d.topic, d.partition}, o)
			return nil
		}
		g.setOffset(d.topic, d.partition, o)
	case kindGroup:
		if g == nil {
			g = st.newGroup(d.group, now)
		}
		if g.consumer != nil {
			if d.meta == nil {
				return nil // the tombstone written when the group became a consumer group
			}
			g.consumer = nil // a later classic group took the id over
		}
		// A tombstone clears the membership; offsets have their own
		// tombstones.
		g.classic = newClassicGroup(d.group, st.env, now)
		if d.meta != nil {
			restoreClassic(g.classic, d.meta, now)
		}
	}
	return nil
}

// restoreClassic rebuilds a group from its last GroupMetadataValue: a
// group with members is Stable, their sessions starting now.
func restoreClassic(cg *classicGroup, v *kmsg.GroupMetadataValue, now time.Time) {
	cg.protocolType = v.ProtocolType
	cg.generation = v.Generation
	if v.Protocol != nil {
		cg.protocol = *v.Protocol
	}
	if v.Leader != nil {
		cg.leader = *v.Leader
	}
	if v.CurrentStateTimestamp >= 0 {
		cg.stateSince = time.UnixMilli(v.CurrentStateTimestamp)
	}
	for _, vm := range v.Members {
		if _, dup := cg.members[vm.MemberID]; dup || len(cg.members) >= cg.env.opts.MaxGroupSize {
			continue
		}
		m := &member{
			id:               vm.MemberID,
			instanceID:       cloneStr(vm.InstanceID),
			clientID:         vm.ClientID,
			clientHost:       vm.ClientHost,
			rebalanceTimeout: ms(vm.RebalanceTimeoutMillis),
			sessionTimeout:   ms(vm.SessionTimeoutMillis),
			protocols:        []kmsg.JoinGroupRequestProtocol{{Name: cg.protocol, Metadata: vm.Subscription}},
			assignment:       vm.Assignment,
		}
		if v.Version < 1 {
			m.rebalanceTimeout = m.sessionTimeout
		}
		m.expires = now.Add(m.sessionTimeout)
		cg.members[m.id] = m
		cg.order = append(cg.order, m.id)
		if m.instanceID != nil {
			cg.static[*m.instanceID] = m.id
		}
	}
	if len(cg.members) > 0 {
		cg.state = stateStable
		if cg.members[cg.leader] == nil {
			cg.leader = cg.order[0]
		}
	} else {
		cg.leader = ""
	}
}
