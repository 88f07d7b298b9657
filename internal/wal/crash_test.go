package wal

import (
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"flag"
	"maps"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/sluice-io/sluice/internal/vfs"
	"github.com/sluice-io/sluice/internal/vfs/errorfs"
)

var (
	crashSeeds = flag.Int("wal.crash-seeds", 200, "seeds TestCrash runs")
	crashSeed  = flag.Int64("wal.crash-seed", -1, "run TestCrash for this seed only")
)

// TestCrash appends from several goroutines, crashes at a random moment
// (CrashClone keeps a random part of what was not synced, with holes and
// torn pages), reopens and checks, over several crash-and-reopen rounds:
//   - every record acknowledged before the crash is there, byte for byte,
//     at its LSN;
//   - every record recovered in an earlier round is still there;
//   - nothing else is there but a prefix, in LSN order, of what was
//     appended: no record that was never appended, no gap.
//
// Rerun one seed with -wal.crash-seed=N -v.
func TestCrash(t *testing.T) {
	seeds := make([]uint64, 0, *crashSeeds)
	if *crashSeed >= 0 {
		seeds = append(seeds, uint64(*crashSeed))
	} else {
		for s := range *crashSeeds {
			seeds = append(seeds, uint64(s))
		}
	}
	if testing.Short() {
		seeds = seeds[:min(len(seeds), 20)]
	}
	for _, seed := range seeds {
		if !crashSeedOK(t, seed) {
			t.Fatalf("seed %d failed; rerun with -run TestCrash -wal.crash-seed=%d -v", seed, seed)
		}
	}
}

const crashRounds = 3

// crashRecord is an appended record; its payload starts with its id so
// that a recovered record can be traced back to its Append.
type crashRecord struct {
	lsn     LSN
	payload []byte
}

func crashSeedOK(t *testing.T, seed uint64) bool {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	mem := vfs.NewMem()
	var checkpoint LSN // the highest Trim point so far: replay starts there
	var kept []rec     // records recovered in the previous round, from checkpoint
	for round := range crashRounds {
		cp := &crashPoint{
			mem:  mem,
			rng:  rand.New(rand.NewPCG(rng.Uint64(), 1)),
			opts: vfs.CrashOptions{UnsyncedDataPercent: rng.IntN(101), TornWrites: rng.IntN(2) == 0},
			// Half the time the crash comes from inside the filesystem,
			// just before its k-th mutating operation: typically while a
			// batch is written but not yet synced.
			atOp: int64(rng.IntN(2) * (1 + rng.IntN(300))),
		}
		o := memOpts(errorfs.Wrap(mem, cp))
		o.FileBytes = int64(200 + rng.IntN(800))
		o.RecycleFiles = rng.IntN(3)
		o.MaxPendingBytes = 4096
		o.MaxRecordBytes = 1024
		w, err := Open(o)
		if err != nil {
			t.Errorf("seed %d round %d: Open: %v", seed, round, err)
			return false
		}
		got, err := replayErr(w, checkpoint)
		if err != nil {
			t.Errorf("seed %d round %d: %v", seed, round, err)
			w.Close()
			return false
		}
		if !bytesPrefix(kept, got) {
			t.Errorf("seed %d round %d: records recovered earlier are gone or changed", seed, round)
			w.Close()
			return false
		}
		kept = got
		if round == crashRounds-1 {
			mustClose(t, w)
			return true
		}
		appended, trimmed := crashWorkload(t, w, rng, cp)
		if err := w.Close(); err != nil {
			t.Errorf("seed %d round %d: Close: %v", seed, round, err)
			return false
		}
		cp.crash() // if nothing triggered it yet
		if cp.trimmed {
			checkpoint = max(checkpoint, trimmed)
		}
		kept = slices.DeleteFunc(kept, func(r rec) bool { return r.lsn < checkpoint })
		for len(appended) > 0 && appended[0].lsn < checkpoint {
			appended = appended[1:]
		}

		// What the next round must find after kept: a prefix of appended
		// covering every record acknowledged before the crash.
		mem = cp.clone
		before := dumpDir(mem)
		if w, err = Open(memOpts(mem)); err != nil {
			t.Errorf("seed %d round %d: Open after the crash: %v\nfiles after the crash:\n%s", seed, round, err, before)
			return false
		}
		got, err = replayErr(w, checkpoint)
		mustClose(t, w)
		if err != nil {
			t.Errorf("seed %d round %d: after the crash: %v\nfiles after the crash:\n%s", seed, round, err, before)
			return false
		}
		if !bytesPrefix(kept, got) {
			t.Errorf("seed %d round %d: records recovered earlier are gone or changed", seed, round)
			return false
		}
		tail := got[len(kept):]
		if len(tail) > len(appended) {
			t.Errorf("seed %d round %d: %d records recovered, only %d appended", seed, round, len(tail), len(appended))
			return false
		}
		for i, r := range tail {
			if r.lsn != appended[i].lsn || !bytes.Equal(r.payload, appended[i].payload) {
				t.Errorf("seed %d round %d: recovered record %d (LSN %d) is not the one appended there (LSN %d)",
					seed, round, i, r.lsn, appended[i].lsn)
				return false
			}
		}
		acked := 0
		for _, a := range appended {
			if cp.acked[a.lsn] {
				acked++
			}
		}
		for _, a := range appended[len(tail):] {
			if cp.acked[a.lsn] {
				t.Errorf("seed %d round %d: acknowledged record at LSN %d lost (%d of %d recovered)",
					seed, round, a.lsn, len(tail), len(appended))
				return false
			}
		}
		if testing.Verbose() {
			t.Logf("seed %d round %d: crash at op %d of %d: %d appended, %d acknowledged before the crash, %d recovered",
				seed, round, cp.atOp, cp.ops.Load(), len(appended), acked, len(tail))
		}
	}
	return true
}

// crashPoint takes the crash clone once: from the filesystem just before
// its atOp-th mutating operation (if atOp > 0), from the workload once
// enough records are acknowledged, or at the end.
type crashPoint struct {
	mem  *vfs.MemFS
	rng  *rand.Rand
	opts vfs.CrashOptions
	atOp int64
	ops  atomic.Int64

	mu          sync.Mutex
	ackedNow    map[LSN]bool // maintained by the workload's callbacks
	trimStarted bool

	once  sync.Once
	clone *vfs.MemFS
	acked map[LSN]bool // acknowledged before the clone
	// trimmed: Trim had started before the clone, so the clone may lack
	// the records before the trim point.
	trimmed bool
}

func (c *crashPoint) MaybeError(op errorfs.Op, _ string, _ int) error {
	switch op {
	case errorfs.OpCreate, errorfs.OpWrite, errorfs.OpSync, errorfs.OpSyncDir, errorfs.OpRename, errorfs.OpRemove:
		if c.atOp > 0 && c.ops.Add(1) == c.atOp {
			c.crash()
		}
	}
	return nil
}

func (c *crashPoint) ack(lsn LSN) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ackedNow == nil {
		c.ackedNow = map[LSN]bool{}
	}
	c.ackedNow[lsn] = true
}

func (c *crashPoint) crash() {
	c.once.Do(func() {
		// Everything acknowledged so far was synced before this point.
		c.mu.Lock()
		c.acked = maps.Clone(c.ackedNow)
		c.trimmed = c.trimStarted
		c.mu.Unlock()
		o := c.opts
		o.Rand = c.rng
		c.clone = c.mem.CrashClone(o)
	})
}

// crashWorkload appends from three goroutines, trims once at a random
// acknowledged end, and crashes (unless the filesystem did already) once
// a random number of records is acknowledged. It returns what was
// appended, in LSN order, and the point trimmed to (0 if none).
func crashWorkload(t *testing.T, w *WAL, rng *rand.Rand, cp *crashPoint) ([]crashRecord, LSN) {
	const goroutines, perG = 3, 60
	target := rng.IntN(goroutines * perG)
	trimAt := rng.IntN(goroutines * perG * 2) // beyond the range half the time: no trim

	var mu sync.Mutex
	var ackedEnds []LSN // in LSN order: the completer calls back in order
	reached := make(chan struct{})
	var stop atomic.Bool
	var appended []crashRecord

	var wg sync.WaitGroup
	for g := range goroutines {
		seed := rng.Uint64()
		wg.Go(func() {
			r := rand.New(rand.NewPCG(seed, uint64(g)))
			for i := 0; i < perG && !stop.Load(); i++ {
				p := make([]byte, 8+r.IntN(300))
				binary.LittleEndian.PutUint64(p, uint64(g)<<32|uint64(i))
				for j := 8; j < len(p); j++ {
					p[j] = byte(r.Uint32())
				}
				lsn, err := w.Append(context.Background(), p, func(end LSN, err error) {
					if err != nil {
						t.Errorf("done: %v", err)
						return
					}
					cp.ack(end - LSN(len(p)+frameHeaderBytes))
					mu.Lock()
					defer mu.Unlock()
					ackedEnds = append(ackedEnds, end)
					if len(ackedEnds) == target+1 {
						close(reached)
					}
				})
				if err != nil {
					t.Errorf("Append: %v", err)
					return
				}
				mu.Lock()
				appended = append(appended, crashRecord{lsn, p})
				mu.Unlock()
			}
		})
	}
	finished := make(chan struct{})
	go func() { wg.Wait(); close(finished) }()

	select {
	case <-reached:
	case <-finished:
	}
	var trimmed LSN
	mu.Lock()
	if trimAt < len(ackedEnds) {
		trimmed = ackedEnds[trimAt]
	}
	mu.Unlock()
	if trimmed > 0 {
		cp.mu.Lock()
		cp.trimStarted = true
		cp.mu.Unlock()
		if err := w.Trim(trimmed); err != nil {
			t.Errorf("Trim: %v", err)
		}
	}
	if cp.atOp == 0 {
		cp.crash()
	}
	stop.Store(true)
	<-finished
	mu.Lock()
	defer mu.Unlock()
	slices.SortFunc(appended, func(a, b crashRecord) int { return cmp.Compare(a.lsn, b.lsn) })
	return appended, trimmed
}
func replayErr(w *WAL, from LSN) ([]rec, error) {
	var out []rec
	err := w.Replay(from, func(lsn LSN, p []byte) error {
		out = append(out, rec{lsn, bytes.Clone(p)})
		return nil
	})
	return out, err
}

// bytesPrefix reports whether want is a prefix of got, LSNs and bytes.
func bytesPrefix(want, got []rec) bool {
	if len(got) < len(want) {
		return false
	}
	for i := range want {
		if want[i].lsn != got[i].lsn || !bytes.Equal(want[i].payload, got[i].payload) {
			return false
		}
	}
	return true
}
