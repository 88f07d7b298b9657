package partition

import (
	"errors"
	"fmt"
	"time"

	"github.com/sluice-io/sluice/internal/segment"
)

// Dirty reports whether the partition has applied data, a log start
// change or a producer state that no flush covers yet.
func (p *Partition) Dirty() bool {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return p.mu.dirty || p.mu.dirDirty || p.mu.prodDirty
}

// Flush makes everything applied so far durable in the segment files
// (index tails written, log and indexes synced, the directory synced when
// segments came or went) and returns the state a checkpoint may record.
// Appends continue while it runs. A failed flush latches the partition.
func (p *Partition) Flush() (FlushState, error) {
	f, err := p.BeginFlush()
	if err != nil {
		return FlushState{}, err
	}
	return f.Finish(f.Run(true))
}

// PendingFlush is a flush in progress: BeginFlush captured what it covers,
// Run writes it, Finish records it. Between BeginFlush and Finish the
// partition cannot be flushed or truncated again; appends continue.
type PendingFlush struct {
	p        *Partition
	st       FlushState
	jobs     []*segment.FlushJob
	snap     *snapshotJob
	dirDirty bool
}

// BeginFlush captures the state a flush covers. The caller must call
// Finish, even after a failed Run.
func (p *Partition) BeginFlush() (*PendingFlush, error) {
	p.flushMu.Lock()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.mu.closed || p.mu.err != nil {
		err := p.mu.err
		if p.mu.closed {
			err = ErrClosed
		}
		p.flushMu.Unlock()
		return nil, err
	}
	act := p.activeLocked()
	f := &PendingFlush{p: p, st: FlushState{SegmentBase: act.Base(), Position: act.Size(), Next: p.mu.end, LogStart: p.mu.logStart, CleanedTo: p.mu.cleanedTo}}
	for _, s := range p.mu.segs {
		if j := s.PrepareFlush(); j != nil {
			f.jobs = append(f.jobs, j)
		}
	}
	f.snap = p.prepareSnapshotLocked()
	switch {
	case f.snap != nil && f.snap.inline:
		f.st.Producers = f.snap.data
	case f.snap == nil && p.mu.inlineAt == p.mu.end:
		f.st.Producers = p.mu.inline // unchanged since the last flush
	}
	f.dirDirty = p.mu.dirDirty
	p.mu.dirty, p.mu.dirDirty = false, false
	return f, nil
}

// Run writes the index tails and, with sync, fsyncs the segments and the
// directory. Without sync the caller makes the filesystem durable (syncfs)
// before Finish. It takes no partition lock.
func (f *PendingFlush) Run(sync bool) error {
	for _, j := range f.jobs {
		if err := j.Run(sync); err != nil {
			return err
		}
		f.dirDirty = f.dirDirty || j.Created
	}
	// The snapshot goes after the segments it describes are synced, so
	// a durable snapshot never runs ahead of the log.
	if f.snap != nil {
		if err := f.snap.run(f.p, sync); err != nil {
			return err
		}
		f.dirDirty = true
	}
	if sync && f.dirDirty {
		if err := f.p.fs.SyncDir(f.p.dir); err != nil {
			return fmt.Errorf("partition: sync dir %s: %w", f.p.dir, err)
		}
	}
	return nil
}

// Finish records the flush if err is nil and returns the state a
// checkpoint may record; a non-nil err latches the partition read-only.
func (f *PendingFlush) Finish(err error) (FlushState, error) {
	p := f.p
	defer p.flushMu.Unlock()
	p.mu.Lock()
	defer p.mu.Unlock()
	if err != nil {
		// Nothing this flush covered may be taken as durable: a later
		// checkpoint must not mistake the partition for clean.
		p.mu.dirty, p.mu.dirDirty = true, true
		p.mu.prodDirty = true
		return FlushState{}, p.failLocked(err)
	}
	for _, j := range f.jobs {
		j.Finish(p.env)
	}
	if f.snap != nil {
		p.finishSnapshotLocked(f.snap)
	}
	return f.st, nil
}

// EnforceRetention deletes flushed segments, oldest first, that lie wholly
// below the log start offset, are older than retention.ms, or push the
// partition over retention.bytes. The active segment is never deleted. It
// returns how many segments went.
func (p *Partition) EnforceRetention(now time.Time) (int, error) {
	// A compaction in progress holds segments it is rewriting; retention
	// tries again at its next round rather than wait for it.
	if !p.compactMu.TryLock() {
		return 0, nil
	}
	defer p.compactMu.Unlock()
	p.mu.Lock()
	cfg := p.mu.cfg
	var total int64
	for _, s := range p.mu.segs {
		total += s.Size()
	}
	var doomed []*segment.Segment
	for len(p.mu.segs) > 1 {
		s := p.mu.segs[0]
		if s.State() != segment.Flushed {
			break
		}
		below := s.Next() <= p.mu.logStart
		oversize := !cfg.NoDelete && cfg.RetentionBytes >= 0 && total-s.Size() >= cfg.RetentionBytes
		expired := false
		if !cfg.NoDelete && cfg.RetentionMs >= 0 && !below && !oversize {
			maxTS, err := s.LoadMaxTimestamp(p.env)
			if err != nil {
				p.mu.Unlock()
				return 0, err
			}
			expired = maxTS >= 0 && now.UnixMilli()-maxTS > cfg.RetentionMs.Milliseconds()
		}
		if !below && !oversize && !expired {
			break
		}
		doomed = append(doomed, s)
		total -= s.Size()
		p.mu.segs = p.mu.segs[1:]
	}
	if len(doomed) > 0 {
		if first := p.mu.segs[0].Base(); first > p.mu.logStart {
			p.mu.logStart = first
			p.notifyLocked()
		}
		p.mu.dirDirty = true
	}
	p.mu.Unlock()

	// Files go outside the lock; readers still sending from them hold
	// their own descriptors.
	var errs []error
	for _, s := range doomed {
		p.env.Indexes.Remove(s.IndexKey())
		if err := s.Remove(p.env.Files); err != nil {
			errs = append(errs, err)
		}
	}
	return len(doomed), errors.Join(errs...)
}

// TruncateTo removes every batch at or after offset (the batch holding
// offset goes whole), as a follower does when its leader's log diverges.
// The caller must have no appends in flight on this partition. The result
// is flushed before TruncateTo returns, so a checkpoint taken next may
// record it.
func (p *Partition) TruncateTo(offset int64) error {
	p.compactMu.Lock()
	defer p.compactMu.Unlock()
	p.flushMu.Lock()
	p.mu.Lock()
	if p.mu.err != nil {
		err := p.mu.err
		p.mu.Unlock()
		p.flushMu.Unlock()
		return err
	}
	if offset >= p.mu.end {
		p.mu.Unlock()
		p.flushMu.Unlock()
		return nil
	}
	if p.mu.next != p.mu.end {
		p.mu.Unlock()
		p.flushMu.Unlock()
		return fmt.Errorf("partition: truncate %s with appends in flight", p.id)
	}
	var doomed []*segment.Segment
	for len(p.mu.segs) > 1 && p.activeLocked().Base() >= offset {
		doomed = append(doomed, p.activeLocked())
		p.mu.segs = p.mu.segs[:len(p.mu.segs)-1]
	}
	act := p.activeLocked()
	// The aborted transactions that stay: those whose marker stays.
	var keep []AbortedTxn
	var keepErr error
	if act.Base() < offset {
		var ents []AbortedTxn
		ents, keepErr = act.AbortedTxns()
		for _, e := range ents {
			if e.LastOffset < offset {
				keep = append(keep, e)
			}
		}
	}
	var err error
	if act.Base() >= offset {
		// Everything goes: start an empty segment at offset. The old
		// files go first, since the new segment may have the same name.
		p.env.Indexes.Remove(act.IndexKey())
		if err = act.Remove(p.env.Files); err == nil {
			var seg *segment.Segment
			seg, err = segment.Create(p.fs, p.dir, offset, segment.Options{IndexIntervalBytes: p.mu.cfg.IndexIntervalBytes})
			if err == nil {
				p.mu.segs[len(p.mu.segs)-1] = seg
			}
		}
	} else if err = act.TruncateTo(p.env, offset); err == nil && act.Next() <= offset {
		act.SetAbortedTxns(keep)
	}
	if err == nil {
		err = p.reloadProducersLocked(keepErr != nil)
	}
	if err != nil {
		err = p.failLocked(err)
		p.mu.Unlock()
		p.flushMu.Unlock()
		return err
	}
	if p.mu.logStart > p.mu.end {
		p.mu.logStart = p.mu.end
	}
	p.mu.cleanedTo = min(p.mu.cleanedTo, p.mu.end)
	p.mu.created = p.now()
	p.mu.dirty, p.mu.dirDirty = true, true
	p.notifyLocked()
	p.mu.Unlock()
	for _, s := range doomed {
		p.env.Indexes.Remove(s.IndexKey())
		if err := s.Remove(p.env.Files); err != nil {
			p.flushMu.Unlock()
			return err
		}
	}
	p.flushMu.Unlock()
	_, err = p.Flush()
	return err
}

// reloadProducersLocked rebuilds the producer state after a truncation
// (Kafka's truncateAndReload): the snapshots above the new end go, and the
// state is loaded from the newest one left, scanning the log after it.
func (p *Partition) reloadProducersLocked(full bool) error {
	p.mu.end = p.activeLocked().Next()
	p.mu.next = p.mu.end
	names, err := p.fs.ReadDir(p.dir)
	if err != nil {
		return fmt.Errorf("partition: truncate %s: %w", p.id, err)
	}
	if err := p.removeSnapshotsAbove(names, p.mu.end); err != nil {
		return err
	}
	var inline []byte
	if p.mu.inlineAt >= 0 && p.mu.inlineAt <= p.mu.end {
		inline = p.mu.inline
	}
	_, err = p.loadProducersLocked(names, p.mu.end, full, inline)
	return err
}
