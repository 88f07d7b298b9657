package group

import (
	"context"
	"crypto/rand"
	"fmt"
	"iter"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluice-io/sluice/internal/coord"
	"github.com/sluice-io/sluice/internal/group/consumer"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Record is one record of the offsets log (__consumer_offsets). Value nil
// is a tombstone. The zero value of every field but Key and Value means a
// plain record, so Record{Key: k, Value: v} stays what it always was.
type Record struct {
	Key, Value []byte

	// Transactional marks a record of a transactional batch of producer
	// ProducerID at ProducerEpoch (KIP-98); both are meaningless without
	// it. A flag rather than ProducerID -1 because 0 is a valid producer
	// id and the zero Record must stay plain. Append writes the records
	// of one call as one transactional batch when they carry it (all
	// records of one Append share one producer); Load reads it back from
	// the batch header.
	Transactional bool
	ProducerID    int64
	ProducerEpoch int16

	// Control marks a transaction marker read back by Load: the COMMIT
	// (Commit true) or ABORT marker of ProducerID in partition Partition.
	// Key and Value are then unused. The coordinator never appends one;
	// the broker writes markers and calls Coordinator.CompleteTxn.
	Control, Commit bool

	// Partition is the offsets-log partition Load read the record from.
	// Load needs it on markers: a marker finishes its producer's
	// transaction in its own partition only, and Load sees every
	// partition in one sequence. Append ignores it (p says where).
	Partition int32
}

// Log makes the coordinator's state durable. Append writes recs to
// partition p of the offsets log as one batch and calls done exactly once
// when they are durable (fsynced) or have failed. done may be called from
// any goroutine, including synchronously inside Append, and must not
// block. Append itself must not block for long. Appends to one partition
// land in the log in the order Append is called: the coordinator orders
// plain and transactional offsets of one partition by it, as Kafka orders
// them by log offset.
type Log interface {
	Append(p int32, recs []Record, done func(error))
}

// TopicInfo describes one existing topic.
type TopicInfo struct {
	Name       string
	ID         [16]byte
	Partitions int32
}

// Topics is the broker's view of existing topics (safe for concurrent use).
type Topics interface {
	Topic(name string) (TopicInfo, bool)
	TopicByID(id [16]byte) (TopicInfo, bool)
	// List returns every topic. Consumer-protocol groups call it to
	// resolve regular-expression subscriptions, once per metadata change.
	List() []TopicInfo
}

// consumerTopics adapts Topics to consumer.Topics; the two TopicInfo
// types have the same fields, kept apart so neither package imports the
// other's interface.
type consumerTopics struct{ t Topics }

var _ consumer.Topics = consumerTopics{}

func (a consumerTopics) Topic(name string) (consumer.TopicInfo, bool) {
	t, ok := a.t.Topic(name)
	return consumer.TopicInfo(t), ok
}

func (a consumerTopics) TopicByID(id [16]byte) (consumer.TopicInfo, bool) {
	t, ok := a.t.TopicByID(id)
	return consumer.TopicInfo(t), ok
}

func (a consumerTopics) List() []consumer.TopicInfo {
	all := a.t.List()
	out := make([]consumer.TopicInfo, len(all))
	for i, t := range all {
		out[i] = consumer.TopicInfo(t)
	}
	return out
}

// Client identifies the connection a request came from; Kafka builds
// member ids from the client id and shows both in DescribeGroups.
type Client struct {
	ID   string // the request header's client id
	Host string // the peer address
}

// Coordinator is the group coordinator. All group state is owned by one
// goroutine that reads a bounded channel; the exported methods are safe
// for concurrent use.
type Coordinator struct {
	opts Options
	env  *env
	log  *slog.Logger

	in     *coord.Inbox[message]
	exited chan struct{}

	close sync.Once

	loadOnce sync.Once

	// Completed appends, handed from done callbacks (any goroutine) to
	// the owner, and transaction ends from CompleteTxn, in one queue so
	// the owner sees them in the order they happened; neither blocks.
	dones *coord.Queue[completion]
	// topicsChanged is set by TopicsChanged and read with dones' wake-up.
	topicsChanged atomic.Bool
}

// txnEnd is one CompleteTxn call.
type txnEnd struct {
	producerID int64
	epoch      int16
	commit     bool
	partition  int32
}

type completion struct {
	id  uint64
	err error
	end *txnEnd // a CompleteTxn instead of an append
}

// message is what the owner goroutine reads: a request, or one of the
// coordinator's own operations.
type message struct {
	call    *call
	loaded  *state // Load's result
	deleted []string
	changed bool         // TopicsChanged
	inspect func(*state) // runs on the owner; st is nil until loaded
	ack     chan struct{}
	took    *bool // Load: set by the owner when it took the state
}

// New validates opts and starts the owner goroutine, which answers every
// group request with COORDINATOR_LOAD_IN_PROGRESS until Load returns.
func New(opts Options) (*Coordinator, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	opts = opts.withDefaults()
	c := &Coordinator{
		opts:   opts,
		env:    &env{opts: opts, newID: randomUUID},
		log:    opts.Logger,
		in:     coord.NewInbox[message](opts.MaxQueuedRequests),
		exited: make(chan struct{}),
		dones:  coord.NewQueue[completion](),
	}
	go c.run()
	return c, nil
}

// randomUUID is a version-4 UUID, as Kafka puts in member ids.
func randomUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// Do hands req to the owner goroutine, in call order, and returns a
// channel that yields the response exactly once (buffered, so the
// coordinator never blocks on it). It blocks only while the input
// channel is full. Responses that depend on durability arrive after the
// Log's done. Unsupported request types and versions are answered with
// UNSUPPORTED_VERSION.
func (c *Coordinator) Do(req kmsg.Request) <-chan kmsg.Response {
	return c.DoFrom(Client{}, req)
}

// DoFrom is Do for a request from a known client, whose id and address
// go into member ids and DescribeGroups.
func (c *Coordinator) DoFrom(client Client, req kmsg.Request) <-chan kmsg.Response {
	cl := newCall(req, client)
	if req == nil {
		cl.ch <- nil // nothing to answer with; a broker never does this
		return cl.ch
	}
	if lo, hi, ok := Versions(req.Key()); !ok || req.GetVersion() < lo || req.GetVersion() > hi {
		cl.ch <- errorResponse(req, kerr.UnsupportedVersion.Code)
		return cl.ch
	}
	if !c.send(message{call: cl}) {
		cl.ch <- errorResponse(req, kerr.CoordinatorNotAvailable.Code)
	}
	return cl.ch
}

// send queues m for the owner; false once the coordinator is closing.
func (c *Coordinator) send(m message) bool { return c.in.Send(m) }

// Load applies the offsets log (all partitions, each in offset order)
// and then marks the coordinator loaded. Until Load returns, every group
// request is answered with COORDINATOR_LOAD_IN_PROGRESS. It is called
// once, from a goroutine of the broker's. Consumer-protocol records
// (internal/group/consumer) are replayed into their group; offset
// records of a transactional batch stay pending until a marker of their
// producer later in the same partition (Record.Control) commits or aborts
// them, and a transaction without one stays pending after Load until
// CompleteTxn; record key
// versions this package does not know (Kafka's own KIP-848, share and
// streams records) are skipped; a record that does not decode fails the
// load with a *CorruptRecordError, after which requests are answered
// with COORDINATOR_NOT_AVAILABLE.
func (c *Coordinator) Load(ctx context.Context, recs iter.Seq2[Record, error]) error {
	first := false
	c.loadOnce.Do(func() { first = true })
	if !first {
		return ErrLoaded
	}
	now := c.opts.Now()
	st := newState(c.env)
	n, loadErr := coord.Replay(ctx, "group: offsets log", recs, func(r Record) error {
		if r.Control {
			// A marker ends its producer's transaction in its
			// partition: pending offsets are applied in log order
			// (commit) or dropped (abort).
			st.completeTxn(now, txnEnd{r.ProducerID, r.ProducerEpoch, r.Commit, r.Partition})
			return nil
		}
		d, err := decodeRecord(r)
		if err != nil {
			return err
		}
		// The record's position orders plain and transactional
		// offsets of one partition; runtime writes continue after it.
		d.seq = st.nextSeq()
		if d.kind == kindSkip {
			return nil
		}
		return st.apply(d, now)
	})
	if loadErr != nil {
		st = nil
	} else {
		for _, g := range st.groups {
			if g.consumer != nil && len(g.consumer.durable) == 0 {
				g.consumer = nil // every record tombstoned: not a consumer group any more
			}
			st.touch(g)
		}
		st.settle(now)
	}
	ack, took := make(chan struct{}), false
	if !c.send(message{loaded: st, ack: ack, took: &took}) {
		return ErrClosed
	}
	<-ack
	if !took {
		return ErrClosed
	}
	if loadErr != nil {
		c.log.Error("group: loading the offsets log failed", "err", loadErr)
		return loadErr
	}
	c.log.Info("group: offsets log loaded", "records", n, "groups", len(st.groups))
	return nil
}

// Groups snapshots every group.
func (c *Coordinator) Groups() []GroupInfo {
	var out []GroupInfo
	c.inspect(func(st *state) {
		if st != nil {
			out = st.infos()
		}
	})
	return out
}

// Committed snapshots one group's committed offsets: topic -> partition
// -> offset. nil if the group is unknown.
func (c *Coordinator) Committed(group string) map[string]map[int32]int64 {
	var out map[string]map[int32]int64
	c.inspect(func(st *state) {
		if st != nil {
			out = st.committed(group)
		}
	})
	return out
}

func (c *Coordinator) inspect(fn func(*state)) {
	ack := make(chan struct{})
	if c.send(message{inspect: fn, ack: ack}) {
		<-ack
	}
}

// TopicsDeleted forgets (and tombstones) the committed offsets of
// deleted topics and, as TopicsChanged, tells the consumer-protocol
// groups. Called before Load, it applies once loaded.
func (c *Coordinator) TopicsDeleted(names []string) {
	if len(names) == 0 {
		return
	}
	c.send(message{deleted: append([]string(nil), names...)})
}

// TopicsChanged tells the consumer-protocol groups that a topic was
// created or deleted or grew partitions; the broker calls it after each
// such change. Groups whose subscribed topics changed bump their epoch
// and compute a new assignment, on the owner goroutine; the call does not
// wait for that. Before Load it does nothing: loaded groups check their
// topics on their first tick anyway.
//
// It never blocks, not even when the input channel is full: the owner
// goroutine itself can cause it (its first append may create the offsets
// topic). Several calls before the owner notices fold into one.
func (c *Coordinator) TopicsChanged() {
	c.topicsChanged.Store(true)
	c.dones.Wake()
}

// CompleteTxn tells the coordinator that the COMMIT (commit true) or
// ABORT marker of producerID at epoch is durable in partition of the
// offsets log: the producer's pending transactional offsets of the groups
// in that partition become committed offsets (each unless a plain commit
// written after it already replaced it, as Kafka decides) or are dropped.
// The broker calls it once per marker, after the marker's append is
// durable; a marker Load has already seen may be reported again, which is
// harmless.
//
// It never blocks: the owner goroutine picks the completion up as it does
// a finished append, after the appends that finished before it, and
// before any request sent after CompleteTxn returned. Calls before Load
// are kept and applied once loaded; none is lost while the coordinator
// runs.
func (c *Coordinator) CompleteTxn(producerID int64, epoch int16, commit bool, partition int32) {
	c.dones.Push(completion{end: &txnEnd{producerID, epoch, commit, partition}})
}

// Close stops the goroutine and waits for it. Requests still waiting
// (a parked JoinGroup, a commit not yet durable, requests queued) are
// answered with COORDINATOR_NOT_AVAILABLE. Appends still in flight may
// call done later; that is harmless.
func (c *Coordinator) Close() {
	c.close.Do(func() {
		c.in.Stop()
		<-c.exited
		c.in.Close(func(m message) {
			if m.call != nil {
				m.call.ch <- errorResponse(m.call.req, kerr.CoordinatorNotAvailable.Code)
			}
			if m.ack != nil {
				close(m.ack)
			}
		})
	})
	<-c.exited
}

// appended is called by a Log when an append is done: any goroutine,
// possibly inside Append, never blocking.
func (c *Coordinator) appended(id uint64, err error) {
	c.dones.Push(completion{id: id, err: err})
}

// owner is the owner goroutine's state.
type owner struct {
	c       *Coordinator
	st      *state // nil until loaded
	failed  bool   // Load failed
	deleted []string
	ended   []txnEnd           // CompleteTxn calls before Load
	open    map[*call]struct{} // accepted, not yet answered
	writes  map[uint64]write   // appended, not yet done
	nextID  uint64
	alarm   *coord.Alarm
}

func (c *Coordinator) run() {
	defer close(c.exited)
	o := &owner{c: c, open: make(map[*call]struct{}), writes: make(map[uint64]write)}
	o.alarm = coord.NewAlarm()
	defer o.alarm.Stop()
	for {
		o.arm()
		select {
		case <-c.in.Quit():
			o.shutdown()
			return
		case m := <-c.in.C():
			o.beforeMessage()
			o.message(m)
		case <-c.dones.C():
			o.completions()
			if c.topicsChanged.Swap(false) {
				o.message(message{changed: true})
			}
		case <-o.alarm.C():
			o.alarm.Fired()
			if o.st != nil {
				now := c.opts.Now()
				fx := &effects{}
				o.st.tick(now, fx)
				o.finish(now, fx)
			}
		}
	}
}

// arm sets the alarm to the state's earliest deadline.
func (o *owner) arm() {
	if o.st != nil {
		o.alarm.Arm(o.st.next(), o.c.opts.Now())
	}
}

func (o *owner) message(m message) {
	c := o.c
	switch {
	case m.call != nil:
		if o.st == nil {
			code := kerr.CoordinatorLoadInProgress.Code
			if o.failed {
				code = kerr.CoordinatorNotAvailable.Code
			} else if _, ok := m.call.req.(*kmsg.SyncGroupRequest); ok {
				// Kafka: the rebalance state is lost while loading;
				// older clients do not expect LOAD_IN_PROGRESS here,
				// and REBALANCE_IN_PROGRESS sends them back to join.
				code = kerr.RebalanceInProgress.Code
			}
			m.call.ch <- errorResponse(m.call.req, code)
			return
		}
		now := c.opts.Now()
		o.open[m.call] = struct{}{}
		fx := &effects{}
		o.st.handle(now, m.call, fx)
		o.finish(now, fx)
	case m.took != nil: // Load's result
		*m.took = true
		if m.loaded == nil {
			o.failed = true
		} else {
			o.st = m.loaded
			if len(o.ended) > 0 {
				now := c.opts.Now()
				for _, e := range o.ended {
					o.st.completeTxn(now, e)
				}
				o.ended = nil
				o.st.settle(now)
			}
			if len(o.deleted) > 0 {
				now := c.opts.Now()
				fx := &effects{}
				o.st.topicsDeleted(now, o.deleted, fx)
				o.deleted = nil
				o.finish(now, fx)
			}
		}
		close(m.ack)
	case m.inspect != nil:
		m.inspect(o.st)
		close(m.ack)
	case m.changed:
		if o.st == nil {
			return
		}
		now := c.opts.Now()
		fx := &effects{}
		o.st.topicsChanged(now, fx)
		o.finish(now, fx)
	case m.deleted != nil:
		if o.st == nil {
			if len(o.deleted) < 1<<16 { // bounded; a broker deletes few topics before loading
				o.deleted = append(o.deleted, m.deleted...)
			}
			return
		}
		now := c.opts.Now()
		fx := &effects{}
		o.st.topicsDeleted(now, m.deleted, fx)
		o.finish(now, fx)
	}
}

func (o *owner) completions() {
	c := o.c
	dones := c.dones.Take()
	if len(dones) == 0 {
		return // a wake-up for TopicsChanged, maybe before Load
	}
	if o.st == nil {
		// Before Load only transaction ends can be queued (nothing
		// was appended); they wait for the loaded state.
		for _, d := range dones {
			if d.end != nil && !o.failed {
				o.ended = append(o.ended, *d.end)
			}
		}
		return
	}
	now := c.opts.Now()
	fx := &effects{}
	for _, d := range dones {
		if d.end != nil {
			o.st.completeTxn(now, *d.end)
			continue
		}
		w, ok := o.writes[d.id]
		if !ok {
			c.log.Error("group: Log called done twice", "append", d.id)
			continue
		}
		delete(o.writes, d.id)
		o.st.complete(now, w, d.err, fx)
	}
	o.finish(now, fx)
}

// beforeMessage applies what completed before a request arrived, so that
// a request sent after CompleteTxn returned sees its effect. With nothing
// queued it costs a lock.
func (o *owner) beforeMessage() {
	if o.c.dones.Len() > 0 {
		o.completions()
	}
}

// finish carries out a step's effects: answers first, then appends (an
// append may complete synchronously; its continuation runs in a later
// step, from completions), then rescheduling.
func (o *owner) finish(now time.Time, fx *effects) {
	for _, e := range fx.events {
		o.c.log.Info(e.msg, e.args...)
	}
	for _, r := range fx.replies {
		o.answer(r.to, r.resp)
	}
	for _, w := range fx.writes {
		o.nextID++
		id := o.nextID
		o.writes[id] = w
		p := Partition(w.group, o.c.opts.NumPartitions)
		o.c.opts.Log.Append(p, w.recs, func(err error) { o.c.appended(id, err) })
	}
	o.st.settle(now)
}

func (o *owner) answer(to *call, resp kmsg.Response) {
	if to.answered {
		// Our own state is broken; answering twice would break the
		// broker's response ordering, so drop it loudly instead.
		o.c.log.Error("group: request answered twice", "key", to.req.Key())
		return
	}
	to.answered = true
	delete(o.open, to)
	to.ch <- resp
}

// shutdown answers everything still open with COORDINATOR_NOT_AVAILABLE.
func (o *owner) shutdown() {
	code := kerr.CoordinatorNotAvailable.Code
	for cl := range o.open {
		if !cl.answered {
			cl.answered = true
			cl.ch <- errorResponse(cl.req, code)
		}
	}
	o.open = nil
}
