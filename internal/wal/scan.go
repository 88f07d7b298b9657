package wal

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/sluice-io/sluice/internal/vfs"
)

// File names: <seq as 16 lowercase hex digits>.wal for log files and
// <seq>.free for trimmed files kept for recycling. Fixed-width hex makes
// name order equal seq order.
const (
	walSuffix  = ".wal"
	freeSuffix = ".free"
	seqDigits  = 16

	// readChunkBytes is how much the scanner reads at a time.
	readChunkBytes = 1 << 20
)

func walPath(dir string, seq uint64) string {
	return filepath.Join(dir, fmt.Sprintf("%016x%s", seq, walSuffix))
}

func freePath(dir string, seq uint64) string {
	return filepath.Join(dir, fmt.Sprintf("%016x%s", seq, freeSuffix))
}

// parseName returns the seq and suffix of a file name we own.
func parseName(name string) (seq uint64, suffix string, ok bool) {
	for _, s := range []string{walSuffix, freeSuffix} {
		stem, found := strings.CutSuffix(name, s)
		if !found || len(stem) != seqDigits || strings.ToLower(stem) != stem {
			continue
		}
		v, err := strconv.ParseUint(stem, 16, 64)
		if err != nil {
			return 0, "", false
		}
		return v, s, true
	}
	return 0, "", false
}

// fileInfo describes a .wal file that holds (or will hold) records.
type fileInfo struct {
	seq      uint64
	startLSN LSN
	// end is the LSN after the last valid record; set only for files
	// found by recovery.
	end LSN
}

// frameScanner reads the frames of one file, in order, through a read
// buffer.
type frameScanner struct {
	f      vfs.File
	path   string
	size   int64
	seqBE  [8]byte
	buf    []byte
	bufOff int64
}

func newFrameScanner(f vfs.File, path string, seq uint64) (*frameScanner, error) {
	size, err := f.Size()
	if err != nil {
		return nil, fmt.Errorf("wal: size of %s: %w", path, err)
	}
	s := &frameScanner{f: f, path: path, size: size}
	putSeq(s.seqBE[:], seq)
	return s, nil
}

// read returns the n bytes at off; the caller has checked that they lie
// within the file.
func (s *frameScanner) read(off int64, n int) ([]byte, error) {
	if off >= s.bufOff && off+int64(n) <= s.bufOff+int64(len(s.buf)) {
		return s.buf[off-s.bufOff:][:n], nil
	}
	want := int64(max(n, readChunkBytes))
	want = min(want, s.size-off)
	if int64(cap(s.buf)) < want {
		s.buf = make([]byte, want)
	}
	s.buf = s.buf[:want]
	m, err := s.f.ReadAt(s.buf, off)
	if m < len(s.buf) {
		s.buf = s.buf[:0]
		if err == nil || errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, fmt.Errorf("wal: read %s at %d: %w", s.path, off, err)
	}
	s.bufOff = off
	return s.buf[:n], nil
}

// frame decodes the frame at file offset off. It returns the payload
// (valid until the next call) and the frame's size, or a non-empty reason
// why there is no valid frame there: the end of the log in this file.
// err is an I/O error or a frame from a newer format.
func (s *frameScanner) frame(off int64) (payload []byte, size int64, reason string, err error) {
	if s.size-off < frameHeaderBytes {
		if s.size == off {
			return nil, 0, "end of file", nil
		}
		return nil, 0, "truncated frame header", nil
	}
	hdr, err := s.read(off, frameHeaderBytes)
	if err != nil {
		return nil, 0, "", err
	}
	length := int64(binary.BigEndian.Uint32(hdr[4:8]))
	typ, ver := hdr[8], hdr[9]
	want := binary.BigEndian.Uint32(hdr[0:4])
	if typ == recordInvalid {
		return nil, 0, "zero record type", nil
	}
	if s.size-off-frameHeaderBytes < length {
		return nil, 0, "truncated frame", nil
	}
	frame, err := s.read(off, frameHeaderBytes+int(length))
	if err != nil {
		return nil, 0, "", err
	}
	payload = frame[frameHeaderBytes:]
	c := crc32Payload(payload)
	if frameCRC(c, frame[:frameHeaderBytes], s.seqBE[:]) != want {
		return nil, 0, "checksum mismatch", nil
	}
	// The checksum holds, so this frame was written by us, for this seq:
	// an unknown type or version is a newer format, not damage.
	if ver != frameVersion || typ != recordFull {
		return nil, 0, "", &CorruptError{Path: s.path, Offset: off,
			Reason: fmt.Sprintf("unsupported record type %d version %d", typ, ver)}
	}
	return payload, frameHeaderBytes + length, "", nil
}

// scanResult is what scanning one file found.
type scanResult struct {
	end    LSN    // after the last valid record read
	off    int64  // file offset of end
	reason string // why the scan stopped before bound; "" if it reached it
}

// scanFile walks the records of one file from its header until the first
// invalid frame or until bound (the next file's startLSN, or the end
// recovery found), calling fn for records at or after from. A record that
// crosses bound is corruption: the next file claims its LSNs.
func scanFile(f vfs.File, path string, h fileHeader, from, bound LSN,
	fn func(LSN, []byte) error) (scanResult, error) {
	s, err := newFrameScanner(f, path, h.seq)
	if err != nil {
		return scanResult{}, err
	}
	lsn, off := h.startLSN, int64(fileHeaderBytes)
	for lsn < bound {
		payload, size, reason, err := s.frame(off)
		if err != nil {
			return scanResult{}, err
		}
		if reason != "" {
			return scanResult{end: lsn, off: off, reason: reason}, nil
		}
		if uint64(size) > uint64(bound-lsn) {
			return scanResult{}, &CorruptError{Path: path, Offset: off, Reason: fmt.Sprintf(
				"record at LSN %d (%d bytes) runs past LSN %d, where the next file starts", lsn, size, bound)}
		}
		if fn != nil && lsn >= from {
			if err := fn(lsn, payload); err != nil {
				return scanResult{}, err
			}
		}
		lsn += LSN(size)
		off += size
	}
	return scanResult{end: lsn, off: off}, nil
}

// readHeader reads and classifies the header of an open file.
func readHeader(f vfs.File) (fileHeader, headerState, string, error) {
	var b [fileHeaderBytes]byte
	n, err := f.ReadAt(b[:], 0)
	if err != nil && !errors.Is(err, io.EOF) {
		return fileHeader{}, headerBlank, "", err
	}
	h, st, reason := decodeFileHeader(b[:n])
	return h, st, reason, nil
}
