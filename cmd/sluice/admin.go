package main

import (
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/sluice-io/sluice/internal/admin"
	"github.com/sluice-io/sluice/internal/broker"
	"github.com/sluice-io/sluice/internal/server"
	"github.com/sluice-io/sluice/internal/storage"
)

// errRecovering is /readyz's answer before the broker exists: broker.New
// is recovering the logs.
var errRecovering = errors.New("recovering the logs")

// adminSource is the admin listener's and the metrics' view of the
// broker. The listener starts before recovery, so the broker is set once
// broker.New returns; until then the source reports not ready and no
// topics.
type adminSource struct {
	b      atomic.Pointer[broker.Broker]
	config []admin.ConfigEntry
}

func (s *adminSource) Ready() error {
	b := s.b.Load()
	if b == nil {
		return errRecovering
	}
	return b.Ready()
}

func (s *adminSource) Topics() []admin.Topic {
	b := s.b.Load()
	if b == nil {
		return nil
	}
	ts := b.Topics()
	out := make([]admin.Topic, len(ts))
	for i, t := range ts {
		out[i] = admin.Topic{Name: t.Name, ID: t.ID, Internal: t.Internal, Partitions: make([]admin.Partition, len(t.Partitions))}
		for j, p := range t.Partitions {
			out[i].Partitions[j] = admin.Partition{Partition: p.Partition, LogStart: p.LogStart, HighWatermark: p.HighWatermark,
				LastStable: p.LastStable, SizeBytes: p.SizeBytes, Segments: p.Segments}
		}
	}
	return out
}

func (s *adminSource) Groups() []admin.Group {
	b := s.b.Load()
	if b == nil {
		return nil
	}
	gs := b.GroupsStatus()
	out := make([]admin.Group, len(gs))
	for i, g := range gs {
		out[i] = admin.Group{ID: g.ID, Type: g.Type, State: g.State, ProtocolType: g.ProtocolType, Protocol: g.Protocol,
			Generation: g.Generation, Members: g.Members, MemberList: make([]admin.Member, len(g.MemberList)),
			Lag: make([]admin.PartitionLag, len(g.Lag))}
		for j, m := range g.MemberList {
			am := admin.Member{ID: m.ID, InstanceID: m.InstanceID, ClientID: m.ClientID, Host: m.Host}
			for _, a := range m.Assigned {
				am.Assignments = append(am.Assignments, admin.Assignment{Topic: a.Topic, Partitions: a.Partitions})
			}
			out[i].MemberList[j] = am
		}
		for j, l := range g.Lag {
			out[i].Lag[j] = admin.PartitionLag{Topic: l.Topic, Partition: l.Partition, Committed: l.Committed, End: l.End, Lag: l.Lag}
		}
	}
	return out
}

// TopicConfigs lists a topic's effective configs. The admin API names a
// value set on the topic TOPIC_CONFIG; Kafka's DescribeConfigs says
// DYNAMIC_TOPIC_CONFIG for the same thing.
func (s *adminSource) TopicConfigs(topic string) ([]admin.ConfigEntry, bool) {
	b := s.b.Load()
	if b == nil {
		return nil, false
	}
	cs, ok := b.TopicConfigs(topic)
	if !ok {
		return nil, false
	}
	out := make([]admin.ConfigEntry, len(cs))
	for i, c := range cs {
		src := c.Source
		if src == "DYNAMIC_TOPIC_CONFIG" {
			src = "TOPIC_CONFIG"
		}
		out[i] = admin.ConfigEntry{Name: c.Name, Value: c.Value, Source: src}
	}
	return out, true
}

// Records reads committed records through broker.Browse.
func (s *adminSource) Records(topic string, partition int32, offset int64, limit int) (admin.RecordPage, error) {
	b := s.b.Load()
	if b == nil {
		return admin.RecordPage{}, fmt.Errorf("%w %q: %w", admin.ErrUnknownTopic, topic, errRecovering)
	}
	res, err := b.Browse(topic, partition, offset, limit)
	if errors.Is(err, broker.ErrUnknownTopicOrPartition) {
		// The broker has one error for both; the API tells them apart.
		if _, ok := b.TopicConfigs(topic); !ok {
			return admin.RecordPage{}, fmt.Errorf("%w %q", admin.ErrUnknownTopic, topic)
		}
		return admin.RecordPage{}, fmt.Errorf("%w %d of %q", admin.ErrUnknownPartition, partition, topic)
	}
	if err != nil {
		return admin.RecordPage{}, err
	}
	out := admin.RecordPage{LogStart: res.LogStart, HighWatermark: res.HighWatermark, Records: make([]admin.Record, len(res.Records))}
	for i, r := range res.Records {
		ar := admin.Record{Offset: r.Offset, TimestampMs: r.TimestampMs, Key: r.Key, Value: r.Value,
			KeySize: r.KeySize, ValueSize: r.ValueSize, Truncated: r.Truncated, Headers: make([]admin.RecordHeader, len(r.Headers))}
		for j, h := range r.Headers {
			ar.Headers[j] = admin.RecordHeader{Key: h.Key, Value: h.Value}
		}
		out.Records[i] = ar
	}
	return out, nil
}

// Config lists every configuration key; none holds a secret yet.
func (s *adminSource) Config() []admin.ConfigEntry { return s.config }

func (s *adminSource) serverStats() server.Stats {
	if b := s.b.Load(); b != nil {
		return b.Server().Stats()
	}
	return server.Stats{}
}

func (s *adminSource) storageStats() storage.Stats {
	if b := s.b.Load(); b != nil {
		return b.Engine().Stats()
	}
	return storage.Stats{}
}
