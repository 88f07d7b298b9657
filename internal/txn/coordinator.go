package txn

import (
	"context"
	"iter"
	"log/slog"
	"sync"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/internal/coord"
)

// Record is one record of the transaction log (__transaction_state).
// Value nil is a tombstone.
type Record struct{ Key, Value []byte }

// Log makes the coordinator's state durable. Append writes recs to
// partition p of __transaction_state as one batch and calls done exactly
// once when they are durable (fsynced) or have failed. done may be called
// from any goroutine, including synchronously inside Append, and must not
// block. Append itself must not block for long.
type Log interface {
	Append(p int32, recs []Record, done func(error))
}

// TopicPartition names one partition.
type TopicPartition struct {
	Topic     string
	Partition int32
}

// Markers writes transaction markers. Write appends a COMMIT (commit=true)
// or ABORT control batch for (producerID, epoch) with coordinatorEpoch to
// every partition in parts (data partitions and __consumer_offsets
// partitions alike), and calls done once all are durable, with the first
// error. Partitions that no longer exist are skipped without error. done
// may run on any goroutine; it must not block.
type Markers interface {
	Write(producerID int64, epoch int16, commit bool, coordinatorEpoch int32, parts []TopicPartition, done func(error))
}

// Topics gives the partition counts of existing topics, and where a
// group's offsets live. Safe for concurrent use.
type Topics interface {
	Partitions(topic string) (int32, bool)
	GroupPartition(group string) TopicPartition // __consumer_offsets partition of a group
}

// Coordinator is the transaction coordinator. All state is owned by one
// goroutine that reads a bounded channel; the exported methods are safe
// for concurrent use.
type Coordinator struct {
	opts Options
	log  *slog.Logger

	in     *coord.Inbox[message]
	exited chan struct{}
	close  sync.Once

	loadOnce sync.Once

	// Completed appends and marker writes, handed from done callbacks
	// (any goroutine) to the owner; done never blocks.
	dones *coord.Queue[completion]
}

type completion struct {
	id  uint64
	err error
}

// message is what the owner goroutine reads.
type message struct {
	call   *call
	loaded *state // Load's result; nil if it failed
	took   *bool  // Load: set by the owner when it took the state
	verify *verifyCall
	ack    chan struct{}
}

type verifyCall struct {
	id    string
	pid   int64
	epoch int16
	tp    TopicPartition
	err   error
}

// New validates opts and starts the owner goroutine, which answers every
// request with COORDINATOR_LOAD_IN_PROGRESS until Load returns.
func New(opts Options) (*Coordinator, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	opts = opts.withDefaults()
	c := &Coordinator{
		opts:   opts,
		log:    opts.Logger,
		in:     coord.NewInbox[message](opts.MaxQueuedRequests),
		exited: make(chan struct{}),
		dones:  coord.NewQueue[completion](),
	}
	go c.run()
	return c, nil
}

// Do hands req to the owner goroutine, in call order, and returns a
// channel that yields the response exactly once (buffered, so the
// coordinator never blocks on it). It blocks only while the input channel
// is full. Responses that depend on durability arrive after the Log's
// done. Unsupported request types and versions are answered with
// UNSUPPORTED_VERSION.
func (c *Coordinator) Do(req kmsg.Request) <-chan kmsg.Response {
	cl := newCall(req)
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

// Verify is KIP-890 part 1 for the produce path: nil if transactionalID's
// ongoing transaction with (producerID, epoch) includes tp, otherwise a
// *VerifyError (its ProduceCode is what the Produce response carries).
// It goes through the owner goroutine and blocks until answered.
func (c *Coordinator) Verify(transactionalID string, producerID int64, epoch int16, tp TopicPartition) error {
	v := &verifyCall{id: transactionalID, pid: producerID, epoch: epoch, tp: tp}
	ack := make(chan struct{})
	if !c.send(message{verify: v, ack: ack}) {
		return &VerifyError{TransactionalID: transactionalID, Partition: tp, Err: kerr.CoordinatorNotAvailable}
	}
	<-ack
	return v.err
}

// send queues m for the owner; false once the coordinator is closing.
func (c *Coordinator) send(m message) bool { return c.in.Send(m) }

// Load applies __transaction_state (all partitions, each in offset order)
// and marks the coordinator loaded; then every transaction found in
// PrepareCommit or PrepareAbort has its markers written again and is
// completed. Until Load returns, requests are answered with
// COORDINATOR_LOAD_IN_PROGRESS. It is called once. A record that does not
// decode fails the load with a *CorruptRecordError, after which requests
// are answered with COORDINATOR_NOT_AVAILABLE.
func (c *Coordinator) Load(ctx context.Context, recs iter.Seq2[Record, error]) error {
	first := false
	c.loadOnce.Do(func() { first = true })
	if !first {
		return ErrLoaded
	}
	st := newState(c.opts)
	n, loadErr := coord.Replay(ctx, "txn: transaction log", recs, func(r Record) error {
		d, err := decodeRecord(r)
		if err == nil {
			st.apply(d)
		}
		return err
	})
	var ids int
	var nextPID int64
	if loadErr != nil {
		st = nil
	} else {
		ids, nextPID = len(st.txns), st.pids.end // st belongs to the owner once sent
	}
	ack, took := make(chan struct{}), false
	if !c.send(message{loaded: st, took: &took, ack: ack}) {
		return ErrClosed
	}
	<-ack
	if !took {
		return ErrClosed
	}
	if loadErr != nil {
		c.log.Error("txn: loading the transaction log failed", "err", loadErr)
		return loadErr
	}
	c.log.Info("txn: transaction log loaded", "records", n, "transactional_ids", ids, "next_producer_id", nextPID)
	return nil
}

// Close stops the goroutine and waits for it. Requests still waiting are
// answered with COORDINATOR_NOT_AVAILABLE. Appends and marker writes
// still in flight may call done later; that is harmless, and a
// transaction left prepared is completed by the next Load.
func (c *Coordinator) Close() {
	c.close.Do(func() {
		c.in.Stop()
		<-c.exited
		c.in.Close(func(m message) {
			if m.call != nil {
				m.call.ch <- errorResponse(m.call.req, kerr.CoordinatorNotAvailable.Code)
			}
			if m.verify != nil {
				m.verify.err = &VerifyError{TransactionalID: m.verify.id, Partition: m.verify.tp, Err: kerr.CoordinatorNotAvailable}
			}
			if m.ack != nil {
				close(m.ack)
			}
		})
	})
	<-c.exited
}

// finished is called by a Log or Markers when a write is done: any
// goroutine, possibly inside the call that started it, never blocking.
func (c *Coordinator) finished(id uint64, err error) {
	c.dones.Push(completion{id, err})
}

// owner is the owner goroutine's state.
type owner struct {
	c       *Coordinator
	st      *state // nil until loaded
	failed  bool   // Load failed
	open    map[*call]struct{}
	pending map[uint64]then // writes in flight
	nextID  uint64
	alarm   *coord.Alarm
}

func (c *Coordinator) run() {
	defer close(c.exited)
	o := &owner{c: c, open: make(map[*call]struct{}), pending: make(map[uint64]then)}
	o.alarm = coord.NewAlarm()
	defer o.alarm.Stop()
	for {
		o.arm()
		select {
		case <-c.in.Quit():
			o.shutdown()
			return
		case m := <-c.in.C():
			o.message(m)
		case <-c.dones.C():
			o.completions()
		case <-o.alarm.C():
			o.alarm.Fired()
			if o.st != nil {
				now := c.opts.Now()
				fx := &effects{}
				o.st.tick(now, fx)
				o.finish(fx)
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
			}
			m.call.ch <- errorResponse(m.call.req, code)
			return
		}
		o.open[m.call] = struct{}{}
		fx := &effects{}
		o.st.handle(c.opts.Now(), m.call, fx)
		o.finish(fx)
	case m.took != nil:
		*m.took = true
		if m.loaded == nil {
			o.failed = true
		} else {
			o.st = m.loaded
			fx := &effects{}
			o.st.loaded(c.opts.Now(), fx)
			o.finish(fx)
		}
		close(m.ack)
	case m.verify != nil:
		v := m.verify
		verdict := &VerifyError{TransactionalID: v.id, Partition: v.tp}
		switch {
		case o.st != nil:
			all, each := o.st.verify(v.id, v.pid, v.epoch, []TopicPartition{v.tp}, kerr.InvalidTxnState)
			verdict.Err = all
			if all == nil {
				verdict.Err = each[0]
			}
		case o.failed:
			verdict.Err = kerr.CoordinatorNotAvailable
		default:
			verdict.Err = kerr.CoordinatorLoadInProgress
		}
		if verdict.Err != nil {
			v.err = verdict
		}
		close(m.ack)
	}
}

func (o *owner) completions() {
	c := o.c
	dones := c.dones.Take()
	if len(dones) == 0 {
		return
	}
	now := c.opts.Now()
	fx := &effects{}
	for _, d := range dones {
		k, ok := o.pending[d.id]
		if !ok {
			c.log.Error("txn: done called twice", "write", d.id)
			continue
		}
		delete(o.pending, d.id)
		if k != nil {
			k(now, d.err, fx)
		}
	}
	o.finish(fx)
}

// finish carries out a step's effects: answers first, then appends and
// marker writes (which may complete synchronously; their continuations
// run in a later step, from completions).
func (o *owner) finish(fx *effects) {
	for _, r := range fx.replies {
		o.answer(r.to, r.resp)
	}
	for _, w := range fx.writes {
		id := o.track(w.then)
		o.c.opts.Log.Append(w.p, w.recs, func(err error) { o.c.finished(id, err) })
	}
	for _, m := range fx.markers {
		id := o.track(m.then)
		o.c.opts.Markers.Write(m.pid, m.epoch, m.commit, coordinatorEpoch, m.parts, func(err error) { o.c.finished(id, err) })
	}
}

func (o *owner) track(k then) uint64 {
	o.nextID++
	o.pending[o.nextID] = k
	return o.nextID
}

func (o *owner) answer(to *call, resp kmsg.Response) {
	if to.answered {
		// Our own state is broken; answering twice would break the
		// broker's response ordering, so drop it loudly instead.
		o.c.log.Error("txn: request answered twice", "key", to.req.Key())
		return
	}
	to.answered = true
	delete(o.open, to)
	to.ch <- resp
}

// shutdown answers everything still open with COORDINATOR_NOT_AVAILABLE.
func (o *owner) shutdown() {
	for cl := range o.open {
		if !cl.answered {
			cl.answered = true
			cl.ch <- errorResponse(cl.req, kerr.CoordinatorNotAvailable.Code)
		}
	}
	o.open = nil
}
