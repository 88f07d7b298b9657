package wal

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
)

// The byte layouts below are documented in docs/format/wal.md; keep the two
// in step.

const (
	fileMagic   = "SLWL"
	fileVersion = 1

	// fileHeaderBytes is the size of the header at offset 0 of every file.
	fileHeaderBytes = 32
	// frameHeaderBytes is the size of a record frame before its payload:
	// crc u32 | length u32 | type u8 | version u8.
	frameHeaderBytes = 10

	frameVersion = 1

	// maxRecordBytesLimit is the largest payload the format allows. The
	// length field is 32 bits; a quarter of that keeps every size
	// computation far from overflow on every platform.
	maxRecordBytesLimit = 1 << 30
)

// Record types. Only recordFull is written today; the others are reserved
// so that a future version can fragment records without a format break.
const (
	recordInvalid uint8 = 0 // zeroed or preallocated space
	recordFull    uint8 = 1 // a whole payload in one frame
	// 2..255 reserved (First, Middle, Last, ...).
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

var (
	// ErrClosed is returned by every method called after Close.
	ErrClosed = errors.New("wal: closed")
	// ErrFailed is wrapped, together with the cause, by the error that
	// latches the WAL after a failed write, sync or file creation.
	ErrFailed = errors.New("wal: failed")
	// ErrTooLarge is returned by Append for a payload above
	// Options.MaxRecordBytes.
	ErrTooLarge = errors.New("wal: record too large")
	// ErrCorrupt is matched (errors.Is) by every *CorruptError.
	ErrCorrupt = errors.New("wal: corrupt")
	// ErrOutOfRange is returned by Replay for a position the log does not
	// hold (trimmed away, or beyond the recovered end).
	ErrOutOfRange = errors.New("wal: position out of range")
	// errReplayAfterAppend is returned by Replay once Append has been
	// called: from then on the files are being written.
	errReplayAfterAppend = errors.New("wal: replay after append")
)

// CorruptError reports data that cannot be explained by a torn write at
// the tail of the log: a damaged file in the middle, a missing file, or a
// format written by a newer version.
type CorruptError struct {
	Path   string // file that holds the problem
	Offset int64  // byte offset in Path
	Reason string
}

func (e *CorruptError) Error() string {
	return fmt.Sprintf("wal: corrupt: %s at offset %d: %s", e.Path, e.Offset, e.Reason)
}

// Is makes errors.Is(err, ErrCorrupt) true for every CorruptError.
func (e *CorruptError) Is(target error) bool { return target == ErrCorrupt }

// fileHeader is the decoded header of a .wal file.
type fileHeader struct {
	seq      uint64
	startLSN LSN
}

// encodeFileHeader writes the 32-byte header into dst[:fileHeaderBytes].
//
//	0  magic "SLWL"   4  version u16   6  flags u16   8  seq u64
//	16 startLSN u64   24 reserved u32  28 crc32c of bytes [0,28)
func encodeFileHeader(dst []byte, h fileHeader) {
	_ = dst[fileHeaderBytes-1]
	copy(dst[0:4], fileMagic)
	binary.BigEndian.PutUint16(dst[4:6], fileVersion)
	binary.BigEndian.PutUint16(dst[6:8], 0)
	binary.BigEndian.PutUint64(dst[8:16], h.seq)
	binary.BigEndian.PutUint64(dst[16:24], uint64(h.startLSN))
	binary.BigEndian.PutUint32(dst[24:28], 0)
	binary.BigEndian.PutUint32(dst[28:32], crc32.Checksum(dst[0:28], castagnoli))
}

// headerState classifies a file header.
type headerState int

const (
	// headerBlank: never written, or written but not durable (torn). A
	// blank file holds no acknowledged record, because a file's header
	// is made durable by the same sync as its first records.
	headerBlank headerState = iota
	headerValid
	// headerNewer: a valid header from a newer format version. We refuse
	// it rather than guess.
	headerNewer
)

// decodeFileHeader classifies b (the first bytes of a file, possibly
// fewer than fileHeaderBytes) and decodes it when valid. reason says why a
// header is not valid.
func decodeFileHeader(b []byte) (h fileHeader, st headerState, reason string) {
	if len(b) < fileHeaderBytes {
		return h, headerBlank, "file shorter than its header"
	}
	if string(b[0:4]) != fileMagic {
		return h, headerBlank, "bad magic"
	}
	if crc32.Checksum(b[0:28], castagnoli) != binary.BigEndian.Uint32(b[28:32]) {
		return h, headerBlank, "header checksum mismatch"
	}
	h.seq = binary.BigEndian.Uint64(b[8:16])
	h.startLSN = LSN(binary.BigEndian.Uint64(b[16:24]))
	if v := binary.BigEndian.Uint16(b[4:6]); v != fileVersion {
		return h, headerNewer, fmt.Sprintf("unsupported file version %d", v)
	}
	if f := binary.BigEndian.Uint16(b[6:8]); f != 0 {
		return h, headerNewer, fmt.Sprintf("unsupported file flags %#x", f)
	}
	return h, headerValid, ""
}

// frameCRC is the checksum of one frame. It covers the payload, then the
// frame's length, type and version (hdr[4:10]), then the file's seq (8
// big-endian bytes in seqBE). The payload comes first so that Append can
// checksum it before taking the lock. The seq is not stored in the frame:
// mixing it in means a record left over from an earlier life of a
// recycled file never validates, since a file is only ever renamed to a
// higher seq.
func frameCRC(payloadCRC uint32, hdr []byte, seqBE []byte) uint32 {
	c := crc32.Update(payloadCRC, castagnoli, hdr[4:10])
	return crc32.Update(c, castagnoli, seqBE)
}

// putFrameHeader writes length, type and version into hdr[4:10]; the CRC
// at hdr[0:4] is filled in by the caller once it knows the seq.
func putFrameHeader(hdr []byte, length int, typ uint8) {
	binary.BigEndian.PutUint32(hdr[4:8], uint32(length))
	hdr[8] = typ
	hdr[9] = frameVersion
}

func putSeq(dst []byte, seq uint64) { binary.BigEndian.PutUint64(dst, seq) }

func crc32Payload(p []byte) uint32 { return crc32.Checksum(p, castagnoli) }
