package broker

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/internal/server"
)

// handleOffsetForLeaderEpoch answers with the end offset of the requested
// epoch. Every partition has had one leader epoch, 0, so epoch 0 (or any
// earlier one a client might think it saw) ends at the log end, and a
// later epoch is unknown (-1, -1).
func (b *Broker) handleOffsetForLeaderEpoch(_ context.Context, r *server.Request) server.Pending {
	req := r.Body.(*kmsg.OffsetForLeaderEpochRequest)
	resp := req.ResponseKind().(*kmsg.OffsetForLeaderEpochResponse)
	for _, rt := range req.Topics {
		st := b.topic(rt.Topic)
		ot := kmsg.NewOffsetForLeaderEpochResponseTopic()
		ot.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			op := kmsg.NewOffsetForLeaderEpochResponseTopicPartition()
			op.Partition = rp.Partition
			op.LeaderEpoch, op.EndOffset = -1, -1
			p := st.partition(rp.Partition)
			switch {
			case p == nil:
				op.ErrorCode = errorCode(errUnknownTopic)
			case req.Version >= 2 && rp.CurrentLeaderEpoch > leaderEpoch:
				op.ErrorCode = errorCode(errUnknownLeaderEpoch)
			case req.Version >= 2 && rp.CurrentLeaderEpoch != -1 && rp.CurrentLeaderEpoch < leaderEpoch:
				op.ErrorCode = errorCode(errFencedLeaderEpoch)
			case rp.LeaderEpoch <= leaderEpoch:
				_, end := p.Offsets()
				op.LeaderEpoch, op.EndOffset = leaderEpoch, end
			}
			ot.Partitions = append(ot.Partitions, op)
		}
		resp.Topics = append(resp.Topics, ot)
	}
	return done(resp)
}
