package wal

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/sluice-io/sluice/internal/vfs"
)

var benchSizes = []int{16 << 10, 1 << 20}

func sizeName(n int) string {
	if n >= 1<<20 {
		return fmt.Sprintf("%dMiB", n>>20)
	}
	return fmt.Sprintf("%dKiB", n>>10)
}

// BenchmarkAppend measures AppendSync on the real filesystem with 1, 8
// and 64 concurrent appenders: every append waits for its sync, as an
// acks=all produce does. syncs/op shows how far group commit shares the
// fdatasync; compare MB/s with BenchmarkRawWriteSync. Keep runs short on
// a shared machine: -benchtime=200x or so.
func BenchmarkAppend(b *testing.B) {
	for _, size := range benchSizes {
		for _, appenders := range []int{1, 8, 64} {
			b.Run(fmt.Sprintf("size=%s/appenders=%d", sizeName(size), appenders), func(b *testing.B) {
				benchAppend(b, size, appenders)
			})
		}
	}
}

func benchAppend(b *testing.B, size, appenders int) {
	w, err := Open(Options{Dir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	payload := make([]byte, size)
	for i := range payload {
		payload[i] = byte(rand.Uint32())
	}
	// Trim now and then, as the storage engine will, so that a long run
	// recycles files instead of filling the disk.
	trimEvery := int64(max(1, DefaultFileBytes/size))
	var next atomic.Int64
	var wg sync.WaitGroup
	b.SetBytes(int64(size))
	b.ResetTimer()
	for range appenders {
		wg.Go(func() {
			for {
				i := next.Add(1)
				if i > int64(b.N) {
					return
				}
				if _, err := w.AppendSync(context.Background(), payload); err != nil {
					b.Error(err)
					return
				}
				if i%trimEvery == 0 {
					if err := w.Trim(w.DurableEnd()); err != nil {
						b.Error(err)
					}
				}
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	st := w.Stats()
	b.ReportMetric(float64(st.Syncs)/float64(b.N), "syncs/op")
	if st.Syncs > 0 {
		b.ReportMetric(float64(st.SyncTime.Microseconds())/float64(st.Syncs), "µs/sync")
	}
	if err := w.Close(); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkRawWriteSync is the baseline for BenchmarkAppend: sequential
// WriteAt then fdatasync of the same chunk sizes into preallocated files
// of DefaultFileBytes, a new file whenever one is full, as the WAL does.
func BenchmarkRawWriteSync(b *testing.B) {
	for _, size := range benchSizes {
		b.Run("size="+sizeName(size), func(b *testing.B) {
			dir := b.TempDir()
			chunk := make([]byte, size)
			for i := range chunk {
				chunk[i] = byte(rand.Uint32())
			}
			var f vfs.File
			var off int64
			seq := 0
			nextFile := func() {
				if f != nil {
					f.Close()
					if err := vfs.Default.Remove(f.Name()); err != nil {
						b.Fatal(err)
					}
				}
				seq++
				var err error
				if f, err = vfs.Default.Create(filepath.Join(dir, fmt.Sprint(seq))); err != nil {
					b.Fatal(err)
				}
				if err := f.Preallocate(DefaultFileBytes); err != nil {
					b.Fatal(err)
				}
				off = 0
			}
			nextFile()
			b.SetBytes(int64(size))
			b.ResetTimer()
			for range b.N {
				if off+int64(size) > DefaultFileBytes {
					b.StopTimer()
					nextFile()
					b.StartTimer()
				}
				if _, err := f.WriteAt(chunk, off); err != nil {
					b.Fatal(err)
				}
				if err := f.Sync(); err != nil {
					b.Fatal(err)
				}
				off += int64(size)
			}
			b.StopTimer()
			f.Close()
		})
	}
}

// BenchmarkRotationWait appends 1 MiB records from 8 appenders through
// 16 MiB files, with the next file prepared one and two files ahead, and
// reports how long the writer (and so every append) waited at rotations
// for the preparer's zero-filling:
//
//	go test -run '^$' -bench RotationWait -benchtime 512x ./internal/wal
func BenchmarkRotationWait(b *testing.B) {
	for _, ahead := range []int{1, 2} {
		b.Run(fmt.Sprintf("ahead=%d", ahead), func(b *testing.B) {
			w, err := Open(Options{Dir: b.TempDir(), FileBytes: 16 << 20, PrepareAhead: ahead})
			if err != nil {
				b.Fatal(err)
			}
			defer w.Close()
			payload := make([]byte, 1<<20)
			var next atomic.Int64
			var wg sync.WaitGroup
			b.SetBytes(int64(len(payload)))
			b.ResetTimer()
			for range 8 {
				wg.Go(func() {
					for next.Add(1) <= int64(b.N) {
						end, err := w.AppendSync(context.Background(), payload)
						if err != nil {
							b.Error(err)
							return
						}
						if end%(64<<20) < 1<<20 {
							_ = w.Trim(end - 32<<20) // keep the disk use bounded
						}
					}
				})
			}
			wg.Wait()
			b.StopTimer()
			s := w.Stats()
			b.ReportMetric(float64(s.RotationWaits), "waits")
			b.ReportMetric(float64(s.Rotations), "rotations")
			b.ReportMetric(float64(s.RotationWait.Milliseconds()), "wait-ms")
		})
	}
}
