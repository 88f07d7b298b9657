package broker_test

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
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

// Sizes of the exactly-once transform test.
const (
	eosInputRecords    = 3000
	eosKeys            = 50
	eosPartitions      = 6
	eosProduceRounds   = 100 // the input arrives in rounds, over ~4 s, while the transform runs
	eosRoundPause      = 40 * time.Millisecond
	eosPollRecordsMax  = 100
	eosFinishTimeout   = 40 * time.Second
	eosEndTimeout      = 30 * time.Second
	eosClientRetryTime = 30 * time.Second
	eosSessionsMax     = 50 // sessions one worker may go through
	eosSessionBackoff  = 200 * time.Millisecond
)

// eosValue is the value of input record i: its key and its sequence
// number among that key's records.
func eosValue(i int) (key, value string) {
	k := i % eosKeys
	return fmt.Sprintf("k%d", k), fmt.Sprintf("k%d:%d", k, i/eosKeys)
}

// checkPerKey checks that recs (in the order a consumer returned them)
// hold every input record exactly once, each key's in input order, and
// reports what is wrong.
func checkPerKey(t *testing.T, what string, recs []*kgo.Record) {
	t.Helper()
	seqs := map[string][]int{}
	for _, r := range recs {
		k, s, ok := strings.Cut(string(r.Value), ":")
		n, err := strconv.Atoi(s)
		if !ok || err != nil || k != string(r.Key) {
			t.Errorf("%s: malformed record %s=%s at %d/%d", what, r.Key, r.Value, r.Partition, r.Offset)
			continue
		}
		seqs[k] = append(seqs[k], n)
	}
	bad := 0
	for k := range eosKeys {
		key := fmt.Sprintf("k%d", k)
		want := eosInputRecords / eosKeys
		if k < eosInputRecords%eosKeys {
			want++
		}
		got := seqs[key]
		ok := len(got) == want
		for i := 0; ok && i < want; i++ {
			ok = got[i] == i
		}
		if !ok {
			bad++
			if bad <= 5 {
				t.Errorf("%s: key %s: sequence numbers %v, want 0..%d once each in order", what, key, got, want-1)
			}
		}
	}
	if bad > 0 {
		t.Errorf("%s: %d of %d keys wrong; %d records read, %d produced", what, bad, eosKeys, len(recs), eosInputRecords)
	}
}

// readTopic reads every record of topic from the start, read_committed
// unless opts say otherwise, until n arrived, then a little longer so duplicates beyond n show.
func readTopic(t *testing.T, addr, topic string, n int, opts ...kgo.Opt) []*kgo.Record {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(addr), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.FetchMaxWait(100 * time.Millisecond)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var out []*kgo.Record
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for len(out) < n && ctx.Err() == nil {
		fs := cl.PollFetches(ctx)
		fs.EachError(func(tp string, p int32, err error) {
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("read %s/%d: %v", tp, p, err)
			}
		})
		out = append(out, fs.Records()...)
	}
	extra, cancel2 := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel2()
	out = append(out, cl.PollFetches(extra).Records()...)
	return out
}

// eosStats counts what the workers' transactions did.
type eosStats struct {
	commits, aborts, restarts, fetchErrs atomic.Int64
}

// runEOSWorker is one consume-transform-produce worker, shaped like
// franz-go's TestTxnEtl: poll, begin, produce each record to the output
// topic under the same key, and End with TryCommit, which commits the
// consumed offsets in the transaction or aborts it (after a rebalance,
// or a failed produce). It runs sessions from newSession until ctx is
// done.
//
// kgo's End returns an error when the outcome of the commit is unknown,
// e.g. when the broker died under the EndTxn: the transaction may have
// committed or not, and the session (which would rewind to the offsets
// it last saw committed) must not go on, or a committed transaction's
// records would be transformed twice. So the worker does what an
// application does: it closes the session and starts another with the
// same transactional id, whose InitProducerId aborts or completes the
// old transaction on the broker and whose consumer resumes from the
// offsets the broker has committed.
func runEOSWorker(ctx context.Context, t *testing.T, id int, newSession func() (*kgo.GroupTransactSession, error), out string, st *eosStats) {
	for range eosSessionsMax {
		sess, err := newSession()
		if err != nil {
			t.Errorf("worker %d: %v", id, err)
			return
		}
		err = runEOSSession(ctx, t, id, sess, out, st)
		sess.Close()
		if err == nil {
			return
		}
		st.restarts.Add(1)
		t.Logf("worker %d: new session after: %v", id, err)
		// kgo does not retry a refused dial of InitProducerId: give a
		// restarting broker time to listen again.
		time.Sleep(eosSessionBackoff)
	}
	t.Errorf("worker %d: gave up after %d sessions", id, eosSessionsMax)
}

// runEOSSession runs one session until ctx is done (nil) or an error
// means it must be replaced.
func runEOSSession(ctx context.Context, t *testing.T, id int, sess *kgo.GroupTransactSession, out string, st *eosStats) error {
	// InitProducerId first, even when the worker is stopping: it
	// aborts (or completes) a transaction the previous session left
	// open, which would otherwise hold the output's last stable offset
	// back, and its pending offsets the group's, until the transaction
	// timeout.
	ictx, cancel := context.WithTimeout(context.Background(), eosEndTimeout)
	defer cancel()
	if _, _, err := sess.Client().ProducerID(ictx); err != nil {
		return fmt.Errorf("init producer id: %w", err)
	}
	for ctx.Err() == nil {
		pctx, cancel := context.WithTimeout(ctx, 250*time.Millisecond)
		fs := sess.PollRecords(pctx, eosPollRecordsMax)
		cancel()
		if fs.IsClientClosed() {
			return nil
		}
		fs.EachError(func(tp string, p int32, err error) {
			if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
				st.fetchErrs.Add(1)
				t.Logf("worker %d: fetch %s/%d: %v", id, tp, p, err)
			}
		})
		recs := fs.Records()
		if len(recs) == 0 {
			continue
		}
		if err := sess.Begin(); err != nil {
			return fmt.Errorf("begin: %w", err)
		}
		for _, r := range recs {
			sess.Produce(ctx, &kgo.Record{Topic: out, Key: r.Key, Value: r.Value}, nil)
		}
		// End is given its own deadline: canceling it would leave the
		// session in an unknown state, and the test stops workers
		// only between transactions.
		ectx, cancel := context.WithTimeout(context.Background(), eosEndTimeout)
		committed, err := sess.End(ectx, kgo.TryCommit)
		cancel()
		switch {
		case err != nil:
			return fmt.Errorf("end: %w", err)
		case committed:
			st.commits.Add(1)
		default:
			st.aborts.Add(1)
		}
	}
	return nil
}

// The exactly-once acceptance test: consume-transform-produce
// workers in one consumer group (franz-go's GroupTransactSession,
// read_committed) copy a keyed input topic to an output topic while the
// input is still being produced, a worker joins and another leaves
// (rebalances), and the broker process is killed with SIGKILL twice at
// seeded random moments and restarted on the same address and data
// directory. Afterwards a read_committed reader of the output sees every
// input record exactly once, each key's in input order, and the group's
// committed offsets are the input's end offsets.
func TestEOSTransformAcrossRebalanceAndKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("starts and kills broker processes")
	}
	seed := testSeed(t, "SLUICE_EOS_SEED")
	rng := rand.New(rand.NewPCG(seed, seed^0x5eed))
	dir := t.TempDir()
	child := startKillChild(t, dir, "127.0.0.1:0")
	addr := child.addr
	const in, out, grp = "eos-in", "eos-out", "eos-etl"

	base := func(opts ...kgo.Opt) []kgo.Opt {
		return append([]kgo.Opt{kgo.SeedBrokers(addr), kgo.RetryTimeout(eosClientRetryTime),
			kgo.MetadataMinAge(100 * time.Millisecond)}, opts...)
	}
	admCl, err := kgo.NewClient(base()...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(admCl.Close)
	adm := kadm.NewClient(admCl)
	for _, topic := range []string{in, out} {
		if r, err := adm.CreateTopic(ctxT(t), eosPartitions, 1, nil, topic); err != nil || r.Err != nil {
			t.Fatalf("create %s: %v %v", topic, err, r.Err)
		}
	}

	// Everything started below stops before the test returns, the
	// broker child last (its cleanup was registered first).
	ctx, stopAll := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() { stopAll(); wg.Wait() })

	// The input: idempotent, acks=all (kgo's defaults), in rounds, so
	// producing overlaps the transform and the kills.
	prod, err := kgo.NewClient(base(kgo.DefaultProduceTopic(in))...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(prod.Close)
	var produceErrs atomic.Int64
	produced := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(produced)
		per := eosInputRecords / eosProduceRounds
		for round := 0; round < eosProduceRounds && ctx.Err() == nil; round++ {
			for i := round * per; i < (round+1)*per; i++ {
				k, v := eosValue(i)
				prod.Produce(ctx, &kgo.Record{Key: []byte(k), Value: []byte(v)}, func(_ *kgo.Record, err error) {
					if err != nil {
						if produceErrs.Add(1) <= 5 {
							t.Logf("input produce: %v", err)
						}
					}
				})
			}
			time.Sleep(eosRoundPause)
		}
		fctx, cancel := context.WithTimeout(ctx, 45*time.Second)
		defer cancel()
		if err := prod.Flush(fctx); err != nil {
			t.Logf("input flush: %v", err)
			produceErrs.Add(1)
		}
	}()

	var st eosStats
	stops := map[int]context.CancelFunc{}
	startWorker := func(id int) {
		var logOpts []kgo.Opt
		if os.Getenv("SLUICE_TEST_LOG") != "" {
			logOpts = append(logOpts, kgo.WithLogger(kgo.BasicLogger(os.Stderr, kgo.LogLevelDebug, func() string {
				return fmt.Sprintf("%s worker %d: ", time.Now().Format("15:04:05.000"), id)
			})))
		}
		newSession := func() (*kgo.GroupTransactSession, error) {
			return kgo.NewGroupTransactSession(base(append(logOpts,
				kgo.TransactionalID(fmt.Sprintf("eos-worker-%d", id)),
				kgo.TransactionTimeout(30*time.Second),
				kgo.ConsumerGroup(grp), kgo.ConsumeTopics(in),
				kgo.FetchIsolationLevel(kgo.ReadCommitted()),
				kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
				kgo.SessionTimeout(6*time.Second), kgo.HeartbeatInterval(500*time.Millisecond),
				kgo.FetchMaxWait(100*time.Millisecond),
			)...)...)
		}
		wctx, stop := context.WithCancel(ctx)
		stops[id] = stop
		wg.Add(1)
		go func() {
			defer wg.Done()
			runEOSWorker(wctx, t, id, newSession, out, &st)
		}()
	}
	startWorker(0)
	startWorker(1)

	// The timeline: two kills at seeded moments, a worker joining and
	// one leaving at fixed ones.
	type event struct {
		at   time.Duration
		what string
	}
	events := []event{
		{time.Duration(200+rng.IntN(1300)) * time.Millisecond, "kill"},
		{time.Second, "join"},
		{time.Duration(1800+rng.IntN(2000)) * time.Millisecond, "kill"},
		{2500 * time.Millisecond, "leave"},
	}
	// SLUICE_EOS_KILLS adds kills, for soak runs (each ~0.3 s down).
	if n, _ := strconv.Atoi(os.Getenv("SLUICE_EOS_KILLS")); n > 2 {
		for range min(n, 20) - 2 {
			events = append(events, event{time.Duration(200+rng.IntN(3600)) * time.Millisecond, "kill"})
		}
	}
	slices.SortFunc(events, func(a, b event) int { return cmp.Compare(a.at, b.at) })
	start := time.Now()
	for _, e := range events {
		time.Sleep(time.Until(start.Add(e.at)))
		switch e.what {
		case "kill":
			child.kill()
			killedAt := time.Now()
			down := time.Duration(rng.IntN(300)) * time.Millisecond
			time.Sleep(down)
			child = startKillChild(t, dir, addr)
			t.Logf("%v: killed the broker (-9) at %s, restarted it after %v (%v since the kill)",
				e.at, killedAt.Format("15:04:05.000"), down, time.Since(killedAt))
		case "join":
			startWorker(2)
			t.Logf("%v: worker 2 joined", e.at)
		case "leave":
			stops[0]()
			t.Logf("%v: worker 0 stopping", e.at)
		}
	}

	select {
	case <-produced:
	case <-time.After(eosFinishTimeout):
		t.Fatal("input producer did not finish")
	}
	if n := produceErrs.Load(); n > 0 {
		t.Fatalf("%d input records failed to produce (idempotent, acks=all, retried for %v)", n, eosClientRetryTime)
	}
	ends, err := adm.ListEndOffsets(ctxT(t), in)
	if err != nil {
		t.Fatal(err)
	}
	// The transform is done when the group has committed the input's
	// end offsets on every partition.
	var last kadm.OffsetResponses
	deadline := time.Now().Add(eosFinishTimeout)
	for done := false; !done; {
		if time.Now().After(deadline) {
			t.Fatalf("group %s committed %v after %v; input ends %v; %d commits, %d aborts, %d sessions replaced",
				grp, offsetsOf(last), eosFinishTimeout, endsOf(ends), st.commits.Load(), st.aborts.Load(), st.restarts.Load())
		}
		time.Sleep(50 * time.Millisecond)
		last, err = adm.FetchOffsets(ctxT(t), grp)
		if err != nil {
			continue
		}
		done = true
		ends.Each(func(e kadm.ListedOffset) {
			o, ok := last.Lookup(e.Topic, e.Partition)
			if !ok || o.Err != nil || o.At != e.Offset {
				done = false
			}
		})
	}
	elapsed := time.Since(start)
	stopAll()
	wg.Wait()
	t.Logf("transform done in %v: %d commits, %d aborts, %d sessions replaced after an error, %d fetch errors",
		elapsed, st.commits.Load(), st.aborts.Load(), st.restarts.Load(), st.fetchErrs.Load())

	// The group committed exactly the input's end offsets.
	final, err := adm.FetchOffsets(ctxT(t), grp)
	if err != nil {
		t.Fatal(err)
	}
	ends.Each(func(e kadm.ListedOffset) {
		if o, ok := final.Lookup(e.Topic, e.Partition); !ok || o.At != e.Offset {
			t.Errorf("group %s committed %d on %s/%d; input ends at %d", grp, o.At, e.Topic, e.Partition, e.Offset)
		}
	})
	// No worker left a transaction open: the output's last stable
	// offset reaches its high watermark (once the last markers are
	// written).
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		lsos, err1 := adm.ListCommittedOffsets(ctxT(t), out)
		hws, err2 := adm.ListEndOffsets(ctxT(t), out)
		same := err1 == nil && err2 == nil
		hws.Each(func(h kadm.ListedOffset) {
			l, ok := lsos.Lookup(h.Topic, h.Partition)
			same = same && ok && l.Err == nil && h.Err == nil && l.Offset == h.Offset
		})
		if same {
			break
		}
		if time.Now().After(deadline) {
			txs, err := adm.DescribeTransactions(ctxT(t), "eos-worker-0", "eos-worker-1", "eos-worker-2")
			t.Errorf("output last stable offsets %v stay below the high watermarks %v (%v %v): a transaction was left open; transactions %+v %v",
				endsOf(lsos), endsOf(hws), err1, err2, txs, err)
			break
		}
	}
	checkPerKey(t, "input", readTopic(t, addr, in, eosInputRecords))
	checkPerKey(t, "output (read_committed)", readTopic(t, addr, out, eosInputRecords))
	// Aborted transactions left records in the output that only
	// read_uncommitted sees: the filtering above was exercised.
	t.Logf("output read_uncommitted: %d records", len(readTopic(t, addr, out, eosInputRecords, kgo.FetchIsolationLevel(kgo.ReadUncommitted()))))
}

func offsetsOf(os kadm.OffsetResponses) map[int32]int64 {
	m := map[int32]int64{}
	os.Each(func(o kadm.OffsetResponse) { m[o.Partition] = o.At })
	return m
}

func endsOf(ls kadm.ListedOffsets) map[int32]int64 {
	m := map[int32]int64{}
	ls.Each(func(o kadm.ListedOffset) { m[o.Partition] = o.Offset })
	return m
}

// rcRecord is one data record of the read_committed test, as its producer
// saw it acknowledged.
type rcRecord struct {
	part   int32
	offset int64
	value  string
	state  rcState
}

type rcState int8

const (
	rcPlain     rcState = iota // an idempotent, non-transactional write
	rcOpen                     // in a transaction not yet ended
	rcCommitted                // in a committed transaction
	rcAborted                  // in an aborted transaction
)

// rcTxn is one transactional producer's open transaction.
type rcTxn struct {
	recs  []*rcRecord
	first map[int32]int64 // the transaction's first offset in each partition
}

const (
	rcPartitions = 3
	rcProducers  = 3
	rcSteps      = 90
	rcStarts     = 25 // random start offsets per partition for raw fetches
)

// Seeded random interleavings of transactional producers (commits and
// aborts, several transactions open at once in a partition) and an
// idempotent non-transactional producer. While it runs, ListOffsets
// read_committed must answer the last stable offset (the first offset of
// the oldest open transaction) and the high watermark once none is open.
// Afterwards, reads from the start and from many random offsets, by raw
// Fetch (with small byte limits, filtering by AbortedTransactions the way
// Kafka clients do) and by kgo, return every committed and
// non-transactional record at or after the start in offset order and no
// aborted one; read_uncommitted returns every data record.
func TestReadCommittedNeverSeesAborted(t *testing.T) {
	seed := testSeed(t, "SLUICE_EOS_SEED")
	rng := rand.New(rand.NewPCG(seed, seed^0xabcd))
	b := brokertest.Start(t)
	const topic = "rc"
	createTopic(t, b, topic, rcPartitions, nil)
	adm := b.Admin(t)
	common := []kgo.Opt{kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ProducerBatchCompression(kgo.NoCompression()), kgo.ProducerLinger(0)}
	var txp [rcProducers]*kgo.Client
	for i := range txp {
		txp[i] = b.Client(t, append(common, kgo.TransactionalID(fmt.Sprintf("rc-tx-%d", i)))...)
	}
	plain := b.Client(t, common...)

	var all [rcPartitions][]*rcRecord
	// want lists what a read_committed reader of partition p from offset
	// from up to offset upTo is owed, as "offset:value" in offset order.
	want := func(p int32, from, upTo int64) []string {
		rs := slices.Clone(all[p])
		slices.SortFunc(rs, func(a, b *rcRecord) int { return cmp.Compare(a.offset, b.offset) })
		var w []string
		for _, r := range rs {
			if r.offset >= from && r.offset < upTo && r.state != rcAborted {
				if r.state == rcOpen {
					t.Fatalf("partition %d: record %d of an open transaction is below the last stable offset %d", p, r.offset, upTo)
				}
				w = append(w, fmt.Sprintf("%d:%s", r.offset, r.value))
			}
		}
		return w
	}
	rc := dialRaw(t, b.Addr())
	var open [rcProducers]*rcTxn
	seq := 0
	// produce writes 1..maxN records to random partitions in one call
	// (so kgo may batch several per partition) and records them.
	produce := func(cl *kgo.Client, maxN int, state rcState) []*rcRecord {
		n := 1 + rng.IntN(maxN)
		rs := make([]*kgo.Record, n)
		for i := range rs {
			seq++
			rs[i] = &kgo.Record{Partition: int32(rng.IntN(rcPartitions)), Value: []byte(fmt.Sprintf("v%d", seq))}
		}
		res := cl.ProduceSync(ctxT(t), rs...)
		if err := res.FirstErr(); err != nil {
			t.Fatalf("produce: %v", err)
		}
		var out []*rcRecord
		for _, r := range res {
			rr := &rcRecord{part: r.Record.Partition, offset: r.Record.Offset, value: string(r.Record.Value), state: state}
			all[r.Record.Partition] = append(all[r.Record.Partition], rr)
			out = append(out, rr)
		}
		return out
	}
	end := func(i int, commit bool) {
		if err := txp[i].EndTransaction(ctxT(t), kgo.TransactionEndTry(commit)); err != nil {
			t.Fatalf("end transaction of producer %d: %v", i, err)
		}
		state := rcAborted
		if commit {
			state = rcCommitted
		}
		for _, r := range open[i].recs {
			r.state = state
		}
		open[i] = nil
	}
	// checkLSO waits until ListOffsets read_committed answers the first
	// offset of the oldest open transaction, or the high watermark when
	// none is open (markers of a transaction just ended are written
	// after EndTxn answers), and fails at once on an answer past it.
	lsoChecks := 0
	var lsoNow [rcPartitions]int64
	checkLSO := func(step int) {
		deadline := time.Now().Add(5 * time.Second)
		for {
			hws, err1 := adm.ListEndOffsets(ctxT(t), topic)
			lsos, err2 := adm.ListCommittedOffsets(ctxT(t), topic)
			if err := errors.Join(err1, err2, hws.Error(), lsos.Error()); err != nil {
				t.Fatalf("step %d: list offsets: %v", step, err)
			}
			ok := true
			for p := range int32(rcPartitions) {
				hw, _ := hws.Lookup(topic, p)
				lso, _ := lsos.Lookup(topic, p)
				want, why := hw.Offset, "the high watermark"
				for i, tx := range open {
					if f, ok := tx.firstIn(p); ok && f < want {
						want, why = f, fmt.Sprintf("the first offset of producer %d's open transaction", i)
					}
				}
				if lso.Offset > want {
					t.Fatalf("step %d: partition %d: read_committed ListOffsets answered %d, past %s (%d)", step, p, lso.Offset, why, want)
				}
				lsoNow[p] = lso.Offset
				if lso.Offset != want {
					ok = false
					if time.Now().After(deadline) {
						t.Fatalf("step %d: partition %d: read_committed ListOffsets answers %d, want %s (%d)", step, p, lso.Offset, why, want)
					}
				}
			}
			if ok {
				lsoChecks++
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
	}

	opens, commits, aborts := 0, 0, 0
	for step := range rcSteps {
		if rng.IntN(5) == 0 {
			produce(plain, 3, rcPlain)
		} else {
			i := rng.IntN(rcProducers)
			switch {
			case open[i] == nil:
				if err := txp[i].BeginTransaction(); err != nil {
					t.Fatal(err)
				}
				open[i] = &rcTxn{first: map[int32]int64{}}
				opens++
				fallthrough
			case len(open[i].recs) == 0 || rng.IntN(3) != 0:
				for _, r := range produce(txp[i], 6, rcOpen) {
					open[i].recs = append(open[i].recs, r)
					if f, ok := open[i].first[r.part]; !ok || r.offset < f {
						open[i].first[r.part] = r.offset
					}
				}
			default:
				commit := rng.IntN(3) != 0
				end(i, commit)
				if commit {
					commits++
				} else {
					aborts++
				}
			}
		}
		checkLSO(step)
		if step%10 == 9 {
			// Mid-run, a read_committed Fetch stops at the last
			// stable offset; everything below it is decided.
			for p := range int32(rcPartitions) {
				from := rng.Int64N(lsoNow[p] + 1)
				got := rawReadCommitted(t, rc, 11, topic, p, from, int32(1+rng.IntN(2048)), lsoNow[p], -1)
				if w := want(p, from, lsoNow[p]); !slices.Equal(got, w) {
					t.Fatalf("step %d: partition %d: raw read_committed Fetch from %d below the last stable offset %d:\n got %v\nwant %v", step, p, from, lsoNow[p], got, w)
				}
			}
		}
	}
	for i := range open {
		if open[i] != nil {
			commit := rng.IntN(2) == 0
			end(i, commit)
			if commit {
				commits++
			} else {
				aborts++
			}
		}
	}
	checkLSO(rcSteps)
	t.Logf("%d transactions (%d committed, %d aborted), %d ListOffsets checks", opens, commits, aborts, lsoChecks)

	hws, err := adm.ListEndOffsets(ctxT(t), topic)
	if err != nil {
		t.Fatal(err)
	}
	var hw [rcPartitions]int64
	for p := range hw {
		o, _ := hws.Lookup(topic, int32(p))
		hw[p] = o.Offset
	}
	versions := []int16{4, 7, 11, 12}
	for p := range int32(rcPartitions) {
		starts := []int64{0}
		for range rcStarts {
			starts = append(starts, rng.Int64N(hw[p]+1))
		}
		for _, from := range starts {
			v := versions[rng.IntN(len(versions))]
			partMax := int32(1 + rng.IntN(2048)) // often less than a batch: one batch a fetch
			got := rawReadCommitted(t, rc, v, topic, p, from, partMax, hw[p], hw[p])
			if w := want(p, from, hw[p]); !slices.Equal(got, w) {
				t.Fatalf("partition %d: raw read_committed Fetch v%d from %d (partition max %d bytes):\n got %v\nwant %v", p, v, from, partMax, got, w)
			}
		}
		var everything []string
		for _, r := range all[p] {
			everything = append(everything, fmt.Sprintf("%d:%s", r.offset, r.value))
		}
		slices.SortFunc(everything, func(a, b string) int { return cmp.Compare(offsetOf(a), offsetOf(b)) })
		if got := rawReadUncommitted(t, rc, topic, p, hw[p]); !slices.Equal(got, everything) {
			t.Fatalf("partition %d: read_uncommitted:\n got %v\nwant %v", p, got, everything)
		}
		for _, from := range []int64{0, rng.Int64N(hw[p] + 1), rng.Int64N(hw[p] + 1)} {
			w := want(p, from, hw[p])
			if got := kgoReadCommitted(t, b, topic, p, from, len(w)); !slices.Equal(got, w) {
				t.Fatalf("partition %d: kgo read_committed from %d:\n got %v\nwant %v", p, from, got, w)
			}
		}
	}
}

// offsetOf returns the offset of an "offset:value" string.
func offsetOf(s string) int64 {
	o, _, _ := strings.Cut(s, ":")
	n, _ := strconv.ParseInt(o, 10, 64)
	return n
}

func (tx *rcTxn) firstIn(p int32) (int64, bool) {
	if tx == nil {
		return 0, false
	}
	f, ok := tx.first[p]
	return f, ok
}

// rawReadCommitted reads partition p from offset from up to lso, which
// every response must give as the last stable offset (with the high
// watermark hw, or at least lso when hw is -1), with read_committed Fetch
// requests of the given version, and returns the
// data records a Kafka client would deliver, as "offset:value". It
// filters as the Java consumer does: a transactional batch of a producer
// whose aborted transaction (listed in the response) has begun at or
// before the batch is dropped, until that producer's ABORT marker.
func rawReadCommitted(t *testing.T, rc *rawConn, version int16, topic string, p int32, from int64, partMax int32, lso, hw int64) []string {
	t.Helper()
	var out []string
	pos := from
	for fetches := 0; pos < lso; fetches++ {
		if fetches > 10000 {
			t.Fatalf("partition %d: no progress reading from %d at %d", p, from, pos)
		}
		req := fetchReq(version, topic, []int32{p}, pos, 0, 0, 1<<20, partMax)
		req.IsolationLevel = 1
		rp := rc.do(req).(*kmsg.FetchResponse).Topics[0].Partitions[0]
		if rp.ErrorCode != 0 {
			t.Fatalf("partition %d: fetch v%d at %d: %v", p, version, pos, kerr.ErrorForCode(rp.ErrorCode))
		}
		if rp.LastStableOffset != lso || (hw >= 0 && rp.HighWatermark != hw) || rp.HighWatermark < lso {
			t.Fatalf("partition %d: fetch v%d at %d: high watermark %d, last stable %d; want %d and %d", p, version, pos, rp.HighWatermark, rp.LastStableOffset, hw, lso)
		}
		if rp.AbortedTransactions == nil {
			t.Fatalf("partition %d: read_committed fetch v%d answered null aborted transactions", p, version)
		}
		aborted := slices.Clone(rp.AbortedTransactions)
		slices.SortFunc(aborted, func(a, b kmsg.FetchResponseTopicPartitionAbortedTransaction) int {
			return cmp.Compare(a.FirstOffset, b.FirstOffset)
		})
		abortedPIDs := map[int64]bool{}
		before := pos
		it := batch.NewIter(rp.RecordBatches)
		for it.Next() {
			h := it.Header()
			if h.LastOffset() < pos {
				continue
			}
			for len(aborted) > 0 && aborted[0].FirstOffset <= h.LastOffset() {
				abortedPIDs[aborted[0].ProducerID] = true
				aborted = aborted[1:]
			}
			start := pos
			pos = h.LastOffset() + 1
			if h.Control() {
				err := batch.Records(it.Batch(), func(r *batch.Record) error {
					if len(r.Key) < 4 {
						return fmt.Errorf("control record key %x", r.Key)
					}
					if r.Key[2] == 0 && r.Key[3] == 0 { // ABORT
						delete(abortedPIDs, h.ProducerID)
					}
					return nil
				})
				if err != nil {
					t.Fatalf("partition %d: %v", p, err)
				}
				continue
			}
			if h.Transactional() && abortedPIDs[h.ProducerID] {
				continue
			}
			err := batch.Records(it.Batch(), func(r *batch.Record) error {
				if o := h.BaseOffset + int64(r.OffsetDelta); o >= start {
					out = append(out, fmt.Sprintf("%d:%s", o, r.Value))
				}
				return nil
			})
			if err != nil {
				t.Fatalf("partition %d: records: %v", p, err)
			}
		}
		if err := it.Err(); err != nil {
			t.Fatalf("partition %d: fetched batches: %v", p, err)
		}
		if pos == before {
			t.Fatalf("partition %d: fetch v%d at %d below the last stable offset %d returned no batch", p, version, pos, lso)
		}
	}
	return out
}

// rawReadUncommitted reads every data record of partition p, aborted ones
// included, as "offset:value".
func rawReadUncommitted(t *testing.T, rc *rawConn, topic string, p int32, end int64) []string {
	t.Helper()
	var out []string
	for pos, fetches := int64(0), 0; pos < end; fetches++ {
		if fetches > 10000 {
			t.Fatalf("partition %d: no progress at %d", p, pos)
		}
		rp := rc.do(fetchReq(11, topic, []int32{p}, pos, 0, 0, 1<<20, 1<<20)).(*kmsg.FetchResponse).Topics[0].Partitions[0]
		if rp.ErrorCode != 0 {
			t.Fatalf("partition %d: fetch at %d: %v", p, pos, kerr.ErrorForCode(rp.ErrorCode))
		}
		if rp.AbortedTransactions != nil {
			t.Fatalf("partition %d: read_uncommitted fetch listed aborted transactions %v", p, rp.AbortedTransactions)
		}
		before := pos
		for it := batch.NewIter(rp.RecordBatches); it.Next(); {
			h := it.Header()
			start := pos
			pos = max(pos, h.LastOffset()+1)
			if h.Control() {
				continue
			}
			if err := batch.Records(it.Batch(), func(r *batch.Record) error {
				if o := h.BaseOffset + int64(r.OffsetDelta); o >= start {
					out = append(out, fmt.Sprintf("%d:%s", o, r.Value))
				}
				return nil
			}); err != nil {
				t.Fatalf("partition %d: records: %v", p, err)
			}
		}
		if pos == before {
			t.Fatalf("partition %d: fetch at %d below the end %d returned no batch", p, pos, end)
		}
	}
	return out
}

// kgoReadCommitted reads partition p from offset from with a kgo
// read_committed consumer until n records arrived, then briefly longer so
// that anything extra shows.
func kgoReadCommitted(t *testing.T, b *brokertest.Broker, topic string, p int32, from int64, n int) []string {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {p: kgo.NewOffset().At(from)}}),
		kgo.FetchMaxWait(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var out []string
	add := func(fs kgo.Fetches) {
		fs.EachError(func(tp string, p int32, err error) {
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("kgo read %s/%d: %v", tp, p, err)
			}
		})
		fs.EachRecord(func(r *kgo.Record) { out = append(out, fmt.Sprintf("%d:%s", r.Offset, r.Value)) })
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for len(out) < n && ctx.Err() == nil {
		add(cl.PollFetches(ctx))
	}
	extra, cancel2 := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel2()
	add(cl.PollFetches(extra))
	return out
}
