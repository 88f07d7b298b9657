package broker_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/internal/batch"
	"github.com/sluice-io/sluice/internal/broker"
	"github.com/sluice-io/sluice/internal/broker/brokertest"
)

func TestCreateTopics(t *testing.T) {
	b := brokertest.Start(t, func(o *broker.Options) { o.NumPartitions = 4 })
	adm := b.Admin(t)
	ctx := ctxT(t)

	// validate_only creates nothing.
	resp, err := adm.ValidateCreateTopics(ctx, 3, 1, nil, "v")
	if err != nil || resp["v"].Err != nil {
		t.Fatalf("validate: %v %v", err, resp)
	}
	if td, _ := adm.ListTopics(ctx); td.Has("v") {
		t.Fatal("validate_only created the topic")
	}
	// -1 partitions and replication factor take the defaults.
	cr, err := adm.CreateTopic(ctx, -1, -1, map[string]*string{"retention.ms": strp("1000")}, "d")
	if err != nil || cr.Err != nil || cr.NumPartitions != 4 || cr.ReplicationFactor != 1 || cr.ID == (kadm.TopicID{}) {
		t.Fatalf("defaults: %v %+v", err, cr)
	}
	for _, tc := range []struct {
		name     string
		parts    int32
		rf       int16
		configs  map[string]*string
		want     *kerr.Error
		inMesage string
	}{
		{"rf", 1, 3, nil, kerr.InvalidReplicationFactor, "larger than the 1 broker"},
		{"d", 1, 1, nil, kerr.TopicAlreadyExists, ""},
		{"bad/name", 1, 1, nil, kerr.InvalidTopicException, ""},
		{"zero", 0, 1, nil, kerr.InvalidPartitions, ""},
		{"cfg", 1, 1, map[string]*string{"no.such": strp("1")}, kerr.InvalidConfig, "unknown topic config"},
		{"cmp", 1, 1, map[string]*string{"cleanup.policy": strp("shred")}, kerr.InvalidConfig, "cleanup.policy"},
		{"badval", 1, 1, map[string]*string{"retention.ms": strp("soon")}, kerr.InvalidConfig, "retention.ms"},
	} {
		r, err := adm.CreateTopic(ctx, tc.parts, tc.rf, tc.configs, tc.name)
		if err == nil {
			err = r.Err
		}
		if !errors.Is(err, tc.want) || !strings.Contains(r.ErrMessage, tc.inMesage) {
			t.Errorf("%s: %v (%q), want %v with %q", tc.name, err, r.ErrMessage, tc.want, tc.inMesage)
		}
	}
	// Metadata auto-creates with num.partitions.
	cl := b.Client(t, kgo.DefaultProduceTopic("auto"), kgo.AllowAutoTopicCreation())
	if err := cl.ProduceSync(ctx, kgo.StringRecord("x")).FirstErr(); err != nil {
		t.Fatal(err)
	}
	td, err := adm.ListTopics(ctx, "auto")
	if err != nil || len(td["auto"].Partitions) != 4 {
		t.Fatalf("auto-created: %v %+v", err, td)
	}
}

func TestAutoCreateDisabled(t *testing.T) {
	b := brokertest.Start(t, func(o *broker.Options) { o.DisableAutoCreateTopics = true })
	rc := dialRaw(t, b.Addr())
	req := kmsg.NewPtrMetadataRequest()
	req.Version = 12
	req.AllowAutoTopicCreation = true
	mt := kmsg.NewMetadataRequestTopic()
	mt.Topic = strp("nope")
	req.Topics = append(req.Topics, mt)
	resp := rc.do(req).(*kmsg.MetadataResponse)
	if !errors.Is(kerr.ErrorForCode(resp.Topics[0].ErrorCode), kerr.UnknownTopicOrPartition) {
		t.Fatalf("metadata for unknown topic: %+v", resp.Topics[0])
	}
	if len(resp.Brokers) != 1 || resp.ControllerID != resp.Brokers[0].NodeID {
		t.Fatalf("brokers %+v controller %d", resp.Brokers, resp.ControllerID)
	}
}

func TestDeleteTopics(t *testing.T) {
	b := brokertest.Start(t)
	adm := b.Admin(t)
	ctx := ctxT(t)
	createTopic(t, b, "gone", 2, nil)
	createTopic(t, b, "byid", 1, nil)
	cl := b.Client(t, kgo.DefaultProduceTopic("gone"))
	if err := cl.ProduceSync(ctx, kgo.StringRecord("x")).FirstErr(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(b.Dir, "gone-0")); err != nil {
		t.Fatalf("partition directory: %v", err)
	}
	dr, err := adm.DeleteTopics(ctx, "gone", "never")
	if err != nil {
		t.Fatal(err)
	}
	if dr["gone"].Err != nil || !errors.Is(dr["never"].Err, kerr.UnknownTopicOrPartition) {
		t.Fatalf("delete: %+v", dr)
	}
	for _, d := range []string{"gone-0", "gone-1"} {
		if _, err := os.Stat(filepath.Join(b.Dir, d)); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("%s still on disk: %v", d, err)
		}
	}
	// By topic ID (v6).
	td, _ := adm.ListTopics(ctx, "byid")
	rc := dialRaw(t, b.Addr())
	req := kmsg.NewPtrDeleteTopicsRequest()
	req.Version = 6
	req.Topics = []kmsg.DeleteTopicsRequestTopic{{TopicID: td["byid"].ID}, {TopicID: [16]byte{7}}}
	resp := rc.do(req).(*kmsg.DeleteTopicsResponse)
	if resp.Topics[0].ErrorCode != 0 || resp.Topics[0].Topic == nil || *resp.Topics[0].Topic != "byid" {
		t.Fatalf("delete by id: %+v", resp.Topics[0])
	}
	if !errors.Is(kerr.ErrorForCode(resp.Topics[1].ErrorCode), kerr.UnknownTopicID) {
		t.Fatalf("delete unknown id: %+v", resp.Topics[1])
	}
	// The name can be used again, with a new ID and no old data.
	createTopic(t, b, "gone", 1, nil)
	if end := endOffset(t, b, "gone", 0); end != 0 {
		t.Fatalf("recreated topic has end offset %d", end)
	}
}

func TestDescribeAndAlterConfigs(t *testing.T) {
	b := brokertest.Start(t, func(o *broker.Options) {
		o.TopicDefaults = map[string]string{"segment.bytes": "1048576"}
	})
	adm := b.Admin(t)
	ctx := ctxT(t)
	createTopic(t, b, "c", 1, map[string]*string{"retention.ms": strp("3600000")})
	source := func(name string) (string, kmsg.ConfigSource) {
		t.Helper()
		rcs, err := adm.DescribeTopicConfigs(ctx, "c")
		if err != nil {
			t.Fatal(err)
		}
		rc, err := rcs.On("c", nil)
		if err != nil || rc.Err != nil {
			t.Fatalf("describe: %v %v", err, rc.Err)
		}
		for _, c := range rc.Configs {
			if c.Key == name {
				return c.MaybeValue(), c.Source
			}
		}
		t.Fatalf("%s not described", name)
		return "", 0
	}
	if v, s := source("retention.ms"); v != "3600000" || s != kmsg.ConfigSourceDynamicTopicConfig {
		t.Fatalf("retention.ms %s %v", v, s)
	}
	if v, s := source("segment.bytes"); v != "1048576" || s != kmsg.ConfigSourceStaticBrokerConfig {
		t.Fatalf("segment.bytes %s %v", v, s)
	}
	if v, s := source("max.message.bytes"); v != "1048588" || s != kmsg.ConfigSourceDefaultConfig {
		t.Fatalf("max.message.bytes %s %v", v, s)
	}
	// Incremental SET takes effect live on the partition.
	ar, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{
		{Op: kadm.SetConfig, Name: "max.message.bytes", Value: strp("5000")},
		{Op: kadm.DeleteConfig, Name: "retention.ms"},
	}, "c")
	if err != nil || ar[0].Err != nil {
		t.Fatalf("alter: %v %+v", err, ar)
	}
	if v, s := source("max.message.bytes"); v != "5000" || s != kmsg.ConfigSourceDynamicTopicConfig {
		t.Fatalf("after set: %s %v", v, s)
	}
	if _, s := source("retention.ms"); s != kmsg.ConfigSourceDefaultConfig {
		t.Fatalf("after delete: %v", s)
	}
	rc := dialRaw(t, b.Addr())
	resp := rc.do(produceReq(9, "c", 0, buildBatch(t, batch.CodecNone, time.Now().UnixMilli(), 1, 8000))).(*kmsg.ProduceResponse)
	if !errors.Is(kerr.ErrorForCode(resp.Topics[0].Partitions[0].ErrorCode), kerr.MessageTooLarge) {
		t.Fatalf("the new max.message.bytes is not in effect: %v", kerr.ErrorForCode(resp.Topics[0].Partitions[0].ErrorCode))
	}
	// APPEND on a non-list, a bad value, and an unknown policy are refused.
	for _, ac := range []kadm.AlterConfig{
		{Op: kadm.AppendConfig, Name: "retention.ms", Value: strp("1")},
		{Op: kadm.SetConfig, Name: "segment.bytes", Value: strp("x")},
		{Op: kadm.AppendConfig, Name: "cleanup.policy", Value: strp("shred")},
	} {
		ar, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{ac}, "c")
		if err != nil || !errors.Is(ar[0].Err, kerr.InvalidConfig) {
			t.Fatalf("%+v: %v %v", ac, err, ar[0].Err)
		}
	}
	// The non-incremental AlterConfigs replaces the whole set.
	sr, err := adm.AlterTopicConfigsState(ctx, []kadm.AlterConfig{{Name: "retention.bytes", Value: strp("123456")}}, "c")
	if err != nil || sr[0].Err != nil {
		t.Fatalf("alter state: %v %+v", err, sr)
	}
	if v, s := source("max.message.bytes"); v != "1048588" || s != kmsg.ConfigSourceDefaultConfig {
		t.Fatalf("AlterConfigs kept max.message.bytes: %s %v", v, s)
	}
	if p := b.Engine().Partitions()[0]; p.Config().RetentionBytes != 123456 {
		t.Fatalf("partition retention.bytes %d", p.Config().RetentionBytes)
	}
	// Broker configs are described, and refused for alteration.
	bcs, err := adm.DescribeBrokerConfigs(ctx)
	if err != nil || len(bcs) != 1 || bcs[0].Err != nil {
		t.Fatalf("describe broker: %v %+v", err, bcs)
	}
	found := false
	for _, c := range bcs[0].Configs {
		if c.Key == "log.segment.bytes" && c.MaybeValue() == "1048576" && c.Source == kmsg.ConfigSourceStaticBrokerConfig {
			found = true
		}
	}
	if !found {
		t.Fatal("log.segment.bytes not described as a static broker config")
	}
	br, err := adm.AlterBrokerConfigs(ctx, []kadm.AlterConfig{{Name: "num.partitions", Value: strp("3")}})
	if err != nil || br[0].Err == nil {
		t.Fatalf("altering a broker config: %v %+v", err, br)
	}
}

func TestCreatePartitionsAndDeleteRecords(t *testing.T) {
	b := brokertest.Start(t)
	adm := b.Admin(t)
	ctx := ctxT(t)
	createTopic(t, b, "cp", 1, nil)
	r, err := adm.CreatePartitions(ctx, 2, "cp")
	if err != nil || r["cp"].Err != nil {
		t.Fatalf("create partitions: %v %+v", err, r)
	}
	r, err = adm.UpdatePartitions(ctx, 2, "cp")
	if err != nil || !errors.Is(r["cp"].Err, kerr.InvalidPartitions) {
		t.Fatalf("shrink to 2: %v %+v", err, r)
	}
	td, _ := adm.ListTopics(ctx, "cp")
	if len(td["cp"].Partitions) != 3 {
		t.Fatalf("partitions %d", len(td["cp"].Partitions))
	}
	cl := b.Client(t, kgo.DefaultProduceTopic("cp"), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	for i := 0; i < 10; i++ {
		if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte("v"), Partition: 2}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	offs := kadm.Offsets{}
	offs.Add(kadm.Offset{Topic: "cp", Partition: 2, At: 4})
	offs.Add(kadm.Offset{Topic: "cp", Partition: 0, At: 5})
	dr, err := adm.DeleteRecords(ctx, offs)
	if err != nil {
		t.Fatal(err)
	}
	if d, _ := dr.Lookup("cp", 2); d.Err != nil || d.LowWatermark != 4 {
		t.Fatalf("delete records: %+v", d)
	}
	if d, _ := dr.Lookup("cp", 0); !errors.Is(d.Err, kerr.OffsetOutOfRange) {
		t.Fatalf("delete past the end: %+v", d)
	}
	starts, _ := adm.ListStartOffsets(ctx, "cp")
	if s, _ := starts.Lookup("cp", 2); s.Offset != 4 {
		t.Fatalf("log start %d", s.Offset)
	}
	// Reading below the log start is out of range.
	rc := dialRaw(t, b.Addr())
	resp := rc.do(fetchReq(11, "cp", []int32{2}, 1, 0, 0, 1<<20, 1<<20)).(*kmsg.FetchResponse)
	if p := resp.Topics[0].Partitions[0]; !errors.Is(kerr.ErrorForCode(p.ErrorCode), kerr.OffsetOutOfRange) || p.LogStartOffset != 4 {
		t.Fatalf("fetch below log start: %+v", p)
	}
}

func TestClusterAndLogDirs(t *testing.T) {
	b := brokertest.Start(t, func(o *broker.Options) { o.NodeID = 7 })
	adm := b.Admin(t)
	ctx := ctxT(t)
	createTopic(t, b, "ld", 2, nil)
	meta, err := adm.BrokerMetadata(ctx)
	if err != nil || len(meta.Brokers) != 1 || meta.Brokers[0].NodeID != 7 || meta.Controller != 7 {
		t.Fatalf("cluster: %v %+v", err, meta)
	}
	dc := kmsg.NewPtrDescribeClusterRequest()
	dc.Version = 1
	dc.EndpointType = 1
	resp := dialRaw(t, b.Addr()).do(dc).(*kmsg.DescribeClusterResponse)
	if resp.ErrorCode != 0 || len(resp.Brokers) != 1 || resp.ControllerID != 7 {
		t.Fatalf("describe cluster: %+v", resp)
	}
	dirs, err := adm.DescribeAllLogDirs(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	dirs.Each(func(d kadm.DescribedLogDir) {
		if d.Err != nil || d.Dir != b.Dir {
			t.Errorf("log dir %+v", d)
		}
		d.Topics.Each(func(p kadm.DescribedLogDirPartition) { n++ })
	})
	if n != 2 {
		t.Fatalf("%d partitions in log dirs", n)
	}
	// OffsetForLeaderEpoch: epoch 0 ends at the log end.
	req := kmsg.NewPtrOffsetForLeaderEpochRequest()
	req.Version = 3
	req.ReplicaID = -1
	rt := kmsg.NewOffsetForLeaderEpochRequestTopic()
	rt.Topic = "ld"
	for _, e := range []int32{0, 5} {
		rp := kmsg.NewOffsetForLeaderEpochRequestTopicPartition()
		rp.Partition, rp.LeaderEpoch, rp.CurrentLeaderEpoch = 0, e, -1
		rt.Partitions = append(rt.Partitions, rp)
	}
	req.Topics = append(req.Topics, rt)
	oe := dialRaw(t, b.Addr()).do(req).(*kmsg.OffsetForLeaderEpochResponse)
	if p := oe.Topics[0].Partitions[0]; p.ErrorCode != 0 || p.LeaderEpoch != 0 || p.EndOffset != 0 {
		t.Fatalf("epoch 0: %+v", p)
	}
	if p := oe.Topics[0].Partitions[1]; p.EndOffset != -1 || p.LeaderEpoch != -1 {
		t.Fatalf("epoch 5: %+v", p)
	}
}

// Restarting keeps topics, IDs, configs and data.
func TestRestartKeepsTopicsAndData(t *testing.T) {
	b := brokertest.Start(t)
	adm := b.Admin(t)
	ctx := ctxT(t)
	createTopic(t, b, "keep", 3, map[string]*string{"retention.ms": strp("86400000")})
	td, _ := adm.ListTopics(ctx, "keep")
	id := td["keep"].ID
	cl := b.Client(t, kgo.DefaultProduceTopic("keep"))
	var recs []*kgo.Record
	for i := 0; i < 50; i++ {
		recs = append(recs, kgo.StringRecord("v"))
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	b.Restart()
	td, err := adm.ListTopics(ctx, "keep")
	if err != nil || td["keep"].ID != id || len(td["keep"].Partitions) != 3 {
		t.Fatalf("after restart: %v %+v", err, td["keep"])
	}
	if got := consumeN(t, b, "keep", 50); len(got) != 50 {
		t.Fatalf("after restart: %d records", len(got))
	}
	rcs, _ := adm.DescribeTopicConfigs(ctx, "keep")
	rc, _ := rcs.On("keep", nil)
	for _, c := range rc.Configs {
		if c.Key == "retention.ms" && (c.MaybeValue() != "86400000" || c.Source != kmsg.ConfigSourceDynamicTopicConfig) {
			t.Fatalf("retention.ms after restart: %s %v", c.MaybeValue(), c.Source)
		}
	}
	for _, p := range b.Engine().Partitions() {
		if got := p.Config().RetentionMs; p.ID().Topic == "keep" && got != 24*time.Hour {
			t.Fatalf("partition retention after restart: %v", got)
		}
	}
}

// A partition directory the registry does not list (a crash between the
// steps of a delete) is removed at start.
func TestOrphanPartitionsRemovedAtStart(t *testing.T) {
	b := brokertest.Start(t)
	createTopic(t, b, "orphan", 1, nil)
	b.Close()
	if err := os.Remove(filepath.Join(b.Dir, "topics")); err != nil {
		t.Fatal(err)
	}
	b.Restart()
	if _, err := os.Stat(filepath.Join(b.Dir, "orphan-0")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("orphan partition kept: %v", err)
	}
	if td, _ := b.Admin(t).ListTopics(ctxT(t)); len(td) != 0 {
		t.Fatalf("topics %v", td.Names())
	}
}
