// Package consumer is the state machine of one KIP-848 "consumer protocol"
// group: members joining, heartbeating and leaving through
// ConsumerGroupHeartbeat, the server-side assignors ("uniform" and "range")
// that compute the group's target assignment, the incremental reconciliation
// that moves each member towards its target without ever giving a partition
// to a member while another one still owns it, and the durable records that
// let a restarted broker resume the group where it was.
//
// The package does no I/O, starts no goroutines and reads no clock: the
// coordinator passes the time into every call and persists the records each
// call returns. A Group is not safe for concurrent use; the coordinator's
// goroutine owns it.
//
// # Durability contract
//
// Heartbeat, Tick and MetadataChanged mutate the group in memory and return
// the records describing the change. The caller appends them to
// __consumer_offsets and sends the response only once the append is durable.
// If the append fails, the in-memory group is ahead of the log: the caller
// must discard the Group and rebuild it with New and Replay from the log
// (answering the request with an error, e.g. COORDINATOR_NOT_AVAILABLE). There
// is no rollback.
//
// # Reconciliation, as in Kafka
//
// The group epoch is bumped whenever membership, a subscription or the
// metadata of a subscribed topic changes, and the target assignment is
// recomputed at that epoch. Each member then moves towards its target: it
// first keeps only the partitions it owns that are still in its target and
// is asked to revoke the rest, staying at its epoch; once a heartbeat shows
// the revoked partitions are no longer owned, its epoch advances to the
// target epoch and it is given the target partitions that no other member
// still holds. Partitions held by another member are handed over on a later
// heartbeat, after that member has released them. A member that does not
// revoke within its rebalance timeout is removed (fenced).
package consumer

import (
	"errors"
	"fmt"
	"math"
	"regexp"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// Record is one record of __consumer_offsets; a nil Value is a tombstone.
type Record struct{ Key, Value []byte }

// TopicInfo is the broker's view of one topic.
type TopicInfo struct {
	Name       string
	ID         [16]byte
	Partitions int32
}

// Topics is the broker's view of existing topics.
type Topics interface {
	Topic(name string) (TopicInfo, bool)
	TopicByID(id [16]byte) (TopicInfo, bool)
	// List returns every topic; it is only called to resolve regular
	// expression subscriptions, once per metadata change.
	List() []TopicInfo
}

// Defaults, as Kafka's group.consumer.* broker configs.
const (
	DefaultSessionTimeout    = 45 * time.Second
	DefaultHeartbeatInterval = 5 * time.Second
	DefaultMaxSize           = 10000
)

// Limits on what a member may send; a request past one is INVALID_REQUEST.
// They bound the memory and the record size a single member can cost.
const (
	idBytesMax              = 1024 // member, instance and rack IDs
	regexBytesMax           = 4096
	topicNameBytesMax       = 1024
	subscribedTopicsMax     = 10000
	rebalanceTimeoutMax     = 24 * time.Hour
	defaultRebalanceTimeout = 5 * time.Minute
)

// Assignor names this package implements.
const (
	AssignorUniform = "uniform"
	AssignorRange   = "range"
)

// Options configures a group. The zero value of a field means its default.
type Options struct {
	SessionTimeout    time.Duration // group.consumer.session.timeout.ms, default 45s
	HeartbeatInterval time.Duration // group.consumer.heartbeat.interval.ms, default 5s
	MaxSize           int           // group.consumer.max.size, default 10000
	Assignors         []string      // group.consumer.assignors, default {"uniform", "range"}; the first is the default
}

func (o Options) withDefaults() Options {
	if o.SessionTimeout == 0 {
		o.SessionTimeout = DefaultSessionTimeout
	}
	if o.HeartbeatInterval == 0 {
		o.HeartbeatInterval = DefaultHeartbeatInterval
	}
	if o.MaxSize == 0 {
		o.MaxSize = DefaultMaxSize
	}
	if len(o.Assignors) == 0 {
		o.Assignors = []string{AssignorUniform, AssignorRange}
	}
	return o
}

// Validate reports every problem with the options at once. Zero values are
// valid: they mean the defaults.
func (o Options) Validate() error {
	var errs []error
	if o.SessionTimeout < 0 || o.SessionTimeout > math.MaxInt32*time.Millisecond {
		errs = append(errs, fmt.Errorf("consumer: session timeout %v out of range", o.SessionTimeout))
	}
	if o.HeartbeatInterval < 0 || o.HeartbeatInterval > math.MaxInt32*time.Millisecond {
		errs = append(errs, fmt.Errorf("consumer: heartbeat interval %v out of range", o.HeartbeatInterval))
	}
	d := o.withDefaults()
	if d.HeartbeatInterval >= d.SessionTimeout {
		errs = append(errs, fmt.Errorf("consumer: heartbeat interval %v must be below the session timeout %v", d.HeartbeatInterval, d.SessionTimeout))
	}
	if o.MaxSize < 0 {
		errs = append(errs, fmt.Errorf("consumer: max size %d is negative", o.MaxSize))
	}
	seen := map[string]bool{}
	for _, a := range o.Assignors {
		if a != AssignorUniform && a != AssignorRange {
			errs = append(errs, fmt.Errorf("consumer: unknown assignor %q", a))
		}
		if seen[a] {
			errs = append(errs, fmt.Errorf("consumer: assignor %q listed twice", a))
		}
		seen[a] = true
	}
	return errors.Join(errs...)
}

type memberState uint8

// Member states, as Kafka's MemberState.
const (
	// stateStable: the member owns its assignment at its epoch.
	stateStable memberState = iota
	// stateUnrevoked: the member must revoke partitionsPendingRevocation
	// before its epoch can advance.
	stateUnrevoked
	// stateUnreleased: the member is at the target epoch but some of its
	// target partitions are still held by other members.
	stateUnreleased
	stateCount
)

// Member epochs with a meaning, as in the protocol.
const (
	epochJoin        = 0
	epochLeave       = -1
	epochStaticLeave = -2
)

type tp struct {
	id [16]byte
	p  int32
}

// assignment maps a topic ID to sorted, distinct partitions. Empty topics
// are never stored.
type assignment map[[16]byte][]int32

type member struct {
	id               string
	instanceID       *string
	rackID           *string
	rebalanceTimeout time.Duration
	topics           []string // sorted, distinct
	regex            string   // "" = none
	assignor         string   // "" = none

	epoch     int32
	prevEpoch int32
	state     memberState
	assigned  assignment // what the member has been told it owns
	revoking  assignment // what it still owns and must give up

	// Timers; not durable, re-armed from the first call after Replay.
	sessionDeadline time.Time
	revokeDeadline  time.Time // zero unless state == stateUnrevoked
	hasMeta         bool      // set by Replay when the member's metadata record was seen
}

// Group is one consumer-protocol group. It is a pure state machine: no I/O,
// no goroutines, logical time passed in. Not safe for concurrent use (the
// coordinator's goroutine owns it).
type Group struct {
	id   string
	opts Options

	epoch       int32 // group epoch
	targetEpoch int32 // epoch the target assignment was computed at
	members     map[string]*member
	static      map[string]string // instance ID -> member ID
	target      map[string]assignment
	owners      map[tp]string // partition -> member that is assigned it or still revoking it

	// subMeta is the metadata of the subscribed topics the target
	// assignment was computed with, by name. A difference with the
	// broker's view is a metadata change.
	subMeta map[string]TopicInfo
	// regexTopics caches each subscribed regex's matches (sorted); nil
	// means it must be resolved again through Topics.List.
	regexTopics map[string][]string
	regexCache  map[string]*regexp.Regexp

	dead  bool
	stale bool // subMeta must be checked against the broker's topics: set after Replay
	// replayed is set by Replay: derived state (owners, static) must be
	// rebuilt and timers armed before the group is used.
	replayed bool
	unarmed  bool

	// Records pending for the current call.
	out          []Record
	dirtyGroup   bool
	dirtyMeta    map[string]bool
	dirtyTarget  map[string]bool
	dirtyCurrent map[string]bool
}

// New returns an empty group. opts must be valid (see Options.Validate);
// zero fields take their defaults.
func New(id string, opts Options) *Group {
	g := &Group{id: id, opts: opts.withDefaults()}
	g.reset()
	return g
}

func (g *Group) reset() {
	g.epoch, g.targetEpoch = 0, 0
	g.members = map[string]*member{}
	g.static = map[string]string{}
	g.target = map[string]assignment{}
	g.owners = map[tp]string{}
	g.subMeta = map[string]TopicInfo{}
	g.regexTopics = map[string][]string{}
	g.regexCache = map[string]*regexp.Regexp{}
	g.dirtyMeta = map[string]bool{}
	g.dirtyTarget = map[string]bool{}
	g.dirtyCurrent = map[string]bool{}
}

// ID returns the group ID.
func (g *Group) ID() string { return g.id }

// Epoch returns the group epoch.
func (g *Group) Epoch() int32 { return g.epoch }

// Members returns the number of members, including static members that
// left temporarily and whose session has not expired.
func (g *Group) Members() int {
	g.settle()
	return len(g.members)
}

// State returns Kafka's name for the group state, lower case: "empty",
// "assigning", "reconciling", "stable" or "dead".
func (g *Group) State() string {
	g.settle()
	switch {
	case g.dead:
		return "dead"
	case len(g.members) == 0:
		return "empty"
	case g.epoch > g.targetEpoch:
		return "assigning"
	}
	for _, m := range g.members {
		if m.epoch != g.targetEpoch || m.state != stateStable {
			return "reconciling"
		}
	}
	return "stable"
}

// KafkaState is State as Kafka spells it (ConsumerGroupState: Empty,
// Assigning, Reconciling, Stable, Dead), for ListGroups, DescribeGroups
// and ConsumerGroupDescribe.
func (g *Group) KafkaState() string {
	switch s := g.State(); s {
	case "empty":
		return "Empty"
	case "assigning":
		return "Assigning"
	case "reconciling":
		return "Reconciling"
	case "stable":
		return "Stable"
	default:
		return "Dead"
	}
}

// Subscribed reports whether any member subscribes to topic, by name or by
// regex, for OffsetDelete's GROUP_SUBSCRIBED_TO_TOPIC.
func (g *Group) Subscribed(topic string) bool {
	g.settle()
	for _, m := range g.members {
		if _, ok := slices.BinarySearch(m.topics, topic); ok {
			return true
		}
		if m.regex != "" {
			if re := g.compiled(m.regex); re != nil && re.MatchString(topic) {
				return true
			}
		}
	}
	return false
}

// ValidateCommit checks an OffsetCommit or OffsetFetch from a member and
// returns the Kafka error code, as Kafka's ConsumerGroup.validateOffsetCommit:
// 0, UNKNOWN_MEMBER_ID or STALE_MEMBER_EPOCH. A negative epoch is accepted
// with an empty member ID (admin clients and consumers without group
// management commit that way) or when the group has no members.
func (g *Group) ValidateCommit(memberID string, memberEpoch int32) int16 {
	g.settle()
	if memberEpoch < 0 && (memberID == "" || len(g.members) == 0) {
		return 0
	}
	m, ok := g.members[memberID]
	if !ok {
		return codeUnknownMemberID
	}
	if m.epoch != memberEpoch {
		return codeStaleMemberEpoch
	}
	return 0
}

// Authorized operations reported when no authorizer restricts them: READ,
// DELETE, DESCRIBE, DESCRIBE_CONFIGS and ALTER_CONFIGS, Kafka's operations
// on a group resource.
const allGroupOps = 1<<3 | 1<<6 | 1<<8 | 1<<10 | 1<<11

// Describe returns the group as ConsumerGroupDescribe reports it. Members
// are sorted by ID; topics by ID. ClientID and ClientHost are empty: the
// heartbeat does not carry them to this package. With includeAuthorizedOps
// every group operation is reported; a coordinator with an authorizer
// overwrites the field.
func (g *Group) Describe(topics Topics, includeAuthorizedOps bool) kmsg.ConsumerGroupDescribeResponseGroup {
	g.settle()
	d := kmsg.NewConsumerGroupDescribeResponseGroup()
	d.Group = g.id
	d.State = g.KafkaState()
	d.Epoch = g.epoch
	d.AssignmentEpoch = g.targetEpoch
	d.AssignorName = g.assignor()
	if includeAuthorizedOps {
		d.AuthorizedOperations = allGroupOps
	}
	for _, id := range g.memberIDs() {
		m := g.members[id]
		dm := kmsg.NewConsumerGroupDescribeResponseGroupMember()
		dm.MemberID = m.id
		dm.InstanceID = cloneStr(m.instanceID)
		dm.RackID = cloneStr(m.rackID)
		dm.MemberEpoch = m.epoch
		dm.SubscribedTopics = slices.Clone(m.topics)
		if dm.SubscribedTopics == nil {
			dm.SubscribedTopics = []string{}
		}
		if m.regex != "" {
			dm.SubscribedTopicRegex = kmsg.StringPtr(m.regex)
		}
		dm.Assignment = describeAssignment(topics, m.assigned)
		dm.TargetAssignment = describeAssignment(topics, g.target[id])
		dm.MemberType = 1 // consumer protocol
		d.Members = append(d.Members, dm)
	}
	return d
}

func describeAssignment(topics Topics, a assignment) kmsg.Assignment {
	var out kmsg.Assignment
	for _, id := range a.topicIDs() {
		t := kmsg.NewAssignmentTopicPartition()
		t.TopicID = id
		if info, ok := topics.TopicByID(id); ok {
			t.Topic = info.Name
		}
		t.Partitions = slices.Clone(a[id])
		out.TopicPartitions = append(out.TopicPartitions, t)
	}
	return out
}

func (g *Group) memberIDs() []string {
	ids := make([]string, 0, len(g.members))
	for id := range g.members {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// assignor returns the server assignor the group uses: the one most members
// ask for, ties broken by the order of Options.Assignors; the first of
// Options.Assignors when no member asks for one. Kafka picks the same way.
func (g *Group) assignor() string {
	counts := map[string]int{}
	for _, m := range g.members {
		if m.assignor != "" {
			counts[m.assignor]++
		}
	}
	best, bestN := g.opts.Assignors[0], 0
	for _, a := range g.opts.Assignors {
		if counts[a] > bestN {
			best, bestN = a, counts[a]
		}
	}
	return best
}

func (g *Group) compiled(re string) *regexp.Regexp {
	if r, ok := g.regexCache[re]; ok {
		return r
	}
	r, err := compileRegex(re)
	if err != nil {
		r = nil
	}
	g.regexCache[re] = r
	return r
}

// compileRegex compiles a subscription regex. Kafka (RE2/J) matches the
// whole topic name, so the pattern is anchored on both ends.
func compileRegex(re string) (*regexp.Regexp, error) {
	return regexp.Compile(`^(?:` + re + `)$`)
}

func cloneStr(s *string) *string {
	if s == nil {
		return nil
	}
	c := *s
	return &c
}

func (a assignment) topicIDs() [][16]byte {
	ids := make([][16]byte, 0, len(a))
	for id := range a {
		ids = append(ids, id)
	}
	slices.SortFunc(ids, func(x, y [16]byte) int { return compareID(x, y) })
	return ids
}

func compareID(x, y [16]byte) int {
	for i := range x {
		if x[i] != y[i] {
			if x[i] < y[i] {
				return -1
			}
			return 1
		}
	}
	return 0
}

func (a assignment) clone() assignment {
	c := make(assignment, len(a))
	for id, ps := range a {
		c[id] = slices.Clone(ps)
	}
	return c
}

func (a assignment) equal(b assignment) bool {
	if len(a) != len(b) {
		return false
	}
	for id, ps := range a {
		if !slices.Equal(ps, b[id]) {
			return false
		}
	}
	return true
}

func (a assignment) count() int {
	n := 0
	for _, ps := range a {
		n += len(ps)
	}
	return n
}

func (a assignment) has(id [16]byte, p int32) bool {
	_, ok := slices.BinarySearch(a[id], p)
	return ok
}

// add inserts p keeping the partitions sorted and distinct.
func (a assignment) add(id [16]byte, p int32) {
	ps := a[id]
	i, ok := slices.BinarySearch(ps, p)
	if !ok {
		a[id] = slices.Insert(ps, i, p)
	}
}
