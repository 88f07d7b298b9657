package broker_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-io/sluice/internal/broker/brokertest"
)

// consumeAll reads topic from the start until n records arrived or the
// deadline passed, at the given isolation level.
func consumeAll(t *testing.T, b *brokertest.Broker, topic string, n int, committed bool) []*kgo.Record {
	t.Helper()
	opts := []kgo.Opt{kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(100 * time.Millisecond)}
	if committed {
		opts = append(opts, kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	}
	cl := b.Client(t, opts...)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	var out []*kgo.Record
	for len(out) < n && ctx.Err() == nil {
		fs := cl.PollFetches(ctx)
		fs.EachRecord(func(r *kgo.Record) { out = append(out, r) })
	}
	// Anything beyond n would be a bug: give it a moment to show.
	ctx2, cancel2 := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel2()
	cl.PollFetches(ctx2).EachRecord(func(r *kgo.Record) { out = append(out, r) })
	return out
}

// A committed transaction is visible to read_committed consumers, an
// aborted one is not; read_uncommitted sees both.
func TestTransactionCommitAbort(t *testing.T) {
	b := brokertest.Start(t)
	createTopic(t, b, "tx", 2, nil)
	p := b.Client(t, kgo.TransactionalID("tx-producer"), kgo.DefaultProduceTopic("tx"))
	run := func(n int, commit bool) {
		if err := p.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		for i := 0; i < n; i++ {
			if err := p.ProduceSync(ctxT(t), kgo.StringRecord("v")).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
		if err := p.EndTransaction(ctxT(t), kgo.TransactionEndTry(commit)); err != nil {
			t.Fatal(err)
		}
	}
	run(10, true)
	run(5, false)
	run(3, true)
	if got := consumeAll(t, b, "tx", 18, false); len(got) != 18 {
		t.Fatalf("read_uncommitted saw %d records, want 18", len(got))
	}
	if got := consumeAll(t, b, "tx", 13, true); len(got) != 13 {
		t.Fatalf("read_committed saw %d records, want 13", len(got))
	}
}

// Operators see transactional ids, their state, and each partition's
// producers (DescribeTransactions, ListTransactions, DescribeProducers).
func TestTransactionAdmin(t *testing.T) {
	b := brokertest.Start(t)
	createTopic(t, b, "txa", 2, nil)
	p := b.Client(t, kgo.TransactionalID("admin-tx"), kgo.DefaultProduceTopic("txa"))
	if err := p.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := p.ProduceSync(ctxT(t), &kgo.Record{Partition: 0, Value: []byte("v")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	adm := b.Admin(t)
	// While open: Ongoing, listed, and the partition's producer has an
	// open transaction.
	dt, err := adm.DescribeTransactions(ctxT(t), "admin-tx")
	if err != nil {
		t.Fatal(err)
	}
	d := dt["admin-tx"]
	if d.Err != nil || d.State != "Ongoing" || d.ProducerID < 0 || len(d.Topics["txa"]) != 1 {
		t.Fatalf("described while open: %+v", d)
	}
	lt, err := adm.ListTransactions(ctxT(t), nil, []string{"Ongoing"})
	if err != nil || !slices.Contains(lt.TransactionalIDs(), "admin-tx") {
		t.Fatalf("list ongoing: %v %v", lt.TransactionalIDs(), err)
	}
	var open []int64
	dp, err := adm.DescribeProducers(ctxT(t), kadm.TopicsSet{"txa": {0: {}, 1: {}}})
	if err != nil {
		t.Fatal(err)
	}
	dp.EachProducer(func(pr kadm.DescribedProducer) {
		if pr.ProducerID == d.ProducerID && pr.CurrentTxnStartOffset >= 0 {
			open = append(open, pr.CurrentTxnStartOffset)
		}
	})
	if len(open) != 1 || open[0] != 0 {
		t.Fatalf("producers with an open transaction: %v", open)
	}
	if err := p.EndTransaction(ctxT(t), kgo.TryCommit); err != nil {
		t.Fatal(err)
	}
	dt, err = adm.DescribeTransactions(ctxT(t), "admin-tx")
	if err != nil || dt["admin-tx"].State != "CompleteCommit" {
		t.Fatalf("described after commit: %+v %v", dt["admin-tx"], err)
	}
	lt, err = adm.ListTransactions(ctxT(t), nil, []string{"Ongoing"})
	if err != nil || slices.Contains(lt.TransactionalIDs(), "admin-tx") {
		t.Fatalf("still listed as ongoing: %v %v", lt.TransactionalIDs(), err)
	}
}
