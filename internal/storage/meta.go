package storage

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/sluice-io/sluice/internal/partition"
	"github.com/sluice-io/sluice/internal/vfs"
)

// Partition metadata file, partition.metadata in each partition directory
// (docs/format/storage.md), big-endian:
//
//	magic "SLPM" | version u16 | flags u16 | topic id [16] | partition i32 |
//	name length u16 | topic name | crc32c u32 over everything before it
const (
	metaName    = "partition.metadata"
	metaMagic   = "SLPM"
	metaVersion = 1
	// deleteSuffix marks a partition directory being deleted; startup
	// finishes the job.
	deleteSuffix = "-delete"
	// maxTopicNameBytes is Kafka's limit on topic names.
	maxTopicNameBytes = 249
)

// ErrCorruptMeta is returned for a partition.metadata that fails its checks.
var ErrCorruptMeta = errors.New("storage: corrupt partition metadata")

func encodeMeta(id partition.ID) []byte {
	b := make([]byte, 0, 32+len(id.Topic))
	b = append(b, metaMagic...)
	b = binary.BigEndian.AppendUint16(b, metaVersion)
	b = binary.BigEndian.AppendUint16(b, 0)
	b = append(b, id.TopicID[:]...)
	b = binary.BigEndian.AppendUint32(b, uint32(id.Partition))
	b = binary.BigEndian.AppendUint16(b, uint16(len(id.Topic)))
	b = append(b, id.Topic...)
	return binary.BigEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
}

func decodeMeta(path string, b []byte) (partition.ID, error) {
	var id partition.ID
	bad := func(format string, args ...any) (partition.ID, error) {
		return id, fmt.Errorf("%w: %s: %s", ErrCorruptMeta, path, fmt.Sprintf(format, args...))
	}
	if len(b) < 4+2+2+16+4+2+4 {
		return bad("%d bytes is too short", len(b))
	}
	if string(b[:4]) != metaMagic {
		return bad("magic %q", b[:4])
	}
	if v := binary.BigEndian.Uint16(b[4:]); v != metaVersion {
		return bad("version %d, this binary reads %d", v, metaVersion)
	}
	if got, want := crc32.Checksum(b[:len(b)-4], castagnoli), binary.BigEndian.Uint32(b[len(b)-4:]); got != want {
		return bad("crc %#08x, computed %#08x", want, got)
	}
	copy(id.TopicID[:], b[8:24])
	id.Partition = int32(binary.BigEndian.Uint32(b[24:]))
	n := int(binary.BigEndian.Uint16(b[28:]))
	if 30+n+4 != len(b) {
		return bad("name length %d does not fit %d bytes", n, len(b))
	}
	id.Topic = string(b[30 : 30+n])
	return id, nil
}

// partDirName is Kafka's directory name for a partition: topic-partition.
func partDirName(id partition.ID) string { return id.Topic + "-" + strconv.Itoa(int(id.Partition)) }

// looksLikePartitionDir filters directory names before reading metadata.
func looksLikePartitionDir(name string) bool {
	i := strings.LastIndexByte(name, '-')
	if i <= 0 || strings.HasSuffix(name, deleteSuffix) {
		return false
	}
	_, err := strconv.ParseInt(name[i+1:], 10, 32)
	return err == nil
}

func writeMeta(fsys vfs.FS, dir string, id partition.ID, sync bool) error {
	f, err := fsys.Create(filepath.Join(dir, metaName))
	if err != nil {
		return err
	}
	if _, err := f.WriteAt(encodeMeta(id), 0); err != nil {
		f.Close()
		return err
	}
	if sync {
		if err := f.Sync(); err != nil {
			f.Close()
			return err
		}
	}
	return f.Close()
}

func readMeta(fsys vfs.FS, dir string) (partition.ID, error) {
	path := filepath.Join(dir, metaName)
	f, err := fsys.Open(path)
	if err != nil {
		return partition.ID{}, err
	}
	defer f.Close()
	size, err := f.Size()
	if err != nil {
		return partition.ID{}, err
	}
	if size > 4096 {
		return partition.ID{}, fmt.Errorf("%w: %s: %d bytes", ErrCorruptMeta, path, size)
	}
	b := make([]byte, size)
	if n, err := f.ReadAt(b, 0); int64(n) != size {
		return partition.ID{}, fmt.Errorf("storage: read %s: %w", path, err)
	}
	return decodeMeta(path, b)
}
