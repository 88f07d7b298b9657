package storage

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math/rand/v2"
	"reflect"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/sluice-io/sluice/internal/batch"
	"github.com/sluice-io/sluice/internal/partition"
	"github.com/sluice-io/sluice/internal/vfs"
	"github.com/sluice-io/sluice/internal/vfs/errorfs"
)

func compactOptions(fsys vfs.FS) Options {
	o := testOptions(fsys)
	o.CleanerBackoff = -1 // tests run compactions by hand unless they say otherwise
	return o
}

func compactedConfig(o Options) partition.Config {
	cfg := o.Partition
	cfg.Compact, cfg.NoDelete = true, true
	cfg.DeleteRetention = time.Hour
	cfg.MinCleanableDirtyRatio = 0.3
	return cfg
}

// kv is one acknowledged record.
type kv struct {
	off       int64
	key       string
	value     []byte
	tombstone bool
}

// putKeys appends one batch over keys and returns its records once acked.
func putKeys(t testing.TB, e *Engine, p *partition.Partition, r *rand.Rand, keys []string) []kv {
	t.Helper()
	recs := make([]batch.Record, len(keys))
	for i, k := range keys {
		recs[i] = batch.Record{TimestampDelta: int64(i), Key: []byte(k), Value: []byte(fmt.Sprintf("%s@%d/%s", k, r.Uint64(), bytes.Repeat([]byte{'x'}, r.IntN(200))))}
		if r.IntN(10) == 0 {
			recs[i].Value, recs[i].ValueNull = nil, true
		}
	}
	codecs := []batch.Codec{batch.CodecNone, batch.CodecGzip, batch.CodecSnappy, batch.CodecLZ4, batch.CodecZstd}
	b, err := batch.Build(codecs[r.IntN(len(codecs))], e.opts.Now().UnixMilli(), recs, batch.BuildOptions{})
	if err != nil {
		t.Fatal(err)
	}
	base, err := e.AppendSync(context.Background(), p, b)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]kv, len(recs))
	for i, x := range recs {
		out[i] = kv{off: base + int64(i), key: string(x.Key), value: x.Value, tombstone: x.ValueNull}
	}
	return out
}

// records reads p whole (readLog checks the batches' framing and
// contiguity) and decodes its records in offset order.
func records(t testing.TB, p *partition.Partition) []kv {
	t.Helper()
	batches, start, _ := readLog(t, p)
	bases := make([]int64, 0, len(batches))
	for b := range batches {
		bases = append(bases, b)
	}
	sort.Slice(bases, func(i, j int) bool { return bases[i] < bases[j] })
	var out []kv
	for _, base := range bases {
		err := batch.Records(batches[base], func(r *batch.Record) error {
			if o := base + int64(r.OffsetDelta); o >= start {
				out = append(out, kv{off: o, key: string(r.Key), value: bytes.Clone(r.Value), tombstone: r.ValueNull})
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	for i := 1; i < len(out); i++ {
		if out[i].off <= out[i-1].off {
			t.Fatalf("%s: offset %d after %d", p.ID(), out[i].off, out[i-1].off)
		}
	}
	return out
}

// checkKeys checks that every surviving record is as acknowledged and that
// each key's last record is its last acknowledged one (tombstones are not
// old enough to go in these tests).
func checkKeys(t testing.TB, got []kv, acked map[int64]kv, latest map[string]kv) {
	t.Helper()
	last := map[string]kv{}
	for _, g := range got {
		a, ok := acked[g.off]
		if !ok || a.key != g.key || !bytes.Equal(a.value, g.value) || a.tombstone != g.tombstone {
			t.Fatalf("offset %d: %+v, acknowledged %+v (%v)", g.off, g, a, ok)
		}
		last[g.key] = g
	}
	for k, w := range latest {
		if g, ok := last[k]; !ok || g.off != w.off {
			t.Fatalf("key %s: last record %+v (%v), last acknowledged at %d", k, g, ok, w.off)
		}
	}
}

func TestEngineCompact(t *testing.T) {
	mem := vfs.NewMem()
	o := compactOptions(mem)
	o.CleanerIOBytesPerSecond = 1 << 20
	o.CheckpointBytes = 1 << 30 // checkpoints only by hand
	e, _, err := Open(o)
	if err != nil {
		t.Fatal(err)
	}
	p, err := e.CreatePartition(partition.ID{Topic: "__consumer_offsets", TopicID: topicID(9), Partition: 0}, compactedConfig(o))
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(5, 6))
	acked, latest := map[int64]kv{}, map[string]kv{}
	for i := 0; i < 300; i++ {
		for _, x := range putKeys(t, e, p, r, []string{fmt.Sprint("g", r.IntN(20))}) {
			acked[x.off], latest[x.key] = x, x
		}
	}
	if st, _ := e.Compact(p); st.SegmentsBefore != 0 {
		t.Fatalf("compacted before any checkpoint made the segments durable: %+v", st)
	}
	if err := e.Checkpoint(); err != nil {
		t.Fatal(err)
	}
	sizeBefore := p.Size()
	_, end := p.Offsets()
	began := time.Now()
	st, err := e.Compact(p)
	if err != nil {
		t.Fatal(err)
	}
	if st.RecordsRemoved == 0 || p.Size() >= sizeBefore {
		t.Fatalf("nothing compacted: %+v", st)
	}
	// The throttle holds read+written bytes to the rate.
	if want := time.Duration(float64(st.BytesBefore+st.BytesAfter) / float64(o.CleanerIOBytesPerSecond) * float64(time.Second)); time.Since(began) < want*8/10 {
		t.Fatalf("%d bytes in %v, the throttle wants at least %v", st.BytesBefore+st.BytesAfter, time.Since(began), want)
	}
	if _, e2 := p.Offsets(); e2 != end {
		t.Fatalf("end moved %d -> %d", end, e2)
	}
	checkKeys(t, records(t, p), acked, latest)
	if s := e.Stats(); s.Compactions != 1 || s.CompactedBytes == 0 {
		t.Fatalf("stats %+v", s)
	}
	// Appends go on, and a restart finds the compacted log.
	for _, x := range putKeys(t, e, p, r, []string{"g1", "g2"}) {
		acked[x.off], latest[x.key] = x, x
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	e, _, err = Open(o)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	checkKeys(t, records(t, e.Partition(topicID(9), 0)), acked, latest)
}

// TestBackgroundCleaner: the cleaner goroutine compacts a dirty partition
// on its own and leaves a partition without compact alone.
func TestBackgroundCleaner(t *testing.T) {
	mem := vfs.NewMem()
	o := compactOptions(mem)
	o.CleanerBackoff = 5 * time.Millisecond
	e, _, err := Open(o)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	p, err := e.CreatePartition(partition.ID{Topic: "c", TopicID: topicID(10), Partition: 0}, compactedConfig(o))
	if err != nil {
		t.Fatal(err)
	}
	plain, err := e.CreatePartition(partition.ID{Topic: "d", TopicID: topicID(11), Partition: 0}, o.Partition)
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(8, 9))
	acked, latest := map[int64]kv{}, map[string]kv{}
	for i := 0; i < 200; i++ {
		for _, x := range putKeys(t, e, p, r, []string{fmt.Sprint("k", r.IntN(5))}) {
			acked[x.off], latest[x.key] = x, x
		}
		putKeys(t, e, plain, r, []string{"same"})
	}
	plainSize := plain.Size()
	if err := e.Checkpoint(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for e.Stats().Compactions == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the cleaner never compacted the partition")
		}
		time.Sleep(5 * time.Millisecond)
	}
	checkKeys(t, records(t, p), acked, latest)
	if plain.Size() != plainSize {
		t.Fatal("the cleaner touched a partition without cleanup.policy=compact")
	}
}

// TestCompactCrashEngine crashes the engine at the k-th mutating filesystem
// operation of a compaction (write, sync, rename, remove, directory sync),
// reopens it from the crash image and checks that no key lost its latest
// acknowledged value, offsets increase without duplicates and the batches
// read back whole through the indexes; then compacts the recovered
// partition to completion.
func TestCompactCrashEngine(t *testing.T) {
	ops := 0
	for k := 0; k == 0 || k < ops; k += 1 + k/8 {
		t.Run(fmt.Sprint("k=", k), func(t *testing.T) {
			n := crashEngineCompactionAt(t, k)
			if k == 0 {
				ops = n
				t.Logf("a compaction takes %d filesystem operations", n)
			}
		})
	}
}

func crashEngineCompactionAt(t *testing.T, k int) int {
	mem := vfs.NewMem()
	var mu sync.Mutex
	var armed bool
	var count int
	var image *vfs.MemFS
	inj := errorfs.InjectorFunc(func(op errorfs.Op, path string, n int) error {
		switch op {
		case errorfs.OpCreate, errorfs.OpWrite, errorfs.OpSync, errorfs.OpSyncDir, errorfs.OpRename, errorfs.OpRemove, errorfs.OpTruncate:
		default:
			return nil
		}
		mu.Lock()
		defer mu.Unlock()
		if !armed {
			return nil
		}
		count++
		if count-1 == k {
			image = mem.CrashClone(vfs.CrashOptions{Rand: rand.New(rand.NewPCG(uint64(k), 3)), UnsyncedDataPercent: 50, TornWrites: true})
		}
		return nil
	})
	o := compactOptions(errorfs.Wrap(mem, inj))
	e, _, err := Open(o)
	if err != nil {
		t.Fatal(err)
	}
	id := partition.ID{Topic: "c", TopicID: topicID(12), Partition: 0}
	p, err := e.CreatePartition(id, compactedConfig(o))
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(13, 14))
	acked, latest := map[int64]kv{}, map[string]kv{}
	for round := 0; round < 2; round++ {
		for i := 0; i < 120; i++ {
			for _, x := range putKeys(t, e, p, r, []string{fmt.Sprint("k", r.IntN(12)), fmt.Sprint("k", r.IntN(12))}) {
				acked[x.off], latest[x.key] = x, x
			}
		}
		if err := e.Checkpoint(); err != nil {
			t.Fatal(err)
		}
		if round == 1 {
			mu.Lock()
			armed = true
			mu.Unlock()
		}
		if _, err := e.Compact(p); err != nil {
			t.Fatal(err)
		}
	}
	mu.Lock()
	armed = false
	ops := count
	mu.Unlock()
	// Appends acknowledged after the compaction are in the image only if
	// it was taken after them; the image is taken during the compaction.
	e.Close()
	if image == nil {
		return ops
	}
	e2, _, err := Open(compactOptions(image))
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer e2.Close()
	p2 := e2.Partition(id.TopicID, id.Partition)
	// The engine does not keep topic configs; the broker sets them again.
	if err := p2.SetConfig(compactedConfig(o)); err != nil {
		t.Fatal(err)
	}
	checkKeys(t, records(t, p2), acked, latest)
	if err := e2.Checkpoint(); err != nil {
		t.Fatal(err)
	}
	st2, err := e2.Compact(p2)
	if err != nil {
		t.Fatalf("compaction after recovery: %v", err)
	}
	if st2.SegmentsBefore == 0 {
		t.Fatalf("nothing compacted after recovery: %+v", st2)
	}
	got := records(t, p2)
	checkKeys(t, got, acked, latest)
	segs := p2.Segments()
	seen := map[string]bool{}
	for _, g := range got {
		if g.off < segs[len(segs)-1].Base && seen[g.key] {
			t.Fatalf("key %s twice in the compacted part", g.key)
		}
		seen[g.key] = true
	}
	return ops
}

// TestCompactConcurrent compacts while appends, reads and checkpoints go
// on (run it with -race): every acknowledged key's last value survives.
func TestCompactConcurrent(t *testing.T) {
	mem := vfs.NewMem()
	o := compactOptions(mem)
	e, _, err := Open(o)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	p, err := e.CreatePartition(partition.ID{Topic: "c", TopicID: topicID(15), Partition: 0}, compactedConfig(o))
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	acked, latest := map[int64]kv{}, map[string]kv{}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { // the producer
		defer wg.Done()
		defer close(done)
		r := rand.New(rand.NewPCG(21, 22))
		for i := 0; i < 400; i++ {
			xs := putKeys(t, e, p, r, []string{fmt.Sprint("k", r.IntN(10))})
			mu.Lock()
			for _, x := range xs {
				acked[x.off], latest[x.key] = x, x
			}
			mu.Unlock()
		}
	}()
	go func() { // a consumer reading from the start over and over
		defer wg.Done()
		for {
			select {
			case <-done:
				return
			default:
			}
			start, end := p.Offsets()
			for off := start; off < end; {
				res, err := p.Read(off, 4<<10)
				if err != nil || res.Range.Handle == nil {
					t.Errorf("read %d: %v", off, err)
					return
				}
				buf := make([]byte, res.Range.Len)
				_, _ = res.Range.Handle.File().ReadAt(buf, res.Range.Pos)
				res.Release()
				for it := batch.NewIter(buf); it.Next(); {
					if _, err := batch.Verify(it.Batch()); err != nil {
						t.Errorf("batch at %d: %v", it.Header().BaseOffset, err)
						return
					}
				}
				off = res.Range.Last + 1
			}
		}
	}()
	passes := 0
	for running := true; running; {
		select {
		case <-done:
			running = false
		default:
		}
		if err := e.Checkpoint(); err != nil {
			t.Fatal(err)
		}
		st, err := e.Compact(p)
		if err != nil {
			t.Fatal(err)
		}
		if st.SegmentsBefore > 0 {
			passes++
		}
	}
	wg.Wait()
	if passes == 0 {
		t.Fatal("no compaction ran alongside the workload")
	}
	mu.Lock()
	defer mu.Unlock()
	checkKeys(t, records(t, p), acked, latest)
}

// TestCleanedToSurvivesRestart: where the dirty part of a compacted log
// starts is in the checkpoint, so the first pass after a restart does not
// rewrite what the last one already cleaned.
func TestCleanedToSurvivesRestart(t *testing.T) {
	mem := vfs.NewMem()
	o := compactOptions(mem)
	o.CheckpointBytes = 1 << 30 // checkpoints only by hand
	e, _, err := Open(o)
	if err != nil {
		t.Fatal(err)
	}
	p, err := e.CreatePartition(partition.ID{Topic: "c", TopicID: topicID(7), Partition: 0}, compactedConfig(o))
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(7, 8))
	acked, latest := map[int64]kv{}, map[string]kv{}
	for i := 0; i < 300; i++ {
		for _, x := range putKeys(t, e, p, r, []string{fmt.Sprint("k", r.IntN(20))}) {
			acked[x.off], latest[x.key] = x, x
		}
	}
	if err := e.Checkpoint(); err != nil {
		t.Fatal(err)
	}
	st, err := e.Compact(p)
	if err != nil || st.SegmentsBefore == 0 || st.MapFull {
		t.Fatalf("first pass: %+v, %v", st, err)
	}
	if cs, err := p.CompactionState(time.Now(), e.durableBelow(p)); err != nil || cs.DirtyBytes != 0 {
		t.Fatalf("after a whole pass: %+v, %v", cs, err)
	}
	if err := e.Close(); err != nil { // Close checkpoints
		t.Fatal(err)
	}

	e, _, err = Open(o)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	p = e.Partition(topicID(7), 0)
	if err := p.SetConfig(compactedConfig(o)); err != nil { // topic configs live above the engine
		t.Fatal(err)
	}
	cs, err := p.CompactionState(time.Now(), e.durableBelow(p))
	if err != nil || cs.DirtyBytes != 0 || cs.Cleanable || cs.CleanBytes == 0 {
		t.Fatalf("after restart the cleaned log counts as dirty again: %+v, %v", cs, err)
	}
	if st, err := e.Compact(p); err != nil || st.SegmentsBefore != 0 {
		t.Fatalf("after restart a pass rewrote the clean log: %+v, %v", st, err)
	}
	checkKeys(t, records(t, p), acked, latest)
}

// Older checkpoints still read: version 1 (before cleaned to) as all
// dirty, version 2 (before inline producer state) with none inline.
func TestCheckpointVersions(t *testing.T) {
	var k partKey
	k.topicID, k.partition = topicID(3), 2
	cp := checkpoint{lsn: 77, parts: map[partKey]partition.FlushState{k: {SegmentBase: 10, Position: 20, Next: 30, LogStart: 5, CleanedTo: 25, Producers: []byte("state")}}}
	v3 := encodeCheckpoint(cp)
	got, err := decodeCheckpoint("checkpoint", v3)
	if err != nil || !reflect.DeepEqual(got, cp) {
		t.Fatalf("v3 round trip %+v, %v", got, err)
	}
	// Rebuild the same file in older versions: shorter entries, own CRC.
	for _, tc := range []struct {
		version uint16
		entry   int
		want    partition.FlushState
	}{
		{1, cpEntrySizeV1, partition.FlushState{SegmentBase: 10, Position: 20, Next: 30, LogStart: 5}},
		{2, cpEntrySizeV2, partition.FlushState{SegmentBase: 10, Position: 20, Next: 30, LogStart: 5, CleanedTo: 25}},
	} {
		old := append([]byte(nil), v3[:cpHeaderSize+tc.entry]...)
		binary.BigEndian.PutUint16(old[4:], tc.version)
		old = binary.BigEndian.AppendUint32(old, crc32.Checksum(old, castagnoli))
		got, err := decodeCheckpoint("checkpoint", old)
		if err != nil || got.lsn != 77 || !reflect.DeepEqual(got.parts[k], tc.want) {
			t.Fatalf("v%d decoded %+v, %v", tc.version, got, err)
		}
	}
	// An inline state larger than any flush writes is corruption.
	big := cp
	big.parts = map[partKey]partition.FlushState{k: {Producers: make([]byte, partition.InlineSnapshotBytesMax+1)}}
	if _, err := decodeCheckpoint("checkpoint", encodeCheckpoint(big)); !errors.Is(err, ErrCorruptCheckpoint) {
		t.Fatalf("oversized producer state: %v", err)
	}
}
