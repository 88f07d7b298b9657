package partition

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/sluice-io/sluice/internal/batch"
	"github.com/sluice-io/sluice/internal/producer"
	"github.com/sluice-io/sluice/internal/segment"
	"github.com/sluice-io/sluice/internal/vfs"
)

// Idempotent and transactional producers (docs/format/producer.md,
// docs/format/txnindex.md).
//
// The partition keeps two views of its producers. mu.producers is the
// state of the readable log: Apply and Replay update it in offset order,
// snapshots are taken of it, and the last stable offset and the aborted
// transactions come from it. mu.pending holds, for each producer with
// batches enqueued but not yet applied, its entry as it will be once they
// are: Append checks a batch against it, so that a producer's in-flight
// batches are ordered and a retry of one of them is a duplicate. Every
// enqueued batch is either applied (and leaves pending) or the WAL has
// failed, which latches every later append, so pending never needs
// undoing.

// AbortedTxn is an aborted transaction, as Fetch reports it.
type AbortedTxn = producer.AbortedTxn

// ProducerInfo describes a producer, as DescribeProducers reports it.
type ProducerInfo = producer.Info

const (
	snapshotSuffix = ".snapshot"
	tmpSuffix      = ".tmp"
	// snapshotsKept: the newest snapshot and the one before it, in case
	// the newest is damaged.
	snapshotsKept = 2
)

// InlineSnapshotBytesMax is the largest producer-state snapshot a flush
// hands to the checkpoint (FlushState.Producers) instead of writing a file:
// about five producers. Most partitions have one or two, and a snapshot
// file per partition per checkpoint costs a create, a rename and a remove
// each: with thousands of partitions, seconds per checkpoint.
const InlineSnapshotBytesMax = 1 << 10

type pendingProducer struct {
	entry *producer.Entry
	n     int  // batches enqueued, not yet applied
	fresh bool // unknown to the applied state when first enqueued
}

func snapshotName(offset int64) string { return segment.Name(offset) + snapshotSuffix }

// checkProducerLocked checks a client's batch from an idempotent or
// transactional producer against its entry as it will be once its
// in-flight batches are applied, and returns that entry.
func (p *Partition) checkProducerLocked(pb producer.Batch, now time.Time) (*producer.Entry, error) {
	cur := p.mu.producers.Get(pb.ProducerID)
	if pp := p.mu.pending[pb.ProducerID]; pp != nil {
		cur = pp.entry
	}
	if cur == nil {
		n := p.mu.producers.Len()
		err := p.mu.producers.Admit(pb.ProducerID, p.mu.pendingNew, now)
		if p.mu.producers.Len() != n {
			p.mu.prodDirty = true // expired producers went
		}
		if err != nil {
			return nil, err
		}
	}
	return cur, producer.Check(cur, pb)
}

// pendLocked records that pb (offsets assigned) was enqueued.
func (p *Partition) pendLocked(cur *producer.Entry, pb producer.Batch) {
	next, _, _ := producer.Next(cur, pb)
	pp := p.mu.pending[pb.ProducerID]
	if pp == nil {
		pp = &pendingProducer{fresh: p.mu.producers.Get(pb.ProducerID) == nil}
		p.mu.pending[pb.ProducerID] = pp
		if pp.fresh {
			p.mu.pendingNew++
		}
	}
	pp.entry = next
	pp.n++
}

// applyProducerLocked updates the state with a batch that just became
// part of the log, in the active segment.
func (p *Partition) applyProducerLocked(b []byte, h batch.Header) {
	pb, err := producer.FromBatch(b, h)
	if err != nil {
		// The log holds it, so it must be taken as it is: a control
		// record that cannot be read ends no transaction.
		pb.Marker = producer.NoMarker
	}
	if a := p.mu.producers.Update(pb); a != nil {
		p.activeLocked().AddAbortedTxn(*a)
	}
	p.mu.prodDirty = true
	if pp := p.mu.pending[h.ProducerID]; pp != nil {
		if pp.n--; pp.n == 0 {
			delete(p.mu.pending, h.ProducerID)
			if pp.fresh {
				p.mu.pendingNew--
			}
		}
	}
}

// LastStableOffset returns the offset below which every transaction is
// decided: the first offset of the earliest open transaction, or the high
// watermark when none is open; never above the high watermark nor below
// the log start. read_committed consumers read below it.
func (p *Partition) LastStableOffset() int64 {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return p.lastStableLocked()
}

func (p *Partition) lastStableLocked() int64 {
	lso := p.mu.end
	if f, ok := p.mu.producers.FirstUnstableOffset(); ok && f < lso {
		lso = f
	}
	return max(lso, p.mu.logStart)
}

// Producers describes every producer the partition tracks, by id.
func (p *Partition) Producers() []ProducerInfo {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return p.mu.producers.Producers()
}

// ProducerState returns a copy of the producer state of the readable log,
// for tests and tools.
func (p *Partition) ProducerState() *producer.State {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return p.mu.producers.Clone()
}

// AbortedTransactions returns the aborted transactions whose offsets
// overlap [from, upTo), in marker order, as a read_committed Fetch of that
// range reports them. A segment whose .txnindex is missing or damaged has
// it rebuilt by a scan of the log up to it.
func (p *Partition) AbortedTransactions(from, upTo int64) ([]AbortedTxn, error) {
	out, bad, err := p.collectAborted(from, upTo)
	if bad == nil || err != nil {
		return out, err
	}
	if _, err := p.rebuildTxnIndex(bad); err != nil {
		return nil, err
	}
	out, bad, err = p.collectAborted(from, upTo)
	if bad != nil && err == nil {
		err = fmt.Errorf("partition: %s: transaction index of segment %d still unreadable after a rebuild", p.id, bad.Base())
	}
	return out, err
}

func (p *Partition) collectAborted(from, upTo int64) ([]AbortedTxn, *segment.Segment, error) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.mu.closed {
		return nil, nil, ErrClosed
	}
	var out []AbortedTxn
	if from >= upTo {
		return nil, nil, nil
	}
	for _, s := range p.mu.segs[p.segmentForLocked(from):] {
		ents, err := s.AbortedTxns()
		if errors.Is(err, segment.ErrTxnIndexMissing) || errors.Is(err, segment.ErrCorrupt) {
			return nil, s, nil
		}
		if err != nil {
			return nil, nil, err
		}
		for _, e := range ents {
			if e.LastOffset >= from && e.FirstOffset < upTo {
				out = append(out, e)
			}
			// Every transaction begun before upTo was decided by
			// this marker: later entries cannot overlap.
			if e.LastStableOffset >= upTo {
				return out, nil, nil
			}
		}
	}
	return out, nil, nil
}

// abortedTxnsOf returns a copy of a segment's aborted transactions,
// rebuilding its index if needed.
func (p *Partition) abortedTxnsOf(s *segment.Segment) ([]AbortedTxn, error) {
	p.mu.RLock()
	ents, err := s.AbortedTxns()
	ents = append([]AbortedTxn(nil), ents...)
	p.mu.RUnlock()
	if errors.Is(err, segment.ErrTxnIndexMissing) || errors.Is(err, segment.ErrCorrupt) {
		return p.rebuildTxnIndex(s)
	}
	return ents, err
}

// rebuildTxnIndex rebuilds a flushed segment's .txnindex by scanning the
// log from its start to the end of that segment: where a transaction began
// may lie in any earlier segment. It holds mu shared throughout, so no
// segment it reads goes meanwhile; appends wait. Only a damaged or lost
// file costs this.
func (p *Partition) rebuildTxnIndex(target *segment.Segment) ([]AbortedTxn, error) {
	p.txnRebuildMu.Lock()
	defer p.txnRebuildMu.Unlock()
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.mu.closed {
		return nil, ErrClosed
	}
	if ents, err := target.AbortedTxns(); err == nil {
		return append([]AbortedTxn(nil), ents...), nil // rebuilt meanwhile
	}
	st := producer.New(p.prodOpts)
	var out []AbortedTxn
	found := false
	for _, s := range p.mu.segs {
		err := s.Batches(p.env, func(b []byte, h batch.Header) error {
			if a := updateFrom(st, b, h); a != nil && s == target {
				out = append(out, *a)
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("partition: %s: rebuild transaction index: %w", p.id, err)
		}
		if s == target {
			found = true
			break
		}
	}
	if !found {
		return nil, fmt.Errorf("partition: %s: rebuild transaction index: segment %d is gone", p.id, target.Base())
	}
	if target.TxnLoaded() {
		return out, nil
	}
	if err := target.WriteTxnIndex(out); err != nil {
		return nil, err
	}
	return out, nil
}

// updateFrom applies one batch of the log to st.
func updateFrom(st *producer.State, b []byte, h batch.Header) *AbortedTxn {
	if h.ProducerID < 0 {
		return nil
	}
	pb, err := producer.FromBatch(b, h)
	if err != nil {
		pb.Marker = producer.NoMarker
	}
	return st.Update(pb)
}

// ProducerRecovery says how the producer state was rebuilt.
type ProducerRecovery struct {
	// Snapshot is the offset of the snapshot loaded, or -1 for a scan of
	// the whole log.
	Snapshot int64
	// ScannedBatches counts the batches read to bring the state from the
	// snapshot to the end of the log.
	ScannedBatches int64
	// TxnIndexesRewritten counts .txnindex files of flushed segments the
	// scan of the whole log wrote back.
	TxnIndexesRewritten int
}

// listSnapshots returns the offsets of the snapshot files in names,
// ascending.
func listSnapshots(names []string) []int64 {
	var out []int64
	for _, n := range names {
		if off, suf, ok := segment.ParseName(n); ok && suf == snapshotSuffix {
			out = append(out, off)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// cleanProducerFiles removes what an interrupted write left (temporary
// snapshots and rebuilt indexes) and transaction indexes without their
// segment. It returns the remaining names.
func cleanProducerFiles(fsys vfs.FS, dir string, names []string) ([]string, error) {
	logs := map[int64]bool{}
	for _, n := range names {
		if base, suf, ok := segment.ParseName(n); ok && suf == segment.LogSuffix {
			logs[base] = true
		}
	}
	out := names[:0:0]
	for _, n := range names {
		base, suf, ok := segment.ParseName(n)
		stray := strings.HasSuffix(n, snapshotSuffix+tmpSuffix) || strings.HasSuffix(n, segment.TxnIndexSuffix+tmpSuffix) ||
			(ok && suf == segment.TxnIndexSuffix && !logs[base])
		if !stray {
			out = append(out, n)
			continue
		}
		if err := fsys.Remove(filepath.Join(dir, n)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("partition: open %s: %w", dir, err)
		}
	}
	return out, nil
}

// loadProducersLocked rebuilds the producer state and the transaction
// indexes of the segments being written, after recovery or truncation:
// from the newest snapshot at or below limit that decodes, scanning the
// log after it; or, with no usable snapshot (or full set, or a segment
// below the snapshot without a transaction index), from the start of the
// log. names are the directory's entries.
func (p *Partition) loadProducersLocked(names []string, limit int64, full bool, inline []byte) (ProducerRecovery, error) {
	rec := ProducerRecovery{Snapshot: -1}
	snaps := listSnapshots(names)
	p.mu.inline, p.mu.inlineAt = nil, -1
	hasTxn := map[int64]bool{}
	for _, n := range names {
		if base, suf, ok := segment.ParseName(n); ok && suf == segment.TxnIndexSuffix {
			hasTxn[base] = true
		}
	}
	segs := p.mu.segs
	inMem := func(s *segment.Segment) bool { return s.State() != segment.Flushed }

	var st *producer.State
	at := segs[0].Base()
	// The checkpoint's inline snapshot is at its flushed position: no
	// file can be newer and still below it.
	if len(inline) > 0 && !full {
		if s, off, err := producer.DecodeSnapshot(p.id.String()+" checkpoint", inline, p.prodOpts); err == nil && off <= limit && off <= p.mu.end {
			st, at = s, off
			p.mu.inline, p.mu.inlineAt = inline, off
		}
	}
	for i := len(snaps) - 1; i >= 0 && !full && st == nil; i-- {
		if snaps[i] > limit || snaps[i] > p.mu.end {
			continue
		}
		b, err := vfs.ReadFile(p.fs, filepath.Join(p.dir, snapshotName(snaps[i])), int64(producer.SnapshotBytesMax(p.prodOpts)))
		if err != nil {
			continue
		}
		if s, off, err := producer.DecodeSnapshot(filepath.Join(p.dir, snapshotName(snaps[i])), b, p.prodOpts); err == nil && off == snaps[i] {
			st, at = s, off
			break
		}
	}
	// Entries below the snapshot come from the files; check they are
	// there.
	kept := make(map[*segment.Segment][]AbortedTxn)
	if st != nil {
		for _, s := range segs {
			if !inMem(s) {
				if !hasTxn[s.Base()] {
					st = nil
					break
				}
				continue
			}
			if s.Base() >= at {
				continue
			}
			ents, err := s.AbortedTxns()
			if err != nil {
				st = nil
				break
			}
			for _, e := range ents {
				if e.LastOffset < at {
					kept[s] = append(kept[s], e)
				}
			}
		}
	}
	if st == nil {
		st, at = producer.New(p.prodOpts), segs[0].Base()
		clear(kept)
		p.mu.inline, p.mu.inlineAt = nil, -1
	} else {
		rec.Snapshot = at
	}
	for _, s := range segs {
		ents := kept[s]
		if s.Next() > at {
			from := int64(0)
			if s.Base() < at {
				pos, err := s.PositionOf(p.env, at)
				if err != nil {
					return rec, err
				}
				from = pos
			}
			err := s.BatchesFrom(p.env, from, func(b []byte, h batch.Header) error {
				if h.LastOffset() < at {
					return nil
				}
				rec.ScannedBatches++
				if a := updateFrom(st, b, h); a != nil {
					ents = append(ents, *a)
				}
				return nil
			})
			if err != nil {
				return rec, fmt.Errorf("partition: %s: rebuild producer state: %w", p.id, err)
			}
		}
		switch {
		case inMem(s):
			s.SetAbortedTxns(ents)
		case rec.Snapshot < 0:
			// A whole scan: put back the files that are missing or
			// damaged (best effort: a failure costs a rebuild later).
			if cur, err := s.AbortedTxns(); err != nil || !equalTxns(cur, ents) {
				if s.WriteTxnIndex(ents) == nil {
					rec.TxnIndexesRewritten++
				}
			}
		}
	}
	p.mu.producers = st
	p.mu.pending, p.mu.pendingNew = map[int64]*pendingProducer{}, 0
	p.mu.snapshots = nil
	for _, s := range snaps {
		if s <= p.mu.end {
			p.mu.snapshots = append(p.mu.snapshots, s)
		}
	}
	// A state that no snapshot at the end describes gets one at the
	// next checkpoint, so the next recovery need not scan again.
	p.mu.prodDirty = rec.Snapshot != p.mu.end
	if p.mu.inlineAt != p.mu.end {
		p.mu.inline, p.mu.inlineAt = nil, -1
	}
	return rec, nil
}

func equalTxns(a, b []AbortedTxn) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// removeSnapshotsAbove removes the snapshot files above offset (their data
// was truncated away). The caller syncs the directory.
func (p *Partition) removeSnapshotsAbove(names []string, offset int64) error {
	for _, s := range listSnapshots(names) {
		if s <= offset {
			continue
		}
		if err := p.fs.Remove(filepath.Join(p.dir, snapshotName(s))); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("partition: remove snapshot: %w", err)
		}
	}
	return nil
}

// snapshotJob is the producer-state part of a flush.
type snapshotJob struct {
	data   []byte
	offset int64
	drop   []int64 // older snapshots to remove once the new one is in place
	// inline: data travels in the FlushState (and so in the checkpoint)
	// instead of a file; run only removes the files it supersedes.
	inline bool
}

// prepareSnapshotLocked captures a snapshot for a flush, when the state or
// the end moved since the last one. Expired producers go first. A small
// snapshot goes inline (InlineSnapshotBytesMax); a large one to a file.
func (p *Partition) prepareSnapshotLocked() *snapshotJob {
	if p.mu.producers.RemoveExpired(p.now()) > 0 {
		p.mu.prodDirty = true
	}
	newest := max(p.mu.inlineAt, -1)
	if n := len(p.mu.snapshots); n > 0 {
		newest = max(newest, p.mu.snapshots[n-1])
	}
	if !p.mu.prodDirty && newest == p.mu.end {
		return nil
	}
	j := &snapshotJob{data: p.mu.producers.Snapshot(p.mu.end), offset: p.mu.end}
	j.inline = len(j.data) <= InlineSnapshotBytesMax
	for _, s := range p.mu.snapshots {
		// Inline, every file is superseded (recovery falls back to a
		// scan if a crash leaves the previous checkpoint needing one).
		if j.inline || (s != newest && s != j.offset) {
			j.drop = append(j.drop, s)
		}
	}
	p.mu.prodDirty = false
	return j
}

// run writes the snapshot (temporary file, synced when sync is set,
// renamed) and removes the ones it supersedes. The caller syncs the
// directory.
func (j *snapshotJob) run(p *Partition, sync bool) error {
	if j.inline {
		return j.dropFiles(p)
	}
	path := filepath.Join(p.dir, snapshotName(j.offset))
	tmp := path + tmpSuffix
	f, err := p.fs.Create(tmp)
	if err != nil {
		return fmt.Errorf("partition: snapshot: %w", err)
	}
	_, err = f.WriteAt(j.data, 0)
	if err == nil && sync {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = p.fs.Rename(tmp, path)
	}
	if err != nil {
		return fmt.Errorf("partition: snapshot %s: %w", path, err)
	}
	return j.dropFiles(p)
}

func (j *snapshotJob) dropFiles(p *Partition) error {
	for _, s := range j.drop {
		if err := p.fs.Remove(filepath.Join(p.dir, snapshotName(s))); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("partition: remove snapshot: %w", err)
		}
	}
	return nil
}

// finishSnapshotLocked records a written snapshot.
func (p *Partition) finishSnapshotLocked(j *snapshotJob) {
	if j.inline {
		p.mu.inline, p.mu.inlineAt = j.data, j.offset
		p.mu.snapshots = slices.DeleteFunc(p.mu.snapshots, func(s int64) bool { return containsOffset(j.drop, s) })
		return
	}
	p.mu.inline, p.mu.inlineAt = nil, -1
	keep := p.mu.snapshots[:0]
	for _, s := range p.mu.snapshots {
		if s != j.offset && !containsOffset(j.drop, s) {
			keep = append(keep, s)
		}
	}
	p.mu.snapshots = append(keep, j.offset)
	sort.Slice(p.mu.snapshots, func(a, b int) bool { return p.mu.snapshots[a] < p.mu.snapshots[b] })
	if n := len(p.mu.snapshots); n > snapshotsKept {
		p.mu.snapshots = p.mu.snapshots[n-snapshotsKept:]
	}
}

func containsOffset(s []int64, v int64) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}
