package broker

import (
	"context"
	"sort"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/internal/batch"
	"github.com/sluice-io/sluice/internal/server"
)

// fuzzLimits keep a fuzzed admin request from creating thousands of
// partitions on disk: the fuzz target is about input handling, not disk
// throughput.
const (
	fuzzMaxPartitions = 4
	fuzzMaxTopics     = 4
	// fuzzMaxTopicsTotal bounds the topics a fuzzing broker accumulates
	// (each holds open files); past it creates are validated only.
	fuzzMaxTopicsTotal = 32
)

func newTestBroker(t testing.TB) *Broker {
	t.Helper()
	b, err := New(Options{Dir: t.TempDir(), Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close(context.Background()) })
	if _, err := b.createTopic("f", 2, nil, false); err != nil {
		t.Fatal(err)
	}
	raw, err := batch.Build(batch.CodecNone, time.Now().UnixMilli(), []batch.Record{{Value: []byte("x")}}, batch.BuildOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.eng.AppendSync(context.Background(), b.topic("f").parts[0], raw); err != nil {
		t.Fatal(err)
	}
	return b
}

// clamp bounds what a fuzzed request may create.
func clamp(b *Broker, req kmsg.Request) {
	switch r := req.(type) {
	case *kmsg.CreateTopicsRequest:
		if len(b.allTopics()) >= fuzzMaxTopicsTotal {
			r.ValidateOnly = true
		}
		r.Topics = r.Topics[:min(len(r.Topics), fuzzMaxTopics)]
		for i := range r.Topics {
			r.Topics[i].NumPartitions = min(r.Topics[i].NumPartitions, fuzzMaxPartitions)
			r.Topics[i].ReplicaAssignment = r.Topics[i].ReplicaAssignment[:min(len(r.Topics[i].ReplicaAssignment), fuzzMaxPartitions)]
		}
	case *kmsg.CreatePartitionsRequest:
		for i := range r.Topics {
			r.Topics[i].Count = min(r.Topics[i].Count, fuzzMaxPartitions)
		}
	case *kmsg.MetadataRequest:
		r.Topics = r.Topics[:min(len(r.Topics), fuzzMaxTopics)]
	case *kmsg.FetchRequest:
		r.MaxWaitMillis = min(r.MaxWaitMillis, 10)
	}
}

// serve runs one request through Handle and Wait and encodes the answer,
// as the server would.
func serve(t testing.TB, b *Broker, req kmsg.Request) server.Response {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	sr := &server.Request{Key: req.Key(), Version: req.GetVersion(), Body: req, Conn: &server.ConnInfo{Plaintext: true}}
	resp := b.Handle(ctx, sr).Wait(ctx)
	if resp.Release != nil {
		defer resp.Release()
	}
	switch {
	case resp.Msg != nil:
		if resp.Msg.Key() != req.Key() {
			t.Fatalf("%s answered with %s", kmsg.NameForKey(req.Key()), kmsg.NameForKey(resp.Msg.Key()))
		}
		resp.Msg.SetVersion(req.GetVersion())
		resp.Msg.AppendTo(nil)
	case resp.Parts != nil, resp.NoResponse:
	default:
		t.Fatalf("%s v%d: empty response", kmsg.NameForKey(req.Key()), req.GetVersion())
	}
	return resp
}

func sortedKeys() []int16 {
	var keys []int16
	for k := range handlers {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i] < keys[j] })
	return keys
}

// Every key at every advertised version answers a default request (and
// one with an unknown topic) without panicking, in a response that
// encodes.
func TestEveryKeyAndVersionAnswers(t *testing.T) {
	b := newTestBroker(t)
	for _, k := range sortedKeys() {
		h := handlers[k]
		if max := kmsg.RequestForKey(k).MaxVersion(); h.max > max {
			t.Errorf("%s: advertised v%d, kmsg knows v%d", kmsg.NameForKey(k), h.max, max)
		}
		for v := h.min; v <= h.max; v++ {
			req := kmsg.RequestForKey(k)
			req.SetVersion(v)
			// Round-trip through the wire format, as the server does.
			body := req.AppendTo(nil)
			dec := kmsg.RequestForKey(k)
			dec.SetVersion(v)
			if err := dec.ReadFrom(body); err != nil {
				t.Fatalf("%s v%d: %v", kmsg.NameForKey(k), v, err)
			}
			serve(t, b, dec)
		}
	}
}

// FuzzHandle feeds decoded random requests of every served key and version
// to the handlers. Invariant: nothing panics, every response encodes at the
// request's version, and the broker keeps answering.
func FuzzHandle(f *testing.F) {
	for _, k := range sortedKeys() {
		h := handlers[k]
		req := kmsg.RequestForKey(k)
		req.SetVersion(h.max)
		f.Add(uint16(k), uint8(h.max), req.AppendTo(nil))
	}
	f.Add(uint16(kmsg.Produce), uint8(9), produceBody(f))
	b := newTestBroker(f)
	keys := sortedKeys()
	f.Fuzz(func(t *testing.T, key uint16, version uint8, body []byte) {
		k := keys[int(key)%len(keys)]
		h := handlers[k]
		v := h.min + int16(version)%(h.max-h.min+1)
		req := kmsg.RequestForKey(k)
		req.SetVersion(v)
		if err := req.ReadFrom(body); err != nil {
			return
		}
		clamp(b, req)
		serve(t, b, req)
	})
}

func produceBody(f *testing.F) []byte {
	raw, err := batch.Build(batch.CodecGzip, 1, []batch.Record{{Value: []byte("v")}}, batch.BuildOptions{})
	if err != nil {
		f.Fatal(err)
	}
	req := kmsg.NewPtrProduceRequest()
	req.Version = 9
	req.Acks = -1
	req.Topics = []kmsg.ProduceRequestTopic{{Topic: "f", Partitions: []kmsg.ProduceRequestTopicPartition{{Partition: 0, Records: raw}}}}
	return req.AppendTo(nil)
}
