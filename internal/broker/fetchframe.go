package broker

import (
	"encoding/binary"
	"os"

	"github.com/sluice-io/sluice/internal/server"
)

// A Fetch response written by hand around file ranges, so the record bytes
// go from the segment files to the socket with sendfile instead of being
// copied into a kmsg.FetchResponse. The layout is kmsg's FetchResponse
// encoding for versions 4 to 18 with the fields the broker sets; the test
// TestFetchFrameMatchesKmsg checks it byte for byte against
// FetchResponse.AppendTo at every version we serve.
//
// Fields we always write as their defaults: ThrottleMillis 0, null
// AbortedTransactions (no transactions yet), PreferredReadReplica -1, and
// no tagged fields (DivergingEpoch, CurrentLeader, SnapshotID, Brokers).

type frameTopic struct {
	name  string
	id    [16]byte
	parts []framePart
}

type framePart struct {
	partition int32
	errCode   int16
	hw        int64
	lso       int64
	logStart  int64
	// The records: inline bytes, or file's n bytes from pos.
	records []byte
	file    *os.File
	pos, n  int64
}

func (p *framePart) recordsLen() int64 {
	if p.file != nil {
		return p.n
	}
	return int64(len(p.records))
}

// fetchFrame encodes a Fetch response body (everything after the response
// header) at version as parts: byte runs, and file ranges for records.
func fetchFrame(version, errCode int16, sessionID int32, topics []frameTopic) []server.Part {
	flexible := version >= 12
	var parts []server.Part
	buf := make([]byte, 0, 256)
	flush := func() {
		if len(buf) > 0 {
			parts = append(parts, server.Part{Bytes: buf})
			buf = make([]byte, 0, 256)
		}
	}
	be := binary.BigEndian
	arrayLen := func(n int) {
		if flexible {
			buf = binary.AppendUvarint(buf, uint64(n)+1)
		} else {
			buf = be.AppendUint32(buf, uint32(n))
		}
	}
	buf = be.AppendUint32(buf, 0) // throttle_time_ms (v1+)
	if version >= 7 {
		buf = be.AppendUint16(buf, uint16(errCode))
		buf = be.AppendUint32(buf, uint32(sessionID))
	}
	arrayLen(len(topics))
	for i := range topics {
		t := &topics[i]
		if version <= 12 {
			if flexible {
				buf = binary.AppendUvarint(buf, uint64(len(t.name))+1)
			} else {
				buf = be.AppendUint16(buf, uint16(len(t.name)))
			}
			buf = append(buf, t.name...)
		} else {
			buf = append(buf, t.id[:]...)
		}
		arrayLen(len(t.parts))
		for j := range t.parts {
			p := &t.parts[j]
			buf = be.AppendUint32(buf, uint32(p.partition))
			buf = be.AppendUint16(buf, uint16(p.errCode))
			buf = be.AppendUint64(buf, uint64(p.hw))
			buf = be.AppendUint64(buf, uint64(p.lso)) // v4+
			if version >= 5 {
				buf = be.AppendUint64(buf, uint64(p.logStart))
			}
			// aborted_transactions: null (v4+).
			if flexible {
				buf = append(buf, 0)
			} else {
				buf = be.AppendUint32(buf, 0xffffffff)
			}
			if version >= 11 {
				buf = be.AppendUint32(buf, 0xffffffff) // preferred_read_replica -1
			}
			n := p.recordsLen()
			if flexible {
				buf = binary.AppendUvarint(buf, uint64(n)+1)
			} else {
				buf = be.AppendUint32(buf, uint32(n))
			}
			if p.file != nil {
				flush()
				parts = append(parts, server.Part{File: p.file, Offset: p.pos, Length: p.n})
			} else if n > 0 {
				flush()
				parts = append(parts, server.Part{Bytes: p.records})
			}
			if flexible {
				buf = append(buf, 0) // partition tagged fields
			}
		}
		if flexible {
			buf = append(buf, 0) // topic tagged fields
		}
	}
	if flexible {
		buf = append(buf, 0) // response tagged fields
	}
	flush()
	return parts
}
