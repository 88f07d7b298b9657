package broker

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/internal/server"
)

// Special timestamps of ListOffsets, and the request version each needs.
const (
	tsLatest          = -1 // the high watermark (the LSO under read_committed: the same here)
	tsEarliest        = -2 // the log start offset
	tsMaxTimestamp    = -3 // the record with the largest timestamp (KIP-734)
	tsEarliestLocal   = -4 // the local log start (KIP-405): the log start here
	tsLatestTiered    = -5 // the last tiered offset (KIP-1005): -1, nothing is tiered
	tsEarliestPending = -6 // the first offset not yet uploaded (KIP-1023): -1
)

var listOffsetsMinVersion = map[int64]int16{
	tsLatest: 1, tsEarliest: 1, tsMaxTimestamp: 7, tsEarliestLocal: 8, tsLatestTiered: 9, tsEarliestPending: 11,
}

func (b *Broker) handleListOffsets(_ context.Context, r *server.Request) server.Pending {
	req := r.Body.(*kmsg.ListOffsetsRequest)
	resp := req.ResponseKind().(*kmsg.ListOffsetsResponse)
	type tp struct {
		t string
		p int32
	}
	seen := map[tp]int{}
	for _, rt := range req.Topics {
		for _, rp := range rt.Partitions {
			seen[tp{rt.Topic, rp.Partition}]++
		}
	}
	for _, rt := range req.Topics {
		st := b.topic(rt.Topic)
		ot := kmsg.NewListOffsetsResponseTopic()
		ot.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			op := kmsg.NewListOffsetsResponseTopicPartition()
			op.Partition = rp.Partition
			err := b.listOffset(req.Version, req.IsolationLevel == 1, st, rp, &op)
			if req.Version >= 1 && seen[tp{rt.Topic, rp.Partition}] > 1 {
				err = fmt.Errorf("%w: partition listed twice", errInvalidRequest)
			}
			if err != nil {
				op.ErrorCode = errorCode(err)
				op.Offset, op.Timestamp, op.LeaderEpoch, op.OldStyleOffsets = -1, -1, -1, nil
			}
			ot.Partitions = append(ot.Partitions, op)
		}
		resp.Topics = append(resp.Topics, ot)
	}
	return done(resp)
}

func (b *Broker) listOffset(version int16, committed bool, st *topicState, rp kmsg.ListOffsetsRequestTopicPartition, op *kmsg.ListOffsetsResponseTopicPartition) error {
	if version >= 1 && rp.Timestamp < 0 {
		if v, ok := listOffsetsMinVersion[rp.Timestamp]; !ok || version < v {
			return fmt.Errorf("%w: timestamp %d at ListOffsets v%d", errUnsupportedVersion, rp.Timestamp, version)
		}
	}
	p := st.partition(rp.Partition)
	if p == nil {
		return errUnknownTopic
	}
	switch {
	case rp.CurrentLeaderEpoch > leaderEpoch:
		return errUnknownLeaderEpoch
	case rp.CurrentLeaderEpoch != -1 && rp.CurrentLeaderEpoch < leaderEpoch:
		return errFencedLeaderEpoch
	}
	logStart, end := p.Offsets()
	op.LeaderEpoch = leaderEpoch
	op.Timestamp = -1
	var offset int64
	switch rp.Timestamp {
	case tsLatest:
		offset = end
		if committed {
			// read_committed consumers start from the last stable
			// offset: nothing of an open transaction is theirs yet.
			offset = p.LastStableOffset()
		}
	case tsEarliest, tsEarliestLocal:
		offset = logStart
	case tsLatestTiered, tsEarliestPending:
		offset, op.LeaderEpoch = -1, -1
	case tsMaxTimestamp:
		o, ts, ok, err := p.MaxTimestamp()
		if err != nil {
			return err
		}
		offset = -1
		if ok {
			offset, op.Timestamp = o, ts
		} else {
			op.LeaderEpoch = -1
		}
	default:
		o, ts, ok, err := p.OffsetForTimestamp(rp.Timestamp)
		if err != nil {
			return err
		}
		if !ok || o >= end {
			// No record at or after the timestamp: Kafka answers
			// offset -1, timestamp -1.
			offset, op.LeaderEpoch = -1, -1
		} else {
			offset, op.Timestamp = o, ts
		}
	}
	if version == 0 {
		// v0 lists offsets (at most MaxNumOffsets); one is all we keep.
		op.OldStyleOffsets = []int64{}
		if offset >= 0 && rp.MaxNumOffsets > 0 {
			op.OldStyleOffsets = []int64{offset}
		}
		return nil
	}
	op.Offset = offset
	return nil
}
