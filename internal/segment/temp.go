package segment

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"

	"github.com/sluice-io/sluice/internal/batch"
	"github.com/sluice-io/sluice/internal/index"
	"github.com/sluice-io/sluice/internal/vfs"
)

// Suffixes of a compaction's output before it replaces the segments it
// was made from (docs/format/segment.md, "Compaction"): written as
// .cleaned, renamed to .swap once complete and synced (the commit point),
// renamed to the plain names once the old segments are gone.
const (
	CleanedSuffix = ".cleaned"
	SwapSuffix    = ".swap"
)

// ParseTempName parses the name of a compaction's file, such as
// 00000000000000000042.log.swap: the base offset, the file's own suffix
// (.log, .index or .timeindex) and the temporary one.
func ParseTempName(name string) (base int64, suffix, tmp string, ok bool) {
	tmp = filepath.Ext(name)
	if tmp != CleanedSuffix && tmp != SwapSuffix {
		return 0, "", "", false
	}
	base, suffix, ok = ParseName(strings.TrimSuffix(name, tmp))
	if !ok || (suffix != LogSuffix && suffix != IndexSuffix && suffix != TimeIndexSuffix && suffix != TxnIndexSuffix) {
		return 0, "", "", false
	}
	return base, suffix, tmp, true
}

// CreateTemp starts a compaction's output segment at base, in files named
// with CleanedSuffix. It is appended to like an active segment; then
// CommitTemp, InstallTemp and Settle (or RemoveTemp to give up).
func CreateTemp(fsys vfs.FS, dir string, base int64, opts Options) (*Segment, error) {
	s := newSegment(fsys, dir, base, opts)
	s.tmp = CleanedSuffix
	return create(s)
}

// CommitTemp writes the indexes of a compaction's output, syncs the log and
// the indexes, and renames the files from .cleaned to .swap, the log last.
// Once the caller has synced the directory the output is committed:
// recovery completes the swap instead of discarding it. The segment is then
// Flushed, but keeps its handle and in-memory indexes until Settle.
func (s *Segment) CommitTemp() error {
	if s.tmp != CleanedSuffix || s.active == nil {
		return fmt.Errorf("segment: commit %s: not a compaction output", s.Path(LogSuffix))
	}
	if err := s.writeIndexes(); err != nil {
		return err
	}
	if err := s.active.f.Sync(); err != nil {
		return fmt.Errorf("segment: sync %s: %w", s.Path(LogSuffix), err)
	}
	if err := s.renameTemp(SwapSuffix); err != nil {
		return err
	}
	s.state = Flushed
	s.flushedSize = s.size
	return nil
}

// InstallTemp renames a committed compaction output to the segment's plain
// names, the log last. The caller has removed the segments it replaces
// and synced the directory first, and syncs it again afterwards. It
// changes no field, so readers may use the segment meanwhile (through its
// own handle); Settle then records the new names.
func (s *Segment) InstallTemp() error {
	if s.tmp != SwapSuffix {
		return fmt.Errorf("segment: install %s: not committed", s.Path(LogSuffix))
	}
	return s.renameFiles(SwapSuffix, "")
}

func (s *Segment) renameTemp(to string) error {
	if err := s.renameFiles(s.tmp, to); err != nil {
		return err
	}
	s.tmp = to
	return nil
}

func (s *Segment) renameFiles(from, to string) error {
	for _, suf := range []string{IndexSuffix, TimeIndexSuffix, TxnIndexSuffix, LogSuffix} {
		src := filepath.Join(s.dir, Name(s.base)+suf+from)
		dst := filepath.Join(s.dir, Name(s.base)+suf+to)
		if err := s.fs.Rename(src, dst); err != nil {
			return fmt.Errorf("segment: rename %s: %w", src, err)
		}
	}
	return nil
}

// Settle makes an installed compaction output an ordinary flushed segment:
// its files go by their plain names, its indexes go to the index cache and
// its handle is released, so reads go through the caches like any sealed
// segment's. The caller holds the owner's lock.
func (s *Segment) Settle(env *Env) {
	s.tmp = ""
	if s.active == nil {
		return // closed meanwhile
	}
	if env != nil && env.Indexes != nil {
		env.Indexes.Put(s.IndexKey(), s.offsets, s.times)
	}
	s.offsets, s.times = nil, nil
	s.txn = txnState{}
	s.active.Release()
	s.active = nil
}

// RemoveTemp closes a compaction output that will not be used and removes
// its files under either temporary name.
func (s *Segment) RemoveTemp() error {
	s.Close()
	var errs []error
	for _, suf := range []string{LogSuffix, IndexSuffix, TimeIndexSuffix, TxnIndexSuffix} {
		for _, tmp := range []string{CleanedSuffix, SwapSuffix} {
			p := filepath.Join(s.dir, Name(s.base)+suf+tmp)
			if err := s.fs.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
				errs = append(errs, err)
			}
		}
	}
	s.state = Deleted
	if len(errs) > 0 {
		return fmt.Errorf("segment: remove compaction output: %w", errors.Join(errs...))
	}
	return nil
}

// RecoverSwap verifies a committed compaction output, <base>.log.swap,
// that a crash left behind, and returns the offset after its last batch:
// the swap replaces every segment whose base lies in [base, next). The
// swap was synced before it was named so, so anything short of a whole,
// valid log is damage from outside and a *CorruptError.
func RecoverSwap(fsys vfs.FS, dir string, base int64) (next int64, err error) {
	s := newSegment(fsys, dir, base, Options{IndexIntervalBytes: MaxBytes})
	s.tmp = SwapSuffix
	s.offsets, s.times = index.NewOffsets(base), index.NewTimes(base)
	f, err := fsys.Open(s.Path(LogSuffix))
	if err != nil {
		return 0, fmt.Errorf("segment: recover swap: %w", err)
	}
	defer f.Close()
	size, err := f.Size()
	if err != nil {
		return 0, fmt.Errorf("segment: recover swap: %w", err)
	}
	end, err := s.scan(f, 0, size, base, true)
	if err != nil {
		return 0, err
	}
	if end != size || end == 0 {
		return 0, s.corrupt(end, errors.New("compaction output does not parse to its end"))
	}
	return s.next, nil
}

// Batches calls fn with every batch of a flushed segment, in order, each
// verified against its CRC; a batch that fails is a *CorruptError. The
// slice passed to fn is valid only during the call. It takes no lock: the
// owner must keep the segment from being removed or truncated meanwhile.
func (s *Segment) Batches(env *Env, fn func(b []byte, h batch.Header) error) error {
	return s.BatchesFrom(env, 0, fn)
}

// BatchesFrom is Batches starting at byte position from, which must be a
// batch boundary (PositionOf finds one).
func (s *Segment) BatchesFrom(env *Env, from int64, fn func(b []byte, h batch.Header) error) error {
	hd, err := s.acquireLog(env.Files)
	if err != nil {
		return err
	}
	defer hd.Release()
	f := hd.File()
	buf := make([]byte, 0, scanChunkBytes)
	bufPos := from
	for pos := from; pos < s.size; {
		if pos+batch.HeaderSize > bufPos+int64(len(buf)) {
			if buf, bufPos, err = fill(f, buf, pos, s.size, batch.HeaderSize); err != nil {
				return err
			}
			if len(buf) < batch.HeaderSize {
				return s.corrupt(pos, errors.New("torn batch header"))
			}
		}
		h, err := batch.ParseHeader(buf[pos-bufPos:])
		if err != nil {
			return s.corrupt(pos, err)
		}
		size := int64(h.Size())
		if size > maxScanBatchBytes || pos+size > s.size {
			return s.corrupt(pos, fmt.Errorf("batch length %d", size))
		}
		if pos+size > bufPos+int64(len(buf)) {
			if buf, bufPos, err = fill(f, buf, pos, s.size, int(size)); err != nil {
				return err
			}
			if int64(len(buf)) < size {
				return s.corrupt(pos, errors.New("torn batch"))
			}
		}
		b := buf[pos-bufPos : pos-bufPos+size]
		if h, err = batch.Verify(b); err != nil {
			return s.corrupt(pos, err)
		}
		if err := fn(b, h); err != nil {
			return err
		}
		pos += size
	}
	return nil
}
