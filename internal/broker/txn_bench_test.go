package broker_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-io/sluice/internal/broker/brokertest"
)

// BenchmarkTransactionalProduce measures transactional produce throughput,
// transactions of 100 and 10,000 records of 100 bytes, against plain
// idempotent produce of the same records in the same run. Each
// transaction is committed before the next begins, as a
// consume-transform-produce loop does.
//
//	go test -run '^$' -bench TransactionalProduce -benchtime 20000x ./internal/broker
func BenchmarkTransactionalProduce(b *testing.B) {
	br := brokertest.Start(b)
	adm := br.Admin(b)
	for _, tn := range []string{"txb", "idb"} {
		if r, err := adm.CreateTopic(context.Background(), 4, 1, nil, tn); err != nil || r.Err != nil {
			b.Fatalf("create: %v %v", err, r.Err)
		}
	}
	value := make([]byte, 100)
	produce := func(cl *kgo.Client, topic string, n int) error {
		var wg sync.WaitGroup
		var first error
		var mu sync.Mutex
		for i := 0; i < n; i++ {
			wg.Add(1)
			cl.Produce(context.Background(), &kgo.Record{Topic: topic, Key: fmt.Appendf(nil, "k%d", i%64), Value: value}, func(_ *kgo.Record, err error) {
				if err != nil {
					mu.Lock()
					first = err
					mu.Unlock()
				}
				wg.Done()
			})
		}
		wg.Wait()
		return first
	}
	for _, size := range []int{100, 10000} {
		b.Run(fmt.Sprintf("txn=%d", size), func(b *testing.B) {
			txc := br.Client(b, kgo.TransactionalID(fmt.Sprintf("bench-%d", size)), kgo.ProducerLinger(0))
			idc := br.Client(b, kgo.ProducerLinger(0))
			txns := max(b.N/size, 1)
			b.ResetTimer()
			start := time.Now()
			for range txns {
				if err := txc.BeginTransaction(); err != nil {
					b.Fatal(err)
				}
				if err := produce(txc, "txb", size); err != nil {
					b.Fatal(err)
				}
				if err := txc.EndTransaction(context.Background(), kgo.TryCommit); err != nil {
					b.Fatal(err)
				}
			}
			txDur := time.Since(start)
			b.StopTimer()
			start = time.Now()
			for range txns {
				if err := produce(idc, "idb", size); err != nil {
					b.Fatal(err)
				}
			}
			idDur := time.Since(start)
			recs := float64(txns * size)
			b.ReportMetric(recs/txDur.Seconds(), "txn-records/s")
			b.ReportMetric(recs/idDur.Seconds(), "idempotent-records/s")
			b.ReportMetric(idDur.Seconds()/txDur.Seconds(), "txn/idempotent-speed")
		})
	}
}

// BenchmarkReadCommittedFetch measures consuming a topic written by
// transactions (1,000 records each, one in ten aborted) with
// read_committed against read_uncommitted, in the same run: the cost of
// the last stable offset and the aborted-transaction lists.
//
//	go test -run '^$' -bench ReadCommittedFetch -benchtime 5x ./internal/broker
func BenchmarkReadCommittedFetch(b *testing.B) {
	const (
		txns    = 200
		perTxn  = 1000
		parts   = 4
		topic   = "rcb"
		aborted = 10 // one in ten
	)
	br := brokertest.Start(b)
	adm := br.Admin(b)
	if r, err := adm.CreateTopic(context.Background(), parts, 1, nil, topic); err != nil || r.Err != nil {
		b.Fatalf("create: %v %v", err, r.Err)
	}
	txc := br.Client(b, kgo.TransactionalID("rc-bench"), kgo.DefaultProduceTopic(topic))
	value := make([]byte, 100)
	for i := range txns {
		if err := txc.BeginTransaction(); err != nil {
			b.Fatal(err)
		}
		recs := make([]*kgo.Record, perTxn)
		for j := range recs {
			recs[j] = &kgo.Record{Key: fmt.Appendf(nil, "k%d", j%64), Value: value}
		}
		if err := txc.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
			b.Fatal(err)
		}
		if err := txc.EndTransaction(context.Background(), kgo.TransactionEndTry(i%aborted != 0)); err != nil {
			b.Fatal(err)
		}
	}
	consume := func(committed bool) (time.Duration, int) {
		opts := []kgo.Opt{kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart())}
		want := txns * perTxn
		if committed {
			opts = append(opts, kgo.FetchIsolationLevel(kgo.ReadCommitted()))
			want = txns * perTxn * (aborted - 1) / aborted
		}
		cl := br.Client(b, opts...)
		defer cl.Close()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		start := time.Now()
		n := 0
		for n < want && ctx.Err() == nil {
			n += cl.PollFetches(ctx).NumRecords()
		}
		if n != want {
			b.Fatalf("read %d records, want %d (committed=%v)", n, want, committed)
		}
		return time.Since(start), n
	}
	b.ResetTimer()
	var rc, ru time.Duration
	var nrc, nru int
	for range b.N {
		d, n := consume(true)
		rc, nrc = rc+d, nrc+n
		d, n = consume(false)
		ru, nru = ru+d, nru+n
	}
	b.ReportMetric(float64(nrc)/rc.Seconds(), "read_committed-records/s")
	b.ReportMetric(float64(nru)/ru.Seconds(), "read_uncommitted-records/s")
	// Per fetched batch, read_committed does the same work as
	// read_uncommitted plus the aborted list; compare time per log
	// record (aborted ones are fetched and dropped by the client).
	b.ReportMetric((ru.Seconds()/float64(nru))/(rc.Seconds()/float64(txns*perTxn*b.N)), "committed/uncommitted-speed")
}
