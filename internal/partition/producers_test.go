package partition

import (
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sluice-io/sluice/internal/batch"
	"github.com/sluice-io/sluice/internal/producer"
	"github.com/sluice-io/sluice/internal/segment"
)

// idem builds a batch of n records from producer pid at epoch and seq.
func idem(t testing.TB, pid int64, epoch int16, seq int32, n int, txn bool, ts int64) []byte {
	t.Helper()
	recs := make([]batch.Record, n)
	for i := range recs {
		recs[i] = batch.Record{Key: []byte(fmt.Sprintf("k%d", i)), Value: make([]byte, 60)}
	}
	b, err := batch.Build(batch.CodecNone, ts, recs, batch.BuildOptions{Idempotent: true, Transactional: txn,
		ProducerID: pid, ProducerEpoch: epoch, BaseSequence: seq})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// marker builds a COMMIT or ABORT marker as the broker does.
func marker(t testing.TB, pid int64, epoch int16, kind producer.MarkerKind, ts int64) []byte {
	t.Helper()
	b, err := batch.Build(batch.CodecNone, ts, []batch.Record{producer.MarkerRecord(kind, 0)},
		batch.BuildOptions{Control: true, Transactional: true, ProducerID: pid, ProducerEpoch: epoch})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// try runs Append alone and returns the base offset or the error.
func (h *harness) try(b []byte) (int64, error) {
	var base int64
	_, err := h.p.Append(b, h.now, func(b int64) error { base = b; return nil })
	return base, err
}

func TestIdempotentAppend(t *testing.T) {
	h := newHarness(t, DefaultConfig())
	ts := h.now.UnixMilli()
	b0 := idem(t, 7, 0, 0, 3, false, ts) // offsets 0-2
	if base := h.append(b0); base != 0 {
		t.Fatal(base)
	}
	// A retry of an applied batch: the original's offsets, nothing appended.
	_, err := h.try(idem(t, 7, 0, 0, 3, false, ts))
	var de *producer.DuplicateError
	if !errors.As(err, &de) || de.BaseOffset != 0 || de.LastOffset != 2 {
		t.Fatalf("duplicate of an applied batch: %v", err)
	}
	// Two in flight, the second retried before the first is applied.
	b1, b2 := idem(t, 7, 0, 3, 2, false, ts), idem(t, 7, 0, 5, 1, false, ts)
	base1, err := h.try(b1)
	if err != nil || base1 != 3 {
		t.Fatal(base1, err)
	}
	base2, err := h.try(b2)
	if err != nil || base2 != 5 {
		t.Fatal(base2, err)
	}
	if _, err := h.try(idem(t, 7, 0, 5, 1, false, ts)); !errors.As(err, &de) || de.BaseOffset != 5 {
		t.Fatalf("duplicate of an in-flight batch: %v", err)
	}
	// The caller waits until the original is readable.
	if _, end := h.p.Offsets(); end > de.LastOffset {
		t.Fatal("in-flight batch already readable")
	}
	ch := h.p.Changed()
	for _, b := range [][]byte{b1, b2} {
		if err := h.p.Apply(b); err != nil {
			t.Fatal(err)
		}
	}
	<-ch
	if _, end := h.p.Offsets(); end <= de.LastOffset {
		t.Fatal("original not readable after apply")
	}
	// A gap, an old epoch, then an epoch bump.
	if _, err := h.try(idem(t, 7, 0, 9, 1, false, ts)); !errors.Is(err, producer.ErrOutOfOrderSequence) {
		t.Fatalf("gap: %v", err)
	}
	h.append(idem(t, 7, 1, 0, 1, false, ts))
	if _, err := h.try(idem(t, 7, 0, 6, 1, false, ts)); !errors.Is(err, producer.ErrInvalidProducerEpoch) {
		t.Fatalf("old epoch: %v", err)
	}
	if n := h.p.Next(); n != 7 {
		t.Fatalf("refused batches took offsets: next %d", n)
	}
	ps := h.p.Producers()
	if len(ps) != 1 || ps[0].ProducerID != 7 || ps[0].Epoch != 1 || ps[0].LastSequence != 0 {
		t.Fatalf("producers %+v", ps)
	}
	// Plain batches are not checked.
	h.append(mkBatch(t, 2, ts, 10))
	h.append(mkBatch(t, 2, ts, 10))
}

func TestProducerLimit(t *testing.T) {
	h := newHarness(t, DefaultConfig())
	h.p.Close()
	o := h.opts()
	o.Producer = producer.Options{MaxProducers: 2}
	p, _, err := Open(o, nil)
	if err != nil {
		t.Fatal(err)
	}
	h.p = p
	ts := h.now.UnixMilli()
	h.append(idem(t, 1, 0, 0, 1, false, ts))
	if _, err := h.try(idem(t, 2, 0, 0, 1, false, ts)); err != nil {
		t.Fatal(err) // in flight, counted
	}
	if _, err := h.try(idem(t, 3, 0, 0, 1, false, ts)); !errors.Is(err, producer.ErrTooManyProducers) {
		t.Fatalf("past the limit: %v", err)
	}
}

// txnGen is the producers' side of txnWorkload, kept across calls.
type txnGen struct {
	seq  map[int64]int32
	open map[int64]int64 // pid -> first offset of its open transaction
	want []AbortedTxn
}

var gens = map[*harness]*txnGen{}

// txnWorkload appends transactions from three producers across many small
// segments and returns the aborted transactions it expects.
func txnWorkload(t *testing.T, h *harness, rounds int) []AbortedTxn {
	ts := h.now.UnixMilli()
	g := gens[h]
	if g == nil {
		g = &txnGen{seq: map[int64]int32{}, open: map[int64]int64{}}
		gens[h] = g
	}
	seq, open := g.seq, g.open
	want := g.want
	defer func() { g.want = want }()
	for i := 0; i < rounds; i++ {
		pid := int64(1 + i%3)
		switch i % 7 {
		case 3, 6:
			if first, ok := open[pid]; ok {
				kind := producer.Commit
				if i%2 == 0 {
					kind = producer.Abort
				}
				at := h.append(marker(t, pid, 0, kind, ts))
				delete(open, pid)
				if kind == producer.Abort {
					lso := at + 1
					for _, f := range open {
						lso = min(lso, f)
					}
					want = append(want, AbortedTxn{ProducerID: pid, FirstOffset: first, LastOffset: at, LastStableOffset: lso})
				}
				continue
			}
		}
		base := h.append(idem(t, pid, 0, seq[pid], 2, true, ts))
		seq[pid] += 2
		if _, ok := open[pid]; !ok {
			open[pid] = base
		}
		// The plain producer in between.
		h.append(mkBatch(t, 1, ts, 100))
		wantLSO := h.p.mu.end
		for _, f := range open {
			wantLSO = min(wantLSO, f)
		}
		if got := h.p.LastStableOffset(); got != wantLSO {
			t.Fatalf("round %d: LSO %d, want %d", i, got, wantLSO)
		}
	}
	return want
}

func smallSegments() Config {
	cfg := DefaultConfig()
	cfg.SegmentBytes = 2 << 10
	cfg.IndexIntervalBytes = 256
	return cfg
}

// overlapping is the reference for AbortedTransactions.
func overlapping(all []AbortedTxn, from, upTo int64) []AbortedTxn {
	var out []AbortedTxn
	for _, e := range all {
		if e.LastOffset >= from && e.FirstOffset < upTo {
			out = append(out, e)
		}
	}
	return out
}

func checkAborted(t *testing.T, p *Partition, all []AbortedTxn) {
	t.Helper()
	_, end := p.Offsets()
	for from := int64(0); from < end; from += 7 {
		for _, upTo := range []int64{from + 1, from + 20, end} {
			got, err := p.AbortedTransactions(from, upTo)
			if err != nil {
				t.Fatal(err)
			}
			// The index may stop early only past every overlap,
			// so the result must hold every overlapping entry.
			want := overlapping(all, from, upTo)
			for _, w := range want {
				if !slices.Contains(got, w) {
					t.Fatalf("[%d, %d): got %+v, missing %+v", from, upTo, got, w)
				}
			}
			for _, g := range got {
				if !slices.Contains(want, g) {
					t.Fatalf("[%d, %d): %+v does not overlap", from, upTo, g)
				}
			}
		}
	}
}

func TestTransactionsAcrossSegments(t *testing.T) {
	h := newHarness(t, smallSegments())
	want := txnWorkload(t, h, 120)
	if len(want) < 5 || len(h.p.Segments()) < 5 {
		t.Fatalf("%d aborts over %d segments: workload too small", len(want), len(h.p.Segments()))
	}
	checkAborted(t, h.p, want)
	if _, err := h.p.Flush(); err != nil {
		t.Fatal(err)
	}
	checkAborted(t, h.p, want) // sealed segments now read their files

	// Reopen with the flush's state as the checkpoint: the snapshot is
	// used and only the tail after it is scanned.
	st, err := h.p.Flush()
	if err != nil {
		t.Fatal(err)
	}
	txnWorkload(t, h, 14)
	delete(gens, h)
	before := h.p.ProducerState()
	lso := h.p.LastStableOffset()
	h.p.Close()
	p, rs, err := Open(h.opts(), &st)
	if err != nil {
		t.Fatal(err)
	}
	h.p = p
	if rs.Producers.Snapshot != st.Next {
		t.Fatalf("recovery used snapshot %d, want %d", rs.Producers.Snapshot, st.Next)
	}
	if _, end := p.Offsets(); rs.Producers.ScannedBatches == 0 || rs.Producers.ScannedBatches > end-st.Next {
		t.Fatalf("scanned %d batches for %d offsets after the snapshot", rs.Producers.ScannedBatches, end-st.Next)
	}
	if !p.ProducerState().Equal(before) || p.LastStableOffset() != lso {
		t.Fatalf("state after recovery differs: %+v vs %+v", p.Producers(), before.Producers())
	}
	// And equals a scan of the whole log.
	checkFullScan(t, h)
}

// checkFullScan opens the partition's files afresh without a checkpoint
// (a whole scan) and compares the producer state and the aborted list.
func checkFullScan(t *testing.T, h *harness) {
	t.Helper()
	if _, err := h.p.Flush(); err != nil {
		t.Fatal(err)
	}
	o := h.opts()
	o.Env = testEnv(t, h.fs)
	q, rs, err := Open(o, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	if rs.Producers.Snapshot != -1 {
		t.Fatalf("no checkpoint, yet snapshot %d used", rs.Producers.Snapshot)
	}
	if !q.ProducerState().Equal(h.p.ProducerState()) {
		t.Fatalf("full scan differs:\n%+v\n%+v", q.Producers(), h.p.Producers())
	}
	if q.LastStableOffset() != h.p.LastStableOffset() {
		t.Fatalf("LSO %d vs %d", q.LastStableOffset(), h.p.LastStableOffset())
	}
	_, end := h.p.Offsets()
	a, err1 := q.AbortedTransactions(0, end)
	b, err2 := h.p.AbortedTransactions(0, end)
	if err1 != nil || err2 != nil || !slices.Equal(a, b) {
		t.Fatalf("aborted differ: %+v %v / %+v %v", a, err1, b, err2)
	}
}

func TestTxnIndexRebuilt(t *testing.T) {
	h := newHarness(t, smallSegments())
	want := txnWorkload(t, h, 100)
	st, err := h.p.Flush()
	if err != nil {
		t.Fatal(err)
	}
	// Lost while open: the next read_committed fetch rebuilds it.
	names, _ := h.fs.ReadDir("p-0")
	var idx []string
	for _, n := range names {
		if strings.HasSuffix(n, segment.TxnIndexSuffix) {
			idx = append(idx, n)
		}
	}
	if len(idx) < 4 {
		t.Fatalf("txnindex files %v", idx)
	}
	if err := h.fs.Remove(filepath.Join("p-0", idx[1])); err != nil {
		t.Fatal(err)
	}
	f, _ := h.fs.OpenRW(filepath.Join("p-0", idx[2]))
	f.WriteAt([]byte("junk"), 0)
	f.Close()
	checkAborted(t, h.p, want)
	// Lost while closed: recovery scans the whole log and writes them.
	h.p.Close()
	for _, n := range idx[:3] {
		h.fs.Remove(filepath.Join("p-0", n))
	}
	p, rs, err := Open(h.opts(), &st)
	if err != nil {
		t.Fatal(err)
	}
	h.p = p
	if rs.Producers.Snapshot != -1 || rs.Producers.TxnIndexesRewritten < 3 {
		t.Fatalf("recovery %+v", rs.Producers)
	}
	for _, n := range idx[:3] {
		if _, err := h.fs.Stat(filepath.Join("p-0", n)); err != nil {
			t.Fatalf("%s not rewritten: %v", n, err)
		}
	}
	checkAborted(t, h.p, want)
}

func TestTruncateReloadsProducers(t *testing.T) {
	h := newHarness(t, smallSegments())
	txnWorkload(t, h, 60)
	if _, err := h.p.Flush(); err != nil {
		t.Fatal(err)
	}
	txnWorkload(t, h, 30)
	delete(gens, h)
	_, end := h.p.Offsets()
	for _, cut := range []int64{end - 3, end * 2 / 3, end / 3, 0} {
		if err := h.p.TruncateTo(cut); err != nil {
			t.Fatal(err)
		}
		checkFullScan(t, h)
	}
}

func TestCompactionKeepsTxnIndex(t *testing.T) {
	cfg := smallSegments()
	cfg.Compact = true
	h := newHarness(t, cfg)
	want := txnWorkload(t, h, 100)
	if _, err := h.p.Flush(); err != nil {
		t.Fatal(err)
	}
	st, err := h.p.Compact(t.Context(), h.now, CompactOptions{DurableBelow: h.p.Next()})
	if err != nil {
		t.Fatal(err)
	}
	if st.SegmentsBefore == 0 {
		t.Fatalf("nothing compacted: %+v", st)
	}
	checkAborted(t, h.p, want)
}

// snapshotFiles lists the partition's snapshot files.
func snapshotFiles(t *testing.T, h *harness) []string {
	t.Helper()
	names, err := h.fs.ReadDir("p-0")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, n := range names {
		if strings.HasSuffix(n, snapshotSuffix) {
			out = append(out, n)
		}
	}
	return out
}

// A small producer state travels inline in the FlushState, with no file; a
// large one goes to a file; either way recovery from the flush's state uses
// it and scans only the tail; moving between the two leaves no stale file.
func TestSnapshotInlineOrFile(t *testing.T) {
	h := newHarness(t, DefaultConfig())
	ts := h.now.UnixMilli()
	seq := map[int64]int32{}
	produce := func(pids ...int64) {
		for _, pid := range pids {
			h.append(idem(t, pid, 0, seq[pid], 2, false, ts))
			seq[pid] += 2
		}
	}
	reopen := func(st FlushState) RecoveryStats {
		t.Helper()
		before := h.p.ProducerState()
		h.p.Close()
		p, rs, err := Open(h.opts(), &st)
		if err != nil {
			t.Fatal(err)
		}
		h.p = p
		if !p.ProducerState().Equal(before) {
			t.Fatalf("state after recovery differs: %+v vs %+v", p.Producers(), before.Producers())
		}
		return rs
	}

	// Two producers: inline.
	produce(1, 2, 1)
	st, err := h.p.Flush()
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Producers) == 0 || len(st.Producers) > InlineSnapshotBytesMax {
		t.Fatalf("two producers: %d bytes inline", len(st.Producers))
	}
	if files := snapshotFiles(t, h); len(files) != 0 {
		t.Fatalf("inline snapshot also wrote %v", files)
	}
	// Unchanged: the next flush carries the same state.
	if st2, err := h.p.Flush(); err != nil || !slices.Equal(st2.Producers, st.Producers) {
		t.Fatalf("unchanged flush: %d bytes, %v", len(st2.Producers), err)
	}
	produce(2)
	if rs := reopen(st); rs.Producers.Snapshot != st.Next || rs.Producers.ScannedBatches != 1 {
		t.Fatalf("recovery from inline: %+v", rs.Producers)
	}

	// Twenty producers: a file, and nothing inline.
	for pid := int64(10); pid < 30; pid++ {
		produce(pid)
	}
	st, err = h.p.Flush()
	if err != nil {
		t.Fatal(err)
	}
	if st.Producers != nil || len(snapshotFiles(t, h)) != 1 {
		t.Fatalf("large state: %d bytes inline, files %v", len(st.Producers), snapshotFiles(t, h))
	}
	produce(1)
	if rs := reopen(st); rs.Producers.Snapshot != st.Next || rs.Producers.ScannedBatches != 1 {
		t.Fatalf("recovery from a file: %+v", rs.Producers)
	}

	// Producers expire (no batch for producer.id.expiration.ms): small
	// again, inline again, and the file goes.
	h.now = h.now.Add(8 * 24 * time.Hour)
	h.append(idem(t, 99, 0, 0, 1, false, h.now.UnixMilli()))
	st, err = h.p.Flush()
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Producers) == 0 || len(snapshotFiles(t, h)) != 0 {
		t.Fatalf("after expiry: %d bytes inline, files %v", len(st.Producers), snapshotFiles(t, h))
	}
	if rs := reopen(st); rs.Producers.Snapshot != st.Next || rs.Producers.ScannedBatches != 0 {
		t.Fatalf("recovery after expiry: %+v", rs.Producers)
	}
}
