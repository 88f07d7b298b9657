package wal

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/sluice-io/sluice/internal/vfs"
	"github.com/sluice-io/sluice/internal/vfs/errorfs"
)

// failOnce fails the first op on a file whose name ends with suffix, once
// armed. Only once: that the WAL stays failed afterwards must come from
// the WAL, not from a filesystem that keeps failing.
type failOnce struct {
	op     errorfs.Op
	suffix string
	armed  atomic.Bool
	fired  atomic.Bool
}

func (f *failOnce) MaybeError(op errorfs.Op, path string, _ int) error {
	if op == f.op && f.armed.Load() && strings.HasSuffix(path, f.suffix) && f.fired.CompareAndSwap(false, true) {
		return errorfs.ErrInjected
	}
	return nil
}

type callback struct {
	end LSN
	err error
}

// TestFailureSticks fails one write or sync while goroutines append, and
// checks the contract: that group and everything after it fail with
// ErrFailed and the cause, callbacks stay in LSN order, no success is
// reported after the first failure, and acknowledged records survive.
func TestFailureSticks(t *testing.T) {
	for _, op := range []errorfs.Op{errorfs.OpSync, errorfs.OpWrite} {
		t.Run(op.String(), func(t *testing.T) {
			mem := vfs.NewMem()
			inj := &failOnce{op: op, suffix: firstFile}
			o := memOpts(errorfs.Wrap(mem, inj))
			w := mustOpen(t, o)
			var payloads [][]byte
			for i := range 5 {
				payloads = append(payloads, payloadOf(i, 50))
			}
			appendAll(t, w, payloads)
			inj.armed.Store(true)

			var cbs []callback // written only by the completer
			var accepted atomic.Int64
			var wg sync.WaitGroup
			for g := range 4 {
				wg.Go(func() {
					for i := range 50 {
						_, err := w.Append(context.Background(), payloadOf(g*50+i, 30),
							func(end LSN, err error) { cbs = append(cbs, callback{end, err}) })
						if err != nil {
							if !errors.Is(err, ErrFailed) || !errors.Is(err, errorfs.ErrInjected) {
								t.Errorf("Append after the failure: %v", err)
							}
							return
						}
						accepted.Add(1)
					}
				})
			}
			wg.Wait()
			if _, err := w.AppendSync(context.Background(), []byte("late")); !errors.Is(err, ErrFailed) {
				t.Fatalf("AppendSync after the failure: %v, want ErrFailed", err)
			}
			if err := w.Close(); !errors.Is(err, ErrFailed) || !errors.Is(err, errorfs.ErrInjected) {
				t.Fatalf("Close: %v, want ErrFailed wrapping the cause", err)
			}
			if !inj.fired.Load() || !w.Stats().Failed || w.Err() == nil {
				t.Fatalf("no failure latched: fired %v, stats %+v", inj.fired.Load(), w.Stats())
			}
			checkCallbacks(t, cbs, int(accepted.Load()))
			lastOK := lastSuccess(cbs, appendedEnd(payloads))
			if w.DurableEnd() != lastOK {
				t.Fatalf("DurableEnd %d, last acknowledged end %d", w.DurableEnd(), lastOK)
			}

			// Without a crash the written records may all come back; the
			// acknowledged ones must.
			w = mustOpen(t, memOpts(mem))
			defer mustClose(t, w)
			got := replayAll(t, w, 0)
			if len(got) < len(payloads) || endOf(got) < lastOK {
				t.Fatalf("reopened log ends at %d, acknowledged up to %d", endOf(got), lastOK)
			}
		})
	}
}

// checkCallbacks: one per accepted append, in LSN order, none succeeding
// after the first failure, every failure wrapping ErrFailed.
func checkCallbacks(t testing.TB, cbs []callback, accepted int) {
	t.Helper()
	if len(cbs) != accepted {
		t.Fatalf("%d callbacks for %d accepted appends", len(cbs), accepted)
	}
	failed := false
	for i, c := range cbs {
		if i > 0 && c.end <= cbs[i-1].end {
			t.Fatalf("callback %d: end %d after %d", i, c.end, cbs[i-1].end)
		}
		switch {
		case c.err != nil:
			if !errors.Is(c.err, ErrFailed) {
				t.Fatalf("callback %d: %v, want ErrFailed", i, c.err)
			}
			failed = true
		case failed:
			t.Fatalf("callback %d reports success after a failure", i)
		}
	}
	if !failed {
		t.Fatal("no callback reported the failure")
	}
}

func lastSuccess(cbs []callback, before LSN) LSN {
	for _, c := range cbs {
		if c.err == nil {
			before = c.end
		}
	}
	return before
}

func appendedEnd(payloads [][]byte) LSN {
	var n LSN
	for _, p := range payloads {
		n += LSN(frameHeaderBytes + len(p))
	}
	return n
}

func endOf(rs []rec) LSN {
	if len(rs) == 0 {
		return 0
	}
	r := rs[len(rs)-1]
	return r.lsn + LSN(frameHeaderBytes+len(r.payload))
}

// TestNoSpace: ENOSPC mid-write latches like any other failure, and the
// torn record it leaves is not recovered.
func TestNoSpace(t *testing.T) {
	mem := vfs.NewMem()
	o := memOpts(errorfs.Wrap(mem, errorfs.NoSpaceAfter(5000)))
	o.FileBytes = 2048
	w := mustOpen(t, o)
	var acked [][]byte
	var lsns []LSN
	var err error
	for i := range 100 {
		p := payloadOf(i, 100)
		lsn := w.End()
		if _, err = w.AppendSync(context.Background(), p); err != nil {
			break
		}
		acked, lsns = append(acked, p), append(lsns, lsn)
	}
	if !errors.Is(err, syscall.ENOSPC) || !errors.Is(err, ErrFailed) {
		t.Fatalf("AppendSync at the limit: %v, want ErrFailed and ENOSPC", err)
	}
	if _, err := w.Append(context.Background(), []byte("x"), nil); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("Append after ENOSPC: %v", err)
	}
	if err := w.Close(); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("Close: %v", err)
	}
	w = mustOpen(t, memOpts(mem))
	defer mustClose(t, w)
	checkRecords(t, replayAll(t, w, 0), lsns, acked)
}

// TestPrepareFailure: when the next file cannot be made ready, the
// records that need it fail and the WAL latches.
func TestPrepareFailure(t *testing.T) {
	mem := vfs.NewMem()
	inj := &failOnce{op: errorfs.OpPreallocate, suffix: "0000000000000002.wal"}
	inj.armed.Store(true)
	o := memOpts(errorfs.Wrap(mem, inj))
	o.FileBytes = 512
	w := mustOpen(t, o)
	var acked [][]byte
	var lsns []LSN
	var err error
	for i := range 20 {
		p := payloadOf(i, 100)
		lsn := w.End()
		if _, err = w.AppendSync(context.Background(), p); err != nil {
			break
		}
		acked, lsns = append(acked, p), append(lsns, lsn)
	}
	if !errors.Is(err, ErrFailed) || !errors.Is(err, errorfs.ErrInjected) || len(acked) == 0 {
		t.Fatalf("after %d records: %v, want ErrFailed at the first rotation", len(acked), err)
	}
	if err := w.Close(); !errors.Is(err, ErrFailed) {
		t.Fatalf("Close: %v", err)
	}
	w = mustOpen(t, memOpts(mem))
	defer mustClose(t, w)
	checkRecords(t, replayAll(t, w, 0), lsns, acked)
}

// TestDiskDiesAtK runs one workload (appends across rotations, a Trim that
// recycles) on a disk that fails every mutating operation from the k-th
// on, for every k the workload reaches. After each, a crash keeping only
// durable state must hold every acknowledged record and nothing else
// than, at most, the one record in flight.
func TestDiskDiesAtK(t *testing.T) {
	mutating := []errorfs.Op{errorfs.OpCreate, errorfs.OpWrite, errorfs.OpSync, errorfs.OpSyncDir,
		errorfs.OpRename, errorfs.OpRemove, errorfs.OpPreallocate}
	counter := errorfs.NewCounter(mutating...)
	runDiskDies(t, -1, counter)
	total := counter.Count()
	t.Logf("workload: %d mutating operations", total)
	for k := range total + 1 {
		runDiskDies(t, k, errorfs.After(k, nil, mutating...))
	}
}

func runDiskDies(t *testing.T, k int64, inj errorfs.Injector) {
	t.Helper()
	mem := vfs.NewMem()
	o := memOpts(errorfs.Wrap(mem, inj))
	o.FileBytes, o.RecycleFiles = 300, 2
	w, err := Open(o)
	if err != nil {
		if k < 0 || !errors.Is(err, errorfs.ErrInjected) {
			t.Fatalf("k=%d: Open: %v", k, err)
		}
		// A failed Open leaves a directory the next Open accepts.
		w = mustOpen(t, memOpts(mem.CrashClone(vfs.CrashOptions{})))
		if got := replayAll(t, w, 0); len(got) != 0 {
			t.Fatalf("k=%d: %d records after a failed Open", k, len(got))
		}
		mustClose(t, w)
		return
	}
	var acked [][]byte
	var lsns []LSN
	var checkpoint, nextLSN LSN
	var next []byte
	for i := range 40 {
		if i == 25 {
			checkpoint = lsns[15]
			// Trim's errors do not latch; they only leave files behind.
			_ = w.Trim(checkpoint)
		}
		next, nextLSN = payloadOf(i, 20+i*3%90), w.End()
		if _, err = w.AppendSync(context.Background(), next); err != nil {
			break
		}
		acked, lsns = append(acked, next), append(lsns, nextLSN)
		next = nil
	}
	cerr := w.Close()
	if k < 0 && (err != nil || cerr != nil) {
		t.Fatalf("workload without faults: %v, %v", err, cerr)
	}
	if err != nil && !errors.Is(err, ErrFailed) {
		t.Fatalf("k=%d: %v, want ErrFailed", k, err)
	}

	w, err = Open(memOpts(mem.CrashClone(vfs.CrashOptions{})))
	if err != nil {
		t.Fatalf("k=%d: reopen after crash: %v", k, err)
	}
	defer mustClose(t, w)
	from := 0
	for from < len(lsns) && lsns[from] < checkpoint {
		from++
	}
	got := replayAll(t, w, checkpoint)
	if next != nil && len(got) == len(acked)-from+1 {
		// The record in flight may have reached the disk.
		last := got[len(got)-1]
		if !bytes.Equal(last.payload, next) || last.lsn != nextLSN {
			t.Fatalf("k=%d: unexpected record at LSN %d", k, last.lsn)
		}
		got = got[:len(got)-1]
	}
	checkRecords(t, got, lsns[from:], acked[from:])
}
