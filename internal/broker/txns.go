package broker

import (
	"context"
	"sync"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/internal/batch"
	"github.com/sluice-io/sluice/internal/group"
	"github.com/sluice-io/sluice/internal/producer"
	"github.com/sluice-io/sluice/internal/server"
	"github.com/sluice-io/sluice/internal/txn"
)

// The transaction-state topic holds the transaction coordinator's state
// (internal/txn writes it, in Kafka's record format), created like the
// offsets topic on the first FindCoordinator for a transactional id.
const (
	txnTopic = "__transaction_state"
	// DefaultTxnTopicPartitions is transaction.state.log.num.partitions.
	DefaultTxnTopicPartitions = txn.DefaultNumPartitions
)

// txnKeys are the API keys internal/txn serves.
var txnKeys = []kmsg.Key{
	kmsg.InitProducerID, kmsg.AddPartitionsToTxn, kmsg.AddOffsetsToTxn, kmsg.EndTxn,
	kmsg.DescribeTransactions, kmsg.ListTransactions,
}

func addTxnHandlers(t map[int16]handler) {
	for _, k := range txnKeys {
		if lo, hi, ok := txn.Versions(int16(k)); ok {
			t[int16(k)] = handler{lo, hi, (*Broker).handleTxn}
		}
	}
}

func (b *Broker) handleTxn(_ context.Context, r *server.Request) server.Pending {
	return groupPending{b.txns.Do(r.Body), r.Version}
}

// newTxnCoordinator starts the transaction coordinator over its topic.
func (b *Broker) newTxnCoordinator() error {
	n := b.internalPartitions(txnTopic, b.opts.TxnTopicPartitions)
	o := b.opts.Txn
	o.Log, o.Markers, o.Topics, o.Now, o.Logger, o.NumPartitions = txnLog{b}, markers{b}, txnTopics{b}, b.opts.Now, b.log, n
	c, err := txn.New(o)
	if err != nil {
		return err
	}
	b.txns = c
	return nil
}

func (b *Broker) loadTxns(ctx context.Context) bool {
	st := b.topic(txnTopic)
	seq := func(yield func(txn.Record, error) bool) {
		for r, err := range b.internalRecords(st) {
			if !yield(txn.Record{Key: r.Key, Value: r.Value}, err) || err != nil {
				return
			}
		}
	}
	if err := b.txns.Load(ctx, seq); err != nil {
		b.log.Error("broker: loading transactions failed", "err", err)
		return false
	}
	b.log.Info("transactions loaded")
	return true
}

func (b *Broker) ensureTxnTopic() (*topicState, error) {
	return b.ensureInternalTopic(txnTopic, b.internalPartitions(txnTopic, b.opts.TxnTopicPartitions))
}

// txnLog is the transaction coordinator's txn.Log.
type txnLog struct{ b *Broker }

func (l txnLog) Append(p int32, recs []txn.Record, done func(error)) {
	st, err := l.b.ensureTxnTopic()
	if err != nil {
		done(err)
		return
	}
	rs := internalBatch(len(recs), func(i int) ([]byte, []byte) { return recs[i].Key, recs[i].Value })
	l.b.appendInternal(st, p, rs, batch.BuildOptions{}, done)
}

// txnTopics is the transaction coordinator's view of topics.
type txnTopics struct{ b *Broker }

func (t txnTopics) Partitions(topic string) (int32, bool) {
	st := t.b.topic(topic)
	if st == nil {
		return 0, false
	}
	return int32(len(st.parts)), true
}

func (t txnTopics) GroupPartition(g string) txn.TopicPartition {
	return txn.TopicPartition{Topic: offsetsTopic, Partition: group.Partition(g, t.b.internalPartitions(offsetsTopic, t.b.opts.OffsetsTopicPartitions))}
}

// markers writes transaction markers for the coordinator: one control
// batch per partition, durable before done. A marker on the offsets topic
// then completes the group coordinator's pending transactional offsets.
type markers struct{ b *Broker }

func (m markers) Write(pid int64, epoch int16, commit bool, coordEpoch int32, parts []txn.TopicPartition, done func(error)) {
	b := m.b
	var mu sync.Mutex
	var first error
	remaining := len(parts) + 1
	finish := func(err error) {
		mu.Lock()
		if err != nil && first == nil {
			first = err
		}
		remaining--
		last := remaining == 0
		err = first
		mu.Unlock()
		if last {
			done(err)
		}
	}
	for _, tp := range parts {
		st := b.topic(tp.Topic)
		p := st.partition(tp.Partition)
		if p == nil {
			finish(nil) // the topic is gone: nothing to mark
			continue
		}
		raw, err := controlBatch(pid, epoch, commit, coordEpoch, b.now().UnixMilli())
		if err != nil {
			finish(err)
			continue
		}
		offsets := tp.Topic == offsetsTopic
		part := tp.Partition
		if _, err := b.eng.Append(context.Background(), p, raw, func(_ int64, err error) {
			if err == nil && offsets {
				b.coord.CompleteTxn(pid, epoch, commit, part)
			}
			finish(err)
		}); err != nil {
			finish(err)
		}
	}
	finish(nil)
}

// controlBatch builds a transaction marker: a control batch of one
// COMMIT or ABORT record.
func controlBatch(pid int64, epoch int16, commit bool, coordEpoch int32, nowMs int64) ([]byte, error) {
	kind := producer.Abort
	if commit {
		kind = producer.Commit
	}
	return batch.Build(batch.CodecNone, nowMs, []batch.Record{producer.MarkerRecord(kind, coordEpoch)}, batch.BuildOptions{
		Transactional: true, Control: true, ProducerID: pid, ProducerEpoch: epoch, BaseSequence: -1,
	})
}
