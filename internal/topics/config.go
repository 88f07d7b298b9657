package topics

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sluice-io/sluice/internal/partition"
	"github.com/sluice-io/sluice/internal/segment"
)

// ErrInvalidConfig marks a topic config name or value the broker refuses.
var ErrInvalidConfig = errors.New("topics: invalid config")

// Type is a config's type, with the values of Kafka's ConfigType.
type Type int8

// Config types.
const (
	TypeBoolean Type = 1
	TypeString  Type = 2
	TypeInt     Type = 3
	TypeLong    Type = 5
	TypeDouble  Type = 6
	TypeList    Type = 7
)

// Def describes one topic config.
type Def struct {
	Name string
	Type Type
	// Default is Kafka's default, used unless the broker sets its own
	// (through BrokerName) or the topic sets one.
	Default string
	// BrokerName is the broker config that provides the topic default
	// (Kafka's synonym), e.g. log.segment.bytes for segment.bytes.
	BrokerName string
	Doc        string
	// check validates a value already known to parse as Type.
	check func(v string) error
}

const (
	longMax = "9223372036854775807"
	// segmentBytesMin is Kafka's lower bound for segment.bytes (1 MiB)
	// would make tests slow to roll; we keep the storage's own bound.
	segmentBytesMin = 14
)

// Defs lists every topic config the broker knows, sorted by name. Some are
// stored and reported but have no effect yet (they say so in Doc); every
// other name is refused.
var Defs = []Def{
	{Name: "cleanup.policy", Type: TypeList, Default: "delete", BrokerName: "log.cleanup.policy",
		Doc: "How old records are discarded: delete (retention.ms and retention.bytes delete old segments), compact (the background cleaner keeps the last record of every key; records need keys), or both (compact,delete).", check: checkCleanupPolicy},
	{Name: "compression.type", Type: TypeString, Default: "producer", BrokerName: "compression.type",
		Doc: "Batches are stored as producers compress them; only producer is supported (no recompression).", check: checkCompressionType},
	{Name: "delete.retention.ms", Type: TypeLong, Default: "86400000", BrokerName: "log.cleaner.delete.retention.ms",
		Doc: "How long compaction keeps a tombstone: one is removed once its batch's max timestamp is older than this.", check: nonNegative},
	{Name: "file.delete.delay.ms", Type: TypeLong, Default: "60000", BrokerName: "log.segment.delete.delay.ms",
		Doc: "Stored; segments are deleted as soon as no reader holds them.", check: nonNegative},
	{Name: "flush.messages", Type: TypeLong, Default: longMax, BrokerName: "log.flush.interval.messages",
		Doc: "Stored; every acknowledged batch is already fsynced through the shared WAL.", check: positive},
	{Name: "flush.ms", Type: TypeLong, Default: longMax, BrokerName: "log.flush.interval.ms",
		Doc: "Stored; every acknowledged batch is already fsynced through the shared WAL.", check: nonNegative},
	{Name: "index.interval.bytes", Type: TypeInt, Default: "4096", BrokerName: "log.index.interval.bytes",
		Doc: "Bytes of log between entries of the sparse offset index.", check: nonNegative},
	{Name: "max.compaction.lag.ms", Type: TypeLong, Default: longMax, BrokerName: "log.cleaner.max.compaction.lag.ms",
		Doc: "A compacted partition with a dirty segment whose records are all older than this is compacted whatever its dirty ratio.", check: positive},
	{Name: "max.message.bytes", Type: TypeInt, Default: "1048588", BrokerName: "message.max.bytes",
		Doc: "Largest record batch accepted, in bytes.", check: nonNegative},
	{Name: "message.timestamp.after.max.ms", Type: TypeLong, Default: "3600000", BrokerName: "log.message.timestamp.after.max.ms",
		Doc: "CreateTime batches whose max timestamp is further in the future are refused (INVALID_TIMESTAMP).", check: nonNegative},
	{Name: "message.timestamp.before.max.ms", Type: TypeLong, Default: longMax, BrokerName: "log.message.timestamp.before.max.ms",
		Doc: "CreateTime batches whose first timestamp is further in the past are refused (INVALID_TIMESTAMP).", check: nonNegative},
	{Name: "message.timestamp.type", Type: TypeString, Default: "CreateTime", BrokerName: "log.message.timestamp.type",
		Doc: "CreateTime keeps the producer's timestamps; LogAppendTime stamps batches with the broker's clock.", check: checkTimestampType},
	{Name: "min.cleanable.dirty.ratio", Type: TypeDouble, Default: "0.5", BrokerName: "log.cleaner.min.cleanable.ratio",
		Doc: "Share of a compacted partition's cleanable log not yet compacted above which the cleaner picks it.", check: checkRatio},
	{Name: "min.compaction.lag.ms", Type: TypeLong, Default: "0", BrokerName: "log.cleaner.min.compaction.lag.ms",
		Doc: "Segments holding a record younger than this are not compacted yet.", check: nonNegative},
	{Name: "min.insync.replicas", Type: TypeInt, Default: "1", BrokerName: "min.insync.replicas",
		Doc: "Stored; a single node is its own in-sync replica set.", check: positive},
	{Name: "preallocate", Type: TypeBoolean, Default: "false", BrokerName: "log.preallocate",
		Doc: "Stored; not yet effective."},
	{Name: "retention.bytes", Type: TypeLong, Default: "-1", BrokerName: "log.retention.bytes",
		Doc: "Partition size above which the oldest segments are deleted; -1 means no limit.", check: minusOneOrMore},
	{Name: "retention.ms", Type: TypeLong, Default: "604800000", BrokerName: "log.retention.ms",
		Doc: "Age after which segments are deleted; -1 means forever.", check: minusOneOrMore},
	{Name: "segment.bytes", Type: TypeInt, Default: "1073741824", BrokerName: "log.segment.bytes",
		Doc: "Size at which a segment is rolled.", check: checkSegmentBytes},
	{Name: "segment.index.bytes", Type: TypeInt, Default: "10485760", BrokerName: "log.index.size.max.bytes",
		Doc: "Stored; our indexes grow as needed.", check: positive},
	{Name: "segment.jitter.ms", Type: TypeLong, Default: "0", BrokerName: "log.roll.jitter.ms",
		Doc: "Stored; not yet effective.", check: nonNegative},
	{Name: "segment.ms", Type: TypeLong, Default: "604800000", BrokerName: "log.roll.ms",
		Doc: "Age at which a segment is rolled.", check: positive},
	{Name: "unclean.leader.election.enable", Type: TypeBoolean, Default: "false", BrokerName: "unclean.leader.election.enable",
		Doc: "Stored; a single node has no other leader to elect."},
}

// Lookup returns the definition of the topic config name.
func Lookup(name string) (Def, bool) {
	i, ok := slices.BinarySearchFunc(Defs, name, func(d Def, n string) int { return strings.Compare(d.Name, n) })
	if !ok {
		return Def{}, false
	}
	return Defs[i], true
}

// LookupBroker returns the topic config whose broker synonym is name.
func LookupBroker(name string) (Def, bool) {
	for _, d := range Defs {
		if d.BrokerName == name {
			return d, true
		}
	}
	return Def{}, false
}

// CheckValue validates one config value.
func CheckValue(name, value string) error {
	d, ok := Lookup(name)
	if !ok {
		return fmt.Errorf("%w: unknown topic config %q", ErrInvalidConfig, name)
	}
	if err := parses(d.Type, value); err != nil {
		return fmt.Errorf("%w: %s=%q: %v", ErrInvalidConfig, name, value, err)
	}
	if d.check != nil {
		if err := d.check(value); err != nil {
			return fmt.Errorf("%w: %s=%q: %v", ErrInvalidConfig, name, value, err)
		}
	}
	return nil
}

// Validate checks every name and value in configs and reports every
// problem at once.
func Validate(configs map[string]string) error {
	keys := make([]string, 0, len(configs))
	for k := range configs {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var errs []error
	for _, k := range keys {
		if err := CheckValue(k, configs[k]); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Effective returns every config's value for a topic: the topic's own
// setting, else the broker's default (keyed by topic config name), else
// Kafka's.
func Effective(brokerDefaults, topic map[string]string) map[string]string {
	out := make(map[string]string, len(Defs))
	for _, d := range Defs {
		v := d.Default
		if bv, ok := brokerDefaults[d.Name]; ok {
			v = bv
		}
		if tv, ok := topic[d.Name]; ok {
			v = tv
		}
		out[d.Name] = v
	}
	return out
}

// PartitionConfig turns effective configs (see Effective) into the
// partition log's tunables.
func PartitionConfig(eff map[string]string) (partition.Config, error) {
	if err := Validate(eff); err != nil {
		return partition.Config{}, err
	}
	c := partition.Config{
		SegmentBytes:       mustInt(eff["segment.bytes"]),
		SegmentMs:          millis(mustInt(eff["segment.ms"])),
		RetentionMs:        millis(mustInt(eff["retention.ms"])),
		RetentionBytes:     mustInt(eff["retention.bytes"]),
		IndexIntervalBytes: mustInt(eff["index.interval.bytes"]),
		MaxMessageBytes:    int(min(mustInt(eff["max.message.bytes"]), math.MaxInt32)),
		TimestampType:      partition.CreateTime,
	}
	if eff["message.timestamp.type"] == "LogAppendTime" {
		c.TimestampType = partition.LogAppendTime
	}
	policies := ListValues(eff["cleanup.policy"])
	c.Compact = slices.Contains(policies, "compact")
	c.NoDelete = !slices.Contains(policies, "delete")
	c.DeleteRetention = millis(mustInt(eff["delete.retention.ms"]))
	c.MinCleanableDirtyRatio, _ = strconv.ParseFloat(eff["min.cleanable.dirty.ratio"], 64)
	c.MinCompactionLag = millis(mustInt(eff["min.compaction.lag.ms"]))
	c.MaxCompactionLag = millis(mustInt(eff["max.compaction.lag.ms"]))
	if err := c.Validate(); err != nil {
		return c, fmt.Errorf("%w: %v", ErrInvalidConfig, err)
	}
	return c, nil
}

// millis converts Kafka milliseconds to a Duration, saturating so that
// Long.MAX_VALUE ("never") stays the largest duration instead of
// overflowing.
func millis(ms int64) time.Duration {
	if ms > math.MaxInt64/int64(time.Millisecond) {
		return math.MaxInt64
	}
	if ms < 0 {
		return -time.Millisecond
	}
	return time.Duration(ms) * time.Millisecond
}

// Millis parses a long config (validated already) as a Duration.
func Millis(v string) time.Duration { return millis(mustInt(v)) }

func mustInt(v string) int64 {
	n, _ := strconv.ParseInt(v, 10, 64)
	return n
}

func parses(t Type, v string) error {
	switch t {
	case TypeBoolean:
		if v != "true" && v != "false" {
			return errors.New("not true or false")
		}
	case TypeInt:
		if _, err := strconv.ParseInt(v, 10, 32); err != nil {
			return errors.New("not a 32-bit integer")
		}
	case TypeLong:
		if _, err := strconv.ParseInt(v, 10, 64); err != nil {
			return errors.New("not a 64-bit integer")
		}
	case TypeDouble:
		if _, err := strconv.ParseFloat(v, 64); err != nil {
			return errors.New("not a number")
		}
	}
	return nil
}

func nonNegative(v string) error {
	if mustInt(v) < 0 {
		return errors.New("must be at least 0")
	}
	return nil
}

func positive(v string) error {
	if mustInt(v) < 1 {
		return errors.New("must be at least 1")
	}
	return nil
}

func minusOneOrMore(v string) error {
	if mustInt(v) < -1 {
		return errors.New("must be -1 or at least 0")
	}
	return nil
}

func checkSegmentBytes(v string) error {
	if n := mustInt(v); n < segmentBytesMin || n > segment.MaxBytes {
		return fmt.Errorf("must be in [%d, %d]", segmentBytesMin, int64(segment.MaxBytes))
	}
	return nil
}

func checkRatio(v string) error {
	f, _ := strconv.ParseFloat(v, 64)
	if f < 0 || f > 1 {
		return errors.New("must be in [0, 1]")
	}
	return nil
}

func checkTimestampType(v string) error {
	if v != "CreateTime" && v != "LogAppendTime" {
		return errors.New("must be CreateTime or LogAppendTime")
	}
	return nil
}

func checkCompressionType(v string) error {
	switch v {
	case "producer":
		return nil
	case "uncompressed", "gzip", "snappy", "lz4", "zstd":
		return errors.New("recompression is not supported: batches are stored as producers send them; use producer")
	}
	return errors.New("must be producer")
}

// ListValues splits a list config value.
func ListValues(v string) []string {
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

func checkCleanupPolicy(v string) error {
	vals := ListValues(v)
	if len(vals) == 0 {
		return errors.New("must list delete, compact or both")
	}
	for _, p := range vals {
		if p != "delete" && p != "compact" {
			return fmt.Errorf("unknown policy %q; valid: delete, compact", p)
		}
	}
	return nil
}
