package main

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"gopkg.in/yaml.v3"

	"github.com/sluice-io/sluice/internal/admin"
	"github.com/sluice-io/sluice/internal/broker"
	"github.com/sluice-io/sluice/internal/topics"
)

// serveConfig is what `sluice serve` runs with, after defaults, the YAML
// file, the environment and the flags have been applied in that order.
type serveConfig struct {
	opts      broker.Options
	logFormat string
	logLevel  string
	// adminAddr is the admin listener's address; empty turns it off.
	// adminListener, if set (tests), is used instead.
	adminAddr     string
	adminListener net.Listener
	// metricsOff turns the metrics hooks and /metrics off.
	metricsOff bool
	// entries is every key's value and where it came from, for the
	// admin listener's /api/config.
	entries []admin.ConfigEntry
}

// configKey is one entry of the configuration table: the single source of
// truth for the keys, their defaults and their meaning. Flags, environment
// variables, the YAML file and `sluice serve --print-config` (from which
// the README's table is generated) all come from it.
type configKey struct {
	Name    string // Kafka's name where Kafka has one; flag --Name
	Default string
	Doc     string
	isBool  bool
	set     func(c *serveConfig, v string) error
}

// envName is the environment variable for a key: SLUICE_ and the name in
// upper case with dots and dashes as underscores.
func envName(name string) string {
	return "SLUICE_" + strings.NewReplacer(".", "_", "-", "_").Replace(strings.ToUpper(name))
}

// topicDefault sets a broker-level topic default under its topic config
// name, where the broker's topic config machinery validates it. Kafka's own
// default is left unset, so DescribeConfigs reports it as DEFAULT_CONFIG
// rather than as a broker setting.
func topicDefault(topicKey string) func(c *serveConfig, v string) error {
	return func(c *serveConfig, v string) error {
		if err := topics.CheckValue(topicKey, v); err != nil {
			return err
		}
		if d, ok := topics.Lookup(topicKey); ok && d.Default == v {
			return nil
		}
		if c.opts.TopicDefaults == nil {
			c.opts.TopicDefaults = map[string]string{}
		}
		c.opts.TopicDefaults[topicKey] = v
		return nil
	}
}

func intKey(bits int, dst func(c *serveConfig) any) func(c *serveConfig, v string) error {
	return func(c *serveConfig, v string) error {
		n, err := strconv.ParseInt(strings.TrimSpace(v), 10, bits)
		if err != nil {
			return fmt.Errorf("not a %d-bit integer", bits)
		}
		switch p := dst(c).(type) {
		case *int:
			*p = int(n)
		case *int32:
			*p = int32(n)
		case *int64:
			*p = n
		}
		return nil
	}
}

func msKey(dst func(c *serveConfig) *time.Duration) func(c *serveConfig, v string) error {
	return func(c *serveConfig, v string) error {
		n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		if err != nil || n < 0 {
			return errors.New("not a non-negative number of milliseconds")
		}
		*dst(c) = time.Duration(n) * time.Millisecond
		return nil
	}
}

func boolKey(dst func(c *serveConfig) *bool, invert bool) func(c *serveConfig, v string) error {
	return func(c *serveConfig, v string) error {
		b, err := strconv.ParseBool(strings.TrimSpace(v))
		if err != nil {
			return errors.New("not true or false")
		}
		*dst(c) = b != invert
		return nil
	}
}

// listenerAddr accepts "host:port" or Kafka's "PLAINTEXT://host:port"; one
// plaintext listener is all a single node serves so far.
func listenerAddr(v string) (string, error) {
	v = strings.TrimSpace(v)
	if strings.Contains(v, ",") {
		return "", errors.New("only one listener is supported")
	}
	if i := strings.Index(v, "://"); i >= 0 {
		if scheme := strings.ToUpper(v[:i]); scheme != "PLAINTEXT" {
			return "", fmt.Errorf("listener security protocol %s is not supported yet; use PLAINTEXT", scheme)
		}
		v = v[i+3:]
	}
	return v, nil
}

var configKeys = []configKey{
	{Name: "listeners", Default: "PLAINTEXT://127.0.0.1:9092", Doc: "Address to listen on, host:port (PLAINTEXT:// optional; one listener).",
		set: func(c *serveConfig, v string) (err error) { c.opts.Listen, err = listenerAddr(v); return err }},
	{Name: "advertised.listeners", Default: "", Doc: "Address clients are told to connect to; empty means the listener's address.",
		set: func(c *serveConfig, v string) (err error) { c.opts.Advertised, err = listenerAddr(v); return err }},
	{Name: "log.dirs", Default: "./sluice-data", Doc: "Data directory (one).",
		set: func(c *serveConfig, v string) error {
			if strings.Contains(v, ",") {
				return errors.New("only one data directory is supported")
			}
			c.opts.Dir = strings.TrimSpace(v)
			return nil
		}},
	{Name: "node.id", Default: "1", Doc: "This broker's id.",
		set: intKey(32, func(c *serveConfig) any { return &c.opts.NodeID })},
	{Name: "num.partitions", Default: "1", Doc: "Partitions of auto-created topics and of CreateTopics with -1.",
		set: intKey(32, func(c *serveConfig) any { return &c.opts.NumPartitions })},
	{Name: "auto.create.topics.enable", Default: "true", Doc: "Create unknown topics when clients ask for their metadata.", isBool: true,
		set: boolKey(func(c *serveConfig) *bool { return &c.opts.DisableAutoCreateTopics }, true)},
	{Name: "log.segment.bytes", Default: "1073741824", Doc: "Default segment.bytes: size at which a segment is rolled.", set: topicDefault("segment.bytes")},
	{Name: "log.roll.ms", Default: "604800000", Doc: "Default segment.ms: age at which a segment is rolled.", set: topicDefault("segment.ms")},
	{Name: "log.retention.ms", Default: "604800000", Doc: "Default retention.ms; -1 keeps data forever.", set: topicDefault("retention.ms")},
	{Name: "log.retention.bytes", Default: "-1", Doc: "Default retention.bytes per partition; -1 means no limit.", set: topicDefault("retention.bytes")},
	{Name: "log.index.interval.bytes", Default: "4096", Doc: "Default index.interval.bytes: log bytes between offset index entries.", set: topicDefault("index.interval.bytes")},
	{Name: "message.max.bytes", Default: "1048588", Doc: "Default max.message.bytes: largest record batch accepted.", set: topicDefault("max.message.bytes")},
	{Name: "log.message.timestamp.type", Default: "CreateTime", Doc: "Default message.timestamp.type: CreateTime or LogAppendTime.", set: topicDefault("message.timestamp.type")},
	{Name: "log.cleanup.policy", Default: "delete", Doc: "Default cleanup.policy: delete, compact or compact,delete.", set: topicDefault("cleanup.policy")},
	{Name: "log.cleaner.delete.retention.ms", Default: "86400000", Doc: "Default delete.retention.ms: how long tombstones survive compaction.", set: topicDefault("delete.retention.ms")},
	{Name: "log.cleaner.min.cleanable.ratio", Default: "0.5", Doc: "Default min.cleanable.dirty.ratio: the uncompacted share of a log that starts a compaction.", set: topicDefault("min.cleanable.dirty.ratio")},
	{Name: "log.cleaner.min.compaction.lag.ms", Default: "0", Doc: "Default min.compaction.lag.ms: records younger than this are not compacted.", set: topicDefault("min.compaction.lag.ms")},
	{Name: "log.cleaner.backoff.ms", Default: "15000", Doc: "How often the log cleaner looks for a compacted partition to clean.",
		set: msKey(func(c *serveConfig) *time.Duration { return &c.opts.Storage.CleanerBackoff })},
	{Name: "log.cleaner.dedupe.buffer.size", Default: "134217728", Doc: "Memory of the log cleaner's key map; a larger dirty log is cleaned in several passes.",
		set: intKey(64, func(c *serveConfig) any { return &c.opts.Storage.CleanerDedupeBufferBytes })},
	{Name: "log.cleaner.io.max.bytes.per.second", Default: "0", Doc: "Sluice: bytes per second the log cleaner may read and write; 0 means no limit.",
		set: intKey(64, func(c *serveConfig) any { return &c.opts.Storage.CleanerIOBytesPerSecond })},
	{Name: "log.retention.check.interval.ms", Default: "300000", Doc: "How often retention runs.",
		set: msKey(func(c *serveConfig) *time.Duration { return &c.opts.Storage.RetentionCheckInterval })},
	{Name: "socket.request.max.bytes", Default: "104857600", Doc: "Largest request accepted; a larger one closes the connection.",
		set: intKey(32, func(c *serveConfig) any { return &c.opts.Server.MaxRequestBytes })},
	{Name: "queued.max.request.bytes", Default: "268435456", Doc: "Request bytes read and not yet answered, across connections, before reading pauses.",
		set: intKey(64, func(c *serveConfig) any { return &c.opts.Server.MaxInFlightBytes })},
	{Name: "max.connections", Default: "10000", Doc: "Open connections; past it new ones are closed at once.",
		set: intKey(32, func(c *serveConfig) any { return &c.opts.Server.MaxConnections })},
	{Name: "connections.max.idle.ms", Default: "600000", Doc: "Idle connections are closed after this long.",
		set: msKey(func(c *serveConfig) *time.Duration { return &c.opts.Server.IdleTimeout })},
	{Name: "fetch.max.bytes", Default: "57671680", Doc: "Largest records payload of one fetch response.",
		set: intKey(32, func(c *serveConfig) any { return &c.opts.FetchMaxBytes })},
	{Name: "max.incremental.fetch.session.cache.slots", Default: "1000", Doc: "Fetch sessions (KIP-227) kept; the least recently used is evicted.",
		set: intKey(32, func(c *serveConfig) any { return &c.opts.FetchSessionCacheSlots })},
	{Name: "offsets.topic.num.partitions", Default: "50", Doc: "Partitions of the consumer-offsets topic, used when it is created.",
		set: intKey(32, func(c *serveConfig) any { return &c.opts.OffsetsTopicPartitions })},
	{Name: "group.initial.rebalance.delay.ms", Default: "3000", Doc: "How long a new group waits for more members before its first rebalance.",
		set: func(c *serveConfig, v string) error {
			if err := msKey(func(c *serveConfig) *time.Duration { return &c.opts.Group.InitialRebalanceDelay })(c, v); err != nil {
				return err
			}
			if c.opts.Group.InitialRebalanceDelay == 0 {
				c.opts.Group.InitialRebalanceDelay = -1 // zero means the default to the package
			}
			return nil
		}},
	{Name: "group.min.session.timeout.ms", Default: "6000", Doc: "Smallest session timeout a classic group member may ask for.",
		set: msKey(func(c *serveConfig) *time.Duration { return &c.opts.Group.MinSessionTimeout })},
	{Name: "group.max.session.timeout.ms", Default: "1800000", Doc: "Largest session timeout a classic group member may ask for.",
		set: msKey(func(c *serveConfig) *time.Duration { return &c.opts.Group.MaxSessionTimeout })},
	{Name: "group.max.size", Default: "10000", Doc: "Most members of one group.",
		set: intKey(32, func(c *serveConfig) any { return &c.opts.Group.MaxGroupSize })},
	{Name: "group.consumer.session.timeout.ms", Default: "45000", Doc: "Session timeout of KIP-848 (group.protocol=consumer) group members.",
		set: msKey(func(c *serveConfig) *time.Duration { return &c.opts.Group.Consumer.SessionTimeout })},
	{Name: "group.consumer.heartbeat.interval.ms", Default: "5000", Doc: "Heartbeat interval the broker gives KIP-848 group members.",
		set: msKey(func(c *serveConfig) *time.Duration { return &c.opts.Group.Consumer.HeartbeatInterval })},
	{Name: "group.consumer.max.size", Default: "10000", Doc: "Most members of one KIP-848 group.",
		set: intKey(32, func(c *serveConfig) any { return &c.opts.Group.Consumer.MaxSize })},
	{Name: "group.consumer.assignors", Default: "uniform,range", Doc: "Server-side assignors of KIP-848 groups; the first is the default.",
		set: func(c *serveConfig, v string) error {
			var as []string
			for _, a := range strings.Split(v, ",") {
				if a = strings.TrimSpace(a); a != "" {
					as = append(as, a)
				}
			}
			if len(as) == 0 {
				return errors.New("must name at least one assignor")
			}
			c.opts.Group.Consumer.Assignors = as
			return nil
		}},
	{Name: "offsets.retention.minutes", Default: "10080", Doc: "Committed offsets of an empty group are kept this long.",
		set: func(c *serveConfig, v string) error {
			n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 32)
			if err != nil || n < 1 {
				return errors.New("not a positive number of minutes")
			}
			c.opts.Group.OffsetsRetention = time.Duration(n) * time.Minute
			return nil
		}},
	{Name: "offset.metadata.max.bytes", Default: "4096", Doc: "Largest metadata string of a committed offset.",
		set: intKey(32, func(c *serveConfig) any { return &c.opts.Group.MaxOffsetMetadataBytes })},
	{Name: "transaction.state.log.num.partitions", Default: "50", Doc: "Partitions of the transaction-state topic, used when it is created.",
		set: intKey(32, func(c *serveConfig) any { return &c.opts.TxnTopicPartitions })},
	{Name: "transaction.max.timeout.ms", Default: "900000", Doc: "Largest transaction.timeout.ms a producer may ask for.",
		set: msKey(func(c *serveConfig) *time.Duration { return &c.opts.Txn.MaxTimeout })},
	{Name: "transactional.id.expiration.ms", Default: "604800000", Doc: "A transactional id unused this long is forgotten.",
		set: msKey(func(c *serveConfig) *time.Duration { return &c.opts.Txn.IDExpiration })},
	{Name: "transaction.abort.timed.out.transaction.cleanup.interval.ms", Default: "10000", Doc: "How often transactions past their timeout are looked for and aborted.",
		set: msKey(func(c *serveConfig) *time.Duration { return &c.opts.Txn.AbortCheckInterval })},
	{Name: "wal.file.bytes", Default: "67108864", Doc: "Sluice: size of each write-ahead log file.",
		set: intKey(64, func(c *serveConfig) any { return &c.opts.Storage.WAL.FileBytes })},
	{Name: "wal.sync.delay.ms", Default: "0", Doc: "Sluice: hold a WAL sync back this long to group more appends into it; 0 syncs as soon as the writer is free.",
		set: msKey(func(c *serveConfig) *time.Duration { return &c.opts.Storage.WAL.SyncDelay })},
	{Name: "wal.max.pending.bytes", Default: "67108864", Doc: "Sluice: WAL bytes appended but not yet written before appends wait.",
		set: intKey(32, func(c *serveConfig) any { return &c.opts.Storage.WAL.MaxPendingBytes })},
	{Name: "checkpoint.bytes", Default: "67108864", Doc: "Sluice: WAL bytes between checkpoints (bounds recovery replay).",
		set: intKey(64, func(c *serveConfig) any { return &c.opts.Storage.CheckpointBytes })},
	{Name: "checkpoint.interval.ms", Default: "10000", Doc: "Sluice: longest time between checkpoints.",
		set: msKey(func(c *serveConfig) *time.Duration { return &c.opts.Storage.CheckpointInterval })},
	{Name: "log.open.files.max", Default: "4096", Doc: "Sluice: descriptors kept open for sealed segments (an LRU).",
		set: intKey(32, func(c *serveConfig) any { return &c.opts.Storage.MaxOpenSegmentFiles })},
	{Name: "sendfile", Default: "true", Doc: "Sluice: send fetched records with sendfile (zero-copy); false copies through user space.", isBool: true,
		set: boolKey(func(c *serveConfig) *bool { return &c.opts.DisableSendfile }, true)},
	{Name: "admin.listener", Default: "127.0.0.1:9644", Doc: "Sluice: HTTP admin listener (/metrics, /healthz, /readyz, /api/...), host:port; empty turns it off.",
		set: func(c *serveConfig, v string) error {
			c.adminAddr = strings.TrimSpace(v)
			if c.adminAddr == "" {
				return nil
			}
			_, _, err := net.SplitHostPort(c.adminAddr)
			return err
		}},
	{Name: "metrics", Default: "true", Doc: "Sluice: collect Prometheus metrics (served on the admin listener's /metrics).", isBool: true,
		set: boolKey(func(c *serveConfig) *bool { return &c.metricsOff }, true)},
	{Name: "log-format", Default: "text", Doc: "Sluice: log format, text or json.",
		set: func(c *serveConfig, v string) error {
			if v != "text" && v != "json" {
				return errors.New("must be text or json")
			}
			c.logFormat = v
			return nil
		}},
	{Name: "log-level", Default: "info", Doc: "Sluice: log level: debug, info, warn or error.",
		set: func(c *serveConfig, v string) error {
			switch v {
			case "debug", "info", "warn", "error":
				c.logLevel = v
				return nil
			}
			return errors.New("must be debug, info, warn or error")
		}},
}

// addConfigFlags defines a flag for every config key on fs.
func addConfigFlags(fs *pflag.FlagSet) {
	for _, k := range configKeys {
		usage := fmt.Sprintf("%s (env %s)", k.Doc, envName(k.Name))
		if k.isBool {
			def, _ := strconv.ParseBool(k.Default)
			fs.Bool(k.Name, def, usage)
		} else {
			fs.String(k.Name, k.Default, usage)
		}
	}
	fs.String("config", "", "YAML file of key: value pairs using the names below")
	fs.Bool("print-config", false, "print the configuration keys as a markdown table and exit")
	// A profiling aid for broker development, not a setting: it is not
	// in the configuration table, the YAML file or the environment.
	fs.String("cpuprofile", "", "write a CPU profile of the broker to this file until shutdown")
	_ = fs.MarkHidden("cpuprofile")
}

// loadConfig applies, in order, the defaults, the YAML file named by
// --config, the SLUICE_* environment and the flags set on the command
// line, and reports every bad key or value at once.
func loadConfig(fs *pflag.FlagSet, getenv func(string) string) (serveConfig, error) {
	values := map[string]string{}
	source := map[string]string{}
	known := map[string]bool{}
	for _, k := range configKeys {
		values[k.Name], source[k.Name] = k.Default, "default"
		known[k.Name] = true
	}
	var errs []error
	if f := fs.Lookup("config"); f != nil && f.Value.String() != "" {
		file, err := readYAML(f.Value.String())
		if err != nil {
			errs = append(errs, err)
		}
		for name, v := range file {
			if !known[name] {
				errs = append(errs, fmt.Errorf("config file: unknown key %q", name))
				continue
			}
			values[name], source[name] = v, "config file"
		}
	}
	for _, k := range configKeys {
		if v, ok := lookupEnv(getenv, envName(k.Name)); ok {
			values[k.Name], source[k.Name] = v, envName(k.Name)
		}
		if f := fs.Lookup(k.Name); f != nil && f.Changed {
			values[k.Name], source[k.Name] = f.Value.String(), "--"+k.Name
		}
	}
	var c serveConfig
	for _, k := range configKeys {
		if err := k.set(&c, values[k.Name]); err != nil {
			errs = append(errs, fmt.Errorf("%s=%q (from %s): %v", k.Name, values[k.Name], source[k.Name], err))
		}
		c.entries = append(c.entries, admin.ConfigEntry{Name: k.Name, Value: values[k.Name], Source: source[k.Name]})
	}
	if err := errors.Join(errs...); err != nil {
		return c, err
	}
	if err := c.opts.Validate(); err != nil {
		return c, err
	}
	return c, nil
}

func lookupEnv(getenv func(string) string, name string) (string, bool) {
	if getenv == nil {
		return os.LookupEnv(name)
	}
	v := getenv(name)
	return v, v != ""
}

// maxConfigFileBytes bounds the YAML file read.
const maxConfigFileBytes = 1 << 20

func readYAML(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("config file: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxConfigFileBytes+1))
	if err != nil {
		return nil, fmt.Errorf("config file %s: %w", path, err)
	}
	if len(b) > maxConfigFileBytes {
		return nil, fmt.Errorf("config file %s: larger than %d bytes", path, maxConfigFileBytes)
	}
	var raw map[string]any
	if err := yaml.Unmarshal(b, &raw); err != nil {
		return nil, fmt.Errorf("config file %s: %w", path, err)
	}
	out := make(map[string]string, len(raw))
	for k, v := range raw {
		switch v := v.(type) {
		case nil:
			out[k] = ""
		case string:
			out[k] = v
		case bool, int, int64, uint64, float64:
			out[k] = fmt.Sprint(v)
		default:
			return nil, fmt.Errorf("config file %s: %s: want a single value, got %T", path, k, v)
		}
	}
	return out, nil
}

// printConfigTable writes the configuration table as markdown.
func printConfigTable(w io.Writer) {
	fmt.Fprintln(w, "| key | default | environment | description |")
	fmt.Fprintln(w, "| --- | --- | --- | --- |")
	for _, k := range configKeys {
		def := k.Default
		if def == "" {
			def = "(empty)"
		}
		fmt.Fprintf(w, "| `%s` | `%s` | `%s` | %s |\n", k.Name, def, envName(k.Name), k.Doc)
	}
}
