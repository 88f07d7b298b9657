package broker

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/internal/server"
)

func (b *Broker) handleCreatePartitions(_ context.Context, r *server.Request) server.Pending {
	req := r.Body.(*kmsg.CreatePartitionsRequest)
	resp := req.ResponseKind().(*kmsg.CreatePartitionsResponse)
	count := map[string]int{}
	for _, rt := range req.Topics {
		count[rt.Topic]++
	}
	for _, rt := range req.Topics {
		ot := kmsg.NewCreatePartitionsResponseTopic()
		ot.Topic = rt.Topic
		var err error
		switch {
		case count[rt.Topic] > 1:
			err = fmt.Errorf("%w: topic %q listed twice", errDuplicateTopicInRequest, rt.Topic)
		default:
			err = b.checkAssignment(rt)
		}
		if err == nil {
			err = b.createPartitions(rt.Topic, rt.Count, req.ValidateOnly)
		}
		ot.ErrorCode = errorCode(err)
		ot.ErrorMessage = errorMessage(err)
		resp.Topics = append(resp.Topics, ot)
	}
	return done(resp)
}

// checkAssignment accepts only assignments of the new partitions to this
// broker.
func (b *Broker) checkAssignment(rt kmsg.CreatePartitionsRequestTopic) error {
	if rt.Assignment == nil {
		return nil
	}
	st := b.topic(rt.Topic)
	if st != nil && len(rt.Assignment) != int(rt.Count)-len(st.parts) {
		return fmt.Errorf("%w: %d assignments for %d new partitions", errInvalidReplicaAssignment, len(rt.Assignment), int(rt.Count)-len(st.parts))
	}
	for i, a := range rt.Assignment {
		if len(a.Replicas) != 1 || a.Replicas[0] != b.opts.NodeID {
			return fmt.Errorf("%w: new partition %d assigned to %v; this single-node cluster has only broker %d",
				errInvalidReplicaAssignment, i, a.Replicas, b.opts.NodeID)
		}
	}
	return nil
}
