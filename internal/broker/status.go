package broker

import (
	"errors"
	"sort"
	"sync/atomic"

	"github.com/sluice-io/sluice/internal/topics"
)

// What operators see of a running broker (the admin listener's JSON API,
// readiness and metrics read these): snapshots taken on demand, so the
// data path pays nothing for them.

// Readiness errors.
var (
	ErrNotServing     = errors.New("broker: listener not open yet")
	ErrLoading        = errors.New("broker: consumer groups and transactions still loading")
	ErrStorageFailed  = errors.New("broker: storage failed; restart to recover")
	ErrBrokerStopping = errors.New("broker: stopping")
)

// status records the broker's progress for Ready.
type status struct {
	serving atomic.Bool
	loaded  atomic.Bool
}

// Ready reports nil once the broker is serving, its coordinators have
// loaded their state and its storage is writable; otherwise why not.
// Recovery of the logs happens in New, before there is a Broker to ask.
func (b *Broker) Ready() error {
	switch {
	case b.isClosing():
		return ErrBrokerStopping
	case !b.status.serving.Load():
		return ErrNotServing
	case !b.status.loaded.Load():
		return ErrLoading
	case b.eng.Stats().WAL.Failed:
		return ErrStorageFailed
	}
	return nil
}

// TopicStatus is one topic as operators see it.
type TopicStatus struct {
	Name       string
	ID         string
	Internal   bool
	Partitions []PartitionStatus
}

// PartitionStatus is one partition's offsets and size.
type PartitionStatus struct {
	Partition                           int32
	LogStart, HighWatermark, LastStable int64
	SizeBytes                           int64
	Segments                            int
}

// Topics returns every topic, sorted by name, with its partitions.
func (b *Broker) Topics() []TopicStatus {
	var out []TopicStatus
	for _, st := range b.allTopics() {
		ts := TopicStatus{Name: st.name, ID: topics.ID(st.id).String(), Internal: isInternal(st.name)}
		for i, p := range st.parts {
			logStart, end := p.Offsets()
			ts.Partitions = append(ts.Partitions, PartitionStatus{
				Partition: int32(i), LogStart: logStart, HighWatermark: end, LastStable: p.LastStableOffset(),
				SizeBytes: p.Size(), Segments: p.NumSegments(),
			})
		}
		out = append(out, ts)
	}
	return out
}

// GroupStatus is one consumer group with its members and lag.
type GroupStatus struct {
	ID, Type, State string
	// ProtocolType is the classic members' protocol type ("consumer",
	// "connect", ...), "consumer" for a KIP-848 group; Protocol the
	// assignor; Generation the generation, or the KIP-848 group epoch.
	ProtocolType, Protocol string
	Generation             int32
	Members                int
	MemberList             []MemberStatus // sorted by ID
	Lag                    []PartitionLag
}

// MemberStatus is one member of a group and what it is assigned (sorted
// by topic, partitions ascending; empty when the assignment is not a
// consumer one or does not decode).
type MemberStatus struct {
	ID, InstanceID, ClientID, Host string
	Assigned                       []TopicAssignment
}

// TopicAssignment is a member's partitions of one topic.
type TopicAssignment struct {
	Topic      string
	Partitions []int32
}

// PartitionLag is a group's committed offset on one partition against the
// partition's high watermark.
type PartitionLag struct {
	Topic               string
	Partition           int32
	Committed, End, Lag int64
}

// ConfigStatus is one effective topic config.
type ConfigStatus struct {
	Name, Value string
	// Source is Kafka's name for where the value comes from, as
	// DescribeConfigs reports it: DYNAMIC_TOPIC_CONFIG (set on the
	// topic), STATIC_BROKER_CONFIG or DEFAULT_CONFIG.
	Source string
}

// TopicConfigs returns every config of a topic with its effective value
// and source, sorted by name, as DescribeConfigs lists them; ok is false
// for an unknown topic.
func (b *Broker) TopicConfigs(name string) (configs []ConfigStatus, ok bool) {
	st := b.topic(name)
	if st == nil {
		return nil, false
	}
	entries := b.topicConfigEntries(st)
	out := make([]ConfigStatus, 0, len(entries))
	for _, e := range entries {
		out = append(out, ConfigStatus{Name: e.name, Value: e.value, Source: e.source.String()})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, true
}

// GroupsStatus returns every consumer group, sorted by id, with its
// members and its lag per committed partition.
func (b *Broker) GroupsStatus() []GroupStatus {
	infos := b.coord.Groups()
	sort.Slice(infos, func(i, j int) bool { return infos[i].ID < infos[j].ID })
	out := make([]GroupStatus, 0, len(infos))
	for _, g := range infos {
		gs := GroupStatus{ID: g.ID, Type: g.Type, State: g.State, ProtocolType: g.ProtocolType, Protocol: g.Protocol,
			Generation: g.Generation, Members: g.Members, MemberList: make([]MemberStatus, 0, len(g.MemberList))}
		for _, m := range g.MemberList {
			ms := MemberStatus{ID: m.ID, InstanceID: m.InstanceID, ClientID: m.ClientID, Host: m.Host}
			for _, a := range m.Assigned {
				ms.Assigned = append(ms.Assigned, TopicAssignment{Topic: a.Topic, Partitions: a.Partitions})
			}
			gs.MemberList = append(gs.MemberList, ms)
		}
		committed := b.coord.Committed(g.ID)
		names := make([]string, 0, len(committed))
		for t := range committed {
			names = append(names, t)
		}
		sort.Strings(names)
		for _, t := range names {
			st := b.topic(t)
			parts := make([]int32, 0, len(committed[t]))
			for p := range committed[t] {
				parts = append(parts, p)
			}
			sort.Slice(parts, func(i, j int) bool { return parts[i] < parts[j] })
			for _, p := range parts {
				pl := PartitionLag{Topic: t, Partition: p, Committed: committed[t][p], End: -1, Lag: -1}
				if part := st.partition(p); part != nil {
					_, pl.End = part.Offsets()
					pl.Lag = max(pl.End-pl.Committed, 0)
				}
				gs.Lag = append(gs.Lag, pl)
			}
		}
		out = append(out, gs)
	}
	return out
}
