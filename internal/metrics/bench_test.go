package metrics

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/internal/server"
)

// The per-event cost the produce path pays with metrics on. Compare with
// the produce path's own cost per request (docs/benchmarks.md) to argue the
// 3% budget.
func BenchmarkObserveRequest(b *testing.B) {
	m, _ := New(Options{NoRuntimeMetrics: true})
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			m.ObserveRequest(0, 9, 3*time.Millisecond, false, server.Response{})
		}
	})
}

// With a produce response of 4 partitions to walk for error codes.
func BenchmarkObserveRequestProduceResponse(b *testing.B) {
	m, _ := New(Options{NoRuntimeMetrics: true})
	pr := kmsg.NewPtrProduceResponse()
	pr.Topics = []kmsg.ProduceResponseTopic{{Topic: "orders", Partitions: make([]kmsg.ProduceResponseTopicPartition, 4)}}
	resp := server.Response{Msg: pr}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			m.ObserveRequest(0, 9, 3*time.Millisecond, false, resp)
		}
	})
}

func BenchmarkObserveProduce(b *testing.B) {
	m, _ := New(Options{NoRuntimeMetrics: true})
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			m.ObserveProduce("orders", 100, 16<<10, 3*time.Millisecond)
		}
	})
}

func BenchmarkObserveWALSync(b *testing.B) {
	m, _ := New(Options{NoRuntimeMetrics: true})
	b.ReportAllocs()
	for b.Loop() {
		m.ObserveWALSync(1<<20, 64, time.Millisecond)
	}
}

// What a caller pays with metrics off: a nil check.
func BenchmarkObserveProduceNil(b *testing.B) {
	var m *Metrics
	b.ReportAllocs()
	for b.Loop() {
		m.ObserveProduce("orders", 100, 16<<10, 3*time.Millisecond)
	}
}
