package storage

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluice-io/sluice/internal/batch"
	"github.com/sluice-io/sluice/internal/index"
	"github.com/sluice-io/sluice/internal/partition"
	"github.com/sluice-io/sluice/internal/producer"
	"github.com/sluice-io/sluice/internal/segment"
	"github.com/sluice-io/sluice/internal/vfs"
	"github.com/sluice-io/sluice/internal/wal"
)

var (
	// ErrClosed is returned after Close.
	ErrClosed = errors.New("storage: closed")
	// ErrExists is returned when creating a partition that exists.
	ErrExists = errors.New("storage: partition exists")
	// ErrNotFound is returned for an unknown partition.
	ErrNotFound = errors.New("storage: partition not found")
	// ErrInvalidName is returned for a topic name Kafka would refuse.
	ErrInvalidName = errors.New("storage: invalid topic name")
)

// Options configure an Engine. Zero values mean the defaults.
type Options struct {
	Dir    string
	FS     vfs.FS       // nil means the OS filesystem
	Logger *slog.Logger // nil discards
	Now    func() time.Time

	// WAL tunes the write-ahead log; its FS and Dir are set by the engine.
	WAL wal.Options
	// CheckpointBytes of WAL written since the last checkpoint start a
	// new one; this bounds the replay work of a recovery.
	CheckpointBytes int64
	// CheckpointInterval bounds the time between checkpoints.
	CheckpointInterval time.Duration
	// RetentionCheckInterval is log.retention.check.interval.ms.
	RetentionCheckInterval time.Duration
	// MaxOpenSegmentFiles bounds the descriptors held for sealed
	// segments (active segments hold one each besides).
	MaxOpenSegmentFiles int
	// IndexCacheBytes bounds the memory of cached sealed-segment indexes.
	IndexCacheBytes int64
	// FlushParallelism is how many partitions a checkpoint syncs at once.
	FlushParallelism int
	// OpenParallelism is how many partitions recovery opens at once.
	OpenParallelism int
	// SyncFSMinPartitions: a checkpoint with at least this many changed
	// partitions makes them durable with one syncfs instead of an fsync
	// per file, when the filesystem offers it. Negative disables it.
	SyncFSMinPartitions int
	// Partition is the configuration partitions start with.
	Partition partition.Config
	// Producer bounds each partition's idempotent/transactional producer
	// state: Expiration is producer.id.expiration.ms; zero fields take
	// the defaults.
	Producer producer.Options

	// CleanerBackoff is log.cleaner.backoff.ms: how often the background
	// cleaner looks for a compacted partition to clean when it found
	// none. Negative disables the background cleaner; Compact still works.
	CleanerBackoff time.Duration
	// CleanerDedupeBufferBytes is log.cleaner.dedupe.buffer.size: the
	// memory one compaction's key map may take. One partition is
	// compacted at a time.
	CleanerDedupeBufferBytes int64
	// CleanerIOBytesPerSecond is log.cleaner.io.max.bytes.per.second:
	// the bytes a compaction may read and write per second. Zero means
	// no limit (Kafka's default).
	CleanerIOBytesPerSecond int64
}

// Defaults.
const (
	DefaultCheckpointBytes        = 64 << 20
	DefaultCheckpointInterval     = 10 * time.Second
	DefaultRetentionCheckInterval = 5 * time.Minute
	DefaultMaxOpenSegmentFiles    = 4096
	DefaultFlushParallelism       = 16
	DefaultOpenParallelism        = 8
	DefaultSyncFSMinPartitions    = 32
	DefaultCleanerBackoff         = 15 * time.Second
	DefaultCleanerDedupeBytes     = partition.DefaultDedupeBufferBytes
)

func (o Options) withDefaults() Options {
	if o.FS == nil {
		o.FS = vfs.Default
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.CheckpointBytes == 0 {
		o.CheckpointBytes = DefaultCheckpointBytes
	}
	if o.CheckpointInterval == 0 {
		o.CheckpointInterval = DefaultCheckpointInterval
	}
	if o.RetentionCheckInterval == 0 {
		o.RetentionCheckInterval = DefaultRetentionCheckInterval
	}
	if o.MaxOpenSegmentFiles == 0 {
		o.MaxOpenSegmentFiles = DefaultMaxOpenSegmentFiles
	}
	if o.IndexCacheBytes == 0 {
		o.IndexCacheBytes = index.DefaultCacheMaxBytes
	}
	if o.FlushParallelism == 0 {
		o.FlushParallelism = DefaultFlushParallelism
	}
	if o.OpenParallelism == 0 {
		o.OpenParallelism = DefaultOpenParallelism
	}
	if o.SyncFSMinPartitions == 0 {
		o.SyncFSMinPartitions = DefaultSyncFSMinPartitions
	}
	if o.CleanerBackoff == 0 {
		o.CleanerBackoff = DefaultCleanerBackoff
	}
	if o.CleanerDedupeBufferBytes == 0 {
		o.CleanerDedupeBufferBytes = DefaultCleanerDedupeBytes
	}
	if o.Partition == (partition.Config{}) {
		o.Partition = partition.DefaultConfig()
	}
	o.WAL.FS = o.FS
	o.WAL.Dir = filepath.Join(o.Dir, "wal")
	if o.WAL.Logger == nil {
		o.WAL.Logger = o.Logger
	}
	return o
}

// Validate reports every problem with o at once.
func (o Options) Validate() error {
	var errs []error
	if o.Dir == "" {
		errs = append(errs, errors.New("storage: Dir is required"))
	}
	if o.CheckpointBytes < 0 {
		errs = append(errs, fmt.Errorf("storage: CheckpointBytes %d negative", o.CheckpointBytes))
	}
	if o.CheckpointInterval < 0 || o.RetentionCheckInterval < 0 {
		errs = append(errs, errors.New("storage: negative interval"))
	}
	if o.MaxOpenSegmentFiles < 0 || o.FlushParallelism < 0 || o.OpenParallelism < 0 || o.IndexCacheBytes < 0 {
		errs = append(errs, errors.New("storage: negative limit"))
	}
	if o.CleanerDedupeBufferBytes < 0 {
		errs = append(errs, fmt.Errorf("storage: CleanerDedupeBufferBytes %d negative", o.CleanerDedupeBufferBytes))
	}
	if o.CleanerIOBytesPerSecond < 0 {
		errs = append(errs, fmt.Errorf("storage: CleanerIOBytesPerSecond %d negative", o.CleanerIOBytesPerSecond))
	}
	d := o.withDefaults()
	if err := d.Partition.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("storage: partition defaults: %w", err))
	}
	if err := d.WAL.Validate(); err != nil {
		errs = append(errs, err)
	}
	if err := o.Producer.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("storage: %w", err))
	}
	return errors.Join(errs...)
}

// Engine is the storage engine.
type Engine struct {
	opts Options
	log  *slog.Logger
	wal  *wal.WAL
	env  *segment.Env

	mu struct {
		sync.RWMutex
		parts  map[partKey]*partition.Partition
		closed bool
	}
	// applied is the WAL position up to which every record has been
	// applied to the partitions: a checkpoint may record it.
	applied atomic.Uint64
	// checkpointed is the WAL position of the last checkpoint.
	checkpointed atomic.Uint64

	createMu sync.Mutex // one partition creation at a time
	cpMu     sync.Mutex // one checkpoint at a time; guards lastCP
	lastCP   map[partKey]partition.FlushState
	// durable is lastCP as of the last checkpoint written, for the
	// cleaner, which must not wait for a checkpoint to read it. The map
	// is never changed once published.
	durable atomic.Pointer[map[partKey]partition.FlushState]
	// cleanMu runs one compaction at a time, so that one key map's
	// memory is the cleaner's budget. Never held while taking cpMu.
	cleanMu sync.Mutex
	// cleanCtx is cancelled by Close, aborting a compaction in progress.
	cleanCtx    context.Context
	cleanCancel context.CancelFunc
	cpErr       atomic.Pointer[error]
	kick        chan struct{}
	stop        chan struct{}
	bg          sync.WaitGroup
	closeErr    error
	closeMu     sync.Once

	stats struct {
		appends, appendBytes, checkpoints, retentionDeleted atomic.Uint64
		compactions, compactionFailures, compactedBytes     atomic.Uint64
	}
}

// RecoveryReport says what Open did.
type RecoveryReport struct {
	Partitions      int
	Segments        int
	ScannedBytes    int64 // segment bytes verified with CRCs
	TruncatedBytes  int64 // torn segment bytes cut off
	ReplayedRecords int   // WAL records applied
	SkippedRecords  int   // WAL records already in the segments
	ReplayedBytes   int64
	// ProducerScannedBatches counts the batches read to bring producer
	// states from their snapshots to the end of the logs;
	// ProducerFullScans the partitions whose state had to be rebuilt
	// from the start of the log (no usable snapshot).
	ProducerScannedBatches int64
	ProducerFullScans      int
	HadCheckpoint          bool
	Duration               time.Duration
}

// Open recovers the engine in opts.Dir (creating it if needed) and starts
// its background checkpoint and retention goroutines.
func Open(opts Options) (*Engine, RecoveryReport, error) {
	var rep RecoveryReport
	start := time.Now()
	if err := opts.Validate(); err != nil {
		return nil, rep, err
	}
	opts = opts.withDefaults()
	idx, err := index.NewCache(index.CacheOptions{MaxBytes: opts.IndexCacheBytes})
	if err != nil {
		return nil, rep, err
	}
	e := &Engine{
		opts:   opts,
		log:    opts.Logger,
		env:    &segment.Env{Files: segment.NewFileCache(opts.FS, opts.MaxOpenSegmentFiles), Indexes: idx},
		lastCP: map[partKey]partition.FlushState{},
		kick:   make(chan struct{}, 1),
		stop:   make(chan struct{}),
	}
	e.cleanCtx, e.cleanCancel = context.WithCancel(context.Background())
	e.mu.parts = map[partKey]*partition.Partition{}
	if err := opts.FS.MkdirAll(opts.Dir); err != nil {
		return nil, rep, fmt.Errorf("storage: %w", err)
	}
	cp, ok, err := readCheckpoint(opts.FS, opts.Dir)
	if err != nil {
		return nil, rep, err
	}
	rep.HadCheckpoint = ok
	if err := e.openPartitions(cp, &rep); err != nil {
		e.closePartitions()
		return nil, rep, err
	}
	w, err := wal.Open(opts.WAL)
	if err != nil {
		e.closePartitions()
		return nil, rep, err
	}
	e.wal = w
	if err := e.replay(wal.LSN(cp.lsn), &rep); err != nil {
		w.Close()
		e.closePartitions()
		return nil, rep, err
	}
	end := uint64(w.End())
	e.applied.Store(end)
	e.checkpointed.Store(cp.lsn)
	e.lastCP = cp.parts
	e.durable.Store(&cp.parts)
	rep.Duration = time.Since(start)
	e.log.Info("storage recovered", "dir", opts.Dir, "partitions", rep.Partitions, "segments", rep.Segments,
		"scanned_bytes", rep.ScannedBytes, "truncated_bytes", rep.TruncatedBytes,
		"replayed_records", rep.ReplayedRecords, "skipped_records", rep.SkippedRecords,
		"producer_scanned_batches", rep.ProducerScannedBatches, "producer_full_scans", rep.ProducerFullScans, "duration", rep.Duration)
	e.bg.Add(2)
	go e.checkpointLoop()
	go e.retentionLoop()
	if opts.CleanerBackoff > 0 {
		e.bg.Add(1)
		go e.cleanerLoop()
	}
	if rep.ReplayedRecords > 0 {
		e.kickCheckpoint()
	}
	return e, rep, nil
}

func (e *Engine) openPartitions(cp checkpoint, rep *RecoveryReport) error {
	fsys, dir := e.opts.FS, e.opts.Dir
	names, err := fsys.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("storage: %w", err)
	}
	var dirs []string
	for _, n := range names {
		switch {
		case n == checkpointName+".tmp":
			_ = fsys.Remove(filepath.Join(dir, n))
		case len(n) > len(deleteSuffix) && n[len(n)-len(deleteSuffix):] == deleteSuffix:
			// A deletion interrupted by a crash: finish it.
			if err := fsys.RemoveAll(filepath.Join(dir, n)); err != nil {
				return fmt.Errorf("storage: finish deleting %s: %w", n, err)
			}
		case looksLikePartitionDir(n):
			dirs = append(dirs, n)
		}
	}
	type result struct {
		p   *partition.Partition
		st  partition.RecoveryStats
		err error
	}
	results := make([]result, len(dirs))
	work := make(chan int)
	var wg sync.WaitGroup
	for w := 0; w < e.opts.OpenParallelism; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				results[i].p, results[i].st, results[i].err = e.openPartition(filepath.Join(dir, dirs[i]), cp)
			}
		}()
	}
	for i := range dirs {
		work <- i
	}
	close(work)
	wg.Wait()
	var errs []error
	for _, r := range results {
		if r.err != nil {
			errs = append(errs, r.err)
			continue
		}
		if r.p == nil {
			continue
		}
		id := r.p.ID()
		e.mu.parts[partKey{id.TopicID, id.Partition}] = r.p
		rep.Partitions++
		rep.Segments += r.st.Segments
		rep.ScannedBytes += r.st.ScannedBytes
		rep.TruncatedBytes += r.st.TruncatedBytes
		rep.ProducerScannedBatches += r.st.Producers.ScannedBatches
		if r.st.Producers.Snapshot < 0 {
			rep.ProducerFullScans++
		}
	}
	return errors.Join(errs...)
}

func (e *Engine) openPartition(dir string, cp checkpoint) (*partition.Partition, partition.RecoveryStats, error) {
	id, err := readMeta(e.opts.FS, dir)
	if errors.Is(err, fs.ErrNotExist) {
		// A directory whose creation never completed: nothing was
		// ever appended to it.
		e.log.Warn("storage: removing partition directory without metadata", "dir", dir)
		return nil, partition.RecoveryStats{}, e.opts.FS.RemoveAll(dir)
	}
	if err != nil {
		return nil, partition.RecoveryStats{}, err
	}
	var st *partition.FlushState
	if s, ok := cp.parts[partKey{id.TopicID, id.Partition}]; ok {
		st = &s
	}
	return partition.Open(e.partOptions(dir, id), st)
}

func (e *Engine) partOptions(dir string, id partition.ID) partition.Options {
	return partition.Options{FS: e.opts.FS, Dir: dir, ID: id, Config: e.opts.Partition, Env: e.env, Now: e.opts.Now, Producer: e.opts.Producer, Logger: e.log}
}

func (e *Engine) replay(from wal.LSN, rep *RecoveryReport) error {
	return e.wal.Replay(from, func(lsn wal.LSN, payload []byte) error {
		kind, k, body, err := decodeRecord(payload)
		if err != nil {
			return fmt.Errorf("storage: replay at WAL position %d: %w", lsn, err)
		}
		p := e.mu.parts[k]
		if p == nil {
			return nil // the partition was deleted
		}
		rep.ReplayedBytes += int64(len(payload))
		switch kind {
		case recBatch:
			applied, err := p.Replay(body)
			if err != nil {
				// Data the checkpoint promised is missing: keep
				// the rest of the broker serving, but this
				// partition stays read-only until repaired.
				e.log.Error("storage: replay failed; partition is read-only", "partition", p.ID(), "err", err)
				p.Fail(err)
				return nil
			}
			if applied {
				rep.ReplayedRecords++
			} else {
				rep.SkippedRecords++
			}
		case recLogStart:
			if len(body) != 8 {
				return fmt.Errorf("storage: replay at WAL position %d: %w: log start body %d bytes", lsn, errBadRecord, len(body))
			}
			_, _ = p.SetLogStart(int64(binary.BigEndian.Uint64(body)))
			rep.ReplayedRecords++
		default:
			return fmt.Errorf("storage: replay at WAL position %d: %w: kind %d", lsn, errBadRecord, kind)
		}
		return nil
	})
}

// ValidTopicName reports whether Kafka would accept name.
func ValidTopicName(name string) bool {
	if name == "" || name == "." || name == ".." || len(name) > maxTopicNameBytes {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// CreatePartition creates a new, empty partition and makes its existence
// durable before returning.
func (e *Engine) CreatePartition(id partition.ID, cfg partition.Config) (*partition.Partition, error) {
	ps, err := e.CreatePartitions([]partition.ID{id}, cfg)
	if err != nil {
		return nil, err
	}
	return ps[0], nil
}

// CreatePartitions creates new, empty partitions with one configuration
// and makes their existence durable before returning: a topic's partitions
// are created together, sharing the directory syncs (or one syncfs).
func (e *Engine) CreatePartitions(ids []partition.ID, cfg partition.Config) ([]*partition.Partition, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	seen := map[partKey]bool{}
	for _, id := range ids {
		if !ValidTopicName(id.Topic) {
			return nil, fmt.Errorf("%w: %q", ErrInvalidName, id.Topic)
		}
		k := partKey{id.TopicID, id.Partition}
		if seen[k] {
			return nil, fmt.Errorf("%w: %s twice", ErrExists, id)
		}
		seen[k] = true
	}
	e.createMu.Lock()
	defer e.createMu.Unlock()
	e.mu.RLock()
	closed := e.mu.closed
	for _, id := range ids {
		if _, ok := e.mu.parts[partKey{id.TopicID, id.Partition}]; ok {
			e.mu.RUnlock()
			return nil, fmt.Errorf("%w: %s", ErrExists, id)
		}
	}
	e.mu.RUnlock()
	if closed {
		return nil, ErrClosed
	}
	syncer, bulk := e.opts.FS.(vfs.SyncFSer)
	bulk = bulk && e.opts.SyncFSMinPartitions > 0 && len(ids) >= e.opts.SyncFSMinPartitions
	ps := make([]*partition.Partition, len(ids))
	errs := make([]error, len(ids))
	all := make([]int, len(ids))
	for i := range all {
		all[i] = i
	}
	e.parallel(all, func(i int) { ps[i], errs[i] = e.createPartition(ids[i], cfg, !bulk) })
	err := errors.Join(errs...)
	if err == nil && bulk {
		err = syncer.SyncFS(e.opts.Dir)
	}
	if err == nil && !bulk {
		err = e.opts.FS.SyncDir(e.opts.Dir)
	}
	if err != nil {
		for i, p := range ps {
			if p != nil {
				p.Close()
				_ = e.opts.FS.RemoveAll(filepath.Join(e.opts.Dir, partDirName(ids[i])))
			}
		}
		return nil, fmt.Errorf("storage: create partitions: %w", err)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	for i, id := range ids {
		e.mu.parts[partKey{id.TopicID, id.Partition}] = ps[i]
	}
	return ps, nil
}

// createPartition makes one partition's directory, metadata and first
// segment; with sync it also makes them durable, except the parent
// directory's entry, which the caller syncs once for all.
func (e *Engine) createPartition(id partition.ID, cfg partition.Config, sync bool) (*partition.Partition, error) {
	dir := filepath.Join(e.opts.Dir, partDirName(id))
	if _, err := e.opts.FS.Stat(dir); err == nil {
		return nil, fmt.Errorf("%w: directory %s", ErrExists, partDirName(id))
	}
	if err := e.opts.FS.MkdirAll(dir); err != nil {
		return nil, fmt.Errorf("storage: create %s: %w", id, err)
	}
	if err := writeMeta(e.opts.FS, dir, id, sync); err != nil {
		return nil, fmt.Errorf("storage: create %s: %w", id, err)
	}
	o := e.partOptions(dir, id)
	o.Config = cfg
	p, err := partition.Create(o)
	if err != nil {
		return nil, err
	}
	// The empty first segment need not be durable: a partition found
	// without segments starts one where the checkpoint says it ended.
	if sync {
		if err := e.opts.FS.SyncDir(dir); err != nil {
			p.Close()
			return nil, fmt.Errorf("storage: create %s: %w", id, err)
		}
	}
	return p, nil
}

// Partition returns a partition by topic id and number, or nil.
func (e *Engine) Partition(topicID [16]byte, part int32) *partition.Partition {
	e.mu.RLock()
	defer e.mu.RUnlock()
	return e.mu.parts[partKey{topicID, part}]
}

// Partitions returns every partition, ordered by topic name and number.
func (e *Engine) Partitions() []*partition.Partition {
	e.mu.RLock()
	out := make([]*partition.Partition, 0, len(e.mu.parts))
	for _, p := range e.mu.parts {
		out = append(out, p)
	}
	e.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i].ID(), out[j].ID()
		if a.Topic != b.Topic {
			return a.Topic < b.Topic
		}
		return a.Partition < b.Partition
	})
	return out
}

// DeletePartition removes a partition and its data. The directory is
// renamed aside (durably) first, so a crash half way leaves nothing that
// startup would take for a live partition.
func (e *Engine) DeletePartition(topicID [16]byte, part int32) error {
	k := partKey{topicID, part}
	e.mu.Lock()
	p := e.mu.parts[k]
	if p == nil {
		e.mu.Unlock()
		return ErrNotFound
	}
	delete(e.mu.parts, k)
	e.mu.Unlock()
	p.Close()
	aside := fmt.Sprintf("%s.%x%s", p.Dir(), topicID[:4], deleteSuffix)
	if err := e.opts.FS.Rename(p.Dir(), aside); err != nil {
		return fmt.Errorf("storage: delete %s: %w", p.ID(), err)
	}
	if err := e.opts.FS.SyncDir(e.opts.Dir); err != nil {
		return fmt.Errorf("storage: delete %s: %w", p.ID(), err)
	}
	if err := e.opts.FS.RemoveAll(aside); err != nil {
		return fmt.Errorf("storage: delete %s: %w", p.ID(), err)
	}
	return nil
}

// AppendFunc is called once an append is durable and readable (err nil),
// or failed. It runs on the WAL's completion goroutine and must be quick.
type AppendFunc func(base int64, err error)

// Append validates batch b, assigns its offsets in place and writes it
// through the WAL. It returns once the batch is queued; done runs once it
// is fsynced and applied (or failed). b must stay unmodified until then.
//
// Batches with a producer id are checked against the partition's producer
// state first (partition.Append): a retry of a batch already appended
// returns a *producer.DuplicateError and writes nothing; its original is
// readable once the partition's end passes DuplicateError.LastOffset.
// Transaction markers (control batches the broker builds for the
// coordinator) go through Append too.
func (e *Engine) Append(ctx context.Context, p *partition.Partition, b []byte, done AppendFunc) (batch.Header, error) {
	id := p.ID()
	k := partKey{id.TopicID, id.Partition}
	return p.Append(b, e.opts.Now(), func(base int64) error {
		// The WAL copies the header and the batch into its buffer
		// directly; the batch is not copied anywhere else first.
		var hdr [recHeaderSize]byte
		_, err := e.wal.AppendParts(ctx, appendRecordHeader(hdr[:0], recBatch, k), b, func(end wal.LSN, err error) {
			e.completeAppend(p, b, base, end, err, done)
		})
		return err
	})
}

func (e *Engine) completeAppend(p *partition.Partition, b []byte, base int64, end wal.LSN, err error, done AppendFunc) {
	if err == nil {
		err = p.Apply(b)
		e.stats.appends.Add(1)
		e.stats.appendBytes.Add(uint64(len(b)))
	}
	if err == nil || !errors.Is(err, wal.ErrFailed) {
		e.advanceApplied(end)
	}
	if done != nil {
		done(base, err)
	}
}

// advanceApplied records that every WAL record ending at or before end is
// applied, and starts a checkpoint once enough WAL has accumulated.
func (e *Engine) advanceApplied(end wal.LSN) {
	e.applied.Store(uint64(end))
	if uint64(end)-e.checkpointed.Load() >= uint64(e.opts.CheckpointBytes) {
		e.kickCheckpoint()
	}
}

// AppendSync appends and waits until the batch is durable and readable.
func (e *Engine) AppendSync(ctx context.Context, p *partition.Partition, b []byte) (int64, error) {
	type result struct {
		base int64
		err  error
	}
	ch := make(chan result, 1)
	if _, err := e.Append(ctx, p, b, func(base int64, err error) { ch <- result{base, err} }); err != nil {
		return 0, err
	}
	r := <-ch
	return r.base, r.err
}

// DeleteRecords moves the log start offset of p to offset (Kafka's
// DeleteRecords); offset -1 means the high watermark. It returns the new
// log start once the change is durable.
func (e *Engine) DeleteRecords(ctx context.Context, p *partition.Partition, offset int64) (int64, error) {
	_, end := p.Offsets()
	if offset == -1 {
		offset = end
	}
	if offset < 0 || offset > end {
		return 0, fmt.Errorf("%w: %d not in [0, %d]", partition.ErrOffsetOutOfRange, offset, end)
	}
	id := p.ID()
	payload := appendRecordHeader(make([]byte, 0, recHeaderSize+8), recLogStart, partKey{id.TopicID, id.Partition})
	payload = binary.BigEndian.AppendUint64(payload, uint64(offset))
	type result struct {
		start int64
		err   error
	}
	ch := make(chan result, 1)
	_, err := e.wal.Append(ctx, payload, func(end wal.LSN, err error) {
		var start int64
		if err == nil {
			start, err = p.SetLogStart(offset)
			e.advanceApplied(end)
		}
		ch <- result{start, err}
	})
	if err != nil {
		return 0, err
	}
	r := <-ch
	return r.start, r.err
}

// TruncateTo truncates p to end before offset (replication uses it when a
// follower's log diverges from its leader's) and records the result in a
// checkpoint before returning, so a crash cannot resurrect the cut data.
func (e *Engine) TruncateTo(p *partition.Partition, offset int64) error {
	if err := p.TruncateTo(offset); err != nil {
		return err
	}
	return e.Checkpoint()
}

// Stats is a snapshot of engine counters.
type Stats struct {
	Appends, AppendBytes, Checkpoints, RetentionDeleted uint64
	// Compactions counts passes that rewrote something; CompactedBytes
	// is the bytes they removed.
	Compactions, CompactionFailures, CompactedBytes uint64
	WALEnd, Applied, Checkpointed                   uint64
	OpenSegmentFiles                                int
	IndexCacheHits, IndexCacheMisses                uint64
	IndexCacheBytes                                 int64
	WAL                                             wal.Stats
}

// Stats returns a snapshot of the engine's counters.
func (e *Engine) Stats() Stats {
	h, m, b := e.env.Indexes.Stats()
	return Stats{
		Appends: e.stats.appends.Load(), AppendBytes: e.stats.appendBytes.Load(),
		Checkpoints: e.stats.checkpoints.Load(), RetentionDeleted: e.stats.retentionDeleted.Load(),
		Compactions: e.stats.compactions.Load(), CompactionFailures: e.stats.compactionFailures.Load(),
		CompactedBytes: e.stats.compactedBytes.Load(),
		WALEnd:         uint64(e.wal.End()), Applied: e.applied.Load(), Checkpointed: e.checkpointed.Load(),
		OpenSegmentFiles: e.env.Files.Len(), IndexCacheHits: h, IndexCacheMisses: m, IndexCacheBytes: b,
		WAL: e.wal.Stats(),
	}
}

// Env returns the shared descriptor and index caches (for tests and tools).
func (e *Engine) Env() *segment.Env { return e.env }

// Close stops the background work, writes a final checkpoint, and closes
// the WAL and every partition.
func (e *Engine) Close() error {
	e.closeMu.Do(func() {
		e.cleanCancel()
		close(e.stop)
		e.bg.Wait()
		var errs []error
		// The WAL first: its Close completes what is pending, so the
		// checkpoint after it covers every acknowledged append.
		if err := e.wal.Close(); err != nil {
			errs = append(errs, err)
		}
		if e.wal.Err() == nil {
			if err := e.checkpoint(false); err != nil {
				errs = append(errs, err)
			}
		}
		e.mu.Lock()
		e.mu.closed = true
		e.mu.Unlock()
		e.closePartitions()
		e.env.Files.Close()
		e.closeErr = errors.Join(errs...)
	})
	return e.closeErr
}

func (e *Engine) closePartitions() {
	e.mu.RLock()
	defer e.mu.RUnlock()
	for _, p := range e.mu.parts {
		p.Close()
	}
}
