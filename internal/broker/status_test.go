package broker_test

import (
	"context"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-io/sluice/internal/broker"
	"github.com/sluice-io/sluice/internal/broker/brokertest"
)

// Operators' snapshots agree with what a workload did: offsets and sizes
// per partition, and a group's lag.
func TestStatusSnapshots(t *testing.T) {
	b := brokertest.Start(t)
	waitFor(t, 10*time.Second, "ready", func() bool { return b.Ready() == nil })
	createTopic(t, b, "st", 2, nil)
	cl := b.Client(t, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	produceN(t, cl, "st", 2, 10)
	var os kadm.Offsets
	os.Add(kadm.Offset{Topic: "st", Partition: 0, At: 4, LeaderEpoch: -1})
	if r, err := b.Admin(t).CommitOffsets(ctxT(t), "lagging", os); err != nil || r.Error() != nil {
		t.Fatalf("commit: %v %v", err, r.Error())
	}
	var found bool
	for _, ts := range b.Topics() {
		if ts.Name != "st" {
			continue
		}
		found = true
		for _, p := range ts.Partitions {
			if p.HighWatermark != 10 || p.LogStart != 0 || p.LastStable != 10 || p.SizeBytes <= 0 || p.Segments != 1 {
				t.Fatalf("partition status %+v", p)
			}
		}
	}
	if !found {
		t.Fatal("topic missing from Topics")
	}
	for _, g := range b.GroupsStatus() {
		if g.ID != "lagging" {
			continue
		}
		if len(g.Lag) != 1 || g.Lag[0].Committed != 4 || g.Lag[0].End != 10 || g.Lag[0].Lag != 6 || g.State != "Empty" {
			t.Fatalf("group status %+v", g)
		}
		return
	}
	t.Fatal("group missing from GroupsStatus")
}

// TopicConfigs lists what DescribeConfigs lists for the topic, with the
// same values and sources.
func TestStatusTopicConfigs(t *testing.T) {
	b := brokertest.Start(t, func(o *broker.Options) {
		o.TopicDefaults = map[string]string{"segment.ms": "3600000"}
	})
	createTopic(t, b, "cfg", 1, map[string]*string{"retention.ms": strp("1234")})
	if _, ok := b.TopicConfigs("nope"); ok {
		t.Error("configs of an unknown topic")
	}
	got, ok := b.TopicConfigs("cfg")
	if !ok || !sort.SliceIsSorted(got, func(i, j int) bool { return got[i].Name < got[j].Name }) {
		t.Fatalf("TopicConfigs %v %+v", ok, got)
	}
	byName := map[string]broker.ConfigStatus{}
	for _, c := range got {
		byName[c.Name] = c
	}
	for name, want := range map[string]broker.ConfigStatus{
		"retention.ms":   {Name: "retention.ms", Value: "1234", Source: "DYNAMIC_TOPIC_CONFIG"},
		"segment.ms":     {Name: "segment.ms", Value: "3600000", Source: "STATIC_BROKER_CONFIG"},
		"cleanup.policy": {Name: "cleanup.policy", Value: "delete", Source: "DEFAULT_CONFIG"},
	} {
		if byName[name] != want {
			t.Errorf("%s: %+v, want %+v", name, byName[name], want)
		}
	}
	rcs, err := b.Admin(t).DescribeTopicConfigs(ctxT(t), "cfg")
	if err != nil {
		t.Fatal(err)
	}
	rc, err := rcs.On("cfg", nil)
	if err != nil || rc.Err != nil {
		t.Fatalf("describe: %v %v", err, rc.Err)
	}
	if len(rc.Configs) != len(got) {
		t.Fatalf("DescribeConfigs lists %d configs, TopicConfigs %d", len(rc.Configs), len(got))
	}
	for _, c := range rc.Configs {
		if s := byName[c.Key]; s.Value != c.MaybeValue() || s.Source != c.Source.String() {
			t.Errorf("%s: TopicConfigs %+v, DescribeConfigs %q %v", c.Key, s, c.MaybeValue(), c.Source)
		}
	}
}

// A live kgo consumer shows up as a member with its client id and the
// partitions it was assigned, for a classic and a KIP-848 group.
func TestStatusGroupMembers(t *testing.T) {
	b := brokertest.Start(t)
	waitFor(t, 10*time.Second, "ready", func() bool { return b.Ready() == nil })
	createTopic(t, b, "gm", 3, nil)
	for _, v := range []groupVariant{groupVariants[0], groupVariants[2]} {
		t.Run(v.name, func(t *testing.T) {
			grp := "gm-" + v.name
			cl := b.Client(t, append([]kgo.Opt{kgo.ConsumerGroup(grp), kgo.ConsumeTopics("gm"), kgo.ClientID("cli-" + v.name)}, v.opts...)...)
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() {
				defer close(done)
				for ctx.Err() == nil {
					cl.PollFetches(ctx)
				}
			}()
			defer func() { cancel(); <-done }()
			var g broker.GroupStatus
			waitFor(t, 20*time.Second, "an assigned member", func() bool {
				for _, gs := range b.GroupsStatus() {
					if gs.ID == grp && len(gs.MemberList) == 1 && len(gs.MemberList[0].Assigned) == 1 && gs.State == "Stable" {
						g = gs
						return len(gs.MemberList[0].Assigned[0].Partitions) == 3
					}
				}
				return false
			})
			m := g.MemberList[0]
			if m.ClientID != "cli-"+v.name || m.ID == "" || m.Host == "" || m.Assigned[0].Topic != "gm" ||
				!slices.Equal(m.Assigned[0].Partitions, []int32{0, 1, 2}) {
				t.Errorf("member %+v", m)
			}
			if g.ProtocolType != "consumer" || g.Protocol == "" || g.Generation < 1 || g.Members != 1 {
				t.Errorf("group %+v", g)
			}
		})
	}
}
