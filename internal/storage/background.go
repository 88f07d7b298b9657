package storage

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/sluice-io/sluice/internal/partition"
	"github.com/sluice-io/sluice/internal/vfs"
	"github.com/sluice-io/sluice/internal/wal"
)

func (e *Engine) kickCheckpoint() {
	select {
	case e.kick <- struct{}{}:
	default:
	}
}

func (e *Engine) checkpointLoop() {
	defer e.bg.Done()
	t := time.NewTicker(e.opts.CheckpointInterval)
	defer t.Stop()
	for {
		select {
		case <-e.stop:
			return
		case <-e.kick:
		case <-t.C:
		}
		if err := e.checkpoint(true); err != nil {
			e.log.Error("storage: checkpoint failed", "err", err)
		}
		// Appends that crossed the threshold while that checkpoint ran
		// kicked again; it covered them unless the WAL has since grown
		// by another CheckpointBytes.
		if e.applied.Load()-e.checkpointed.Load() < uint64(e.opts.CheckpointBytes) {
			select {
			case <-e.kick:
			default:
			}
		}
	}
}

func (e *Engine) retentionLoop() {
	defer e.bg.Done()
	t := time.NewTicker(e.opts.RetentionCheckInterval)
	defer t.Stop()
	for {
		select {
		case <-e.stop:
			return
		case <-t.C:
		}
		e.EnforceRetention()
	}
}

// EnforceRetention applies every partition's retention now.
func (e *Engine) EnforceRetention() int {
	now := e.opts.Now()
	total := 0
	for _, p := range e.Partitions() {
		n, err := p.EnforceRetention(now)
		if err != nil {
			e.log.Error("storage: retention", "partition", p.ID(), "err", err)
		}
		if n > 0 {
			e.log.Info("storage: segments deleted by retention", "partition", p.ID(), "segments", n)
		}
		total += n
	}
	e.stats.retentionDeleted.Add(uint64(total))
	return total
}

// Checkpoint flushes every changed partition and records a checkpoint, then
// trims the WAL below it.
func (e *Engine) Checkpoint() error { return e.checkpoint(true) }

func (e *Engine) checkpoint(trim bool) error {
	e.cpMu.Lock()
	defer e.cpMu.Unlock()
	start := time.Now()
	// Everything up to lsn is applied; flushes begun after this point
	// cover at least that much.
	lsn := e.applied.Load()
	parts := e.Partitions()
	states := make([]partition.FlushState, len(parts))
	var dirty []int
	defer func() {
		if len(dirty) == 0 {
			return
		}
		lvl := slog.LevelDebug
		if d := time.Since(start); d > time.Second {
			lvl = slog.LevelWarn // a slow checkpoint delays WAL trimming
		}
		e.log.Log(context.Background(), lvl, "storage: checkpoint", "wal_position", lsn, "partitions_flushed", len(dirty), "duration", time.Since(start))
	}()
	for i, p := range parts {
		id := p.ID()
		if err := p.Err(); err != nil {
			// A latched partition holds applied data its segments may
			// lack; only the WAL still has it, so the WAL must not be
			// trimmed until a restart replays it.
			return fmt.Errorf("storage: checkpoint blocked: %w", err)
		}
		if st, ok := e.lastCP[partKey{id.TopicID, id.Partition}]; ok && !p.Dirty() {
			states[i] = st
			continue
		}
		dirty = append(dirty, i)
	}
	if len(dirty) == 0 && lsn == e.checkpointed.Load() {
		return nil // nothing happened since the last checkpoint
	}
	// With many partitions to flush, one syncfs replaces an fsync per
	// file: per-file fsyncs each commit the filesystem journal and queue
	// up behind one another and behind the WAL's own fsync.
	syncer, bulk := e.opts.FS.(vfs.SyncFSer)
	bulk = bulk && e.opts.SyncFSMinPartitions > 0 && len(dirty) >= e.opts.SyncFSMinPartitions
	flushes := make([]*partition.PendingFlush, len(parts))
	errs := make([]error, len(parts))
	e.parallel(dirty, func(i int) {
		flushes[i], errs[i] = parts[i].BeginFlush()
		if errs[i] == nil {
			errs[i] = flushes[i].Run(!bulk)
		}
	})
	var syncErr error
	if bulk {
		syncErr = syncer.SyncFS(e.opts.Dir)
	}
	gone := make([]bool, len(parts))
	for _, i := range dirty {
		if flushes[i] == nil {
			// Closed since the list was taken: its topic is being
			// deleted, and a checkpoint without it is what the next
			// start must see.
			if errors.Is(errs[i], partition.ErrClosed) {
				gone[i], errs[i] = true, nil
			}
			continue
		}
		err := errs[i]
		if err == nil {
			err = syncErr
		}
		states[i], errs[i] = flushes[i].Finish(err)
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	cp := checkpoint{lsn: lsn, parts: make(map[partKey]partition.FlushState, len(parts))}
	for i, p := range parts {
		if gone[i] {
			continue
		}
		id := p.ID()
		cp.parts[partKey{id.TopicID, id.Partition}] = states[i]
	}
	if err := writeCheckpoint(e.opts.FS, e.opts.Dir, cp); err != nil {
		return err
	}
	e.lastCP = cp.parts
	e.durable.Store(&cp.parts)
	e.checkpointed.Store(lsn)
	e.stats.checkpoints.Add(1)
	if trim {
		if err := e.wal.Trim(wal.LSN(lsn)); err != nil && !errors.Is(err, wal.ErrClosed) {
			return err
		}
	}
	return nil
}

// parallel runs fn for each of items on FlushParallelism goroutines.
func (e *Engine) parallel(items []int, fn func(i int)) {
	work := make(chan int)
	var wg sync.WaitGroup
	for w := 0; w < min(e.opts.FlushParallelism, len(items)); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				fn(i)
			}
		}()
	}
	for _, i := range items {
		work <- i
	}
	close(work)
	wg.Wait()
}
