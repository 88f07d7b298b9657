package broker

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/internal/batch"
	"github.com/sluice-io/sluice/internal/partition"
	"github.com/sluice-io/sluice/internal/producer"
	"github.com/sluice-io/sluice/internal/server"
	"github.com/sluice-io/sluice/internal/txn"
)

// handleProduce validates every batch of a partition's record set before
// appending any of them, then enqueues the appends through the engine here,
// in request order, so that pipelined produces share WAL syncs. The Pending
// waits until every append is fsynced and readable: acks=1 and acks=all
// both answer at that point, because our WAL fsync precedes visibility;
// acks=0 waits too (so a failure can close the connection, as Kafka does)
// but writes nothing.
func (b *Broker) handleProduce(ctx context.Context, r *server.Request) server.Pending {
	req := r.Body.(*kmsg.ProduceRequest)
	resp := req.ResponseKind().(*kmsg.ProduceResponse)
	p := &producePending{resp: resp, acks: req.Acks, done: make(chan struct{}), obs: b.opts.Observer, received: time.Now()}
	p.remaining = 1 // Handle's own token, released at the end

	var reqErr error
	switch {
	case req.Acks != -1 && req.Acks != 0 && req.Acks != 1:
		reqErr = fmt.Errorf("%w: acks=%d; must be -1 (all), 0 or 1", errInvalidRequiredAcks, req.Acks)
	}
	now := b.now()
	resp.Topics = make([]kmsg.ProduceResponseTopic, len(req.Topics))
	for ti := range req.Topics {
		rt := &req.Topics[ti]
		out := &resp.Topics[ti]
		*out = kmsg.NewProduceResponseTopic()
		out.Topic, out.TopicID = rt.Topic, rt.TopicID
		var st *topicState
		unknown := errUnknownTopic
		if req.Version >= 13 {
			st, unknown = b.topicByID(rt.TopicID), errUnknownTopicID
		} else {
			st = b.topic(rt.Topic)
		}
		out.Partitions = make([]kmsg.ProduceResponseTopicPartition, len(rt.Partitions))
		for pi := range rt.Partitions {
			rp := &rt.Partitions[pi]
			slot := &produceSlot{out: &out.Partitions[pi], dupLast: -1}
			*slot.out = kmsg.NewProduceResponseTopicPartition()
			slot.out.Partition = rp.Partition
			p.slots = append(p.slots, slot)
			if reqErr != nil {
				slot.err = reqErr
				continue
			}
			if st != nil && isInternal(st.name) {
				slot.err = fmt.Errorf("%w: cannot append to internal topic %s", errInternalTopic, st.name)
				continue
			}
			slot.part = st.partition(rp.Partition)
			if slot.part == nil {
				if st != nil {
					unknown = errUnknownTopic
				}
				slot.err = fmt.Errorf("%w: %s partition %d", unknown, rt.Topic, rp.Partition)
				continue
			}
			slot.topic, slot.bytes = st.name, len(rp.Records) // v13 names topics by id only
			batches, err := checkRecords(st, rp.Records, now)
			if err == nil {
				err = b.verifyTxn(req.TransactionID, st.name, rp.Partition, batches)
			}
			if err != nil {
				slot.err = err
				continue
			}
			b.appendBatches(ctx, p, st, slot, batches)
		}
	}
	p.finish()
	return p
}

// waitReadable waits until offset last of p is readable (nothing to wait
// for when last is -1), or p fails.
func waitReadable(ctx context.Context, p *partition.Partition, last int64) error {
	if last < 0 || p == nil {
		return nil
	}
	for {
		ch := p.Changed()
		if _, end := p.Offsets(); end > last {
			return nil
		}
		if err := p.Err(); err != nil {
			return err
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// checkRecords frames and validates every batch in a record set, so that a
// bad batch anywhere means nothing is appended. A single batch is left to
// the engine, which validates it before appending anything, so its CRC is
// computed once.
func checkRecords(st *topicState, records []byte, now time.Time) ([][]byte, error) {
	if len(records) == 0 {
		return nil, fmt.Errorf("%w: empty record set", batch.ErrCorrupt)
	}
	if int64(len(records)) > st.cfg.SegmentBytes {
		return nil, fmt.Errorf("%w: %d bytes exceeds segment.bytes %d", errRecordListTooLarge, len(records), st.cfg.SegmentBytes)
	}
	var out [][]byte
	it := batch.NewIter(records)
	for it.Next() {
		out = append(out, it.Batch())
	}
	if err := it.Err(); err != nil {
		return nil, err
	}
	nowMs := now.UnixMilli()
	for _, raw := range out {
		var h batch.Header
		var err error
		if len(out) == 1 && !st.compact {
			h, err = batch.ParseHeader(raw)
		} else {
			h, err = batch.Validate(raw)
		}
		if err != nil {
			return nil, err
		}
		if st.cfg.MaxMessageBytes > 0 && len(raw) > st.cfg.MaxMessageBytes {
			return nil, fmt.Errorf("%w: batch of %d bytes, max.message.bytes is %d", partition.ErrTooLarge, len(raw), st.cfg.MaxMessageBytes)
		}
		if h.Control() {
			return nil, fmt.Errorf("%w: clients may not send control batches", errInvalidRecord)
		}
		if !st.logAppendTime && !h.LogAppendTime() {
			if err := checkTimestamps(st, h, nowMs); err != nil {
				return nil, err
			}
		}
		if st.compact {
			if err := requireKeys(raw); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

// verifyTxn checks the transactional batches of a partition: they need the
// request's transactional id, and the transaction coordinator must have
// the partition in that producer's ongoing transaction (KIP-890 part 1),
// so a late or stray write cannot open a transaction nobody will end.
func (b *Broker) verifyTxn(txnID *string, topic string, part int32, batches [][]byte) error {
	for _, raw := range batches {
		h, err := batch.ParseHeader(raw)
		if err != nil {
			return err
		}
		switch {
		case !h.Transactional() && txnID != nil:
			return fmt.Errorf("%w: a transactional producer sent a non-transactional batch", errInvalidRecord)
		case !h.Transactional():
			continue
		case txnID == nil:
			return fmt.Errorf("%w: transactional batch without a transactional id", errInvalidRecord)
		}
		if err := b.txns.Verify(*txnID, h.ProducerID, h.ProducerEpoch, txn.TopicPartition{Topic: topic, Partition: part}); err != nil {
			return err
		}
		return nil // one verdict covers the partition's batches
	}
	return nil
}

// requireKeys refuses a batch with a keyless record, as Kafka does on a
// compacted topic: compaction keeps the last record per key, so a record
// without one could never be kept or removed correctly. The batch's CRC
// has been checked.
func requireKeys(raw []byte) error {
	return batch.Records(raw, func(r *batch.Record) error {
		if r.KeyNull {
			return fmt.Errorf("%w: compacted topic cannot accept a record without a key (offset delta %d)", errInvalidRecord, r.OffsetDelta)
		}
		return nil
	})
}

// checkTimestamps applies message.timestamp.before.max.ms and
// message.timestamp.after.max.ms to a CreateTime batch. Only the header is
// read: the first record's timestamp (the earliest for every client we know)
// and the batch's max timestamp, so checking costs no decompression.
func checkTimestamps(st *topicState, h batch.Header, nowMs int64) error {
	if h.MaxTimestamp >= 0 && st.tsAfterMs < math.MaxInt64-nowMs && h.MaxTimestamp > nowMs+st.tsAfterMs {
		return fmt.Errorf("%w: timestamp %d is more than message.timestamp.after.max.ms=%d ahead of the broker's clock %d",
			errInvalidTimestamp, h.MaxTimestamp, st.tsAfterMs, nowMs)
	}
	if h.BaseTimestamp >= 0 && st.tsBeforeMs < nowMs && h.BaseTimestamp < nowMs-st.tsBeforeMs {
		return fmt.Errorf("%w: timestamp %d is more than message.timestamp.before.max.ms=%d behind the broker's clock %d",
			errInvalidTimestamp, h.BaseTimestamp, st.tsBeforeMs, nowMs)
	}
	return nil
}

// appendBatches enqueues a partition's batches in order. The batch bytes
// are the request's, which nothing else touches until the appends complete.
func (b *Broker) appendBatches(ctx context.Context, p *producePending, st *topicState, slot *produceSlot, batches [][]byte) {
	for i, raw := range batches {
		batch.SetPartitionLeaderEpoch(raw, leaderEpoch)
		p.add()
		h, err := b.eng.Append(ctx, slot.part, raw, func(_ int64, err error) {
			p.fail(slot, err)
			p.release()
		})
		var dup *producer.DuplicateError
		if errors.As(err, &dup) {
			// A retry of a batch the log already holds: answered
			// with the original's offset once that is readable
			// (it may still be on its way through the WAL).
			p.release()
			p.mu.Lock()
			if i == 0 {
				slot.base = dup.BaseOffset
			}
			slot.dupLast = max(slot.dupLast, dup.LastOffset)
			p.mu.Unlock()
			continue
		}
		if err != nil {
			p.release()
			p.fail(slot, err)
			// Later batches of this record set are not appended;
			// earlier ones (only on a storage failure) may be.
			return
		}
		p.mu.Lock()
		slot.records += int(h.NumRecords)
		if i == 0 {
			slot.base = h.BaseOffset
			// The partition stamps LogAppendTime batches with
			// h.MaxTimestamp.
			if st.logAppendTime || h.LogAppendTime() {
				slot.appendTime = h.MaxTimestamp
			}
		}
		p.mu.Unlock()
	}
}

// producePending is a produce waiting for its appends.
type producePending struct {
	obs      Observer
	received time.Time
	resp     *kmsg.ProduceResponse
	acks     int16
	slots    []*produceSlot
	done     chan struct{}

	mu        sync.Mutex
	remaining int // appends in flight, plus Handle's token
	// For the observer: when Handle handed the last batch over, and when
	// the last append completed.
	handed, acked time.Time
}

type produceSlot struct {
	out        *kmsg.ProduceResponseTopicPartition
	part       *partition.Partition
	err        error // guarded by producePending.mu once appends start
	base       int64
	appendTime int64
	// dupLast is the last offset of duplicates answered with their
	// original offsets, which must be readable before the answer; -1
	// without duplicates.
	dupLast int64
	// For the observer: the topic, the record set's bytes and records.
	topic          string
	bytes, records int
}

func (p *producePending) add() {
	p.mu.Lock()
	p.remaining++
	p.mu.Unlock()
}

func (p *producePending) release() {
	p.mu.Lock()
	p.remaining--
	last := p.remaining == 0
	if last && p.obs != nil {
		p.acked = time.Now()
	}
	p.mu.Unlock()
	if last {
		close(p.done)
	}
}

// finish releases Handle's token.
func (p *producePending) finish() {
	if p.obs != nil {
		p.mu.Lock()
		p.handed = time.Now()
		p.mu.Unlock()
	}
	p.release()
}

// observeStages reports the request's stages once its response is written
// (server.Response.Release). p.mu is not needed: done was closed after the
// last write to handed and acked.
func (p *producePending) observeStages() {
	p.obs.ObserveProduceStages(p.handed.Sub(p.received), p.acked.Sub(p.handed), time.Since(p.acked))
}

func (p *producePending) fail(slot *produceSlot, err error) {
	if err == nil {
		return
	}
	p.mu.Lock()
	if slot.err == nil {
		slot.err = err
	}
	p.mu.Unlock()
}

// Wait implements server.Pending.
func (p *producePending) Wait(ctx context.Context) server.Response {
	select {
	case <-p.done:
	case <-ctx.Done():
		return server.Response{NoResponse: true}
	}
	for _, s := range p.slots {
		if err := waitReadable(ctx, s.part, s.dupLast); err != nil {
			p.fail(s, err)
		}
	}
	failed := false
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, s := range p.slots {
		if s.err != nil {
			failed = true
			s.out.ErrorCode = errorCode(s.err)
			s.out.ErrorMessage = errorMessage(s.err)
			s.out.BaseOffset, s.out.LogAppendTime, s.out.LogStartOffset = -1, -1, -1
			continue
		}
		s.out.BaseOffset = s.base
		s.out.LogAppendTime = -1
		if s.appendTime != 0 {
			s.out.LogAppendTime = s.appendTime
		}
		s.out.LogStartOffset, _ = s.part.Offsets()
		if p.obs != nil {
			p.obs.ObserveProduce(s.topic, s.records, s.bytes, time.Since(p.received))
		}
	}
	// Every append has completed (the engine has written the batches
	// into their segments and holds no reference to them), so the
	// server may read the next request into this one's buffer.
	if p.acks == 0 {
		// Kafka closes the connection after a failed acks=0 produce:
		// the only way the client can learn of it.
		return server.Response{NoResponse: true, Close: failed, ReuseRequest: true}
	}
	resp := server.Response{Msg: p.resp, ReuseRequest: true}
	if p.obs != nil {
		resp.Release = p.observeStages
	}
	return resp
}
