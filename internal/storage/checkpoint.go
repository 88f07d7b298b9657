package storage

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"path/filepath"

	"github.com/sluice-io/sluice/internal/partition"
	"github.com/sluice-io/sluice/internal/vfs"
)

// Checkpoint file layout (docs/format/storage.md), big-endian:
//
//	magic "SLCK" | version u16 | flags u16 | wal position u64 | count u32
//	count x (topic id [16] | partition i32 | segment base i64 |
//	         position i64 | next i64 | log start i64 | cleaned to i64 |
//	         producers length u32 | producers bytes)
//	crc32c u32 over everything before it
//
// Version 1 entries end at log start (cleaned to reads as 0: all dirty);
// version 2 entries at cleaned to (no inline producer snapshot).
const (
	checkpointName    = "checkpoint"
	checkpointMagic   = "SLCK"
	checkpointVersion = 3
	cpHeaderSize      = 4 + 2 + 2 + 8 + 4
	cpEntrySizeV1     = 16 + 4 + 8 + 8 + 8 + 8
	cpEntrySizeV2     = cpEntrySizeV1 + 8
	cpEntryMinSize    = cpEntrySizeV2 + 4 // version 3, without producer bytes
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// ErrCorruptCheckpoint is returned when the checkpoint file fails its checks.
var ErrCorruptCheckpoint = errors.New("storage: corrupt checkpoint")

type checkpoint struct {
	lsn   uint64
	parts map[partKey]partition.FlushState
}

func encodeCheckpoint(cp checkpoint) []byte {
	size := cpHeaderSize + 4
	for _, st := range cp.parts {
		size += cpEntryMinSize + len(st.Producers)
	}
	b := make([]byte, 0, size)
	b = append(b, checkpointMagic...)
	b = binary.BigEndian.AppendUint16(b, checkpointVersion)
	b = binary.BigEndian.AppendUint16(b, 0)
	b = binary.BigEndian.AppendUint64(b, cp.lsn)
	b = binary.BigEndian.AppendUint32(b, uint32(len(cp.parts)))
	for k, st := range cp.parts {
		b = append(b, k.topicID[:]...)
		b = binary.BigEndian.AppendUint32(b, uint32(k.partition))
		b = binary.BigEndian.AppendUint64(b, uint64(st.SegmentBase))
		b = binary.BigEndian.AppendUint64(b, uint64(st.Position))
		b = binary.BigEndian.AppendUint64(b, uint64(st.Next))
		b = binary.BigEndian.AppendUint64(b, uint64(st.LogStart))
		b = binary.BigEndian.AppendUint64(b, uint64(st.CleanedTo))
		b = binary.BigEndian.AppendUint32(b, uint32(len(st.Producers)))
		b = append(b, st.Producers...)
	}
	return binary.BigEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
}

func decodeCheckpoint(path string, b []byte) (checkpoint, error) {
	bad := func(off int, format string, args ...any) (checkpoint, error) {
		return checkpoint{}, fmt.Errorf("%w: %s at byte %d: %s", ErrCorruptCheckpoint, path, off, fmt.Sprintf(format, args...))
	}
	if len(b) < cpHeaderSize+4 {
		return bad(0, "%d bytes is too short", len(b))
	}
	if string(b[:4]) != checkpointMagic {
		return bad(0, "magic %q", b[:4])
	}
	v := binary.BigEndian.Uint16(b[4:])
	var fixed int
	switch v {
	case 1:
		fixed = cpEntrySizeV1
	case 2:
		fixed = cpEntrySizeV2
	case 3:
		fixed = cpEntryMinSize
	default:
		return bad(4, "version %d, this binary reads 1 to %d", v, checkpointVersion)
	}
	body, sum := b[:len(b)-4], binary.BigEndian.Uint32(b[len(b)-4:])
	if got := crc32.Checksum(body, castagnoli); got != sum {
		return bad(len(b)-4, "crc %#08x, computed %#08x", sum, got)
	}
	n := int(binary.BigEndian.Uint32(b[16:]))
	if n > (len(body)-cpHeaderSize)/fixed {
		return bad(16, "%d entries do not fit %d bytes", n, len(body))
	}
	cp := checkpoint{lsn: binary.BigEndian.Uint64(b[8:]), parts: make(map[partKey]partition.FlushState, n)}
	off := cpHeaderSize
	for i := 0; i < n; i++ {
		if len(body)-off < fixed {
			return bad(off, "entry %d of %d is cut short", i, n)
		}
		e := body[off:]
		var k partKey
		copy(k.topicID[:], e[:16])
		k.partition = int32(binary.BigEndian.Uint32(e[16:]))
		st := partition.FlushState{
			SegmentBase: int64(binary.BigEndian.Uint64(e[20:])),
			Position:    int64(binary.BigEndian.Uint64(e[28:])),
			Next:        int64(binary.BigEndian.Uint64(e[36:])),
			LogStart:    int64(binary.BigEndian.Uint64(e[44:])),
		}
		if v >= 2 {
			st.CleanedTo = int64(binary.BigEndian.Uint64(e[52:]))
		}
		off += fixed
		if v >= 3 {
			m := int(binary.BigEndian.Uint32(e[60:]))
			if m > partition.InlineSnapshotBytesMax || m > len(body)-off {
				return bad(off-4, "entry %d: %d bytes of producer state", i, m)
			}
			if m > 0 {
				st.Producers = append([]byte(nil), body[off:off+m]...)
			}
			off += m
		}
		if _, dup := cp.parts[k]; dup {
			return bad(off, "entry %d repeats partition %d", i, k.partition)
		}
		cp.parts[k] = st
	}
	if off != len(body) {
		return bad(off, "%d bytes after the last entry", len(body)-off)
	}
	return cp, nil
}

// readCheckpoint returns the checkpoint in dir; ok is false when there is
// none yet.
func readCheckpoint(fsys vfs.FS, dir string) (cp checkpoint, ok bool, err error) {
	path := filepath.Join(dir, checkpointName)
	f, err := fsys.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return checkpoint{parts: map[partKey]partition.FlushState{}}, false, nil
	}
	if err != nil {
		return cp, false, err
	}
	defer f.Close()
	size, err := f.Size()
	if err != nil {
		return cp, false, err
	}
	b := make([]byte, size)
	if _, err := f.ReadAt(b, 0); err != nil && int64(len(b)) != size {
		return cp, false, err
	}
	cp, err = decodeCheckpoint(path, b)
	return cp, err == nil, err
}

// writeCheckpoint replaces the checkpoint atomically: a temporary file,
// synced, renamed over the old one, and the directory synced.
func writeCheckpoint(fsys vfs.FS, dir string, cp checkpoint) error {
	tmp := filepath.Join(dir, checkpointName+".tmp")
	f, err := fsys.Create(tmp)
	if err != nil {
		return fmt.Errorf("storage: checkpoint: %w", err)
	}
	b := encodeCheckpoint(cp)
	if _, err := f.WriteAt(b, 0); err != nil {
		f.Close()
		return fmt.Errorf("storage: checkpoint: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("storage: checkpoint: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("storage: checkpoint: %w", err)
	}
	if err := fsys.Rename(tmp, filepath.Join(dir, checkpointName)); err != nil {
		return fmt.Errorf("storage: checkpoint: %w", err)
	}
	if err := fsys.SyncDir(dir); err != nil {
		return fmt.Errorf("storage: checkpoint: %w", err)
	}
	return nil
}
