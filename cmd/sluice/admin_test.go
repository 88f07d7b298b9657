package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/internal/admin"
	"github.com/sluice-io/sluice/internal/broker"
)

// Before broker.New returns (recovery), the admin source is not ready.
func TestAdminSourceNotReadyWhileRecovering(t *testing.T) {
	var s adminSource
	if err := s.Ready(); !errors.Is(err, errRecovering) {
		t.Fatalf("ready before the broker exists: %v", err)
	}
	if s.Topics() != nil || s.Groups() != nil {
		t.Fatal("topics or groups before the broker exists")
	}
	if _, ok := s.TopicConfigs("m"); ok {
		t.Fatal("topic configs before the broker exists")
	}
	if _, err := s.Records("m", 0, -1, 1); !errors.Is(err, admin.ErrUnknownTopic) {
		t.Fatalf("records before the broker exists: %v", err)
	}
}

// The admin listener of a running `sluice serve`: /readyz turns ready,
// /metrics parses as Prometheus text and counts what a workload did,
// /api/groups reports the lag, and the console's API answers from the real
// broker: topic configs, records, a live group's members and the history.
func TestServeAdminListener(t *testing.T) {
	ctx := t.Context()
	kafka, base := startServed(t, ctx)
	get := func(path string) (int, []byte) {
		t.Helper()
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}

	// The workload: 100 records of 100 bytes to one partition, and a
	// group that committed 40 of them.
	cl, err := kgo.NewClient(kgo.SeedBrokers(kafka), kgo.DefaultProduceTopic("m"), kgo.AllowAutoTopicCreation())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	pctx, pcancel := context.WithTimeout(ctx, 20*time.Second)
	defer pcancel()
	var recs []*kgo.Record
	for range 100 {
		recs = append(recs, &kgo.Record{Value: bytes.Repeat([]byte{'v'}, 100)})
	}
	if err := cl.ProduceSync(pctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	var os kadm.Offsets
	os.Add(kadm.Offset{Topic: "m", Partition: 0, At: 40, LeaderEpoch: -1})
	if r, err := kadm.NewClient(cl).CommitOffsets(pctx, "mg", os); err != nil || r.Error() != nil {
		t.Fatalf("commit: %v %v", err, r.Error())
	}

	// A consumer reads all 100 back.
	cons, err := kgo.NewClient(kgo.SeedBrokers(kafka), kgo.ConsumeTopics("m"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	for got := 0; got < 100; {
		fs := cons.PollFetches(pctx)
		if err := pctx.Err(); err != nil {
			t.Fatalf("consumed %d of 100: %v", got, err)
		}
		got += fs.NumRecords()
	}
	// And a Kafka error inside a response: metadata of a missing topic.
	md := kmsg.NewPtrMetadataRequest()
	mt := kmsg.NewMetadataRequestTopic()
	mt.Topic = kmsg.StringPtr("no-such-topic")
	md.Topics = append(md.Topics, mt)
	if _, err := md.RequestWith(pctx, cl); err != nil {
		t.Fatal(err)
	}

	code, body := get("/metrics")
	if code != http.StatusOK {
		t.Fatalf("/metrics: %d", code)
	}
	parser := expfmt.NewTextParser(model.LegacyValidation)
	families, err := parser.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("/metrics does not parse: %v", err)
	}
	value := func(name string, labels map[string]string) float64 {
		t.Helper()
		f, ok := families[name]
		if !ok {
			t.Fatalf("%s missing", name)
		}
	next:
		for _, m := range f.GetMetric() {
			for _, lp := range m.GetLabel() {
				if v, ok := labels[lp.GetName()]; ok && v != lp.GetValue() {
					continue next
				}
			}
			switch {
			case m.GetCounter() != nil:
				return m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				return m.GetGauge().GetValue()
			}
		}
		t.Fatalf("%s%v missing", name, labels)
		return 0
	}
	if v := value("sluice_topic_received_records_total", map[string]string{"topic": "m"}); v != 100 {
		t.Fatalf("records in: %v, want 100\n%s", v, grep(body, "sluice_topic_"))
	}
	if v := value("sluice_partition_high_watermark", map[string]string{"topic": "m", "partition": "0"}); v != 100 {
		t.Fatalf("high watermark: %v", v)
	}
	// Produced and fetched bytes are whole batches: the partition's size.
	size := value("sluice_partition_size_bytes", map[string]string{"topic": "m", "partition": "0"})
	if in := value("sluice_topic_received_bytes_total", map[string]string{"topic": "m"}); in != size || size == 0 {
		t.Fatalf("bytes in %v, partition size %v", in, size)
	}
	if out := value("sluice_topic_sent_bytes_total", map[string]string{"topic": "m"}); out != size {
		t.Fatalf("bytes out %v, want the partition's %v", out, size)
	}
	if v := value("sluice_topic_sent_records_total", map[string]string{"topic": "m"}); v != 100 {
		t.Fatalf("records out: %v, want 100", v)
	}
	if v := value("sluice_response_errors_total", map[string]string{"api": "Metadata", "error": "UNKNOWN_TOPIC_OR_PARTITION"}); v != 1 {
		t.Fatalf("metadata errors: %v, want 1\n%s", v, grep(body, "sluice_response_errors"))
	}
	if f := families["sluice_produce_stage_duration_seconds"]; f == nil || len(f.GetMetric()) != 3 || f.GetMetric()[0].GetHistogram().GetSampleCount() == 0 {
		t.Fatalf("produce stages: %v", f)
	}
	if v := value("sluice_consumer_lag", map[string]string{"group": "mg", "topic": "m", "partition": "0"}); v != 60 {
		t.Fatalf("lag: %v, want 60", v)
	}
	if v := value("sluice_ready", nil); v != 1 {
		t.Fatalf("sluice_ready %v", v)
	}

	code, body = get("/api/groups/mg")
	if code != http.StatusOK || !strings.Contains(string(body), `"lag":60`) {
		t.Fatalf("/api/groups/mg: %d %s", code, body)
	}
	var anyJSON any
	if err := json.Unmarshal(body, &anyJSON); err != nil {
		t.Fatalf("/api/groups/mg is not JSON: %v", err)
	}
	testConsoleAPI(t, ctx, kafka, get)
}

// testConsoleAPI checks the console's endpoints against the served broker
// that TestServeAdminListener started, with topic "m" holding 100 records
// of 100 'v's.
func testConsoleAPI(t *testing.T, ctx context.Context, kafka string, get func(string) (int, []byte)) {
	t.Helper()
	getJSON := func(path string, out any) {
		t.Helper()
		code, body := get(path)
		if code != http.StatusOK {
			t.Fatalf("%s: %d %s", path, code, body)
		}
		if err := json.Unmarshal(body, out); err != nil {
			t.Fatalf("%s: %v: %s", path, err, body)
		}
	}

	// One client creates topic h, produces to it (zstd) and consumes it
	// in group "live".
	cl, err := kgo.NewClient(kgo.SeedBrokers(kafka), kgo.ClientID("console-test"),
		kgo.ConsumerGroup("live"), kgo.ConsumeTopics("h"), kgo.ProducerBatchCompression(kgo.ZstdCompression()),
		kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	pctx, pcancel := context.WithTimeout(ctx, 20*time.Second)
	defer pcancel()
	if r, err := kadm.NewClient(cl).CreateTopic(pctx, 2, 1, map[string]*string{"retention.ms": kadm.StringPtr("86400000")}, "h"); err != nil || r.Err != nil {
		t.Fatalf("create h: %v %v", err, r.Err)
	}
	// Configs: the override is TOPIC_CONFIG, the rest defaults.
	var topic admin.TopicJSON
	getJSON("/api/topics/h", &topic)
	sources := map[string]admin.ConfigEntryJSON{}
	for _, c := range topic.Configs {
		sources[c.Name] = c
	}
	if c := sources["retention.ms"]; c.Value != "86400000" || c.Source != "TOPIC_CONFIG" {
		t.Errorf("retention.ms %+v", c)
	}
	if c := sources["cleanup.policy"]; c.Value != "delete" || c.Source != "DEFAULT_CONFIG" {
		t.Errorf("cleanup.policy %+v", c)
	}

	// Records: the tail of m, and zstd records with a key, a null key
	// and headers in h.
	var page admin.RecordsJSON
	getJSON("/api/topics/m/records?limit=5", &page)
	if page.HighWatermark != 100 || len(page.Records) != 5 || page.Records[0].Offset != 95 || page.Records[4].Offset != 99 {
		t.Fatalf("tail of m: %+v", page)
	}
	if r := page.Records[0]; r.Key != nil || r.KeySize != -1 || !bytes.Equal(r.Value, bytes.Repeat([]byte{'v'}, 100)) {
		t.Errorf("record of m %+v", r)
	}
	hdr := []kgo.RecordHeader{{Key: "trace", Value: []byte("abc")}}
	if err := cl.ProduceSync(pctx,
		&kgo.Record{Topic: "h", Partition: 0, Key: []byte("k1"), Value: []byte("first"), Headers: hdr},
		&kgo.Record{Topic: "h", Partition: 0, Value: []byte("second")},
	).FirstErr(); err != nil {
		t.Fatal(err)
	}
	getJSON("/api/topics/h/records?partition=0&offset=0", &page)
	if len(page.Records) != 2 || string(page.Records[0].Key) != "k1" || string(page.Records[1].Value) != "second" || page.Records[1].Key != nil ||
		len(page.Records[0].Headers) != 1 || page.Records[0].Headers[0].Key != "trace" || string(page.Records[0].Headers[0].Value) != "abc" {
		t.Errorf("records of h: %+v", page.Records)
	}
	if code, _ := get("/api/topics/h/records?partition=9"); code != http.StatusNotFound {
		t.Errorf("unknown partition: %d", code)
	}
	if code, _ := get("/api/topics/h/records?limit=x"); code != http.StatusBadRequest {
		t.Errorf("bad limit: %d", code)
	}

	// A live consumer group: its member, client id and assignment.
	cctx, ccancel := context.WithCancel(ctx)
	polled := make(chan struct{})
	go func() {
		defer close(polled)
		for cctx.Err() == nil {
			cl.PollFetches(cctx)
		}
	}()
	defer func() { ccancel(); <-polled }()
	var g admin.GroupJSON
	deadline := time.Now().Add(20 * time.Second)
	for {
		getJSON("/api/groups/live", &g)
		if g.State == "Stable" && len(g.Members) == 1 && len(g.Members[0].Assignments) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no stable member with an assignment: %+v", g)
		}
		time.Sleep(50 * time.Millisecond)
	}
	m := g.Members[0]
	if m.ClientID != "console-test" || m.MemberID == "" || m.InstanceID != nil || m.Assignments[0].Topic != "h" ||
		len(m.Assignments[0].Partitions) != 2 || g.ProtocolType != "consumer" || g.Protocol == "" || g.Generation < 1 {
		t.Errorf("group live %+v, member %+v", g, m)
	}

	// History: the sampler runs every 2 s by default; the topics appear.
	var h admin.HistoryJSON
	deadline = time.Now().Add(10 * time.Second)
	for {
		getJSON("/api/history", &h)
		n := len(h.TimesMs)
		if n > 0 {
			if s := h.Topics["h"].Records; len(s) == n && s[n-1] != nil && *s[n-1] == 2 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("history has no sample of h: %+v", h)
		}
		time.Sleep(100 * time.Millisecond)
	}
	n := len(h.TimesMs)
	if h.IntervalMs != admin.DefaultHistoryInterval.Milliseconds() || *h.Topics["m"].Records[n-1] != 100 ||
		*h.Topics["m"].Bytes[n-1] <= 0 || len(h.Groups["mg"].Lag) != n || *h.Groups["mg"].Lag[n-1] != 60 {
		t.Errorf("history %+v", h)
	}
	if _, ok := h.Topics["__consumer_offsets"]; !ok {
		t.Error("history lacks the internal topics")
	}
}

func grep(b []byte, s string) string {
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		if strings.Contains(l, s) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// startServed runs `sluice serve` with the admin listener on a loopback
// port and returns the Kafka and admin addresses once /readyz answers 200;
// the broker stops (and must stop cleanly) when the test ends.
func startServed(t *testing.T, ctx context.Context) (kafka, adminBase string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c, err := loadConfig(flags(t, "--listeners", "127.0.0.1:0", "--log.dirs", t.TempDir()), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	c.adminListener = ln
	c.opts.Group.InitialRebalanceDelay = -1
	sctx, cancel := context.WithCancel(ctx)
	addr := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- serve(sctx, c, io.Discard, func(b *broker.Broker) { addr <- b.Addr().String() }) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	select {
	case kafka = <-addr:
	case err := <-done:
		t.Fatalf("serve: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("serve did not start")
	}
	adminBase = "http://" + ln.Addr().String()
	client := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := client.Get(adminBase + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz not 200 after 10 s: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	client.CloseIdleConnections()
	return kafka, adminBase
}
