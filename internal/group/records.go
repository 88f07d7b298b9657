package group

import (
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/internal/coord"
	"github.com/sluice-io/sluice/internal/group/consumer"
)

// The record versions this package writes, the same ones Kafka writes,
// so Kafka's tools can read our __consumer_offsets. docs/format/groups.md
// has the byte layouts.
const (
	offsetKeyVersion   = 1 // OffsetCommitKey; versions 0 and 1 share one layout
	offsetValueVersion = 3 // OffsetCommitValue with the committed leader epoch
	groupKeyVersion    = 2 // GroupMetadataKey
	groupValueVersion  = 3 // GroupMetadataValue with static member instance ids

	// Newest value versions Load understands; newer ones are refused
	// rather than misread.
	maxOffsetValueVersion = 4
	maxGroupValueVersion  = 4

	// Key versions from here up are not classic: internal/group/consumer
	// owns 1001-1004 (consumer.RecordGroup recognises them); Kafka's own
	// KIP-848, share and streams records are skipped.
	firstUnknownKeyVersion = 3
)

// CorruptRecordError reports a record of the offsets log that Load could not
// decode or apply (coord.Replay).
type CorruptRecordError = coord.CorruptRecordError

// Partition is the offsets-log partition of a group: Kafka's
// abs(javaStringHashCode(id)) % n, so a group lands where Kafka would put
// it. It returns 0 when n <= 0.
func Partition(groupID string, n int32) int32 { return coord.Partition(groupID, n) }

func millis(t time.Time) int64 { return t.UnixMilli() }

func offsetKey(group, topic string, partition int32) []byte {
	k := kmsg.OffsetCommitKey{Version: offsetKeyVersion, Group: group, Topic: topic, Partition: partition}
	return k.AppendTo(nil)
}

func offsetRecord(group, topic string, partition int32, o offset) Record {
	_, r := appendOffsetRecord(nil, group, topic, partition, o)
	return r
}

// appendOffsetRecord encodes an offset record's key and value at the end of
// buf and returns them as slices of it, so that a commit of many partitions
// encodes into one allocation. Earlier records stay valid when buf grows:
// they keep the array they were written in.
func appendOffsetRecord(buf []byte, group, topic string, partition int32, o offset) ([]byte, Record) {
	k := kmsg.OffsetCommitKey{Version: offsetKeyVersion, Group: group, Topic: topic, Partition: partition}
	v := kmsg.NewOffsetCommitValue()
	v.Version = offsetValueVersion
	v.Offset = o.offset
	v.LeaderEpoch = o.leaderEpoch
	v.Metadata = o.metadata
	v.CommitTimestamp = millis(o.committed)
	start := len(buf)
	buf = k.AppendTo(buf)
	mid := len(buf)
	buf = v.AppendTo(buf)
	return buf, Record{Key: buf[start:mid:mid], Value: buf[mid:len(buf):len(buf)]}
}

// asConsumer is r as internal/group/consumer sees it: Key and Value;
// consumer-protocol records are never transactional.
func asConsumer(r Record) consumer.Record { return consumer.Record{Key: r.Key, Value: r.Value} }

// offsetRecordBytes estimates an offset record's encoded key and value.
func offsetRecordBytes(group, topic string, metadata int) int {
	return 2 + 2 + len(group) + 2 + len(topic) + 4 + // key
		2 + 8 + 4 + 2 + metadata + 8 // value v3
}

func offsetTombstone(group, topic string, partition int32) Record {
	return Record{Key: offsetKey(group, topic, partition)}
}

func groupKey(group string) []byte {
	k := kmsg.GroupMetadataKey{Version: groupKeyVersion, Group: group}
	return k.AppendTo(nil)
}

func groupTombstone(group string) Record { return Record{Key: groupKey(group)} }

// groupRecord is the GroupMetadataValue of g as it stands, with
// assignment (member id to assignment; nil = the members' current ones).
func groupRecord(g *classicGroup, now time.Time, assignment map[string][]byte) Record {
	v := kmsg.NewGroupMetadataValue()
	v.Version = groupValueVersion
	v.ProtocolType = g.protocolType
	v.Generation = g.generation
	if g.protocol != "" {
		v.Protocol = kmsg.StringPtr(g.protocol)
	}
	if g.leader != "" {
		v.Leader = kmsg.StringPtr(g.leader)
	}
	v.CurrentStateTimestamp = millis(now)
	for _, id := range g.order {
		m := g.members[id]
		vm := kmsg.NewGroupMetadataValueMember()
		vm.MemberID = m.id
		vm.InstanceID = m.instanceID
		vm.ClientID = m.clientID
		vm.ClientHost = m.clientHost
		vm.RebalanceTimeoutMillis = int32(m.rebalanceTimeout / time.Millisecond)
		vm.SessionTimeoutMillis = int32(m.sessionTimeout / time.Millisecond)
		vm.Subscription = m.metadataFor(g.protocol)
		if assignment != nil {
			vm.Assignment = assignment[m.id]
		} else {
			vm.Assignment = m.assignment
		}
		if vm.Assignment == nil {
			vm.Assignment = []byte{}
		}
		if vm.Subscription == nil {
			vm.Subscription = []byte{}
		}
		v.Members = append(v.Members, vm)
	}
	return Record{Key: groupKey(g.id), Value: v.AppendTo(nil)}
}

// recordKind says what a decoded record is.
type recordKind int8

const (
	kindSkip     recordKind = iota // a key version this package does not own yet
	kindOffset                     // OffsetCommitKey
	kindGroup                      // GroupMetadataKey
	kindConsumer                   // a consumer-protocol group's record (internal/group/consumer)
)

// decoded is one offsets-log record, decoded. A nil value is a tombstone.
type decoded struct {
	kind      recordKind
	group     string
	topic     string
	partition int32
	offset    *kmsg.OffsetCommitValue
	meta      *kmsg.GroupMetadataValue
	rec       Record // kindConsumer: the record, for consumer.Group.Replay
	seq       uint64 // the record's position in the log (Load sets it)
	// txn: an offset record of a transactional batch of producer pid.
	txn bool
	pid int64
}

// decodeRecord decodes r. It never panics, whatever the bytes.
func decodeRecord(r Record) (decoded, error) {
	if len(r.Key) < 2 {
		return decoded{}, fmt.Errorf("key of %d bytes has no version", len(r.Key))
	}
	version := int16(uint16(r.Key[0])<<8 | uint16(r.Key[1]))
	switch {
	case version < 0:
		return decoded{}, fmt.Errorf("negative key version %d", version)
	case version >= firstUnknownKeyVersion:
		if id, ok := consumer.RecordGroup(r.Key); ok {
			return decoded{kind: kindConsumer, group: id, rec: r}, nil
		}
		return decoded{kind: kindSkip}, nil // Kafka's own KIP-848, share and streams records
	case version <= 1:
		var k kmsg.OffsetCommitKey
		if err := k.ReadFrom(r.Key); err != nil {
			return decoded{}, fmt.Errorf("offset commit key: %w", err)
		}
		d := decoded{kind: kindOffset, group: k.Group, topic: k.Topic, partition: k.Partition,
			txn: r.Transactional, pid: r.ProducerID}
		if r.Value == nil {
			return d, nil
		}
		v := new(kmsg.OffsetCommitValue)
		if err := v.ReadFrom(r.Value); err != nil {
			return decoded{}, fmt.Errorf("offset commit value: %w", err)
		}
		if v.Version < 0 || v.Version > maxOffsetValueVersion {
			return decoded{}, fmt.Errorf("offset commit value version %d", v.Version)
		}
		d.offset = v
		return d, nil
	default: // 2
		var k kmsg.GroupMetadataKey
		if err := k.ReadFrom(r.Key); err != nil {
			return decoded{}, fmt.Errorf("group metadata key: %w", err)
		}
		d := decoded{kind: kindGroup, group: k.Group}
		if r.Value == nil {
			return d, nil
		}
		v := new(kmsg.GroupMetadataValue)
		if err := v.ReadFrom(r.Value); err != nil {
			return decoded{}, fmt.Errorf("group metadata value: %w", err)
		}
		if v.Version < 0 || v.Version > maxGroupValueVersion {
			return decoded{}, fmt.Errorf("group metadata value version %d", v.Version)
		}
		d.meta = v
		return d, nil
	}
}
