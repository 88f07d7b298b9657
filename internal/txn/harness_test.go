package txn

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// fakeTopics is a fixed set of topics and their partition counts.
type fakeTopics map[string]int32

func (f fakeTopics) Partitions(topic string) (int32, bool) { n, ok := f[topic]; return n, ok }
func (f fakeTopics) GroupPartition(group string) TopicPartition {
	return TopicPartition{"__consumer_offsets", Partition(group, 50)}
}

var testTopics = fakeTopics{"orders": 3, "payments": 1}

type nopLog struct{}

func (nopLog) Append(int32, []Record, func(error)) {}

type nopMarkers struct{}

func (nopMarkers) Write(int64, int16, bool, int32, []TopicPartition, func(error)) {}

// harness drives the pure state machine with a fake clock: no goroutine,
// no sleeps. Appends and marker writes stay pending until flushed.
type harness struct {
	t       *testing.T
	st      *state
	now     time.Time
	answers map[*call]kmsg.Response
	pending []write
	written []write // every append, in order
	marks   []markerWrite
	marked  []markerWrite // every marker write, in order
}

func newHarness(t *testing.T, mod func(*Options)) *harness {
	t.Helper()
	opts := Options{Log: nopLog{}, Markers: nopMarkers{}, Topics: testTopics}
	if mod != nil {
		mod(&opts)
	}
	if err := opts.Validate(); err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, now: time.UnixMilli(1_700_000_000_000), answers: make(map[*call]kmsg.Response)}
	h.st = newState(opts.withDefaults())
	fx := &effects{}
	h.st.loaded(h.now, fx)
	h.run(fx)
	return h
}

func (h *harness) run(fx *effects) {
	for _, r := range fx.replies {
		if _, dup := h.answers[r.to]; dup {
			h.t.Fatalf("request %T answered twice", r.to.req)
		}
		h.answers[r.to] = r.resp
	}
	h.pending = append(h.pending, fx.writes...)
	h.written = append(h.written, fx.writes...)
	h.marks = append(h.marks, fx.markers...)
	h.marked = append(h.marked, fx.markers...)
}

func (h *harness) do(req kmsg.Request) *call {
	h.t.Helper()
	c := newCall(req)
	fx := &effects{}
	h.st.handle(h.now, c, fx)
	h.run(fx)
	return c
}

// flush completes every pending append with err, including appends the
// continuations issue; marker writes stay pending.
func (h *harness) flush(err error) {
	for n := 0; len(h.pending) > 0; n++ {
		if n > 10000 {
			h.t.Fatal("appends never stop")
		}
		w := h.pending[0]
		h.pending = h.pending[1:]
		fx := &effects{}
		w.then(h.now, err, fx)
		h.run(fx)
	}
}

// flushMarks completes the marker writes pending now with err.
func (h *harness) flushMarks(err error) {
	ms := h.marks
	h.marks = nil
	for _, m := range ms {
		fx := &effects{}
		m.then(h.now, err, fx)
		h.run(fx)
	}
}

// settle completes everything pending, successfully.
func (h *harness) settle() {
	for n := 0; len(h.pending)+len(h.marks) > 0; n++ {
		if n > 1000 {
			h.t.Fatal("never settles")
		}
		h.flush(nil)
		h.flushMarks(nil)
	}
}

// advance moves the clock and fires what is due, as the owner's timer.
func (h *harness) advance(d time.Duration) {
	h.t.Helper()
	h.now = h.now.Add(d)
	fx := &effects{}
	h.st.tick(h.now, fx)
	h.run(fx)
	if next := h.st.next(); !next.IsZero() && !next.After(h.now) {
		h.t.Fatalf("deadline %v still due after a tick at %v", next, h.now)
	}
}

func (h *harness) answered(c *call) bool { _, ok := h.answers[c]; return ok }

func answer[R kmsg.Response](h *harness, c *call) R {
	h.t.Helper()
	r, ok := h.answers[c]
	if !ok {
		h.t.Fatalf("%T not answered", c.req)
	}
	return r.(R)
}

func (h *harness) txn(id string) *txn {
	h.t.Helper()
	t := h.st.txns[id]
	if t == nil {
		h.t.Fatalf("transactional id %q unknown", id)
	}
	return t
}

func (h *harness) wantState(id string, s kmsg.TransactionState) {
	h.t.Helper()
	if got := h.txn(id).state; got != s {
		h.t.Fatalf("%s: state %v, want %v", id, got, s)
	}
}

func wantCode(t *testing.T, what string, got int16, want *kerr.Error) {
	t.Helper()
	var w int16
	if want != nil {
		w = want.Code
	}
	if got != w {
		t.Fatalf("%s: got %v, want %v", what, kerr.ErrorForCode(got), kerr.ErrorForCode(w))
	}
}

// Request builders, at the newest versions served unless a test says.

func initReq(id string, timeoutMs int32) *kmsg.InitProducerIDRequest {
	r := kmsg.NewPtrInitProducerIDRequest()
	r.Version = 4
	if id != "" {
		r.TransactionalID = kmsg.StringPtr(id)
	}
	r.TransactionTimeoutMillis = timeoutMs
	return r
}

func addReq(id string, pid int64, epoch int16, topic string, parts ...int32) *kmsg.AddPartitionsToTxnRequest {
	r := kmsg.NewPtrAddPartitionsToTxnRequest()
	r.Version = 3
	r.TransactionalID, r.ProducerID, r.ProducerEpoch = id, pid, epoch
	r.Topics = []kmsg.AddPartitionsToTxnRequestTopic{{Topic: topic, Partitions: parts}}
	return r
}

func offsetsReq(id string, pid int64, epoch int16, group string) *kmsg.AddOffsetsToTxnRequest {
	r := kmsg.NewPtrAddOffsetsToTxnRequest()
	r.Version = 3
	r.TransactionalID, r.ProducerID, r.ProducerEpoch, r.Group = id, pid, epoch, group
	return r
}

func endReq(id string, pid int64, epoch int16, commit bool) *kmsg.EndTxnRequest {
	r := kmsg.NewPtrEndTxnRequest()
	r.Version = 3
	r.TransactionalID, r.ProducerID, r.ProducerEpoch, r.Commit = id, pid, epoch, commit
	return r
}

// initTxn runs InitProducerId for id to the end and returns the id and epoch.
func (h *harness) init(id string) (int64, int16) {
	h.t.Helper()
	c := h.do(initReq(id, 60_000))
	h.flush(nil)
	r := answer[*kmsg.InitProducerIDResponse](h, c)
	wantCode(h.t, "InitProducerId", r.ErrorCode, nil)
	return r.ProducerID, r.ProducerEpoch
}

func addCode(h *harness, c *call) int16 {
	h.t.Helper()
	r := answer[*kmsg.AddPartitionsToTxnResponse](h, c)
	code := int16(0)
	for _, t := range r.Topics {
		for _, p := range t.Partitions {
			if p.ErrorCode != 0 {
				code = p.ErrorCode
			}
		}
	}
	return code
}

// ongoing starts a transaction on orders 0 and 1.
func (h *harness) ongoing(id string) (int64, int16) {
	h.t.Helper()
	pid, epoch := h.init(id)
	c := h.do(addReq(id, pid, epoch, "orders", 1, 0))
	h.flush(nil)
	wantCode(h.t, "AddPartitionsToTxn", addCode(h, c), nil)
	h.wantState(id, kmsg.TransactionStateOngoing)
	return pid, epoch
}
