package storage

import (
	"errors"
	"sync"
	"time"

	"github.com/sluice-io/sluice/internal/partition"
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
	// Everything up to lsn is applied; flushes taken after this point
	// cover at least that much.
	lsn := e.applied.Load()
	parts := e.Partitions()
	states := make([]partition.FlushState, len(parts))
	errs := make([]error, len(parts))
	work := make(chan int)
	var wg sync.WaitGroup
	for w := 0; w < e.opts.FlushParallelism; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				states[i], errs[i] = e.flushPartition(parts[i])
			}
		}()
	}
	for i := range parts {
		work <- i
	}
	close(work)
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	cp := checkpoint{lsn: lsn, parts: make(map[partKey]partition.FlushState, len(parts))}
	for i, p := range parts {
		id := p.ID()
		cp.parts[partKey{id.TopicID, id.Partition}] = states[i]
	}
	if err := writeCheckpoint(e.opts.FS, e.opts.Dir, cp); err != nil {
		return err
	}
	e.lastCP = cp.parts
	e.checkpointed.Store(lsn)
	e.stats.checkpoints.Add(1)
	if trim {
		if err := e.wal.Trim(wal.LSN(lsn)); err != nil && !errors.Is(err, wal.ErrClosed) {
			return err
		}
	}
	return nil
}

// flushPartition flushes p if it changed since the last checkpoint and
// returns its state; an unchanged partition keeps the state recorded last.
func (e *Engine) flushPartition(p *partition.Partition) (partition.FlushState, error) {
	id := p.ID()
	if st, ok := e.lastCP[partKey{id.TopicID, id.Partition}]; ok && !p.Dirty() {
		return st, nil
	}
	return p.Flush()
}
