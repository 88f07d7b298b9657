package broker_test

import (
	"context"
	"testing"
	"time"

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
