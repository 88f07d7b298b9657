package wal

import (
	"fmt"
)

// Replay calls fn, in LSN order, for every record recovered by Open whose
// LSN is at or after from. payload is valid only during the call. fn's
// error stops the replay and is returned as is.
//
// from should be an end LSN this log returned (from Append's done,
// AppendSync or End): those are record boundaries. A from inside a record
// skips that record. A from before the oldest record still held (trimmed
// away) or after the recovered end is an error matching ErrOutOfRange.
//
// Replay is allowed only before the first Append, and may be called more
// than once.
func (w *WAL) Replay(from LSN, fn func(lsn LSN, payload []byte) error) error {
	w.trimMu.Lock()
	defer w.trimMu.Unlock()
	w.mu.Lock()
	closed, appended := w.mu.closed, w.mu.appended
	first := w.mu.files[0].startLSN
	w.mu.Unlock()
	switch {
	case closed:
		return ErrClosed
	case appended:
		return errReplayAfterAppend
	case from < first:
		return fmt.Errorf("%w: replay from LSN %d, but the oldest record held starts at %d", ErrOutOfRange, from, first)
	case from > w.startEnd:
		return fmt.Errorf("%w: replay from LSN %d, past the recovered end %d", ErrOutOfRange, from, w.startEnd)
	}
	for _, fi := range w.recovered {
		if fi.end <= from {
			continue
		}
		if err := w.replayFile(fi, from, fn); err != nil {
			return err
		}
	}
	return nil
}

func (w *WAL) replayFile(fi fileInfo, from LSN, fn func(LSN, []byte) error) error {
	path := walPath(w.dir, fi.seq)
	f, err := w.fs.Open(path)
	if err != nil {
		return fmt.Errorf("wal: open %s: %w", path, err)
	}
	defer f.Close()
	res, err := scanFile(f, path, fileHeader{seq: fi.seq, startLSN: fi.startLSN}, from, fi.end, fn)
	if err != nil {
		return err
	}
	if res.reason != "" {
		// Open read these records; only a change behind our back explains it.
		return &CorruptError{Path: path, Offset: res.off, Reason: fmt.Sprintf(
			"records end at LSN %d (%s), but recovery found them up to %d", res.end, res.reason, fi.end)}
	}
	return nil
}
