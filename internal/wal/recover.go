package wal

import (
	"fmt"
	"log/slog"
	"math"
	"path/filepath"

	"github.com/sluice-io/sluice/internal/vfs"
)

// recovered is what Open found in the directory.
type recovered struct {
	files  []fileInfo // files with a valid header, in seq order, with their ends
	unused []uint64   // .wal files after the last valid one, never made durable
	free   []uint64   // .free files (the recycle pool)
	maxSeq uint64     // highest seq of any file we own, .free included
	end    LSN        // end of the last valid record
}

type walCandidate struct {
	seq    uint64
	path   string
	h      fileHeader
	st     headerState
	reason string
}

// recoverDir reads every header, then scans every valid file, applying the
// recovery rules of docs/format/wal.md:
//   - a blank header is normal only after the last valid file (a file
//     pre-created, or whose first sync never completed);
//   - each file's records must reach exactly the next file's startLSN;
//   - the last file ends at its first invalid frame (a torn tail).
//
// Every valid file is synced before recovery returns, so that records
// read here from the page cache of a crashed process are durable before
// the next file's header seals their end.
func recoverDir(fsys vfs.FS, dir string, log *slog.Logger) (*recovered, error) {
	names, err := fsys.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("wal: read dir: %w", err)
	}
	r := &recovered{}
	var wals []walCandidate
	for _, name := range names {
		seq, suffix, ok := parseName(name)
		if !ok {
			log.Warn("wal: ignoring unknown file", "dir", dir, "name", name)
			continue
		}
		r.maxSeq = max(r.maxSeq, seq)
		if suffix == freeSuffix {
			r.free = append(r.free, seq)
			continue
		}
		c, err := readCandidate(fsys, filepath.Join(dir, name), seq)
		if err != nil {
			return nil, err
		}
		wals = append(wals, c)
	}
	last := -1
	for i, c := range wals {
		if c.st == headerValid {
			last = i
		}
	}
	for i := last + 1; i < len(wals); i++ {
		r.unused = append(r.unused, wals[i].seq)
	}
	for _, c := range wals[:max(last, 0)] {
		if c.st != headerValid {
			return nil, &CorruptError{Path: c.path, Reason: fmt.Sprintf(
				"unreadable header (%s) before the valid file %s", c.reason, filepath.Base(wals[last].path))}
		}
	}
	for i := 0; i <= last; i++ {
		c := wals[i]
		bound := LSN(math.MaxUint64)
		if i < last {
			bound = wals[i+1].h.startLSN
			if bound < c.h.startLSN {
				return nil, &CorruptError{Path: wals[i+1].path, Offset: 16, Reason: fmt.Sprintf(
					"starts at LSN %d, before the previous file's start %d", bound, c.h.startLSN)}
			}
		}
		res, err := recoverFile(fsys, c, bound)
		if err != nil {
			return nil, err
		}
		if i < last && res.reason != "" {
			return nil, &CorruptError{Path: c.path, Offset: res.off, Reason: fmt.Sprintf(
				"records end at LSN %d (%s) but the next file starts at LSN %d", res.end, res.reason, bound)}
		}
		if i == last && res.reason != "" && res.reason != "end of file" && res.reason != "zero record type" {
			log.Info("wal: torn tail", "path", c.path, "offset", res.off, "lsn", res.end, "reason", res.reason)
		}
		r.files = append(r.files, fileInfo{seq: c.seq, startLSN: c.h.startLSN, end: res.end})
		r.end = res.end
	}
	return r, nil
}

func readCandidate(fsys vfs.FS, path string, seq uint64) (walCandidate, error) {
	f, err := fsys.Open(path)
	if err != nil {
		return walCandidate{}, fmt.Errorf("wal: open %s: %w", path, err)
	}
	defer f.Close()
	h, st, reason, err := readHeader(f)
	if err != nil {
		return walCandidate{}, fmt.Errorf("wal: read header of %s: %w", path, err)
	}
	switch {
	case st == headerNewer:
		return walCandidate{}, &CorruptError{Path: path, Reason: reason}
	case st == headerValid && h.seq != seq:
		// We zero a recycled file's header before renaming it, so a
		// mismatch is damage; it is harmless only after the last valid
		// file, where it is treated like any blank header.
		st, reason = headerBlank, fmt.Sprintf("header seq %d does not match the name", h.seq)
	}
	return walCandidate{seq: seq, path: path, h: h, st: st, reason: reason}, nil
}

func recoverFile(fsys vfs.FS, c walCandidate, bound LSN) (scanResult, error) {
	f, err := fsys.OpenRW(c.path)
	if err != nil {
		return scanResult{}, fmt.Errorf("wal: open %s: %w", c.path, err)
	}
	res, err := scanFile(f, c.path, c.h, 0, bound, nil)
	if err == nil {
		if serr := f.Sync(); serr != nil {
			err = fmt.Errorf("wal: sync %s: %w", c.path, serr)
		}
	}
	if cerr := f.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("wal: close %s: %w", c.path, cerr)
	}
	return res, err
}
