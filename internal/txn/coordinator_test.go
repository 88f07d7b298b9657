package txn

import (
	"context"
	"errors"
	"iter"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// memLog is an in-memory transaction log. By default an append is
// durable at once and done runs inside Append; hold parks done calls
// until release.
type memLog struct {
	mu    sync.Mutex
	parts map[int32][]Record
	hold  bool
	held  []func()
}

func newMemLog() *memLog { return &memLog{parts: make(map[int32][]Record)} }

func (l *memLog) Append(p int32, recs []Record, done func(error)) {
	store := func() {
		l.mu.Lock()
		for _, r := range recs {
			l.parts[p] = append(l.parts[p], Record{Key: slices.Clone(r.Key), Value: slices.Clone(r.Value)})
		}
		l.mu.Unlock()
		done(nil)
	}
	l.mu.Lock()
	if l.hold {
		l.held = append(l.held, store)
		l.mu.Unlock()
		return
	}
	l.mu.Unlock()
	store()
}

func (l *memLog) setHold(b bool) { l.mu.Lock(); l.hold = b; l.mu.Unlock() }

func (l *memLog) release() {
	l.mu.Lock()
	held := l.held
	l.held, l.hold = nil, false
	l.mu.Unlock()
	for _, f := range held {
		f() // from the test goroutine: done may run on any goroutine
	}
}

func (l *memLog) records() iter.Seq2[Record, error] {
	l.mu.Lock()
	var all []Record
	for _, p := range slices.Sorted(mapKeys(l.parts)) {
		all = append(all, l.parts[p]...)
	}
	l.mu.Unlock()
	return func(yield func(Record, error) bool) {
		for _, r := range all {
			if !yield(r, nil) {
				return
			}
		}
	}
}

func (l *memLog) last(t *testing.T, id string) *meta {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	var m *meta
	for _, r := range l.parts[Partition(id, DefaultNumPartitions)] {
		d, err := decodeRecord(r)
		if err != nil {
			t.Fatal(err)
		}
		if d.kind == kindTxn && d.id == id {
			m = d.meta
		}
	}
	return m
}

func mapKeys[K comparable, V any](m map[K]V) iter.Seq[K] {
	return func(yield func(K) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// memMarkers records marker writes; the first failures writes fail.
type memMarkers struct {
	mu       sync.Mutex
	failures int
	calls    []markerCall
	written  chan markerCall
}

type markerCall struct {
	pid    int64
	epoch  int16
	commit bool
	parts  []TopicPartition
	err    error
}

func newMemMarkers(failures int) *memMarkers {
	return &memMarkers{failures: failures, written: make(chan markerCall, 100)}
}

func (m *memMarkers) Write(pid int64, epoch int16, commit bool, coordinatorEpoch int32, parts []TopicPartition, done func(error)) {
	m.mu.Lock()
	mc := markerCall{pid: pid, epoch: epoch, commit: commit, parts: slices.Clone(parts)}
	if m.failures > 0 {
		m.failures--
		mc.err = errTest
	}
	m.calls = append(m.calls, mc)
	m.mu.Unlock()
	go func() { // done may run on any goroutine
		done(mc.err)
		m.written <- mc
	}()
}

func newCoordinator(t *testing.T, log *memLog, mk *memMarkers) *Coordinator {
	t.Helper()
	c, err := New(Options{Log: log, Markers: mk, Topics: testTopics})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func loaded(t *testing.T, log *memLog, mk *memMarkers) *Coordinator {
	t.Helper()
	c := newCoordinator(t, log, mk)
	if err := c.Load(context.Background(), log.records()); err != nil {
		t.Fatal(err)
	}
	return c
}

func wait(t *testing.T, ch <-chan kmsg.Response) kmsg.Response {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(10 * time.Second):
		t.Fatal("no response")
		return nil
	}
}

func do[R kmsg.Response](t *testing.T, c *Coordinator, req kmsg.Request) R {
	t.Helper()
	return wait(t, c.Do(req)).(R)
}

// eventually polls cond, bounded.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for range 1000 {
		if cond() {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s", what)
}

func TestDoBeforeLoadAndUnsupported(t *testing.T) {
	c := newCoordinator(t, newMemLog(), newMemMarkers(0))
	r := do[*kmsg.InitProducerIDResponse](t, c, initReq("app", 1000))
	wantCode(t, "before load", r.ErrorCode, kerr.CoordinatorLoadInProgress)
	var ve *VerifyError
	if err := c.Verify("app", 0, 0, TopicPartition{"orders", 0}); !errors.As(err, &ve) || ve.Err != kerr.CoordinatorLoadInProgress {
		t.Fatalf("verify before load: %v", err)
	}
	end := endReq("app", 0, 0, true)
	end.Version = 5
	wantCode(t, "EndTxn v5", do[*kmsg.EndTxnResponse](t, c, end).ErrorCode, kerr.UnsupportedVersion)
}

func TestDoAnswersAfterDurability(t *testing.T) {
	log := newMemLog()
	c := loaded(t, log, newMemMarkers(0))
	log.setHold(true)
	ch := c.Do(initReq("app", 60_000))
	select {
	case r := <-ch:
		t.Fatalf("answered before the log: %+v", r)
	case <-time.After(50 * time.Millisecond):
	}
	// The block record, then the transaction record, each held.
	for i := range 2 {
		eventually(t, "an append", func() bool { log.mu.Lock(); defer log.mu.Unlock(); return len(log.held) > 0 })
		if i == 1 {
			log.release()
			break
		}
		log.mu.Lock()
		held := log.held
		log.held = nil
		log.mu.Unlock()
		held[0]()
	}
	r := wait(t, ch).(*kmsg.InitProducerIDResponse)
	wantCode(t, "init", r.ErrorCode, nil)
	if m := log.last(t, "app"); m == nil || m.epoch != r.ProducerEpoch || m.pid != r.ProducerID {
		t.Fatalf("log has %+v", m)
	}
}

func TestDoCommitWithFailingMarkers(t *testing.T) {
	log := newMemLog()
	mk := newMemMarkers(2)
	c := loaded(t, log, mk)
	ir := do[*kmsg.InitProducerIDResponse](t, c, initReq("app", 60_000))
	pid, epoch := ir.ProducerID, ir.ProducerEpoch
	ar := do[*kmsg.AddPartitionsToTxnResponse](t, c, addReq("app", pid, epoch, "orders", 0))
	wantCode(t, "add", ar.Topics[0].Partitions[0].ErrorCode, nil)
	if err := c.Verify("app", pid, epoch, TopicPartition{"orders", 0}); err != nil {
		t.Fatalf("verify: %v", err)
	}
	var ve *VerifyError
	if err := c.Verify("app", pid, epoch, TopicPartition{"orders", 1}); !errors.As(err, &ve) || ve.Err != kerr.InvalidTxnState ||
		!errors.Is(err, kerr.InvalidTxnState) {
		t.Fatalf("verify of a partition outside: %v", err)
	}
	er := do[*kmsg.EndTxnResponse](t, c, endReq("app", pid, epoch, true))
	wantCode(t, "end", er.ErrorCode, nil)
	for i := range 3 {
		mc := <-mk.written
		if !mc.commit || mc.pid != pid || !reflect.DeepEqual(mc.parts, []TopicPartition{{"orders", 0}}) {
			t.Fatalf("marker write %d: %+v", i, mc)
		}
		if i < 2 {
			// Still prepared: the producer waits.
			r := do[*kmsg.InitProducerIDResponse](t, c, initReq("app", 60_000))
			wantCode(t, "init while markers fail", r.ErrorCode, kerr.ConcurrentTransactions)
		}
	}
	eventually(t, "CompleteCommit", func() bool {
		m := log.last(t, "app")
		return m != nil && m.state == kmsg.TransactionStateCompleteCommit
	})
}

// TestLoadCompletesPrepared: a previous coordinator's log with one
// transaction left in PrepareCommit and one Ongoing. Load writes the
// commit markers again and appends CompleteCommit; ids never repeat.
func TestLoadCompletesPrepared(t *testing.T) {
	log := newMemLog()
	mk0 := newMemMarkers(0)
	c0 := loaded(t, log, mk0)
	var seen []int64
	for range 3 {
		r := do[*kmsg.InitProducerIDResponse](t, c0, initReq("", 0))
		seen = append(seen, r.ProducerID)
	}
	r := do[*kmsg.InitProducerIDResponse](t, c0, initReq("app", 60_000))
	pid, epoch := r.ProducerID, r.ProducerEpoch
	do[*kmsg.AddPartitionsToTxnResponse](t, c0, addReq("app", pid, epoch, "orders", 0, 2))
	do[*kmsg.AddOffsetsToTxnResponse](t, c0, offsetsReq("app", pid, epoch, "grp"))
	r = do[*kmsg.InitProducerIDResponse](t, c0, initReq("other", 60_000))
	do[*kmsg.AddPartitionsToTxnResponse](t, c0, addReq("other", r.ProducerID, r.ProducerEpoch, "payments", 0))
	// The crash: PrepareCommit is durable, the markers never happen.
	c0.Close()
	// Close does not wait for in-flight writes; the record of app's
	// PrepareCommit is appended by hand, as the old coordinator would.
	m := log.last(t, "app").clone()
	m.state = kmsg.TransactionStatePrepareCommit
	log.Append(Partition("app", DefaultNumPartitions), []Record{txnRecord("app", &m)}, func(error) {})

	mk := newMemMarkers(0)
	c := loaded(t, log, mk)
	mc := <-mk.written
	want := []TopicPartition{testTopics.GroupPartition("grp"), {"orders", 0}, {"orders", 2}}
	if !mc.commit || mc.pid != pid || mc.epoch != epoch || !reflect.DeepEqual(mc.parts, want) {
		t.Fatalf("markers after load: %+v", mc)
	}
	eventually(t, "CompleteCommit", func() bool {
		m := log.last(t, "app")
		return m != nil && m.state == kmsg.TransactionStateCompleteCommit
	})
	if m := log.last(t, "other"); m.state != kmsg.TransactionStateOngoing {
		t.Fatalf("other: %v", m.state)
	}
	d := do[*kmsg.DescribeTransactionsResponse](t, c, &kmsg.DescribeTransactionsRequest{TransactionalIDs: []string{"other"}})
	if s := d.TransactionStates[0]; s.State != "Ongoing" || len(s.Topics) != 1 {
		t.Fatalf("other after load: %+v", s)
	}
	// Producer ids: a restart starts a new block.
	nr := do[*kmsg.InitProducerIDResponse](t, c, initReq("", 0))
	if slices.Contains(seen, nr.ProducerID) || nr.ProducerID < pidBlockSize {
		t.Fatalf("producer id %d after restart; before: %v", nr.ProducerID, seen)
	}
}

func TestRestartsNeverReuseProducerIDs(t *testing.T) {
	log := newMemLog()
	seen := map[int64]bool{}
	for restart := range 3 {
		c := loaded(t, log, newMemMarkers(0))
		for range 5 {
			r := do[*kmsg.InitProducerIDResponse](t, c, initReq("", 0))
			if r.ErrorCode != 0 || seen[r.ProducerID] {
				t.Fatalf("restart %d: %+v reused", restart, r)
			}
			seen[r.ProducerID] = true
		}
		c.Close()
	}
}

func TestLoadCorrupt(t *testing.T) {
	log := newMemLog()
	log.Append(3, []Record{{Key: []byte{0, 9, 1}, Value: []byte{1}}}, func(error) {})
	c := newCoordinator(t, log, newMemMarkers(0))
	var ce *CorruptRecordError
	if err := c.Load(context.Background(), log.records()); !errors.As(err, &ce) || ce.Index != 0 {
		t.Fatalf("load: %v", err)
	}
	wantCode(t, "after a failed load", do[*kmsg.EndTxnResponse](t, c, endReq("a", 0, 0, true)).ErrorCode, kerr.CoordinatorNotAvailable)
	if err := c.Load(context.Background(), log.records()); !errors.Is(err, ErrLoaded) {
		t.Fatalf("second load: %v", err)
	}
}

func TestCloseAnswersWaiting(t *testing.T) {
	log := newMemLog()
	c := loaded(t, log, newMemMarkers(0))
	log.setHold(true)
	ch := c.Do(initReq("", 0))
	eventually(t, "an append", func() bool { log.mu.Lock(); defer log.mu.Unlock(); return len(log.held) > 0 })
	c.Close()
	wantCode(t, "closed", wait(t, ch).(*kmsg.InitProducerIDResponse).ErrorCode, kerr.CoordinatorNotAvailable)
	wantCode(t, "after close", do[*kmsg.InitProducerIDResponse](t, c, initReq("", 0)).ErrorCode, kerr.CoordinatorNotAvailable)
	if err := c.Load(context.Background(), log.records()); err == nil {
		t.Fatal("load after close")
	}
	log.release() // done after Close is harmless
}
