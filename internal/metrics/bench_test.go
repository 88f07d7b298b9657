package metrics

import (
	"testing"
	"time"
)

// The per-event cost the produce path pays with metrics on. Compare with
// the produce path's own cost per request (docs/benchmarks.md) to argue the
// 3% budget.
func BenchmarkObserveRequest(b *testing.B) {
	m, _ := New(Options{NoRuntimeMetrics: true})
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			m.ObserveRequest(0, 9, 3*time.Millisecond, false)
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
