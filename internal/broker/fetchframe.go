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
// Fields we always write as their defaults: ThrottleMillis 0,
// PreferredReadReplica -1, and no tagged fields (DivergingEpoch,
// CurrentLeader, SnapshotID, Brokers). AbortedTransactions is null for
// read_uncommitted fetches and a list (maybe empty) for read_committed.

type frameTopic struct {
	name  string
	id    [16]byte
	parts []framePart
}

// abortedTxn is one entry of a partition's AbortedTransactions.
type abortedTxn struct {
	producerID  int64
	firstOffset int64
}

type framePart struct {
	partition int32
	errCode   int16
	hw        int64
	lso       int64
	logStart  int64
	// committed: a read_committed fetch, which lists aborted (the
	// aborted transactions overlapping the records returned).
	committed bool
	aborted   []abortedTxn
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

// frameResponse is the response carrying fetchFrame's parts, with the error
// codes inside them listed for the metrics, which cannot look inside.
func frameResponse(version, errCode int16, sessionID int32, topics []frameTopic) server.Response {
	var codes []int16
	if errCode != 0 {
		codes = append(codes, errCode)
	}
	for i := range topics {
		for j := range topics[i].parts {
			if c := topics[i].parts[j].errCode; c != 0 {
				codes = append(codes, c)
			}
		}
	}
	return server.Response{Parts: fetchFrame(version, errCode, sessionID, topics), ErrorCodes: codes}
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
			// aborted_transactions (v4+): null unless read_committed.
			switch {
			case !p.committed && flexible:
				buf = append(buf, 0)
			case !p.committed:
				buf = be.AppendUint32(buf, 0xffffffff)
			default:
				arrayLen(len(p.aborted))
				for _, a := range p.aborted {
					buf = be.AppendUint64(buf, uint64(a.producerID))
					buf = be.AppendUint64(buf, uint64(a.firstOffset))
					if flexible {
						buf = append(buf, 0) // entry tagged fields
					}
				}
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
