package broker

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"net"
	"strings"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/internal/batch"
	"github.com/sluice-io/sluice/internal/group"
	"github.com/sluice-io/sluice/internal/server"
)

// The consumer-offsets topic holds committed offsets and group metadata
// (internal/group writes it, in Kafka's record format). Like Kafka, the
// broker creates it on the first FindCoordinator for a group, compacted,
// with offsets.topic.num.partitions partitions.
const (
	offsetsTopic = "__consumer_offsets"
	// DefaultOffsetsTopicPartitions is offsets.topic.num.partitions.
	DefaultOffsetsTopicPartitions = group.DefaultNumPartitions
	// internalSegmentBytes is offsets.topic.segment.bytes (and
	// transaction.state.log.segment.bytes).
	internalSegmentBytes = "104857600"
	// offsetsLoadReadBytes is how much of the offsets log one read
	// returns while loading.
	offsetsLoadReadBytes = 1 << 20
)

var errInternalTopic = errors.New("broker: internal topic")

// isInternal reports whether clients may not write or delete topic name.
func isInternal(name string) bool { return name == offsetsTopic || name == txnTopic }

// groupKeys are the API keys internal/group serves; their versions come
// from group.Versions, so ApiVersions advertises exactly what it handles.
var groupKeys = []kmsg.Key{
	kmsg.OffsetCommit, kmsg.OffsetFetch, kmsg.JoinGroup, kmsg.Heartbeat,
	kmsg.LeaveGroup, kmsg.SyncGroup, kmsg.DescribeGroups, kmsg.ListGroups,
	kmsg.DeleteGroups, kmsg.OffsetDelete,
	kmsg.ConsumerGroupHeartbeat, kmsg.ConsumerGroupDescribe, kmsg.TxnOffsetCommit,
}

func addGroupHandlers(t map[int16]handler) {
	for _, k := range groupKeys {
		if lo, hi, ok := group.Versions(int16(k)); ok {
			t[int16(k)] = handler{lo, hi, (*Broker).handleGroup}
		}
	}
}

// handleGroup hands a group request to the coordinator, in request order,
// and answers once the coordinator does (a JoinGroup waits for the
// rebalance, a commit for its fsync).
func (b *Broker) handleGroup(_ context.Context, r *server.Request) server.Pending {
	var cl group.Client
	if r.ClientID != nil {
		cl.ID = *r.ClientID
	}
	if r.Conn != nil && r.Conn.Remote != nil {
		cl.Host = r.Conn.Remote.String()
		if h, _, err := net.SplitHostPort(cl.Host); err == nil {
			cl.Host = h
		}
		cl.Host = "/" + cl.Host // Kafka's InetAddress.toString form
	}
	return groupPending{b.coord.DoFrom(cl, r.Body), r.Version}
}

type groupPending struct {
	ch      <-chan kmsg.Response
	version int16
}

func (p groupPending) Wait(ctx context.Context) server.Response {
	select {
	case resp := <-p.ch:
		resp.SetVersion(p.version)
		return server.Response{Msg: resp}
	case <-ctx.Done():
		return server.Response{NoResponse: true}
	}
}

// Groups lists the consumer groups (for tools and tests).
func (b *Broker) Groups() []group.GroupInfo { return b.coord.Groups() }

// newCoordinator starts the group coordinator over the offsets topic.
func (b *Broker) newCoordinator() error {
	n := b.internalPartitions(offsetsTopic, b.opts.OffsetsTopicPartitions) // an existing topic keeps its count
	o := b.opts.Group
	o.Log, o.Topics, o.Now, o.Logger, o.NumPartitions = offsetsLog{b}, groupTopics{b}, b.opts.Now, b.log, n
	c, err := group.New(o)
	if err != nil {
		return err
	}
	b.coord = c
	return nil
}

// loadGroups replays the offsets topic into the coordinator. Until it
// finishes, group requests are answered COORDINATOR_LOAD_IN_PROGRESS.
func (b *Broker) loadGroups(ctx context.Context) bool {
	st := b.topic(offsetsTopic)
	err := b.coord.Load(ctx, b.internalRecords(st))
	if err != nil {
		b.log.Error("broker: loading consumer groups failed", "err", err)
		return false
	}
	b.log.Info("consumer groups loaded", "groups", len(b.coord.Groups()))
	return true
}

// internalRecords yields every record of a coordinator's topic, partition
// by partition, in offset order, with their batches' producer fields;
// transaction markers come as Control records.
func (b *Broker) internalRecords(st *topicState) iter.Seq2[group.Record, error] {
	return func(yield func(group.Record, error) bool) {
		if st == nil {
			return
		}
		var buf []byte
		for pi, p := range st.parts {
			start, end := p.Offsets()
			for off := start; off < end; {
				res, err := p.Read(off, offsetsLoadReadBytes)
				if err != nil {
					yield(group.Record{}, fmt.Errorf("broker: reading %s: %w", p.ID(), err))
					return
				}
				if res.Range.Handle == nil {
					break
				}
				r := res.Range
				if int64(cap(buf)) < r.Len {
					buf = make([]byte, r.Len)
				}
				buf = buf[:r.Len]
				n, err := r.Handle.File().ReadAt(buf, r.Pos)
				res.Release()
				if n == len(buf) {
					err = nil
				}
				if err != nil {
					yield(group.Record{}, fmt.Errorf("broker: reading %s: %w", p.ID(), err))
					return
				}
				off = r.Last + 1
				it := batch.NewIter(buf)
				for it.Next() {
					h := it.Header()
					stop := false
					err := batch.Records(it.Batch(), func(rec *batch.Record) error {
						out := group.Record{
							Transactional: h.Transactional(), ProducerID: h.ProducerID, ProducerEpoch: h.ProducerEpoch,
							Partition: int32(pi),
						}
						if h.Control() {
							// A transaction marker: its key says
							// commit or abort.
							var k kmsg.ControlRecordKey
							if err := k.ReadFrom(rec.Key); err != nil {
								return fmt.Errorf("%w: control record key: %v", batch.ErrCorrupt, err)
							}
							out.Control, out.Commit = true, k.Type == kmsg.ControlRecordKeyTypeCommit
						} else {
							out.Key = clone(rec.Key)
							if !rec.ValueNull {
								out.Value = clone(rec.Value)
							}
						}
						if !yield(out, nil) {
							stop = true
							return errStopIter
						}
						return nil
					})
					if stop {
						return
					}
					if err != nil {
						yield(group.Record{}, fmt.Errorf("broker: decoding %s: %w", p.ID(), err))
						return
					}
				}
				if err := it.Err(); err != nil {
					yield(group.Record{}, fmt.Errorf("broker: decoding %s: %w", p.ID(), err))
					return
				}
			}
		}
	}
}

var errStopIter = errors.New("broker: stop")

func clone(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return append([]byte(nil), b...)
}

// ensureOffsetsTopic creates the offsets topic when it is missing.
func (b *Broker) ensureOffsetsTopic() (*topicState, error) {
	return b.ensureInternalTopic(offsetsTopic, b.internalPartitions(offsetsTopic, b.opts.OffsetsTopicPartitions))
}

// ensureInternalTopic creates a coordinator's compacted topic when it is
// missing.
func (b *Broker) ensureInternalTopic(name string, n int32) (*topicState, error) {
	if st := b.topic(name); st != nil {
		return st, nil
	}
	st, err := b.createTopic(name, n, map[string]string{
		"cleanup.policy": "compact",
		"segment.bytes":  internalSegmentBytes,
	}, false)
	if errors.Is(err, errTopicExists) {
		return b.topic(name), nil
	}
	return st, err
}

// appendInternal appends recs to partition p of a coordinator's topic as
// one batch and calls done once it is durable.
func (b *Broker) appendInternal(st *topicState, p int32, recs []batch.Record, bo batch.BuildOptions, done func(error)) {
	part := st.partition(p)
	if part == nil {
		done(fmt.Errorf("%w: %s partition %d", errUnknownTopic, st.name, p))
		return
	}
	raw, err := batch.Build(batch.CodecNone, b.now().UnixMilli(), recs, bo)
	if err != nil {
		done(err)
		return
	}
	if _, err := b.eng.Append(context.Background(), part, raw, func(_ int64, err error) { done(err) }); err != nil {
		done(err)
	}
}

// internalPartitions is the partition count of a coordinator's topic: the
// topic's own once it exists (it never changes), else the configured one.
func (b *Broker) internalPartitions(name string, configured int32) int32 {
	if st := b.topic(name); st != nil {
		return int32(len(st.parts))
	}
	return configured
}

// internalBatch turns a coordinator's key/value records (nil value: a
// tombstone) into batch records.
func internalBatch(n int, kv func(i int) (k, v []byte)) []batch.Record {
	rs := make([]batch.Record, n)
	for i := range rs {
		k, v := kv(i)
		rs[i] = batch.Record{Key: k, Value: v, KeyNull: k == nil, ValueNull: v == nil}
	}
	return rs
}

// offsetsLog is the coordinator's group.Log: one batch per Append, on the
// group's offsets partition, acknowledged after its WAL fsync.
type offsetsLog struct{ b *Broker }

func (l offsetsLog) Append(p int32, recs []group.Record, done func(error)) {
	st, err := l.b.ensureOffsetsTopic()
	if err != nil {
		done(err)
		return
	}
	rs := internalBatch(len(recs), func(i int) ([]byte, []byte) { return recs[i].Key, recs[i].Value })
	var bo batch.BuildOptions
	if len(recs) > 0 && recs[0].Transactional {
		// A TxnOffsetCommit: the records belong to the producer's
		// transaction, and its marker decides them.
		bo = batch.BuildOptions{Transactional: true, ProducerID: recs[0].ProducerID, ProducerEpoch: recs[0].ProducerEpoch, BaseSequence: -1}
	}
	l.b.appendInternal(st, p, rs, bo, done)
}

// groupTopics is the coordinator's view of the topics.
type groupTopics struct{ b *Broker }

func (t groupTopics) Topic(name string) (group.TopicInfo, bool) {
	return topicInfo(t.b.topic(name))
}

func (t groupTopics) TopicByID(id [16]byte) (group.TopicInfo, bool) {
	return topicInfo(t.b.topicByID(id))
}

func (t groupTopics) List() []group.TopicInfo {
	all := t.b.allTopics()
	out := make([]group.TopicInfo, 0, len(all))
	for _, st := range all {
		ti, _ := topicInfo(st)
		out = append(out, ti)
	}
	return out
}

func topicInfo(st *topicState) (group.TopicInfo, bool) {
	if st == nil {
		return group.TopicInfo{}, false
	}
	return group.TopicInfo{Name: st.name, ID: st.id, Partitions: int32(len(st.parts))}, true
}

// compacted reports whether cleanup.policy includes compact.
func compacted(eff map[string]string) bool {
	for _, p := range strings.Split(eff["cleanup.policy"], ",") {
		if strings.TrimSpace(p) == "compact" {
			return true
		}
	}
	return false
}
