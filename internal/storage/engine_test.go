package storage

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sluice-io/sluice/internal/batch"
	"github.com/sluice-io/sluice/internal/partition"
	"github.com/sluice-io/sluice/internal/vfs"
	"github.com/sluice-io/sluice/internal/vfs/errorfs"
	"github.com/sluice-io/sluice/internal/wal"
)

// bulkSync makes every checkpoint use one syncfs instead of per-file
// fsyncs, so the crash tests cover both paths.
var bulkSync = false

func testOptions(fsys vfs.FS) Options {
	cfg := partition.DefaultConfig()
	cfg.SegmentBytes = 8 << 10
	cfg.IndexIntervalBytes = 1024
	return Options{
		Dir: "data", FS: fsys,
		WAL:                 wal.Options{FileBytes: 64 << 10, MaxPendingBytes: 1 << 20},
		CheckpointBytes:     48 << 10,
		CheckpointInterval:  time.Hour, // tests drive checkpoints by size and by hand
		Partition:           cfg,
		FlushParallelism:    2,
		OpenParallelism:     2,
		SyncFSMinPartitions: map[bool]int{true: 1, false: -1}[bulkSync],
	}
}

func topicID(n byte) [16]byte { return [16]byte{0: 0xAB, 15: n} }

// openWithPartitions opens an engine on fsys with testOptions and creates
// n partitions of topic.
func openWithPartitions(t testing.TB, fsys vfs.FS, topic string, id [16]byte, n int) (*Engine, []*partition.Partition) {
	t.Helper()
	e, _, err := Open(testOptions(fsys))
	if err != nil {
		t.Fatal(err)
	}
	parts := make([]*partition.Partition, n)
	for i := range parts {
		if parts[i], err = e.CreatePartition(partition.ID{Topic: topic, TopicID: id, Partition: int32(i)}, e.opts.Partition); err != nil {
			t.Fatal(err)
		}
	}
	return e, parts
}

func mkBatch(t testing.TB, r *rand.Rand, ts int64) []byte {
	n := 1 + r.IntN(5)
	recs := make([]batch.Record, n)
	for i := range recs {
		v := make([]byte, 20+r.IntN(400))
		for j := range v {
			v[j] = byte(r.Uint32())
		}
		recs[i] = batch.Record{OffsetDelta: int32(i), TimestampDelta: int64(i), Key: []byte(fmt.Sprint(i)), Value: v}
	}
	b, err := batch.Build(batch.CodecNone, ts, recs, batch.BuildOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// readLog returns every batch of p from its log start, checking that each
// read returns whole, valid batches that continue the offsets.
func readLog(t testing.TB, p *partition.Partition) (map[int64][]byte, int64, int64) {
	t.Helper()
	start, end := p.Offsets()
	out := map[int64][]byte{}
	next := int64(-1)
	for off := start; off < end; {
		r, err := p.Read(off, 1+rand.Int64N(8<<10))
		if err != nil {
			t.Fatalf("%s: read %d: %v", p.ID(), off, err)
		}
		if r.Range.Handle == nil {
			t.Fatalf("%s: nothing at %d below end %d", p.ID(), off, end)
		}
		buf := make([]byte, r.Range.Len)
		if _, err := r.Range.Handle.File().ReadAt(buf, r.Range.Pos); err != nil && err != io.EOF {
			t.Fatal(err)
		}
		r.Release()
		it := batch.NewIter(buf)
		for it.Next() {
			h := it.Header()
			if _, err := batch.Verify(it.Batch()); err != nil {
				t.Fatalf("%s: torn or corrupt batch at %d: %v", p.ID(), h.BaseOffset, err)
			}
			if next >= 0 && h.BaseOffset != next {
				t.Fatalf("%s: offsets not contiguous: batch at %d after %d", p.ID(), h.BaseOffset, next)
			}
			next = h.LastOffset() + 1
			out[h.BaseOffset] = append([]byte(nil), it.Batch()...)
		}
		if it.Err() != nil {
			t.Fatalf("%s: %v", p.ID(), it.Err())
		}
		off = r.Range.Last + 1
	}
	if next >= 0 && next != end {
		t.Fatalf("%s: batches end at %d, log says %d", p.ID(), next, end)
	}
	return out, start, end
}

func TestAppendReadRestart(t *testing.T) {
	mem := vfs.NewMem()
	e, _, err := Open(testOptions(mem))
	if err != nil {
		t.Fatal(err)
	}
	id := partition.ID{Topic: "orders", TopicID: topicID(1), Partition: 0}
	p, err := e.CreatePartition(id, e.opts.Partition)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.CreatePartition(id, e.opts.Partition); !errors.Is(err, ErrExists) {
		t.Fatalf("second create: %v", err)
	}
	r := rand.New(rand.NewPCG(1, 2))
	want := map[int64][]byte{}
	for i := 0; i < 300; i++ {
		b := mkBatch(t, r, 1000+int64(i))
		base, err := e.AppendSync(context.Background(), p, b)
		if err != nil {
			t.Fatal(err)
		}
		want[base] = b
	}
	if st := e.Stats(); st.Checkpoints == 0 {
		// Give the background checkpoint a moment; it was kicked.
		e.Checkpoint()
	}
	start, err := e.DeleteRecords(context.Background(), p, 10)
	if err != nil || start != 10 {
		t.Fatalf("delete records: %d %v", start, err)
	}
	got, _, _ := readLog(t, p)
	for base, b := range want {
		if base+int64(1) <= 10 {
			continue
		}
		if g, ok := got[base]; ok && !bytes.Equal(g, b) {
			t.Fatalf("batch %d differs", base)
		}
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	e2, rep, err := Open(testOptions(mem))
	if err != nil {
		t.Fatal(err)
	}
	defer e2.Close()
	if rep.ReplayedRecords != 0 || rep.TruncatedBytes != 0 {
		t.Fatalf("clean restart replayed %d, truncated %d", rep.ReplayedRecords, rep.TruncatedBytes)
	}
	p2 := e2.Partition(id.TopicID, 0)
	if p2 == nil {
		t.Fatal("partition gone after restart")
	}
	if s, _ := p2.Offsets(); s != 10 {
		t.Fatalf("log start after restart %d", s)
	}
	got2, _, _ := readLog(t, p2)
	for base, b := range got {
		if !bytes.Equal(got2[base], b) {
			t.Fatalf("batch %d differs after restart", base)
		}
	}
	if err := e2.DeletePartition(id.TopicID, 0); err != nil {
		t.Fatal(err)
	}
	if names, _ := mem.ReadDir("data"); len(names) != 2 { // wal, checkpoint
		t.Fatalf("after delete: %v", names)
	}
}

// crashRun appends from several goroutines to several partitions, takes a
// crash image at a random moment, and returns it with the batches that were
// acknowledged before it and every batch that was attempted.
type ackLog struct {
	mu       sync.Mutex
	acked    map[string]map[int64][]byte // partition -> base -> bytes
	attempts map[string]map[int64][]byte
}

func newAckLog() *ackLog {
	return &ackLog{acked: map[string]map[int64][]byte{}, attempts: map[string]map[int64][]byte{}}
}

func (a *ackLog) put(m map[string]map[int64][]byte, p string, base int64, b []byte) {
	if m[p] == nil {
		m[p] = map[int64][]byte{}
	}
	m[p][base] = b
}

func (a *ackLog) snapshot() map[string]map[int64][]byte {
	out := map[string]map[int64][]byte{}
	for p, m := range a.acked {
		out[p] = map[int64][]byte{}
		for k, v := range m {
			out[p][k] = v
		}
	}
	return out
}

func workload(t *testing.T, e *Engine, parts []*partition.Partition, r *rand.Rand, n int, log *ackLog, onAck func(int)) {
	var wg sync.WaitGroup
	var acks int
	seeds := make([]uint64, 4)
	for i := range seeds {
		seeds[i] = r.Uint64()
	}
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func(seed uint64) {
			defer wg.Done()
			r := rand.New(rand.NewPCG(seed, 7))
			for i := 0; i < n/4; i++ {
				p := parts[r.IntN(len(parts))]
				b := mkBatch(t, r, int64(i))
				name := p.ID().String()
				done := make(chan struct{})
				_, err := e.Append(context.Background(), p, b, func(base int64, err error) {
					cp := append([]byte(nil), b...)
					log.mu.Lock()
					log.put(log.attempts, name, base, cp)
					if err == nil {
						log.put(log.acked, name, base, cp)
						acks++
						if onAck != nil {
							onAck(acks)
						}
					}
					log.mu.Unlock()
					close(done)
				})
				if err != nil {
					return // the engine failed or closed
				}
				<-done
			}
		}(seeds[w])
	}
	wg.Wait()
}

// checkRecovered opens the engine on a crash image and checks the
// durability contract against what was acknowledged before the crash.
func checkRecovered(t *testing.T, fsys vfs.FS, acked, attempts map[string]map[int64][]byte) *Engine {
	t.Helper()
	e, rep, err := Open(testOptions(fsys))
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	for _, p := range e.Partitions() {
		got, start, _ := readLog(t, p)
		name := p.ID().String()
		for base, b := range acked[name] {
			if base < start {
				continue
			}
			g, ok := got[base]
			if !ok {
				t.Fatalf("%s: acknowledged batch at %d lost (recovery %+v)", name, base, rep)
			}
			if !bytes.Equal(g, b) {
				t.Fatalf("%s: acknowledged batch at %d changed", name, base)
			}
		}
		for base, g := range got {
			if a, ok := attempts[name][base]; !ok || !bytes.Equal(a, g) {
				t.Fatalf("%s: batch at %d was never written by the workload", name, base)
			}
		}
	}
	return e
}

func TestCrashRandomMoment(t *testing.T) {
	seeds := 30
	if testing.Short() {
		seeds = 8
	}
	for seed := 0; seed < seeds; seed++ {
		t.Run(fmt.Sprint("seed=", seed), func(t *testing.T) {
			bulkSync = seed%2 == 1
			defer func() { bulkSync = false }()
			r := rand.New(rand.NewPCG(uint64(seed), 99))
			mem := vfs.NewMem()
			e, parts := openWithPartitions(t, mem, "t", topicID(1), 3)
			for round := 0; round < 2; round++ {
				log := newAckLog()
				crashAt := 20 + r.IntN(150)
				var image *vfs.MemFS
				var acked map[string]map[int64][]byte
				crashRand := rand.New(rand.NewPCG(uint64(seed), uint64(round)))
				workload(t, e, parts, r, 240, log, func(n int) {
					if n == crashAt/2 {
						go e.Checkpoint() // a checkpoint racing the workload
					}
					if n == crashAt {
						image = mem.CrashClone(vfs.CrashOptions{Rand: crashRand, UnsyncedDataPercent: 50, TornWrites: true})
						acked = log.snapshot()
					}
				})
				if image == nil {
					t.Fatal("workload ended before the crash point")
				}
				e.Close()
				log.mu.Lock()
				attempts := log.attempts
				log.mu.Unlock()
				// Batches from earlier rounds are fine too.
				e = checkRecoveredWithHistory(t, image, acked, attempts, mem)
				mem = image
				parts = e.Partitions()
			}
			e.Close()
		})
	}
}

// checkRecoveredWithHistory accepts batches written in earlier rounds (they
// are in the pre-crash FS's partitions at the same offsets).
func checkRecoveredWithHistory(t *testing.T, image vfs.FS, acked, attempts map[string]map[int64][]byte, before *vfs.MemFS) *Engine {
	t.Helper()
	prior := map[string]map[int64][]byte{}
	// Read the batches of earlier rounds from a clean clone of before
	// (everything it held was acknowledged in an earlier round).
	full := before.CrashClone(vfs.CrashOptions{Rand: rand.New(rand.NewPCG(0, 0)), UnsyncedDataPercent: 100})
	e0, _, err := Open(testOptions(full))
	if err == nil {
		for _, p := range e0.Partitions() {
			got, _, _ := readLog(t, p)
			prior[p.ID().String()] = got
		}
		e0.Close()
	}
	merged := map[string]map[int64][]byte{}
	for p, m := range prior {
		merged[p] = map[int64][]byte{}
		for k, v := range m {
			merged[p][k] = v
		}
	}
	for p, m := range attempts {
		if merged[p] == nil {
			merged[p] = map[int64][]byte{}
		}
		for k, v := range m {
			merged[p][k] = v
		}
	}
	return checkRecovered(t, image, acked, merged)
}

// TestCrashAtKthFault fails the k-th write or sync, checks that nothing is
// acknowledged after it, then crashes and recovers.
func TestCrashAtKthFault(t *testing.T) {
	for _, op := range []errorfs.Op{errorfs.OpWrite, errorfs.OpSync, errorfs.OpSyncFS} {
		ks := []int64{5, 22, 39, 56, 73, 90, 107, 124, 141, 158, 175, 192}
		if op == errorfs.OpSyncFS {
			ks = []int64{0, 1, 2, 3, 4, 5} // checkpoints are the only syncfs callers: few happen
		}
		for _, k := range ks {
			t.Run(fmt.Sprintf("%v-%d", op, k), func(t *testing.T) {
				bulkSync = op == errorfs.OpSyncFS || k%2 == 0
				defer func() { bulkSync = false }()
				mem := vfs.NewMem()
				var cnt int64
				var mu sync.Mutex
				inj := errorfs.InjectorFunc(func(o errorfs.Op, path string, sz int) error {
					if o != op {
						return nil
					}
					mu.Lock()
					defer mu.Unlock()
					cnt++
					if cnt-1 == k {
						t.Logf("fault: %v %s (%d bytes)", o, path, sz)
						return errorfs.ErrInjected
					}
					return nil
				})
				fsys := errorfs.Wrap(mem, inj)
				e, _, err := Open(testOptions(fsys))
				if err != nil {
					return // the fault hit recovery itself: fine, nothing acked
				}
				var parts []*partition.Partition
				for i := 0; i < 2; i++ {
					p, err := e.CreatePartition(partition.ID{Topic: "t", TopicID: topicID(2), Partition: int32(i)}, e.opts.Partition)
					if err != nil {
						e.Close()
						return
					}
					parts = append(parts, p)
				}
				log := newAckLog()
				r := rand.New(rand.NewPCG(uint64(k), 5))
				workload(t, e, parts, r, 120, log, nil)
				e.Checkpoint()
				log.mu.Lock()
				acked, attempts := log.snapshot(), log.attempts
				log.mu.Unlock()
				image := mem.CrashClone(vfs.CrashOptions{Rand: rand.New(rand.NewPCG(uint64(k), 1)), UnsyncedDataPercent: 50, TornWrites: true})
				e.Close()
				e2 := checkRecovered(t, image, acked, attempts)
				e2.Close()
			})
		}
	}
}

// TestDiskFull fills the disk mid-workload: appends start failing with an
// error that says so, nothing is acknowledged after the first failure's
// sync, and once there is space again the reopened log holds every
// acknowledged batch, with contiguous offsets.
func TestDiskFull(t *testing.T) {
	for _, limit := range []int64{200 << 10, 350 << 10, 500 << 10} {
		t.Run(fmt.Sprint(limit), func(t *testing.T) {
			mem := vfs.NewMem()
			fsys := errorfs.Wrap(mem, errorfs.NoSpaceAfter(limit))
			e, _, err := Open(testOptions(fsys))
			if err != nil {
				t.Fatal(err)
			}
			var parts []*partition.Partition
			for i := 0; i < 2; i++ {
				p, err := e.CreatePartition(partition.ID{Topic: "full", TopicID: topicID(4), Partition: int32(i)}, e.opts.Partition)
				if err != nil {
					t.Fatal(err)
				}
				parts = append(parts, p)
			}
			log := newAckLog()
			r := rand.New(rand.NewPCG(uint64(limit), 3))
			workload(t, e, parts, r, 2000, log, nil)
			log.mu.Lock()
			acked, attempts := log.snapshot(), log.attempts
			log.mu.Unlock()
			n := 0
			for _, m := range acked {
				n += len(m)
			}
			if n == 0 || n == 2000 {
				t.Fatalf("%d acknowledged: the disk never filled or never took anything", n)
			}
			// The full disk latched the WAL, or a partition whose
			// segment write failed; either way the error says ENOSPC.
			latched := errors.Is(e.wal.Err(), syscall.ENOSPC)
			for _, p := range parts {
				latched = latched || errors.Is(p.Err(), syscall.ENOSPC)
			}
			if !latched {
				t.Fatalf("nothing latched with ENOSPC: wal %v", e.wal.Err())
			}
			e.Close()
			// Space again: the same files, without the limit.
			e2 := checkRecovered(t, mem, acked, attempts)
			e2.Close()
		})
	}
}

// A partition closed while a checkpoint runs (its topic is being deleted)
// is left out of that checkpoint instead of failing it: the WAL keeps
// being trimmed for everyone else.
func TestCheckpointSkipsClosedPartition(t *testing.T) {
	o := testOptions(vfs.NewMem())
	o.CheckpointBytes = 1 << 30
	e, _, err := Open(o)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	r := rand.New(rand.NewPCG(1, 2))
	var ps []*partition.Partition
	for i := range 2 {
		p, err := e.CreatePartition(partition.ID{Topic: "t", TopicID: topicID(1), Partition: int32(i)}, o.Partition)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.AppendSync(t.Context(), p, mkBatch(t, r, 1)); err != nil {
			t.Fatal(err)
		}
		ps = append(ps, p)
	}
	// Closed but still listed: DeletePartition's window.
	ps[1].Close()
	if err := e.Checkpoint(); err != nil {
		t.Fatalf("checkpoint with a closed partition: %v", err)
	}
	cp, ok, err := readCheckpoint(o.FS, o.Dir)
	if err != nil || !ok {
		t.Fatal(ok, err)
	}
	if _, in := cp.parts[partKey{topicID(1), 1}]; in || len(cp.parts) != 1 {
		t.Fatalf("checkpoint lists %v", cp.parts)
	}
}
