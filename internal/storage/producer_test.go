package storage

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/sluice-io/sluice/internal/batch"
	"github.com/sluice-io/sluice/internal/partition"
	"github.com/sluice-io/sluice/internal/producer"
	"github.com/sluice-io/sluice/internal/vfs"
	"github.com/sluice-io/sluice/internal/vfs/errorfs"
)

// prodAck is the last batch a producer had acknowledged in a partition.
type prodAck struct {
	pid  int64
	part string
	base int64
	b    []byte
}

// prodLog records, per producer and partition, the last acknowledged data
// batch.
type prodLog struct {
	mu   sync.Mutex
	last map[[2]string]prodAck
}

func (l *prodLog) ack(a prodAck) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.last[[2]string{fmt.Sprint(a.pid), a.part}] = a
}

func (l *prodLog) snapshot() []prodAck {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]prodAck, 0, len(l.last))
	for _, a := range l.last {
		out = append(out, a)
	}
	return out
}

// prodBatch builds a batch stamped at about now plus ts milliseconds: a
// producer whose last batch is older than producer.id.expiration.ms is
// forgotten.
func prodBatch(t testing.TB, r *rand.Rand, ts int64, opts batch.BuildOptions) []byte {
	ts += time.Now().UnixMilli()
	n := 1 + r.IntN(4)
	recs := make([]batch.Record, n)
	for i := range recs {
		recs[i] = batch.Record{Key: []byte(fmt.Sprint(i)), Value: make([]byte, 20+r.IntN(300))}
	}
	b, err := batch.Build(batch.CodecNone, ts, recs, opts)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// producerWorkload runs, alongside workload's plain appends, two
// idempotent producers and one transactional one (transactions over one
// to three partitions, each ended by COMMIT or ABORT markers), each
// producer sending one batch at a time. pidBase keeps producer ids apart
// across rounds.
func producerWorkload(t *testing.T, e *Engine, parts []*partition.Partition, r *rand.Rand, n int, log *ackLog, plog *prodLog, pidBase int64, onAck func(int)) {
	var wg sync.WaitGroup
	var mu sync.Mutex
	acks := 0
	acked := func() {
		mu.Lock()
		acks++
		if onAck != nil {
			onAck(acks)
		}
		mu.Unlock()
	}
	// send appends b to p and waits; false when the engine failed.
	send := func(p *partition.Partition, b []byte, data bool, pid int64) bool {
		name := p.ID().String()
		done := make(chan error, 1)
		_, err := e.Append(context.Background(), p, b, func(base int64, err error) {
			cp := append([]byte(nil), b...)
			log.mu.Lock()
			log.put(log.attempts, name, base, cp)
			if err == nil {
				log.put(log.acked, name, base, cp)
			}
			log.mu.Unlock()
			if err == nil && data {
				plog.ack(prodAck{pid: pid, part: name, base: base, b: cp})
			}
			if err == nil {
				acked()
			}
			done <- err
		})
		if err != nil {
			if errors.Is(err, producer.ErrDuplicate) {
				t.Errorf("%s: producer %d: unexpected duplicate: %v", name, pid, err)
			}
			return false
		}
		return <-done == nil
	}
	seeds := []uint64{r.Uint64(), r.Uint64(), r.Uint64(), r.Uint64()}
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func(w int, seed uint64) {
			defer wg.Done()
			r := rand.New(rand.NewPCG(seed, 11))
			pid := pidBase + int64(w)
			seq := map[*partition.Partition]int32{}
			for i := 0; i < n/4; i++ {
				switch w {
				case 0: // plain
					if !send(parts[r.IntN(len(parts))], mkBatch(t, r, int64(i)), false, -1) {
						return
					}
				case 1, 2: // idempotent
					p := parts[r.IntN(len(parts))]
					b := prodBatch(t, r, int64(i), batch.BuildOptions{Idempotent: true, ProducerID: pid, BaseSequence: seq[p]})
					if !send(p, b, true, pid) {
						return
					}
					h, _ := batch.ParseHeader(b)
					seq[p] += h.LastOffsetDelta + 1
				case 3: // transactional
					touched := map[*partition.Partition]bool{}
					for k := 0; k < 1+r.IntN(4); k++ {
						p := parts[r.IntN(len(parts))]
						b := prodBatch(t, r, int64(i), batch.BuildOptions{Transactional: true, ProducerID: pid, BaseSequence: seq[p]})
						if !send(p, b, true, pid) {
							return
						}
						h, _ := batch.ParseHeader(b)
						seq[p] += h.LastOffsetDelta + 1
						touched[p] = true
					}
					kind := producer.Commit
					if r.IntN(3) == 0 {
						kind = producer.Abort
					}
					for _, p := range parts {
						if !touched[p] {
							continue
						}
						m, err := batch.Build(batch.CodecNone, time.Now().UnixMilli(), []batch.Record{producer.MarkerRecord(kind, 0)},
							batch.BuildOptions{Control: true, Transactional: true, ProducerID: pid})
						if err != nil {
							t.Error(err)
							return
						}
						if !send(p, m, false, pid) {
							return
						}
					}
				}
			}
		}(w, seeds[w])
	}
	wg.Wait()
}

// checkProducers compares each partition's producer state, last stable
// offset and aborted transactions with what a scan of its recovered log
// builds, and checks that a retry of every acknowledged batch is still
// a duplicate of it.
func checkProducers(t *testing.T, e *Engine, acks []prodAck) {
	t.Helper()
	byName := map[string]*partition.Partition{}
	for _, p := range e.Partitions() {
		byName[p.ID().String()] = p
		got, start, end := readLog(t, p)
		bases := make([]int64, 0, len(got))
		for base := range got {
			bases = append(bases, base)
		}
		slices.Sort(bases)
		ref := producer.New(producer.Options{})
		var aborted []partition.AbortedTxn
		for _, base := range bases {
			b := got[base]
			h, _ := batch.ParseHeader(b)
			pb, err := producer.FromBatch(b, h)
			if err != nil {
				t.Fatal(err)
			}
			if a := ref.Update(pb); a != nil {
				aborted = append(aborted, *a)
			}
		}
		name := p.ID().String()
		if st := p.ProducerState(); !st.Equal(ref) {
			t.Fatalf("%s: producer state differs from a scan of the log:\n%+v\n%+v", name, p.Producers(), ref.Producers())
		}
		lso := end
		if f, ok := ref.FirstUnstableOffset(); ok {
			lso = max(start, min(f, end))
		}
		if got := p.LastStableOffset(); got != lso {
			t.Fatalf("%s: LSO %d, a scan says %d", name, got, lso)
		}
		ab, err := p.AbortedTransactions(start, end)
		if err != nil {
			t.Fatal(err)
		}
		if len(ab) != len(aborted) || (len(ab) > 0 && !slices.Equal(ab, aborted)) {
			t.Fatalf("%s: aborted %+v, a scan says %+v", name, ab, aborted)
		}
	}
	if testing.Verbose() {
		n := 0
		for _, p := range e.Partitions() {
			_, end := p.Offsets()
			ab, _ := p.AbortedTransactions(0, end)
			n += len(ab)
		}
		t.Logf("%d aborted transactions, %d acknowledged producer batches retried", n, len(acks))
	}
	for _, a := range acks {
		p := byName[a.part]
		retry := append([]byte(nil), a.b...)
		_, err := e.Append(context.Background(), p, retry, nil)
		var de *producer.DuplicateError
		if !errors.As(err, &de) || de.BaseOffset != a.base {
			t.Fatalf("%s: retry of producer %d's acknowledged batch at %d: %v", a.part, a.pid, a.base, err)
		}
	}
}

func TestProducerCrashRandomMoment(t *testing.T) {
	seeds := 12
	if testing.Short() {
		seeds = 4
	}
	for seed := 0; seed < seeds; seed++ {
		t.Run(fmt.Sprint("seed=", seed), func(t *testing.T) {
			bulkSync = seed%2 == 1
			defer func() { bulkSync = false }()
			r := rand.New(rand.NewPCG(uint64(seed), 77))
			mem := vfs.NewMem()
			e, parts := openWithPartitions(t, mem, "tx", topicID(7), 3)
			log, plog := newAckLog(), &prodLog{last: map[[2]string]prodAck{}}
			crashAt := 40 + r.IntN(200)
			var image *vfs.MemFS
			var acked map[string]map[int64][]byte
			var packs []prodAck
			crashRand := rand.New(rand.NewPCG(uint64(seed), 5))
			producerWorkload(t, e, parts, r, 400, log, plog, 1000, func(n int) {
				if n == crashAt/2 {
					go e.Checkpoint()
				}
				if n == crashAt {
					// Acks are counted after they are recorded, so
					// this snapshot holds every ack before the image.
					image = mem.CrashClone(vfs.CrashOptions{Rand: crashRand, UnsyncedDataPercent: 50, TornWrites: true})
					log.mu.Lock()
					acked = log.snapshot()
					log.mu.Unlock()
					packs = plog.snapshot()
				}
			})
			if image == nil {
				t.Fatal("workload ended before the crash point")
			}
			e.Close()
			log.mu.Lock()
			attempts := log.attempts
			log.mu.Unlock()
			e2 := checkRecovered(t, image, acked, attempts)
			defer e2.Close()
			checkProducers(t, e2, packs)
		})
	}
}

func TestProducerCrashAtKthFault(t *testing.T) {
	for _, op := range []errorfs.Op{errorfs.OpWrite, errorfs.OpSync} {
		for _, k := range []int64{7, 31, 64, 97, 130, 170} {
			t.Run(fmt.Sprintf("%v-%d", op, k), func(t *testing.T) {
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
						return errorfs.ErrInjected
					}
					return nil
				})
				e, _, err := Open(testOptions(errorfs.Wrap(mem, inj)))
				if err != nil {
					return
				}
				var parts []*partition.Partition
				for i := 0; i < 2; i++ {
					p, err := e.CreatePartition(partition.ID{Topic: "tx", TopicID: topicID(8), Partition: int32(i)}, e.opts.Partition)
					if err != nil {
						e.Close()
						return
					}
					parts = append(parts, p)
				}
				log, plog := newAckLog(), &prodLog{last: map[[2]string]prodAck{}}
				producerWorkload(t, e, parts, rand.New(rand.NewPCG(uint64(k), 9)), 200, log, plog, 2000, nil)
				e.Checkpoint()
				log.mu.Lock()
				acked, attempts := log.snapshot(), log.attempts
				log.mu.Unlock()
				packs := plog.snapshot()
				image := mem.CrashClone(vfs.CrashOptions{Rand: rand.New(rand.NewPCG(uint64(k), 1)), UnsyncedDataPercent: 50, TornWrites: true})
				e.Close()
				e2 := checkRecovered(t, image, acked, attempts)
				defer e2.Close()
				checkProducers(t, e2, packs)
			})
		}
	}
}

// TestProducerSnapshotBoundsRecovery: after a checkpoint, recovery loads
// the partition's producer snapshot and scans only the batches after it.
func TestProducerSnapshotBoundsRecovery(t *testing.T) {
	mem := vfs.NewMem()
	opts := testOptions(mem)
	opts.CheckpointBytes = 1 << 30 // checkpoints by hand only
	e, _, err := Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	p, err := e.CreatePartition(partition.ID{Topic: "snap", TopicID: topicID(9), Partition: 0}, e.opts.Partition)
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(3, 3))
	seq := int32(0)
	appendN := func(n int) {
		for i := 0; i < n; i++ {
			b := prodBatch(t, r, int64(i), batch.BuildOptions{Idempotent: true, ProducerID: 42, BaseSequence: seq})
			h, _ := batch.ParseHeader(b)
			if _, err := e.AppendSync(context.Background(), p, b); err != nil {
				t.Fatal(err)
			}
			seq += h.LastOffsetDelta + 1
		}
	}
	appendN(300)
	if err := e.Checkpoint(); err != nil {
		t.Fatal(err)
	}
	appendN(7)
	// A crash keeping everything written: the 7 batches are in the
	// segment (unflushed) and in the WAL.
	image := mem.CrashClone(vfs.CrashOptions{Rand: rand.New(rand.NewPCG(1, 1)), UnsyncedDataPercent: 100})
	e.Close()
	e2, rep, err := Open(testOptions(image))
	if err != nil {
		t.Fatal(err)
	}
	defer e2.Close()
	if rep.ProducerFullScans != 0 || rep.ProducerScannedBatches > 7 {
		t.Fatalf("recovery scanned %d batches (%d full scans); the snapshot covers all but 7", rep.ProducerScannedBatches, rep.ProducerFullScans)
	}
	p2 := e2.Partition(topicID(9), 0)
	ps := p2.Producers()
	if len(ps) != 1 || ps[0].LastSequence != seq-1 {
		t.Fatalf("producers after recovery %+v, last sequence %d", ps, seq-1)
	}
	checkProducers(t, e2, nil)
}
