package main

import (
	"errors"
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
		out[i] = admin.Group{ID: g.ID, Type: g.Type, State: g.State, Members: g.Members, Lag: make([]admin.PartitionLag, len(g.Lag))}
		for j, l := range g.Lag {
			out[i].Lag[j] = admin.PartitionLag{Topic: l.Topic, Partition: l.Partition, Committed: l.Committed, End: l.End, Lag: l.Lag}
		}
	}
	return out
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
