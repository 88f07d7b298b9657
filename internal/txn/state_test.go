package txn

import (
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func decodeAll(t *testing.T, ws []write) []decoded {
	t.Helper()
	var out []decoded
	for _, w := range ws {
		for _, r := range w.recs {
			d, err := decodeRecord(r)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, d)
		}
	}
	return out
}

func TestInitNewTransactionalID(t *testing.T) {
	h := newHarness(t, nil)
	c := h.do(initReq("app", 60_000))
	if h.answered(c) {
		t.Fatal("answered before the producer-id block was durable")
	}
	// The block record first, alone; the transaction record after it.
	if len(h.pending) != 1 || h.pending[0].p != pidBlockPartition {
		t.Fatalf("pending %+v, want one producer-id block append", h.pending)
	}
	h.flush(nil)
	r := answer[*kmsg.InitProducerIDResponse](h, c)
	wantCode(t, "init", r.ErrorCode, nil)
	if r.ProducerID != 0 || r.ProducerEpoch != 0 {
		t.Fatalf("got pid %d epoch %d, want 0 0", r.ProducerID, r.ProducerEpoch)
	}
	ds := decodeAll(t, h.written)
	if len(ds) != 2 || ds[0].kind != kindPIDBlock || ds[0].pidEnd != pidBlockSize ||
		ds[1].kind != kindTxn || ds[1].id != "app" || ds[1].meta.state != kmsg.TransactionStateEmpty || ds[1].meta.epoch != 0 {
		t.Fatalf("records %+v", ds)
	}
	if p := h.written[1].p; p != Partition("app", DefaultNumPartitions) {
		t.Fatalf("transaction record on partition %d", p)
	}
}

func TestInitFailedAppendChangesNothing(t *testing.T) {
	h := newHarness(t, nil)
	pid, _ := h.init("app")
	c := h.do(initReq("app", 60_000))
	h.flush(kerr.NotLeaderForPartition)
	wantCode(t, "init", answer[*kmsg.InitProducerIDResponse](h, c).ErrorCode, kerr.NotCoordinator)
	if tx := h.txn("app"); tx.epoch != 0 || tx.pid != pid || tx.pending {
		t.Fatalf("after a failed append: %+v", tx)
	}
	c = h.do(initReq("app", 60_000))
	h.flush(errTest)
	wantCode(t, "init", answer[*kmsg.InitProducerIDResponse](h, c).ErrorCode, kerr.CoordinatorNotAvailable)
}

type testError string

func (e testError) Error() string { return string(e) }

const errTest = testError("disk on fire")

func TestInitBumpsEpochAndFences(t *testing.T) {
	h := newHarness(t, nil)
	pid, e0 := h.init("app")
	pid1, e1 := h.init("app")
	if pid1 != pid || e1 != e0+1 {
		t.Fatalf("second init: pid %d epoch %d, want %d %d", pid1, e1, pid, e0+1)
	}
	// The old producer is fenced; versions before KIP-588 hear
	// INVALID_PRODUCER_EPOCH.
	c := h.do(addReq("app", pid, e0, "orders", 0))
	wantCode(t, "add v3 old epoch", addCode(h, c), kerr.ProducerFenced)
	old := addReq("app", pid, e0, "orders", 0)
	old.Version = 1
	c = h.do(old)
	wantCode(t, "add v1 old epoch", addCode(h, c), kerr.InvalidProducerEpoch)
	c = h.do(endReq("app", pid, e0, true))
	wantCode(t, "end old epoch", answer[*kmsg.EndTxnResponse](h, c).ErrorCode, kerr.ProducerFenced)
	c = h.do(endReq("app", pid+1, e1, true))
	wantCode(t, "end other pid", answer[*kmsg.EndTxnResponse](h, c).ErrorCode, kerr.InvalidProducerIDMapping)
	c = h.do(endReq("nope", pid, e1, true))
	wantCode(t, "end unknown id", answer[*kmsg.EndTxnResponse](h, c).ErrorCode, kerr.InvalidProducerIDMapping)
	c = h.do(endReq("app", pid, e1, true))
	wantCode(t, "end with no transaction", answer[*kmsg.EndTxnResponse](h, c).ErrorCode, kerr.InvalidTxnState)
}

func TestInitValidation(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.MaxTimeout = time.Minute; o.MaxTransactionalIDs = 1 })
	for _, ms := range []int32{0, -1, 60_001} {
		c := h.do(initReq("app", ms))
		r := answer[*kmsg.InitProducerIDResponse](h, c)
		wantCode(t, "timeout", r.ErrorCode, kerr.InvalidTransactionTimeout)
		if r.ProducerID != -1 || r.ProducerEpoch != -1 {
			t.Fatalf("error response carries pid %d epoch %d", r.ProducerID, r.ProducerEpoch)
		}
	}
	empty := initReq("", 1000)
	empty.TransactionalID = kmsg.StringPtr("")
	wantCode(t, "empty id", answer[*kmsg.InitProducerIDResponse](h, h.do(empty)).ErrorCode, kerr.InvalidRequest)
	h.init("app")
	c := h.do(initReq("second", 1000))
	wantCode(t, "over MaxTransactionalIDs", answer[*kmsg.InitProducerIDResponse](h, c).ErrorCode, kerr.PolicyViolation)
}

func TestCommit(t *testing.T) {
	h := newHarness(t, nil)
	pid, epoch := h.init("app")
	c := h.do(addReq("app", pid, epoch, "orders", 2, 0))
	if h.answered(c) {
		t.Fatal("AddPartitionsToTxn answered before durable")
	}
	h.flush(nil)
	wantCode(t, "add", addCode(h, c), nil)
	start := h.txn("app").start
	h.now = h.now.Add(time.Second)
	// Already in: answered at once, nothing written.
	n := len(h.written)
	c = h.do(addReq("app", pid, epoch, "orders", 0))
	wantCode(t, "add again", addCode(h, c), nil)
	if len(h.written) != n {
		t.Fatal("re-adding a partition wrote a record")
	}
	c = h.do(offsetsReq("app", pid, epoch, "grp"))
	h.flush(nil)
	wantCode(t, "add offsets", answer[*kmsg.AddOffsetsToTxnResponse](h, c).ErrorCode, nil)
	if h.txn("app").start != start {
		t.Fatal("a later add moved the transaction's start")
	}

	c = h.do(endReq("app", pid, epoch, true))
	if h.answered(c) {
		t.Fatal("EndTxn answered before PrepareCommit was durable")
	}
	h.flush(nil)
	if h.answered(c) {
		t.Fatal("EndTxn answered before its markers were written")
	}
	end := c
	h.wantState("app", kmsg.TransactionStatePrepareCommit)
	if len(h.marks) != 1 {
		t.Fatalf("%d marker writes, want 1", len(h.marks))
	}
	m := h.marks[0]
	want := []TopicPartition{testTopics.GroupPartition("grp"), {"orders", 0}, {"orders", 2}}
	if !m.commit || m.pid != pid || m.epoch != epoch || !reflect.DeepEqual(m.parts, want) {
		t.Fatalf("markers %+v, want commit of %v", m, want)
	}

	// While prepared: everything but a retry of the same EndTxn waits.
	wantCode(t, "init while prepared", answer[*kmsg.InitProducerIDResponse](h, h.do(initReq("app", 1000))).ErrorCode, kerr.ConcurrentTransactions)
	wantCode(t, "add while prepared", addCode(h, h.do(addReq("app", pid, epoch, "orders", 1))), kerr.ConcurrentTransactions)
	wantCode(t, "commit again", answer[*kmsg.EndTxnResponse](h, h.do(endReq("app", pid, epoch, true))).ErrorCode, kerr.ConcurrentTransactions)
	wantCode(t, "abort now", answer[*kmsg.EndTxnResponse](h, h.do(endReq("app", pid, epoch, false))).ErrorCode, kerr.InvalidTxnState)

	h.flushMarks(nil)
	h.wantState("app", kmsg.TransactionStatePrepareCommit) // until Complete* is durable
	if h.answered(end) {
		t.Fatal("EndTxn answered before CompleteCommit was durable")
	}
	h.flush(nil)
	h.wantState("app", kmsg.TransactionStateCompleteCommit)
	wantCode(t, "end", answer[*kmsg.EndTxnResponse](h, end).ErrorCode, nil)
	if len(h.txn("app").parts) != 0 {
		t.Fatal("completed transaction keeps partitions")
	}
	ds := decodeAll(t, h.written)
	if last := ds[len(ds)-1]; last.meta.state != kmsg.TransactionStateCompleteCommit {
		t.Fatalf("last record %v", last.meta.state)
	}
	wantCode(t, "commit retried", answer[*kmsg.EndTxnResponse](h, h.do(endReq("app", pid, epoch, true))).ErrorCode, nil)
	wantCode(t, "abort after commit", answer[*kmsg.EndTxnResponse](h, h.do(endReq("app", pid, epoch, false))).ErrorCode, kerr.InvalidTxnState)

	// The next transaction starts from CompleteCommit.
	c = h.do(addReq("app", pid, epoch, "payments", 0))
	h.flush(nil)
	wantCode(t, "next transaction", addCode(h, c), nil)
	h.wantState("app", kmsg.TransactionStateOngoing)
}

func TestAbortAndMarkerRetry(t *testing.T) {
	h := newHarness(t, nil)
	pid, epoch := h.ongoing("app")
	c := h.do(endReq("app", pid, epoch, false))
	h.flush(nil)
	for i := range 3 {
		h.flushMarks(errTest)
		if i == 0 {
			// The outcome is decided: the producer is answered at
			// the first failure, and the coordinator keeps trying.
			wantCode(t, "abort", answer[*kmsg.EndTxnResponse](h, c).ErrorCode, nil)
		}
		h.wantState("app", kmsg.TransactionStatePrepareAbort)
		next := h.st.next()
		if next.IsZero() || !next.Before(h.now.Add(retryBackoffMax+time.Millisecond)) {
			t.Fatalf("retry %d not scheduled: next %v", i, next)
		}
		h.advance(next.Sub(h.now))
		if len(h.marks) != 1 || h.marks[0].commit {
			t.Fatalf("retry %d: markers %+v", i, h.marks)
		}
	}
	h.flushMarks(nil)
	// The Complete record fails too: retried as well.
	h.flush(errTest)
	h.wantState("app", kmsg.TransactionStatePrepareAbort)
	h.advance(h.st.next().Sub(h.now))
	h.flush(nil)
	h.wantState("app", kmsg.TransactionStateCompleteAbort)
	if len(h.st.retrying) != 0 {
		t.Fatal("still retrying")
	}
}

func TestUnknownPartitions(t *testing.T) {
	h := newHarness(t, nil)
	pid, epoch := h.init("app")
	req := addReq("app", pid, epoch, "orders", 0, 7)
	req.Topics = append(req.Topics, kmsg.AddPartitionsToTxnRequestTopic{Topic: "ghost", Partitions: []int32{0}})
	r := answer[*kmsg.AddPartitionsToTxnResponse](h, h.do(req))
	got := map[TopicPartition]int16{}
	for _, t := range r.Topics {
		for _, p := range t.Partitions {
			got[TopicPartition{t.Topic, p.Partition}] = p.ErrorCode
		}
	}
	want := map[TopicPartition]int16{{"orders", 0}: kerr.OperationNotAttempted.Code,
		{"orders", 7}: kerr.UnknownTopicOrPartition.Code, {"ghost", 0}: kerr.UnknownTopicOrPartition.Code}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("codes %v, want %v", got, want)
	}
	h.wantState("app", kmsg.TransactionStateEmpty)
	wantCode(t, "unknown id", addCode(h, h.do(addReq("nope", pid, epoch, "orders", 0))), kerr.InvalidProducerIDMapping)
}

func TestInitAbortsOngoing(t *testing.T) {
	h := newHarness(t, nil)
	pid, epoch := h.ongoing("app")
	c := h.do(initReq("app", 60_000))
	h.flush(nil)
	wantCode(t, "init over ongoing", answer[*kmsg.InitProducerIDResponse](h, c).ErrorCode, kerr.ConcurrentTransactions)
	h.wantState("app", kmsg.TransactionStatePrepareAbort)
	if len(h.marks) != 1 || h.marks[0].commit || h.marks[0].epoch != epoch+1 {
		t.Fatalf("markers %+v, want an abort at epoch %d", h.marks, epoch+1)
	}
	// The fenced producer cannot end it.
	wantCode(t, "old producer", answer[*kmsg.EndTxnResponse](h, h.do(endReq("app", pid, epoch, true))).ErrorCode, kerr.ProducerFenced)
	h.settle()
	h.wantState("app", kmsg.TransactionStateCompleteAbort)
	pid2, epoch2 := h.init("app")
	if pid2 != pid || epoch2 != epoch+2 {
		t.Fatalf("retry: pid %d epoch %d, want %d %d", pid2, epoch2, pid, epoch+2)
	}
}

func TestTimeoutAbortsAndFences(t *testing.T) {
	h := newHarness(t, nil)
	pid, epoch := h.init("app")
	h.do(initReq("app", 5_000)) // a 5 s timeout, epoch+1
	h.flush(nil)
	epoch++
	c := h.do(addReq("app", pid, epoch, "orders", 0))
	h.flush(nil)
	wantCode(t, "add", addCode(h, c), nil)
	h.advance(DefaultAbortCheckInterval) // 10 s > 5 s
	h.flush(nil)
	h.wantState("app", kmsg.TransactionStatePrepareAbort)
	if len(h.marks) != 1 || h.marks[0].epoch != epoch+1 || h.marks[0].commit {
		t.Fatalf("markers %+v", h.marks)
	}
	h.settle()
	h.wantState("app", kmsg.TransactionStateCompleteAbort)
	wantCode(t, "producer after timeout", answer[*kmsg.EndTxnResponse](h, h.do(endReq("app", pid, epoch, true))).ErrorCode, kerr.ProducerFenced)
	// A transaction within its timeout is left alone.
	_, e := h.init("app")
	h.do(addReq("app", pid, e, "orders", 1))
	h.flush(nil)
	h.advance(DefaultAbortCheckInterval / 2)
	h.advance(DefaultAbortCheckInterval / 2)
	h.wantState("app", kmsg.TransactionStateOngoing) // 60 s timeout
}

func TestExpiry(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.IDExpiration = time.Hour })
	h.init("idle")
	h.ongoing("busy") // never expires while a transaction is open
	h.txn("busy").timeoutMs = math.MaxInt32
	h.advance(59 * time.Minute)
	h.txn("idle")
	h.advance(time.Minute + DefaultAbortCheckInterval)
	if !h.txn("idle").pending {
		t.Fatal("expiry did not write a tombstone")
	}
	h.flush(nil)
	if _, ok := h.st.txns["idle"]; ok {
		t.Fatal("idle id not expired")
	}
	h.txn("busy")
	ds := decodeAll(t, h.written)
	if last := ds[len(ds)-1]; last.id != "idle" || last.meta != nil {
		t.Fatalf("last record %+v, want the tombstone of idle", last)
	}
	r := h.st.describe(&kmsg.DescribeTransactionsRequest{TransactionalIDs: []string{"idle"}})
	wantCode(t, "describe expired", r.TransactionStates[0].ErrorCode, kerr.TransactionalIDNotFound)
}

func TestEpochExhaustion(t *testing.T) {
	h := newHarness(t, nil)
	pid, _ := h.init("app")
	h.txn("app").epoch = math.MaxInt16 - 1
	req := initReq("app", 60_000)
	req.ProducerID, req.ProducerEpoch = pid, math.MaxInt16-1
	c := h.do(req)
	h.flush(nil)
	r := answer[*kmsg.InitProducerIDResponse](h, c)
	wantCode(t, "init exhausted", r.ErrorCode, nil)
	if r.ProducerID == pid || r.ProducerEpoch != 0 {
		t.Fatalf("got pid %d epoch %d, want a new pid at epoch 0", r.ProducerID, r.ProducerEpoch)
	}
	ds := decodeAll(t, h.written)
	if last := ds[len(ds)-1]; last.meta.pid != r.ProducerID || last.meta.lastPID != pid {
		t.Fatalf("record pid %d previous %d", last.meta.pid, last.meta.lastPID)
	}
	// A retry with the old id and exhausted epoch (the response was
	// lost) gets the same new id and epoch.
	c = h.do(req)
	h.flush(nil)
	r2 := answer[*kmsg.InitProducerIDResponse](h, c)
	if r2.ErrorCode != 0 || r2.ProducerID != r.ProducerID || r2.ProducerEpoch != 0 {
		t.Fatalf("retry: %v pid %d epoch %d", kerr.ErrorForCode(r2.ErrorCode), r2.ProducerID, r2.ProducerEpoch)
	}
}

func TestKIP360(t *testing.T) {
	h := newHarness(t, nil)
	pid, e0 := h.init("app")
	recover := func(pid int64, epoch int16, version int16) *kmsg.InitProducerIDResponse {
		req := initReq("app", 60_000)
		req.Version, req.ProducerID, req.ProducerEpoch = version, pid, epoch
		c := h.do(req)
		h.flush(nil)
		return answer[*kmsg.InitProducerIDResponse](h, c)
	}
	r := recover(pid, e0, 4)
	if r.ErrorCode != 0 || r.ProducerID != pid || r.ProducerEpoch != e0+1 {
		t.Fatalf("recover: %v %d %d", kerr.ErrorForCode(r.ErrorCode), r.ProducerID, r.ProducerEpoch)
	}
	// The same request again (its response was lost): same epoch.
	r = recover(pid, e0, 4)
	if r.ErrorCode != 0 || r.ProducerEpoch != e0+1 {
		t.Fatalf("retried recover: %v %d", kerr.ErrorForCode(r.ErrorCode), r.ProducerEpoch)
	}
	wantCode(t, "another producer id", recover(pid+5, e0, 4).ErrorCode, kerr.ProducerFenced)
	wantCode(t, "another producer id, v3", recover(pid+5, e0, 3).ErrorCode, kerr.InvalidProducerEpoch)
	// A plain init (another producer) bumps and forgets the last epoch:
	// the old producer's recovery is fenced.
	h.init("app")
	wantCode(t, "stale epoch", recover(pid, e0+1, 4).ErrorCode, kerr.ProducerFenced)
	// An idempotent producer recovering gets a fresh id.
	req := initReq("", 0)
	req.ProducerID, req.ProducerEpoch = pid, 3
	c := h.do(req)
	h.flush(nil)
	if r := answer[*kmsg.InitProducerIDResponse](h, c); r.ErrorCode != 0 || r.ProducerID == pid || r.ProducerEpoch != 0 {
		t.Fatalf("idempotent recover: %+v", r)
	}
}

func TestIdempotentProducerIDBlocks(t *testing.T) {
	h := newHarness(t, nil)
	seen := map[int64]bool{}
	var calls []*call
	for range pidBlockSize + 5 {
		calls = append(calls, h.do(initReq("", 0)))
	}
	h.flush(nil)
	for _, c := range calls {
		r := answer[*kmsg.InitProducerIDResponse](h, c)
		if r.ErrorCode != 0 || r.ProducerEpoch != 0 || seen[r.ProducerID] {
			t.Fatalf("init: %+v (seen %v)", r, seen[r.ProducerID])
		}
		seen[r.ProducerID] = true
	}
	if ds := decodeAll(t, h.written); len(ds) != 2 || ds[1].pidEnd != 2*pidBlockSize {
		t.Fatalf("block records %+v", ds)
	}
	// A failed block record hands out nothing.
	h.st.pids.next = h.st.pids.end
	c := h.do(initReq("", 0))
	h.flush(errTest)
	wantCode(t, "block append failed", answer[*kmsg.InitProducerIDResponse](h, c).ErrorCode, kerr.CoordinatorNotAvailable)
}

func TestVerify(t *testing.T) {
	h := newHarness(t, nil)
	pid, epoch := h.ongoing("app")
	check := func(id string, pid int64, epoch int16, tp TopicPartition, want *kerr.Error) {
		t.Helper()
		all, each := h.st.verify(id, pid, epoch, []TopicPartition{tp}, kerr.InvalidTxnState)
		got := all
		if all == nil {
			got = each[0]
		}
		if got != want {
			t.Fatalf("verify %s %d/%d %v: %v, want %v", id, pid, epoch, tp, got, want)
		}
	}
	check("app", pid, epoch, TopicPartition{"orders", 1}, nil)
	check("app", pid, epoch, TopicPartition{"orders", 2}, kerr.InvalidTxnState)
	check("app", pid, epoch-1, TopicPartition{"orders", 1}, kerr.ProducerFenced)
	check("app", pid+1, epoch, TopicPartition{"orders", 1}, kerr.InvalidProducerIDMapping)
	check("nope", pid, epoch, TopicPartition{"orders", 1}, kerr.InvalidProducerIDMapping)

	// The batched, broker-to-broker form (v4+).
	batch := func(version int16, verifyOnly bool, parts ...int32) *call {
		req := kmsg.NewPtrAddPartitionsToTxnRequest()
		req.Version = version
		tr := kmsg.NewAddPartitionsToTxnRequestTransaction()
		tr.TransactionalID, tr.ProducerID, tr.ProducerEpoch, tr.VerifyOnly = "app", pid, epoch, verifyOnly
		tr.Topics = []kmsg.AddPartitionsToTxnRequestTransactionTopic{{Topic: "orders", Partitions: parts}}
		req.Transactions = append(req.Transactions, tr)
		return h.do(req)
	}
	codes := func(c *call) []int16 {
		var out []int16
		for _, tr := range answer[*kmsg.AddPartitionsToTxnResponse](h, c).Transactions {
			for _, tt := range tr.Topics {
				for _, p := range tt.Partitions {
					out = append(out, p.ErrorCode)
				}
			}
		}
		return out
	}
	if got := codes(batch(4, true, 0, 2)); !reflect.DeepEqual(got, []int16{0, kerr.InvalidTxnState.Code}) {
		t.Fatalf("v4 verify: %v", got)
	}
	if got := codes(batch(5, true, 0, 2)); !reflect.DeepEqual(got, []int16{0, kerr.TransactionAbortable.Code}) {
		t.Fatalf("v5 verify: %v", got)
	}
	c := batch(5, false, 2)
	if h.answered(c) {
		t.Fatal("batched add answered before durable")
	}
	h.flush(nil)
	if got := codes(c); !reflect.DeepEqual(got, []int16{0}) {
		t.Fatalf("v5 add: %v", got)
	}
	check("app", pid, epoch, TopicPartition{"orders", 2}, nil)

	// Completing: CONCURRENT_TRANSACTIONS; completed: not in any transaction.
	h.do(endReq("app", pid, epoch, true))
	h.flush(nil)
	check("app", pid, epoch, TopicPartition{"orders", 1}, kerr.ConcurrentTransactions)
	h.settle()
	check("app", pid, epoch, TopicPartition{"orders", 1}, kerr.InvalidTxnState)
	if e := (&VerifyError{Err: kerr.ProducerFenced}).ProduceCode(); e != kerr.InvalidProducerEpoch.Code {
		t.Fatalf("produce code of PRODUCER_FENCED: %v", kerr.ErrorForCode(e))
	}
}

func TestDescribeAndList(t *testing.T) {
	h := newHarness(t, nil)
	pid, epoch := h.ongoing("app")
	c := h.do(offsetsReq("app", pid, epoch, "grp"))
	h.flush(nil)
	wantCode(t, "offsets", answer[*kmsg.AddOffsetsToTxnResponse](h, c).ErrorCode, nil)
	other, _ := h.init("other")
	h.now = h.now.Add(time.Minute)

	d := h.st.describe(&kmsg.DescribeTransactionsRequest{TransactionalIDs: []string{"app", "nope", ""}})
	s := d.TransactionStates[0]
	gp := testTopics.GroupPartition("grp")
	wantTopics := []kmsg.DescribeTransactionsResponseTransactionStateTopic{{Topic: gp.Topic, Partitions: []int32{gp.Partition}}, {Topic: "orders", Partitions: []int32{0, 1}}}
	if s.ErrorCode != 0 || s.State != "Ongoing" || s.ProducerID != pid || s.ProducerEpoch != epoch ||
		s.TimeoutMillis != 60_000 || s.StartTimestamp != h.now.Add(-time.Minute).UnixMilli() || !reflect.DeepEqual(s.Topics, wantTopics) {
		t.Fatalf("describe: %+v", s)
	}
	wantCode(t, "describe unknown", d.TransactionStates[1].ErrorCode, kerr.TransactionalIDNotFound)
	wantCode(t, "describe empty", d.TransactionStates[2].ErrorCode, kerr.InvalidRequest)

	list := func(mod func(*kmsg.ListTransactionsRequest)) (ids []string, unknown []string, code int16) {
		req := kmsg.NewPtrListTransactionsRequest()
		req.Version = 2
		if mod != nil {
			mod(req)
		}
		r := h.st.list(h.now, req)
		for _, s := range r.TransactionStates {
			ids = append(ids, s.TransactionalID+"="+s.TransactionState)
		}
		return ids, r.UnknownStateFilters, r.ErrorCode
	}
	if ids, _, _ := list(nil); !reflect.DeepEqual(ids, []string{"app=Ongoing", "other=Empty"}) {
		t.Fatalf("list all: %v", ids)
	}
	ids, unknown, _ := list(func(r *kmsg.ListTransactionsRequest) { r.StateFilters = []string{"Empty", "Bogus"} })
	if !reflect.DeepEqual(ids, []string{"other=Empty"}) || !reflect.DeepEqual(unknown, []string{"Bogus"}) {
		t.Fatalf("list by state: %v %v", ids, unknown)
	}
	if ids, _, _ := list(func(r *kmsg.ListTransactionsRequest) { r.StateFilters = []string{"Bogus"} }); len(ids) != 0 {
		t.Fatalf("only unknown states: %v", ids)
	}
	if ids, _, _ := list(func(r *kmsg.ListTransactionsRequest) { r.ProducerIDFilters = []int64{other} }); !reflect.DeepEqual(ids, []string{"other=Empty"}) {
		t.Fatalf("list by producer id: %v", ids)
	}
	if ids, _, _ := list(func(r *kmsg.ListTransactionsRequest) { r.DurationFilterMillis = 30_000 }); !reflect.DeepEqual(ids, []string{"app=Ongoing"}) {
		t.Fatalf("list by duration: %v", ids)
	}
	if ids, _, _ := list(func(r *kmsg.ListTransactionsRequest) { r.DurationFilterMillis = 90_000 }); len(ids) != 0 {
		t.Fatalf("list by long duration: %v", ids)
	}
	if ids, _, _ := list(func(r *kmsg.ListTransactionsRequest) { r.TransactionalIDPattern = kmsg.StringPtr("^ot") }); !reflect.DeepEqual(ids, []string{"other=Empty"}) {
		t.Fatalf("list by pattern: %v", ids)
	}
	if _, _, code := list(func(r *kmsg.ListTransactionsRequest) { r.TransactionalIDPattern = kmsg.StringPtr("(") }); code != kerr.InvalidRegularExpression.Code {
		t.Fatalf("bad pattern: %v", kerr.ErrorForCode(code))
	}
}

func TestOptionsValidate(t *testing.T) {
	err := Options{NumPartitions: -1, MaxTimeout: -1, MaxQueuedRequests: -1}.Validate()
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{"Log is required", "Markers is required", "Topics is required", "NumPartitions", "MaxTimeout", "MaxQueuedRequests"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%q missing from %v", want, err)
		}
	}
}

func TestConcurrentWhileAppending(t *testing.T) {
	h := newHarness(t, nil)
	pid, epoch := h.init("app")
	add := h.do(addReq("app", pid, epoch, "orders", 0)) // not yet durable
	wantCode(t, "end while adding", answer[*kmsg.EndTxnResponse](h, h.do(endReq("app", pid, epoch, true))).ErrorCode, kerr.ConcurrentTransactions)
	wantCode(t, "init while adding", answer[*kmsg.InitProducerIDResponse](h, h.do(initReq("app", 1000))).ErrorCode, kerr.ConcurrentTransactions)
	wantCode(t, "add while adding", addCode(h, h.do(addReq("app", pid, epoch, "orders", 1))), kerr.ConcurrentTransactions)
	h.flush(nil)
	wantCode(t, "add", addCode(h, add), nil)
}

func TestLoadPrepareEpochFenceIsOngoing(t *testing.T) {
	h := newHarness(t, nil)
	m := sampleMeta()
	m.state = kmsg.TransactionStatePrepareEpochFence
	d, err := decodeRecord(txnRecord("app", &m))
	if err != nil {
		t.Fatal(err)
	}
	h.st.apply(d)
	h.wantState("app", kmsg.TransactionStateOngoing)
	h.advance(70 * time.Second) // past its 60 s timeout
	h.settle()
	h.wantState("app", kmsg.TransactionStateCompleteAbort)
	if tx := h.txn("app"); tx.epoch != m.epoch+1 {
		t.Fatalf("epoch %d, want %d", tx.epoch, m.epoch+1)
	}
}
