package partition

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/sluice-io/sluice/internal/batch"
	"github.com/sluice-io/sluice/internal/segment"
	"github.com/sluice-io/sluice/internal/vfs"
	"github.com/sluice-io/sluice/internal/vfs/errorfs"
)

// TestCompactCrash crashes a compaction at every k-th mutating filesystem
// operation (create, write, sync, rename, remove, directory sync), and in a
// second run fails that operation instead. Recovery from the crash image
// must find every key's last value, each surviving offset unchanged and
// offsets increasing, with nothing of the compaction's temporary files
// left; then a compaction runs to completion on the recovered partition.
func TestCompactCrash(t *testing.T) {
	ops := 0
	for _, fail := range []bool{false, true} {
		for k := 0; k == 0 || k < ops; k += 1 + k/12 {
			t.Run(fmt.Sprintf("fail=%v/k=%d", fail, k), func(t *testing.T) {
				n := crashCompactionAt(t, k, fail)
				if k == 0 && !fail {
					ops = n
					t.Logf("a compaction takes %d filesystem operations", n)
				}
			})
		}
	}
}

func isMutation(op errorfs.Op) bool {
	switch op {
	case errorfs.OpCreate, errorfs.OpWrite, errorfs.OpSync, errorfs.OpSyncDir, errorfs.OpRename, errorfs.OpRemove, errorfs.OpTruncate:
		return true
	}
	return false
}

// crashCompactionAt runs the scenario with the crash (or failure) at the
// k-th operation and returns how many operations the compaction made.
func crashCompactionAt(t *testing.T, k int, fail bool) int {
	mem := vfs.NewMem()
	var armed bool
	var count int
	var image *vfs.MemFS
	crashRand := rand.New(rand.NewPCG(uint64(k), 11))
	inj := errorfs.InjectorFunc(func(op errorfs.Op, path string, n int) error {
		if !armed || !isMutation(op) {
			return nil
		}
		count++
		if count-1 != k {
			return nil
		}
		image = mem.CrashClone(vfs.CrashOptions{Rand: crashRand, UnsyncedDataPercent: 50, TornWrites: true})
		if fail {
			return errorfs.ErrInjected
		}
		return nil
	})
	cfg := compactConfig()
	cfg.DeleteRetention = 20 * time.Millisecond
	h := &harness{t: t, fs: errorfs.Wrap(mem, inj), cfg: cfg, now: time.UnixMilli(1_700_000_000_000)}
	h.env = testEnv(t, h.fs)
	if err := h.fs.MkdirAll("p-0"); err != nil {
		t.Fatal(err)
	}
	p, err := Create(h.opts())
	if err != nil {
		t.Fatal(err)
	}
	h.p = p
	r := seededRand(uint64(42))
	written := map[int64]rec{}
	latest := map[string]rec{}
	var fst FlushState
	// Two rounds, so that the crashed pass merges segments the first
	// pass made small.
	for round := 0; round < 2; round++ {
		for i := 0; i < 80; i++ {
			h.now = h.now.Add(time.Millisecond)
			keys := []string{fmt.Sprint("k", r.IntN(15)), fmt.Sprint("k", r.IntN(15))}
			for _, x := range h.put(r, codecs[i%len(codecs)], keys, func() bool { return r.IntN(6) == 0 }) {
				written[x.off] = x
				latest[x.key] = x
			}
		}
		if fst, err = h.p.Flush(); err != nil {
			t.Fatal(err)
		}
		if round == 0 {
			if _, err := h.p.Compact(context.Background(), h.now, CompactOptions{DurableBelow: fst.SegmentBase}); err != nil {
				t.Fatal(err)
			}
		}
	}
	armed = true
	st, cerr := h.p.Compact(context.Background(), h.now, CompactOptions{DurableBelow: fst.SegmentBase})
	armed = false
	if k == 0 && !fail && st.SegmentsAfter >= st.SegmentsBefore {
		t.Fatalf("the pass merged no segments: %+v", st)
	}
	ops := count
	if !fail && cerr != nil {
		t.Fatalf("compaction without faults: %v", cerr)
	}
	if fail && cerr == nil && k < ops {
		t.Fatalf("the failed operation %d went unnoticed", k)
	}
	if fail && cerr != nil && h.p.Err() == nil {
		// Not latched: the partition must still be whole and
		// appendable.
		checkCompacted(t, h.readRecords(), written, latest, 0)
		h.put(r, batch.CodecNone, []string{"after"}, func() bool { return false })
	}
	h.p.Close()
	if image == nil {
		return ops // k past the end
	}

	// Recover from the crash image.
	horizon := h.now.UnixMilli() - cfg.DeleteRetention.Milliseconds()
	h2 := &harness{t: t, fs: image, cfg: cfg, now: h.now}
	h2.env = testEnv(t, image)
	p2, _, err := Open(h2.opts(), &fst)
	if err != nil {
		t.Fatalf("recover: %v", err)
	}
	h2.p = p2
	names, _ := image.ReadDir("p-0")
	for _, n := range names {
		if _, _, _, ok := parseTemp(n); ok {
			t.Fatalf("recovery left %s", n)
		}
	}
	if _, end := h2.p.Offsets(); end != fst.Next {
		t.Fatalf("recovered end %d, flushed %d", end, fst.Next)
	}
	checkSegments(t, h2.p)
	checkCompacted(t, h2.readRecords(), written, latest, horizon)
	if _, err := h2.p.Compact(context.Background(), h2.now, CompactOptions{DurableBelow: fst.SegmentBase}); err != nil {
		t.Fatalf("compaction after recovery: %v", err)
	}
	checkSegments(t, h2.p)
	got := h2.readRecords()
	checkCompacted(t, got, written, latest, horizon)
	// Now complete: every key once, expired tombstones gone.
	seen := map[string]bool{}
	for _, g := range got {
		if g.off < fst.SegmentBase && seen[g.key] {
			t.Fatalf("key %s twice in the compacted log", g.key)
		}
		seen[g.key] = true
	}
	h2.p.Close()
	if errors.Is(cerr, ErrClosed) {
		t.Fatal(cerr)
	}
	return ops
}

// checkSegments checks each segment's files against its place in the
// list: its batches start at its base, claim contiguous offsets and end
// where the next segment begins, and its offset index finds each batch.
func checkSegments(t testing.TB, p *Partition) {
	t.Helper()
	p.mu.RLock()
	segs := append([]*segment.Segment(nil), p.mu.segs...)
	p.mu.RUnlock()
	for i, s := range segs {
		next := s.Base()
		var pos int64
		err := s.Batches(p.env, func(b []byte, h batch.Header) error {
			if h.BaseOffset != next {
				return fmt.Errorf("batch at %d, want %d", h.BaseOffset, next)
			}
			at, err := s.PositionOf(p.env, h.BaseOffset)
			if err != nil || at != pos {
				return fmt.Errorf("index finds batch %d at byte %d (%v), it is at %d", h.BaseOffset, at, err, pos)
			}
			next, pos = h.LastOffset()+1, pos+int64(len(b))
			return nil
		})
		if err != nil {
			t.Fatalf("segment %d: %v", s.Base(), err)
		}
		if i+1 < len(segs) && next != segs[i+1].Base() {
			t.Fatalf("segment %d ends at %d, the next starts at %d", s.Base(), next, segs[i+1].Base())
		}
	}
}
