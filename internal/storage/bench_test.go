package storage

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/sluice-io/sluice/internal/batch"
	"github.com/sluice-io/sluice/internal/partition"
	"github.com/sluice-io/sluice/internal/vfs"
	"github.com/sluice-io/sluice/internal/wal"
)

// BenchmarkAppend appends batches of 16 and of 1024 records through the
// whole engine (validation, offset assignment, WAL, fsync, segment). The
// allocations per op must not grow with the records in a batch: the append
// path never touches records one by one.
func BenchmarkAppend(b *testing.B) {
	for _, n := range []int{16, 1024} {
		b.Run(fmt.Sprintf("records=%d", n), func(b *testing.B) {
			cfg := partition.DefaultConfig()
			cfg.MaxMessageBytes = 4 << 20
			e, _, err := Open(Options{Dir: b.TempDir(), FS: vfs.Default, Partition: cfg,
				WAL: wal.Options{MaxRecordBytes: 8 << 20}, CheckpointInterval: time.Hour})
			if err != nil {
				b.Fatal(err)
			}
			defer e.Close()
			p, err := e.CreatePartition(partition.ID{Topic: "b", TopicID: topicID(3)}, cfg)
			if err != nil {
				b.Fatal(err)
			}
			recs := make([]batch.Record, n)
			for i := range recs {
				recs[i] = batch.Record{OffsetDelta: int32(i), Value: make([]byte, 100)}
			}
			bb, err := batch.Build(batch.CodecNone, 1, recs, batch.BuildOptions{})
			if err != nil {
				b.Fatal(err)
			}
			ctx := context.Background()
			done := make(chan error, 1)
			cb := func(_ int64, err error) { done <- err }
			b.SetBytes(int64(len(bb)))
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := e.Append(ctx, p, bb, cb); err != nil {
					b.Fatal(err)
				}
				if err := <-done; err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestAppendAllocsIndependentOfRecords is the test form of the benchmark's
// claim, on the in-memory FS so it is quick and deterministic.
func TestAppendAllocsIndependentOfRecords(t *testing.T) {
	allocs := map[int]float64{}
	for _, n := range []int{16, 1024} {
		cfg := partition.DefaultConfig()
		cfg.MaxMessageBytes = 4 << 20
		e, _, err := Open(Options{Dir: "d", FS: vfs.NewMem(), Partition: cfg,
			WAL: wal.Options{MaxRecordBytes: 8 << 20}, CheckpointInterval: time.Hour, CheckpointBytes: 1 << 40})
		if err != nil {
			t.Fatal(err)
		}
		p, err := e.CreatePartition(partition.ID{Topic: "b", TopicID: topicID(3)}, cfg)
		if err != nil {
			t.Fatal(err)
		}
		recs := make([]batch.Record, n)
		for i := range recs {
			recs[i] = batch.Record{OffsetDelta: int32(i), Value: make([]byte, 10)}
		}
		bb, _ := batch.Build(batch.CodecNone, 1, recs, batch.BuildOptions{})
		done := make(chan error, 1)
		cb := func(_ int64, err error) { done <- err }
		allocs[n] = testing.AllocsPerRun(200, func() {
			if _, err := e.Append(context.Background(), p, bb, cb); err != nil {
				t.Fatal(err)
			}
			<-done
		})
		e.Close()
	}
	if allocs[1024] > allocs[16]+1 {
		t.Fatalf("allocations grow with records per batch: %v", allocs)
	}
	t.Logf("allocations per append: %v", allocs)
}
