package broker_test

import (
	"context"
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-io/sluice/internal/broker/brokertest"
)

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// consumeN reads n records of topic from the start.
func consumeN(t *testing.T, b *brokertest.Broker, topic string, n int, opts ...kgo.Opt) []*kgo.Record {
	t.Helper()
	ctx := ctxT(t)
	cl := b.Client(t, append([]kgo.Opt{kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart())}, opts...)...)
	var out []*kgo.Record
	for len(out) < n {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("consumed %d of %d: %v", len(out), n, err)
		}
		fs.EachError(func(topic string, p int32, err error) { t.Fatalf("fetch %s/%d: %v", topic, p, err) })
		out = append(out, fs.Records()...)
	}
	return out
}

func TestProduceConsumeEveryCodec(t *testing.T) {
	b := brokertest.Start(t)
	codecs := map[string]kgo.CompressionCodec{
		"none": kgo.NoCompression(), "gzip": kgo.GzipCompression(), "snappy": kgo.SnappyCompression(),
		"lz4": kgo.Lz4Compression(), "zstd": kgo.ZstdCompression(),
	}
	for name, codec := range codecs {
		t.Run(name, func(t *testing.T) {
			topic := "codec-" + name
			adm := b.Admin(t)
			if _, err := adm.CreateTopic(ctxT(t), 3, 1, nil, topic); err != nil {
				t.Fatal(err)
			}
			cl := b.Client(t, kgo.ProducerBatchCompression(codec), kgo.DefaultProduceTopic(topic), kgo.ProducerLinger(5*time.Millisecond))
			const n = 300
			var recs []*kgo.Record
			for i := 0; i < n; i++ {
				recs = append(recs, &kgo.Record{
					Key:     []byte(fmt.Sprintf("key-%d", i%17)),
					Value:   []byte(fmt.Sprintf("value-%d-%s", i, name)),
					Headers: []kgo.RecordHeader{{Key: "h", Value: []byte(fmt.Sprint(i))}},
				})
			}
			if err := cl.ProduceSync(ctxT(t), recs...).FirstErr(); err != nil {
				t.Fatal(err)
			}
			got := consumeN(t, b, topic, n)
			if len(got) != n {
				t.Fatalf("got %d records, want %d", len(got), n)
			}
			sort.Slice(got, func(i, j int) bool { return string(got[i].Headers[0].Value) < string(got[j].Headers[0].Value) })
			parts := map[int32]bool{}
			for _, r := range got {
				parts[r.Partition] = true
				var i int
				fmt.Sscan(string(r.Headers[0].Value), &i)
				if string(r.Key) != fmt.Sprintf("key-%d", i%17) || string(r.Value) != fmt.Sprintf("value-%d-%s", i, name) {
					t.Fatalf("record %d: key %q value %q", i, r.Key, r.Value)
				}
			}
			if len(parts) < 2 {
				t.Fatalf("records landed in %d partitions", len(parts))
			}
		})
	}
}
