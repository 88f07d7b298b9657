package txn

import (
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// The rules below follow Kafka's TransactionCoordinator and
// TransactionMetadata (3.x, before KIP-890 part 2): same checks, same
// order, same codes.

type pidEpoch struct {
	pid   int64
	epoch int16
}

func (st *state) initProducerID(now time.Time, c *call, req *kmsg.InitProducerIDRequest, fx *effects) {
	answer := func(fx *effects, code int16, pid int64, epoch int16) {
		resp := req.ResponseKind().(*kmsg.InitProducerIDResponse)
		resp.ErrorCode = fenced(code, req.Version, 4)
		resp.ProducerID, resp.ProducerEpoch = pid, epoch
		if code != 0 {
			resp.ProducerID, resp.ProducerEpoch = -1, -1
		}
		fx.reply(c, resp)
	}
	if req.TransactionalID == nil {
		// Idempotent only: a fresh producer id every time, even with a
		// KIP-360 producer id and epoch, as Kafka.
		st.allocPID(now, fx, func(_ time.Time, pid int64, err error, fx *effects) {
			if err != nil {
				answer(fx, appendErrorCode(err), 0, 0)
				return
			}
			answer(fx, 0, pid, 0)
		})
		return
	}
	id := *req.TransactionalID
	if id == "" {
		answer(fx, kerr.InvalidRequest.Code, 0, 0)
		return
	}
	if req.TransactionTimeoutMillis <= 0 || time.Duration(req.TransactionTimeoutMillis)*time.Millisecond > st.opts.MaxTimeout {
		answer(fx, kerr.InvalidTransactionTimeout.Code, 0, 0)
		return
	}
	var expected *pidEpoch
	if req.Version >= 3 {
		switch {
		case req.ProducerID == -1 && req.ProducerEpoch == -1:
		case req.ProducerID >= 0 && req.ProducerEpoch >= 0:
			expected = &pidEpoch{req.ProducerID, req.ProducerEpoch}
		default:
			answer(fx, kerr.InvalidRequest.Code, 0, 0)
			return
		}
	}
	if t := st.txns[id]; t != nil {
		st.initTxn(now, t, req.TransactionTimeoutMillis, expected, fx, answer)
		return
	}
	if len(st.txns) >= st.opts.MaxTransactionalIDs {
		st.log.Warn("txn: refusing a new transactional id: MaxTransactionalIDs reached", "transactional_id", id, "limit", st.opts.MaxTransactionalIDs)
		answer(fx, kerr.PolicyViolation.Code, 0, 0)
		return
	}
	st.allocPID(now, fx, func(now time.Time, pid int64, err error, fx *effects) {
		if err != nil {
			answer(fx, appendErrorCode(err), 0, 0)
			return
		}
		t := st.txns[id]
		if t == nil && len(st.txns) >= st.opts.MaxTransactionalIDs {
			answer(fx, kerr.PolicyViolation.Code, 0, 0)
			return
		}
		if t == nil { // else created while we waited; pid is simply unused
			t = &txn{id: id, meta: meta{pid: pid, lastPID: -1, epoch: -1, lastEpoch: -1,
				timeoutMs: req.TransactionTimeoutMillis, state: kmsg.TransactionStateEmpty, updated: now}}
			st.txns[id] = t
		}
		st.initTxn(now, t, req.TransactionTimeoutMillis, expected, fx, answer)
	})
}

// initTxn is Kafka's prepareInitProducerIdTransit.
func (st *state) initTxn(now time.Time, t *txn, timeoutMs int32, expected *pidEpoch, fx *effects,
	answer func(fx *effects, code int16, pid int64, epoch int16)) {
	if t.pending {
		answer(fx, kerr.ConcurrentTransactions.Code, 0, 0)
		return
	}
	// A producer id given by the producer (KIP-360) must be the current
	// one, or the previous one with an exhausted epoch (a retry after a
	// rotation), unless the metadata is new.
	if expected != nil && t.epoch != -1 && expected.pid != t.pid &&
		!(expected.pid == t.lastPID && exhausted(expected.epoch)) {
		answer(fx, kerr.ProducerFenced.Code, 0, 0)
		return
	}
	done := func(to meta) then {
		return func(_ time.Time, err error, fx *effects) {
			if err != nil {
				answer(fx, appendErrorCode(err), 0, 0)
				return
			}
			answer(fx, 0, to.pid, to.epoch)
		}
	}
	switch t.state {
	case kmsg.TransactionStatePrepareCommit, kmsg.TransactionStatePrepareAbort:
		answer(fx, kerr.ConcurrentTransactions.Code, 0, 0)
	case kmsg.TransactionStateOngoing, kmsg.TransactionStatePrepareEpochFence:
		// Abort it first with a bumped epoch, which fences the current
		// producer; the caller retries on CONCURRENT_TRANSACTIONS and
		// then bumps the epoch once more (or rotates the producer id).
		st.log.Info("txn: InitProducerId aborts the ongoing transaction", "transactional_id", t.id, "producer_id", t.pid, "epoch", t.epoch)
		st.fenceAndAbort(now, t, fx, func(_ time.Time, err error, fx *effects) {
			if err != nil {
				answer(fx, appendErrorCode(err), 0, 0)
				return
			}
			answer(fx, kerr.ConcurrentTransactions.Code, 0, 0)
		})
	default: // Empty, CompleteCommit, CompleteAbort
		if exhausted(t.epoch) && (expected == nil || expected.epoch == t.epoch) {
			t.pending = true
			st.allocPID(now, fx, func(now time.Time, pid int64, err error, fx *effects) {
				t.pending = false
				if err != nil {
					answer(fx, appendErrorCode(err), 0, 0)
					return
				}
				to := t.clone()
				to.lastPID, to.pid, to.epoch, to.lastEpoch = t.pid, pid, 0, -1
				if expected != nil {
					to.lastEpoch = t.epoch
				}
				st.resetTxn(&to, timeoutMs, now)
				st.log.Info("txn: producer epoch exhausted; new producer id", "transactional_id", t.id, "old", t.pid, "new", pid)
				st.transit(t, to, fx, done(to))
			})
			return
		}
		to := t.clone()
		switch {
		case expected == nil:
			to.epoch, to.lastEpoch = t.epoch+1, -1
		case t.epoch == -1 || expected.epoch == t.epoch:
			to.epoch, to.lastEpoch = t.epoch+1, t.epoch
		case expected.epoch == t.lastEpoch:
			// A retry of a bump that succeeded: the same epoch again.
		default:
			answer(fx, kerr.ProducerFenced.Code, 0, 0)
			return
		}
		st.resetTxn(&to, timeoutMs, now)
		st.transit(t, to, fx, done(to))
	}
}

func (st *state) resetTxn(m *meta, timeoutMs int32, now time.Time) {
	m.timeoutMs = timeoutMs
	m.state = kmsg.TransactionStateEmpty
	m.parts = nil
	m.start = time.Time{}
	m.updated = now
}

// addPartitions is Kafka's handleAddPartitionsToTransaction for one
// transaction; k gets its one error code.
func (st *state) addPartitions(now time.Time, id string, pid int64, epoch int16, parts []TopicPartition, fx *effects,
	k func(fx *effects, code int16)) {
	t := st.txns[id]
	switch {
	case id == "":
		k(fx, kerr.InvalidRequest.Code)
	case t == nil || t.pid != pid:
		k(fx, kerr.InvalidProducerIDMapping.Code)
	case t.epoch != epoch:
		k(fx, kerr.ProducerFenced.Code)
	case t.pending || preparing(t.state):
		k(fx, kerr.ConcurrentTransactions.Code)
	case t.state == kmsg.TransactionStateOngoing && t.hasAll(parts):
		k(fx, 0)
	case t.state == kmsg.TransactionStateDead || t.state == kmsg.TransactionStatePrepareEpochFence:
		k(fx, kerr.InvalidTxnState.Code)
	default:
		to := t.clone()
		if to.parts == nil {
			to.parts = make(map[TopicPartition]struct{}, len(parts))
		}
		for _, tp := range parts {
			to.parts[tp] = struct{}{}
		}
		if t.state != kmsg.TransactionStateOngoing {
			to.start = now
		}
		to.state = kmsg.TransactionStateOngoing
		to.updated = now
		st.transit(t, to, fx, func(_ time.Time, err error, fx *effects) {
			if err != nil {
				k(fx, appendErrorCode(err))
				return
			}
			k(fx, 0)
		})
	}
}

func (t *txn) hasAll(parts []TopicPartition) bool {
	for _, tp := range parts {
		if _, ok := t.parts[tp]; !ok {
			return false
		}
	}
	return true
}

// verify is Kafka's handleVerifyPartitionsInTransaction: nil codes for
// the partitions in the ongoing transaction, notIn for the others, or
// one error for all.
func (st *state) verify(id string, pid int64, epoch int16, parts []TopicPartition, notIn *kerr.Error) (all *kerr.Error, each []*kerr.Error) {
	t := st.txns[id]
	switch {
	case id == "":
		return kerr.InvalidRequest, nil
	case t == nil || t.pid != pid:
		return kerr.InvalidProducerIDMapping, nil
	case t.epoch != epoch:
		return kerr.ProducerFenced, nil
	case preparing(t.state):
		return kerr.ConcurrentTransactions, nil
	}
	each = make([]*kerr.Error, len(parts))
	for i, tp := range parts {
		if _, ok := t.parts[tp]; !ok || t.state != kmsg.TransactionStateOngoing {
			each[i] = notIn
		}
	}
	return nil, each
}

// unknownParts reports the partitions of no existing topic, for
// UNKNOWN_TOPIC_OR_PARTITION.
func (st *state) unknownParts(parts []TopicPartition) map[TopicPartition]bool {
	var unknown map[TopicPartition]bool
	for _, tp := range parts {
		n, ok := st.opts.Topics.Partitions(tp.Topic)
		if !ok || tp.Partition < 0 || tp.Partition >= n {
			if unknown == nil {
				unknown = make(map[TopicPartition]bool)
			}
			unknown[tp] = true
		}
	}
	return unknown
}

func flatten[T any](topics []T, topic func(*T) string, partitions func(*T) []int32) []TopicPartition {
	var out []TopicPartition
	for i := range topics {
		for _, p := range partitions(&topics[i]) {
			out = append(out, TopicPartition{topic(&topics[i]), p})
		}
	}
	return out
}

func (st *state) addPartitionsV3(now time.Time, c *call, req *kmsg.AddPartitionsToTxnRequest, fx *effects) {
	parts := flatten(req.Topics, func(t *kmsg.AddPartitionsToTxnRequestTopic) string { return t.Topic },
		func(t *kmsg.AddPartitionsToTxnRequestTopic) []int32 { return t.Partitions })
	if unknown := st.unknownParts(parts); unknown != nil {
		// One bad partition fails the whole request, as Kafka: the
		// others are not attempted.
		fx.reply(c, addPartitionsV3Response(req, func(tp TopicPartition) int16 {
			if unknown[tp] {
				return kerr.UnknownTopicOrPartition.Code
			}
			return kerr.OperationNotAttempted.Code
		}))
		return
	}
	st.addPartitions(now, req.TransactionalID, req.ProducerID, req.ProducerEpoch, parts, fx, func(fx *effects, code int16) {
		code = fenced(code, req.Version, 2)
		fx.reply(c, addPartitionsV3Response(req, func(TopicPartition) int16 { return code }))
	})
}

func addPartitionsV3Response(req *kmsg.AddPartitionsToTxnRequest, code func(TopicPartition) int16) *kmsg.AddPartitionsToTxnResponse {
	resp := req.ResponseKind().(*kmsg.AddPartitionsToTxnResponse)
	for _, t := range req.Topics {
		rt := kmsg.NewAddPartitionsToTxnResponseTopic()
		rt.Topic = t.Topic
		for _, p := range t.Partitions {
			rp := kmsg.NewAddPartitionsToTxnResponseTopicPartition()
			rp.Partition, rp.ErrorCode = p, code(TopicPartition{t.Topic, p})
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return resp
}

// addPartitionsBatch serves v4+, sent by brokers: several transactions,
// each added or (VerifyOnly, KIP-890 part 1) checked; the response
// waits for all of them.
func (st *state) addPartitionsBatch(now time.Time, c *call, req *kmsg.AddPartitionsToTxnRequest, fx *effects) {
	resp := req.ResponseKind().(*kmsg.AddPartitionsToTxnResponse)
	resp.Transactions = make([]kmsg.AddPartitionsToTxnResponseTransaction, len(req.Transactions))
	remaining := len(req.Transactions)
	if remaining == 0 {
		fx.reply(c, resp)
		return
	}
	settle := func(fx *effects, i int, code func(TopicPartition) int16) {
		tr := &req.Transactions[i]
		rt := kmsg.NewAddPartitionsToTxnResponseTransaction()
		rt.TransactionalID = tr.TransactionalID
		for _, t := range tr.Topics {
			rtt := kmsg.NewAddPartitionsToTxnResponseTransactionTopic()
			rtt.Topic = t.Topic
			for _, p := range t.Partitions {
				rp := kmsg.NewAddPartitionsToTxnResponseTransactionTopicPartition()
				rp.Partition, rp.ErrorCode = p, code(TopicPartition{t.Topic, p})
				rtt.Partitions = append(rtt.Partitions, rp)
			}
			rt.Topics = append(rt.Topics, rtt)
		}
		resp.Transactions[i] = rt
		if remaining--; remaining == 0 {
			fx.reply(c, resp)
		}
	}
	// TRANSACTION_ABORTABLE is new in v5; v4 callers get INVALID_TXN_STATE.
	notIn := kerr.TransactionAbortable
	if req.Version < 5 {
		notIn = kerr.InvalidTxnState
	}
	for i := range req.Transactions {
		tr := &req.Transactions[i]
		parts := flatten(tr.Topics, func(t *kmsg.AddPartitionsToTxnRequestTransactionTopic) string { return t.Topic },
			func(t *kmsg.AddPartitionsToTxnRequestTransactionTopic) []int32 { return t.Partitions })
		if unknown := st.unknownParts(parts); unknown != nil {
			settle(fx, i, func(tp TopicPartition) int16 {
				if unknown[tp] {
					return kerr.UnknownTopicOrPartition.Code
				}
				return kerr.OperationNotAttempted.Code
			})
			continue
		}
		if tr.VerifyOnly {
			all, each := st.verify(tr.TransactionalID, tr.ProducerID, tr.ProducerEpoch, parts, notIn)
			idx := make(map[TopicPartition]*kerr.Error, len(parts))
			for j, tp := range parts {
				if each != nil {
					idx[tp] = each[j]
				}
			}
			settle(fx, i, func(tp TopicPartition) int16 {
				if all != nil {
					return all.Code
				}
				if e := idx[tp]; e != nil {
					return e.Code
				}
				return 0
			})
			continue
		}
		st.addPartitions(now, tr.TransactionalID, tr.ProducerID, tr.ProducerEpoch, parts, fx, func(fx *effects, code int16) {
			settle(fx, i, func(TopicPartition) int16 { return code })
		})
	}
}

func (st *state) addOffsets(now time.Time, c *call, req *kmsg.AddOffsetsToTxnRequest, fx *effects) {
	tp := st.opts.Topics.GroupPartition(req.Group)
	st.addPartitions(now, req.TransactionalID, req.ProducerID, req.ProducerEpoch, []TopicPartition{tp}, fx, func(fx *effects, code int16) {
		resp := req.ResponseKind().(*kmsg.AddOffsetsToTxnResponse)
		resp.ErrorCode = fenced(code, req.Version, 2)
		fx.reply(c, resp)
	})
}

// endTxn is Kafka's endTransaction from a client: Prepare* made durable,
// then markers and Complete*, and the client is answered once they are
// (or at their first failure: the outcome is decided by then).
func (st *state) endTxn(now time.Time, c *call, req *kmsg.EndTxnRequest, fx *effects) {
	answer := func(fx *effects, code int16) {
		resp := req.ResponseKind().(*kmsg.EndTxnResponse)
		resp.ErrorCode = fenced(code, req.Version, 2)
		fx.reply(c, resp)
	}
	t := st.txns[req.TransactionalID]
	switch {
	case req.TransactionalID == "":
		answer(fx, kerr.InvalidRequest.Code)
		return
	case t == nil || t.pid != req.ProducerID:
		answer(fx, kerr.InvalidProducerIDMapping.Code)
		return
	case t.epoch != req.ProducerEpoch:
		answer(fx, kerr.ProducerFenced.Code)
		return
	case t.pending:
		answer(fx, kerr.ConcurrentTransactions.Code)
		return
	}
	// A retry of an EndTxn that already went through is answered as the
	// first was; the other outcome is INVALID_TXN_STATE.
	sameAs := func(commitState kmsg.TransactionState, ok int16) int16 {
		if (t.state == commitState) == req.Commit {
			return ok
		}
		return kerr.InvalidTxnState.Code
	}
	switch t.state {
	case kmsg.TransactionStateOngoing:
		to := t.clone()
		to.state = kmsg.TransactionStatePrepareAbort
		if req.Commit {
			to.state = kmsg.TransactionStatePrepareCommit
		}
		to.updated = now
		st.transit(t, to, fx, func(now time.Time, err error, fx *effects) {
			if err != nil {
				answer(fx, appendErrorCode(err))
				return
			}
			st.completeThen(now, t, fx, func(fx *effects) { answer(fx, 0) })
		})
	case kmsg.TransactionStateCompleteCommit, kmsg.TransactionStateCompleteAbort:
		answer(fx, sameAs(kmsg.TransactionStateCompleteCommit, 0))
	case kmsg.TransactionStatePrepareCommit, kmsg.TransactionStatePrepareAbort:
		answer(fx, sameAs(kmsg.TransactionStatePrepareCommit, kerr.ConcurrentTransactions.Code))
	default: // Empty; Dead and PrepareEpochFence are never current here
		answer(fx, kerr.InvalidTxnState.Code)
	}
}
