package broker_test

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/internal/batch"
	"github.com/sluice-io/sluice/internal/broker/brokertest"
)

// testSeed returns the seed of a randomized test: the environment
// variable env when set, so a failure replays, else the clock. The test
// logs it either way.
func testSeed(t *testing.T, env string) uint64 {
	t.Helper()
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv(env); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("%s: %v", env, err)
		}
		seed = v
	}
	t.Logf("seed %d (replay with %s=%d)", seed, env, seed)
	return seed
}

// Limits of the connection-drop test.
const (
	dropPartitions   = 4
	dropPerPartition = 5000
	dropValueBytes   = 100
	dropBatchBytes   = 16 << 10 // several requests per second of producing, so several are in flight
	dropBudgetMin    = 32 << 10 // bytes a connection writes before it is cut, at least...
	dropBudgetSpread = 288 << 10
	dropTimeMin      = 50 * time.Millisecond // ... or the time it lives, for half of them
	dropTimeSpread   = 950 * time.Millisecond
	// dropsMax bounds the cuts, so the producer always finishes: past it
	// connections live.
	dropsMax = 40
)

// dropDialer dials real connections and cuts each at a seeded random
// point: after a random number of bytes written (just after a request
// went out, so its response is lost) or at a random time.
type dropDialer struct {
	mu      sync.Mutex
	rng     *rand.Rand
	conns   []*dropConn
	drops   int // connections cut
	written int // of those, connections that had written something
	stopped bool
}

type dropConn struct {
	net.Conn
	d       *dropDialer
	budget  int64
	written atomic.Int64
	timer   *time.Timer
	once    sync.Once

	mu       sync.Mutex
	requests frames // written
	answers  frames // read
	inflight int64  // most requests written and not answered at once
}

func (d *dropDialer) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	dc := &dropConn{Conn: c, d: d, budget: int64(dropBudgetMin + d.rng.IntN(dropBudgetSpread))}
	if d.rng.IntN(2) == 0 {
		dc.timer = time.AfterFunc(dropTimeMin+time.Duration(d.rng.Int64N(int64(dropTimeSpread))), dc.cut)
	}
	d.conns = append(d.conns, dc)
	return dc, nil
}

// stop ends the cutting and the timers; the connections stay with kgo.
func (d *dropDialer) stop() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.stopped = true
	for _, c := range d.conns {
		if c.timer != nil {
			c.timer.Stop()
		}
	}
}

// maxInflight is the most requests any connection had in flight.
func (d *dropDialer) maxInflight() int64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	var n int64
	for _, c := range d.conns {
		c.mu.Lock()
		n = max(n, c.inflight)
		c.mu.Unlock()
	}
	return n
}

func (d *dropDialer) counts() (drops, afterWrite int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.drops, d.written
}

func (c *dropConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.mu.Lock()
	c.answers.feed(p[:n])
	c.mu.Unlock()
	return n, err
}

func (c *dropConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.mu.Lock()
	c.requests.feed(p[:n])
	c.inflight = max(c.inflight, c.requests.n-c.answers.n)
	c.mu.Unlock()
	if c.written.Add(int64(n)) >= c.budget {
		c.cut()
	}
	return n, err
}

func (c *dropConn) cut() {
	c.once.Do(func() {
		d := c.d
		d.mu.Lock()
		ok := !d.stopped && d.drops < dropsMax
		if ok {
			d.drops++
			if c.written.Load() > 0 {
				d.written++
			}
		}
		d.mu.Unlock()
		if ok {
			c.Conn.Close()
		}
	})
}

// lostProduces counts produce requests written in full whose response
// never came: each is a request the broker may have appended and the
// client had to retry.
type lostProduces struct{ n atomic.Int64 }

func (h *lostProduces) OnBrokerE2E(_ kgo.BrokerMetadata, key int16, e kgo.BrokerE2E) {
	if key == int16(kmsg.Produce) && e.WriteErr == nil && e.ReadErr != nil {
		h.n.Add(1)
	}
}

// frames counts the size-prefixed Kafka frames that went through one
// direction of a connection.
type frames struct {
	hdr  [4]byte
	hdrN int
	left int64
	n    int64
}

func (f *frames) feed(p []byte) {
	for len(p) > 0 {
		if f.hdrN < 4 {
			k := copy(f.hdr[f.hdrN:], p)
			f.hdrN += k
			p = p[k:]
			if f.hdrN == 4 {
				f.left = int64(binary.BigEndian.Uint32(f.hdr[:]))
			}
		} else {
			k := min(int64(len(p)), f.left)
			f.left -= k
			p = p[k:]
		}
		if f.hdrN == 4 && f.left == 0 {
			f.n++
			f.hdrN = 0
		}
	}
}

func dropValue(p int32, i int) []byte {
	v := make([]byte, dropValueBytes)
	for j := range v {
		v[j] = 'x'
	}
	copy(v, fmt.Sprintf("p%d-%06d-", p, i))
	return v
}

// An idempotent producer with five requests in flight, whose connections
// are cut under it at random (requests lost after they were sent, so kgo
// retries batches the log may already hold): every partition ends up with
// exactly the produced records, in order, once each, at contiguous
// offsets.
func TestIdempotentProducerSurvivesConnectionDrops(t *testing.T) {
	seed := testSeed(t, "SLUICE_IDEM_SEED")
	b := brokertest.Start(t)
	const topic = "idem-drops"
	createTopic(t, b, topic, dropPartitions, nil)

	d := &dropDialer{rng: rand.New(rand.NewPCG(seed, 1))}
	t.Cleanup(d.stop)
	hook := &lostProduces{}
	cl := b.Client(t,
		kgo.Dialer(d.dial),
		kgo.WithHooks(hook),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerBatchMaxBytes(dropBatchBytes),
		kgo.ProducerBatchCompression(kgo.NoCompression()), // so that bytes written track records
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.DefaultProduceTopic(topic),
		kgo.RetryBackoffFn(func(int) time.Duration { return 20 * time.Millisecond }),
	)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var (
		errMu    sync.Mutex
		firstErr error
	)
	start := time.Now()
	for i := range dropPerPartition {
		for p := range int32(dropPartitions) {
			cl.Produce(ctx, &kgo.Record{Partition: p, Value: dropValue(p, i)}, func(_ *kgo.Record, err error) {
				if err != nil {
					errMu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					errMu.Unlock()
				}
			})
		}
	}
	if err := cl.Flush(ctx); err != nil {
		t.Fatalf("flush: %v", err)
	}
	d.stop()
	if firstErr != nil {
		t.Fatalf("produce: %v", firstErr)
	}
	drops, afterWrite := d.counts()
	lost := hook.n.Load()
	maxInflight := d.maxInflight()
	t.Logf("produced %d records in %v; %d connections cut (%d after writing), %d produce requests lost after being sent, at most %d in flight",
		dropPartitions*dropPerPartition, time.Since(start).Round(time.Millisecond), drops, afterWrite, lost, maxInflight)
	// A run without lost requests would prove nothing about duplicates.
	if afterWrite == 0 || lost == 0 {
		t.Fatalf("no produce request was lost after being sent (%d cuts, %d after writing, %d lost): the test did not test retries", drops, afterWrite, lost)
	}
	if maxInflight < 2 {
		t.Fatalf("at most %d request in flight on a connection: the test did not test pipelined produces", maxInflight)
	}

	recs := idemReadAll(t, b, topic, dropPartitions*dropPerPartition, false)
	byPart := map[int32][]*kgo.Record{}
	for _, r := range recs {
		byPart[r.Partition] = append(byPart[r.Partition], r)
	}
	for p := range int32(dropPartitions) {
		rs := byPart[p]
		for i, r := range rs {
			if i >= dropPerPartition {
				t.Errorf("partition %d: %d records, want %d; extra at offset %d: %.12s", p, len(rs), dropPerPartition, r.Offset, r.Value)
				break
			}
			if r.Offset != int64(i) || string(r.Value) != string(dropValue(p, i)) {
				t.Errorf("partition %d: record %d is %.12s at offset %d; want %.12s at offset %d (duplicate, gap or reorder)",
					p, i, r.Value, r.Offset, dropValue(p, i), i)
				break
			}
		}
		if len(rs) < dropPerPartition {
			t.Errorf("partition %d: %d records, want %d", p, len(rs), dropPerPartition)
		}
		if end := endOffset(t, b, topic, p); end != dropPerPartition {
			t.Errorf("partition %d: end offset %d, want %d", p, end, dropPerPartition)
		}
	}
}

// idemReadAll reads topic from the start until n records arrived, then a
// moment longer, so that records beyond n (duplicates) show.
func idemReadAll(t *testing.T, b *brokertest.Broker, topic string, n int, committed bool) []*kgo.Record {
	t.Helper()
	opts := []kgo.Opt{kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(100 * time.Millisecond)}
	if committed {
		opts = append(opts, kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	}
	cl := b.Client(t, opts...)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var out []*kgo.Record
	for len(out) < n && ctx.Err() == nil {
		fs := cl.PollFetches(ctx)
		fs.EachError(func(topic string, p int32, err error) {
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("fetch %s/%d: %v", topic, p, err)
			}
		})
		out = append(out, fs.Records()...)
	}
	ctx2, cancel2 := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel2()
	out = append(out, cl.PollFetches(ctx2).Records()...)
	return out
}

// rawUntil sends the request mk builds until code of its response is not
// one of retry, for at most 10 s, and returns the last response.
func rawUntil(t *testing.T, rc *rawConn, mk func() kmsg.Request, code func(kmsg.Response) int16, retry ...*kerr.Error) kmsg.Response {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp := rc.do(mk())
		c := code(resp)
		again := false
		for _, e := range retry {
			again = again || c == e.Code
		}
		if !again || time.Now().After(deadline) {
			return resp
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// rawInitProducerID runs InitProducerId (v4) until it is answered with
// something other than a retriable coordinator error.
func rawInitProducerID(t *testing.T, rc *rawConn, txnID *string) *kmsg.InitProducerIDResponse {
	t.Helper()
	if txnID != nil {
		// The transaction-state topic is created by the first
		// FindCoordinator for a transactional id, as in Kafka.
		rawUntil(t, rc, func() kmsg.Request {
			req := kmsg.NewPtrFindCoordinatorRequest()
			req.Version = 3
			req.CoordinatorKey, req.CoordinatorType = *txnID, 1
			return req
		}, func(r kmsg.Response) int16 { return r.(*kmsg.FindCoordinatorResponse).ErrorCode },
			kerr.CoordinatorNotAvailable, kerr.CoordinatorLoadInProgress)
	}
	resp := rawUntil(t, rc, func() kmsg.Request {
		req := kmsg.NewPtrInitProducerIDRequest()
		req.Version = 4
		req.TransactionalID = txnID
		req.TransactionTimeoutMillis = 60000
		return req
	}, func(r kmsg.Response) int16 { return r.(*kmsg.InitProducerIDResponse).ErrorCode },
		kerr.CoordinatorNotAvailable, kerr.CoordinatorLoadInProgress, kerr.NotCoordinator, kerr.ConcurrentTransactions).(*kmsg.InitProducerIDResponse)
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
		t.Fatalf("InitProducerId %v: %v", txnID, err)
	}
	return resp
}

func idemBatch(t *testing.T, o batch.BuildOptions, values ...string) []byte {
	t.Helper()
	recs := make([]batch.Record, len(values))
	for i, v := range values {
		recs[i] = batch.Record{Value: []byte(v)}
	}
	raw, err := batch.Build(batch.CodecNone, time.Now().UnixMilli(), recs, o)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// produceVersions are the Produce versions that name topics (v13 names
// them by id): the oldest with idempotence, and the ones whose error
// sets changed since.
var produceVersions = []int16{3, 7, 9, 12}

// The idempotence rules at the protocol level: a retried batch is answered
// with its original offset and stored once; a sequence gap is
// OUT_OF_ORDER_SEQUENCE_NUMBER; a producer fenced by a newer epoch of its
// transactional id is refused.
func TestIdempotentProduceRaw(t *testing.T) {
	b := brokertest.Start(t)
	const topic = "idem-raw"
	createTopic(t, b, topic, 1, nil)
	createTopic(t, b, topic+"-txn", 1, nil)
	rc := dialRaw(t, b.Addr())
	code := func(r kmsg.Response) error {
		return kerr.ErrorForCode(r.(*kmsg.ProduceResponse).Topics[0].Partitions[0].ErrorCode)
	}

	t.Run("duplicate and gap", func(t *testing.T) {
		init := rawInitProducerID(t, rc, nil)
		if init.ProducerID < 0 || init.ProducerEpoch < 0 {
			t.Fatalf("InitProducerId: producer %d epoch %d", init.ProducerID, init.ProducerEpoch)
		}
		o := batch.BuildOptions{Idempotent: true, ProducerID: init.ProducerID, ProducerEpoch: init.ProducerEpoch}
		first := idemBatch(t, o, "a0", "a1", "a2")
		for i, v := range append([]int16{9}, produceVersions...) {
			resp := rc.do(produceReq(v, topic, 0, append([]byte(nil), first...)))
			p := resp.(*kmsg.ProduceResponse).Topics[0].Partitions[0]
			if err := code(resp); err != nil || p.BaseOffset != 0 {
				t.Fatalf("v%d send %d of sequence 0: base offset %d, error %v; want 0 and no error (a duplicate answers with the original offset)", v, i, p.BaseOffset, err)
			}
		}
		o.BaseSequence = 3
		resp := rc.do(produceReq(9, topic, 0, idemBatch(t, o, "b0", "b1")))
		if p := resp.(*kmsg.ProduceResponse).Topics[0].Partitions[0]; code(resp) != nil || p.BaseOffset != 3 {
			t.Fatalf("sequence 3: base offset %d, error %v; want 3", p.BaseOffset, code(resp))
		}
		// Expected next is 5: 9 leaves a gap.
		o.BaseSequence = 9
		for _, v := range produceVersions {
			resp := rc.do(produceReq(v, topic, 0, idemBatch(t, o, "gap")))
			p := resp.(*kmsg.ProduceResponse).Topics[0].Partitions[0]
			if err := code(resp); !errors.Is(err, kerr.OutOfOrderSequenceNumber) || p.BaseOffset != -1 {
				t.Fatalf("v%d sequence gap: base offset %d, error %v; want OUT_OF_ORDER_SEQUENCE_NUMBER", v, p.BaseOffset, err)
			}
		}
		if end := endOffset(t, b, topic, 0); end != 5 {
			t.Fatalf("end offset %d after a duplicated batch of 3, a batch of 2 and refused gaps; want 5", end)
		}
		recs := idemReadAll(t, b, topic, 5, false)
		var got []string
		for _, r := range recs {
			got = append(got, fmt.Sprintf("%d:%s", r.Offset, r.Value))
		}
		if want := "0:a0 1:a1 2:a2 3:b0 4:b1"; strings.Join(got, " ") != want {
			t.Fatalf("log holds %q, want %q", strings.Join(got, " "), want)
		}
	})

	t.Run("fenced epoch", func(t *testing.T) {
		id, topic := "idem-raw-txn", topic+"-txn"
		old := rawInitProducerID(t, rc, &id)
		add := func(version int16, epoch int16) error {
			req := kmsg.NewPtrAddPartitionsToTxnRequest()
			req.Version = version
			req.TransactionalID, req.ProducerID, req.ProducerEpoch = id, old.ProducerID, epoch
			rt := kmsg.NewAddPartitionsToTxnRequestTopic()
			rt.Topic, rt.Partitions = topic, []int32{0}
			req.Topics = append(req.Topics, rt)
			resp := rc.do(req).(*kmsg.AddPartitionsToTxnResponse)
			return kerr.ErrorForCode(resp.Topics[0].Partitions[0].ErrorCode)
		}
		if err := add(3, old.ProducerEpoch); err != nil {
			t.Fatalf("AddPartitionsToTxn: %v", err)
		}
		o := batch.BuildOptions{Transactional: true, ProducerID: old.ProducerID, ProducerEpoch: old.ProducerEpoch}
		req := produceReq(9, topic, 0, idemBatch(t, o, "t0"))
		req.TransactionID = &id
		if resp := rc.do(req); code(resp) != nil {
			t.Fatalf("transactional produce: %v", code(resp))
		}
		// The same transactional id starts again: the open transaction is
		// aborted and the epoch bumped.
		cur := rawInitProducerID(t, rc, &id)
		if cur.ProducerID != old.ProducerID || cur.ProducerEpoch <= old.ProducerEpoch {
			t.Fatalf("second InitProducerId: producer %d epoch %d; first was %d epoch %d", cur.ProducerID, cur.ProducerEpoch, old.ProducerID, old.ProducerEpoch)
		}
		end := endOffset(t, b, topic, 0)
		o.BaseSequence = 1
		for _, v := range produceVersions {
			req := produceReq(v, topic, 0, idemBatch(t, o, "stale"))
			req.TransactionID = &id
			resp := rc.do(req)
			// Kafka's produce path answers a fenced epoch with
			// INVALID_PRODUCER_EPOCH at every version: PRODUCER_FENCED
			// would be fatal to clients that do not know it.
			if err := code(resp); !errors.Is(err, kerr.InvalidProducerEpoch) {
				t.Fatalf("v%d produce with the fenced epoch %d: %v; want INVALID_PRODUCER_EPOCH", v, old.ProducerEpoch, err)
			}
		}
		// AddPartitionsToTxn says PRODUCER_FENCED from v2 (KIP-588).
		for v, want := range map[int16]*kerr.Error{1: kerr.InvalidProducerEpoch, 3: kerr.ProducerFenced} {
			if err := add(v, old.ProducerEpoch); !errors.Is(err, want) {
				t.Fatalf("AddPartitionsToTxn v%d with the fenced epoch: %v; want %v", v, err, want)
			}
		}
		if got := endOffset(t, b, topic, 0); got != end {
			t.Fatalf("end offset %d after fenced produces, was %d", got, end)
		}
		if recs := idemReadAll(t, b, topic, 0, true); len(recs) != 0 {
			t.Fatalf("read_committed sees %d records of the fenced (aborted) transaction", len(recs))
		}
	})
}

// Limits of the transaction kill test.
const (
	tk9Topic       = "tk9"
	tk9Group       = "tk9-group"
	tk9TxnID       = "tk9-producer"
	tk9Partitions  = 3
	tk9Rounds      = 8
	tk9TxnsMax     = 1500 // per round
	tk9RecordsMax  = 3    // per partition per transaction
	tk9SettleAfter = 20 * time.Second
	tk9ProblemsMax = 20 // reported per check
)

// tk9Phase is how far a transaction got before the kill.
type tk9Phase int

const (
	tk9Producing tk9Phase = iota
	tk9Offsets
	tk9Ending // EndTransaction called
	tk9Ended  // EndTransaction returned
)

// tk9Txn is one transaction's intent and what the producer saw of it.
type tk9Txn struct {
	n      int
	commit bool
	counts [tk9Partitions]int // records written to each partition
	phase  tk9Phase
	endErr error
	err    error // what stopped the producer before EndTransaction
	killed bool  // the kill was aimed at this one's EndTransaction
}

func (x *tk9Txn) String() string {
	state := [...]string{"producing", "committing offsets", "ending", "ended"}[x.phase]
	if x.err != nil {
		return fmt.Sprintf("txn %d (commit=%v, failed %s: %v)", x.n, x.commit, state, x.err)
	}
	return fmt.Sprintf("txn %d (commit=%v, %s, end error %v)", x.n, x.commit, state, x.endErr)
}

// tk9Kill says when a round kills the broker.
type tk9Kill struct {
	at     int  // the first transaction it may aim at; -1: at a random time instead
	commit bool // the intent of the transaction it aims at
	// acked aims just after EndTransaction returned success (the
	// producer then stops), rather than just before it is called.
	acked bool
}

// tk9Run runs transactions until ctx ends or one fails, and signals aim
// at the moment kill describes.
func tk9Run(ctx context.Context, cl *kgo.Client, topicID [16]byte, rng *rand.Rand, first int, kill tk9Kill, aim chan<- struct{}, ledger *[]*tk9Txn) {
	for n := first; n < first+tk9TxnsMax && ctx.Err() == nil; n++ {
		x := &tk9Txn{n: n, commit: rng.IntN(3) != 0}
		for p := range tk9Partitions {
			x.counts[p] = 1 + rng.IntN(tk9RecordsMax)
		}
		*ledger = append(*ledger, x)
		aimed := kill.at >= 0 && n >= kill.at && x.commit == kill.commit
		if !tk9One(ctx, cl, topicID, x, func() {
			if aimed && !kill.acked {
				x.killed = true
				close(aim)
				kill.at = -1
			}
		}) {
			return
		}
		if aimed && kill.acked {
			x.killed = true
			close(aim)
			<-ctx.Done()
			return
		}
	}
}

// tk9One runs transaction x, calling ending just before EndTransaction,
// and reports whether it ended without error.
func tk9One(ctx context.Context, cl *kgo.Client, topicID [16]byte, x *tk9Txn, ending func()) bool {
	if x.err = cl.BeginTransaction(); x.err != nil {
		return false
	}
	var recs []*kgo.Record
	for p := range int32(tk9Partitions) {
		for i := range x.counts[p] {
			recs = append(recs, &kgo.Record{Topic: tk9Topic, Partition: p, Value: fmt.Appendf(nil, "t%d p%d %d", x.n, p, i)})
		}
	}
	if x.err = cl.ProduceSync(ctx, recs...).FirstErr(); x.err != nil {
		return false
	}
	x.phase = tk9Offsets
	if x.err = tk9CommitOffsets(ctx, cl, topicID, x.n); x.err != nil {
		return false
	}
	x.phase = tk9Ending
	ending()
	x.endErr = cl.EndTransaction(ctx, kgo.TransactionEndTry(x.commit))
	x.phase = tk9Ended
	return x.endErr == nil
}

// tk9CommitOffsets adds the group to the open transaction and commits
// offset n (metadata "txn n") for every partition of the topic in it.
func tk9CommitOffsets(ctx context.Context, cl *kgo.Client, topicID [16]byte, n int) error {
	pid, epoch, err := cl.ProducerID(ctx)
	if err != nil {
		return err
	}
	add := kmsg.NewPtrAddOffsetsToTxnRequest()
	add.TransactionalID, add.ProducerID, add.ProducerEpoch, add.Group = tk9TxnID, pid, epoch, tk9Group
	// CONCURRENT_TRANSACTIONS while the previous transaction's markers
	// are written is retriable; kgo retries it only for its own requests.
	for try := 0; ; try++ {
		resp, err := add.RequestWith(ctx, cl)
		if err != nil {
			return err
		}
		err = kerr.ErrorForCode(resp.ErrorCode)
		if err == nil {
			break
		}
		if !errors.Is(err, kerr.ConcurrentTransactions) || try == 100 {
			return fmt.Errorf("AddOffsetsToTxn: %w", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	commit := kmsg.NewPtrTxnOffsetCommitRequest()
	commit.TransactionalID, commit.Group, commit.ProducerID, commit.ProducerEpoch = tk9TxnID, tk9Group, pid, epoch
	rt := kmsg.NewTxnOffsetCommitRequestTopic()
	// v6 names the topic by id (KIP-1319), older versions by name.
	rt.Topic, rt.TopicID = tk9Topic, topicID
	meta := fmt.Sprintf("txn %d", n)
	for p := range int32(tk9Partitions) {
		rp := kmsg.NewTxnOffsetCommitRequestTopicPartition()
		rp.Partition, rp.Offset, rp.Metadata = p, int64(n), &meta
		rt.Partitions = append(rt.Partitions, rp)
	}
	commit.Topics = append(commit.Topics, rt)
	resp, err := commit.RequestWith(ctx, cl)
	if err != nil {
		return err
	}
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
				return fmt.Errorf("TxnOffsetCommit: %w", err)
			}
		}
	}
	return nil
}

// tk9Settle waits until the coordinator has no transaction between
// states: none in PrepareCommit or PrepareAbort (completed by the
// restarted coordinator on its own), then, after the producer is fenced,
// none open.
func tk9Settle(t *testing.T, cl *kgo.Client, what string, done func(state string) bool) {
	t.Helper()
	var last string
	deadline := time.Now().Add(tk9SettleAfter)
	for {
		req := kmsg.NewPtrListTransactionsRequest()
		resp, err := req.RequestWith(ctxT(t), cl)
		ok := err == nil && resp.ErrorCode == 0
		var states []string
		if ok {
			for _, s := range resp.TransactionStates {
				states = append(states, s.TransactionalID+"="+s.TransactionState)
				ok = ok && done(s.TransactionState)
			}
		} else if err == nil {
			err = kerr.ErrorForCode(resp.ErrorCode)
		}
		if ok {
			return
		}
		last = fmt.Sprintf("%v %v", states, err)
		if time.Now().After(deadline) {
			t.Fatalf("%s: transactions not settled after %v: %s", what, tk9SettleAfter, last)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Transactions are all-or-nothing across kill -9 of the broker, in
// particular while EndTransaction is in flight: after every restart each
// transaction's records are all visible to read_committed or none are;
// every transaction whose commit was acknowledged is visible; no aborted
// one is; the group's committed offsets are the last committed
// transaction's.
func TestTransactionsKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("starts and kills broker processes")
	}
	seed := testSeed(t, "SLUICE_IDEM_SEED")
	rng := rand.New(rand.NewPCG(seed, 2))
	dir := t.TempDir()
	child := startKillChild(t, dir, "127.0.0.1:0")
	addr := child.addr
	newClient := func(opts ...kgo.Opt) *kgo.Client {
		cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(addr), kgo.RetryTimeout(5 * time.Second),
			kgo.MetadataMinAge(100 * time.Millisecond)}, opts...)...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(cl.Close)
		return cl
	}
	r, err := kadm.NewClient(newClient()).CreateTopic(ctxT(t), tk9Partitions, 1, nil, tk9Topic)
	if err != nil || r.Err != nil {
		t.Fatalf("create: %v %v", err, r.Err)
	}
	topicID := r.ID

	var ledger []*tk9Txn
	for round := range tk9Rounds {
		// A round kills the broker at a random time, or while
		// EndTransaction of a random transaction is in flight (a commit
		// or an abort: up to 300µs after it was called, as an EndTxn here
		// takes about a millisecond and the broker a moment to die), or
		// just after a commit was acknowledged (Sluice answers EndTxn
		// once the markers are written; were it to answer before, they
		// might not be).
		kill, after := tk9Kill{at: -1}, time.Duration(0)
		switch round % 4 {
		case 0:
			after = time.Duration(100+rng.IntN(900)) * time.Millisecond
			t.Logf("round %d: kill %v after the start", round, after)
		case 1, 2:
			kill = tk9Kill{at: len(ledger) + 3 + rng.IntN(30), commit: round%4 == 1}
			after = time.Duration(rng.IntN(300)) * time.Microsecond
			t.Logf("round %d: kill %v after EndTransaction(commit=%v) of a txn from %d on is called", round, after, kill.commit, kill.at)
		case 3:
			kill = tk9Kill{at: len(ledger) + 3 + rng.IntN(30), commit: true, acked: true}
			after = time.Duration(rng.IntN(100)) * time.Microsecond
			t.Logf("round %d: kill %v after the commit of a txn from %d on is acknowledged", round, after, kill.at)
		}
		prod := newClient(kgo.TransactionalID(tk9TxnID), kgo.RequiredAcks(kgo.AllISRAcks()),
			kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.TransactionTimeout(60*time.Second),
			kgo.RetryBackoffFn(func(int) time.Duration { return 20 * time.Millisecond }))
		ctx, cancel := context.WithCancel(context.Background())
		aim := make(chan struct{})
		done := make(chan struct{})
		prodRng := rand.New(rand.NewPCG(seed, uint64(100+round)))
		before := len(ledger)
		go func() {
			defer close(done)
			tk9Run(ctx, prod, topicID, prodRng, len(ledger), kill, aim, &ledger)
		}()
		if kill.at >= 0 {
			select {
			case <-aim:
			case <-done:
				cancel()
				t.Fatalf("round %d: the producer stopped early: %v", round, ledger[len(ledger)-1])
			case <-time.After(30 * time.Second):
				cancel()
				prod.Close()
				<-done
				t.Fatalf("round %d: no transaction from %d on reached the moment to kill", round, kill.at)
			}
		}
		time.Sleep(after)
		child.kill()
		cancel()
		// An idempotent producer never gives up on a produce in flight
		// (the broker may have written it), whatever the context says;
		// closing the client does. It is closed before the restart, so
		// none of its retries reach the new broker.
		prod.Close()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			t.Fatalf("round %d: the producer did not stop after its client was closed", round)
		}
		if len(ledger) == before {
			t.Fatalf("round %d: no transaction started", round)
		}
		t.Logf("round %d: %d transactions; killed during %v", round, len(ledger)-before, ledger[len(ledger)-1])
		for _, x := range ledger[before:] {
			if x.killed {
				t.Logf("round %d: the kill was aimed at %v", round, x)
			}
		}

		child = startKillChild(t, dir, addr)
		adm := newClient()
		tk9Settle(t, adm, fmt.Sprintf("round %d, after restart", round), func(s string) bool {
			return s != "PrepareCommit" && s != "PrepareAbort"
		})
		// A new producer instance of the transactional id fences the old
		// one and aborts what it left open, as a restarted application
		// would.
		fence := func() (kmsg.Response, error) {
			req := kmsg.NewPtrInitProducerIDRequest()
			id := tk9TxnID
			req.TransactionalID, req.TransactionTimeoutMillis = &id, 60000
			return req.RequestWith(ctxT(t), adm)
		}
		deadline := time.Now().Add(tk9SettleAfter)
		for {
			resp, err := fence()
			if err == nil {
				err = kerr.ErrorForCode(resp.(*kmsg.InitProducerIDResponse).ErrorCode)
			}
			if err == nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("round %d: InitProducerId after restart: %v", round, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
		tk9Settle(t, adm, fmt.Sprintf("round %d, after fencing", round), func(s string) bool {
			return s == "Empty" || s == "CompleteCommit" || s == "CompleteAbort"
		})
		tk9Check(t, newClient, round, ledger)
		if t.Failed() {
			return // later rounds would repeat the same complaints
		}
	}

	// Last, with the broker up: a commit then an abort, whose outcomes
	// are known. The group's offsets are now its live state rather than
	// a replay of the offsets log after a restart.
	prod := newClient(kgo.TransactionalID(tk9TxnID), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	for _, commit := range []bool{true, false} {
		x := &tk9Txn{n: len(ledger), commit: commit, counts: [tk9Partitions]int{1, 2, 3}}
		ledger = append(ledger, x)
		if !tk9One(ctxT(t), prod, topicID, x, func() {}) {
			t.Fatalf("live: %v", x)
		}
	}
	tk9Check(t, newClient, tk9Rounds, ledger)
}

// tk9Check reads the whole topic read_committed and checks ledger against
// it, and the group's offsets against the last visible transaction.
func tk9Check(t *testing.T, newClient func(...kgo.Opt) *kgo.Client, round int, ledger []*tk9Txn) {
	t.Helper()
	problems := 0
	problem := func(format string, args ...any) {
		t.Helper()
		if problems++; problems <= tk9ProblemsMax {
			t.Errorf("round %d: "+format, append([]any{round}, args...)...)
		}
	}
	defer func() {
		if problems > tk9ProblemsMax {
			t.Errorf("round %d: %d more problems", round, problems-tk9ProblemsMax)
		}
	}()
	// A sentinel after everything, in every partition: once a
	// read_committed consumer has it, it has had all that precedes.
	sentinel := fmt.Sprintf("sentinel %d", round)
	plain := newClient(kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.DefaultProduceTopic(tk9Topic))
	var recs []*kgo.Record
	for p := range int32(tk9Partitions) {
		recs = append(recs, &kgo.Record{Partition: p, Value: []byte(sentinel)})
	}
	if err := plain.ProduceSync(ctxT(t), recs...).FirstErr(); err != nil {
		t.Fatalf("round %d: sentinel: %v", round, err)
	}
	parts := map[int32]kgo.Offset{}
	for p := range int32(tk9Partitions) {
		parts[p] = kgo.NewOffset().AtStart()
	}
	cons := newClient(kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{tk9Topic: parts}),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.FetchMaxWait(100*time.Millisecond))
	defer cons.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	seen := map[int]*[tk9Partitions]int{}
	lastTxn := [tk9Partitions]int{-1, -1, -1}
	lastIdx := [tk9Partitions]int{}
	sentinels := 0
	for sentinels < tk9Partitions {
		fs := cons.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("round %d: read_committed reached %d of %d sentinels in 20s", round, sentinels, tk9Partitions)
		}
		fs.EachError(func(topic string, p int32, err error) { t.Fatalf("round %d: fetch %s/%d: %v", round, topic, p, err) })
		fs.EachRecord(func(r *kgo.Record) {
			v := string(r.Value)
			if strings.HasPrefix(v, "sentinel ") {
				if v == sentinel {
					sentinels++
				}
				return
			}
			var n, i int
			var p int32
			if _, err := fmt.Sscanf(v, "t%d p%d %d", &n, &p, &i); err != nil || p != r.Partition || n < 0 || n >= len(ledger) {
				problem("unexpected record %q at %d/%d", v, r.Partition, r.Offset)
				return
			}
			// Transactions run one after another: a partition holds
			// them in order, each one's records in order.
			if n < lastTxn[p] || (n == lastTxn[p] && i != lastIdx[p]+1) || (n > lastTxn[p] && i != 0) {
				problem("partition %d: %q at offset %d follows txn %d record %d", p, v, r.Offset, lastTxn[p], lastIdx[p])
			}
			lastTxn[p], lastIdx[p] = n, i
			if seen[n] == nil {
				seen[n] = new([tk9Partitions]int)
			}
			seen[n][p]++
		})
	}

	lastCommitted := -1
	for _, x := range ledger {
		got := seen[x.n]
		full, none := got != nil, got == nil
		if got != nil {
			for p := range tk9Partitions {
				full = full && got[p] == x.counts[p]
				if got[p] > x.counts[p] {
					problem("%v: partition %d shows %d records, %d were written", x, p, got[p], x.counts[p])
				}
			}
		}
		switch {
		case !full && !none:
			problem("%v is partly visible: %v of %v records", x, *got, x.counts)
		case full && !x.commit:
			problem("%v was to be aborted but is visible", x)
		case full && x.phase < tk9Ending:
			problem("%v is visible though it never reached EndTransaction", x)
		case none && x.commit && x.phase == tk9Ended && x.endErr == nil:
			problem("%v: its commit was acknowledged but it is not visible", x)
		}
		if full {
			lastCommitted = x.n
		}
	}
	committed := 0
	var unknown []string // commits cut off: either outcome is right
	for _, x := range ledger {
		if seen[x.n] != nil {
			committed++
		}
		if x.commit && (x.phase == tk9Ending || x.phase == tk9Ended && x.endErr != nil) {
			unknown = append(unknown, fmt.Sprintf("txn %d visible=%v", x.n, seen[x.n] != nil))
		}
	}
	t.Logf("round %d: %d of %d transactions visible; last committed txn %d; commits with unknown outcome: %v",
		round, committed, len(ledger), lastCommitted, unknown)

	offs, err := kadm.NewClient(newClient()).FetchOffsets(ctxT(t), tk9Group)
	if err != nil {
		t.Fatalf("round %d: fetch offsets: %v", round, err)
	}
	for p := range int32(tk9Partitions) {
		o, ok := offs.Lookup(tk9Topic, p)
		switch {
		case lastCommitted < 0 && ok && o.Err == nil:
			problem("partition %d: committed offset %d (%q) but no transaction committed", p, o.At, o.Metadata)
		case lastCommitted >= 0 && (!ok || o.Err != nil || o.At != int64(lastCommitted) || o.Metadata != fmt.Sprintf("txn %d", lastCommitted)):
			problem("partition %d: committed offset %d (%q, err %v, found %v); the last committed transaction is %d",
				p, o.At, o.Metadata, o.Err, ok, lastCommitted)
		}
	}
}
