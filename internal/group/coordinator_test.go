package group

import (
	"context"
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

// memLog is an in-memory offsets log. By default an append is durable at
// once and done runs inside Append; hold parks done calls until release,
// fail fails every append.
type memLog struct {
	mu    sync.Mutex
	parts map[int32][]Record
	hold  bool
	held  []func()
	fail  error
}

func newMemLog() *memLog { return &memLog{parts: make(map[int32][]Record)} }

func (l *memLog) Append(p int32, recs []Record, done func(error)) {
	l.mu.Lock()
	if l.fail != nil {
		err := l.fail
		l.mu.Unlock()
		done(err)
		return
	}
	store := func() {
		l.mu.Lock()
		for _, r := range recs {
			l.parts[p] = append(l.parts[p], Record{Key: slices.Clone(r.Key), Value: slices.Clone(r.Value),
				Transactional: r.Transactional, ProducerID: r.ProducerID, ProducerEpoch: r.ProducerEpoch, Partition: p})
		}
		l.mu.Unlock()
		done(nil)
	}
	if l.hold {
		l.held = append(l.held, store)
		l.mu.Unlock()
		return
	}
	l.mu.Unlock()
	store()
}

func (l *memLog) release() {
	l.mu.Lock()
	held := l.held
	l.held, l.hold = nil, false
	l.mu.Unlock()
	for _, f := range held {
		f() // from the test goroutine: done may run on any goroutine
	}
}

func (l *memLog) setFail(err error) { l.mu.Lock(); l.fail = err; l.mu.Unlock() }

// records yields the log as Load wants it: partition by partition, each
// in offset order.
func (l *memLog) records(extra ...Record) iter.Seq2[Record, error] {
	l.mu.Lock()
	var all []Record
	var ps []int32
	for p := range l.parts {
		ps = append(ps, p)
	}
	slices.Sort(ps)
	for _, p := range ps {
		all = append(all, l.parts[p]...)
	}
	l.mu.Unlock()
	all = append(all, extra...)
	return func(yield func(Record, error) bool) {
		for _, r := range all {
			if !yield(r, nil) {
				return
			}
		}
	}
}

func newCoordinator(t *testing.T, log *memLog, mod func(*Options)) *Coordinator {
	t.Helper()
	opts := Options{Log: log, Topics: testTopics, InitialRebalanceDelay: -1}
	if mod != nil {
		mod(&opts)
	}
	c, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func loaded(t *testing.T, log *memLog, mod func(*Options)) *Coordinator {
	t.Helper()
	c := newCoordinator(t, log, mod)
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
	return wait(t, c.DoFrom(Client{ID: "app", Host: "/10.0.0.7"}, req)).(R)
}

func commitReq(group string, gen int32, member string, topic string, parts ...int32) *kmsg.OffsetCommitRequest {
	r := kmsg.NewPtrOffsetCommitRequest()
	r.Version = 9
	r.Group, r.Generation, r.MemberID = group, gen, member
	t := kmsg.NewOffsetCommitRequestTopic()
	t.Topic = topic
	for _, p := range parts {
		rp := kmsg.NewOffsetCommitRequestTopicPartition()
		rp.Partition, rp.Offset, rp.LeaderEpoch = p, int64(100+p), 7
		rp.Metadata = kmsg.StringPtr("meta")
		t.Partitions = append(t.Partitions, rp)
	}
	r.Topics = append(r.Topics, t)
	return r
}

func commitCodes(r *kmsg.OffsetCommitResponse) []int16 {
	var out []int16
	for _, t := range r.Topics {
		for _, p := range t.Partitions {
			out = append(out, p.ErrorCode)
		}
	}
	return out
}

func TestLoadInProgress(t *testing.T) {
	log := newMemLog()
	c := newCoordinator(t, log, nil)
	hb := do[*kmsg.HeartbeatResponse](t, c, hbReq("g", "m", 1))
	wantCode(t, "heartbeat before load", hb.ErrorCode, kerr.CoordinatorLoadInProgress)
	sy := do[*kmsg.SyncGroupResponse](t, c, syncReq("g", "m", 1, nil))
	wantCode(t, "sync before load", sy.ErrorCode, kerr.RebalanceInProgress)
	oc := do[*kmsg.OffsetCommitResponse](t, c, commitReq("g", -1, "", "orders", 0))
	wantCode(t, "commit before load", commitCodes(oc)[0], kerr.CoordinatorLoadInProgress)
	if err := c.Load(context.Background(), log.records()); err != nil {
		t.Fatal(err)
	}
	if err := c.Load(context.Background(), log.records()); err != ErrLoaded {
		t.Fatalf("second Load: %v", err)
	}
	jr := do[*kmsg.JoinGroupResponse](t, c, joinReq("g", ""))
	wantCode(t, "join after load", jr.ErrorCode, nil)
}

func TestCommitAcknowledgedOnlyWhenDurable(t *testing.T) {
	log := newMemLog()
	c := loaded(t, log, nil)
	log.mu.Lock()
	log.hold = true
	log.mu.Unlock()
	ch := c.Do(commitReq("g", -1, "", "orders", 0, 1))
	// Committed goes through the owner goroutine after the commit, so
	// once it returns the commit has been handled and is waiting on done.
	if got := c.Committed("g"); len(got) != 0 {
		t.Fatalf("offsets visible before they are durable: %v", got)
	}
	select {
	case r := <-ch:
		t.Fatalf("commit acknowledged before done: %v", r)
	default:
	}
	log.release()
	r := wait(t, ch).(*kmsg.OffsetCommitResponse)
	if codes := commitCodes(r); !slices.Equal(codes, []int16{0, 0}) {
		t.Fatalf("codes %v", codes)
	}
	if got := c.Committed("g"); !reflect.DeepEqual(got, map[string]map[int32]int64{"orders": {0: 100, 1: 101}}) {
		t.Fatalf("committed %v", got)
	}
}

func TestFailingLogFailsCommits(t *testing.T) {
	log := newMemLog()
	c := loaded(t, log, nil)
	log.setFail(errTest)
	r := do[*kmsg.OffsetCommitResponse](t, c, commitReq("g", -1, "", "orders", 0))
	wantCode(t, "commit on a failing log", commitCodes(r)[0], kerr.CoordinatorNotAvailable)
	if got := c.Committed("g"); got != nil {
		t.Fatalf("failed commit visible: %v", got)
	}
	f := kmsg.NewPtrOffsetFetchRequest()
	f.Version, f.Group = 5, "g"
	f.Topics = []kmsg.OffsetFetchRequestTopic{{Topic: "orders", Partitions: []int32{0}}}
	fr := do[*kmsg.OffsetFetchResponse](t, c, f)
	if p := fr.Topics[0].Partitions[0]; p.Offset != -1 || p.ErrorCode != 0 {
		t.Fatalf("fetch after failed commit: %+v", p)
	}
	// A Log may name the condition with a Kafka error.
	log.setFail(kerr.NotLeaderForPartition)
	r = do[*kmsg.OffsetCommitResponse](t, c, commitReq("g", -1, "", "orders", 0))
	wantCode(t, "commit on a lost partition", commitCodes(r)[0], kerr.NotCoordinator)
}

func TestLoadRestoresGroupsAndOffsets(t *testing.T) {
	log := newMemLog()
	c := loaded(t, log, nil)

	// A two-member consumer group, Stable, with commits.
	first := do[*kmsg.JoinGroupResponse](t, c, joinReq("g", "", withVersion(4)))
	aCh := c.DoFrom(Client{ID: "a", Host: "/1"}, joinReq("g", first.MemberID, withVersion(4)))
	a := wait(t, aCh).(*kmsg.JoinGroupResponse)
	bCh := c.DoFrom(Client{ID: "b", Host: "/2"}, joinReq("g", "", withVersion(5), withInstance("static-b")))
	aCh = c.DoFrom(Client{ID: "a", Host: "/1"}, joinReq("g", a.MemberID, withVersion(4)))
	a = wait(t, aCh).(*kmsg.JoinGroupResponse)
	b := wait(t, bCh).(*kmsg.JoinGroupResponse)
	leader, follower := a, b
	if a.LeaderID != a.MemberID {
		leader, follower = b, a
	}
	fsync := c.Do(syncReq("g", follower.MemberID, leader.Generation, nil))
	ls := do[*kmsg.SyncGroupResponse](t, c, syncReq("g", leader.MemberID, leader.Generation,
		map[string]string{a.MemberID: "assign-a", b.MemberID: "assign-b"}))
	wantCode(t, "leader sync", ls.ErrorCode, nil)
	wantCode(t, "follower sync", wait(t, fsync).(*kmsg.SyncGroupResponse).ErrorCode, nil)
	oc := do[*kmsg.OffsetCommitResponse](t, c, commitReq("g", leader.Generation, leader.MemberID, "orders", 0, 2))
	if codes := commitCodes(oc); !slices.Equal(codes, []int16{0, 0}) {
		t.Fatalf("commit codes %v", codes)
	}
	// A standalone committer, overwritten once and one offset deleted.
	do[*kmsg.OffsetCommitResponse](t, c, commitReq("solo", -1, "", "payments", 0))
	do[*kmsg.OffsetCommitResponse](t, c, commitReq("solo", -1, "", "orders", 1))
	od := kmsg.NewPtrOffsetDeleteRequest()
	od.Group = "solo"
	od.Topics = []kmsg.OffsetDeleteRequestTopic{{Topic: "payments", Partitions: []kmsg.OffsetDeleteRequestTopicPartition{{Partition: 0}}}}
	wantCode(t, "offset delete", do[*kmsg.OffsetDeleteResponse](t, c, od).ErrorCode, nil)
	// A deleted group leaves only tombstones.
	do[*kmsg.OffsetCommitResponse](t, c, commitReq("gone", -1, "", "orders", 0))
	dg := kmsg.NewPtrDeleteGroupsRequest()
	dg.Version, dg.Groups = 2, []string{"gone"}
	wantCode(t, "delete group", do[*kmsg.DeleteGroupsResponse](t, c, dg).Groups[0].ErrorCode, nil)

	describe := func(c *Coordinator) *kmsg.DescribeGroupsResponse {
		r := kmsg.NewPtrDescribeGroupsRequest()
		r.Version, r.Groups = 5, []string{"g", "solo"}
		return do[*kmsg.DescribeGroupsResponse](t, c, r)
	}
	fetch := func(c *Coordinator) *kmsg.OffsetFetchResponse {
		r := kmsg.NewPtrOffsetFetchRequest()
		r.Version = 8
		r.Groups = []kmsg.OffsetFetchRequestGroup{{Group: "g"}, {Group: "solo"}, {Group: "gone"}}
		return do[*kmsg.OffsetFetchResponse](t, c, r)
	}
	wantGroups, wantDescribe, wantFetch := c.Groups(), describe(c), fetch(c)
	wantG, wantSolo := c.Committed("g"), c.Committed("solo")
	c.Close()

	// A consumer-protocol record (key version 3) that Load must skip.
	unknown := Record{Key: []byte{0, 3, 0, 1, 'x'}, Value: []byte{1, 2, 3}}
	c2 := newCoordinator(t, log, nil)
	if err := c2.Load(context.Background(), log.records(unknown)); err != nil {
		t.Fatal(err)
	}
	if got := c2.Groups(); !reflect.DeepEqual(got, wantGroups) {
		t.Fatalf("groups after load:\n got %+v\nwant %+v", got, wantGroups)
	}
	if got := c2.Committed("g"); !reflect.DeepEqual(got, wantG) {
		t.Fatalf("g offsets after load: %v, want %v", got, wantG)
	}
	if got := c2.Committed("solo"); !reflect.DeepEqual(got, wantSolo) || len(got["payments"]) != 0 {
		t.Fatalf("solo offsets after load: %v, want %v", got, wantSolo)
	}
	if got := describe(c2); !reflect.DeepEqual(got, wantDescribe) {
		t.Fatalf("describe after load:\n got %+v\nwant %+v", got, wantDescribe)
	}
	if got := fetch(c2); !reflect.DeepEqual(got, wantFetch) {
		t.Fatalf("fetch after load:\n got %+v\nwant %+v", got, wantFetch)
	}
	// The restored members carry on in the same generation.
	hb := do[*kmsg.HeartbeatResponse](t, c2, hbReq("g", follower.MemberID, leader.Generation))
	wantCode(t, "heartbeat after load", hb.ErrorCode, nil)
}

func TestLoadRejectsCorruptRecord(t *testing.T) {
	c := newCoordinator(t, newMemLog(), nil)
	bad := func(yield func(Record, error) bool) {
		yield(Record{Key: []byte{0, 1, 0}}, nil)
	}
	err := c.Load(context.Background(), bad)
	var ce *CorruptRecordError
	if !errorsAs(err, &ce) || ce.Index != 0 {
		t.Fatalf("Load of a corrupt record: %v", err)
	}
	r := do[*kmsg.HeartbeatResponse](t, c, hbReq("g", "m", 1))
	wantCode(t, "after a failed load", r.ErrorCode, kerr.CoordinatorNotAvailable)
}

func TestUnsupportedRequests(t *testing.T) {
	c := loaded(t, newMemLog(), nil)
	sh := kmsg.NewPtrShareGroupHeartbeatRequest()
	r := do[*kmsg.ShareGroupHeartbeatResponse](t, c, sh)
	wantCode(t, "ShareGroupHeartbeat", r.ErrorCode, kerr.UnsupportedVersion)
	j := joinReq("g", "")
	j.Version = 10
	wantCode(t, "JoinGroup v10", do[*kmsg.JoinGroupResponse](t, c, j).ErrorCode, kerr.UnsupportedVersion)
	if _, _, ok := Versions(76); ok {
		t.Fatal("Versions claims ShareGroupHeartbeat")
	}
	if lo, hi, ok := Versions(68); !ok || lo != 0 || hi != 1 {
		t.Fatalf("Versions(ConsumerGroupHeartbeat) = %d, %d, %v", lo, hi, ok)
	}
	if lo, hi, ok := Versions(11); !ok || lo != 0 || hi != 9 {
		t.Fatalf("Versions(JoinGroup) = %d, %d, %v", lo, hi, ok)
	}
}

func TestCloseAnswersWaitingRequests(t *testing.T) {
	log := newMemLog()
	c := loaded(t, log, func(o *Options) { o.InitialRebalanceDelay = time.Hour })
	join := c.Do(joinReq("g", ""))
	log.mu.Lock()
	log.hold = true
	log.mu.Unlock()
	commit := c.Do(commitReq("solo", -1, "", "orders", 0))
	c.Groups() // both handled
	c.Close()
	wantCode(t, "parked join", wait(t, join).(*kmsg.JoinGroupResponse).ErrorCode, kerr.CoordinatorNotAvailable)
	wantCode(t, "commit in flight", commitCodes(wait(t, commit).(*kmsg.OffsetCommitResponse))[0], kerr.CoordinatorNotAvailable)
	after := wait(t, c.Do(hbReq("g", "m", 1))).(*kmsg.HeartbeatResponse)
	wantCode(t, "after close", after.ErrorCode, kerr.CoordinatorNotAvailable)
	log.release() // a late done after Close is harmless
	if err := c.Load(context.Background(), log.records()); err == nil {
		t.Fatal("Load after Close succeeded")
	}
}

func TestCoordinatorTimersExpireSessions(t *testing.T) {
	// Real time, short timeouts: the owner goroutine must wake up on
	// its own for a session expiry.
	log := newMemLog()
	c := loaded(t, log, func(o *Options) { o.MinSessionTimeout = time.Millisecond })
	jr := do[*kmsg.JoinGroupResponse](t, c, joinReq("g", "", withTimeouts(20*time.Millisecond, 20*time.Millisecond)))
	do[*kmsg.SyncGroupResponse](t, c, syncReq("g", jr.MemberID, 1, map[string]string{jr.MemberID: "x"}))
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if gs := c.Groups(); len(gs) == 1 && gs[0].State == "Empty" {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("session never expired: %+v", c.Groups())
}

// hookLog calls a hook inside Append, on the coordinator's goroutine, as
// the broker's log does when its first append creates the offsets topic
// and so reports a topic change.
type hookLog struct {
	*memLog
	hook func()
}

func (l hookLog) Append(p int32, recs []Record, done func(error)) {
	l.hook()
	l.memLog.Append(p, recs, done)
}

// TopicsChanged may be called before Load and from inside the
// coordinator's own Log.Append, with the input channel full, without
// crashing or deadlocking.
func TestTopicsChangedNeverBlocks(t *testing.T) {
	var c *Coordinator
	log := hookLog{newMemLog(), func() {
		for range 2 * DefaultMaxQueuedRequests {
			c.TopicsChanged()
		}
	}}
	opts := Options{Log: log, Topics: testTopics, InitialRebalanceDelay: -1, MaxQueuedRequests: 1}
	var err error
	if c, err = New(opts); err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.TopicsChanged() // before Load: ignored
	if err := c.Load(context.Background(), log.records()); err != nil {
		t.Fatal(err)
	}
	resp := do[*kmsg.OffsetCommitResponse](t, c, commitReq("g", -1, "", "orders", 0))
	if codes := commitCodes(resp); codes[0] != 0 {
		t.Fatalf("commit: %v", codes)
	}
}
