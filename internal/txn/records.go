package txn

import (
	"encoding/binary"
	"fmt"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/internal/coord"
)

// The record versions of __transaction_state. docs/format/txn.md has the
// byte layouts.
const (
	// txnKeyVersion is Kafka's TxnMetadataKey, the only key Kafka writes.
	txnKeyVersion = 0
	// txnValueVersion is written unless the record must carry the
	// previous producer id (after an epoch-exhaustion rotation), which
	// only the flexible version 1 can hold (tag 0).
	txnValueVersion     = 0
	txnValueVersionPrev = 1
	maxTxnValueVersion  = 1

	// pidBlockKeyVersion is this coordinator's own record: the end of the
	// last block of producer ids reserved. Kafka leaves key versions
	// above 0 unused; ours start at 1000 to stay clear of any it adds.
	pidBlockKeyVersion   = 1000
	pidBlockValueVersion = 0
	pidBlockValueBytes   = 2 + 8

	// pidBlockPartition is where producer-id blocks are recorded: one
	// key, so compaction keeps only the latest.
	pidBlockPartition = 0
)

// CorruptRecordError reports a record of __transaction_state that Load could not
// decode or apply (coord.Replay).
type CorruptRecordError = coord.CorruptRecordError

// Partition is the __transaction_state partition of a transactional id:
// Kafka's abs(javaStringHashCode(id)) % n, so an id lands where Kafka
// would put it. It returns 0 when n <= 0.
func Partition(transactionalID string, n int32) int32 { return coord.Partition(transactionalID, n) }

// millis is Kafka's timestamp in milliseconds, -1 for none.
func millis(t time.Time) int64 {
	if t.IsZero() {
		return -1
	}
	return t.UnixMilli()
}

// fromMillis inverts millis.
func fromMillis(ms int64) time.Time {
	if ms < 0 {
		return time.Time{}
	}
	return time.UnixMilli(ms)
}

func txnKey(id string) []byte {
	k := kmsg.TxnMetadataKey{Version: txnKeyVersion, TransactionalID: id}
	return k.AppendTo(nil)
}

// txnRecord is the TxnMetadataValue of m, as Kafka's TransactionLog
// writes it: no partitions for Empty (a null array), the sorted set
// otherwise.
func txnRecord(id string, m *meta) Record {
	v := kmsg.NewTxnMetadataValue()
	v.Version = txnValueVersion
	if m.lastPID >= 0 {
		v.Version = txnValueVersionPrev
		v.PreviousProducerID = m.lastPID
	}
	v.ProducerID = m.pid
	v.ProducerEpoch = m.epoch
	v.TimeoutMillis = m.timeoutMs
	v.State = m.state
	if m.state != kmsg.TransactionStateEmpty {
		v.Topics = []kmsg.TxnMetadataValueTopic{}
		for _, tp := range m.sortedParts() {
			if n := len(v.Topics); n == 0 || v.Topics[n-1].Topic != tp.Topic {
				v.Topics = append(v.Topics, kmsg.TxnMetadataValueTopic{Topic: tp.Topic})
			}
			last := &v.Topics[len(v.Topics)-1]
			last.Partitions = append(last.Partitions, tp.Partition)
		}
	}
	v.LastUpdateTimestamp = millis(m.updated)
	v.StartTimestamp = millis(m.start)
	return Record{Key: txnKey(id), Value: v.AppendTo(nil)}
}

func txnTombstone(id string) Record { return Record{Key: txnKey(id)} }

func pidBlockKey() []byte {
	return binary.BigEndian.AppendUint16(nil, pidBlockKeyVersion)
}

// pidBlockRecord records that every producer id below end may have been
// handed out.
func pidBlockRecord(end int64) Record {
	v := binary.BigEndian.AppendUint16(nil, pidBlockValueVersion)
	v = binary.BigEndian.AppendUint64(v, uint64(end))
	return Record{Key: pidBlockKey(), Value: v}
}

// recordKind says what a decoded record is.
type recordKind int8

const (
	kindTxn recordKind = iota + 1
	kindPIDBlock
)

// decoded is one record of __transaction_state, decoded.
type decoded struct {
	kind   recordKind
	id     string // kindTxn
	meta   *meta  // kindTxn; nil for a tombstone
	pidEnd int64  // kindPIDBlock; -1 for a tombstone
}

// decodeRecord decodes r. It never panics, whatever the bytes.
func decodeRecord(r Record) (decoded, error) {
	if len(r.Key) < 2 {
		return decoded{}, fmt.Errorf("key of %d bytes has no version", len(r.Key))
	}
	switch version := int16(binary.BigEndian.Uint16(r.Key)); version {
	case txnKeyVersion:
		var k kmsg.TxnMetadataKey
		if err := k.ReadFrom(r.Key); err != nil {
			return decoded{}, fmt.Errorf("transaction key: %w", err)
		}
		d := decoded{kind: kindTxn, id: k.TransactionalID}
		if r.Value == nil {
			return d, nil
		}
		m, err := decodeTxnValue(r.Value)
		if err != nil {
			return decoded{}, fmt.Errorf("transaction %q: %w", k.TransactionalID, err)
		}
		d.meta = m
		return d, nil
	case pidBlockKeyVersion:
		if len(r.Key) != 2 {
			return decoded{}, fmt.Errorf("producer-id block key of %d bytes", len(r.Key))
		}
		d := decoded{kind: kindPIDBlock, pidEnd: -1}
		if r.Value == nil {
			return d, nil
		}
		if len(r.Value) != pidBlockValueBytes {
			return decoded{}, fmt.Errorf("producer-id block value of %d bytes, want %d", len(r.Value), pidBlockValueBytes)
		}
		if v := binary.BigEndian.Uint16(r.Value); v != pidBlockValueVersion {
			return decoded{}, fmt.Errorf("producer-id block value version %d", v)
		}
		d.pidEnd = int64(binary.BigEndian.Uint64(r.Value[2:]))
		if d.pidEnd < 0 {
			return decoded{}, fmt.Errorf("producer-id block end %d is negative", d.pidEnd)
		}
		return d, nil
	default:
		// A newer format, or not a transaction log: refuse rather than
		// drop state we do not understand.
		return decoded{}, fmt.Errorf("unknown key version %d", version)
	}
}

func decodeTxnValue(b []byte) (*meta, error) {
	var v kmsg.TxnMetadataValue
	if err := v.ReadFrom(b); err != nil {
		return nil, err
	}
	if v.Version < 0 || v.Version > maxTxnValueVersion {
		return nil, fmt.Errorf("value version %d", v.Version)
	}
	if v.State < kmsg.TransactionStateEmpty || v.State > kmsg.TransactionStatePrepareEpochFence {
		return nil, fmt.Errorf("state %d", v.State)
	}
	if v.ProducerID < 0 {
		return nil, fmt.Errorf("producer id %d", v.ProducerID)
	}
	m := &meta{
		pid:       v.ProducerID,
		lastPID:   -1,
		epoch:     v.ProducerEpoch,
		lastEpoch: -1,
		timeoutMs: v.TimeoutMillis,
		state:     v.State,
		start:     fromMillis(v.StartTimestamp),
		updated:   fromMillis(v.LastUpdateTimestamp),
	}
	if v.Version >= 1 && v.PreviousProducerID >= 0 {
		m.lastPID = v.PreviousProducerID
	}
	if v.State != kmsg.TransactionStateEmpty {
		for _, t := range v.Topics {
			for _, p := range t.Partitions {
				if m.parts == nil {
					m.parts = make(map[TopicPartition]struct{})
				}
				m.parts[TopicPartition{t.Topic, p}] = struct{}{}
			}
		}
	}
	return m, nil
}

// sortedParts returns the partitions of m, by topic then partition.
func (m *meta) sortedParts() []TopicPartition {
	out := make([]TopicPartition, 0, len(m.parts))
	for tp := range m.parts {
		out = append(out, tp)
	}
	slices.SortFunc(out, compareTP)
	return out
}

func compareTP(a, b TopicPartition) int {
	if a.Topic != b.Topic {
		if a.Topic < b.Topic {
			return -1
		}
		return 1
	}
	return int(a.Partition) - int(b.Partition)
}
