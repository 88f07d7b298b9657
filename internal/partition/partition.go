// Package partition is one partition's log: an ordered list of segments,
// the offsets that bound it (log start, next offset to assign, the end
// visible to readers), segment rolling, retention and truncation.
//
// It knows nothing of the WAL or the network. Appends come in two steps so
// that the storage engine can put a write-ahead log in between: Append
// validates a batch, assigns its offsets and hands it to an enqueue
// function under the partition's lock (so WAL order is offset order); Apply
// writes it into the active segment once the WAL has made it durable, and
// only then do readers see it.
//
// Batches from idempotent and transactional producers (producer id >= 0)
// are checked against the partition's producer state under the same lock
// that assigns their offsets (see producers.go); a duplicate is refused
// with a *producer.DuplicateError naming the original's offsets.
//
// A Partition is safe for concurrent use. Lock order: compactMu,
// txnRebuildMu, flushMu, then mu.
// Apply is called from one goroutine at a time (the WAL's completion
// goroutine, or recovery).
package partition

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sort"
	"sync"
	"time"

	"github.com/sluice-io/sluice/internal/batch"
	"github.com/sluice-io/sluice/internal/producer"
	"github.com/sluice-io/sluice/internal/segment"
	"github.com/sluice-io/sluice/internal/vfs"
)

var (
	// ErrOffsetOutOfRange is returned for reads outside [log start, end].
	ErrOffsetOutOfRange = errors.New("partition: offset out of range")
	// ErrTooLarge is returned for a batch above max.message.bytes.
	ErrTooLarge = errors.New("partition: batch too large")
	// ErrFailed wraps the error that latched a partition read-only.
	ErrFailed = errors.New("partition: failed")
	// ErrClosed is returned after Close or Delete.
	ErrClosed = errors.New("partition: closed")
	// ErrGap is returned when recovery finds a batch past the end.
	ErrGap = errors.New("partition: offset gap")
)

// TimestampType is message.timestamp.type.
type TimestampType uint8

const (
	CreateTime TimestampType = iota
	LogAppendTime
)

// Config holds the per-topic tunables, under Kafka's names.
type Config struct {
	SegmentBytes       int64         // segment.bytes
	SegmentMs          time.Duration // segment.ms
	RetentionMs        time.Duration // retention.ms; negative means forever
	RetentionBytes     int64         // retention.bytes; negative means no limit
	IndexIntervalBytes int64         // index.interval.bytes
	MaxMessageBytes    int           // max.message.bytes
	TimestampType      TimestampType // message.timestamp.type

	// Compact is set when cleanup.policy includes compact: the
	// background cleaner keeps the last record of every key (Compact).
	Compact bool
	// NoDelete is set when cleanup.policy lacks delete (compact alone):
	// retention.ms and retention.bytes then delete nothing, as in Kafka;
	// segments wholly below the log start offset still go.
	NoDelete bool
	// DeleteRetention is delete.retention.ms: how long compaction keeps a
	// tombstone (see Compact for the rule).
	DeleteRetention time.Duration
	// MinCleanableDirtyRatio is min.cleanable.dirty.ratio: the share of
	// the cleanable log not yet compacted above which the cleaner picks
	// the partition.
	MinCleanableDirtyRatio float64
	// MinCompactionLag is min.compaction.lag.ms: segments holding a record
	// younger than this are not compacted yet.
	MinCompactionLag time.Duration
	// MaxCompactionLag is max.compaction.lag.ms: a partition with a dirty
	// segment whose records are all older than this is compacted whatever
	// its dirty ratio. Zero or negative means no limit.
	MaxCompactionLag time.Duration
}

// DefaultConfig returns Kafka's defaults.
func DefaultConfig() Config {
	return Config{
		SegmentBytes:       1 << 30,
		SegmentMs:          7 * 24 * time.Hour,
		RetentionMs:        7 * 24 * time.Hour,
		RetentionBytes:     -1,
		IndexIntervalBytes: 4096,
		MaxMessageBytes:    1048588,
		TimestampType:      CreateTime,

		DeleteRetention:        24 * time.Hour,
		MinCleanableDirtyRatio: 0.5,
		MaxCompactionLag:       math.MaxInt64,
	}
}

// Validate reports every problem with c.
func (c Config) Validate() error {
	var errs []error
	if c.SegmentBytes < 14 || c.SegmentBytes > segment.MaxBytes {
		errs = append(errs, fmt.Errorf("segment.bytes %d outside [14, %d]", c.SegmentBytes, int64(segment.MaxBytes)))
	}
	if c.SegmentMs < time.Millisecond {
		errs = append(errs, fmt.Errorf("segment.ms %v below 1ms", c.SegmentMs))
	}
	if c.IndexIntervalBytes < 0 {
		errs = append(errs, fmt.Errorf("index.interval.bytes %d negative", c.IndexIntervalBytes))
	}
	if c.MaxMessageBytes < 0 {
		errs = append(errs, fmt.Errorf("max.message.bytes %d negative", c.MaxMessageBytes))
	}
	if c.DeleteRetention < 0 {
		errs = append(errs, fmt.Errorf("delete.retention.ms %v negative", c.DeleteRetention))
	}
	if !(c.MinCleanableDirtyRatio >= 0 && c.MinCleanableDirtyRatio <= 1) {
		errs = append(errs, fmt.Errorf("min.cleanable.dirty.ratio %v outside [0, 1]", c.MinCleanableDirtyRatio))
	}
	if c.MinCompactionLag < 0 {
		errs = append(errs, fmt.Errorf("min.compaction.lag.ms %v negative", c.MinCompactionLag))
	}
	return errors.Join(errs...)
}

// ID names a partition.
type ID struct {
	Topic     string
	TopicID   [16]byte
	Partition int32
}

func (id ID) String() string { return fmt.Sprintf("%s-%d", id.Topic, id.Partition) }

// FlushState is what a checkpoint records of a partition: everything in
// segments before SegmentBase, and the first Position bytes of that
// segment, are durable; Next is the offset after them.
type FlushState struct {
	SegmentBase int64
	Position    int64
	Next        int64
	LogStart    int64
	// CleanedTo is where the dirty (not yet compacted) part of a
	// compacted log starts, so a restart does not compact it all again.
	CleanedTo int64
	// Producers is the producer-state snapshot at Next (the snapshot
	// file's encoding, docs/format/producer.md) when it is small enough
	// to travel in the checkpoint (InlineSnapshotBytesMax); nil when the
	// state is in a snapshot file instead. The caller must not modify it.
	Producers []byte
}

// Partition is one partition's log.
type Partition struct {
	id  ID
	dir string
	fs  vfs.FS
	env *segment.Env
	now func() time.Time
	log *slog.Logger

	prodOpts producer.Options

	// compactMu serialises Compact with TruncateTo and retention, the
	// other changes to sealed segments. Lock order: compactMu, flushMu, mu.
	compactMu sync.Mutex
	flushMu   sync.Mutex // serialises Flush and TruncateTo
	// txnRebuildMu serialises rebuilds of lost transaction indexes.
	txnRebuildMu sync.Mutex
	mu           struct {
		sync.RWMutex
		cfg      Config
		segs     []*segment.Segment // ordered by base; the last is active
		created  time.Time          // when the active segment was created, for segment.ms
		next     int64              // next offset to assign
		end      int64              // offsets below end are applied and readable
		logStart int64
		dirty    bool  // applied data not yet flushed
		dirDirty bool  // directory entries not yet synced
		err      error // latched: the partition is read-only
		closed   bool
		changed  chan struct{} // closed and replaced when end or logStart moves
		// cleanedTo is where the dirty (not yet compacted) log starts.
		// Checkpoints record it (FlushState.CleanedTo), so a restart
		// does not compact the whole log again.
		cleanedTo int64

		// producers is the producer state of the readable log (below
		// end); pending that of producers with batches in flight, and
		// pendingNew how many of those the state does not know yet.
		producers  *producer.State
		pending    map[int64]*pendingProducer
		pendingNew int
		// prodDirty: the state changed since the last snapshot;
		// snapshots are the offsets of the snapshot files, ascending.
		prodDirty bool
		snapshots []int64
		// inline is the last snapshot a flush put in its FlushState,
		// taken at inlineAt (-1: none since the last file snapshot).
		inline   []byte
		inlineAt int64
	}
}

// ID returns the partition's name.
func (p *Partition) ID() ID { return p.id }

// Dir returns the partition's directory.
func (p *Partition) Dir() string { return p.dir }

// Config returns the current tunables.
func (p *Partition) Config() Config {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return p.mu.cfg
}

// SetConfig changes the tunables; they apply from the next append.
func (p *Partition) SetConfig(c Config) error {
	if err := c.Validate(); err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.mu.cfg = c
	return nil
}

// Offsets returns the log start offset and the end (the high watermark on
// a single node: the offset after the last readable batch).
func (p *Partition) Offsets() (logStart, end int64) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return p.mu.logStart, p.mu.end
}

// Next returns the next offset to be assigned.
func (p *Partition) Next() int64 {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return p.mu.next
}

// Changed returns a channel closed when the end or the log start moves.
func (p *Partition) Changed() <-chan struct{} {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return p.mu.changed
}

// Err returns the error that latched the partition, if any.
func (p *Partition) Err() error {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return p.mu.err
}

func (p *Partition) notifyLocked() {
	close(p.mu.changed)
	p.mu.changed = make(chan struct{})
}

func (p *Partition) failLocked(err error) error {
	if p.mu.err == nil {
		p.mu.err = fmt.Errorf("%w: %s: %w", ErrFailed, p.id, err)
	}
	return p.mu.err
}

// Append validates one batch b (the exact bytes a client sent), assigns it
// the next offsets in place and calls enqueue with the base offset while
// holding the partition's lock, so that enqueue order is offset order. If
// enqueue fails, the offsets are given back. b must stay unmodified until
// Apply.
//
// A batch with a producer id is first checked against the producer's state
// including its batches still in flight: a retry of a batch the log holds
// or will hold returns a *producer.DuplicateError with the original's
// offsets and appends nothing (the caller answers with those offsets once
// End passes the last one: wait on Changed), and a batch breaking the
// producer's sequence, epoch or transaction returns the producer package's
// error. Control batches (transaction markers, which the broker builds for
// the coordinator) are accepted here; refusing them from clients is the
// broker's job.
func (p *Partition) Append(b []byte, now time.Time, enqueue func(base int64) error) (batch.Header, error) {
	p.mu.RLock()
	maxBytes, tsType := p.mu.cfg.MaxMessageBytes, p.mu.cfg.TimestampType
	p.mu.RUnlock()
	if maxBytes > 0 && len(b) > maxBytes {
		return batch.Header{}, fmt.Errorf("%w: %d bytes, max.message.bytes is %d", ErrTooLarge, len(b), maxBytes)
	}
	h, err := batch.Validate(b)
	if err != nil {
		return h, err
	}
	if tsType == LogAppendTime {
		batch.SetMaxTimestampLogAppendTime(b, now.UnixMilli())
		h.MaxTimestamp = now.UnixMilli()
	}
	var pb producer.Batch
	idempotent := h.ProducerID >= 0
	if idempotent {
		if pb, err = producer.FromBatch(b, h); err != nil {
			return h, err
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.mu.closed {
		return h, ErrClosed
	}
	if p.mu.err != nil {
		return h, p.mu.err
	}
	var cur *producer.Entry
	if idempotent {
		if cur, err = p.checkProducerLocked(pb, now); err != nil {
			return h, err
		}
	}
	base := p.mu.next
	batch.SetBaseOffset(b, base)
	h.BaseOffset = base
	if err := enqueue(base); err != nil {
		return h, err
	}
	p.mu.next = h.LastOffset() + 1
	if idempotent {
		pb.BaseOffset = base
		p.pendLocked(cur, pb)
	}
	return h, nil
}

// Apply writes a batch that Append assigned (and the WAL made durable) into
// the active segment and makes it readable. Calls come in offset order.
func (p *Partition) Apply(b []byte) error {
	h, err := batch.ParseHeader(b)
	if err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.mu.closed {
		return ErrClosed
	}
	if p.mu.err != nil {
		return p.mu.err
	}
	if err := p.applyLocked(b, h); err != nil {
		return p.failLocked(err)
	}
	return nil
}

func (p *Partition) applyLocked(b []byte, h batch.Header) error {
	if h.BaseOffset != p.mu.end {
		return fmt.Errorf("%w: batch at %d, log ends at %d", ErrGap, h.BaseOffset, p.mu.end)
	}
	if err := p.maybeRollLocked(int64(len(b)), h); err != nil {
		return err
	}
	if err := p.activeLocked().Append(b, h); err != nil {
		return err
	}
	if h.ProducerID >= 0 {
		p.applyProducerLocked(b, h)
	}
	p.mu.end = h.LastOffset() + 1
	if p.mu.next < p.mu.end {
		p.mu.next = p.mu.end
	}
	p.mu.dirty = true
	p.notifyLocked()
	return nil
}

func (p *Partition) activeLocked() *segment.Segment { return p.mu.segs[len(p.mu.segs)-1] }

// maybeRollLocked starts a new segment when the batch would overflow
// segment.bytes, segment.ms has passed, or relative offsets would overflow.
func (p *Partition) maybeRollLocked(n int64, h batch.Header) error {
	act := p.activeLocked()
	if act.Size() == 0 {
		return nil
	}
	cfg := p.mu.cfg
	full := act.Size()+n > cfg.SegmentBytes || act.Size()+n > segment.MaxBytes
	old := p.now().Sub(p.mu.created) >= cfg.SegmentMs
	wide := h.LastOffset()-act.Base() > 1<<31
	if !full && !old && !wide {
		return nil
	}
	seg, err := segment.Create(p.fs, p.dir, h.BaseOffset, segment.Options{IndexIntervalBytes: cfg.IndexIntervalBytes})
	if err != nil {
		return err
	}
	act.Seal()
	// A roll happens once per segment.bytes or segment.ms, so logging
	// under the lock costs the append path nothing measurable.
	reason := "segment.bytes"
	switch {
	case full:
	case old:
		reason = "segment.ms"
	default:
		reason = "offset range"
	}
	p.log.Info("partition: segment rolled", "partition", p.id.String(), "sealed_base", act.Base(),
		"sealed_bytes", act.Size(), "new_base", h.BaseOffset, "reason", reason)
	p.mu.segs = append(p.mu.segs, seg)
	p.mu.created = p.now()
	p.mu.dirDirty = true
	return nil
}

// Replay applies a batch found in the WAL during recovery. Batches already
// in the log are skipped (replay is idempotent); a batch past the end is a
// gap, which means data the checkpoint claimed durable is missing.
func (p *Partition) Replay(b []byte) (applied bool, err error) {
	h, err := batch.ParseHeader(b)
	if err != nil {
		return false, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if h.LastOffset() < p.mu.end {
		return false, nil
	}
	if h.BaseOffset != p.mu.end {
		return false, fmt.Errorf("%w: %s: WAL batch at %d, log ends at %d", ErrGap, p.id, h.BaseOffset, p.mu.end)
	}
	if err := p.applyLocked(b, h); err != nil {
		return false, err
	}
	return true, nil
}

// SetLogStart moves the log start offset forward (DeleteRecords); offsets
// below it are no longer readable, and retention deletes the segments that
// lie wholly below it. It returns the new log start.
func (p *Partition) SetLogStart(offset int64) (int64, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if offset > p.mu.end {
		return p.mu.logStart, fmt.Errorf("%w: log start %d past the end %d", ErrOffsetOutOfRange, offset, p.mu.end)
	}
	if offset > p.mu.logStart {
		p.mu.logStart = offset
		p.mu.dirty = true
		p.notifyLocked()
	}
	return p.mu.logStart, nil
}

// Segments returns a description of each segment, for tools and tests.
func (p *Partition) Segments() []SegmentInfo {
	p.mu.RLock()
	defer p.mu.RUnlock()
	out := make([]SegmentInfo, len(p.mu.segs))
	for i, s := range p.mu.segs {
		out[i] = SegmentInfo{Base: s.Base(), Next: s.Next(), Size: s.Size(), State: s.State()}
	}
	return out
}

// SegmentInfo describes one segment.
type SegmentInfo struct {
	Base, Next, Size int64
	State            segment.State
}

// NumSegments is len(Segments()) without building the list.
func (p *Partition) NumSegments() int {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return len(p.mu.segs)
}

// Size returns the bytes in all segments.
func (p *Partition) Size() int64 {
	p.mu.RLock()
	defer p.mu.RUnlock()
	var n int64
	for _, s := range p.mu.segs {
		n += s.Size()
	}
	return n
}

// segmentFor returns the index of the segment that may hold offset.
func (p *Partition) segmentForLocked(offset int64) int {
	segs := p.mu.segs
	i := sort.Search(len(segs), func(i int) bool { return segs[i].Base() > offset }) - 1
	if i < 0 {
		i = 0
	}
	return i
}

// Close releases the partition's files. Pending readers keep their
// references.
func (p *Partition) Close() {
	p.flushMu.Lock()
	defer p.flushMu.Unlock()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.mu.closed {
		return
	}
	p.mu.closed = true
	for _, s := range p.mu.segs {
		s.Close()
		p.env.Files.Evict(s.Path(segment.LogSuffix))
		p.env.Indexes.Remove(s.IndexKey())
	}
	p.notifyLocked()
}

// Fail latches the partition read-only with err (recovery found it
// damaged). Reads of what it holds continue.
func (p *Partition) Fail(err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.failLocked(err)
}
