package cli

import (
	"encoding/json"
	"math"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sluice-io/sluice/internal/broker"
	"github.com/sluice-io/sluice/internal/broker/brokertest"
	"github.com/sluice-io/sluice/internal/metrics"
)

func TestHistSnapshotQuantiles(t *testing.T) {
	inf := math.Inf(1)
	before := histSnapshot{bounds: []float64{.001, .005, .01, inf}, counts: []uint64{10, 10, 10, 10}}
	// Over the run: 50 at or below 1ms, 40 in (1ms, 5ms], 9 in (5ms, 10ms], 1 above.
	after := histSnapshot{bounds: before.bounds, counts: []uint64{60, 100, 109, 110}}
	d, err := after.sub(before)
	if err != nil {
		t.Fatal(err)
	}
	near := func(what string, got, want float64) {
		t.Helper()
		if math.Abs(got-want) > 1e-9 {
			t.Errorf("%s = %v, want %v", what, got, want)
		}
	}
	near("p50", d.quantile(0.5), .001)                   // rank 50: the top of the first bucket
	near("p75", d.quantile(0.75), .001+.004*25/40)       // inside the second
	near("p99", d.quantile(0.99), .005+.005*(99-90)/9.0) // the top of the third
	near("p100", d.quantile(1), .01)                     // in +Inf: the last finite bound
	near("within 5ms", d.within(.005), .9)
	near("within 7.5ms", d.within(.0075), (90+4.5)/100)
	near("within 1s", d.within(1), .99)
	if !math.IsNaN(histSnapshot{bounds: before.bounds, counts: make([]uint64, 4)}.quantile(.5)) {
		t.Error("empty histogram has a quantile")
	}
	if _, err := before.sub(after); err == nil {
		t.Error("a histogram going backwards is not reported")
	}
	if _, err := after.sub(histSnapshot{bounds: []float64{inf}, counts: []uint64{1}}); err == nil {
		t.Error("changed buckets are not reported")
	}
	if l := (histSnapshot{}).latency(); l.Observations != 0 || l.P99Ms != 0 {
		t.Errorf("empty latency %+v", l)
	}
}

// Against a broker whose metrics are served, bench reports the broker's own
// produce latency next to the client's; a bad endpoint fails before the run.
func TestBenchBrokerMetrics(t *testing.T) {
	m, err := metrics.New(metrics.Options{NoRuntimeMetrics: true})
	if err != nil {
		t.Fatal(err)
	}
	b := brokertest.Start(t, func(o *broker.Options) { o.Observer = m })
	hs := httptest.NewServer(m.Handler())
	defer hs.Close()

	r := mustRun(t, b.Addr(), "", "bench", "produce", "--duration", "300ms", "--partitions", "2",
		"--record-bytes", "256", "--broker-metrics", hs.URL, "--format", "json")
	var rs []produceResult
	if err := json.Unmarshal([]byte(r.stdout), &rs); err != nil || len(rs) != 1 {
		t.Fatalf("json (%v):\n%s", err, r.stdout)
	}
	bl := rs[0].Broker
	if bl == nil || bl.Observations == 0 || bl.P99Ms <= 0 || bl.P50Ms > bl.P99Ms || bl.Within5Ms < 0 || bl.Within5Ms > 1 {
		t.Fatalf("broker latency %+v", bl)
	}
	chart := filepath.Join(t.TempDir(), "broker.html")
	r = mustRun(t, b.Addr(), "", "bench", "produce", "--duration", "200ms", "--partitions", "2",
		"--record-bytes", "256", "--broker-metrics", hs.URL, "--chart", chart)
	if !strings.Contains(r.stdout, "BROKER-SIDE PRODUCE LATENCY") || !strings.Contains(r.stdout, "WITHIN 5ms") {
		t.Fatalf("text output lacks the broker table:\n%s", r.stdout)
	}
	if page, err := os.ReadFile(chart); err != nil || !strings.Contains(string(page), "Broker-side produce latency") || !strings.Contains(string(page), "WITHIN 5ms") {
		t.Fatalf("the chart lacks the broker table (%v)", err)
	}

	// Not a Prometheus endpoint: the broker's Kafka port.
	r = run(t, b.Addr(), "", "bench", "produce", "--duration", "200ms", "--broker-metrics", "http://"+b.Addr()+"/metrics")
	if r.err == nil || !strings.Contains(r.err.Error(), "--broker-metrics") {
		t.Fatalf("a bad endpoint: err %v\n%s", r.err, r.stdout)
	}
	if strings.Contains(r.stderr, "bench produce: sluice, topic") && strings.Contains(r.stdout, "RECORDS/s") {
		t.Fatalf("ran the load despite the bad endpoint:\n%s", r.stdout)
	}
}
