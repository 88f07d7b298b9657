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
}

// The admin listener of a running `sluice serve`: /readyz turns ready,
// /metrics parses as Prometheus text and counts what a workload did,
// /api/groups reports the lag.
func TestServeAdminListener(t *testing.T) {
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
	ctx, cancel := context.WithCancel(context.Background())
	addr := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- serve(ctx, c, io.Discard, func(b *broker.Broker) { addr <- b.Addr().String() }) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	}()
	var kafka string
	select {
	case kafka = <-addr:
	case err := <-done:
		t.Fatalf("serve: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("serve did not start")
	}
	base := "http://" + ln.Addr().String()
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
	deadline := time.Now().Add(10 * time.Second)
	for code, _ := get("/readyz"); code != http.StatusOK; code, _ = get("/readyz") {
		if time.Now().After(deadline) {
			t.Fatalf("/readyz still %d", code)
		}
		time.Sleep(20 * time.Millisecond)
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
