package broker_test

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/internal/batch"
	"github.com/sluice-io/sluice/internal/broker/brokertest"
)

func createTopic(t *testing.T, b *brokertest.Broker, name string, parts int32, configs map[string]*string) {
	t.Helper()
	resp, err := b.Admin(t).CreateTopic(ctxT(t), parts, 1, configs, name)
	if err != nil || resp.Err != nil {
		t.Fatalf("create %s: %v %v", name, err, resp.Err)
	}
}

func strp(s string) *string { return &s }

func endOffset(t *testing.T, b *brokertest.Broker, topic string, part int32) int64 {
	t.Helper()
	ends, err := b.Admin(t).ListEndOffsets(ctxT(t), topic)
	if err != nil {
		t.Fatal(err)
	}
	o, ok := ends.Lookup(topic, part)
	if !ok || o.Err != nil {
		t.Fatalf("end offset of %s/%d: %v", topic, part, o.Err)
	}
	return o.Offset
}

func TestProduceAcks(t *testing.T) {
	b := brokertest.Start(t)
	for _, tc := range []struct {
		name string
		acks kgo.Acks
	}{{"none", kgo.NoAck()}, {"leader", kgo.LeaderAck()}, {"all", kgo.AllISRAcks()}} {
		t.Run(tc.name, func(t *testing.T) {
			topic := "acks-" + tc.name
			createTopic(t, b, topic, 2, nil)
			opts := []kgo.Opt{kgo.RequiredAcks(tc.acks), kgo.DefaultProduceTopic(topic)}
			if tc.name != "all" {
				opts = append(opts, kgo.DisableIdempotentWrite()) // kgo: idempotence needs acks=all
			}
			cl := b.Client(t, opts...)
			var recs []*kgo.Record
			for i := 0; i < 100; i++ {
				recs = append(recs, kgo.StringRecord("v"))
			}
			if err := cl.ProduceSync(ctxT(t), recs...).FirstErr(); err != nil {
				t.Fatal(err)
			}
			if got := consumeN(t, b, topic, 100); len(got) != 100 {
				t.Fatalf("got %d", len(got))
			}
		})
	}
}

func TestProduceErrors(t *testing.T) {
	b := brokertest.Start(t)
	createTopic(t, b, "t", 1, map[string]*string{"max.message.bytes": strp("20000"), "message.timestamp.after.max.ms": strp("60000")})
	rc := dialRaw(t, b.Addr())
	now := time.Now().UnixMilli()
	good := buildBatch(t, batch.CodecNone, now, 3, 10)
	badCRC := slices.Clone(good)
	badCRC[len(badCRC)-1] ^= 0xff
	magic1 := slices.Clone(good)
	magic1[16] = 1
	big := buildBatch(t, batch.CodecNone, now, 1, 30000)
	future := buildBatch(t, batch.CodecNone, now+3600_000, 1, 10)
	control := buildBatchOpts(t, batch.BuildOptions{Control: true})
	txn := buildBatchOpts(t, batch.BuildOptions{Transactional: true, ProducerID: 1})
	for _, tc := range []struct {
		name    string
		topic   string
		part    int32
		records []byte
		want    *kerr.Error
	}{
		{"bad crc", "t", 0, badCRC, kerr.CorruptMessage},
		{"good then bad crc", "t", 0, append(slices.Clone(good), badCRC...), kerr.CorruptMessage},
		{"truncated", "t", 0, good[:len(good)-3], kerr.CorruptMessage},
		{"empty", "t", 0, []byte{}, kerr.CorruptMessage},
		{"magic 1", "t", 0, magic1, kerr.UnsupportedForMessageFormat},
		{"too large", "t", 0, big, kerr.MessageTooLarge},
		{"future timestamp", "t", 0, future, kerr.InvalidTimestamp},
		{"control batch", "t", 0, control, kerr.InvalidRecord},
		{"transactional", "t", 0, txn, kerr.InvalidRecord},
		{"unknown partition", "t", 7, good, kerr.UnknownTopicOrPartition},
		{"unknown topic", "nope", 0, good, kerr.UnknownTopicOrPartition},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, v := range []int16{3, 7, 9, 12} {
				resp := rc.do(produceReq(v, tc.topic, tc.part, slices.Clone(tc.records))).(*kmsg.ProduceResponse)
				p := resp.Topics[0].Partitions[0]
				if err := kerr.ErrorForCode(p.ErrorCode); !errors.Is(err, tc.want) {
					t.Fatalf("v%d: error %v, want %v", v, err, tc.want)
				}
				if p.BaseOffset != -1 {
					t.Fatalf("v%d: base offset %d on error", v, p.BaseOffset)
				}
			}
		})
	}
	// Nothing of the above was appended.
	if end := endOffset(t, b, "t", 0); end != 0 {
		t.Fatalf("end offset %d after refused produces", end)
	}
	// A valid multi-batch record set is appended whole, in order.
	resp := rc.do(produceReq(9, "t", 0, append(slices.Clone(good), good...))).(*kmsg.ProduceResponse)
	if p := resp.Topics[0].Partitions[0]; p.ErrorCode != 0 || p.BaseOffset != 0 {
		t.Fatalf("multi-batch produce: %+v", p)
	}
	if end := endOffset(t, b, "t", 0); end != 6 {
		t.Fatalf("end offset %d, want 6", end)
	}
	// Invalid acks is answered for every partition.
	req := produceReq(9, "t", 0, slices.Clone(good))
	req.Acks = 2
	resp = rc.do(req).(*kmsg.ProduceResponse)
	if err := kerr.ErrorForCode(resp.Topics[0].Partitions[0].ErrorCode); !errors.Is(err, kerr.InvalidRequiredAcks) {
		t.Fatalf("acks=2: %v", err)
	}
	// v13 addresses topics by ID.
	req = produceReq(13, "", 0, slices.Clone(good))
	req.Topics[0].TopicID = [16]byte{1, 2, 3}
	resp = rc.do(req).(*kmsg.ProduceResponse)
	if err := kerr.ErrorForCode(resp.Topics[0].Partitions[0].ErrorCode); !errors.Is(err, kerr.UnknownTopicID) {
		t.Fatalf("v13 unknown id: %v", err)
	}
}

func buildBatchOpts(t *testing.T, o batch.BuildOptions) []byte {
	b, err := batch.Build(batch.CodecNone, time.Now().UnixMilli(), []batch.Record{{Value: []byte("x")}}, o)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// A record near max.message.bytes goes through; one above it is refused
// with MESSAGE_TOO_LARGE.
func TestMaxMessageBytesWithKgo(t *testing.T) {
	b := brokertest.Start(t)
	createTopic(t, b, "big", 1, map[string]*string{"max.message.bytes": strp("200000")})
	cl := b.Client(t, kgo.DefaultProduceTopic("big"), kgo.ProducerBatchMaxBytes(4<<20), kgo.RecordRetries(1))
	ok := kgo.SliceRecord(randomBytes(199000))
	if err := cl.ProduceSync(ctxT(t), ok).FirstErr(); err != nil {
		t.Fatalf("199000-byte record: %v", err)
	}
	tooBig := kgo.SliceRecord(randomBytes(300000))
	if err := cl.ProduceSync(ctxT(t), tooBig).FirstErr(); !errors.Is(err, kerr.MessageTooLarge) {
		t.Fatalf("300000-byte record: %v, want MESSAGE_TOO_LARGE", err)
	}
	got := consumeN(t, b, "big", 1, kgo.FetchMaxPartitionBytes(1<<20))
	if len(got[0].Value) != 199000 {
		t.Fatalf("consumed %d bytes", len(got[0].Value))
	}
}

// randomBytes does not compress, so kgo's default codec cannot shrink it
// under a limit.
func randomBytes(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rand.Uint32())
	}
	return b
}

func TestLogAppendTime(t *testing.T) {
	b := brokertest.Start(t)
	createTopic(t, b, "lat", 1, map[string]*string{"message.timestamp.type": strp("LogAppendTime")})
	rc := dialRaw(t, b.Addr())
	before := time.Now().UnixMilli()
	resp := rc.do(produceReq(9, "lat", 0, buildBatch(t, batch.CodecNone, 1000, 2, 5))).(*kmsg.ProduceResponse)
	p := resp.Topics[0].Partitions[0]
	if p.ErrorCode != 0 || p.LogAppendTime < before {
		t.Fatalf("LogAppendTime produce: %+v", p)
	}
	got := consumeN(t, b, "lat", 2)
	if got[0].Timestamp.UnixMilli() != p.LogAppendTime || got[0].Attrs.TimestampType() != 1 {
		t.Fatalf("consumed timestamp %v, want %d", got[0].Timestamp.UnixMilli(), p.LogAppendTime)
	}
}

// Pipelined produces on one connection are answered in request order and
// share WAL syncs: their appends are queued as each request is read, not
// after the previous one is acknowledged.
func TestPipelinedProducesShareSyncs(t *testing.T) {
	b := brokertest.Start(t)
	createTopic(t, b, "pipe", 1, nil)
	rc := dialRaw(t, b.Addr())
	before := b.Engine().Stats().WAL.Syncs
	const n = 40
	rec := buildBatch(t, batch.CodecNone, time.Now().UnixMilli(), 1, 100)
	var corrs []int32
	for i := 0; i < n; i++ {
		corrs = append(corrs, rc.send(produceReq(9, "pipe", 0, slices.Clone(rec))))
	}
	for i, corr := range corrs {
		resp := rc.recv(produceReq(9, "", 0, nil), corr).(*kmsg.ProduceResponse)
		if p := resp.Topics[0].Partitions[0]; p.ErrorCode != 0 || p.BaseOffset != int64(i) {
			t.Fatalf("response %d: %+v", i, p)
		}
	}
	if syncs := b.Engine().Stats().WAL.Syncs - before; syncs >= n {
		t.Fatalf("%d pipelined produces took %d WAL syncs; they should share them", n, syncs)
	} else {
		t.Logf("%d pipelined produces, %d WAL syncs", n, syncs)
	}
}

// The server reads each produce into a buffer it reuses once the produce is
// answered (server.Response.ReuseRequest). Pipelined produces of distinct
// records over several connections must still read back byte for byte: a
// buffer reused while the engine was still writing it into a segment
// would show here as corrupt or changed records.
func TestProduceBuffersReusedSafely(t *testing.T) {
	b := brokertest.Start(t)
	const topic, parts, n, size = "reuse", 4, 4000, 2000
	createTopic(t, b, topic, parts, nil)
	value := func(i int) []byte {
		v := make([]byte, size)
		r := rand.New(rand.NewPCG(uint64(i), 7))
		for j := range v {
			v[j] = byte(r.Uint32())
		}
		return v
	}
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	for w := range 2 {
		wg.Go(func() {
			cl := b.Client(t, kgo.DefaultProduceTopic(topic), kgo.ProducerLinger(time.Millisecond), kgo.ProducerBatchMaxBytes(64<<10))
			var recs []*kgo.Record
			for i := w; i < n; i += 2 {
				recs = append(recs, &kgo.Record{Key: []byte(strconv.Itoa(i)), Value: value(i)})
			}
			errs <- cl.ProduceSync(ctxT(t), recs...).FirstErr()
		})
	}
	wg.Wait()
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	got := consumeN(t, b, topic, n)
	seen := map[int]bool{}
	for _, r := range got {
		i, err := strconv.Atoi(string(r.Key))
		if err != nil || seen[i] || !bytes.Equal(r.Value, value(i)) {
			t.Fatalf("record %q at %d/%d: duplicate %v or value changed", r.Key, r.Partition, r.Offset, seen[i])
		}
		seen[i] = true
	}
	if len(seen) != n {
		t.Fatalf("read %d distinct records, want %d", len(seen), n)
	}
}
