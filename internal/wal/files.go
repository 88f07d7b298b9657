package wal

import (
	"errors"
	"fmt"
	"slices"

	"github.com/sluice-io/sluice/internal/vfs"
)

// setUpPool fills the recycle pool from the .free files and the unused
// files recovery found after the last valid one, removing what does not
// fit.
func (w *WAL) setUpPool(r *recovered) error {
	var errs []error
	var pooled []uint64
	for _, seq := range r.free {
		path := freePath(w.dir, seq)
		if len(pooled) < w.opts.RecycleFiles && w.smallEnough(path) {
			pooled = append(pooled, seq)
			continue
		}
		if err := w.fs.Remove(path); err != nil {
			errs = append(errs, fmt.Errorf("wal: remove %s: %w", path, err))
		}
	}
	for _, seq := range r.unused {
		// An unused .wal file holds nothing acknowledged; moving it out of
		// the way keeps the rule "blank headers only at the tail" true
		// once the fresh file exists.
		ok, err := w.retire(seq, len(pooled) < w.opts.RecycleFiles)
		if err != nil {
			errs = append(errs, err)
		} else if ok {
			pooled = append(pooled, seq)
		}
	}
	if len(r.unused)+len(r.free) > 0 {
		if err := w.fs.SyncDir(w.dir); err != nil {
			errs = append(errs, fmt.Errorf("wal: sync dir: %w", err))
		}
	}
	w.pool.seqs = pooled
	return errors.Join(errs...)
}

// smallEnough reports whether the file at path may be recycled: it did
// not grow past FileBytes for a big record.
func (w *WAL) smallEnough(path string) bool {
	fi, err := w.fs.Stat(path)
	return err == nil && fi.Size() <= w.opts.FileBytes
}

// retire renames the .wal file seq, which holds nothing needed, to its
// .free name if recycle allows it and it is small enough (pooled is then
// true), or removes it. The caller syncs the directory and only then adds
// the file to the pool: a recycled file's header is zeroed, and that must
// never happen to a file whose .wal name could come back in a crash.
func (w *WAL) retire(seq uint64, recycle bool) (pooled bool, err error) {
	path := walPath(w.dir, seq)
	if recycle && w.smallEnough(path) {
		if err := w.fs.Rename(path, freePath(w.dir, seq)); err != nil {
			return false, fmt.Errorf("wal: recycle %s: %w", path, err)
		}
		return true, nil
	}
	if err := w.fs.Remove(path); err != nil {
		return false, fmt.Errorf("wal: remove %s: %w", path, err)
	}
	return false, nil
}

// prepareLoop is the preparer goroutine: it makes the next file ready so
// that rotation never waits for file creation.
func (w *WAL) prepareLoop() {
	defer close(w.preparerDone)
	for seq := range w.prepReq {
		f, err := w.prepare(seq, true)
		w.prepared <- preparedFile{seq: seq, f: f, err: err}
	}
}

// prepare returns the file seq, created (or recycled), preallocated and
// durable in the directory, with a blank header: the header is written
// when the file's first records are, since only then is its startLSN
// known.
func (w *WAL) prepare(seq uint64, fill bool) (vfs.File, error) {
	path := walPath(w.dir, seq)
	w.pool.Lock()
	var from uint64
	recycle := len(w.pool.seqs) > 0
	if recycle {
		from = w.pool.seqs[0]
		w.pool.seqs = w.pool.seqs[1:]
	}
	w.pool.Unlock()
	if recycle {
		f, err := w.recycle(freePath(w.dir, from), path)
		if err == nil {
			return f, nil
		}
		w.log.Warn("wal: recycling failed; creating a new file", "from", freePath(w.dir, from), "err", err)
		if rerr := w.fs.Remove(freePath(w.dir, from)); rerr != nil {
			w.log.Warn("wal: remove", "path", freePath(w.dir, from), "err", rerr)
		}
	}
	f, err := w.fs.Create(path)
	if err != nil {
		return nil, fmt.Errorf("wal: create %s: %w", path, err)
	}
	if fill {
		err = fillFile(f, w.opts.FileBytes)
	} else {
		err = f.Preallocate(w.opts.FileBytes)
	}
	if err == nil {
		if err = f.Sync(); err == nil {
			err = w.fs.SyncDir(w.dir)
		}
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("wal: create %s: %w", path, err)
	}
	return f, nil
}

// fillFile extends f with zeros to size. Records then overwrite blocks
// that are already allocated and written, within the file's size, so the
// fdatasync that covers them writes data only: no inode or extent change
// for the filesystem journal to commit. That keeps the WAL's fsync from
// queuing behind a journal commit, which in ext4's ordered mode waits for
// the writeback of other files (the segments) as well. Zeros also end a
// recovery scan cleanly (a zero length is no frame). The fill is synced a
// chunk at a time, so it shares the disk with the writer's commits
// instead of stalling them behind one large flush.
func fillFile(f vfs.File, size int64) error {
	have, err := f.Size()
	if err != nil {
		return err
	}
	if have >= size {
		return nil
	}
	if err := f.Preallocate(size); err != nil {
		return err
	}
	zero := make([]byte, min(size-have, 1<<20))
	for off := have; off < size; off += int64(len(zero)) {
		n := min(int64(len(zero)), size-off)
		if _, err := f.WriteAt(zero[:n], off); err != nil {
			return err
		}
		// Sync each chunk: one sync of the whole file at the end would
		// queue 64 MiB of writeback at once in front of the writer's
		// commits (measured: p999 append latency 40-55 ms during a
		// fresh file's fill, about 25 ms with this).
		if err := f.Sync(); err != nil {
			return err
		}
	}
	return nil
}

// recycle turns a .free file into the blank file path. The old header is
// zeroed and synced before the rename: a file under a .wal name never
// carries a header from an earlier life. Its old records stay but cannot
// validate, since their checksums mix in an older seq.
func (w *WAL) recycle(from, path string) (vfs.File, error) {
	f, err := w.fs.OpenRW(from)
	if err != nil {
		return nil, err
	}
	var zero [fileHeaderBytes]byte
	if _, err = f.WriteAt(zero[:], 0); err == nil {
		if err = fillFile(f, w.opts.FileBytes); err == nil {
			err = f.Sync()
		}
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, err
	}
	if err := w.fs.Rename(from, path); err != nil {
		return nil, err
	}
	if err := w.fs.SyncDir(w.dir); err != nil {
		return nil, err
	}
	return w.fs.OpenRW(path)
}

// Trim drops every file whose records all end at or before upTo (the next
// file starts at or before upTo), recycling up to RecycleFiles of them.
// upTo is capped at DurableEnd. A file is kept until the header of the
// file after it is durable: recovery must always find a valid header
// that says where the LSNs stand, or a log trimmed to its end would
// restart at LSN 0. So the file appends go to is never dropped.
// Trim is not part of the write path: its errors do not latch the WAL.
func (w *WAL) Trim(upTo LSN) error {
	w.trimMu.Lock()
	defer w.trimMu.Unlock()
	upTo = min(upTo, w.DurableEnd())
	w.mu.Lock()
	if w.mu.closed {
		w.mu.Unlock()
		return ErrClosed
	}
	headerSeq := w.headerSeq.Load()
	n := 0
	for n+1 < len(w.mu.files) && w.mu.files[n+1].startLSN <= upTo && w.mu.files[n+1].seq <= headerSeq {
		n++
	}
	victims := slices.Clone(w.mu.files[:n])
	w.mu.Unlock()
	if n == 0 {
		return nil
	}
	var err error
	var pooled []uint64
	gone := 0
	for _, v := range victims {
		w.pool.Lock()
		room := len(w.pool.seqs)+len(pooled) < w.opts.RecycleFiles
		w.pool.Unlock()
		var ok bool
		if ok, err = w.retire(v.seq, room); err != nil {
			break
		}
		if ok {
			pooled = append(pooled, v.seq)
		}
		gone++
	}
	w.mu.Lock()
	w.mu.files = slices.Delete(w.mu.files, 0, gone)
	w.mu.Unlock()
	w.recovered = slices.DeleteFunc(w.recovered, func(fi fileInfo) bool {
		return gone > 0 && fi.seq <= victims[gone-1].seq
	})
	if gone == 0 {
		return err
	}
	if serr := w.fs.SyncDir(w.dir); serr != nil {
		// The .free files stay out of the pool; the next Open finds them.
		return errors.Join(err, fmt.Errorf("wal: sync dir: %w", serr))
	}
	w.pool.Lock()
	w.pool.seqs = append(w.pool.seqs, pooled...)
	w.pool.Unlock()
	w.log.Debug("wal: trimmed", "files", gone, "recycled", len(pooled), "upTo", uint64(upTo))
	return err
}
