package broker_test

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/internal/batch"
	"github.com/sluice-io/sluice/internal/broker"
	"github.com/sluice-io/sluice/internal/broker/brokertest"
)

// rawProduce sends one batch to a partition and fails the test unless it
// is accepted.
func rawProduce(t *testing.T, b *brokertest.Broker, topic string, part int32, codec batch.Codec, ts int64, recs []batch.Record) {
	t.Helper()
	raw, err := batch.Build(codec, ts, recs, batch.BuildOptions{})
	if err != nil {
		t.Fatal(err)
	}
	c := dialRaw(t, b.Addr())
	resp := c.do(produceReq(9, topic, part, raw)).(*kmsg.ProduceResponse)
	if code := resp.Topics[0].Partitions[0].ErrorCode; code != 0 {
		t.Fatalf("produce %v batch: error %d", codec, code)
	}
}

func browsedOffsets(recs []broker.BrowseRecord) []int64 {
	out := make([]int64, 0, len(recs))
	for _, r := range recs {
		out = append(out, r.Offset)
	}
	return out
}

func offsetSpan(from, to int64) []int64 {
	var out []int64
	for o := from; o < to; o++ {
		out = append(out, o)
	}
	return out
}

func mustBrowse(t *testing.T, b *brokertest.Broker, topic string, part int32, offset int64, limit int) broker.BrowseResult {
	t.Helper()
	res, err := b.Browse(topic, part, offset, limit)
	if err != nil {
		t.Fatalf("Browse(%s, %d, %d, %d): %v", topic, part, offset, limit, err)
	}
	return res
}

// Browse reads committed records across zstd, lz4 and uncompressed
// batches: null and empty keys and values, headers, long values cut,
// offsets from the tail, from inside a batch, past the end and below the
// log start.
func TestBrowseRecords(t *testing.T) {
	b := brokertest.Start(t)
	createTopic(t, b, "br", 2, nil)
	ts := time.Now().UnixMilli()
	long := bytes.Repeat([]byte("L"), broker.BrowseFieldBytesMax+100)
	rawProduce(t, b, "br", 0, batch.CodecZstd, ts, []batch.Record{
		{Key: []byte("k0"), Value: []byte("v0"), Headers: []batch.RecordHeader{
			{Key: []byte("trace"), Value: []byte{0, 1, 2}}, {Key: []byte("none"), ValueNull: true},
		}},
		{Key: nil, Value: []byte("null key"), TimestampDelta: 1},
		{Key: []byte{}, Value: nil, TimestampDelta: 2}, // empty key, tombstone
		{Key: []byte("long"), Value: long, TimestampDelta: 3},
		{Key: []byte("k4"), Value: []byte("v4"), TimestampDelta: 4},
	})
	var lz4, plain []batch.Record
	for i := range 3 {
		lz4 = append(lz4, batch.Record{Key: fmt.Appendf(nil, "k%d", 5+i), Value: fmt.Appendf(nil, "v%d", 5+i)})
	}
	for i := range 10 {
		plain = append(plain, batch.Record{Key: fmt.Appendf(nil, "k%d", 8+i), Value: fmt.Appendf(nil, "v%d", 8+i)})
	}
	rawProduce(t, b, "br", 0, batch.CodecLZ4, ts, lz4)
	rawProduce(t, b, "br", 0, batch.CodecNone, ts, plain)

	all := mustBrowse(t, b, "br", 0, 0, 200)
	if all.LogStart != 0 || all.HighWatermark != 18 || !slices.Equal(browsedOffsets(all.Records), offsetSpan(0, 18)) {
		t.Fatalf("whole partition: start %d hw %d offsets %v", all.LogStart, all.HighWatermark, browsedOffsets(all.Records))
	}
	r := all.Records
	if string(r[0].Key) != "k0" || string(r[0].Value) != "v0" || r[0].KeySize != 2 || r[0].Truncated || r[0].TimestampMs != ts {
		t.Errorf("record 0 %+v", r[0])
	}
	wantHdrs := []broker.BrowseHeader{{Key: "trace", Value: []byte{0, 1, 2}}, {Key: "none", Value: nil}}
	if len(r[0].Headers) != 2 || r[0].Headers[0].Key != "trace" || !bytes.Equal(r[0].Headers[0].Value, wantHdrs[0].Value) ||
		r[0].Headers[1].Key != "none" || r[0].Headers[1].Value != nil {
		t.Errorf("headers %+v, want %+v", r[0].Headers, wantHdrs)
	}
	if r[1].Key != nil || r[1].KeySize != -1 || string(r[1].Value) != "null key" || r[1].TimestampMs != ts+1 {
		t.Errorf("null key %+v", r[1])
	}
	if r[2].Key == nil || len(r[2].Key) != 0 || r[2].KeySize != 0 || r[2].Value != nil || r[2].ValueSize != -1 {
		t.Errorf("empty key, null value %+v", r[2])
	}
	if len(r[3].Value) != broker.BrowseFieldBytesMax || r[3].ValueSize != len(long) || !r[3].Truncated || r[3].KeySize != 4 {
		t.Errorf("long value: %d bytes of %d, truncated %v", len(r[3].Value), r[3].ValueSize, r[3].Truncated)
	}
	if string(r[6].Value) != "v6" || string(r[17].Key) != "k17" {
		t.Errorf("lz4 record %+v, last record %+v", r[6], r[17])
	}

	for _, tc := range []struct {
		name   string
		offset int64
		limit  int
		want   []int64
	}{
		{"the tail", -1, 5, offsetSpan(13, 18)},
		{"the tail, more than there is", -1, 50, offsetSpan(0, 18)},
		{"inside a zstd batch, across into lz4", 3, 4, offsetSpan(3, 7)},
		{"inside an lz4 batch", 6, 3, offsetSpan(6, 9)},
		{"at the high watermark", 18, 10, nil},
		{"past the high watermark", 1000, 10, nil},
		{"limit below 1 reads one", 2, 0, []int64{2}},
	} {
		res := mustBrowse(t, b, "br", 0, tc.offset, tc.limit)
		if got := browsedOffsets(res.Records); !slices.Equal(got, tc.want) && !(len(got) == 0 && len(tc.want) == 0) {
			t.Errorf("%s: offsets %v, want %v", tc.name, got, tc.want)
		}
		if res.HighWatermark != 18 {
			t.Errorf("%s: high watermark %d", tc.name, res.HighWatermark)
		}
	}
	if res := mustBrowse(t, b, "br", 1, -1, 20); len(res.Records) != 0 || res.HighWatermark != 0 {
		t.Errorf("empty partition %+v", res)
	}
	for _, tc := range []struct {
		topic string
		part  int32
	}{{"nope", 0}, {"br", 2}, {"br", -1}} {
		if _, err := b.Browse(tc.topic, tc.part, 0, 1); !errors.Is(err, broker.ErrUnknownTopicOrPartition) {
			t.Errorf("Browse(%s, %d): %v", tc.topic, tc.part, err)
		}
	}

	// Below the log start reads from the log start.
	var del kadm.Offsets
	del.Add(kadm.Offset{Topic: "br", Partition: 0, At: 6})
	if rr, err := b.Admin(t).DeleteRecords(ctxT(t), del); err != nil || rr.Error() != nil {
		t.Fatalf("delete records: %v %v", err, rr.Error())
	}
	res := mustBrowse(t, b, "br", 0, 0, 3)
	if res.LogStart != 6 || !slices.Equal(browsedOffsets(res.Records), offsetSpan(6, 9)) {
		t.Errorf("below the log start: start %d offsets %v", res.LogStart, browsedOffsets(res.Records))
	}
	if res := mustBrowse(t, b, "br", 0, -1, 50); !slices.Equal(browsedOffsets(res.Records), offsetSpan(6, 18)) {
		t.Errorf("tail past the log start: %v", browsedOffsets(res.Records))
	}
}

// Many batches: one call reads no more than BrowseRecordsMax records, in
// offset order, from real kgo produce with lz4.
func TestBrowseLimits(t *testing.T) {
	b := brokertest.Start(t)
	createTopic(t, b, "many", 1, nil)
	cl := b.Client(t, kgo.DefaultProduceTopic("many"), kgo.ProducerBatchCompression(kgo.Lz4Compression()))
	var recs []*kgo.Record
	for i := range 300 {
		recs = append(recs, &kgo.Record{Key: fmt.Appendf(nil, "k%d", i), Value: bytes.Repeat([]byte{'v'}, 100)})
	}
	if err := cl.ProduceSync(ctxT(t), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	res := mustBrowse(t, b, "many", 0, 0, 1000)
	if !slices.Equal(browsedOffsets(res.Records), offsetSpan(0, broker.BrowseRecordsMax)) {
		t.Fatalf("offsets %v", browsedOffsets(res.Records))
	}
	res = mustBrowse(t, b, "many", 0, 250, 1000)
	if !slices.Equal(browsedOffsets(res.Records), offsetSpan(250, 300)) || string(res.Records[0].Key) != "k250" {
		t.Fatalf("from 250: %v", browsedOffsets(res.Records))
	}
}

// Transaction markers are skipped; log-append-time topics report the
// broker's time.
func TestBrowseSkipsControlBatches(t *testing.T) {
	b := brokertest.Start(t)
	createTopic(t, b, "btx", 1, map[string]*string{"message.timestamp.type": strp("LogAppendTime")})
	before := time.Now().UnixMilli()
	p := b.Client(t, kgo.TransactionalID("browse-tx"), kgo.DefaultProduceTopic("btx"))
	if err := p.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if err := p.ProduceSync(ctxT(t), kgo.StringRecord(fmt.Sprint("t", i))).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.EndTransaction(ctxT(t), kgo.TryCommit); err != nil {
		t.Fatal(err)
	}
	plain := b.Client(t, kgo.DefaultProduceTopic("btx"))
	if err := plain.ProduceSync(ctxT(t), kgo.StringRecord("after")).FirstErr(); err != nil {
		t.Fatal(err)
	}
	after := time.Now().UnixMilli()
	var res broker.BrowseResult
	waitFor(t, 10*time.Second, "the plain record", func() bool {
		res = mustBrowse(t, b, "btx", 0, 0, 20)
		return len(res.Records) == 4
	})
	offs := browsedOffsets(res.Records)
	if offs[0] != 0 || offs[2] != 2 || string(res.Records[3].Value) != "after" || offs[3] <= 3 {
		t.Fatalf("offsets %v (the marker at 3 must be skipped), last %q", offs, res.Records[3].Value)
	}
	for _, r := range res.Records {
		if r.TimestampMs < before || r.TimestampMs > after {
			t.Errorf("offset %d: log-append time %d outside [%d, %d]", r.Offset, r.TimestampMs, before, after)
		}
	}
	// From the marker's offset: the next data record.
	if res := mustBrowse(t, b, "btx", 0, 3, 1); len(res.Records) != 1 || string(res.Records[0].Value) != "after" {
		t.Errorf("from the marker: %+v", res.Records)
	}
}
