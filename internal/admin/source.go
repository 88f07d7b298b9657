package admin

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
	ID      string
	Type    string // "classic" or "consumer" (KIP-848)
	State   string // Kafka's names: Stable, Empty, PreparingRebalance, ...
	Members int
	Lag     []PartitionLag
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
