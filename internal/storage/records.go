package storage

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// WAL record payloads written by the engine (docs/format/storage.md):
//
//	kind u8 | version u8 | topic id [16] | partition i32 | body
//
// kind 1, batch: body is one record batch with its offsets assigned.
// kind 2, log start: body is the new log start offset, i64.
const (
	recBatch    = 1
	recLogStart = 2

	recVersion    = 1
	recHeaderSize = 1 + 1 + 16 + 4
)

var errBadRecord = errors.New("storage: bad WAL record")

type partKey struct {
	topicID   [16]byte
	partition int32
}

func appendRecordHeader(dst []byte, kind byte, k partKey) []byte {
	dst = append(dst, kind, recVersion)
	dst = append(dst, k.topicID[:]...)
	return binary.BigEndian.AppendUint32(dst, uint32(k.partition))
}

func decodeRecord(b []byte) (kind byte, k partKey, body []byte, err error) {
	if len(b) < recHeaderSize {
		return 0, k, nil, fmt.Errorf("%w: %d bytes", errBadRecord, len(b))
	}
	if b[1] != recVersion {
		return 0, k, nil, fmt.Errorf("%w: version %d", errBadRecord, b[1])
	}
	copy(k.topicID[:], b[2:18])
	k.partition = int32(binary.BigEndian.Uint32(b[18:22]))
	return b[0], k, b[recHeaderSize:], nil
}
