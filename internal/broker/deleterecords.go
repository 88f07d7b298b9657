package broker

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/internal/server"
)

// handleDeleteRecords moves log start offsets forward (offset -1 means the
// high watermark). Each change is durable (through the WAL) before the
// answer; the segments wholly below are deleted by retention.
func (b *Broker) handleDeleteRecords(ctx context.Context, r *server.Request) server.Pending {
	req := r.Body.(*kmsg.DeleteRecordsRequest)
	resp := req.ResponseKind().(*kmsg.DeleteRecordsResponse)
	for _, rt := range req.Topics {
		st := b.topic(rt.Topic)
		ot := kmsg.NewDeleteRecordsResponseTopic()
		ot.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			op := kmsg.NewDeleteRecordsResponseTopicPartition()
			op.Partition = rp.Partition
			op.LowWatermark = -1
			p := st.partition(rp.Partition)
			if p == nil {
				op.ErrorCode = errorCode(errUnknownTopic)
			} else if st.cfg.NoDelete {
				// Kafka: deleting records needs the delete policy.
				op.ErrorCode = errorCode(errPolicyViolation)
			} else if low, err := b.eng.DeleteRecords(ctx, p, rp.Offset); err != nil {
				op.ErrorCode = errorCode(err)
			} else {
				op.LowWatermark = low
			}
			ot.Partitions = append(ot.Partitions, op)
		}
		resp.Topics = append(resp.Topics, ot)
	}
	return done(resp)
}
