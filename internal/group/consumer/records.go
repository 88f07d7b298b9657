package consumer

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"
)

// Record keys start with a big-endian u16 key version, as every key of
// __consumer_offsets does. Kafka uses 0 and 1 for offset commits, 2 for
// classic group metadata and 3 to 16-odd for its own KIP-848 records, whose
// values are encoded differently from ours; this package's keys use 1001 to
// 1004 so that they never collide with any of them. The layout is
// documented in docs/format/groups-consumer.md.
const (
	keyGroup   uint16 = 1001 // group epoch, assignment epoch, subscribed topic metadata
	keyMember  uint16 = 1002 // one member's metadata (subscription, IDs, timeouts)
	keyTarget  uint16 = 1003 // one member's target assignment
	keyCurrent uint16 = 1004 // one member's epochs and current assignment
)

// valueVersion is the version of every value this package writes. Replay
// refuses values of a newer version: a newer binary wrote them.
const valueVersion uint16 = 1

var (
	// ErrCorrupt is wrapped by every CorruptError.
	ErrCorrupt = errors.New("consumer: corrupt record")
	// ErrNewerVersion reports a value written by a newer binary.
	ErrNewerVersion = errors.New("consumer: record value version is newer than supported")
	// ErrNotConsumerRecord reports a key that is not one of this package's.
	ErrNotConsumerRecord = errors.New("consumer: not a consumer group record")
	// ErrWrongGroup reports a record of another group.
	ErrWrongGroup = errors.New("consumer: record of another group")
)

// CorruptError is a record that cannot be decoded.
type CorruptError struct {
	Part   string // "key" or "value"
	Offset int    // byte offset in Part where decoding failed
	Reason string
}

func (e *CorruptError) Error() string {
	return fmt.Sprintf("consumer: corrupt record %s at byte %d: %s", e.Part, e.Offset, e.Reason)
}

func (e *CorruptError) Unwrap() error { return ErrCorrupt }

// Encoding.

type enc []byte

func (e enc) u8(v uint8) enc   { return append(e, v) }
func (e enc) u16(v uint16) enc { return binary.BigEndian.AppendUint16(e, v) }
func (e enc) i32(v int32) enc  { return binary.BigEndian.AppendUint32(e, uint32(v)) }
func (e enc) u32(v uint32) enc { return binary.BigEndian.AppendUint32(e, v) }
func (e enc) str(s string) enc { return append(e.u16(uint16(len(s))), s...) }
func (e enc) nstr(s *string) enc {
	if s == nil {
		return e.u16(math.MaxUint16)
	}
	return e.str(*s)
}

func (e enc) assignment(a assignment) enc {
	e = e.u32(uint32(len(a)))
	for _, id := range a.topicIDs() {
		e = append(e, id[:]...)
		e = e.u32(uint32(len(a[id])))
		for _, p := range a[id] {
			e = e.i32(p)
		}
	}
	return e
}

func groupKey(group string) []byte {
	return enc(nil).u16(keyGroup).str(group)
}

func memberKey(kind uint16, group, member string) []byte {
	return enc(nil).u16(kind).str(group).str(member)
}

func (g *Group) encodeGroup() []byte {
	e := enc(nil).u16(valueVersion).i32(g.epoch).i32(g.targetEpoch)
	names := make([]string, 0, len(g.subMeta))
	for n := range g.subMeta {
		names = append(names, n)
	}
	slices.Sort(names)
	e = e.u32(uint32(len(names)))
	for _, n := range names {
		t := g.subMeta[n]
		e = e.str(n)
		e = append(e, t.ID[:]...)
		e = e.i32(t.Partitions)
	}
	return e
}

func encodeMember(m *member) []byte {
	e := enc(nil).u16(valueVersion).nstr(m.instanceID).nstr(m.rackID)
	e = e.i32(int32(m.rebalanceTimeout / time.Millisecond))
	e = e.u32(uint32(len(m.topics)))
	for _, t := range m.topics {
		e = e.str(t)
	}
	return e.str(m.regex).str(m.assignor)
}

func encodeTarget(a assignment) []byte {
	return enc(nil).u16(valueVersion).assignment(a)
}

func encodeCurrent(m *member) []byte {
	e := enc(nil).u16(valueVersion).i32(m.epoch).i32(m.prevEpoch).u8(uint8(m.state))
	return e.assignment(m.assigned).assignment(m.revoking)
}

// Decoding. A dec stops at the first error; callers check err once.

type dec struct {
	b    []byte
	off  int
	part string
	err  error
}

func (d *dec) fail(format string, args ...any) {
	if d.err == nil {
		d.err = &CorruptError{Part: d.part, Offset: d.off, Reason: fmt.Sprintf(format, args...)}
	}
}

func (d *dec) take(n int) []byte {
	if d.err != nil {
		return nil
	}
	if n < 0 || len(d.b)-d.off < n {
		d.fail("need %d bytes, have %d", n, len(d.b)-d.off)
		return nil
	}
	b := d.b[d.off : d.off+n]
	d.off += n
	return b
}

func (d *dec) u8() uint8 {
	if b := d.take(1); b != nil {
		return b[0]
	}
	return 0
}

func (d *dec) u16() uint16 {
	if b := d.take(2); b != nil {
		return binary.BigEndian.Uint16(b)
	}
	return 0
}

func (d *dec) u32() uint32 {
	if b := d.take(4); b != nil {
		return binary.BigEndian.Uint32(b)
	}
	return 0
}

func (d *dec) i32() int32 { return int32(d.u32()) }

func (d *dec) str(maxLen int) string {
	n := int(d.u16())
	if d.err == nil && n > maxLen {
		d.fail("string of %d bytes, limit %d", n, maxLen)
		return ""
	}
	return string(d.take(n))
}

func (d *dec) nstr(maxLen int) *string {
	if d.err == nil && len(d.b)-d.off >= 2 && binary.BigEndian.Uint16(d.b[d.off:]) == math.MaxUint16 {
		d.off += 2
		return nil
	}
	s := d.str(maxLen)
	if d.err != nil {
		return nil
	}
	return &s
}

func (d *dec) id() [16]byte {
	var id [16]byte
	copy(id[:], d.take(16))
	return id
}

// count reads a u32 element count and checks that the bytes left can hold
// that many elements of at least minSize bytes, so a forged count cannot
// make the decoder allocate more than the record's size.
func (d *dec) count(minSize int) int {
	n := d.u32()
	if d.err == nil && uint64(n)*uint64(minSize) > uint64(len(d.b)-d.off) {
		d.fail("count %d does not fit in %d bytes", n, len(d.b)-d.off)
		return 0
	}
	return int(n)
}

func (d *dec) assignment() assignment {
	a := assignment{}
	n := d.count(16 + 4)
	for range n {
		id := d.id()
		np := d.count(4)
		if d.err != nil {
			return a
		}
		if _, dup := a[id]; dup {
			d.fail("topic listed twice")
			return a
		}
		ps := make([]int32, 0, np)
		for range np {
			p := d.i32()
			if d.err == nil && (p < 0 || (len(ps) > 0 && p <= ps[len(ps)-1])) {
				d.fail("partition %d out of order or negative", p)
			}
			ps = append(ps, p)
		}
		if np > 0 {
			a[id] = ps
		}
	}
	return a
}

func (d *dec) version() {
	v := d.u16()
	if d.err == nil && v > valueVersion {
		d.err = fmt.Errorf("%w: %d > %d", ErrNewerVersion, v, valueVersion)
	}
	if d.err == nil && v == 0 {
		d.fail("value version 0")
	}
}

func (d *dec) end() {
	if d.err == nil && d.off != len(d.b) {
		d.fail("%d trailing bytes", len(d.b)-d.off)
	}
}

// groupIDBytesMax bounds a group ID in a key; Kafka's limit is 32767.
const groupIDBytesMax = math.MaxInt16

type recordKey struct {
	kind   uint16
	group  string
	member string
}

func parseKey(b []byte) (recordKey, error) {
	d := &dec{b: b, part: "key"}
	var k recordKey
	k.kind = d.u16()
	if d.err != nil {
		return k, d.err
	}
	if k.kind < keyGroup || k.kind > keyCurrent {
		return k, ErrNotConsumerRecord
	}
	k.group = d.str(groupIDBytesMax)
	if k.kind != keyGroup {
		k.member = d.str(idBytesMax)
	}
	d.end()
	return k, d.err
}

// RecordGroup reports whether key is one of this package's record keys and,
// if so, its group ID, so the coordinator can route records during load.
func RecordGroup(key []byte) (groupID string, ok bool) {
	k, err := parseKey(key)
	if err != nil {
		return "", false
	}
	return k.group, true
}

// Replay applies one record read back from the log, in log order, to
// rebuild the group. The latest record of each key wins and a tombstone
// deletes; a compacted log replays to the same group. Replay is meant for a
// group fresh from New; the group settles (indexes rebuilt, timers armed)
// on the first other call.
func (g *Group) Replay(rec Record) error {
	k, err := parseKey(rec.Key)
	if err != nil {
		return err
	}
	if k.group != g.id {
		return fmt.Errorf("%w: %q in group %q", ErrWrongGroup, k.group, g.id)
	}
	g.replayed = true
	if rec.Value == nil {
		switch k.kind {
		case keyGroup:
			g.reset()
		case keyMember:
			delete(g.members, k.member)
			delete(g.target, k.member)
		case keyTarget:
			delete(g.target, k.member)
		case keyCurrent:
			if m := g.members[k.member]; m != nil {
				m.epoch, m.prevEpoch, m.state = 0, 0, stateStable
				m.assigned, m.revoking = assignment{}, assignment{}
			}
		}
		return nil
	}
	d := &dec{b: rec.Value, part: "value"}
	d.version()
	switch k.kind {
	case keyGroup:
		return g.replayGroup(d)
	case keyMember:
		return g.replayMember(d, k.member)
	case keyTarget:
		a := d.assignment()
		d.end()
		if d.err != nil {
			return d.err
		}
		g.target[k.member] = a
		g.placeholder(k.member)
	case keyCurrent:
		epoch, prev, state := d.i32(), d.i32(), d.u8()
		if d.err == nil && (state >= uint8(stateCount) || epoch < epochStaticLeave) {
			d.fail("member state %d, epoch %d", state, epoch)
		}
		assigned, revoking := d.assignment(), d.assignment()
		d.end()
		if d.err != nil {
			return d.err
		}
		m := g.placeholder(k.member)
		m.epoch, m.prevEpoch, m.state = epoch, prev, memberState(state)
		m.assigned, m.revoking = assigned, revoking
	}
	return nil
}

func (g *Group) replayGroup(d *dec) error {
	epoch, target := d.i32(), d.i32()
	n := d.count(2 + 16 + 4)
	meta := make(map[string]TopicInfo, n)
	for range n {
		t := TopicInfo{Name: d.str(topicNameBytesMax)}
		t.ID = d.id()
		t.Partitions = d.i32()
		if d.err == nil && t.Partitions <= 0 {
			d.fail("topic %q with %d partitions", t.Name, t.Partitions)
		}
		meta[t.Name] = t
	}
	d.end()
	if d.err == nil && (epoch < 0 || target < 0 || target > epoch) {
		d.fail("group epoch %d, assignment epoch %d", epoch, target)
	}
	if d.err != nil {
		return d.err
	}
	g.epoch, g.targetEpoch, g.subMeta = epoch, target, meta
	g.dead = false
	return nil
}

func (g *Group) replayMember(d *dec, id string) error {
	inst, rack := d.nstr(idBytesMax), d.nstr(idBytesMax)
	timeoutMs := d.i32()
	n := d.count(2)
	var topics []string
	for range n {
		t := d.str(topicNameBytesMax)
		if d.err == nil && len(topics) > 0 && t <= topics[len(topics)-1] {
			d.fail("topic %q out of order", t)
		}
		topics = append(topics, t)
	}
	regex, assignor := d.str(regexBytesMax), d.str(idBytesMax)
	d.end()
	if d.err == nil && (timeoutMs <= 0 || n > subscribedTopicsMax) {
		d.fail("rebalance timeout %d ms, %d topics", timeoutMs, n)
	}
	if d.err == nil && assignor != "" && assignor != AssignorUniform && assignor != AssignorRange {
		d.fail("unknown assignor %q", assignor)
	}
	if d.err != nil {
		return d.err
	}
	m := g.placeholder(id)
	m.hasMeta = true
	m.instanceID, m.rackID = inst, rack
	m.rebalanceTimeout = time.Duration(timeoutMs) * time.Millisecond
	m.topics, m.regex, m.assignor = topics, regex, assignor
	return nil
}

// placeholder returns the member id, creating an empty one if a record of
// it arrives before its metadata record.
func (g *Group) placeholder(id string) *member {
	m := g.members[id]
	if m == nil {
		m = &member{id: id, assigned: assignment{}, revoking: assignment{}, rebalanceTimeout: defaultRebalanceTimeout}
		g.members[id] = m
	}
	return m
}

// Delete returns the tombstones that remove every record of this group,
// and leaves the group dead and empty. A later join starts it over.
func (g *Group) Delete() []Record {
	g.settle()
	g.discardPending()
	for _, id := range g.memberIDs() {
		g.removeMember(g.members[id])
	}
	out := append(g.out, Record{Key: groupKey(g.id)})
	g.out = nil
	g.reset()
	g.dead = true
	return out
}
