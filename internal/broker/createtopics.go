package broker

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/internal/server"
)

func (b *Broker) handleCreateTopics(_ context.Context, r *server.Request) server.Pending {
	req := r.Body.(*kmsg.CreateTopicsRequest)
	resp := req.ResponseKind().(*kmsg.CreateTopicsResponse)
	count := map[string]int{}
	for _, rt := range req.Topics {
		count[rt.Topic]++
	}
	for _, rt := range req.Topics {
		ot := kmsg.NewCreateTopicsResponseTopic()
		ot.Topic = rt.Topic
		st, err := b.createOne(rt, req.ValidateOnly, count[rt.Topic] > 1)
		if err != nil {
			ot.ErrorCode = errorCode(err)
			ot.ErrorMessage = errorMessage(err)
			ot.NumPartitions, ot.ReplicationFactor = -1, -1
			resp.Topics = append(resp.Topics, ot)
			continue
		}
		ot.TopicID = st.id
		ot.NumPartitions = int32(len(st.parts))
		ot.ReplicationFactor = 1
		for _, e := range b.topicConfigEntries(st) {
			c := kmsg.NewCreateTopicsResponseTopicConfig()
			c.Name, c.Value, c.ReadOnly, c.Source = e.name, &e.value, e.readOnly, int8(e.source)
			ot.Configs = append(ot.Configs, c)
		}
		resp.Topics = append(resp.Topics, ot)
	}
	return done(resp)
}

func (b *Broker) createOne(rt kmsg.CreateTopicsRequestTopic, validateOnly, duplicate bool) (*topicState, error) {
	if duplicate {
		return nil, fmt.Errorf("%w: topic %q listed twice", errDuplicateTopicInRequest, rt.Topic)
	}
	n := rt.NumPartitions
	switch {
	case len(rt.ReplicaAssignment) > 0:
		if n != -1 || rt.ReplicationFactor != -1 {
			return nil, fmt.Errorf("%w: give either a replica assignment or partitions and replication factor", errInvalidRequest)
		}
		for i, a := range rt.ReplicaAssignment {
			if a.Partition != int32(i) {
				return nil, fmt.Errorf("%w: assignments must list partitions 0 to %d in order", errInvalidReplicaAssignment, len(rt.ReplicaAssignment)-1)
			}
			if len(a.Replicas) != 1 || a.Replicas[0] != b.opts.NodeID {
				return nil, fmt.Errorf("%w: partition %d assigned to %v; this single-node cluster has only broker %d",
					errInvalidReplicaAssignment, a.Partition, a.Replicas, b.opts.NodeID)
			}
		}
		n = int32(len(rt.ReplicaAssignment))
	case rt.ReplicationFactor > 1:
		return nil, fmt.Errorf("%w: replication factor %d is larger than the 1 broker of this single-node cluster",
			errInvalidReplicationFactor, rt.ReplicationFactor)
	case rt.ReplicationFactor == 0 || rt.ReplicationFactor < -1:
		return nil, fmt.Errorf("%w: replication factor %d; must be 1 or -1 (the default)", errInvalidReplicationFactor, rt.ReplicationFactor)
	}
	if n == 0 || n < -1 {
		return nil, fmt.Errorf("%w: %d partitions; must be at least 1, or -1 for num.partitions", errInvalidPartitions, n)
	}
	configs, err := requestConfigs(len(rt.Configs), func(i int) (string, *string) { return rt.Configs[i].Name, rt.Configs[i].Value })
	if err != nil {
		return nil, err
	}
	if isInternal(rt.Topic) {
		if b.topic(rt.Topic) != nil {
			return nil, fmt.Errorf("%w: %q", errTopicExists, rt.Topic)
		}
		return nil, fmt.Errorf("%w: %s is an internal topic, created by the broker when a group first needs it", errInvalidRequest, rt.Topic)
	}
	return b.createTopic(rt.Topic, n, configs, validateOnly)
}
