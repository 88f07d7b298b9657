package broker_test

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/internal/broker"
	"github.com/sluice-io/sluice/internal/broker/brokertest"
)

// commitRequest commits offset n for partitions [0, parts) of topic.
func commitRequest(group, topic string, id [16]byte, parts int32, n int64) *kmsg.OffsetCommitRequest {
	req := kmsg.NewPtrOffsetCommitRequest()
	req.Group, req.Generation = group, -1
	rt := kmsg.NewOffsetCommitRequestTopic()
	rt.Topic, rt.TopicID = topic, id // v10 names topics by id
	for p := range parts {
		rp := kmsg.NewOffsetCommitRequestTopicPartition()
		rp.Partition, rp.Offset = p, n
		rt.Partitions = append(rt.Partitions, rp)
	}
	req.Topics = []kmsg.OffsetCommitRequestTopic{rt}
	return req
}

// BenchmarkOffsetCommit measures offset commits of 1,000 partitions each,
// acknowledged once durable, from 1 and from 8 groups at once. The baseline
// in the same run is an acks=all produce of a batch of 1,000 records of the
// same size to an ordinary topic: a commit is a batch of 1,000 records
// appended to the offsets topic, so the ratio is the coordinator's cost.
//
//	go test -run '^$' -bench OffsetCommit -benchtime 2s ./internal/broker
func BenchmarkOffsetCommit(b *testing.B) {
	const parts = 1000
	br := brokertest.Start(b)
	adm := br.Admin(b)
	if r, err := adm.CreateTopic(context.Background(), parts, 1, nil, "bc"); err != nil || r.Err != nil {
		b.Fatalf("create: %v %v", err, r.Err)
	}
	if r, err := adm.CreateTopic(context.Background(), 1, 1, nil, "base"); err != nil || r.Err != nil {
		b.Fatalf("create: %v %v", err, r.Err)
	}
	td, err := adm.ListTopics(context.Background(), "bc")
	if err != nil {
		b.Fatal(err)
	}
	id := td["bc"].ID
	for _, conc := range []int{1, 8} {
		b.Run(fmt.Sprintf("groups=%d", conc), func(b *testing.B) {
			cls := make([]*kgo.Client, conc)
			for i := range cls {
				cls[i] = br.Client(b, kgo.ProducerLinger(0), kgo.RequiredAcks(kgo.AllISRAcks()), kgo.ProducerBatchCompression(kgo.NoCompression()))
			}
			// One record per partition, as the offsets topic stores
			// them: ~60 bytes of key and ~40 of value. kgo owns a
			// record until it is acknowledged: one set per producer.
			recs := make([][]*kgo.Record, conc)
			for c := range recs {
				for range parts {
					recs[c] = append(recs[c], &kgo.Record{Topic: "base", Key: make([]byte, 60), Value: make([]byte, 40)})
				}
			}
			run := func(op func(c int, n int64) error) time.Duration {
				start := time.Now()
				var wg sync.WaitGroup
				per := max(b.N/conc, 1)
				for c := range conc {
					wg.Add(1)
					go func() {
						defer wg.Done()
						for n := range per {
							if err := op(c, int64(n)); err != nil {
								b.Error(err)
								return
							}
						}
					}()
				}
				wg.Wait()
				return time.Since(start) / time.Duration(per*conc)
			}
			b.ResetTimer()
			commit := run(func(c int, n int64) error {
				resp, err := commitRequest(fmt.Sprintf("bg-%d", c), "bc", id, parts, n).RequestWith(context.Background(), cls[c])
				if err != nil {
					return err
				}
				for _, t := range resp.Topics {
					for _, p := range t.Partitions {
						if p.ErrorCode != 0 {
							return fmt.Errorf("commit error %d", p.ErrorCode)
						}
					}
				}
				return nil
			})
			b.StopTimer()
			produce := run(func(c int, _ int64) error { return cls[c].ProduceSync(context.Background(), recs[c]...).FirstErr() })
			b.ReportMetric(float64(time.Second)/float64(commit), "commits/s")
			b.ReportMetric(float64(time.Second)/float64(produce), "base-produces/s")
			b.ReportMetric(float64(produce)/float64(commit), "commit/produce-speed")
		})
	}
}

// rebalanceTime starts 10 members of a group on addr, waits until they all
// own partitions, then measures how long the group takes to be stable again
// with every member owning partitions after one more member joins.
func rebalanceTime(b *testing.B, addr, group string, opts ...kgo.Opt) time.Duration {
	const members = 10
	topic := "rb-" + group
	admCl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		b.Fatal(err)
	}
	defer admCl.Close()
	req := kmsg.NewPtrCreateTopicsRequest()
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = topic, 64, 1
	req.Topics = []kmsg.CreateTopicsRequestTopic{rt}
	if _, err := req.RequestWith(context.Background(), admCl); err != nil {
		b.Fatal(err)
	}
	var mu sync.Mutex
	owned := map[int]int{} // member -> partitions owned
	gen := map[int]int{}   // member -> assignments seen
	newMember := func(i int) *kgo.Client {
		cl, err := kgo.NewClient(append([]kgo.Opt{
			kgo.SeedBrokers(addr), kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic),
			kgo.HeartbeatInterval(100 * time.Millisecond),
			kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, a map[string][]int32) {
				mu.Lock()
				owned[i] += len(a[topic])
				gen[i]++
				mu.Unlock()
			}),
			kgo.OnPartitionsRevoked(func(_ context.Context, _ *kgo.Client, r map[string][]int32) {
				mu.Lock()
				owned[i] -= len(r[topic])
				mu.Unlock()
			}),
		}, opts...)...)
		if err != nil {
			b.Fatal(err)
		}
		return cl
	}
	stable := func(n int) bool {
		mu.Lock()
		defer mu.Unlock()
		total := 0
		for i := range n {
			if owned[i] == 0 {
				return false
			}
			total += owned[i]
		}
		return total == 64
	}
	wait := func(n int) {
		deadline := time.Now().Add(60 * time.Second)
		for !stable(n) {
			if time.Now().After(deadline) {
				b.Fatalf("group %s not stable with %d members", group, n)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	var cls []*kgo.Client
	defer func() {
		for _, cl := range cls {
			cl.Close()
		}
	}()
	for i := range members {
		cls = append(cls, newMember(i))
	}
	wait(members)
	start := time.Now()
	cls = append(cls, newMember(members))
	wait(members + 1)
	return time.Since(start)
}

// BenchmarkRebalance measures the time a 10-member group takes to absorb an
// eleventh member (until every member owns partitions again), against
// franz-go's kfake in the same run.
//
//	go test -run '^$' -bench Rebalance -benchtime 5x ./internal/broker
func BenchmarkRebalance(b *testing.B) {
	// KIP-848 members heartbeat at the interval the broker gives them:
	// the same 100 ms as the classic members' on both brokers.
	br := brokertest.Start(b, func(o *broker.Options) {
		o.Group.MinSessionTimeout = time.Second
		o.Group.Consumer.HeartbeatInterval = 100 * time.Millisecond
	})
	fake, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "warm"),
		kfake.BrokerConfigs(map[string]string{"group.consumer.heartbeat.interval.ms": "100"}))
	if err != nil {
		b.Fatal(err)
	}
	defer fake.Close()
	for _, bal := range []struct {
		name string
		opt  kgo.Opt
	}{
		{"eager-range", kgo.Balancers(kgo.RangeBalancer())},
		{"cooperative-sticky", kgo.Balancers(kgo.CooperativeStickyBalancer())},
		{"kip848", kgo.ServerSideBalancer()},
	} {
		b.Run(bal.name, func(b *testing.B) {
			var ours, theirs []time.Duration
			for i := range b.N {
				ours = append(ours, rebalanceTime(b, br.Addr(), fmt.Sprintf("s-%s-%d", bal.name, i), bal.opt))
				theirs = append(theirs, rebalanceTime(b, fake.ListenAddrs()[0], fmt.Sprintf("k-%s-%d", bal.name, i), bal.opt))
			}
			med := func(d []time.Duration) time.Duration {
				sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
				return d[len(d)/2]
			}
			b.ReportMetric(float64(med(ours).Milliseconds()), "sluice-ms")
			b.ReportMetric(float64(med(theirs).Milliseconds()), "kfake-ms")
			b.ReportMetric(float64(med(theirs))/float64(med(ours)), "speedup")
		})
	}
}
