package producer

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/sluice-io/sluice/internal/batch"
)

// ErrBadMarker is returned by FromBatch for a control batch whose first
// record is not a control record Kafka could have written.
var ErrBadMarker = errors.New("producer: bad control record")

// controlRecordBytesMax bounds the decompressed records of a control
// batch: one marker is a few dozen bytes.
const controlRecordBytesMax = 64 << 10

var errStop = errors.New("stop")

// FromBatch returns what the state needs of the batch b with header h
// (b already verified). For a control batch it decodes the first control
// record: key (version i16, type i16) and, for COMMIT and ABORT, value
// (version i16, coordinator epoch i32), as Kafka's EndTransactionMarker.
func FromBatch(b []byte, h batch.Header) (Batch, error) {
	pb := Batch{
		ProducerID: h.ProducerID, Epoch: h.ProducerEpoch, FirstSeq: h.BaseSequence, LastOffsetDelta: h.LastOffsetDelta,
		BaseOffset: h.BaseOffset, MaxTimestamp: h.MaxTimestamp, Transactional: h.Transactional(), Control: h.Control(),
		Marker: NoMarker,
	}
	if !pb.Control || h.NumRecords == 0 {
		return pb, nil
	}
	var kerr error
	err := batch.RecordsLimit(b, controlRecordBytesMax, func(r *batch.Record) error {
		if len(r.Key) < 4 {
			kerr = fmt.Errorf("%w: key of %d bytes", ErrBadMarker, len(r.Key))
			return errStop
		}
		kind := MarkerKind(int16(binary.BigEndian.Uint16(r.Key[2:4])))
		if kind != Abort && kind != Commit {
			return errStop // another control type: no marker
		}
		if len(r.Value) < 6 {
			kerr = fmt.Errorf("%w: marker value of %d bytes", ErrBadMarker, len(r.Value))
			return errStop
		}
		pb.Marker = kind
		pb.CoordinatorEpoch = int32(binary.BigEndian.Uint32(r.Value[2:6]))
		if !h.LogAppendTime() {
			pb.MaxTimestamp = h.BaseTimestamp + r.TimestampDelta
		}
		return errStop
	})
	if err != nil && !errors.Is(err, errStop) {
		return pb, fmt.Errorf("%w: %w", ErrBadMarker, err)
	}
	if kerr != nil {
		return pb, kerr
	}
	return pb, nil
}

// MarkerRecord returns the control record of a COMMIT or ABORT marker with
// the given coordinator epoch, for the broker to pass to batch.Build with
// BuildOptions{Control: true, Transactional: true, ProducerID,
// ProducerEpoch}.
func MarkerRecord(kind MarkerKind, coordinatorEpoch int32) batch.Record {
	key := binary.BigEndian.AppendUint16(make([]byte, 0, 4), 0)
	key = binary.BigEndian.AppendUint16(key, uint16(kind))
	val := binary.BigEndian.AppendUint16(make([]byte, 0, 6), 0)
	val = binary.BigEndian.AppendUint32(val, uint32(coordinatorEpoch))
	return batch.Record{Key: key, Value: val}
}
