package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spf13/pflag"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-io/sluice/internal/broker"
	"github.com/sluice-io/sluice/internal/group"
	"github.com/sluice-io/sluice/internal/group/consumer"
	"github.com/sluice-io/sluice/internal/server"
	"github.com/sluice-io/sluice/internal/storage"
	"github.com/sluice-io/sluice/internal/topics"
	"github.com/sluice-io/sluice/internal/txn"
	"github.com/sluice-io/sluice/internal/wal"
)

func flags(t *testing.T, args ...string) *pflag.FlagSet {
	t.Helper()
	fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
	addConfigFlags(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	return fs
}

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestConfigDefaults(t *testing.T) {
	c, err := loadConfig(flags(t), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	o := c.opts
	if o.Listen != "127.0.0.1:9092" || o.Dir != "./sluice-data" || o.NodeID != 1 || o.NumPartitions != 1 || o.DisableAutoCreateTopics || o.DisableSendfile {
		t.Fatalf("defaults: %+v", o)
	}
	if len(o.TopicDefaults) != 0 {
		t.Fatalf("Kafka's defaults should not be recorded as broker settings: %v", o.TopicDefaults)
	}
	if c.logFormat != "text" || c.logLevel != "info" {
		t.Fatalf("log %s %s", c.logFormat, c.logLevel)
	}
}

// The table's defaults must be the ones the packages use, or the README
// would document values the broker does not run with.
func TestConfigTableMatchesPackageDefaults(t *testing.T) {
	want := map[string]string{
		"socket.request.max.bytes":                                    itoa(server.DefaultMaxRequestBytes),
		"queued.max.request.bytes":                                    itoa(server.DefaultMaxInFlightBytes),
		"max.connections":                                             itoa(server.DefaultMaxConnections),
		"connections.max.idle.ms":                                     itoa(int(server.DefaultIdleTimeout.Milliseconds())),
		"fetch.max.bytes":                                             itoa(broker.DefaultFetchMaxBytes),
		"max.incremental.fetch.session.cache.slots":                   itoa(broker.DefaultFetchSessionCacheSlots),
		"num.partitions":                                              itoa(broker.DefaultNumPartitions),
		"wal.file.bytes":                                              itoa(wal.DefaultFileBytes),
		"wal.max.pending.bytes":                                       itoa(wal.DefaultMaxPendingBytes),
		"checkpoint.bytes":                                            itoa(storage.DefaultCheckpointBytes),
		"checkpoint.interval.ms":                                      itoa(int(storage.DefaultCheckpointInterval.Milliseconds())),
		"log.retention.check.interval.ms":                             itoa(int(storage.DefaultRetentionCheckInterval.Milliseconds())),
		"log.open.files.max":                                          itoa(storage.DefaultMaxOpenSegmentFiles),
		"offsets.topic.num.partitions":                                itoa(broker.DefaultOffsetsTopicPartitions),
		"group.max.size":                                              itoa(group.DefaultMaxGroupSize),
		"group.min.session.timeout.ms":                                itoa(int(group.DefaultMinSessionTimeout.Milliseconds())),
		"group.max.session.timeout.ms":                                itoa(int(group.DefaultMaxSessionTimeout.Milliseconds())),
		"group.initial.rebalance.delay.ms":                            itoa(int(group.DefaultInitialRebalanceDelay.Milliseconds())),
		"offsets.retention.minutes":                                   itoa(int(group.DefaultOffsetsRetention.Minutes())),
		"offset.metadata.max.bytes":                                   itoa(group.DefaultMaxOffsetMetadataBytes),
		"group.consumer.session.timeout.ms":                           itoa(int(consumer.DefaultSessionTimeout.Milliseconds())),
		"group.consumer.heartbeat.interval.ms":                        itoa(int(consumer.DefaultHeartbeatInterval.Milliseconds())),
		"log.cleaner.backoff.ms":                                      itoa(int(storage.DefaultCleanerBackoff.Milliseconds())),
		"log.cleaner.dedupe.buffer.size":                              itoa(storage.DefaultCleanerDedupeBytes),
		"transaction.state.log.num.partitions":                        itoa(txn.DefaultNumPartitions),
		"transaction.max.timeout.ms":                                  itoa(int(txn.DefaultMaxTimeout.Milliseconds())),
		"transactional.id.expiration.ms":                              itoa(int(txn.DefaultIDExpiration.Milliseconds())),
		"transaction.abort.timed.out.transaction.cleanup.interval.ms": itoa(int(txn.DefaultAbortCheckInterval.Milliseconds())),
		"group.consumer.max.size":                                     itoa(consumer.DefaultMaxSize),
	}
	for _, k := range configKeys {
		if w, ok := want[k.Name]; ok && w != k.Default {
			t.Errorf("%s: table default %s, package default %s", k.Name, k.Default, w)
		}
		if d, ok := topics.LookupBroker(k.Name); ok && d.Default != k.Default {
			t.Errorf("%s: table default %s, topic default %s", k.Name, k.Default, d.Default)
		}
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

// Flags beat the environment, which beats the file, which beats the
// defaults.
func TestConfigPrecedence(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "sluice.yaml")
	yaml := "log.dirs: /from/file\nnum.partitions: 3\nnode.id: 4\nlog.segment.bytes: 2097152\nsendfile: false\n"
	if err := os.WriteFile(file, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := loadConfig(flags(t, "--config", file, "--node.id", "9"), env(map[string]string{
		"SLUICE_NUM_PARTITIONS": "5",
		"SLUICE_NODE_ID":        "7",
		"SLUICE_LISTENERS":      "PLAINTEXT://127.0.0.1:19999",
	}))
	if err != nil {
		t.Fatal(err)
	}
	o := c.opts
	if o.Dir != "/from/file" || o.NumPartitions != 5 || o.NodeID != 9 || o.Listen != "127.0.0.1:19999" || !o.DisableSendfile {
		t.Fatalf("%+v", o)
	}
	if o.TopicDefaults["segment.bytes"] != "2097152" {
		t.Fatalf("topic defaults %v", o.TopicDefaults)
	}
}

func TestConfigReportsEveryProblem(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(file, []byte("no.such.key: 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := loadConfig(flags(t, "--config", file, "--node.id", "x", "--log-format", "xml", "--listeners", "SSL://h:1"),
		env(map[string]string{"SLUICE_LOG_RETENTION_MS": "soon"}))
	for _, want := range []string{"no.such.key", "node.id", "log-format", "SSL", "SLUICE_LOG_RETENTION_MS"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %s: %v", want, err)
		}
	}
}

func TestPrintConfig(t *testing.T) {
	root := newRoot()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetArgs([]string{"serve", "--print-config"})
	if err := root.Execute(); err != nil {
		t.Fatal(err)
	}
	s := out.String()
	for _, want := range []string{"| key | default |", "`log.dirs`", "`./sluice-data`", "`SLUICE_LOG_SEGMENT_BYTES`", "`sendfile`"} {
		if !strings.Contains(s, want) {
			t.Errorf("--print-config lacks %s:\n%s", want, s)
		}
	}
	if n := strings.Count(s, "\n"); n != len(configKeys)+2 {
		t.Errorf("%d lines for %d keys", n, len(configKeys))
	}
}

// serve runs, takes traffic, and shuts down cleanly when its context ends
// (what SIGINT/SIGTERM do).
func TestServeShutsDownCleanly(t *testing.T) {
	c, err := loadConfig(flags(t, "--listeners", "127.0.0.1:0", "--log.dirs", t.TempDir(), "--log-format", "json", "--admin.listener", ""), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	addr := make(chan string, 1)
	w := &syncWriter{b: &bytes.Buffer{}}
	done := make(chan error, 1)
	go func() { done <- serve(ctx, c, w, func(b *broker.Broker) { addr <- b.Addr().String() }) }()
	var a string
	select {
	case a = <-addr:
	case err := <-done:
		t.Fatalf("serve: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("serve did not start")
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(a), kgo.DisableIdempotentWrite(), kgo.DefaultProduceTopic("s"), kgo.AllowAutoTopicCreation())
	if err != nil {
		t.Fatal(err)
	}
	pctx, pcancel := context.WithTimeout(ctx, 20*time.Second)
	defer pcancel()
	if err := cl.ProduceSync(pctx, kgo.StringRecord("x")).FirstErr(); err != nil {
		t.Fatal(err)
	}
	cl.Close()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("serve returned %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("serve did not stop")
	}
	logs := func() string { w.mu.Lock(); defer w.mu.Unlock(); return w.b.String() }()
	if !strings.Contains(logs, `"msg":"broker stopped"`) {
		t.Fatalf("no clean stop in the log:\n%s", logs)
	}
}

// syncWriter lets the test read the log the broker writes from other
// goroutines.
type syncWriter struct {
	mu sync.Mutex
	b  *bytes.Buffer
}

func (w *syncWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}
