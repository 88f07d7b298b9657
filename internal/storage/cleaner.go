package storage

import (
	"context"
	"log/slog"
	"time"

	"github.com/sluice-io/sluice/internal/partition"
)

// cleanerLoop is the log cleaner: every CleanerBackoff it compacts the
// dirtiest compacted partitions, one at a time, until none is cleanable.
// A failed pass is logged and retried at a later round; it latches the
// partition only when it left the files inconsistent (partition.Compact).
func (e *Engine) cleanerLoop() {
	defer e.bg.Done()
	t := time.NewTicker(e.opts.CleanerBackoff)
	defer t.Stop()
	for {
		select {
		case <-e.stop:
			return
		case <-t.C:
		}
		// A pass that stopped at a full key map leaves the partition
		// cleanable: go on at once, but at most once per partition per
		// round, so a failing one cannot spin.
		for i := len(e.Partitions()); i >= 0; i-- {
			if e.cleanerStopped() || !e.cleanDirtiest() {
				break
			}
		}
	}
}

func (e *Engine) cleanerStopped() bool {
	select {
	case <-e.stop:
		return true
	default:
		return false
	}
}

// cleanDirtiest compacts the partition with the highest dirty ratio among
// those cleanable now (a partition past max.compaction.lag.ms first) and
// reports whether there was one.
func (e *Engine) cleanDirtiest() bool {
	now := e.opts.Now()
	var best *partition.Partition
	bestScore := -1.0
	for _, p := range e.Partitions() {
		if !p.Config().Compact {
			continue
		}
		cs, err := p.CompactionState(now, e.durableBelow(p))
		if err != nil {
			e.log.Error("storage: compaction state", "partition", p.ID(), "err", err)
			continue
		}
		if !cs.Cleanable {
			continue
		}
		score := cs.Ratio
		if cs.Due {
			score += 1
		}
		if score > bestScore {
			best, bestScore = p, score
		}
	}
	if best == nil {
		return false
	}
	_, _ = e.compact(e.cleanCtx, best)
	return true
}

// durableBelow is the segment base the last durable checkpoint recorded
// for p: compaction may rewrite only segments below it.
func (e *Engine) durableBelow(p *partition.Partition) int64 {
	m := e.durable.Load()
	if m == nil {
		return 0
	}
	id := p.ID()
	return (*m)[partKey{id.TopicID, id.Partition}].SegmentBase
}

// Compact runs one compaction pass on p now, within the cleaner's memory
// and I/O budgets, whatever its dirty ratio (a partition whose
// cleanup.policy lacks compact is left alone). Only what a checkpoint has
// made durable is compacted: call Checkpoint first to include everything
// but the active segment.
func (e *Engine) Compact(p *partition.Partition) (partition.CompactStats, error) {
	return e.compact(e.cleanCtx, p)
}

func (e *Engine) compact(ctx context.Context, p *partition.Partition) (partition.CompactStats, error) {
	e.cleanMu.Lock()
	defer e.cleanMu.Unlock()
	opts := partition.CompactOptions{
		DurableBelow:      e.durableBelow(p),
		DedupeBufferBytes: e.opts.CleanerDedupeBufferBytes,
	}
	if rate := e.opts.CleanerIOBytesPerSecond; rate > 0 {
		opts.Throttle = newThrottle(rate).wait
	}
	st, err := p.Compact(ctx, e.opts.Now(), opts)
	if err != nil {
		e.stats.compactionFailures.Add(1)
		e.log.Error("storage: compaction failed; will retry", "partition", p.ID(), "err", err,
			"latched", p.Err() != nil)
		return st, err
	}
	if st.SegmentsBefore == 0 {
		return st, nil
	}
	e.stats.compactions.Add(1)
	e.stats.compactedBytes.Add(uint64(max(st.BytesBefore-st.BytesAfter, 0)))
	e.log.Log(context.Background(), slog.LevelInfo, "storage: compacted",
		"partition", p.ID(), "offsets", [2]int64{st.Start, st.End},
		"segments_before", st.SegmentsBefore, "segments_after", st.SegmentsAfter,
		"bytes_before", st.BytesBefore, "bytes_after", st.BytesAfter,
		"records_read", st.RecordsRead, "records_removed", st.RecordsRemoved,
		"tombstones_removed", st.TombstonesRemoved, "keyless_removed", st.KeylessRemoved,
		"map_full", st.MapFull, "duration", st.Duration)
	return st, nil
}

// throttle holds one compaction pass to rate bytes per second on average
// since the pass began.
type throttle struct {
	rate  int64
	start time.Time
	n     int64
}

func newThrottle(rate int64) *throttle { return &throttle{rate: rate, start: time.Now()} }

func (t *throttle) wait(ctx context.Context, n int64) error {
	t.n += n
	due := t.start.Add(time.Duration(float64(t.n) / float64(t.rate) * float64(time.Second)))
	d := time.Until(due)
	if d <= 0 {
		return ctx.Err()
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-timer.C:
		return nil
	}
}
