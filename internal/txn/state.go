package txn

import (
	"log/slog"
	"maps"
	"math"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

const (
	// pidBlockSize producer ids are reserved by one durable record.
	pidBlockSize = 1000
	// maxPIDWaiters bounds the InitProducerId requests parked while a
	// block of producer ids is being made durable.
	maxPIDWaiters = 1 << 16

	// Retries of marker writes and of the Complete* record back off
	// exponentially between these bounds.
	retryBackoffMin = 100 * time.Millisecond
	retryBackoffMax = 10 * time.Second

	// coordinatorEpoch goes into every marker. Sluice has one
	// coordinator for all of __transaction_state, so no other one can
	// write markers for our producers and the epoch never needs to
	// move; partitions accept markers whose epoch is not older than the
	// last they saw.
	coordinatorEpoch = 0
)

// meta is what a TxnMetadataValue records of a transactional id, plus
// lastEpoch, which Kafka too keeps only in memory (KIP-360).
type meta struct {
	pid       int64
	lastPID   int64 // before the last epoch-exhaustion rotation, -1 if none
	epoch     int16 // -1: created, no epoch handed out yet
	lastEpoch int16 // the epoch before a KIP-360 bump, -1 if none
	timeoutMs int32
	state     kmsg.TransactionState
	parts     map[TopicPartition]struct{}
	start     time.Time // zero: no transaction started
	updated   time.Time
}

func (m *meta) clone() meta {
	c := *m
	c.parts = maps.Clone(m.parts)
	return c
}

func (m *meta) timeout() time.Duration { return time.Duration(m.timeoutMs) * time.Millisecond }

func exhausted(epoch int16) bool { return epoch >= math.MaxInt16-1 }

func preparing(s kmsg.TransactionState) bool {
	return s == kmsg.TransactionStatePrepareCommit || s == kmsg.TransactionStatePrepareAbort
}

func completed(s kmsg.TransactionState) bool {
	return s == kmsg.TransactionStateCompleteCommit || s == kmsg.TransactionStateCompleteAbort
}

// txn is one transactional id.
type txn struct {
	id string
	meta
	// pending: a record or a producer-id allocation for this id is in
	// flight. Every request that would change it is answered
	// CONCURRENT_TRANSACTIONS meanwhile, as Kafka's pendingState.
	pending bool
	// retry is the step of a completing transaction (markers, then the
	// Complete* record) to run again at retryAt after a failure.
	retry   func(now time.Time, fx *effects)
	retryAt time.Time
	backoff time.Duration
}

type pidWaiter func(now time.Time, pid int64, err error, fx *effects)

// pids hands out producer ids from blocks made durable beforehand.
type pids struct {
	next, end int64 // [next, end) is reserved and not handed out yet
	writing   bool
	waiters   []pidWaiter
}

// state is the coordinator's whole mutable state: a pure state machine,
// driven by the owner goroutine (or a test) with logical time.
type state struct {
	opts      Options // with defaults
	log       *slog.Logger
	txns      map[string]*txn
	pids      pids
	retrying  map[*txn]struct{}
	nextCheck time.Time // next timeout and expiry scan
}

func newState(opts Options) *state {
	return &state{opts: opts, log: opts.Logger, txns: make(map[string]*txn), retrying: make(map[*txn]struct{})}
}

// apply replays one record of the log (Load).
func (st *state) apply(d decoded) {
	switch d.kind {
	case kindPIDBlock:
		st.pids.end = max(st.pids.end, d.pidEnd)
	case kindTxn:
		if d.meta == nil || d.meta.state == kmsg.TransactionStateDead {
			delete(st.txns, d.id)
			return
		}
		m := *d.meta
		if m.state == kmsg.TransactionStatePrepareEpochFence {
			// Never written by us nor by Kafka; if found, the fence did
			// not complete and the transaction is still open: the
			// timeout (or the next InitProducerId) aborts it.
			m.state = kmsg.TransactionStateOngoing
		}
		st.txns[d.id] = &txn{id: d.id, meta: m}
		// A producer id in a record was handed out from a block, but
		// keep clear of it even if the block record were lost.
		st.pids.end = max(st.pids.end, m.pid+1, m.lastPID+1)
	}
}

// loaded finishes Load: nothing of the last block is handed out again,
// and transactions caught between Prepare* and Complete* are completed.
func (st *state) loaded(now time.Time, fx *effects) {
	st.pids.next = st.pids.end
	st.nextCheck = now.Add(st.opts.AbortCheckInterval)
	var ids []string
	for id, t := range st.txns {
		if preparing(t.state) {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	for _, id := range ids {
		t := st.txns[id]
		st.log.Info("txn: completing a transaction found prepared", "transactional_id", id, "state", t.state.String())
		st.complete(now, t, fx)
	}
}

// handle runs one request; its responses and writes land in fx.
func (st *state) handle(now time.Time, c *call, fx *effects) {
	switch req := c.req.(type) {
	case *kmsg.InitProducerIDRequest:
		st.initProducerID(now, c, req, fx)
	case *kmsg.AddPartitionsToTxnRequest:
		if req.Version >= 4 {
			st.addPartitionsBatch(now, c, req, fx)
		} else {
			st.addPartitionsV3(now, c, req, fx)
		}
	case *kmsg.AddOffsetsToTxnRequest:
		st.addOffsets(now, c, req, fx)
	case *kmsg.EndTxnRequest:
		st.endTxn(now, c, req, fx)
	case *kmsg.DescribeTransactionsRequest:
		fx.reply(c, st.describe(req))
	case *kmsg.ListTransactionsRequest:
		fx.reply(c, st.list(now, req))
	default:
		fx.reply(c, errorResponse(c.req, kerr.UnsupportedVersion.Code))
	}
}

// transit makes to the metadata of t once it is durable; meanwhile t is
// pending. k runs after, with the append's error.
func (st *state) transit(t *txn, to meta, fx *effects, k then) {
	t.pending = true
	fx.write(Partition(t.id, st.opts.NumPartitions), []Record{txnRecord(t.id, &to)}, func(now time.Time, err error, fx *effects) {
		t.pending = false
		if err == nil {
			t.meta = to
		} else {
			st.log.Warn("txn: transaction log append failed", "transactional_id", t.id, "state", to.state.String(), "err", err)
		}
		k(now, err, fx)
	})
}

// allocPID hands out the next producer id, reserving a new block first
// when the current one is used up.
func (st *state) allocPID(now time.Time, fx *effects, k pidWaiter) {
	p := &st.pids
	if p.next < p.end && len(p.waiters) == 0 {
		pid := p.next
		p.next++
		k(now, pid, nil, fx)
		return
	}
	if len(p.waiters) >= maxPIDWaiters {
		k(now, -1, errBusy, fx)
		return
	}
	p.waiters = append(p.waiters, k)
	st.reserve(fx)
}

func (st *state) reserve(fx *effects) {
	p := &st.pids
	if p.writing {
		return
	}
	if p.end > math.MaxInt64-pidBlockSize {
		ws := p.waiters
		p.waiters = nil
		for _, w := range ws {
			w(time.Time{}, -1, errPIDsExhausted, fx)
		}
		return
	}
	p.writing = true
	end := p.end + pidBlockSize
	fx.write(pidBlockPartition, []Record{pidBlockRecord(end)}, func(now time.Time, err error, fx *effects) {
		p.writing = false
		ws := p.waiters
		p.waiters = nil
		if err != nil {
			st.log.Warn("txn: reserving producer ids failed", "err", err)
			for _, w := range ws {
				w(now, -1, err, fx)
			}
			return
		}
		p.next, p.end = max(p.next, p.end), end
		for _, w := range ws {
			st.allocPID(now, fx, w) // more waiters than a block: the rest wait for the next one
		}
	})
}

// retryLater schedules step for t after a backoff.
func (st *state) retryLater(now time.Time, t *txn, step func(time.Time, *effects)) {
	t.backoff = min(max(2*t.backoff, retryBackoffMin), retryBackoffMax)
	t.retry, t.retryAt = step, now.Add(t.backoff)
	st.retrying[t] = struct{}{}
}

// complete finishes a transaction in PrepareCommit or PrepareAbort:
// markers to every partition, then the Complete* record. A failure of
// either is retried until it succeeds; the transaction stays prepared
// meanwhile.
func (st *state) complete(now time.Time, t *txn, fx *effects) { st.completeThen(now, t, fx, nil) }

// completeThen is complete that also calls done once the transaction is
// complete, or at its first failure (the outcome is decided and durable
// in Prepare*; completing it is then the coordinator's business).
// EndTxn answers through it: a producer that starts its next transaction
// at once then finds this one finished, instead of being told
// CONCURRENT_TRANSACTIONS and backing off while the markers are written.
func (st *state) completeThen(now time.Time, t *txn, fx *effects, done func(fx *effects)) {
	finish := func(fx *effects) {
		if done != nil {
			done(fx)
			done = nil
		}
	}
	commit := t.state == kmsg.TransactionStatePrepareCommit
	parts := t.sortedParts()
	if len(parts) == 0 {
		st.writeComplete(now, t, fx, finish)
		return
	}
	fx.mark(markerWrite{pid: t.pid, epoch: t.epoch, commit: commit, parts: parts, then: func(now time.Time, err error, fx *effects) {
		if err != nil {
			st.log.Warn("txn: writing transaction markers failed; retrying", "transactional_id", t.id, "commit", commit, "err", err)
			finish(fx)
			st.retryLater(now, t, func(now time.Time, fx *effects) { st.complete(now, t, fx) })
			return
		}
		st.writeComplete(now, t, fx, finish)
	}})
}

func (st *state) writeComplete(now time.Time, t *txn, fx *effects, done func(fx *effects)) {
	to := t.clone()
	to.state = kmsg.TransactionStateCompleteAbort
	if t.state == kmsg.TransactionStatePrepareCommit {
		to.state = kmsg.TransactionStateCompleteCommit
	}
	to.parts = nil
	to.updated = now
	st.transit(t, to, fx, func(now time.Time, err error, fx *effects) {
		done(fx)
		if err != nil {
			st.retryLater(now, t, func(now time.Time, fx *effects) { st.writeComplete(now, t, fx, func(*effects) {}) })
			return
		}
		t.backoff = 0
	})
}

// fenceAndAbort bumps the epoch of an Ongoing transaction and aborts it,
// as Kafka's PrepareEpochFence followed by PrepareAbort: the bump and the
// PrepareAbort are one record here, so an epoch is never bumped without
// being durable. k runs once PrepareAbort is durable (or failed); the
// markers follow.
func (st *state) fenceAndAbort(now time.Time, t *txn, fx *effects, k then) {
	to := t.clone()
	if to.epoch < math.MaxInt16 {
		to.epoch++
	}
	to.lastEpoch = -1
	to.state = kmsg.TransactionStatePrepareAbort
	to.updated = now
	st.transit(t, to, fx, func(now time.Time, err error, fx *effects) {
		if err == nil {
			st.complete(now, t, fx)
		}
		k(now, err, fx)
	})
}

// tick runs what is due at now: retries, the timeout and expiry scan.
func (st *state) tick(now time.Time, fx *effects) {
	var due []*txn
	for t := range st.retrying {
		if !t.retryAt.After(now) {
			due = append(due, t)
		}
	}
	slices.SortFunc(due, func(a, b *txn) int { return a.retryAt.Compare(b.retryAt) })
	for _, t := range due {
		delete(st.retrying, t)
		step := t.retry
		t.retry = nil
		step(now, fx)
	}
	if !st.nextCheck.IsZero() && !st.nextCheck.After(now) {
		st.abortTimedOut(now, fx)
		st.expire(now, fx)
		st.nextCheck = now.Add(st.opts.AbortCheckInterval)
	}
}

// next is the earliest deadline, zero if none.
func (st *state) next() time.Time {
	next := st.nextCheck
	for t := range st.retrying {
		if next.IsZero() || t.retryAt.Before(next) {
			next = t.retryAt
		}
	}
	return next
}

// abortTimedOut aborts every Ongoing transaction older than its timeout,
// fencing its producer, as Kafka's abortTimedOutTransactions.
func (st *state) abortTimedOut(now time.Time, fx *effects) {
	var due []*txn
	for _, t := range st.txns {
		if t.state == kmsg.TransactionStateOngoing && !t.pending && now.Sub(t.start) > t.timeout() {
			due = append(due, t)
		}
	}
	slices.SortFunc(due, func(a, b *txn) int { return compareStrings(a.id, b.id) })
	for _, t := range due {
		st.log.Info("txn: aborting a timed-out transaction", "transactional_id", t.id, "producer_id", t.pid, "epoch", t.epoch, "timeout", t.timeout())
		st.fenceAndAbort(now, t, fx, func(_ time.Time, err error, _ *effects) {
			if err != nil {
				st.log.Warn("txn: aborting a timed-out transaction failed; will retry", "transactional_id", t.id, "err", err)
			}
		})
	}
}

// expire forgets transactional ids idle for IDExpiration, writing a
// tombstone per id, one append per log partition.
func (st *state) expire(now time.Time, fx *effects) {
	byPart := make(map[int32][]*txn)
	for _, t := range st.txns {
		if t.pending || !(t.state == kmsg.TransactionStateEmpty || completed(t.state)) {
			continue
		}
		if now.Sub(t.updated) < st.opts.IDExpiration {
			continue
		}
		p := Partition(t.id, st.opts.NumPartitions)
		byPart[p] = append(byPart[p], t)
	}
	for _, p := range slices.Sorted(maps.Keys(byPart)) {
		ts := byPart[p]
		slices.SortFunc(ts, func(a, b *txn) int { return compareStrings(a.id, b.id) })
		recs := make([]Record, len(ts))
		for i, t := range ts {
			t.pending = true
			recs[i] = txnTombstone(t.id)
		}
		fx.write(p, recs, func(_ time.Time, err error, _ *effects) {
			for _, t := range ts {
				t.pending = false
				if err == nil && st.txns[t.id] == t {
					delete(st.txns, t.id)
				}
			}
			if err == nil {
				st.log.Info("txn: expired idle transactional ids", "partition", p, "count", len(ts))
			}
		})
	}
}

func compareStrings(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
