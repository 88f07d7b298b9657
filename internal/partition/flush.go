package partition

import (
	"errors"
	"fmt"
	"time"

	"github.com/sluice-io/sluice/internal/segment"
)

// Dirty reports whether the partition has applied data or a log start
// change that no flush covers yet.
func (p *Partition) Dirty() bool {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return p.mu.dirty || p.mu.dirDirty
}

// Flush makes everything applied so far durable in the segment files
// (index tails written, log and indexes synced, the directory synced when
// segments came or went) and returns the state a checkpoint may record.
// Appends continue while it runs. A failed flush latches the partition.
func (p *Partition) Flush() (FlushState, error) {
	p.flushMu.Lock()
	defer p.flushMu.Unlock()

	p.mu.Lock()
	if p.mu.closed {
		p.mu.Unlock()
		return FlushState{}, ErrClosed
	}
	if p.mu.err != nil {
		err := p.mu.err
		p.mu.Unlock()
		return FlushState{}, err
	}
	act := p.activeLocked()
	st := FlushState{SegmentBase: act.Base(), Position: act.Size(), Next: p.mu.end, LogStart: p.mu.logStart}
	var jobs []*segment.FlushJob
	for _, s := range p.mu.segs {
		if j := s.PrepareFlush(); j != nil {
			jobs = append(jobs, j)
		}
	}
	dirDirty := p.mu.dirDirty
	p.mu.dirty, p.mu.dirDirty = false, false
	p.mu.Unlock()

	var err error
	for _, j := range jobs {
		if err = j.Run(); err != nil {
			break
		}
		dirDirty = dirDirty || j.Created
	}
	if err == nil && dirDirty {
		if err = p.fs.SyncDir(p.dir); err != nil {
			err = fmt.Errorf("partition: sync dir %s: %w", p.dir, err)
		}
	}

	p.mu.Lock()
	defer p.mu.Unlock()
	if err != nil {
		return FlushState{}, p.failLocked(err)
	}
	for _, j := range jobs {
		j.Finish(p.env)
	}
	return st, nil
}

// EnforceRetention deletes flushed segments, oldest first, that lie wholly
// below the log start offset, are older than retention.ms, or push the
// partition over retention.bytes. The active segment is never deleted. It
// returns how many segments went.
func (p *Partition) EnforceRetention(now time.Time) (int, error) {
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
		oversize := cfg.RetentionBytes >= 0 && total-s.Size() >= cfg.RetentionBytes
		expired := false
		if cfg.RetentionMs >= 0 && !below && !oversize {
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
	} else {
		err = act.TruncateTo(p.env, offset)
	}
	if err != nil {
		err = p.failLocked(err)
		p.mu.Unlock()
		p.flushMu.Unlock()
		return err
	}
	p.mu.end = p.activeLocked().Next()
	p.mu.next = p.mu.end
	if p.mu.logStart > p.mu.end {
		p.mu.logStart = p.mu.end
	}
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
