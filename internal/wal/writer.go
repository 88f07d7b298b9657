package wal

import (
	"fmt"
	"time"

	"github.com/sluice-io/sluice/internal/vfs"
)

// writeLoop is the writer goroutine: take everything pending, write it,
// sync it, hand it to the completer, repeat. Appends that arrive during a
// write and sync gather in the other buffer and share the next sync.
func (w *WAL) writeLoop() {
	defer close(w.writerDone)
	defer close(w.comp)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		b, err, ok := w.nextBatch(timer)
		if !ok {
			return
		}
		if err == nil {
			start := time.Now()
			if werr := w.writeBatch(b); werr != nil {
				err = w.fail(werr)
			} else {
				w.synced(b, time.Since(start))
			}
		}
		w.complete(b, err)
		b.buf, b.segs, b.nrec, b.end = b.buf[:0], b.segs[:0], 0, 0
		w.spare = b
	}
}

// nextBatch waits for work and takes the pending batch, leaving the
// spare in its place. err is the latched failure, if any: the batch is
// then not written. ok is false once the WAL is closing and nothing is
// pending.
func (w *WAL) nextBatch(timer *time.Timer) (b *batch, err error, ok bool) {
	for {
		w.mu.Lock()
		if w.mu.pending.nrec > 0 {
			ready := w.opts.SyncDelay == 0 || w.mu.closed || w.mu.err != nil ||
				w.mu.pendingBytes >= w.opts.SyncBytes
			var wait time.Duration
			if !ready {
				wait = w.opts.SyncDelay - time.Since(w.mu.firstPendingAt)
				ready = wait <= 0
			}
			if ready {
				b = w.mu.pending
				w.mu.pending, w.spare = w.spare, nil
				w.mu.pendingBytes = 0
				w.releaseSpaceLocked()
				err = w.mu.err
				w.mu.Unlock()
				return b, err, true
			}
			w.mu.Unlock()
			timer.Reset(wait)
			select {
			case <-timer.C:
			case <-w.wake:
				timer.Stop()
			case <-w.closing:
				timer.Stop()
			}
			continue
		}
		closed := w.mu.closed
		w.mu.Unlock()
		if closed {
			return nil, nil, false
		}
		select {
		case <-w.wake:
		case <-w.closing:
		}
	}
}

// writeBatch writes each file's piece with one WriteAt and syncs it. A
// file is synced before the next one is written, so that a durable header
// in file N+1 implies file N is complete: recovery relies on it.
func (w *WAL) writeBatch(b *batch) error {
	for _, s := range b.segs {
		f, err := w.fileFor(s.seq)
		if err != nil {
			return err
		}
		if _, err := f.WriteAt(b.buf[s.lo:s.hi], s.off); err != nil {
			return fmt.Errorf("write %s at %d: %w", f.Name(), s.off, err)
		}
		if err := f.Sync(); err != nil {
			return fmt.Errorf("sync %s: %w", f.Name(), err)
		}
	}
	return nil
}

// fileFor returns the open file seq, rotating to the prepared file when
// the batch has moved on.
func (w *WAL) fileFor(seq uint64) (vfs.File, error) {
	if seq == w.cur.seq {
		return w.cur.f, nil
	}
	var pf preparedFile
	select {
	case pf = <-w.prepared:
	default:
		// The preparer is behind: this wait stalls every append.
		start := time.Now()
		pf = <-w.prepared
		w.stats.rotationWaits.Add(1)
		w.stats.rotationWaitNanos.Add(int64(time.Since(start)))
	}
	if pf.err != nil {
		return nil, fmt.Errorf("prepare file %d: %w", pf.seq, pf.err)
	}
	if pf.seq != seq {
		// The append path and the preparer both step seq by one.
		panic(fmt.Sprintf("wal: prepared file %d, want %d", pf.seq, seq))
	}
	if err := w.cur.f.Close(); err != nil {
		// Its data is synced; a failed close loses nothing.
		w.log.Warn("wal: close", "path", w.cur.f.Name(), "err", err)
	}
	w.cur.seq, w.cur.f = seq, pf.f
	w.prepReq <- seq + uint64(w.opts.PrepareAhead)
	w.stats.rotations.Add(1)
	w.log.Debug("wal: rotated", "path", pf.f.Name())
	return pf.f, nil
}

func (w *WAL) synced(b *batch, d time.Duration) {
	w.durable.Store(uint64(b.end))
	w.headerSeq.Store(b.segs[len(b.segs)-1].seq)
	w.stats.syncs.Add(1)
	w.stats.records.Add(uint64(b.nrec))
	w.stats.bytes.Add(uint64(len(b.buf)))
	w.stats.syncNanos.Add(int64(d))
	if int64(d) > w.stats.syncMaxNanos.Load() {
		w.stats.syncMaxNanos.Store(int64(d)) // only the writer stores it
	}
	if w.opts.OnSync != nil {
		w.opts.OnSync(len(b.buf), b.nrec, d)
	}
}

// complete hands b's callbacks to the completer, giving b a recycled
// callback slice so that b can be refilled at once.
func (w *WAL) complete(b *batch, err error) {
	if len(b.recs) == 0 {
		return
	}
	recs := b.recs
	select {
	case b.recs = <-w.recsFree:
	default:
		b.recs = nil
	}
	w.comp <- doneBatch{recs: recs, err: err}
}

// completeLoop is the completer goroutine.
func (w *WAL) completeLoop() {
	defer close(w.completerDone)
	for db := range w.comp {
		for _, c := range db.recs {
			c.done(c.end, db.err)
		}
		clear(db.recs) // drop the callbacks' references
		select {
		case w.recsFree <- db.recs[:0]:
		default:
		}
	}
}
