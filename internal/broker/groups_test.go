package broker_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/internal/broker"
	"github.com/sluice-io/sluice/internal/broker/brokertest"
)

// severableDialer lets a test cut a client off the network at once, the
// way a killed process or a pulled cable would: no LeaveGroup, no commit,
// only silence until the broker's session timeout notices.
type severableDialer struct {
	mu    sync.Mutex
	dead  bool
	conns []net.Conn
}

func (d *severableDialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.dead {
		return nil, errors.New("severed")
	}
	c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
	if err == nil {
		d.conns = append(d.conns, c)
	}
	return c, err
}

func (d *severableDialer) sever() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.dead = true
	for _, c := range d.conns {
		c.Close()
	}
}

// consumed records what the members consumed, per partition.
type consumed struct {
	mu   sync.Mutex
	offs map[int32]map[int64]bool // before the kill, by anyone
	// After the kill: what the survivors consumed, and when they first
	// got a record of a partition the dead member had owned.
	post     map[int32]map[int64]bool
	owned    map[int32]bool // partitions the dead member consumed from
	first    time.Time
	dead     int
	killedAt time.Time
}

func newConsumed(dead int) *consumed {
	return &consumed{offs: map[int32]map[int64]bool{}, post: map[int32]map[int64]bool{}, owned: map[int32]bool{}, dead: dead}
}

func (c *consumed) add(member int, r *kgo.Record) {
	c.mu.Lock()
	defer c.mu.Unlock()
	m := c.offs
	if !c.killedAt.IsZero() {
		if member == c.dead {
			return // buffered before the kill; a dead process reads nothing
		}
		m = c.post
		if c.first.IsZero() && c.owned[r.Partition] {
			c.first = time.Now()
		}
	} else if member == c.dead {
		c.owned[r.Partition] = true
	}
	if m[r.Partition] == nil {
		m[r.Partition] = map[int64]bool{}
	}
	m[r.Partition][r.Offset] = true
}

// has reports whether m holds every offset in [from[p], to) of every partition.
func has(m map[int32]map[int64]bool, parts int32, from map[int32]int64, to int64) []string {
	var out []string
	for p := int32(0); p < parts; p++ {
		for o := from[p]; o < to; o++ {
			if !m[p][o] {
				out = append(out, fmt.Sprintf("%d/%d", p, o))
			}
		}
	}
	return out
}

// runMember polls and commits after every poll until ctx ends.
func runMember(ctx context.Context, cl *kgo.Client, idx int, c *consumed) {
	for ctx.Err() == nil {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return
		}
		fs.EachRecord(func(r *kgo.Record) { c.add(idx, r) })
		_ = cl.CommitUncommittedOffsets(ctx)
	}
}

// groupReady reports whether grp is stable with n members that each own
// partitions, asking the way the group's protocol answers (DescribeGroups
// for classic groups, ConsumerGroupDescribe for KIP-848 ones).
func groupReady(t *testing.T, cl *kgo.Client, grp string, n int, kip848 bool) bool {
	if !kip848 {
		d, err := kadm.NewClient(cl).DescribeGroups(ctxT(t), grp)
		if err != nil || d[grp].Err != nil || d[grp].State != "Stable" || len(d[grp].Members) != n {
			return false
		}
		for _, m := range d[grp].Members {
			if a, ok := m.Assigned.AsConsumer(); !ok || len(a.Topics) == 0 {
				return false
			}
		}
		return true
	}
	req := kmsg.NewPtrConsumerGroupDescribeRequest()
	req.Groups = []string{grp}
	resp, err := req.RequestWith(ctxT(t), cl)
	if err != nil || len(resp.Groups) != 1 {
		return false
	}
	g := resp.Groups[0]
	if g.ErrorCode != 0 || g.State != "Stable" || len(g.Members) != n {
		return false
	}
	for _, m := range g.Members {
		if len(m.Assignment.TopicPartitions) == 0 || m.MemberEpoch != g.Epoch {
			return false
		}
	}
	return true
}

func produceN(t *testing.T, cl *kgo.Client, topic string, parts int32, perPart int) {
	t.Helper()
	var recs []*kgo.Record
	for p := int32(0); p < parts; p++ {
		for i := 0; i < perPart; i++ {
			recs = append(recs, &kgo.Record{Topic: topic, Partition: p, Key: fmt.Appendf(nil, "k%d", i), Value: []byte("v")})
		}
	}
	if err := cl.ProduceSync(ctxT(t), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

func waitFor(t *testing.T, d time.Duration, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// groupVariant is one way a Kafka client runs a group.
type groupVariant struct {
	name string
	opts []kgo.Opt
}

var groupVariants = []groupVariant{
	{"eager-range", []kgo.Opt{kgo.Balancers(kgo.RangeBalancer())}},
	{"cooperative-sticky", []kgo.Opt{kgo.Balancers(kgo.CooperativeStickyBalancer())}},
	{"kip848", []kgo.Opt{kgo.ServerSideBalancer()}},
}

// The failover scenario: three members share a 12-partition topic;
// one is cut off without leaving; the survivors take its partitions once
// the session timeout notices, and resume from the committed offsets with
// no record skipped.
func TestGroupFailover(t *testing.T) {
	const (
		parts          = 12
		perPart        = 50
		sessionTimeout = 2 * time.Second
	)
	b := brokertest.Start(t, func(o *broker.Options) {
		o.Group.MinSessionTimeout = time.Second
		o.Group.Consumer.SessionTimeout = sessionTimeout
		o.Group.Consumer.HeartbeatInterval = 200 * time.Millisecond
	})
	for _, v := range groupVariants {
		t.Run(v.name, func(t *testing.T) {
			topic, grp := "fo-"+v.name, "g-"+v.name
			createTopic(t, b, topic, parts, nil)
			prod := b.Client(t, kgo.RecordPartitioner(kgo.ManualPartitioner()))
			c := newConsumed(2)
			ctx, cancel := context.WithCancel(context.Background())
			var wg sync.WaitGroup
			defer wg.Wait()
			defer cancel()
			dialers := make([]*severableDialer, 3)
			for i := range 3 {
				dialers[i] = &severableDialer{}
				opts := append([]kgo.Opt{
					kgo.ConsumerGroup(grp), kgo.ConsumeTopics(topic),
					kgo.SessionTimeout(sessionTimeout), kgo.HeartbeatInterval(200 * time.Millisecond),
					kgo.RebalanceTimeout(5 * time.Second),
					kgo.DisableAutoCommit(), kgo.FetchMaxWait(100 * time.Millisecond),
					kgo.Dialer(dialers[i].DialContext),
					kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
				}, v.opts...)
				cl := b.Client(t, opts...)
				wg.Add(1)
				go func() { defer wg.Done(); runMember(ctx, cl, i, c) }()
			}
			adm := b.Admin(t)
			waitFor(t, 30*time.Second, "three members with partitions", func() bool {
				return groupReady(t, prod, grp, 3, v.name == "kip848")
			})
			produceN(t, prod, topic, parts, perPart)
			zero := map[int32]int64{}
			waitFor(t, 30*time.Second, "first half consumed", func() bool {
				c.mu.Lock()
				defer c.mu.Unlock()
				return len(has(c.offs, parts, zero, perPart)) == 0
			})
			// The dead member must have owned something, or the kill
			// proves nothing.
			c.mu.Lock()
			owned := len(c.owned)
			c.mu.Unlock()
			if owned == 0 {
				t.Fatal("member 2 consumed nothing before the kill")
			}

			dialers[2].sever()
			c.mu.Lock()
			c.killedAt = time.Now()
			c.mu.Unlock()
			// Whatever was committed when the member died is where the
			// survivors must resume, at the latest.
			time.Sleep(100 * time.Millisecond) // a commit already on the wire lands
			at, err := adm.FetchOffsets(ctxT(t), grp)
			if err != nil {
				t.Fatal(err)
			}
			from := map[int32]int64{}
			for p := int32(0); p < parts; p++ {
				o, _ := at.Lookup(topic, p)
				from[p] = max(o.At, 0)
			}

			produceN(t, prod, topic, parts, perPart)
			waitFor(t, 60*time.Second, "survivors consuming everything after the committed offsets", func() bool {
				c.mu.Lock()
				defer c.mu.Unlock()
				return len(has(c.post, parts, from, 2*perPart)) == 0
			})
			c.mu.Lock()
			takeover := c.first.Sub(c.killedAt)
			c.mu.Unlock()
			t.Logf("%s: survivors consumed the dead member's partitions %v after the kill (session timeout %v)", v.name, takeover.Round(time.Millisecond), sessionTimeout)
			if takeover <= 0 || takeover > sessionTimeout+5*time.Second {
				t.Fatalf("takeover after %v; want within the session timeout %v plus a rebalance", takeover, sessionTimeout)
			}
			// The survivors committed everything.
			offs, err := adm.FetchOffsets(ctxT(t), grp)
			if err != nil {
				t.Fatal(err)
			}
			for p := int32(0); p < parts; p++ {
				o, ok := offs.Lookup(topic, p)
				if !ok || o.At != 2*perPart {
					waitFor(t, 10*time.Second, "final commits", func() bool {
						offs, err := adm.FetchOffsets(ctxT(t), grp)
						o, ok := offs.Lookup(topic, p)
						return err == nil && ok && o.At == 2*perPart
					})
				}
			}
		})
	}
}

// describeMember returns a group's only member id and its generation (the
// member epoch for KIP-848 groups) and whether the group is stable.
func describeMember(t *testing.T, cl *kgo.Client, grp string, kip848 bool) (id string, gen int32, stable bool) {
	t.Helper()
	if kip848 {
		req := kmsg.NewPtrConsumerGroupDescribeRequest()
		req.Groups = []string{grp}
		resp, err := req.RequestWith(ctxT(t), cl)
		if err != nil || len(resp.Groups) != 1 || len(resp.Groups[0].Members) != 1 {
			t.Fatalf("describe %s: %v %+v", grp, err, resp)
		}
		g := resp.Groups[0]
		return g.Members[0].MemberID, g.Members[0].MemberEpoch, g.State == "Stable"
	}
	d, err := kadm.NewClient(cl).DescribeGroups(ctxT(t), grp)
	if err != nil || len(d[grp].Members) != 1 {
		t.Fatalf("describe %s: %v %+v", grp, err, d[grp])
	}
	// kadm does not expose the generation; the member id stands for it.
	return d[grp].Members[0].MemberID, 0, d[grp].State == "Stable"
}

// Committed offsets and a stable group survive a clean restart: the member
// keeps its id (and generation or epoch) and resumes from its commits,
// with the classic protocol and with KIP-848.
func TestGroupSurvivesRestart(t *testing.T) {
	b := brokertest.Start(t)
	for _, kip848 := range []bool{false, true} {
		t.Run(fmt.Sprintf("kip848=%v", kip848), func(t *testing.T) {
			topic, grp := fmt.Sprintf("rs-%v", kip848), fmt.Sprintf("rg-%v", kip848)
			createTopic(t, b, topic, 3, nil)
			prod := b.Client(t, kgo.RecordPartitioner(kgo.ManualPartitioner()))
			produceN(t, prod, topic, 3, 10)
			opts := []kgo.Opt{kgo.ConsumerGroup(grp), kgo.ConsumeTopics(topic), kgo.DisableAutoCommit(),
				kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(100 * time.Millisecond)}
			if kip848 {
				opts = append(opts, kgo.ServerSideBalancer())
			}
			cl := b.Client(t, opts...)
			got := 0
			for got < 30 {
				fs := cl.PollFetches(ctxT(t))
				got += fs.NumRecords()
			}
			if err := cl.CommitUncommittedOffsets(ctxT(t)); err != nil {
				t.Fatal(err)
			}
			id, gen, stable := describeMember(t, prod, grp, kip848)
			if !stable {
				t.Fatalf("group %s not stable before the restart", grp)
			}
			b.Restart()
			id2, gen2, stable2 := describeMember(t, prod, grp, kip848)
			if id2 != id || gen2 != gen || !stable2 {
				t.Fatalf("member after restart %s/%d stable=%v; before %s/%d", id2, gen2, stable2, id, gen)
			}
			offs, err := kadm.NewClient(prod).FetchOffsets(ctxT(t), grp)
			if err != nil {
				t.Fatal(err)
			}
			for p := int32(0); p < 3; p++ {
				if o, ok := offs.Lookup(topic, p); !ok || o.At != 10 {
					t.Fatalf("partition %d committed %+v after restart", p, o)
				}
			}
			// The member carries on: it reads exactly the new records.
			produceN(t, prod, topic, 3, 5)
			var offsets []int64
			for len(offsets) < 15 {
				fs := cl.PollFetches(ctxT(t))
				fs.EachRecord(func(r *kgo.Record) { offsets = append(offsets, r.Offset) })
			}
			if slices.Min(offsets) != 10 || len(offsets) != 15 {
				t.Fatalf("after restart consumed offsets %v; want 10..14 per partition", offsets)
			}
			if id3, _, _ := describeMember(t, prod, grp, kip848); id3 != id {
				t.Fatalf("member %s replaced by %s after the restart", id, id3)
			}
		})
	}
}

// OffsetCommit, OffsetFetch, OffsetDelete and DeleteGroups as an admin
// client uses them, with metadata and leader epoch round-tripped.
func TestOffsetAdmin(t *testing.T) {
	b := brokertest.Start(t)
	createTopic(t, b, "oa", 2, nil)
	adm := b.Admin(t)
	var os kadm.Offsets
	os.Add(kadm.Offset{Topic: "oa", Partition: 0, At: 7, LeaderEpoch: 3, Metadata: "meta"})
	os.Add(kadm.Offset{Topic: "oa", Partition: 1, At: 9, LeaderEpoch: -1})
	resp, err := adm.CommitOffsets(ctxT(t), "adm", os)
	if err != nil || resp.Error() != nil {
		t.Fatalf("commit: %v %v", err, resp.Error())
	}
	got, err := adm.FetchOffsets(ctxT(t), "adm")
	if err != nil {
		t.Fatal(err)
	}
	o, _ := got.Lookup("oa", 0)
	if o.At != 7 || o.LeaderEpoch != 3 || o.Metadata != "meta" {
		t.Fatalf("fetched %+v", o)
	}
	// Unknown topics are refused.
	var bad kadm.Offsets
	bad.Add(kadm.Offset{Topic: "nope", Partition: 0, At: 1})
	resp, err = adm.CommitOffsets(ctxT(t), "adm", bad)
	if err == nil && resp.Error() == nil {
		t.Fatal("commit to an unknown topic succeeded")
	}
	dr, err := adm.DeleteOffsets(ctxT(t), "adm", kadm.TopicsSet{"oa": {1: {}}})
	if err != nil || dr.Error() != nil {
		t.Fatalf("delete offsets: %v %v", err, dr.Error())
	}
	got, _ = adm.FetchOffsets(ctxT(t), "adm")
	if o, ok := got.Lookup("oa", 1); ok && o.At >= 0 {
		t.Fatalf("deleted offset still there: %+v", o)
	}
	lg, err := adm.ListGroups(ctxT(t))
	if err != nil || !slices.Contains(lg.Groups(), "adm") {
		t.Fatalf("list groups: %v %v", lg.Groups(), err)
	}
	dg, err := adm.DeleteGroup(ctxT(t), "adm")
	if err != nil || dg.Err != nil {
		t.Fatalf("delete group: %v %v", err, dg.Err)
	}
	b.Restart()
	got, err = adm.FetchOffsets(ctxT(t), "adm")
	if err != nil {
		t.Fatal(err)
	}
	if o, ok := got.Lookup("oa", 0); ok && o.At >= 0 {
		t.Fatalf("deleted group's offset came back after restart: %+v", o)
	}
}

// Clients cannot write or delete the offsets topic, and keyless records are
// refused on compacted topics.
func TestInternalAndCompactedTopicRules(t *testing.T) {
	b := brokertest.Start(t)
	adm := b.Admin(t)
	var os kadm.Offsets
	createTopic(t, b, "x", 1, nil)
	os.Add(kadm.Offset{Topic: "x", Partition: 0, At: 1})
	if _, err := adm.CommitOffsets(ctxT(t), "make-offsets-topic", os); err != nil {
		t.Fatal(err)
	}
	md, err := adm.Metadata(ctxT(t), "__consumer_offsets")
	if err != nil {
		t.Fatal(err)
	}
	if td := md.Topics["__consumer_offsets"]; td.Err != nil || !td.IsInternal || len(td.Partitions) != 4 {
		t.Fatalf("offsets topic metadata: %+v", td)
	}
	cl := b.Client(t)
	err = cl.ProduceSync(ctxT(t), &kgo.Record{Topic: "__consumer_offsets", Key: []byte("k"), Value: []byte("v")}).FirstErr()
	if err == nil {
		t.Fatal("produce to the offsets topic succeeded")
	}
	dr, err := adm.DeleteTopics(ctxT(t), "__consumer_offsets")
	if err == nil && dr.Error() == nil {
		t.Fatal("deleting the offsets topic succeeded")
	}

	createTopic(t, b, "cmp", 1, map[string]*string{"cleanup.policy": strp("compact")})
	if err := cl.ProduceSync(ctxT(t), &kgo.Record{Topic: "cmp", Value: []byte("no key")}).FirstErr(); err == nil {
		t.Fatal("keyless record accepted on a compacted topic")
	}
	if err := cl.ProduceSync(ctxT(t), &kgo.Record{Topic: "cmp", Key: []byte("k"), Value: []byte("v")}).FirstErr(); err != nil {
		t.Fatalf("keyed record refused on a compacted topic: %v", err)
	}
	// Deleting records needs the delete policy, as in Kafka.
	var del kadm.Offsets
	del.Add(kadm.Offset{Topic: "cmp", Partition: 0, At: 1})
	rr, err := adm.DeleteRecords(ctxT(t), del)
	if err != nil {
		t.Fatal(err)
	}
	if r, _ := rr.Lookup("cmp", 0); !errors.Is(r.Err, kerr.PolicyViolation) {
		t.Fatalf("DeleteRecords on a compact-only topic: %v", r.Err)
	}
}

// The offsets topic is compacted like any compacted topic, and the
// coordinator loads the compacted log to the same offsets.
func TestOffsetsTopicCompacts(t *testing.T) {
	b := brokertest.Start(t)
	createTopic(t, b, "oc", 4, nil)
	adm := b.Admin(t)
	// The offsets topic exists after a first commit; then its segments
	// are made small, so commits roll them and there is something to
	// clean.
	commit := func(n int64) {
		var os kadm.Offsets
		for p := int32(0); p < 4; p++ {
			os.Add(kadm.Offset{Topic: "oc", Partition: p, At: n, LeaderEpoch: -1, Metadata: "m"})
		}
		r, err := adm.CommitOffsets(ctxT(t), "cg", os)
		if err != nil || r.Error() != nil {
			t.Fatalf("commit %d: %v %v", n, err, r.Error())
		}
	}
	commit(1)
	ar, err := adm.AlterTopicConfigs(ctxT(t), []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "segment.bytes", Value: strp("4096")}}, "__consumer_offsets")
	if err != nil || ar[0].Err != nil {
		t.Fatalf("alter: %v %+v", err, ar)
	}
	for n := int64(2); n <= 200; n++ {
		commit(n)
	}
	if err := b.Engine().Checkpoint(); err != nil {
		t.Fatal(err)
	}
	var removed int64
	for _, p := range b.Engine().Partitions() {
		if p.ID().Topic != "__consumer_offsets" {
			continue
		}
		st, err := b.Engine().Compact(p)
		if err != nil {
			t.Fatalf("compact %s: %v", p.ID(), err)
		}
		removed += st.RecordsRemoved
	}
	if removed < 4*150 {
		t.Fatalf("compaction removed %d records of %d commits of 4 partitions", removed, 200)
	}
	b.Restart()
	adm = b.Admin(t)
	got, err := adm.FetchOffsets(ctxT(t), "cg")
	if err != nil {
		t.Fatal(err)
	}
	for p := int32(0); p < 4; p++ {
		if o, ok := got.Lookup("oc", p); !ok || o.At != 200 || o.Metadata != "m" {
			t.Fatalf("after compaction and restart, partition %d: %+v", p, o)
		}
	}
}

// A static member (group.instance.id) that restarts takes its place back
// without a rebalance: the group's generation does not move and the other
// member keeps its partitions throughout.
func TestStaticMemberRestart(t *testing.T) {
	b := brokertest.Start(t)
	createTopic(t, b, "st", 4, nil)
	var mu sync.Mutex
	revoked := map[string]int{}
	member := func(id string) *kgo.Client {
		cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.DisableIdempotentWrite(),
			kgo.ConsumerGroup("static"), kgo.ConsumeTopics("st"), kgo.InstanceID(id),
			kgo.SessionTimeout(10*time.Second), kgo.HeartbeatInterval(100*time.Millisecond),
			kgo.Balancers(kgo.RangeBalancer()),
			kgo.OnPartitionsRevoked(func(_ context.Context, _ *kgo.Client, r map[string][]int32) {
				mu.Lock()
				revoked[id] += len(r["st"])
				mu.Unlock()
			}))
		if err != nil {
			t.Fatal(err)
		}
		return cl
	}
	a := member("a")
	defer a.Close()
	bm := member("b")
	prod := b.Client(t)
	waitFor(t, 30*time.Second, "two stable static members", func() bool { return groupReady(t, prod, "static", 2, false) })
	gen := generation(b, "static")
	mu.Lock()
	revokedA := revoked["a"]
	mu.Unlock()
	// A static member does not leave the group when it closes (KIP-345).
	bm.Close()
	bm = member("b")
	defer bm.Close()
	time.Sleep(500 * time.Millisecond) // five heartbeats: a rebalance would show
	waitFor(t, 30*time.Second, "b back in a stable group", func() bool { return groupReady(t, prod, "static", 2, false) })
	if g := generation(b, "static"); g != gen {
		t.Fatalf("generation moved from %d to %d: the restart caused a rebalance", gen, g)
	}
	mu.Lock()
	defer mu.Unlock()
	if revoked["a"] != revokedA {
		t.Fatalf("member a lost partitions while b restarted (revoked %d, was %d)", revoked["a"], revokedA)
	}
}

func generation(b *brokertest.Broker, grp string) int32 {
	for _, g := range b.Groups() {
		if g.ID == grp {
			return g.Generation
		}
	}
	return -1
}
