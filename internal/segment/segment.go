package segment

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/sluice-io/sluice/internal/batch"
	"github.com/sluice-io/sluice/internal/index"
	"github.com/sluice-io/sluice/internal/vfs"
)

// File name suffixes, as Kafka names them.
const (
	LogSuffix       = ".log"
	IndexSuffix     = ".index"
	TimeIndexSuffix = ".timeindex"
)

// MaxBytes is the largest a segment's .log may grow: index positions are
// uint32.
const MaxBytes = 1<<32 - 1

var (
	// ErrCorrupt marks a batch in a segment that fails validation.
	ErrCorrupt = errors.New("segment: corrupt")
	// ErrFull is returned by Append when the batch would not fit.
	ErrFull = errors.New("segment: full")
	// ErrClosed is returned after Close.
	ErrClosed = errors.New("segment: closed")
)

// CorruptError says where a segment is corrupt.
type CorruptError struct {
	Path   string
	Offset int64 // byte position in the file
	Err    error
}

func (e *CorruptError) Error() string {
	return fmt.Sprintf("segment: corrupt %s at byte %d: %v", e.Path, e.Offset, e.Err)
}

func (e *CorruptError) Unwrap() []error { return []error{ErrCorrupt, e.Err} }

// State is where a segment is in its lifecycle.
type State uint8

const (
	Active State = iota
	Sealed
	Flushed
	Archived
	Deleted
)

func (s State) String() string {
	switch s {
	case Active:
		return "active"
	case Sealed:
		return "sealed"
	case Flushed:
		return "flushed"
	case Archived:
		return "archived"
	case Deleted:
		return "deleted"
	}
	return "state(" + strconv.Itoa(int(s)) + ")"
}

// Name returns the file name stem for a segment starting at base.
func Name(base int64) string { return fmt.Sprintf("%020d", base) }

// ParseName returns the base offset of a segment file name such as
// 00000000000000000042.log, and its suffix.
func ParseName(name string) (base int64, suffix string, ok bool) {
	ext := filepath.Ext(name)
	stem := strings.TrimSuffix(name, ext)
	if len(stem) != 20 {
		return 0, "", false
	}
	n, err := strconv.ParseInt(stem, 10, 64)
	if err != nil || n < 0 {
		return 0, "", false
	}
	return n, ext, true
}

// Options are the per-segment tunables.
type Options struct {
	// IndexIntervalBytes is how many log bytes may separate two offset
	// index entries (Kafka's index.interval.bytes).
	IndexIntervalBytes int64
}

// Segment is one .log with its indexes.
type Segment struct {
	fs   vfs.FS
	dir  string
	base int64
	opts Options
	// tmp is appended to every file name while the segment is a
	// compaction's output not yet installed (CleanedSuffix, SwapSuffix).
	tmp string

	state State
	// active is the read-write handle of an Active or Sealed segment not
	// yet handed to the descriptor cache; nil for segments opened lazily.
	active *Handle

	size  int64 // valid bytes in the .log
	next  int64 // offset after the last batch; base when empty
	maxTS int64 // largest max timestamp of any batch; -1 when none
	// maxTSOffset is the base offset of the batch holding maxTS.

	// offsets and times are kept in memory for segments being written
	// and for recovered ones; sealed segments opened lazily load them on
	// demand through the partition's index cache.
	offsets *index.Offsets
	times   *index.Times
	// bytes of each index's FileBytes already written to its file
	offsetsWritten, timesWritten int
	lastIndexedPos               int64 // position of the last offset index entry, or -1

	// flushedSize is the log size covered by the last Flush.
	flushedSize int64
	// writebackFrom is where the next started writeback begins.
	writebackFrom int64

	txn txnState
}

// Path returns the path of the segment's file with the given suffix.
func (s *Segment) Path(suffix string) string {
	return filepath.Join(s.dir, Name(s.base)+suffix+s.tmp)
}

// Base returns the first offset the segment may hold.
func (s *Segment) Base() int64 { return s.base }

// Next returns the offset after the last batch.
func (s *Segment) Next() int64 { return s.next }

// Size returns the valid bytes in the log.
func (s *Segment) Size() int64 { return s.size }

// FlushedSize returns the log bytes covered by the last Flush.
func (s *Segment) FlushedSize() int64 { return s.flushedSize }

// MaxTimestamp returns the largest batch max timestamp, or -1.
func (s *Segment) MaxTimestamp() int64 { return s.maxTS }

// State returns the lifecycle state.
func (s *Segment) State() State { return s.state }

// Create makes a new, empty active segment. The directory entry is not
// durable until the partition syncs its directory.
func Create(fsys vfs.FS, dir string, base int64, opts Options) (*Segment, error) {
	return create(newSegment(fsys, dir, base, opts))
}

func create(s *Segment) (*Segment, error) {
	fsys := s.fs
	f, err := fsys.Create(s.Path(LogSuffix))
	if err != nil {
		return nil, fmt.Errorf("segment: create: %w", err)
	}
	s.active = newHandle(f)
	s.offsets = index.NewOffsets(s.base)
	s.times = index.NewTimes(s.base)
	// Stale index files from an earlier life of this base offset would
	// otherwise be trusted by a later recovery.
	for _, suf := range []string{IndexSuffix, TimeIndexSuffix} {
		if err := fsys.Remove(s.Path(suf)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			_ = s.active.f.Close()
			return nil, fmt.Errorf("segment: create: %w", err)
		}
	}
	// The transaction index exists from the start, even empty (a flushed
	// segment without one is a segment whose index was lost), created
	// here rather than at the first flush: a checkpoint after a burst into
	// 10,000 new partitions otherwise spent seconds creating 10,000 files.
	// Create truncates a stale one; the first flush makes it durable.
	tf, err := fsys.Create(s.Path(TxnIndexSuffix))
	if err == nil {
		_, err = tf.WriteAt(s.encodeTxnIndex(nil), 0)
		if cerr := tf.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		_ = s.active.f.Close()
		return nil, fmt.Errorf("segment: create: %w", err)
	}
	s.txn = txnState{loaded: true}
	return s, nil
}

func newSegment(fsys vfs.FS, dir string, base int64, opts Options) *Segment {
	return &Segment{fs: fsys, dir: dir, base: base, opts: opts, next: base, maxTS: -1, lastIndexedPos: -1}
}

// OpenSealed describes an existing sealed, flushed segment without opening
// any file: next is the base of the following segment and size the .log's
// size. Its indexes and descriptor are loaded on demand.
func OpenSealed(fsys vfs.FS, dir string, base, next, size int64, opts Options) *Segment {
	s := newSegment(fsys, dir, base, opts)
	s.state = Flushed
	s.next = next
	s.size = size
	s.flushedSize = size
	return s
}

// Append writes one validated batch, whose base offset is already assigned,
// at the end of the log and indexes it. h is the batch's parsed header.
func (s *Segment) Append(b []byte, h batch.Header) error {
	if s.active == nil {
		return fmt.Errorf("segment: append to %s segment %s", s.state, s.Path(LogSuffix))
	}
	if h.BaseOffset != s.next {
		return fmt.Errorf("segment: append offset %d, want %d", h.BaseOffset, s.next)
	}
	if s.size+int64(len(b)) > MaxBytes {
		return ErrFull
	}
	if _, err := s.active.f.WriteAt(b, s.size); err != nil {
		return fmt.Errorf("segment: write %s: %w", s.Path(LogSuffix), err)
	}
	s.indexBatch(h, s.size)
	s.size += int64(len(b))
	s.startWriteback()
	return nil
}

// writebackBytes is how much of a segment may be written before its
// writeback is started. A checkpoint's fsync then finds little left to
// write: without this, the data of a whole checkpoint interval is written
// back at once and the WAL's fsync queues behind it. Small, because
// partitions fed at the same pace cross it together: at 1 MiB, 16
// partitions started 16 MiB of writeback at once every few hundred
// milliseconds, and the WAL commits behind it made the p99 append latency
// 5.9-9.7 ms; at 64 KiB it was 1.8-3.3 ms (two paired runs of an engine
// test appending 16 KiB batches at 57 MB/s to 16 partitions).
const writebackBytes = 64 << 10

func (s *Segment) startWriteback() {
	if s.size-s.writebackFrom < writebackBytes {
		return
	}
	if w, ok := s.active.f.(vfs.WritebackStarter); ok {
		// Only a hint: an error changes nothing that fsync will not
		// report again.
		_ = w.StartWriteback(s.writebackFrom, s.size-s.writebackFrom)
	}
	s.writebackFrom = s.size
}

// indexBatch records a batch at pos in the in-memory indexes.
func (s *Segment) indexBatch(h batch.Header, pos int64) {
	if s.lastIndexedPos < 0 || pos-s.lastIndexedPos >= s.opts.IndexIntervalBytes {
		// Errors here mean our own bookkeeping is broken (offsets and
		// positions only grow).
		if err := s.offsets.Append(h.BaseOffset, pos); err != nil {
			panic(fmt.Sprintf("segment: offset index: %v", err))
		}
		s.lastIndexedPos = pos
	}
	// Every new maximum is indexed, so a timestamp lookup is exact at
	// batch granularity without a scan.
	if h.MaxTimestamp > s.maxTS {
		s.maxTS = h.MaxTimestamp
		if err := s.times.Append(h.MaxTimestamp, h.BaseOffset); err != nil {
			panic(fmt.Sprintf("segment: time index: %v", err))
		}
	}
	s.next = h.LastOffset() + 1
}

// Seal marks the segment as no longer appended to. Its handle stays open
// until Flush so the flush can sync it.
func (s *Segment) Seal() { s.state = Sealed }

// FlushJob syncs what a segment holds at the moment it was prepared. The
// three steps let the owner hold its lock only around PrepareFlush and
// Finish, never across the fsync: appends continue while a flush runs.
type FlushJob struct {
	s              *Segment
	h              *Handle
	size           int64
	offsets, times []byte
	offW, timW     int
	sealed         bool
	indexes        bool // write the index tails
	txn            *txnFlush
	// Created is set by Run when an index file was created, so the
	// owner knows to sync the directory.
	Created bool
}

// indexLazyBytes is how much an active segment's index may grow before a
// flush writes it out. Recovery verifies the log from the last index entry
// it finds, so a stale index costs at most the log bytes these entries
// cover (indexLazyBytes/8 entries of index.interval.bytes each), while
// writing it at every checkpoint would cost two file opens per partition.
const indexLazyBytes = 4096

// PrepareFlush captures what a flush must cover. It returns nil when the
// segment has nothing unsynced. The caller holds the owner's lock and must
// not run two flushes of one segment at once.
func (s *Segment) PrepareFlush() *FlushJob {
	if s.active == nil || s.state == Flushed {
		// A compaction's output keeps its handle until installed, but
		// it was synced whole before it was swapped in.
		return nil
	}
	offB, timB := s.offsets.FileBytes(), s.times.FileBytes()
	idx := s.state != Active || s.offsetsWritten < 0 || s.timesWritten < 0 ||
		len(offB)-s.offsetsWritten >= indexLazyBytes || len(timB)-s.timesWritten >= indexLazyBytes
	if idx && len(offB) == s.offsetsWritten && len(timB) == s.timesWritten {
		idx = false
	}
	txn := s.prepareTxnFlush()
	if s.state == Active && s.flushedSize == s.size && !idx && txn == nil {
		return nil
	}
	if !s.active.acquire() {
		return nil
	}
	j := &FlushJob{s: s, h: s.active, size: s.size, sealed: s.state == Sealed, indexes: idx, txn: txn}
	if idx {
		j.offsets, j.times, j.offW, j.timW = offB, timB, s.offsetsWritten, s.timesWritten
	}
	return j
}

// Run writes the index tails and, if sync is set, syncs the indexes and
// the log. Without sync the caller makes the files durable some other way
// (one syncfs for many segments) before it calls Finish. Run takes no lock.
func (j *FlushJob) Run(sync bool) error {
	defer j.h.Release()
	s := j.s
	if j.indexes {
		var err error
		if j.Created, err = s.writeIndex(IndexSuffix, j.offsets, &j.offW, sync); err != nil {
			return err
		}
		created, err := s.writeIndex(TimeIndexSuffix, j.times, &j.timW, sync)
		if err != nil {
			return err
		}
		j.Created = j.Created || created
	}
	if j.txn != nil {
		created, err := j.txn.run(s, sync)
		if err != nil {
			return err
		}
		j.Created = j.Created || created
	}
	if !sync {
		return nil
	}
	if err := j.h.f.Sync(); err != nil {
		return fmt.Errorf("segment: sync %s: %w", s.Path(LogSuffix), err)
	}
	return nil
}

// Finish records a successful Run. The caller holds the owner's lock. A
// flushed sealed segment gives up its handle: later reads go through the
// descriptor cache, and its indexes through the index cache.
func (j *FlushJob) Finish(env *Env) {
	s := j.s
	// The owner never truncates a segment while a flush of it runs, so
	// what Run wrote is what the files hold.
	if j.indexes {
		s.offsetsWritten, s.timesWritten = j.offW, j.timW
	}
	if j.txn != nil && s.txn.loaded && len(s.txn.entries) >= j.txn.n {
		s.txn.written, s.txn.synced = j.txn.n, true
	}
	if j.size > s.flushedSize {
		s.flushedSize = j.size
	}
	if j.sealed && s.state == Sealed && s.flushedSize == s.size {
		s.state = Flushed
		if env != nil && env.Indexes != nil {
			env.Indexes.Put(s.IndexKey(), s.offsets, s.times)
		}
		s.offsets, s.times = nil, nil
		s.active.Release()
		s.active = nil
		if s.txn.loaded && s.txn.written == len(s.txn.entries) {
			// Read from the file from now on (rarely: read_committed
			// fetches only).
			s.txn = txnState{}
		}
	}
}

// Flush prepares, runs and finishes a flush in one go, for callers that
// own the segment alone (tests, recovery).
func (s *Segment) Flush(env *Env) error {
	j := s.PrepareFlush()
	if j == nil {
		return nil
	}
	if err := j.Run(true); err != nil {
		return err
	}
	j.Finish(env)
	return nil
}

// rewriteIndex as a written count means the index file must be rewritten
// whole at the next flush (it was truncated or rebuilt in memory).
const rewriteIndex = -1

func (s *Segment) writeIndex(suffix string, data []byte, written *int, sync bool) (created bool, err error) {
	if *written == len(data) {
		return false, nil
	}
	path := s.Path(suffix)
	var f vfs.File
	if *written <= 0 {
		f, err = s.fs.Create(path)
		*written, created = 0, true
	} else {
		f, err = s.fs.OpenRW(path)
	}
	if err != nil {
		return false, fmt.Errorf("segment: open index: %w", err)
	}
	defer f.Close()
	if _, err := f.WriteAt(data[*written:], int64(*written)); err != nil {
		return created, fmt.Errorf("segment: write index %s: %w", path, err)
	}
	if sync {
		if err := f.Sync(); err != nil {
			return created, fmt.Errorf("segment: sync index %s: %w", path, err)
		}
	}
	*written = len(data)
	return created, nil
}

// Close releases the segment's own handle. Readers holding references keep
// theirs.
func (s *Segment) Close() {
	if s.active != nil {
		s.active.Release()
		s.active = nil
	}
}

// Remove closes the segment and deletes its files.
func (s *Segment) Remove(cache *FileCache) error {
	s.Close()
	s.state = Deleted
	var errs []error
	for _, suf := range []string{LogSuffix, IndexSuffix, TimeIndexSuffix, TxnIndexSuffix} {
		p := s.Path(suf)
		if cache != nil && suf == LogSuffix {
			cache.Evict(p)
		}
		if err := s.fs.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("segment: remove: %w", errors.Join(errs...))
	}
	return nil
}

// acquireLog returns a referenced handle to the .log file.
func (s *Segment) acquireLog(cache *FileCache) (*Handle, error) {
	if s.active != nil && s.active.acquire() {
		return s.active, nil
	}
	if s.state == Deleted {
		return nil, ErrClosed
	}
	return cache.Acquire(s.Path(LogSuffix))
}

// readFull reads len(p) bytes at off or fails.
func readFull(f vfs.File, p []byte, off int64) error {
	n, err := f.ReadAt(p, off)
	if n == len(p) {
		return nil
	}
	if err == nil || err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return err
}

// writeIndexes writes both index files in full where needed and syncs them
// (used when rebuilding a sealed segment's indexes).
func (s *Segment) writeIndexes() error {
	if _, err := s.writeIndex(IndexSuffix, s.offsets.FileBytes(), &s.offsetsWritten, true); err != nil {
		return err
	}
	if _, err := s.writeIndex(TimeIndexSuffix, s.times.FileBytes(), &s.timesWritten, true); err != nil {
		return err
	}
	if j := s.prepareTxnFlush(); j != nil {
		if _, err := j.run(s, true); err != nil {
			return err
		}
		s.txn.written, s.txn.synced = j.n, true
	}
	return nil
}
