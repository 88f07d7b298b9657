package broker

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/internal/server"
)

// handleMetadata answers Metadata. Unknown topics are created when
// auto.create.topics.enable is on and the request allows it (v4+; older
// versions always allow it), as Kafka does; they are created before the
// answer, so the client sees them at once.
func (b *Broker) handleMetadata(_ context.Context, r *server.Request) server.Pending {
	req := r.Body.(*kmsg.MetadataRequest)
	resp := req.ResponseKind().(*kmsg.MetadataResponse)
	resp.Brokers = []kmsg.MetadataResponseBroker{b.metadataBroker()}
	resp.ClusterID = &b.opts.ClusterID
	resp.ControllerID = b.opts.NodeID

	// v0: an empty list means every topic. v1+: null means every topic,
	// empty means none.
	all := req.Topics == nil || req.Version == 0 && len(req.Topics) == 0
	if all {
		for _, t := range b.allTopics() {
			resp.Topics = append(resp.Topics, b.metadataTopic(t, req.Version))
		}
		return done(resp)
	}
	autoCreate := !b.opts.DisableAutoCreateTopics && (req.Version < 4 || req.AllowAutoTopicCreation)
	seen := map[string]bool{}
	for _, rt := range req.Topics {
		if rt.Topic == nil {
			// By topic ID (v10+).
			t := b.topicByID(rt.TopicID)
			if t == nil {
				mt := kmsg.NewMetadataResponseTopic()
				mt.TopicID = rt.TopicID
				mt.ErrorCode = errorCode(errUnknownTopicID)
				resp.Topics = append(resp.Topics, mt)
				continue
			}
			resp.Topics = append(resp.Topics, b.metadataTopic(t, req.Version))
			continue
		}
		name := *rt.Topic
		if seen[name] {
			continue
		}
		seen[name] = true
		t := b.topic(name)
		if t == nil && autoCreate {
			var err error
			switch name {
			case offsetsTopic:
				t, err = b.ensureOffsetsTopic()
			case txnTopic:
				t, err = b.ensureTxnTopic()
			default:
				t, err = b.createTopic(name, -1, nil, false)
			}
			if err != nil && b.topic(name) == nil {
				mt := kmsg.NewMetadataResponseTopic()
				mt.Topic = &name
				mt.ErrorCode = errorCode(err)
				resp.Topics = append(resp.Topics, mt)
				continue
			}
			t = b.topic(name)
		}
		if t == nil {
			mt := kmsg.NewMetadataResponseTopic()
			mt.Topic = &name
			mt.ErrorCode = errorCode(errUnknownTopic)
			resp.Topics = append(resp.Topics, mt)
			continue
		}
		resp.Topics = append(resp.Topics, b.metadataTopic(t, req.Version))
	}
	return done(resp)
}

func (b *Broker) metadataBroker() kmsg.MetadataResponseBroker {
	mb := kmsg.NewMetadataResponseBroker()
	mb.NodeID = b.opts.NodeID
	mb.Host = b.adv.host
	mb.Port = b.adv.port
	return mb
}

func (b *Broker) metadataTopic(t *topicState, version int16) kmsg.MetadataResponseTopic {
	mt := kmsg.NewMetadataResponseTopic()
	name := t.name
	mt.Topic = &name
	mt.TopicID = t.id
	mt.IsInternal = isInternal(t.name)
	node := []int32{b.opts.NodeID}
	mt.Partitions = make([]kmsg.MetadataResponseTopicPartition, len(t.parts))
	for i := range t.parts {
		mp := kmsg.NewMetadataResponseTopicPartition()
		mp.Partition = int32(i)
		mp.Leader = b.opts.NodeID
		mp.LeaderEpoch = leaderEpoch
		mp.Replicas = node
		mp.ISR = node
		mp.OfflineReplicas = []int32{}
		mt.Partitions[i] = mp
	}
	return mt
}

// leaderEpoch is every partition's leader epoch: a single node never
// changes leaders.
const leaderEpoch = 0
