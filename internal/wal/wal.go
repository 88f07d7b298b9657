package wal

import (
	"context"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"log/slog"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluice-io/sluice/internal/vfs"
)

// LSN is a logical byte position in the log. It grows forever across
// files: a record's LSN is where its frame starts and its end is the LSN
// plus the framed size. Only record frames advance it; file headers and
// the unused tail of a file do not.
type LSN uint64

// WAL is a shared write-ahead log with group commit. Its methods are safe
// for concurrent use.
//
// Goroutines: Open starts three, all waited for by Close.
//   - the writer takes the whole pending batch, writes it with one
//     WriteAt per file and makes it durable with one Sync per file;
//   - the completer runs done callbacks in LSN order, so that the next
//     write and sync overlap the callbacks of the previous batch;
//   - the preparer creates (or recycles) the next file ahead of need.
//
// Lock order: trimMu, then mu, then pool.mu.
type WAL struct {
	opts Options
	log  *slog.Logger
	fs   vfs.FS
	dir  string

	// trimMu serializes Trim and Replay and guards recovered.
	trimMu    sync.Mutex
	recovered []fileInfo // files found by Open that Trim has not removed
	startEnd  LSN        // the end recovery found: where this run began

	mu struct {
		sync.Mutex
		pending        *batch
		pendingBytes   int
		firstPendingAt time.Time // when pending got its first record
		seq            uint64    // file the next record goes to
		seqBE          [8]byte   // seq, big-endian, for frameCRC
		fileOff        int64     // offset in that file of the next record
		end            LSN
		files          []fileInfo    // live .wal files, oldest first
		space          chan struct{} // closed when room is made; nil if nobody waits
		closed         bool
		appended       bool
		err            error // latched failure, wraps ErrFailed
	}
	end     atomic.Uint64 // mirrors mu.end for End
	durable atomic.Uint64
	// headerSeq is the newest file whose header is durable. Trim keeps
	// the files before it only: recovery needs a valid header to learn
	// where the LSNs stand.
	headerSeq atomic.Uint64

	wake     chan struct{}  // appenders nudge the writer; capacity 1
	closing  chan struct{}  // closed by Close
	comp     chan doneBatch // writer to completer
	recsFree chan []completion
	prepReq  chan uint64       // writer to preparer: prepare this seq
	prepared chan preparedFile // preparer to writer

	writerDone, completerDone, preparerDone chan struct{}

	// Owned by the writer goroutine.
	spare *batch
	cur   struct {
		seq uint64
		f   vfs.File
	}

	pool struct {
		sync.Mutex
		seqs []uint64 // .free files ready for reuse
	}

	stats struct {
		appends, records, bytes, syncs, rotations, rotationWaits atomic.Uint64
		syncNanos, syncMaxNanos, rotationWaitNanos               atomic.Int64
	}

	closeOnce sync.Once
	closeErr  error
}

// batch is a run of framed records (and the headers of the files they
// open) waiting to be written.
type batch struct {
	buf  []byte
	segs []segment // the pieces of buf, one per file, in order
	recs []completion
	nrec int
	end  LSN
}

// segment is the part of a batch that goes to one file.
type segment struct {
	seq    uint64
	off    int64 // file offset of buf[lo]
	lo, hi int
}

type completion struct {
	end  LSN
	done func(LSN, error)
}

// doneBatch is a written batch handed to the completer.
type doneBatch struct {
	recs []completion
	err  error
}

type preparedFile struct {
	seq uint64
	f   vfs.File
	err error
}

const (
	// compQueueLen bounds the written batches waiting for their
	// callbacks; past it the writer waits, and Append then blocks once
	// MaxPendingBytes fill up.
	compQueueLen = 8
)

// Open recovers the log in opts.Dir (see docs/format/wal.md) and starts a
// fresh file at the recovered end, so that a torn tail is never written
// over. Call Replay, if needed, before the first Append.
func Open(opts Options) (*WAL, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	o := opts.withDefaults()
	if err := o.FS.MkdirAll(o.Dir); err != nil {
		return nil, fmt.Errorf("wal: create dir: %w", err)
	}
	r, err := recoverDir(o.FS, o.Dir, o.Logger)
	if err != nil {
		return nil, err
	}
	w := &WAL{
		opts:          o,
		log:           o.Logger,
		fs:            o.FS,
		dir:           o.Dir,
		recovered:     r.files,
		startEnd:      r.end,
		wake:          make(chan struct{}, 1),
		closing:       make(chan struct{}),
		comp:          make(chan doneBatch, compQueueLen),
		recsFree:      make(chan []completion, compQueueLen+2),
		prepReq:       make(chan uint64, o.PrepareAhead),
		prepared:      make(chan preparedFile, o.PrepareAhead),
		writerDone:    make(chan struct{}),
		completerDone: make(chan struct{}),
		preparerDone:  make(chan struct{}),
		spare:         &batch{},
	}
	if err := w.setUpPool(r); err != nil {
		return nil, err
	}
	// Seqs only grow, .free names included, so a physical file is
	// renamed only to higher seqs and never again meets the seq its
	// stale records were checksummed with.
	if r.maxSeq == math.MaxUint64 {
		return nil, &CorruptError{Path: walPath(o.Dir, r.maxSeq), Reason: "no seq left after this file's"}
	}
	seq := r.maxSeq + 1
	f, err := w.startFile(seq, r.end)
	if err != nil {
		return nil, err
	}
	w.cur.seq, w.cur.f = seq, f
	w.mu.pending = &batch{}
	w.mu.seq = seq
	putSeq(w.mu.seqBE[:], seq)
	w.mu.fileOff = fileHeaderBytes
	w.mu.end = r.end
	w.mu.files = append(slices.Clone(r.files), fileInfo{seq: seq, startLSN: r.end})
	w.end.Store(uint64(r.end))
	w.durable.Store(uint64(r.end))
	w.headerSeq.Store(seq)
	w.log.Info("wal: opened", "dir", o.Dir, "files", len(r.files), "end", uint64(r.end), "seq", seq)

	for i := range uint64(w.opts.PrepareAhead) {
		w.prepReq <- seq + 1 + i
	}
	go w.writeLoop()
	go w.completeLoop()
	go w.prepareLoop()
	return w, nil
}

// startFile prepares the file seq and makes its header, with startLSN,
// durable.
func (w *WAL) startFile(seq uint64, start LSN) (vfs.File, error) {
	// The file Open starts with is only preallocated, not zero-filled:
	// filling 64 MiB would delay every start. Files after it are filled
	// in the background.
	f, err := w.prepare(seq, false)
	if err != nil {
		return nil, err
	}
	var hdr [fileHeaderBytes]byte
	encodeFileHeader(hdr[:], fileHeader{seq: seq, startLSN: start})
	if _, err = f.WriteAt(hdr[:], 0); err == nil {
		err = f.Sync()
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("wal: start %s: %w", f.Name(), err)
	}
	return f, nil
}

// Append adds payload to the log and returns its LSN. The payload is
// copied; the caller may reuse it at once. done, if not nil, is called
// exactly once, on the completer goroutine and in LSN order, with the
// record's end: err == nil only after the fdatasync covering the record
// returned nil. done must not block, and must not call Append, AppendSync
// or Close: the completer would then wait for itself.
//
// If Append returns an error, the record was not accepted and done is not
// called. Append blocks while MaxPendingBytes are pending, until ctx is
// done.
func (w *WAL) Append(ctx context.Context, payload []byte, done func(end LSN, err error)) (LSN, error) {
	return w.AppendParts(ctx, payload, nil, done)
}

// AppendParts is Append of the payload head+body, without the caller
// having to copy the two into one buffer first (the storage engine puts a
// small header in front of each record batch this way).
func (w *WAL) AppendParts(ctx context.Context, head, body []byte, done func(end LSN, err error)) (LSN, error) {
	n := len(head) + len(body)
	if n > w.opts.MaxRecordBytes {
		return 0, fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, n, w.opts.MaxRecordBytes)
	}
	size := frameHeaderBytes + n
	// Checksum outside the lock: the frame CRC covers the payload first
	// for exactly this reason.
	pcrc := crc32.Update(crc32Payload(head), castagnoli, body)

	w.mu.Lock()
	for {
		if w.mu.closed {
			w.mu.Unlock()
			return 0, ErrClosed
		}
		if w.mu.err != nil {
			err := w.mu.err
			w.mu.Unlock()
			return 0, err
		}
		if w.mu.pendingBytes == 0 || w.mu.pendingBytes+size <= w.opts.MaxPendingBytes {
			break
		}
		if w.mu.space == nil {
			w.mu.space = make(chan struct{})
		}
		space := w.mu.space
		w.mu.Unlock()
		select {
		case <-space:
		case <-ctx.Done():
			return 0, ctx.Err()
		}
		w.mu.Lock()
	}
	lsn, nudge := w.appendLocked(head, body, pcrc, done)
	w.mu.Unlock()
	w.stats.appends.Add(1)
	if nudge {
		select {
		case w.wake <- struct{}{}:
		default:
		}
	}
	return lsn, nil
}

// appendLocked frames payload into the pending batch and reports whether
// the writer needs a nudge.
func (w *WAL) appendLocked(head, body []byte, pcrc uint32, done func(LSN, error)) (LSN, bool) {
	w.mu.appended = true
	b := w.mu.pending
	size := frameHeaderBytes + len(head) + len(body)
	lsn := w.mu.end
	// Records never span files. A record that does not fit starts a new
	// file, unless the current one has no record yet: then it stays and
	// the file grows, since a new file would not be bigger.
	if w.mu.fileOff > fileHeaderBytes && w.mu.fileOff+int64(size) > w.opts.FileBytes {
		w.rotateLocked(b, lsn)
	} else if len(b.segs) == 0 || b.segs[len(b.segs)-1].seq != w.mu.seq {
		b.segs = append(b.segs, segment{seq: w.mu.seq, off: w.mu.fileOff, lo: len(b.buf), hi: len(b.buf)})
	}
	start := len(b.buf)
	b.buf = slices.Grow(b.buf, size)[:start+size]
	frame := b.buf[start:]
	putFrameHeader(frame, len(head)+len(body), recordFull)
	copy(frame[frameHeaderBytes+copy(frame[frameHeaderBytes:], head):], body)
	binary.BigEndian.PutUint32(frame[0:4], frameCRC(pcrc, frame, w.mu.seqBE[:]))
	b.segs[len(b.segs)-1].hi = len(b.buf)

	end := lsn + LSN(size)
	w.mu.fileOff += int64(size)
	w.mu.end = end
	w.end.Store(uint64(end))
	if done != nil {
		b.recs = append(b.recs, completion{end: end, done: done})
	}
	b.nrec++
	b.end = end
	before := w.mu.pendingBytes
	w.mu.pendingBytes += size
	if b.nrec == 1 {
		if w.opts.SyncDelay > 0 {
			w.mu.firstPendingAt = time.Now()
		}
		return lsn, true
	}
	return lsn, before < w.opts.SyncBytes && w.mu.pendingBytes >= w.opts.SyncBytes
}

// rotateLocked moves appends to the next file, whose header (with start)
// goes into the same batch as its first records so that one sync makes
// both durable.
func (w *WAL) rotateLocked(b *batch, start LSN) {
	w.mu.seq++
	putSeq(w.mu.seqBE[:], w.mu.seq)
	b.segs = append(b.segs, segment{seq: w.mu.seq, off: 0, lo: len(b.buf)})
	n := len(b.buf)
	b.buf = slices.Grow(b.buf, fileHeaderBytes)[:n+fileHeaderBytes]
	encodeFileHeader(b.buf[n:], fileHeader{seq: w.mu.seq, startLSN: start})
	b.segs[len(b.segs)-1].hi = len(b.buf)
	w.mu.fileOff = fileHeaderBytes
	w.mu.pendingBytes += fileHeaderBytes
	w.mu.files = append(w.mu.files, fileInfo{seq: w.mu.seq, startLSN: start})
}

// waiter turns a done callback into a channel receive without allocating
// per call.
type waiter struct {
	ch   chan struct{}
	end  LSN
	err  error
	done func(LSN, error)
}

var waiters = sync.Pool{New: func() any {
	wt := &waiter{ch: make(chan struct{}, 1)}
	wt.done = wt.complete
	return wt
}}

func (wt *waiter) complete(end LSN, err error) {
	wt.end, wt.err = end, err
	wt.ch <- struct{}{}
}

// AppendSync appends payload and waits until the sync covering it
// returns. If ctx is done first it returns ctx.Err(); the record may still
// become durable.
func (w *WAL) AppendSync(ctx context.Context, payload []byte) (end LSN, err error) {
	wt := waiters.Get().(*waiter)
	if _, err := w.Append(ctx, payload, wt.done); err != nil {
		waiters.Put(wt)
		return 0, err
	}
	select {
	case <-wt.ch:
		end, err = wt.end, wt.err
		wt.err = nil
		waiters.Put(wt)
		return end, err
	case <-ctx.Done():
		// wt will still be completed; it is not returned to the pool.
		return 0, ctx.Err()
	}
}

// End returns the LSN after the last appended record.
func (w *WAL) End() LSN { return LSN(w.end.Load()) }

// DurableEnd returns the LSN after the last record made durable.
func (w *WAL) DurableEnd() LSN { return LSN(w.durable.Load()) }

// Err returns the latched failure, if any. It wraps ErrFailed and the
// cause.
func (w *WAL) Err() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.mu.err
}

// Close writes and syncs what is pending, runs the remaining callbacks,
// stops the goroutines and closes the files. It returns the latched
// failure, if any. It is idempotent; later calls return the same result.
func (w *WAL) Close() error {
	w.closeOnce.Do(func() {
		w.mu.Lock()
		w.mu.closed = true
		w.releaseSpaceLocked()
		w.mu.Unlock()
		close(w.closing)
		<-w.writerDone
		<-w.completerDone
		close(w.prepReq)
		<-w.preparerDone
		// Files prepared and never used: closed here, left blank on
		// disk (recovery reuses or removes them).
		for done := false; !done; {
			select {
			case pf := <-w.prepared:
				if pf.f != nil {
					pf.f.Close()
				}
			default:
				done = true
			}
		}
		err := w.Err()
		if cerr := w.cur.f.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("wal: close %s: %w", w.cur.f.Name(), cerr)
		}
		w.closeErr = err
		w.log.Info("wal: closed", "dir", w.dir, "end", uint64(w.End()), "err", err)
	})
	return w.closeErr
}

// releaseSpaceLocked wakes appenders waiting for room.
func (w *WAL) releaseSpaceLocked() {
	if w.mu.space != nil {
		close(w.mu.space)
		w.mu.space = nil
	}
}

// fail latches cause and returns the latched error.
func (w *WAL) fail(cause error) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.mu.err == nil {
		w.mu.err = fmt.Errorf("%w: %w", ErrFailed, cause)
		w.log.Error("wal: failed; no more appends until reopened", "dir", w.dir, "err", cause)
		w.releaseSpaceLocked()
	}
	return w.mu.err
}
