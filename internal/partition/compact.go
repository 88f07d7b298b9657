package partition

import (
	"context"
	"crypto/md5"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"path/filepath"
	"sort"
	"time"

	"github.com/sluice-io/sluice/internal/batch"
	"github.com/sluice-io/sluice/internal/segment"
	"github.com/sluice-io/sluice/internal/vfs"
)

var (
	// ErrDedupeBufferTooSmall is returned when the key map cannot hold
	// even the first dirty batch's keys.
	ErrDedupeBufferTooSmall = errors.New("partition: compaction dedupe buffer too small")
	errMapFull              = errors.New("map full")
)

// DefaultDedupeBufferBytes is log.cleaner.dedupe.buffer.size's default.
const DefaultDedupeBufferBytes = 128 << 20

// offsetMapEntryBytes is what one key of the compaction map is counted as:
// a 16-byte key hash and an 8-byte offset in a Go map, with its slack.
const offsetMapEntryBytes = 48

// CompactOptions bound one compaction pass.
type CompactOptions struct {
	// DurableBelow: only segments whose offsets all lie below it are
	// compacted. The engine passes the segment base its last durable
	// checkpoint recorded, so recovery opens compacted segments without
	// scanning them, never appends into one, and WAL replay (which skips
	// every batch below the log end) never needs their old contents.
	DurableBelow int64
	// DedupeBufferBytes bounds the key -> last offset map
	// (log.cleaner.dedupe.buffer.size); zero or less means
	// DefaultDedupeBufferBytes. When the map fills, the pass cleans up to
	// where it reached and the next pass goes on from there.
	DedupeBufferBytes int64
	// Throttle, if set, is told every byte the pass reads or writes and
	// may sleep to hold an I/O rate; an error aborts the pass.
	Throttle func(ctx context.Context, n int64) error
}

// CompactStats says what a compaction pass did.
type CompactStats struct {
	// Start and End bound the offsets rewritten: [Start, End). DirtyStart
	// is where the keys of the pass's map start (the log before it was
	// compacted by earlier passes).
	Start, End, DirtyStart int64
	// MapFull is set when the key map filled before the end of the
	// cleanable log: End is where it stopped.
	MapFull                           bool
	SegmentsBefore, SegmentsAfter     int
	BytesBefore, BytesAfter           int64
	BatchesRead                       int64
	RecordsRead, RecordsRemoved       int64
	TombstonesRemoved, KeylessRemoved int64
	Duration                          time.Duration
}

// CompactionState is how much of a partition a compaction pass would
// rewrite, for the cleaner to choose the dirtiest partition.
type CompactionState struct {
	// CleanBytes and DirtyBytes split the cleanable segments (see
	// Compact) into those already compacted and the rest.
	CleanBytes, DirtyBytes int64
	// Ratio is DirtyBytes / (CleanBytes + DirtyBytes).
	Ratio float64
	// Due is set when a dirty segment's newest record is older than
	// max.compaction.lag.ms.
	Due bool
	// Cleanable says a pass is worth running: something is dirty, and
	// the ratio is above min.cleanable.dirty.ratio or the pass is Due.
	Cleanable bool
}

// CompactionState reports how dirty the partition's cleanable log is.
func (p *Partition) CompactionState(now time.Time, durableBelow int64) (CompactionState, error) {
	var cs CompactionState
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.mu.closed || p.mu.err != nil || !p.mu.cfg.Compact {
		return cs, nil
	}
	segs, err := p.cleanableLocked(now, durableBelow)
	if err != nil {
		return cs, err
	}
	cfg := p.mu.cfg
	for _, s := range segs {
		if s.Next() <= p.mu.cleanedTo {
			cs.CleanBytes += s.Size()
			continue
		}
		cs.DirtyBytes += s.Size()
		if cfg.MaxCompactionLag > 0 && !cs.Due {
			// cleanableLocked loaded every max timestamp.
			ts := s.MaxTimestamp()
			cs.Due = ts >= 0 && now.UnixMilli()-ts > cfg.MaxCompactionLag.Milliseconds()
		}
	}
	if total := cs.CleanBytes + cs.DirtyBytes; total > 0 {
		cs.Ratio = float64(cs.DirtyBytes) / float64(total)
	}
	cs.Cleanable = cs.DirtyBytes > 0 && (cs.Ratio > cfg.MinCleanableDirtyRatio || cs.Due)
	return cs, nil
}

// cleanableLocked returns the segments a pass may rewrite, in order: past
// the log start, sealed and flushed, wholly below durableBelow, and with no
// record younger than min.compaction.lag.ms. The active segment never is.
func (p *Partition) cleanableLocked(now time.Time, durableBelow int64) ([]*segment.Segment, error) {
	var out []*segment.Segment
	lag := p.mu.cfg.MinCompactionLag
	for _, s := range p.mu.segs[:len(p.mu.segs)-1] {
		if s.Next() <= p.mu.logStart && len(out) == 0 {
			continue // retention deletes it
		}
		if s.State() != segment.Flushed || s.Next() > durableBelow || s.Size() == 0 {
			break
		}
		ts, err := s.LoadMaxTimestamp(p.env)
		if err != nil {
			return nil, err
		}
		if lag > 0 && ts > now.UnixMilli()-lag.Milliseconds() {
			break
		}
		out = append(out, s)
	}
	return out, nil
}

// Compact runs one compaction pass (cleanup.policy=compact), Kafka's log
// cleaner on one partition:
//
//   - It considers the cleanable segments (see CompactOptions.DurableBelow;
//     never the active one) and maps every key in their dirty part (not
//     compacted since the partition was opened) to its last offset, within
//     DedupeBufferBytes.
//   - It rewrites every cleanable segment up to where the map reached,
//     oldest first, merging neighbours up to segment.bytes. A record is
//     kept unless a later record has its key, it has no key (Kafka drops
//     those too), or it is a tombstone (null value) whose batch's max
//     timestamp is older than delete.retention.ms. Control batches are
//     kept whole. A thinned batch keeps its base and last offsets, its
//     records' offset and timestamp deltas, its header fields and its
//     codec (batch.Filter); a run of batches that lost every record
//     becomes one empty batch claiming their offsets (batch.Empty), so
//     batches stay contiguous. Offsets, the log end and the log start
//     never move.
//   - Each merged segment is written as .cleaned files, synced, renamed to
//     .swap (the commit point, after a directory sync), swapped in for
//     the old segments in memory, then the old files are removed and the
//     new ones take the plain names (docs/format/segment.md). Readers
//     holding the old files keep them.
//
// A failure before the commit point removes the output and leaves the
// partition as it was; a failure after it latches the partition read-only
// (the files are then a swap that recovery completes). Appends, reads and
// flushes continue throughout; retention skips the partition and
// TruncateTo waits.
func (p *Partition) Compact(ctx context.Context, now time.Time, opts CompactOptions) (CompactStats, error) {
	start := time.Now()
	var st CompactStats
	p.compactMu.Lock()
	defer p.compactMu.Unlock()
	p.mu.Lock()
	if err := p.usableLocked(); err != nil {
		p.mu.Unlock()
		return st, err
	}
	cfg := p.mu.cfg
	var segs []*segment.Segment
	var err error
	if cfg.Compact {
		segs, err = p.cleanableLocked(now, opts.DurableBelow)
	}
	cleanedTo := p.mu.cleanedTo
	p.mu.Unlock()
	if err != nil || len(segs) == 0 {
		return st, err
	}
	cleanEnd := segs[len(segs)-1].Next()
	dirty := max(cleanedTo, segs[0].Base())
	if dirty >= cleanEnd {
		return st, nil
	}
	st.DirtyStart = dirty
	m, mapEnd, err := p.buildOffsetMap(ctx, segs, dirty, cleanEnd, opts, &st)
	if err != nil {
		return st, fmt.Errorf("partition: compact %s: %w", p.id, err)
	}
	n := sort.Search(len(segs), func(i int) bool { return segs[i].Base() >= mapEnd })
	segs = segs[:n]
	st.Start, st.End, st.MapFull = segs[0].Base(), mapEnd, mapEnd < cleanEnd
	c := cleaner{p: p, ctx: ctx, m: m, mapEnd: mapEnd, opts: opts, st: &st,
		horizon: now.UnixMilli() - cfg.DeleteRetention.Milliseconds(),
		segOpts: segment.Options{IndexIntervalBytes: cfg.IndexIntervalBytes}}
	for _, g := range groupSegments(segs, cfg.SegmentBytes) {
		if err := c.cleanGroup(g); err != nil {
			return st, fmt.Errorf("partition: compact %s: %w", p.id, err)
		}
	}
	p.mu.Lock()
	if mapEnd > p.mu.cleanedTo {
		p.mu.cleanedTo = mapEnd
		// The next checkpoint records it (the compacted files are
		// already durable: cleanGroup synced them before the swap).
		p.mu.dirty = true
	}
	p.mu.Unlock()
	st.Duration = time.Since(start)
	return st, nil
}

func (p *Partition) usableLocked() error {
	if p.mu.closed {
		return ErrClosed
	}
	return p.mu.err
}

func (p *Partition) usable() error {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return p.usableLocked()
}

type keyHash [md5.Size]byte

// buildOffsetMap maps the hash of every key in [dirty, cleanEnd) to its
// last offset. It stops before the first batch that might not fit, and
// returns where it stopped (cleanEnd when everything fit). Kafka's map
// also holds 16-byte hashes: a collision, vanishingly unlikely, would drop
// the older of two keys' records.
func (p *Partition) buildOffsetMap(ctx context.Context, segs []*segment.Segment, dirty, cleanEnd int64, opts CompactOptions, st *CompactStats) (map[keyHash]int64, int64, error) {
	budget := opts.DedupeBufferBytes
	if budget <= 0 {
		budget = DefaultDedupeBufferBytes
	}
	maxKeys := budget / offsetMapEntryBytes
	m := make(map[keyHash]int64)
	mapEnd := cleanEnd
	for _, s := range segs {
		if s.Next() <= dirty {
			continue
		}
		if err := p.usable(); err != nil {
			return nil, 0, err
		}
		err := s.Batches(p.env, func(b []byte, h batch.Header) error {
			if err := throttle(ctx, opts, len(b)); err != nil {
				return err
			}
			if h.LastOffset() < dirty || h.Control() || h.NumRecords == 0 {
				return nil
			}
			if int64(len(m))+int64(h.NumRecords) > maxKeys {
				mapEnd = h.BaseOffset
				return errMapFull
			}
			return batch.Records(b, func(r *batch.Record) error {
				if off := h.BaseOffset + int64(r.OffsetDelta); off >= dirty && !r.KeyNull {
					m[md5.Sum(r.Key)] = off
				}
				return nil
			})
		})
		if errors.Is(err, errMapFull) {
			break
		}
		if err != nil {
			return nil, 0, err
		}
	}
	if mapEnd <= dirty {
		return nil, 0, fmt.Errorf("%w: %d bytes hold %d keys; the batch at %d has more", ErrDedupeBufferTooSmall, budget, maxKeys, dirty)
	}
	return m, mapEnd, nil
}

func throttle(ctx context.Context, opts CompactOptions, n int) error {
	if opts.Throttle != nil {
		return opts.Throttle(ctx, int64(n))
	}
	return ctx.Err()
}

// groupSegments splits segs into runs to merge into one segment each: at
// most segment.bytes of input, and offsets spanning less than 2^31 (the
// indexes' relative offsets).
func groupSegments(segs []*segment.Segment, maxBytes int64) [][]*segment.Segment {
	var groups [][]*segment.Segment
	for i := 0; i < len(segs); {
		size, j := segs[i].Size(), i+1
		for j < len(segs) && size+segs[j].Size() <= maxBytes && segs[j].Next()-segs[i].Base() < math.MaxInt32 {
			size += segs[j].Size()
			j++
		}
		groups = append(groups, segs[i:j])
		i = j
	}
	return groups
}

// cleaner is one pass's state.
type cleaner struct {
	p       *Partition
	ctx     context.Context
	m       map[keyHash]int64
	mapEnd  int64
	horizon int64 // tombstones in batches with an older max timestamp go
	opts    CompactOptions
	segOpts segment.Options
	st      *CompactStats

	out *segment.Segment
	// run is a stretch of batches that lost every record, written as one
	// empty batch before the next batch that keeps something.
	run struct {
		active     bool
		base, last int64
		epoch      int32
		maxTS      int64
	}
	removed int64 // records removed in the current group
}

func (c *cleaner) write(b []byte, h batch.Header) error {
	if err := throttle(c.ctx, c.opts, len(b)); err != nil {
		return err
	}
	return c.out.Append(b, h)
}

func (c *cleaner) flushRun() error {
	r := &c.run
	if !r.active {
		return nil
	}
	r.active = false
	// A segment spans less than 2^31 offsets, but a merged run may
	// not: split it.
	for base := r.base; base <= r.last; {
		last := min(r.last, base+math.MaxInt32)
		b := batch.Empty(base, int32(last-base), r.epoch, r.maxTS)
		h, err := batch.ParseHeader(b)
		if err != nil {
			return err
		}
		if err := c.write(b, h); err != nil {
			return err
		}
		base = last + 1
	}
	return nil
}

// filter is the per-batch decision; see Compact.
func (c *cleaner) filter(b []byte, h batch.Header) error {
	c.st.BatchesRead++
	c.st.RecordsRead += int64(h.NumRecords)
	if h.Control() || h.BaseOffset >= c.mapEnd {
		if err := c.flushRun(); err != nil {
			return err
		}
		return c.write(b, h)
	}
	expired := h.MaxTimestamp < c.horizon
	nb, kept, err := batch.Filter(b, func(r *batch.Record) bool {
		switch {
		case r.KeyNull:
			c.st.KeylessRemoved++
			return false
		case c.m[md5.Sum(r.Key)] > h.BaseOffset+int64(r.OffsetDelta):
			return false
		case r.ValueNull && expired:
			c.st.TombstonesRemoved++
			return false
		}
		return true
	})
	if err != nil {
		return fmt.Errorf("batch at offset %d: %w", h.BaseOffset, err)
	}
	gone := int64(h.NumRecords) - int64(kept)
	c.st.RecordsRemoved += gone
	c.removed += gone
	if nb == nil {
		r := &c.run
		if !r.active {
			r.active, r.base, r.maxTS = true, h.BaseOffset, h.MaxTimestamp
		}
		r.last, r.epoch, r.maxTS = h.LastOffset(), h.PartitionLeaderEpoch, max(r.maxTS, h.MaxTimestamp)
		return nil
	}
	if err := c.flushRun(); err != nil {
		return err
	}
	if kept < int(h.NumRecords) {
		if h, err = batch.ParseHeader(nb); err != nil {
			return err
		}
	}
	return c.write(nb, h)
}

// cleanGroup rewrites the segments g into one and swaps it in.
func (c *cleaner) cleanGroup(g []*segment.Segment) error {
	p := c.p
	// Compaction keeps offsets and control batches, so the merged
	// segment's aborted transactions are its inputs'.
	var aborted []AbortedTxn
	for _, s := range g {
		ents, err := p.abortedTxnsOf(s)
		if err != nil {
			return err
		}
		aborted = append(aborted, ents...)
	}
	out, err := segment.CreateTemp(p.fs, p.dir, g[0].Base(), c.segOpts)
	if err != nil {
		return err
	}
	out.SetAbortedTxns(aborted)
	c.out, c.removed, c.run.active = out, 0, false
	var before int64
	for _, s := range g {
		if err = p.usable(); err == nil {
			err = s.Batches(p.env, c.filter)
		}
		if err != nil {
			return c.abort(err)
		}
		before += s.Size()
	}
	if err := c.flushRun(); err != nil {
		return c.abort(err)
	}
	if c.removed == 0 && len(g) == 1 && out.Size() == g[0].Size() {
		// Nothing to gain: keep the segment as it is.
		return c.abort(nil)
	}
	if err := out.CommitTemp(); err != nil {
		return c.abort(err)
	}
	if err := p.fs.SyncDir(p.dir); err != nil {
		// The swap may or may not be durable: only a restart can
		// tell which segments recovery will find.
		err = fmt.Errorf("sync %s: %w", p.dir, err)
		_ = out.RemoveTemp()
		p.Fail(err)
		return err
	}
	// Committed: recovery now completes the swap whatever happens.
	p.mu.Lock()
	if p.mu.closed {
		p.mu.Unlock()
		out.Close()
		return ErrClosed
	}
	i := sort.Search(len(p.mu.segs), func(i int) bool { return p.mu.segs[i].Base() >= g[0].Base() })
	if i+len(g) > len(p.mu.segs) || p.mu.segs[i] != g[0] || p.mu.segs[i+len(g)-1] != g[len(g)-1] {
		// compactMu keeps every other change off sealed segments.
		err := p.failLocked(errors.New("compaction: segments changed during compaction"))
		p.mu.Unlock()
		return err
	}
	segs := make([]*segment.Segment, 0, len(p.mu.segs)-len(g)+1)
	segs = append(segs, p.mu.segs[:i]...)
	segs = append(segs, out)
	segs = append(segs, p.mu.segs[i+len(g):]...)
	p.mu.segs = segs
	for _, s := range g {
		p.env.Indexes.Remove(s.IndexKey())
	}
	p.mu.Unlock()

	// The old files go first and durably, so that no crash can leave
	// both them and the new segment under plain names.
	var errs []error
	for _, s := range g {
		if err := s.Remove(p.env.Files); err != nil {
			errs = append(errs, err)
		}
	}
	err = errors.Join(errs...)
	if err == nil {
		err = p.fs.SyncDir(p.dir)
	}
	if err == nil {
		err = out.InstallTemp()
	}
	if err == nil {
		err = p.fs.SyncDir(p.dir)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if err != nil {
		return p.failLocked(fmt.Errorf("compaction: install %s: %w", out.Path(segment.LogSuffix), err))
	}
	out.Settle(p.env)
	c.st.SegmentsBefore += len(g)
	c.st.SegmentsAfter++
	c.st.BytesBefore += before
	c.st.BytesAfter += out.Size()
	return nil
}

// abort discards the current output. If its files cannot be removed a
// committed-looking swap might survive to a restart, so the partition is
// latched.
func (c *cleaner) abort(err error) error {
	if rerr := c.out.RemoveTemp(); rerr != nil {
		c.p.Fail(fmt.Errorf("compaction: %w", rerr))
		return errors.Join(err, rerr)
	}
	return err
}

// finishCompaction runs at Open, before segments are listed: it removes
// every uncommitted compaction output (.cleaned) and stray index swap,
// and completes every committed swap: the segments whose base lies in the
// swap's range go, then the swap takes the plain name. It returns the
// directory's names afterwards.
func finishCompaction(fsys vfs.FS, dir string, names []string) ([]string, error) {
	var swaps []int64
	changed := false
	for _, n := range names {
		base, suf, tmp, ok := segment.ParseTempName(n)
		if !ok {
			continue
		}
		if tmp == segment.SwapSuffix && suf == segment.LogSuffix {
			swaps = append(swaps, base)
			continue
		}
		// An index swap is rebuilt from its log when needed.
		if err := fsys.Remove(filepath.Join(dir, n)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("partition: open %s: %w", dir, err)
		}
		changed = true
	}
	sort.Slice(swaps, func(i, j int) bool { return swaps[i] < swaps[j] })
	for _, b := range swaps {
		next, err := segment.RecoverSwap(fsys, dir, b)
		if err != nil {
			return nil, fmt.Errorf("partition: open %s: %w", dir, err)
		}
		for _, n := range names {
			if base, _, ok := segment.ParseName(n); ok && base >= b && base < next {
				if err := fsys.Remove(filepath.Join(dir, n)); err != nil && !errors.Is(err, fs.ErrNotExist) {
					return nil, fmt.Errorf("partition: open %s: %w", dir, err)
				}
			}
		}
		if err := fsys.SyncDir(dir); err != nil {
			return nil, fmt.Errorf("partition: open %s: %w", dir, err)
		}
		log := filepath.Join(dir, segment.Name(b)+segment.LogSuffix)
		if err := fsys.Rename(log+segment.SwapSuffix, log); err != nil {
			return nil, fmt.Errorf("partition: open %s: %w", dir, err)
		}
		changed = true
	}
	if !changed {
		return names, nil
	}
	if err := fsys.SyncDir(dir); err != nil {
		return nil, fmt.Errorf("partition: open %s: %w", dir, err)
	}
	names, err := fsys.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("partition: open %s: %w", dir, err)
	}
	return names, nil
}
