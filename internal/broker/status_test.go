package broker_test

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

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
