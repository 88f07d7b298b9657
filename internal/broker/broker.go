// Package broker is Sluice's composition root for a single node: it opens
// the storage engine and the topic registry, serves the Kafka protocol
// through internal/server, and answers each API key in its own file
// (produce.go, fetch.go, metadata.go, ...). errors.go is the one place where
// internal errors become Kafka error codes.
//
// Request flow: the server calls Handle on a connection's reader goroutine,
// in request order. Cheap requests and every metadata change (creating,
// deleting, altering topics) are answered right there, so a request
// pipelined after a CreateTopics sees the topic. Produce enqueues its WAL
// appends in Handle, in request order, and waits for their fsync in the
// returned Pending, so pipelined produces share group commits. Fetch
// resolves its session in Handle and reads and long-polls in the Pending.
//
// Topic state is copy-on-write: a *topicState is never modified after it is
// published in mu, so handlers read it without locks. adminMu serialises
// changes (registry write, then partitions, then publish).
//
// Lock order: adminMu, then mu. A Broker is safe for concurrent use.
package broker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/sluice-io/sluice/internal/group"
	"github.com/sluice-io/sluice/internal/partition"
	"github.com/sluice-io/sluice/internal/server"
	"github.com/sluice-io/sluice/internal/storage"
	"github.com/sluice-io/sluice/internal/topics"
	"github.com/sluice-io/sluice/internal/txn"
	"github.com/sluice-io/sluice/internal/vfs"
)

// Defaults, named after the Kafka settings they mirror.
const (
	DefaultListen                 = "127.0.0.1:9092"
	DefaultClusterID              = "sluice-single-node"
	DefaultNumPartitions          = 1
	DefaultFetchSessionCacheSlots = 1000     // max.incremental.fetch.session.cache.slots
	DefaultFetchMaxBytes          = 57671680 // fetch.max.bytes
)

// Options configure a Broker. Zero values mean the defaults.
type Options struct {
	// Dir is the data directory (log.dirs); required.
	Dir string
	// FS is the filesystem; nil means the OS filesystem.
	FS vfs.FS
	// Logger receives notable events; nil discards them.
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time

	// NodeID is node.id; 0 is a valid id.
	NodeID int32
	// ClusterID is reported in Metadata and DescribeCluster.
	ClusterID string
	// Listen is the address to listen on (listeners), host:port.
	Listen string
	// Listener, if set, is used instead of listening on Listen.
	Listener net.Listener
	// Advertised is the host:port clients are told to connect to
	// (advertised.listeners); empty means the listener's address.
	Advertised string

	// NumPartitions is num.partitions, for auto-created topics and
	// CreateTopics with -1 partitions.
	NumPartitions int32
	// DisableAutoCreateTopics turns auto.create.topics.enable off.
	DisableAutoCreateTopics bool
	// TopicDefaults are the broker's topic config defaults keyed by
	// topic config name (segment.bytes for log.segment.bytes, ...).
	TopicDefaults map[string]string

	// DisableSendfile sends fetched record bytes through user space
	// instead of sendfile, to measure what zero-copy buys.
	DisableSendfile bool
	// FetchSessionCacheSlots bounds the fetch sessions kept.
	FetchSessionCacheSlots int
	// FetchMaxBytes caps a fetch response's records (fetch.max.bytes).
	FetchMaxBytes int32

	// OffsetsTopicPartitions is offsets.topic.num.partitions, used when
	// the consumer-offsets topic is created.
	OffsetsTopicPartitions int32
	// Group tunes the group coordinator; its Log, Topics, Now, Logger and
	// NumPartitions are set by the broker.
	Group group.Options
	// TxnTopicPartitions is transaction.state.log.num.partitions, used
	// when the transaction-state topic is created.
	TxnTopicPartitions int32
	// Txn tunes the transaction coordinator; its Log, Markers, Topics,
	// Now, Logger and NumPartitions are set by the broker.
	Txn txn.Options

	// Observer, if set, sees each acknowledged produce and each fetch
	// response's records per topic (the metrics hooks). Its methods run
	// on connection goroutines and must be quick.
	Observer Observer

	// Storage tunes the engine; its Dir, FS, Logger, Now and Partition
	// are set by the broker.
	Storage storage.Options
	// Server tunes the network front end; its Addr, Listener, Logger
	// and DisableSendfile are set by the broker.
	Server server.Options
}

func (o Options) withDefaults() Options {
	if o.FS == nil {
		o.FS = vfs.Default
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.ClusterID == "" {
		o.ClusterID = DefaultClusterID
	}
	if o.Listen == "" {
		o.Listen = DefaultListen
	}
	if o.NumPartitions == 0 {
		o.NumPartitions = DefaultNumPartitions
	}
	if o.FetchSessionCacheSlots == 0 {
		o.FetchSessionCacheSlots = DefaultFetchSessionCacheSlots
	}
	if o.FetchMaxBytes == 0 {
		o.FetchMaxBytes = DefaultFetchMaxBytes
	}
	if o.OffsetsTopicPartitions == 0 {
		o.OffsetsTopicPartitions = DefaultOffsetsTopicPartitions
	}
	if o.TxnTopicPartitions == 0 {
		o.TxnTopicPartitions = DefaultTxnTopicPartitions
	}
	return o
}

// Validate reports every problem with o at once.
func (o Options) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf("broker: "+format, args...)) }
	if o.Dir == "" {
		bad("Dir (log.dirs) is required")
	}
	if o.NodeID < 0 {
		bad("NodeID %d is negative", o.NodeID)
	}
	if o.Listener == nil && o.Listen != "" {
		if _, _, err := net.SplitHostPort(o.Listen); err != nil {
			bad("Listen %q: %v", o.Listen, err)
		}
	}
	if o.Advertised != "" {
		if _, err := splitHostPort(o.Advertised); err != nil {
			bad("Advertised %q: %v", o.Advertised, err)
		}
	}
	if o.NumPartitions < 0 || o.NumPartitions > topics.MaxPartitions {
		bad("NumPartitions %d outside [1, %d]", o.NumPartitions, topics.MaxPartitions)
	}
	if o.FetchSessionCacheSlots < 0 {
		bad("FetchSessionCacheSlots %d is negative", o.FetchSessionCacheSlots)
	}
	if o.FetchMaxBytes < 0 {
		bad("FetchMaxBytes %d is negative", o.FetchMaxBytes)
	}
	if o.OffsetsTopicPartitions < 0 || o.OffsetsTopicPartitions > topics.MaxPartitions {
		bad("OffsetsTopicPartitions %d outside [1, %d]", o.OffsetsTopicPartitions, topics.MaxPartitions)
	}
	if o.TxnTopicPartitions < 0 || o.TxnTopicPartitions > topics.MaxPartitions {
		bad("TxnTopicPartitions %d outside [1, %d]", o.TxnTopicPartitions, topics.MaxPartitions)
	}
	if err := topics.Validate(o.TopicDefaults); err != nil {
		errs = append(errs, fmt.Errorf("broker: topic defaults: %w", err))
	} else if _, err := topics.PartitionConfig(topics.Effective(o.TopicDefaults, nil)); err != nil {
		errs = append(errs, fmt.Errorf("broker: topic defaults: %w", err))
	}
	return errors.Join(errs...)
}

type hostPort struct {
	host string
	port int32
}

func splitHostPort(addr string) (hostPort, error) {
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		return hostPort{}, err
	}
	n, err := strconv.ParseUint(p, 10, 16)
	if err != nil {
		return hostPort{}, fmt.Errorf("port %q: %w", p, err)
	}
	return hostPort{h, int32(n)}, nil
}

// Observer receives per-topic data-path events for metrics.
type Observer interface {
	// ObserveProduce: records and bytes of one partition's record set,
	// acknowledged d after the request was received.
	ObserveProduce(topic string, records, bytes int, d time.Duration)
	// ObserveFetch: records (offsets) and bytes of one partition's
	// records in a fetch response.
	ObserveFetch(topic string, records, bytes int)
	// ObserveProduceStages: where one produce request's time went, once
	// per request with acks 1 or all. queue runs from receipt until its
	// last batch was handed to the WAL (decoding, validation, the
	// partition lock, waiting for WAL buffer space); wal from then until
	// every batch was durable (acks=all: the group commit's window, write
	// and fdatasync) or appended (acks=1); response from then until the
	// response was written (waiting behind earlier responses on the
	// connection, encoding, the socket write).
	ObserveProduceStages(queue, wal, response time.Duration)
}

// topicState is one topic as the handlers see it. It is never modified
// after being published; changes publish a new one.
type topicState struct {
	name    string
	id      [16]byte
	parts   []*partition.Partition // index = partition number
	configs map[string]string      // set on the topic
	eff     map[string]string      // every config's effective value
	cfg     partition.Config
	// Timestamp bounds for CreateTime batches, in milliseconds.
	tsBeforeMs, tsAfterMs int64
	logAppendTime         bool
	// compact: cleanup.policy includes compact, so every record needs a key.
	compact bool
}

func (t *topicState) partition(p int32) *partition.Partition {
	if t == nil || p < 0 || int(p) >= len(t.parts) {
		return nil
	}
	return t.parts[p]
}

// Broker is a single-node Kafka broker.
type Broker struct {
	opts     Options
	log      *slog.Logger
	eng      *storage.Engine
	reg      *topics.Registry
	srv      *server.Server
	adv      hostPort
	sessions *fetchSessions
	coord    *group.Coordinator
	txns     *txn.Coordinator
	status   status
	// loading waits for the goroutine loading the coordinator, which
	// stopLoading cancels (set by Start).
	loading     sync.WaitGroup
	stopLoading context.CancelFunc

	// closing is closed when Close starts, so long polls answer at once.
	closing   chan struct{}
	closeOnce sync.Once
	closeErr  error

	adminMu sync.Mutex // serialises topic changes; before mu
	mu      struct {
		sync.RWMutex
		byName map[string]*topicState
		byID   map[[16]byte]*topicState
	}
}

// New opens the storage engine and the topic registry in opts.Dir,
// reconciles them, and binds the listener. Call Start to serve.
func New(opts Options) (*Broker, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	opts = opts.withDefaults()
	b := &Broker{
		opts:     opts,
		log:      opts.Logger,
		closing:  make(chan struct{}),
		sessions: newFetchSessions(opts.FetchSessionCacheSlots),
	}
	b.mu.byName = map[string]*topicState{}
	b.mu.byID = map[[16]byte]*topicState{}
	defCfg, err := topics.PartitionConfig(topics.Effective(opts.TopicDefaults, nil))
	if err != nil {
		return nil, err
	}
	so := opts.Storage
	so.Dir, so.FS, so.Logger, so.Now, so.Partition = opts.Dir, opts.FS, opts.Logger, opts.Now, defCfg
	// Bind first: a port in use should fail before recovery runs.
	ln := opts.Listener
	if ln == nil {
		ln, err = net.Listen("tcp", opts.Listen)
		if err != nil {
			return nil, fmt.Errorf("broker: listen: %w", err)
		}
	}
	sopts := opts.Server
	sopts.Addr, sopts.Listener, sopts.Logger = opts.Listen, ln, opts.Logger
	sopts.DisableSendfile = sopts.DisableSendfile || opts.DisableSendfile
	srv, err := server.New(sopts, b)
	if err != nil {
		ln.Close()
		return nil, err
	}
	b.srv = srv
	fail := func(err error) (*Broker, error) {
		_ = srv.Shutdown(context.Background())
		if b.eng != nil {
			_ = b.eng.Close()
		}
		return nil, err
	}
	if err := b.setAdvertised(); err != nil {
		return fail(err)
	}
	reg, err := topics.Open(opts.FS, opts.Dir)
	if err != nil {
		return fail(err)
	}
	b.reg = reg
	eng, rep, err := storage.Open(so)
	if err != nil {
		return fail(err)
	}
	b.eng = eng
	if err := b.reconcile(); err != nil {
		return fail(err)
	}
	if err := b.newCoordinator(); err != nil {
		return fail(err)
	}
	if err := b.newTxnCoordinator(); err != nil {
		b.coord.Close()
		return fail(err)
	}
	b.log.Info("broker recovered", "topics", reg.Len(), "partitions", rep.Partitions, "duration", rep.Duration)
	return b, nil
}

func (b *Broker) setAdvertised() error {
	addr := b.opts.Advertised
	if addr == "" {
		addr = b.srv.Addr().String()
	}
	hp, err := splitHostPort(addr)
	if err != nil {
		return fmt.Errorf("broker: advertised address %q: %w", addr, err)
	}
	if ip := net.ParseIP(hp.host); hp.host == "" || ip != nil && ip.IsUnspecified() {
		// Listening on every interface: advertise a name clients
		// can resolve, as Kafka does with the canonical host name.
		hp.host = "localhost"
		if h, err := os.Hostname(); err == nil && h != "" {
			hp.host = h
		}
	}
	b.adv = hp
	return nil
}

// Start serves connections on a goroutine the broker owns.
func (b *Broker) Start() error {
	if err := b.srv.Start(); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	b.stopLoading = cancel
	b.loading.Add(1)
	go func() {
		defer b.loading.Done()
		// Groups first: the transaction coordinator's recovery may
		// complete transactions whose markers reach the groups.
		groups := b.loadGroups(ctx)
		txns := b.loadTxns(ctx)
		// A failed load leaves the coordinator answering
		// COORDINATOR_NOT_AVAILABLE: not ready.
		b.status.loaded.Store(groups && txns)
	}()
	b.status.serving.Store(true)
	b.log.Info("broker serving", "addr", b.srv.Addr().String(), "advertised", net.JoinHostPort(b.adv.host, strconv.Itoa(int(b.adv.port))),
		"node_id", b.opts.NodeID, "dir", b.opts.Dir, "topics", b.reg.Len(), "sendfile", !b.opts.DisableSendfile)
	return nil
}

// Addr is the address the broker listens on.
func (b *Broker) Addr() net.Addr { return b.srv.Addr() }

// Server returns the network front end (for its Stats).
func (b *Broker) Server() *server.Server { return b.srv }

// Engine returns the storage engine (for its Stats, and tests).
func (b *Broker) Engine() *storage.Engine { return b.eng }

// Close shuts the broker down cleanly: long polls are answered at once,
// the server stops reading and lets every request already read finish
// (until ctx expires), then the storage engine syncs the WAL, writes a
// checkpoint and closes.
func (b *Broker) Close(ctx context.Context) error {
	b.closeOnce.Do(func() {
		close(b.closing)
		var errs []error
		// The coordinator goes first: it answers the requests it holds
		// (a JoinGroup may wait minutes), so the server can drain.
		if b.stopLoading != nil {
			b.stopLoading()
		}
		b.loading.Wait()
		b.txns.Close()
		b.coord.Close()
		if err := b.srv.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("broker: server shutdown: %w", err))
		}
		if err := b.eng.Close(); err != nil {
			errs = append(errs, fmt.Errorf("broker: storage close: %w", err))
		}
		b.closeErr = errors.Join(errs...)
		b.log.Info("broker stopped", "err", b.closeErr)
	})
	return b.closeErr
}

// reconcile makes the partitions on disk match the registry: it creates
// missing partitions and deletes those of topics the registry does not
// list (a crash during a create or delete leaves either).
func (b *Broker) reconcile() error {
	want := map[[16]byte]topics.Topic{}
	for _, t := range b.reg.List() {
		want[t.ID] = t
	}
	for _, p := range b.eng.Partitions() {
		id := p.ID()
		t, ok := want[id.TopicID]
		if ok && t.Name == id.Topic && id.Partition < t.Partitions {
			continue
		}
		b.log.Warn("broker: deleting partition the topic registry does not list", "partition", id.String())
		if err := b.eng.DeletePartition(id.TopicID, id.Partition); err != nil {
			return fmt.Errorf("broker: delete orphan %s: %w", id, err)
		}
	}
	for _, t := range b.reg.List() {
		st, err := b.buildState(t)
		if err != nil {
			return fmt.Errorf("broker: topic %q: %w", t.Name, err)
		}
		b.publish(st)
	}
	return nil
}

// buildState opens (creating when missing) the partitions of t and applies
// its configs to them.
func (b *Broker) buildState(t topics.Topic) (*topicState, error) {
	st := &topicState{name: t.Name, id: t.ID, configs: t.Configs}
	if err := b.setConfigs(st, t.Configs); err != nil {
		return nil, err
	}
	// Missing partitions are created together, so they share their
	// directory syncs (or one syncfs).
	var missing []partition.ID
	for i := int32(0); i < t.Partitions; i++ {
		if b.eng.Partition(t.ID, i) == nil {
			missing = append(missing, partition.ID{Topic: t.Name, TopicID: t.ID, Partition: i})
		}
	}
	if len(missing) > 0 {
		if _, err := b.eng.CreatePartitions(missing, st.cfg); err != nil {
			return nil, err
		}
	}
	for i := int32(0); i < t.Partitions; i++ {
		p := b.eng.Partition(t.ID, i)
		if err := p.SetConfig(st.cfg); err != nil {
			return nil, err
		}
		st.parts = append(st.parts, p)
	}
	return st, nil
}

// setConfigs computes st's effective configs from configs (the topic's own).
func (b *Broker) setConfigs(st *topicState, configs map[string]string) error {
	eff := topics.Effective(b.opts.TopicDefaults, configs)
	cfg, err := topics.PartitionConfig(eff)
	if err != nil {
		return err
	}
	st.configs = maps.Clone(configs)
	if st.configs == nil {
		st.configs = map[string]string{}
	}
	st.eff, st.cfg = eff, cfg
	st.tsBeforeMs = parseLong(eff["message.timestamp.before.max.ms"])
	st.tsAfterMs = parseLong(eff["message.timestamp.after.max.ms"])
	st.logAppendTime = cfg.TimestampType == partition.LogAppendTime
	st.compact = compacted(eff)
	return nil
}

func parseLong(v string) int64 {
	n, _ := strconv.ParseInt(v, 10, 64)
	return n
}

func (b *Broker) publish(st *topicState) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if old := b.mu.byName[st.name]; old != nil && old.id != st.id {
		delete(b.mu.byID, old.id)
	}
	b.mu.byName[st.name] = st
	b.mu.byID[st.id] = st
}

func (b *Broker) unpublish(st *topicState) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.mu.byName[st.name] == st {
		delete(b.mu.byName, st.name)
	}
	delete(b.mu.byID, st.id)
}

// topic returns the topic named name, or nil.
func (b *Broker) topic(name string) *topicState {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return b.mu.byName[name]
}

// topicByID returns the topic with ID id, or nil.
func (b *Broker) topicByID(id [16]byte) *topicState {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return b.mu.byID[id]
}

// allTopics returns every topic, sorted by name.
func (b *Broker) allTopics() []*topicState {
	b.mu.RLock()
	out := make([]*topicState, 0, len(b.mu.byName))
	for _, t := range b.mu.byName {
		out = append(out, t)
	}
	b.mu.RUnlock()
	sortTopics(out)
	return out
}

func (b *Broker) isClosing() bool {
	select {
	case <-b.closing:
		return true
	default:
		return false
	}
}

// now is the broker's clock.
func (b *Broker) now() time.Time { return b.opts.Now() }
