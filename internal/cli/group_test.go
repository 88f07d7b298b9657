package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// groupWait bounds every wait for a group to reach a state.
const groupWait = 15 * time.Second

func newAdmin(t *testing.T, addr string) *kadm.Client {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return kadm.NewClient(cl)
}

// produceAt writes n records to one partition with timestamps base, base+1s,
// ... so --to-datetime has known answers.
func produceAt(t *testing.T, addr, topic string, partition int32, n int, base time.Time) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), groupWait)
	defer cancel()
	var rs []*kgo.Record
	for i := range n {
		rs = append(rs, &kgo.Record{
			Topic: topic, Partition: partition, Value: fmt.Appendf(nil, "%d", i),
			Timestamp: base.Add(time.Duration(i) * time.Second),
		})
	}
	if err := cl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
}

// startMember joins group with a real consumer, reads want records and
// commits the given offsets. The caller closes the client, which leaves the
// group.
func startMember(t *testing.T, addr, group, topic string, want int, commit map[int32]int64, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	opts = append([]kgo.Opt{
		kgo.SeedBrokers(addr), kgo.ClientID("test-consumer"),
		kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic), kgo.DisableAutoCommit(),
		kgo.FetchMaxWait(100 * time.Millisecond),
	}, opts...)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), groupWait)
	defer cancel()
	got := 0
	for got < want {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			cl.Close()
			t.Fatalf("consumed %d of %d records before the deadline", got, want)
		}
		fs.EachError(func(tp string, p int32, err error) { t.Logf("fetch %s/%d: %v", tp, p, err) })
		got += fs.NumRecords()
	}
	offs := map[string]map[int32]kgo.EpochOffset{topic: {}}
	for p, o := range commit {
		offs[topic][p] = kgo.EpochOffset{Epoch: -1, Offset: o}
	}
	var commitErr error
	cl.CommitOffsetsSync(ctx, offs, func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
		commitErr = err
		if resp != nil {
			for _, tr := range resp.Topics {
				for _, pr := range tr.Partitions {
					if pr.ErrorCode != 0 && commitErr == nil {
						commitErr = fmt.Errorf("commit %s/%d: error code %d", tr.Topic, pr.Partition, pr.ErrorCode)
					}
				}
			}
		}
	})
	if commitErr != nil {
		cl.Close()
		t.Fatalf("commit: %v", commitErr)
	}
	return cl
}

// committed reads the group's committed offsets of one topic.
func committed(t *testing.T, adm *kadm.Client, group, topic string) map[int32]int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), groupWait)
	defer cancel()
	os, err := adm.FetchOffsets(ctx, group)
	if err != nil {
		t.Fatalf("fetch offsets: %v", err)
	}
	out := map[int32]int64{}
	for p, o := range os[topic] {
		if o.Err != nil {
			t.Fatalf("fetch offsets %s/%d: %v", topic, p, o.Err)
		}
		if o.At >= 0 {
			out[p] = o.At
		}
	}
	return out
}

func describeGroupJSON(t *testing.T, addr, group string) groupDescription {
	t.Helper()
	var ds []groupDescription
	r := mustRun(t, addr, "", "group", "describe", group, "--format", "json")
	if err := json.Unmarshal([]byte(r.stdout), &ds); err != nil || len(ds) != 1 {
		t.Fatalf("describe json (%v):\n%s", err, r.stdout)
	}
	return ds[0]
}

// waitState polls describe until the group is in state, up to groupWait.
func waitState(t *testing.T, addr, group, state string) groupDescription {
	t.Helper()
	deadline := time.Now().Add(groupWait)
	for {
		d := describeGroupJSON(t, addr, group)
		if d.State == state {
			return d
		}
		if time.Now().After(deadline) {
			t.Fatalf("group %s is %s, not %s, after %v", group, d.State, state, groupWait)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func listGroupsJSON(t *testing.T, addr string, args ...string) map[string]groupRow {
	t.Helper()
	var rows []groupRow
	r := mustRun(t, addr, "", append([]string{"group", "list", "--format", "json"}, args...)...)
	if err := json.Unmarshal([]byte(r.stdout), &rows); err != nil {
		t.Fatalf("list json (%v):\n%s", err, r.stdout)
	}
	out := map[string]groupRow{}
	for _, row := range rows {
		out[row.Group] = row
	}
	return out
}

// TestGroupLifecycle drives a classic group through list, describe (with
// exact lag), the refusal to reset or delete while it has a member, every
// reset mode as a dry run and executed, and delete.
func TestGroupLifecycle(t *testing.T) {
	eachBroker(t, func(t *testing.T, addr string) {
		mustRun(t, addr, "", "topic", "create", "orders", "-p", "3")
		base := time.Now().Add(-time.Hour).Truncate(time.Second)
		produceAt(t, addr, "orders", 0, 10, base)
		produceAt(t, addr, "orders", 1, 5, base)
		adm := newAdmin(t, addr)

		member := startMember(t, addr, "g1", "orders", 15, map[int32]int64{0: 7, 1: 5})
		closed := false
		defer func() {
			if !closed {
				member.Close()
			}
		}()

		d := waitState(t, addr, "g1", "Stable")
		if d.Type != "classic" || d.ProtocolType != "consumer" || d.Coordinator == nil || len(d.Members) != 1 {
			t.Fatalf("describe: %+v", d)
		}
		m := d.Members[0]
		if m.ClientID != "test-consumer" || m.Host == "" || m.MemberID == "" ||
			len(m.Assigned) != 1 || m.Assigned[0].Topic != "orders" || len(m.Assigned[0].Partitions) != 3 {
			t.Errorf("member: %+v", m)
		}
		want := []groupPartition{
			{Topic: "orders", Partition: 0, Committed: 7, LogStart: 0, LogEnd: 10, Lag: 3},
			{Topic: "orders", Partition: 1, Committed: 5, LogStart: 0, LogEnd: 5, Lag: 0},
			{Topic: "orders", Partition: 2, Committed: -1, LogStart: 0, LogEnd: 0, Lag: -1},
		}
		if len(d.Partitions) != len(want) {
			t.Fatalf("partitions: %+v", d.Partitions)
		}
		for i, w := range want {
			w.MemberID, w.ClientID, w.Host = m.MemberID, m.ClientID, m.Host
			if d.Partitions[i] != w {
				t.Errorf("partition %d: %+v, want %+v", i, d.Partitions[i], w)
			}
		}
		if d.TotalLag != 3 || len(d.TopicLags) != 1 || d.TopicLags[0] != (groupTopicLag{"orders", 3}) {
			t.Errorf("totals: %d %+v", d.TotalLag, d.TopicLags)
		}
		r := mustRun(t, addr, "", "group", "describe", "g1")
		for _, w := range []string{"STATE", "Stable", "TOTAL-LAG", "CURRENT-OFFSET", "LOG-END-OFFSET", "test-consumer", "MEMBERS"} {
			if !strings.Contains(r.stdout, w) {
				t.Errorf("describe text lacks %q:\n%s", w, r.stdout)
			}
		}

		rows := listGroupsJSON(t, addr)
		if g, ok := rows["g1"]; !ok || g.Type != "classic" || g.ProtocolType != "consumer" || g.State != "Stable" || g.Members != 1 {
			t.Errorf("list: %+v", rows)
		}
		r = mustRun(t, addr, "", "group", "list")
		if !strings.HasPrefix(r.stdout, "GROUP") || !strings.Contains(r.stdout, "g1") {
			t.Errorf("list text:\n%s", r.stdout)
		}

		// A live member would overwrite a reset with its next commit, and
		// the coordinator refuses to delete a group with members.
		r = run(t, addr, "", "group", "reset-offsets", "g1", "--topic", "orders", "--to-earliest", "--execute")
		if !errors.Is(r.err, ErrGroupActive) || !strings.Contains(r.err.Error(), "Stable") {
			t.Errorf("reset of an active group: %v", r.err)
		}
		r = run(t, addr, "", "group", "delete", "g1")
		if !errors.Is(r.err, ErrFailed) || !strings.Contains(r.stdout, "NON_EMPTY_GROUP") {
			t.Errorf("delete of an active group: %v\n%s", r.err, r.stdout)
		}
		if got := committed(t, adm, "g1", "orders"); !maps.Equal(got, map[int32]int64{0: 7, 1: 5}) {
			t.Fatalf("refused operations changed the commits: %v", got)
		}

		member.Close()
		closed = true
		d = waitState(t, addr, "g1", "Empty")
		if len(d.Members) != 0 || d.TotalLag != 3 || len(d.Partitions) != 2 {
			t.Errorf("empty group: %+v", d)
		}
		if rows := listGroupsJSON(t, addr, "--state", "empty"); rows["g1"].State != "Empty" || rows["g1"].Members != 0 {
			t.Errorf("list --state empty: %+v", rows)
		}
		if rows := listGroupsJSON(t, addr, "--state", "Stable,PreparingRebalance"); len(rows) != 0 {
			t.Errorf("list --state Stable: %+v", rows)
		}

		after := base.Add(3500 * time.Millisecond).Format(time.RFC3339Nano)
		future := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
		cases := []struct {
			name string
			args []string
			want map[int32]int64 // all commits after --execute
		}{
			{"earliest", []string{"--topic", "orders", "--to-earliest"}, map[int32]int64{0: 0, 1: 0, 2: 0}},
			{"latest one partition", []string{"--topic", "orders:0", "--to-latest"}, map[int32]int64{0: 10, 1: 0, 2: 0}},
			{"offset clamped to end", []string{"--topic", "orders", "--to-offset", "4"}, map[int32]int64{0: 4, 1: 4, 2: 0}},
			{"offset past end", []string{"--topic", "orders:1", "--to-offset", "100"}, map[int32]int64{0: 4, 1: 5, 2: 0}},
			{"shift back", []string{"--topic", "orders", "--shift-by", "-3"}, map[int32]int64{0: 1, 1: 2, 2: 0}},
			{"shift back past start", []string{"--topic", "orders:0,1", "--shift-by=-100"}, map[int32]int64{0: 0, 1: 0, 2: 0}},
			{"shift forward past end", []string{"--topic", "orders:0", "--shift-by", "100"}, map[int32]int64{0: 10, 1: 0, 2: 0}},
			{"datetime", []string{"--topic", "orders", "--to-datetime", after}, map[int32]int64{0: 4, 1: 4, 2: 0}},
			{"datetime after all records", []string{"--topic", "orders:1", "--to-datetime", future}, map[int32]int64{0: 4, 1: 5, 2: 0}},
			{"all topics", []string{"--all-topics", "--to-earliest"}, map[int32]int64{0: 0, 1: 0, 2: 0}},
		}
		prev := committed(t, adm, "g1", "orders")
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				args := append([]string{"group", "reset-offsets", "g1", "--format", "json"}, c.args...)
				r := mustRun(t, addr, "", args...)
				var plan []resetRow
				if err := json.Unmarshal([]byte(r.stdout), &plan); err != nil || len(plan) == 0 {
					t.Fatalf("plan json (%v):\n%s", err, r.stdout)
				}
				for _, row := range plan {
					cur, ok := prev[row.Partition]
					if !ok {
						cur = -1
					}
					if row.Group != "g1" || row.Topic != "orders" || row.New != c.want[row.Partition] || row.Current != cur || row.Status != "" {
						t.Errorf("dry run row %+v, want new %d current %d", row, c.want[row.Partition], cur)
					}
				}
				if !strings.Contains(r.stderr, "dry run") {
					t.Errorf("dry run stderr: %q", r.stderr)
				}
				if got := committed(t, adm, "g1", "orders"); !maps.Equal(got, prev) {
					t.Fatalf("dry run committed: %v, was %v", got, prev)
				}
				r = mustRun(t, addr, "", append(args[:len(args):len(args)], "--execute")...)
				if err := json.Unmarshal([]byte(r.stdout), &plan); err != nil || len(plan) == 0 || plan[0].Status != "OK" {
					t.Fatalf("execute json (%v):\n%s", err, r.stdout)
				}
				if got := committed(t, adm, "g1", "orders"); !maps.Equal(got, c.want) {
					t.Fatalf("after --execute: %v, want %v", got, c.want)
				}
			})
			prev = committed(t, adm, "g1", "orders")
		}
		r = mustRun(t, addr, "", "group", "reset-offsets", "g1", "--topic", "orders", "--to-latest", "--execute")
		for _, w := range []string{"NEW-OFFSET", "STATUS", "OK"} {
			if !strings.Contains(r.stdout, w) {
				t.Errorf("reset text lacks %q:\n%s", w, r.stdout)
			}
		}
		if d := describeGroupJSON(t, addr, "g1"); d.TotalLag != 0 {
			t.Errorf("lag after --to-latest: %+v", d)
		}

		// A group that does not exist yet can be given offsets (Kafka's
		// tool allows it: it is how a new group is told where to start),
		// but there is nothing to shift from.
		r = run(t, addr, "", "group", "reset-offsets", "fresh", "--topic", "orders", "--shift-by", "1")
		if !errors.Is(r.err, ErrFailed) || !strings.Contains(r.err.Error(), "nothing committed") {
			t.Errorf("shift with no commits: %v", r.err)
		}
		mustRun(t, addr, "", "group", "reset-offsets", "fresh", "--topic", "orders:0", "--to-offset", "6", "--execute")
		if got := committed(t, adm, "fresh", "orders"); !maps.Equal(got, map[int32]int64{0: 6}) {
			t.Errorf("fresh group commits: %v", got)
		}

		mustRun(t, addr, "", "group", "delete", "g1", "fresh")
		r = run(t, addr, "", "group", "describe", "g1")
		if !errors.Is(r.err, ErrGroupNotFound) || !strings.Contains(r.stdout, "does not exist") {
			t.Errorf("describe after delete: %v\n%s", r.err, r.stdout)
		}
		if rows := listGroupsJSON(t, addr); len(rows) != 0 {
			t.Errorf("groups left after delete: %+v", rows)
		}
	})
}

func TestGroupErrors(t *testing.T) {
	eachBroker(t, func(t *testing.T, addr string) {
		mustRun(t, addr, "", "topic", "create", "t1", "-p", "2")
		r := run(t, addr, "", "group", "describe", "nosuch")
		if !errors.Is(r.err, ErrGroupNotFound) || !strings.Contains(r.err.Error(), "nosuch") || !strings.Contains(r.stdout, "does not exist") {
			t.Errorf("describe unknown group: %v\n%s", r.err, r.stdout)
		}
		r = run(t, addr, "", "group", "delete", "nosuch")
		if !errors.Is(r.err, ErrFailed) || !strings.Contains(r.stdout, "GROUP_ID_NOT_FOUND") {
			t.Errorf("delete unknown group: %v\n%s", r.err, r.stdout)
		}
		if r = mustRun(t, addr, "", "group", "list"); strings.Count(r.stdout, "\n") != 1 {
			t.Errorf("list with no groups:\n%s", r.stdout)
		}
		for _, c := range []struct {
			args []string
			want string
		}{
			{[]string{"group", "list", "--state", "sleepy"}, "sleepy"},
			{[]string{"group", "reset-offsets", "g", "--topic", "t1"}, "give one of"},
			{[]string{"group", "reset-offsets", "g", "--topic", "t1", "--to-earliest", "--to-offset", "3"}, "only one of --to-earliest, --to-offset"},
			{[]string{"group", "reset-offsets", "g", "--to-latest"}, "--all-topics"},
			{[]string{"group", "reset-offsets", "g", "--to-latest", "--topic", "t1", "--all-topics"}, "not both"},
			{[]string{"group", "reset-offsets", "g", "--topic", "t1:x", "--to-latest"}, `partition "x"`},
			{[]string{"group", "reset-offsets", "g", "--topic", "t1", "--to-datetime", "yesterday"}, "yesterday"},
			{[]string{"group", "reset-offsets", "g", "--topic", "t1", "--to-latest", "--execute", "--dry-run"}, "--dry-run"},
			{[]string{"group", "reset-offsets", "g", "--topic", "t1:5", "--to-latest"}, "no partition 5"},
			{[]string{"group", "reset-offsets", "g", "--topic", "missing", "--to-latest"}, "UNKNOWN_TOPIC_OR_PARTITION"},
			{[]string{"group", "describe", "g", "--format", "yaml"}, "yaml"},
		} {
			r := run(t, addr, "", c.args...)
			if !errors.Is(r.err, ErrUsage) || !strings.Contains(r.err.Error(), c.want) {
				t.Errorf("%v: err %v, want ErrUsage mentioning %q", c.args, r.err, c.want)
			}
		}
		// Every problem is reported at once.
		r = run(t, addr, "", "group", "reset-offsets", "g", "--to-datetime", "soon")
		if r.err == nil || !strings.Contains(r.err.Error(), "soon") || !strings.Contains(r.err.Error(), "--all-topics") {
			t.Errorf("several problems: %v", r.err)
		}
	})
}

// TestGroupNextGen describes a KIP-848 group, which only ConsumerGroupDescribe
// can: the member's assignment comes from the coordinator, not the client.
func TestGroupNextGen(t *testing.T) {
	eachBroker(t, func(t *testing.T, addr string) {
		mustRun(t, addr, "", "topic", "create", "ng", "-p", "2")
		produceAt(t, addr, "ng", 0, 4, time.Now().Add(-time.Minute))
		produceAt(t, addr, "ng", 1, 2, time.Now().Add(-time.Minute))
		member := startMember(t, addr, "g848", "ng", 6, map[int32]int64{0: 1, 1: 2},
			kgo.ServerSideBalancer(), kgo.Balancers(kgo.RangeBalancer()))
		defer member.Close()
		if rows := listGroupsJSON(t, addr); rows["g848"].Type != "consumer" || rows["g848"].Members != 1 {
			t.Errorf("list: %+v", rows)
		}
		d := describeGroupJSON(t, addr, "g848")
		if d.Type != "consumer" || len(d.Members) != 1 || d.TotalLag != 3 || len(d.Partitions) != 2 ||
			d.Partitions[0].Lag != 3 || d.Partitions[0].MemberID != d.Members[0].MemberID || d.Partitions[1].Lag != 0 {
			t.Errorf("describe: %+v", d)
		}
		r := run(t, addr, "", "group", "reset-offsets", "g848", "--all-topics", "--to-earliest")
		if !errors.Is(r.err, ErrGroupActive) {
			t.Errorf("reset of an active KIP-848 group: %v", r.err)
		}
	})
}

func TestResetTarget(t *testing.T) {
	const start, end = 10, 20
	cases := []struct {
		spec      resetSpec
		committed int64
		atTime    int64
		want      int64
		err       error
	}{
		{resetSpec{mode: resetEarliest}, 15, -1, 10, nil},
		{resetSpec{mode: resetLatest}, -1, -1, 20, nil},
		{resetSpec{mode: resetOffset, n: 12}, -1, -1, 12, nil},
		{resetSpec{mode: resetOffset, n: 3}, -1, -1, 10, nil},
		{resetSpec{mode: resetOffset, n: 30}, -1, -1, 20, nil},
		{resetSpec{mode: resetShift, n: 2}, 15, -1, 17, nil},
		{resetSpec{mode: resetShift, n: -9}, 15, -1, 10, nil},
		{resetSpec{mode: resetShift, n: math.MaxInt64}, 15, -1, 20, nil},
		{resetSpec{mode: resetShift, n: math.MinInt64}, 15, -1, 10, nil},
		{resetSpec{mode: resetShift, n: 1}, -1, -1, 0, errNoCommit},
		{resetSpec{mode: resetDatetime}, -1, 13, 13, nil},
		{resetSpec{mode: resetDatetime}, -1, -1, 20, nil},
		{resetSpec{mode: resetDatetime}, -1, 2, 10, nil},
		{resetSpec{}, -1, -1, 0, ErrUsage},
	}
	for _, c := range cases {
		got, err := c.spec.target(c.committed, start, end, c.atTime)
		if !errors.Is(err, c.err) || (err == nil && got != c.want) {
			t.Errorf("%+v committed %d at %d: %d, %v; want %d, %v", c.spec, c.committed, c.atTime, got, err, c.want, c.err)
		}
	}
}

func TestParseTopicSpecAndDatetime(t *testing.T) {
	good := map[string]topicSpec{
		"t": {topic: "t"}, "a.b-c_d:0": {topic: "a.b-c_d", parts: []int32{0}}, "t:1, 2,3": {topic: "t", parts: []int32{1, 2, 3}},
	}
	for in, want := range good {
		got, err := parseTopicSpec(in)
		if err != nil || got.topic != want.topic || fmt.Sprint(got.parts) != fmt.Sprint(want.parts) {
			t.Errorf("parseTopicSpec(%q) = %+v, %v", in, got, err)
		}
	}
	for _, in := range []string{"", ":1", "t:", "t:-1", "t:1,,2", "t:99999999999"} {
		if _, err := parseTopicSpec(in); !errors.Is(err, ErrUsage) {
			t.Errorf("parseTopicSpec(%q): %v, want ErrUsage", in, err)
		}
	}
	if got, err := parseDatetime("2024-05-01T12:00:00.5+02:00"); err != nil || got.UnixMilli() != 1714557600500 {
		t.Errorf("RFC 3339: %v %v", got, err)
	}
	if got, err := parseDatetime("2024-05-01T12:00:00.250"); err != nil || got.Location() != time.Local || got.Nanosecond() != 250e6 {
		t.Errorf("Kafka's local form: %v %v", got, err)
	}
	for _, in := range []string{"", "2024-05-01", "1714557600000", "now"} {
		if _, err := parseDatetime(in); !errors.Is(err, ErrUsage) {
			t.Errorf("parseDatetime(%q): %v", in, err)
		}
	}
}
