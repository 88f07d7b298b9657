package admin

import "errors"

// Errors a Source returns from Records (wrapped with details); the
// handlers answer them with 404.
var (
	ErrUnknownTopic     = errors.New("admin: unknown topic")
	ErrUnknownPartition = errors.New("admin: unknown partition")
)

// Source is what the broker exposes to the admin listener (and to
// internal/metrics). Every method returns a fresh snapshot the caller may
// keep; all may be called concurrently, from any goroutine, at any time
// (before recovery finished too), and should be quick: they run once per
// HTTP request or scrape.
type Source interface {
	// Ready returns nil once recovery finished, the Kafka listeners are
	// open and storage is writable, else why not.
	Ready() error
	Topics() []Topic
	Groups() []Group
	// Config returns the broker's configuration. Sensitive values (a
	// password) must already be redacted: they are served as given.
	Config() []ConfigEntry
	// TopicConfigs returns a topic's effective configs, every topic
	// config key with its value and source ("TOPIC_CONFIG" for a value
	// set on the topic, "STATIC_BROKER_CONFIG" or "DEFAULT_CONFIG"
	// otherwise); ok is false for an unknown topic.
	TopicConfigs(topic string) (configs []ConfigEntry, ok bool)
	// Records reads up to limit committed records (below the high
	// watermark) of one partition in offset order, from offset, or from
	// max(log start, high watermark - limit) when offset is negative;
	// an offset below the log start reads from the log start. Control
	// batches are skipped. Keys and values may be cut (see Record); the
	// handler cuts them to RecordFieldBytesMax in any case. Unknown
	// topics and partitions are ErrUnknownTopic and ErrUnknownPartition.
	Records(topic string, partition int32, offset int64, limit int) (RecordPage, error)
}

// Topic is one topic and its partitions.
type Topic struct {
	Name       string
	ID         string // topic id as Kafka prints it (base64) or hex; opaque here
	Internal   bool   // __consumer_offsets, __transaction_state
	Partitions []Partition
}

// Partition is one partition's log.
type Partition struct {
	Partition     int32
	LogStart      int64 // first offset still in the log
	HighWatermark int64
	LastStable    int64 // last stable offset (read_committed end)
	SizeBytes     int64 // bytes of segment files on disk
	Segments      int
}

// Group is one consumer group and its committed offsets' lag.
type Group struct {
	ID           string
	Type         string // "classic" or "consumer" (KIP-848)
	State        string // Kafka's names: Stable, Empty, PreparingRebalance, ...
	ProtocolType string // classic: the members' protocol type ("consumer", "connect", ...); "consumer" for KIP-848
	Protocol     string // the assignor (classic: chosen protocol; KIP-848: server assignor)
	Generation   int32  // classic: generation; KIP-848: group epoch
	Members      int
	MemberList   []Member
	Lag          []PartitionLag
}

// Member is one member of a group.
type Member struct {
	ID         string
	InstanceID string // static membership id; "" if none
	ClientID   string
	Host       string
	// Assignments is what the member owns; empty when unknown (an
	// assignment of another protocol type, or one that does not decode).
	Assignments []Assignment
}

// Assignment is a member's partitions of one topic.
type Assignment struct {
	Topic      string
	Partitions []int32
}

// RecordPage is what Source.Records read from one partition.
type RecordPage struct {
	LogStart      int64
	HighWatermark int64
	Records       []Record
}

// Record is one record. Key and Value are nil when null and may already
// be cut short (KeySize and ValueSize are then the full lengths, -1 for
// null, and Truncated is set).
type Record struct {
	Offset      int64
	TimestampMs int64
	Key, Value  []byte
	KeySize     int
	ValueSize   int
	Truncated   bool
	Headers     []RecordHeader
}

// RecordHeader is one record header; Value is nil when null.
type RecordHeader struct {
	Key   string
	Value []byte
}

// PartitionLag is a group's position in one partition.
type PartitionLag struct {
	Topic     string
	Partition int32
	Committed int64 // committed offset
	End       int64 // the partition's high watermark (LSO for read_committed groups, the broker's choice)
	Lag       int64 // End - Committed, never negative
}

// ConfigEntry is one broker setting.
type ConfigEntry struct {
	Name   string
	Value  string
	Source string // e.g. "default", "config_file", "dynamic"
}
