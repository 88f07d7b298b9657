package group

import (
	"context"
	"errors"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

const txnEpoch = 1

// txnReq is a TxnOffsetCommit v3 of producer pid, from outside group
// management (generation -1), committing offset for each partition.
func txnReq(group string, pid int64, topic string, offset int64, parts ...int32) *kmsg.TxnOffsetCommitRequest {
	r := kmsg.NewPtrTxnOffsetCommitRequest()
	r.Version = 3
	r.TransactionalID, r.Group = "tx", group
	r.ProducerID, r.ProducerEpoch = pid, txnEpoch
	t := kmsg.NewTxnOffsetCommitRequestTopic()
	t.Topic = topic
	for _, p := range parts {
		rp := kmsg.NewTxnOffsetCommitRequestTopicPartition()
		rp.Partition, rp.Offset, rp.LeaderEpoch = p, offset, 3
		rp.Metadata = kmsg.StringPtr("txn")
		t.Partitions = append(t.Partitions, rp)
	}
	r.Topics = append(r.Topics, t)
	return r
}

func txnCodes(r *kmsg.TxnOffsetCommitResponse) []int16 {
	var out []int16
	for _, t := range r.Topics {
		for _, p := range t.Partitions {
			out = append(out, p.ErrorCode)
		}
	}
	return out
}

func mustTxn(t *testing.T, c *Coordinator, req *kmsg.TxnOffsetCommitRequest) {
	t.Helper()
	for _, code := range txnCodes(do[*kmsg.TxnOffsetCommitResponse](t, c, req)) {
		wantCode(t, "TxnOffsetCommit", code, nil)
	}
}

// marker appends a transaction marker to partition p, as the broker
// writes one.
func (l *memLog) marker(p int32, pid int64, commit bool) {
	l.mu.Lock()
	l.parts[p] = append(l.parts[p], Record{Control: true, Commit: commit, Transactional: true,
		ProducerID: pid, ProducerEpoch: txnEpoch, Partition: p})
	l.mu.Unlock()
}

// endTxn writes pid's marker to group's partition and reports it.
func endTxn(c *Coordinator, log *memLog, group string, pid int64, commit bool) {
	p := Partition(group, DefaultNumPartitions)
	log.marker(p, pid, commit)
	c.CompleteTxn(pid, txnEpoch, commit, p)
}

type fetched struct {
	offset int64
	code   int16
}

// fetchOffsets fetches topic's partitions of group with OffsetFetch v8.
func fetchOffsets(t *testing.T, c *Coordinator, group string, stable bool, topic string, parts ...int32) []fetched {
	t.Helper()
	r := kmsg.NewPtrOffsetFetchRequest()
	r.Version, r.RequireStable = 8, stable
	g := kmsg.NewOffsetFetchRequestGroup()
	g.Group = group
	gt := kmsg.NewOffsetFetchRequestGroupTopic()
	gt.Topic, gt.Partitions = topic, parts
	g.Topics = []kmsg.OffsetFetchRequestGroupTopic{gt}
	r.Groups = []kmsg.OffsetFetchRequestGroup{g}
	resp := do[*kmsg.OffsetFetchResponse](t, c, r)
	var out []fetched
	for _, p := range resp.Groups[0].Topics[0].Partitions {
		out = append(out, fetched{p.Offset, p.ErrorCode})
	}
	return out
}

var unstable = kerr.UnstableOffsetCommit.Code

func wantFetched(t *testing.T, what string, got []fetched, want ...fetched) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%s: got %v, want %v", what, got, want)
	}
}

func TestTxnOffsetsVisibleOnlyOnceCommitted(t *testing.T) {
	log := newMemLog()
	c := loaded(t, log, nil)
	mustTxn(t, c, txnReq("g", 7, "orders", 50, 0, 1))

	p := Partition("g", DefaultNumPartitions)
	log.mu.Lock()
	recs := append([]Record(nil), log.parts[p]...)
	log.mu.Unlock()
	if len(recs) != 2 {
		t.Fatalf("%d records written, want 2", len(recs))
	}
	for _, r := range recs {
		if !r.Transactional || r.ProducerID != 7 || r.ProducerEpoch != txnEpoch || r.Control {
			t.Fatalf("record not of producer 7's transactional batch: %+v", r)
		}
	}

	if got := c.Committed("g"); len(got) != 0 {
		t.Fatalf("pending offsets visible: %v", got)
	}
	wantFetched(t, "plain fetch", fetchOffsets(t, c, "g", false, "orders", 0, 1, 2),
		fetched{-1, 0}, fetched{-1, 0}, fetched{-1, 0})
	wantFetched(t, "stable fetch", fetchOffsets(t, c, "g", true, "orders", 0, 1, 2),
		fetched{-1, unstable}, fetched{-1, unstable}, fetched{-1, 0})

	// Before v8 the code is the partition's too.
	v7 := kmsg.NewPtrOffsetFetchRequest()
	v7.Version, v7.Group, v7.RequireStable = 7, "g", true
	v7.Topics = []kmsg.OffsetFetchRequestTopic{{Topic: "orders", Partitions: []int32{0}}}
	r7 := do[*kmsg.OffsetFetchResponse](t, c, v7)
	wantCode(t, "v7 stable fetch", r7.Topics[0].Partitions[0].ErrorCode, kerr.UnstableOffsetCommit)
	// And before v7 there is no RequireStable: the field is ignored.
	v6 := kmsg.NewPtrOffsetFetchRequest()
	v6.Version, v6.Group, v6.RequireStable = 6, "g", true
	v6.Topics = v7.Topics
	wantCode(t, "v6 fetch", do[*kmsg.OffsetFetchResponse](t, c, v6).Topics[0].Partitions[0].ErrorCode, nil)

	endTxn(c, log, "g", 7, true)
	want := map[string]map[int32]int64{"orders": {0: 50, 1: 50}}
	if got := c.Committed("g"); !reflect.DeepEqual(got, want) {
		t.Fatalf("after commit: %v, want %v", got, want)
	}
	wantFetched(t, "stable fetch after commit", fetchOffsets(t, c, "g", true, "orders", 0, 1),
		fetched{50, 0}, fetched{50, 0})

	// The producer's next transaction aborts: nothing changes.
	mustTxn(t, c, txnReq("g", 7, "orders", 60, 0))
	wantFetched(t, "stable fetch", fetchOffsets(t, c, "g", true, "orders", 0), fetched{-1, unstable})
	endTxn(c, log, "g", 7, false)
	if got := c.Committed("g"); !reflect.DeepEqual(got, want) {
		t.Fatalf("after abort: %v, want %v", got, want)
	}
	wantFetched(t, "stable fetch after abort", fetchOffsets(t, c, "g", true, "orders", 0), fetched{50, 0})

	c2 := loaded(t, log, nil)
	if got := c2.Committed("g"); !reflect.DeepEqual(got, want) {
		t.Fatalf("reloaded: %v, want %v", got, want)
	}
	wantFetched(t, "reloaded stable fetch", fetchOffsets(t, c2, "g", true, "orders", 0, 1),
		fetched{50, 0}, fetched{50, 0})
}

// otherPartitionGroup is a group id whose offsets-log partition differs
// from g's.
func otherPartitionGroup(t *testing.T, g string) string {
	for _, id := range []string{"x", "y", "z", "w", "v"} {
		if Partition(id, DefaultNumPartitions) != Partition(g, DefaultNumPartitions) {
			return id
		}
	}
	t.Fatal("no group in another partition")
	return ""
}

func TestTxnOffsetsLoad(t *testing.T) {
	log := newMemLog()
	c := loaded(t, log, nil)
	x := otherPartitionGroup(t, "g")

	mustTxn(t, c, txnReq("g", 1, "orders", 10, 0))
	endTxn(c, log, "g", 1, true)
	mustTxn(t, c, txnReq("g", 2, "orders", 20, 1))
	endTxn(c, log, "g", 2, false)
	// Producer 3's transaction spans two partitions of the offsets
	// log; only x's marker is written: g's offsets stay pending.
	mustTxn(t, c, txnReq("g", 3, "orders", 30, 2))
	mustTxn(t, c, txnReq(x, 3, "orders", 33, 0))
	endTxn(c, log, x, 3, true)

	check := func(c *Coordinator, what string) {
		t.Helper()
		if got, want := c.Committed("g"), (map[string]map[int32]int64{"orders": {0: 10}}); !reflect.DeepEqual(got, want) {
			t.Fatalf("%s: g committed %v, want %v", what, got, want)
		}
		if got, want := c.Committed(x), (map[string]map[int32]int64{"orders": {0: 33}}); !reflect.DeepEqual(got, want) {
			t.Fatalf("%s: %s committed %v, want %v", what, x, got, want)
		}
		wantFetched(t, what+": stable fetch", fetchOffsets(t, c, "g", true, "orders", 0, 1, 2),
			fetched{10, 0}, fetched{-1, 0}, fetched{-1, unstable})
	}
	check(c, "live")

	// Partitions load in order; x's partition may come before or after
	// g's, and the marker must end producer 3's offsets in x's only.
	c2 := loaded(t, log, nil)
	check(c2, "reloaded")
	endTxn(c2, log, "g", 3, true)
	if got := c2.Committed("g")["orders"][2]; got != 30 {
		t.Fatalf("unfinished transaction committed after load: offset %d, want 30", got)
	}

	// A CompleteTxn before Load is kept until Load is done.
	log.mu.Lock()
	parts := log.parts
	log.parts = make(map[int32][]Record)
	for p, recs := range parts {
		for _, r := range recs {
			if !(r.Control && r.ProducerID == 3 && p == Partition("g", DefaultNumPartitions)) {
				log.parts[p] = append(log.parts[p], r)
			}
		}
	}
	log.mu.Unlock()
	c3 := newCoordinator(t, log, nil)
	c3.CompleteTxn(3, txnEpoch, true, Partition("g", DefaultNumPartitions))
	if err := c3.Load(context.Background(), log.records()); err != nil {
		t.Fatal(err)
	}
	if got := c3.Committed("g")["orders"][2]; got != 30 {
		t.Fatalf("CompleteTxn before Load: offset %d, want 30", got)
	}
}

// TestTxnOffsetsInterleaveWithPlainCommits checks Kafka's rule: when a
// transaction commits, each of its offsets replaces the committed one only
// if it was written later in the log; the most recent record wins, plain
// or transactional.
func TestTxnOffsetsInterleaveWithPlainCommits(t *testing.T) {
	log := newMemLog()
	c := loaded(t, log, nil)

	// a: transactional 10, then plain 100, then COMMIT: the plain one
	// is later and stays.
	mustTxn(t, c, txnReq("a", 1, "orders", 10, 0))
	do[*kmsg.OffsetCommitResponse](t, c, commitReq("a", -1, "", "orders", 0))
	endTxn(c, log, "a", 1, true)

	// b: plain 100, then transactional 10, then COMMIT: the
	// transaction is later and wins.
	do[*kmsg.OffsetCommitResponse](t, c, commitReq("b", -1, "", "orders", 0))
	mustTxn(t, c, txnReq("b", 2, "orders", 10, 0))
	endTxn(c, log, "b", 2, true)

	// d: transactional 10 to partitions 0 and 1, then a tombstone for
	// partition 0 (OffsetDelete) deletes its pending offset: COMMIT then
	// brings back partition 1 only.
	mustTxn(t, c, txnReq("d", 3, "orders", 10, 0, 1))
	del := kmsg.NewPtrOffsetDeleteRequest()
	del.Group = "d"
	del.Topics = []kmsg.OffsetDeleteRequestTopic{{Topic: "orders", Partitions: []kmsg.OffsetDeleteRequestTopicPartition{{Partition: 0}}}}
	if r := do[*kmsg.OffsetDeleteResponse](t, c, del); r.ErrorCode != 0 || r.Topics[0].Partitions[0].ErrorCode != 0 {
		t.Fatalf("OffsetDelete: %+v", r)
	}
	wantFetched(t, "stable fetch after delete", fetchOffsets(t, c, "d", true, "orders", 0, 1),
		fetched{-1, 0}, fetched{-1, unstable})
	endTxn(c, log, "d", 3, true)

	want := map[string]map[string]map[int32]int64{
		"a": {"orders": {0: 100}},
		"b": {"orders": {0: 10}},
		"d": {"orders": {1: 10}},
	}
	for _, cc := range []*Coordinator{c, loaded(t, log, nil)} {
		for g, w := range want {
			if got := cc.Committed(g); !reflect.DeepEqual(got, w) {
				t.Fatalf("group %s: %v, want %v", g, got, w)
			}
		}
	}
}

func TestTxnOffsetCommitMemberChecks(t *testing.T) {
	h := newHarness(t, nil)
	txn := func(req *kmsg.TxnOffsetCommitRequest) int16 {
		t.Helper()
		c := h.do("c", req)
		h.flush(nil)
		codes := txnCodes(h.answers[c].(*kmsg.TxnOffsetCommitResponse))
		for _, code := range codes[1:] {
			if code != codes[0] {
				t.Fatalf("mixed codes %v", codes)
			}
		}
		return codes[0]
	}
	member := func(group string, gen int32, id string, version int16) *kmsg.TxnOffsetCommitRequest {
		r := txnReq(group, 5, "orders", 10, 0, 1)
		r.Version, r.Generation, r.MemberID = version, gen, id
		return r
	}

	ids := h.stableGroup("g", 2)
	gen := h.group("g").generation
	wantCode(t, "wrong generation", txn(member("g", gen+1, ids[0], 3)), kerr.IllegalGeneration)
	wantCode(t, "unknown member", txn(member("g", gen, "nobody", 3)), kerr.UnknownMemberID)
	wantCode(t, "member", txn(member("g", gen, ids[1], 3)), nil)
	// Before v3 no member is named; Kafka accepts it in any state, where
	// a plain commit without member is refused.
	wantCode(t, "v2 without member", txn(member("g", 99, "ignored", 2)), nil)
	wantCode(t, "v3 without member", txn(member("g", -1, "", 3)), nil)
	oc := h.do("c", commitReq("g", -1, "", "orders", 0))
	wantCode(t, "plain commit without member", h.answers[oc].(*kmsg.OffsetCommitResponse).Topics[0].Partitions[0].ErrorCode, kerr.UnknownMemberID)

	// A rebalance in progress does not refuse a member's transactional
	// commit (Kafka: no REBALANCE_IN_PROGRESS for transactions).
	h.do("c", joinReq("g", "", withVersion(3)))
	if h.group("g").state != statePreparingRebalance {
		t.Fatalf("state %v", h.group("g").state)
	}
	wantCode(t, "during rebalance", txn(member("g", gen, ids[0], 3)), nil)

	sid := h.stableGroup("s", 1, withInstance("i1"))
	fenced := member("s", h.group("s").generation, "impostor", 3)
	fenced.InstanceID = kmsg.StringPtr("i1")
	wantCode(t, "fenced instance", txn(fenced), kerr.FencedInstanceID)
	ok := member("s", h.group("s").generation, sid[0], 3)
	ok.InstanceID = kmsg.StringPtr("i1")
	wantCode(t, "static member", txn(ok), nil)

	wantCode(t, "unknown group with a generation", txn(member("new", 1, "m", 3)), kerr.IllegalGeneration)
	wantCode(t, "unknown group without", txn(member("new", -1, "", 3)), nil)
	noPID := txnReq("new", -1, "orders", 1, 0)
	wantCode(t, "no producer", txn(noPID), kerr.InvalidProducerIDMapping)
	wantCode(t, "empty group id", txn(member("", -1, "", 3)), kerr.InvalidGroupID)

	big := txnReq("new", 5, "orders", 1, 0)
	big.Topics[0].Partitions[0].Metadata = kmsg.StringPtr(string(make([]byte, DefaultMaxOffsetMetadataBytes+1)))
	wantCode(t, "metadata too large", txn(big), kerr.OffsetMetadataTooLarge)
	wantCode(t, "unknown topic", txn(txnReq("new", 5, "nope", 1, 0)), kerr.UnknownTopicOrPartition)
	wantCode(t, "unknown partition", txn(txnReq("new", 5, "orders", 1, 9)), kerr.UnknownTopicOrPartition)
	v6 := txnReq("new", 5, "", 1, 0)
	v6.Version, v6.Topics[0].TopicID = 6, testTopics["orders"].ID
	wantCode(t, "v6 by topic id", txn(v6), nil)
	if !h.st.groups["new"].pendingTxn("orders", 0) {
		t.Fatal("v6 commit by topic id not pending under the topic's name")
	}
}

func TestTxnOffsetCommitConsumerGroup(t *testing.T) {
	log := newMemLog()
	c := loaded(t, log, nil)
	m := &cgMember{id: "m1", group: "cg", subs: []string{"orders"}}
	m.mustBeat(t, c)
	req := func(id string, epoch int32) *kmsg.TxnOffsetCommitRequest {
		r := txnReq("cg", 4, "orders", 10, 0)
		r.MemberID, r.Generation = id, epoch
		return r
	}
	code := func(r *kmsg.TxnOffsetCommitRequest) int16 {
		return txnCodes(do[*kmsg.TxnOffsetCommitResponse](t, c, r))[0]
	}
	wantCode(t, "stale epoch", code(req("m1", m.epoch+1)), kerr.IllegalGeneration)
	wantCode(t, "unknown member", code(req("m2", m.epoch)), kerr.UnknownMemberID)
	wantCode(t, "member", code(req("m1", m.epoch)), nil)
	endTxn(c, log, "cg", 4, true)
	if got := c.Committed("cg")["orders"][0]; got != 10 {
		t.Fatalf("committed %d, want 10", got)
	}
}

// TestTxnOffsetsRetentionAndDeletion: pending offsets do not expire, nor
// does a committed offset with pending ones, nor a group holding them;
// tombstones delete them.
func TestTxnOffsetsRetentionAndDeletion(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.OffsetsRetention = time.Hour })
	txn := func(req *kmsg.TxnOffsetCommitRequest) {
		t.Helper()
		c := h.do("c", req)
		h.flush(nil)
		for _, code := range txnCodes(h.answers[c].(*kmsg.TxnOffsetCommitResponse)) {
			wantCode(t, "TxnOffsetCommit", code, nil)
		}
	}
	end := func(group string, pid int64, commit bool) {
		h.st.completeTxn(h.now, txnEnd{pid, txnEpoch, commit, Partition(group, DefaultNumPartitions)})
		h.st.settle(h.now)
	}
	lastWrite := func() []Record { return h.written[len(h.written)-1] }

	h.commit(commitReq("solo", -1, "", "orders", 0, 2))
	txn(txnReq("solo", 9, "orders", 5, 0, 1))
	h.advance(2 * time.Hour) // fails on a deadline left due
	got := h.st.committed("solo")
	if _, ok := got["orders"][0]; !ok || len(got["orders"]) != 1 {
		t.Fatalf("after retention: %v, want orders/0 kept (pending on it), orders/2 expired", got)
	}
	if !h.st.groups["solo"].pendingTxn("orders", 1) {
		t.Fatal("a pending offset expired")
	}
	end("solo", 9, false)
	h.advance(0)
	if _, ok := h.st.groups["solo"]; ok {
		t.Fatalf("group kept once the transaction aborted: %v", h.st.committed("solo"))
	}

	// A group holding only pending offsets is not deleted.
	txn(txnReq("only", 10, "orders", 5, 0))
	h.advance(24 * time.Hour)
	if g := h.st.groups["only"]; g == nil || !g.pendingTxn("orders", 0) {
		t.Fatal("a group with only pending offsets was deleted")
	}
	end("only", 10, true)
	if got := h.st.committed("only")["orders"][0]; got != 5 {
		t.Fatalf("committed %d, want 5", got)
	}

	// DeleteGroups tombstones partitions with only pending offsets too.
	h.commit(commitReq("e", -1, "", "orders", 0))
	txn(txnReq("e", 11, "orders", 5, 0, 1))
	dg := kmsg.NewPtrDeleteGroupsRequest()
	dg.Groups = []string{"e"}
	h.do("c", dg)
	recs := lastWrite()
	h.flush(nil)
	if len(recs) != 3 || recs[0].Value != nil || recs[1].Value != nil || recs[2].Value != nil {
		t.Fatalf("DeleteGroups wrote %d records, want tombstones for orders/0, orders/1 and the group", len(recs))
	}
	if d, err := decodeRecord(recs[1]); err != nil || d.topic != "orders" || d.partition != 1 {
		t.Fatalf("second tombstone %+v %v, want orders/1", d, err)
	}
	end("e", 11, true) // finishes the deleted group's transaction: nothing comes back
	if _, ok := h.st.groups["e"]; ok {
		t.Fatal("deleted group came back")
	}

	// Deleted topics take pending offsets with them.
	h.commit(commitReq("f", -1, "", "payments", 0))
	txn(txnReq("f", 12, "orders", 5, 1))
	fx := &effects{}
	h.st.topicsDeleted(h.now, []string{"orders"}, fx)
	h.run(fx)
	if recs := lastWrite(); len(recs) != 1 || recs[0].Value != nil {
		t.Fatalf("topic deletion wrote %d records, want one tombstone", len(recs))
	}
	end("f", 12, true)
	if got := h.st.committed("f"); len(got) != 1 || len(got["payments"]) != 1 {
		t.Fatalf("after deleting orders: %v", got)
	}
}

func TestTxnOffsetCommitDurability(t *testing.T) {
	log := newMemLog()
	c := loaded(t, log, nil)

	// While the append is in flight the answer waits, and a stable
	// fetch is refused.
	log.mu.Lock()
	log.hold = true
	log.mu.Unlock()
	ch := c.Do(txnReq("g", 1, "orders", 10, 0))
	wantFetched(t, "stable fetch while writing", fetchOffsets(t, c, "g", true, "orders", 0), fetched{-1, unstable})
	select {
	case r := <-ch:
		t.Fatalf("answered before durable: %v", r)
	default:
	}
	log.release()
	for _, code := range txnCodes(wait(t, ch).(*kmsg.TxnOffsetCommitResponse)) {
		wantCode(t, "TxnOffsetCommit", code, nil)
	}

	// A failed append is answered with the mapped error and leaves
	// nothing pending.
	log.setFail(errors.New("disk on fire"))
	r := do[*kmsg.TxnOffsetCommitResponse](t, c, txnReq("h", 2, "orders", 10, 0))
	wantCode(t, "failed append", txnCodes(r)[0], kerr.CoordinatorNotAvailable)
	wantFetched(t, "stable fetch after failure", fetchOffsets(t, c, "h", true, "orders", 0), fetched{-1, 0})
	log.setFail(nil)

	// A marker reported while the transaction's append is in flight (a
	// client that did not wait for the answer) drops those offsets
	// rather than leaving them to the producer's next transaction.
	log.mu.Lock()
	log.hold = true
	log.mu.Unlock()
	ch = c.Do(txnReq("k", 3, "orders", 10, 0))
	c.Committed("k") // the request has reached the owner
	endTxn(c, log, "k", 3, true)
	log.release()
	wait(t, ch)
	if got := c.Committed("k"); len(got) != 0 {
		t.Fatalf("offsets of an ended transaction committed: %v", got)
	}
	wantFetched(t, "stable fetch", fetchOffsets(t, c, "k", true, "orders", 0), fetched{-1, 0})
}

func TestTxnOffsetCommitBeforeLoad(t *testing.T) {
	c := newCoordinator(t, newMemLog(), nil)
	r := do[*kmsg.TxnOffsetCommitResponse](t, c, txnReq("g", 1, "orders", 10, 0))
	wantCode(t, "before load", txnCodes(r)[0], kerr.CoordinatorLoadInProgress)
	lo, hi, ok := Versions(28)
	if !ok || lo != 0 || hi != (&kmsg.TxnOffsetCommitRequest{}).MaxVersion() {
		t.Fatalf("TxnOffsetCommit versions %d-%d %v", lo, hi, ok)
	}
}

// TestTxnOffsetsLoadMatchesLive drives random plain commits, transactional
// commits, offset deletions and transaction ends through a coordinator,
// then loads its log into a second one: both must show the same committed
// offsets and the same unstable partitions. Seeded; the seed is printed.
func TestTxnOffsetsLoadMatchesLive(t *testing.T) {
	for seed := int64(1); seed <= 4; seed++ {
		t.Logf("seed %d", seed)
		rng := rand.New(rand.NewPCG(uint64(seed), 0))
		log := newMemLog()
		live := loaded(t, log, nil)
		groups := []string{"g", otherPartitionGroup(t, "g")}
		for op := range 150 {
			g := groups[rng.IntN(len(groups))]
			p := int32(rng.IntN(3))
			pid := int64(rng.IntN(3))
			switch rng.IntN(5) {
			case 0, 1:
				mustTxn(t, live, txnReq(g, pid, "orders", int64(op), p))
			case 2:
				r := commitReq(g, -1, "", "orders", p)
				r.Topics[0].Partitions[0].Offset = int64(1000 + op)
				do[*kmsg.OffsetCommitResponse](t, live, r)
			case 3:
				del := kmsg.NewPtrOffsetDeleteRequest()
				del.Group = g
				del.Topics = []kmsg.OffsetDeleteRequestTopic{{Topic: "orders", Partitions: []kmsg.OffsetDeleteRequestTopicPartition{{Partition: p}}}}
				do[*kmsg.OffsetDeleteResponse](t, live, del)
			case 4:
				endTxn(live, log, g, pid, rng.IntN(2) == 0)
			}
		}
		reloaded := loaded(t, log, nil)
		for _, g := range groups {
			if a, b := live.Committed(g), reloaded.Committed(g); !reflect.DeepEqual(a, b) {
				t.Fatalf("seed %d group %s: live %v, reloaded %v", seed, g, a, b)
			}
			a := fetchOffsets(t, live, g, true, "orders", 0, 1, 2)
			b := fetchOffsets(t, reloaded, g, true, "orders", 0, 1, 2)
			if !reflect.DeepEqual(a, b) {
				t.Fatalf("seed %d group %s stable fetch: live %v, reloaded %v", seed, g, a, b)
			}
		}
	}
}
