package broker_test

import (
	"errors"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/internal/batch"
	"github.com/sluice-io/sluice/internal/broker"
	"github.com/sluice-io/sluice/internal/broker/brokertest"
	"github.com/sluice-io/sluice/internal/vfs"
)

func fetchReq(version int16, topic string, parts []int32, offset int64, maxWait, minBytes, maxBytes, partMax int32) *kmsg.FetchRequest {
	req := kmsg.NewPtrFetchRequest()
	req.Version = version
	req.ReplicaID = -1
	req.MaxWaitMillis, req.MinBytes, req.MaxBytes = maxWait, minBytes, maxBytes
	req.SessionEpoch = -1
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic = topic
	for _, p := range parts {
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.Partition, rp.FetchOffset, rp.PartitionMaxBytes = p, offset, partMax
		rt.Partitions = append(rt.Partitions, rp)
	}
	req.Topics = append(req.Topics, rt)
	return req
}

func produceOK(t *testing.T, rc *rawConn, topic string, part int32, records []byte) int64 {
	t.Helper()
	resp := rc.do(produceReq(9, topic, part, records)).(*kmsg.ProduceResponse)
	p := resp.Topics[0].Partitions[0]
	if p.ErrorCode != 0 {
		t.Fatalf("produce: %v", kerr.ErrorForCode(p.ErrorCode))
	}
	return p.BaseOffset
}

func recordCount(t *testing.T, records []byte) int {
	t.Helper()
	n := 0
	it := batch.NewIter(records)
	for it.Next() {
		n += int(it.Header().NumRecords)
	}
	if err := it.Err(); err != nil {
		t.Fatalf("fetched bytes: %v", err)
	}
	return n
}

func TestFetchLongPoll(t *testing.T) {
	for _, sendfile := range []bool{true, false} {
		name := map[bool]string{true: "sendfile", false: "copy"}[sendfile]
		t.Run(name, func(t *testing.T) {
			b := brokertest.Start(t, func(o *broker.Options) { o.DisableSendfile = !sendfile })
			createTopic(t, b, "lp", 1, nil)
			rc := dialRaw(t, b.Addr())

			// Nothing to read: the fetch waits out max_wait.
			start := time.Now()
			resp := rc.do(fetchReq(11, "lp", []int32{0}, 0, 300, 1, 1<<20, 1<<20)).(*kmsg.FetchResponse)
			if el := time.Since(start); el < 250*time.Millisecond || el > 5*time.Second {
				t.Fatalf("empty fetch answered after %v, want about 300ms", el)
			}
			if p := resp.Topics[0].Partitions[0]; p.ErrorCode != 0 || len(p.RecordBatches) != 0 || p.HighWatermark != 0 {
				t.Fatalf("empty fetch: %+v", p)
			}

			// A produce wakes a waiting fetch long before max_wait.
			fc := dialRaw(t, b.Addr())
			corr := fc.send(fetchReq(11, "lp", []int32{0}, 0, 10000, 1, 1<<20, 1<<20))
			time.Sleep(100 * time.Millisecond)
			start = time.Now()
			produceOK(t, rc, "lp", 0, buildBatch(t, batch.CodecNone, time.Now().UnixMilli(), 5, 100))
			resp = fc.recv(fetchReq(11, "lp", nil, 0, 0, 0, 0, 0), corr).(*kmsg.FetchResponse)
			if el := time.Since(start); el > 5*time.Second {
				t.Fatalf("woken fetch answered after %v", el)
			}
			p := resp.Topics[0].Partitions[0]
			if p.ErrorCode != 0 || recordCount(t, p.RecordBatches) != 5 || p.HighWatermark != 5 || p.LastStableOffset != 5 || p.LogStartOffset != 0 {
				t.Fatalf("woken fetch: err %d hw %d lso %d", p.ErrorCode, p.HighWatermark, p.LastStableOffset)
			}
			// The server counts bytes after writing them: give it a
			// moment after the client has read them.
			st := b.Server().Stats()
			for i := 0; i < 100 && st.BytesSendfile+st.BytesCopied == 0; i++ {
				time.Sleep(10 * time.Millisecond)
				st = b.Server().Stats()
			}
			if sendfile && st.BytesSendfile == 0 || !sendfile && (st.BytesSendfile != 0 || st.BytesCopied == 0) {
				t.Fatalf("sendfile=%v but %d bytes went by sendfile, %d copied", sendfile, st.BytesSendfile, st.BytesCopied)
			}
		})
	}
}

func TestFetchMaxBytes(t *testing.T) {
	b := brokertest.Start(t)
	createTopic(t, b, "mb", 2, nil)
	rc := dialRaw(t, b.Addr())
	one := buildBatch(t, batch.CodecNone, time.Now().UnixMilli(), 1, 1000)
	for i := 0; i < 10; i++ {
		produceOK(t, rc, "mb", 0, one)
		produceOK(t, rc, "mb", 1, one)
	}
	size := int32(len(one))
	// Response max bytes: whole batches that fit, and never less than
	// one batch for the first partition with data.
	for _, tc := range []struct {
		maxBytes, partMax int32
		want0, want1      int
	}{
		{1, 1 << 20, 1, 0},
		{size * 3, 1 << 20, 3, 0},
		{size * 13, 1 << 20, 10, 3},
		{1 << 20, size * 2, 2, 2},
		{1 << 20, 1, 1, 0},
	} {
		resp := rc.do(fetchReq(11, "mb", []int32{0, 1}, 0, 0, 0, tc.maxBytes, tc.partMax)).(*kmsg.FetchResponse)
		ps := resp.Topics[0].Partitions
		if got0, got1 := recordCount(t, ps[0].RecordBatches), recordCount(t, ps[1].RecordBatches); got0 != tc.want0 || got1 != tc.want1 {
			t.Fatalf("max %d part max %d: got %d+%d records, want %d+%d", tc.maxBytes, tc.partMax, got0, got1, tc.want0, tc.want1)
		}
	}
}

func TestFetchErrors(t *testing.T) {
	b := brokertest.Start(t)
	createTopic(t, b, "fe", 1, nil)
	rc := dialRaw(t, b.Addr())
	produceOK(t, rc, "fe", 0, buildBatch(t, batch.CodecNone, time.Now().UnixMilli(), 3, 10))
	check := func(req *kmsg.FetchRequest, want *kerr.Error) kmsg.FetchResponseTopicPartition {
		t.Helper()
		start := time.Now()
		resp := rc.do(req).(*kmsg.FetchResponse)
		if time.Since(start) > 3*time.Second {
			t.Fatal("an erroring fetch waited for max_wait")
		}
		p := resp.Topics[0].Partitions[0]
		if err := kerr.ErrorForCode(p.ErrorCode); !errors.Is(err, want) {
			t.Fatalf("error %v, want %v", err, want)
		}
		return p
	}
	p := check(fetchReq(11, "fe", []int32{0}, 100, 10000, 1, 1<<20, 1<<20), kerr.OffsetOutOfRange)
	if p.HighWatermark != 3 || p.LogStartOffset != 0 {
		t.Fatalf("out of range answer: hw %d log start %d", p.HighWatermark, p.LogStartOffset)
	}
	check(fetchReq(11, "fe", []int32{5}, 0, 10000, 1, 1<<20, 1<<20), kerr.UnknownTopicOrPartition)
	check(fetchReq(11, "nope", []int32{0}, 0, 10000, 1, 1<<20, 1<<20), kerr.UnknownTopicOrPartition)
	req := fetchReq(13, "", []int32{0}, 0, 10000, 1, 1<<20, 1<<20)
	req.Topics[0].TopicID = [16]byte{9}
	check(req, kerr.UnknownTopicID)
	req = fetchReq(11, "fe", []int32{0}, 0, 10000, 1, 1<<20, 1<<20)
	req.Topics[0].Partitions[0].CurrentLeaderEpoch = 5
	check(req, kerr.UnknownLeaderEpoch)
}

// TestFetchSessions walks a KIP-227 session: a full fetch opens it, an
// incremental fetch answers only partitions with news, and bad ids and
// epochs get their errors.
func TestFetchSessions(t *testing.T) {
	b := brokertest.Start(t)
	createTopic(t, b, "fs", 3, nil)
	rc := dialRaw(t, b.Addr())
	rec := buildBatch(t, batch.CodecNone, time.Now().UnixMilli(), 2, 10)
	produceOK(t, rc, "fs", 0, rec)

	// Sessionless full fetch: session id 0.
	req := fetchReq(12, "fs", []int32{0, 1, 2}, 0, 0, 0, 1<<20, 1<<20)
	resp := rc.do(req).(*kmsg.FetchResponse)
	if resp.SessionID != 0 || len(resp.Topics[0].Partitions) != 3 {
		t.Fatalf("sessionless: id %d, %d partitions", resp.SessionID, len(resp.Topics[0].Partitions))
	}
	// Epoch 0 opens a session and answers every partition.
	req.SessionEpoch = 0
	resp = rc.do(req).(*kmsg.FetchResponse)
	id := resp.SessionID
	if id == 0 || len(resp.Topics[0].Partitions) != 3 {
		t.Fatalf("new session: id %d, %d partitions", id, len(resp.Topics[0].Partitions))
	}
	// Incremental with nothing new: nothing to answer (and it waits
	// max_wait, kept short here).
	inc := kmsg.NewPtrFetchRequest()
	inc.Version, inc.ReplicaID, inc.MaxWaitMillis, inc.MaxBytes = 12, -1, 50, 1<<20
	inc.SessionID, inc.SessionEpoch = id, 1
	// Partition 0 moves its fetch offset past what it read.
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic = "fs"
	rp := kmsg.NewFetchRequestTopicPartition()
	rp.Partition, rp.FetchOffset, rp.PartitionMaxBytes = 0, 2, 1<<20
	rt.Partitions = append(rt.Partitions, rp)
	inc.Topics = append(inc.Topics, rt)
	resp = rc.do(inc).(*kmsg.FetchResponse)
	if resp.ErrorCode != 0 || resp.SessionID != id || len(resp.Topics) != 0 {
		t.Fatalf("quiet incremental: err %d id %d topics %+v", resp.ErrorCode, resp.SessionID, resp.Topics)
	}
	// New data in partition 2 (still at offset 0 in the session): only
	// it is answered.
	produceOK(t, rc, "fs", 2, rec)
	inc.SessionEpoch = 2
	inc.Topics = nil
	resp = rc.do(inc).(*kmsg.FetchResponse)
	if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 || resp.Topics[0].Partitions[0].Partition != 2 ||
		recordCount(t, resp.Topics[0].Partitions[0].RecordBatches) != 2 {
		t.Fatalf("incremental with news: %+v", resp.Topics)
	}
	// A replayed epoch, and an unknown session, are refused.
	resp = rc.do(inc).(*kmsg.FetchResponse)
	if !errors.Is(kerr.ErrorForCode(resp.ErrorCode), kerr.InvalidFetchSessionEpoch) {
		t.Fatalf("stale epoch: %v", kerr.ErrorForCode(resp.ErrorCode))
	}
	inc.SessionID, inc.SessionEpoch = id+100, 1
	resp = rc.do(inc).(*kmsg.FetchResponse)
	if !errors.Is(kerr.ErrorForCode(resp.ErrorCode), kerr.FetchSessionIDNotFound) {
		t.Fatalf("unknown session: %v", kerr.ErrorForCode(resp.ErrorCode))
	}
	// Epoch -1 with the id closes it.
	req.SessionID, req.SessionEpoch = id, -1
	if resp = rc.do(req).(*kmsg.FetchResponse); resp.SessionID != 0 {
		t.Fatalf("closing fetch got session %d", resp.SessionID)
	}
	inc.SessionID, inc.SessionEpoch = id, 3
	resp = rc.do(inc).(*kmsg.FetchResponse)
	if !errors.Is(kerr.ErrorForCode(resp.ErrorCode), kerr.FetchSessionIDNotFound) {
		t.Fatalf("closed session: %v", kerr.ErrorForCode(resp.ErrorCode))
	}
}

func TestListOffsets(t *testing.T) {
	b := brokertest.Start(t)
	createTopic(t, b, "lo", 1, nil)
	rc := dialRaw(t, b.Addr())
	base := time.Now().Add(-time.Hour).UnixMilli()
	for i := int64(0); i < 5; i++ {
		produceOK(t, rc, "lo", 0, buildBatch(t, batch.CodecNone, base+i*1000, 2, 10))
	}
	adm := b.Admin(t)
	ctx := ctxT(t)
	after, err := adm.ListOffsetsAfterMilli(ctx, base+2500, "lo")
	if err != nil {
		t.Fatal(err)
	}
	if o, _ := after.Lookup("lo", 0); o.Offset != 6 {
		t.Fatalf("offset after %d: %d, want 6", base+2500, o.Offset)
	}
	after, _ = adm.ListOffsetsAfterMilli(ctx, base+100_000, "lo")
	if o, _ := after.Lookup("lo", 0); o.Offset != 10 {
		t.Fatalf("offset after the last record: %d, want the end 10", o.Offset)
	}
	starts, _ := adm.ListStartOffsets(ctx, "lo")
	ends, _ := adm.ListEndOffsets(ctx, "lo")
	if s, _ := starts.Lookup("lo", 0); s.Offset != 0 {
		t.Fatalf("start %d", s.Offset)
	}
	if e, _ := ends.Lookup("lo", 0); e.Offset != 10 {
		t.Fatalf("end %d", e.Offset)
	}
	// Max timestamp (-3), v0 old-style offsets, and an unknown partition.
	req := kmsg.NewPtrListOffsetsRequest()
	req.Version = 7
	req.ReplicaID = -1
	rt := kmsg.NewListOffsetsRequestTopic()
	rt.Topic = "lo"
	for _, p := range []struct {
		part int32
		ts   int64
	}{{0, -3}, {3, -1}} {
		rp := kmsg.NewListOffsetsRequestTopicPartition()
		rp.Partition, rp.Timestamp = p.part, p.ts
		rt.Partitions = append(rt.Partitions, rp)
	}
	req.Topics = append(req.Topics, rt)
	resp := rc.do(req).(*kmsg.ListOffsetsResponse)
	if p := resp.Topics[0].Partitions[0]; p.ErrorCode != 0 || p.Offset != 9 || p.Timestamp != base+4000 {
		t.Fatalf("max timestamp: %+v", p)
	}
	if p := resp.Topics[0].Partitions[1]; !errors.Is(kerr.ErrorForCode(p.ErrorCode), kerr.UnknownTopicOrPartition) {
		t.Fatalf("unknown partition: %+v", p)
	}
	req.Version = 0
	req.Topics[0].Partitions = req.Topics[0].Partitions[:1]
	req.Topics[0].Partitions[0].Timestamp, req.Topics[0].Partitions[0].MaxNumOffsets = -1, 1
	resp = rc.do(req).(*kmsg.ListOffsetsResponse)
	if p := resp.Topics[0].Partitions[0]; len(p.OldStyleOffsets) != 1 || p.OldStyleOffsets[0] != 10 {
		t.Fatalf("v0 latest: %+v", p)
	}
}

// On a filesystem without OS files (the in-memory one), fetched records
// are read into memory instead of sent with sendfile.
func TestFetchWithoutOSFiles(t *testing.T) {
	b := brokertest.Start(t, func(o *broker.Options) { o.FS = vfs.NewMem(); o.Dir = "data" })
	createTopic(t, b, "mem", 1, nil)
	rc := dialRaw(t, b.Addr())
	produceOK(t, rc, "mem", 0, buildBatch(t, batch.CodecNone, time.Now().UnixMilli(), 4, 10))
	if got := consumeN(t, b, "mem", 4); len(got) != 4 {
		t.Fatalf("got %d", len(got))
	}
	if st := b.Server().Stats(); st.BytesSendfile != 0 {
		t.Fatalf("%d bytes by sendfile from an in-memory file", st.BytesSendfile)
	}
}
