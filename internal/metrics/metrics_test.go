package metrics

import (
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/sluice-io/sluice/internal/admin"
	"github.com/sluice-io/sluice/internal/server"
	"github.com/sluice-io/sluice/internal/storage"
	"github.com/sluice-io/sluice/internal/wal"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fakeSource is a Source whose answers the test sets.
type fakeSource struct {
	mu     sync.Mutex
	ready  error
	topics []admin.Topic
	groups []admin.Group
}

func (f *fakeSource) Ready() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.ready
}

func (f *fakeSource) Topics() []admin.Topic {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]admin.Topic(nil), f.topics...)
}

func (f *fakeSource) Groups() []admin.Group {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]admin.Group, len(f.groups))
	for i, g := range f.groups {
		g.Lag = append([]admin.PartitionLag(nil), g.Lag...)
		out[i] = g
	}
	return out
}

// scrape serves /metrics once and parses it with Prometheus' own text
// parser, which fails on anything that is not valid exposition.
func scrape(t *testing.T, m *Metrics) map[string]*dto.MetricFamily {
	t.Helper()
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
	req.Header.Set("Accept", "text/plain; version=0.0.4")
	m.Handler().ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		t.Fatalf("GET /metrics: %d %s", rec.Code, rec.Body)
	}
	p := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := p.TextToMetricFamilies(rec.Body)
	if err != nil {
		t.Fatalf("exposition does not parse: %v", err)
	}
	return fams
}

// series returns name's series with exactly labels (pairs), or nil.
func series(fams map[string]*dto.MetricFamily, name string, labels ...string) *dto.Metric {
	f := fams[name]
	if f == nil {
		return nil
	}
next:
	for _, m := range f.Metric {
		if len(m.Label) != len(labels)/2 {
			continue
		}
		for i := 0; i < len(labels); i += 2 {
			found := false
			for _, l := range m.Label {
				if l.GetName() == labels[i] && l.GetValue() == labels[i+1] {
					found = true
				}
			}
			if !found {
				continue next
			}
		}
		return m
	}
	return nil
}

// value returns the value of name's series with exactly labels (pairs),
// and whether it exists; a histogram's value is its sample count.
func value(fams map[string]*dto.MetricFamily, name string, labels ...string) (float64, bool) {
	m := series(fams, name, labels...)
	switch {
	case m == nil:
		return 0, false
	case m.Counter != nil:
		return m.Counter.GetValue(), true
	case m.Gauge != nil:
		return m.Gauge.GetValue(), true
	case m.Histogram != nil:
		return float64(m.Histogram.GetSampleCount()), true
	}
	return 0, false
}

// histSum is the sample sum of name's histogram series with labels.
func histSum(t *testing.T, fams map[string]*dto.MetricFamily, name string, labels ...string) float64 {
	t.Helper()
	m := series(fams, name, labels...)
	if m == nil || m.Histogram == nil {
		t.Fatalf("%s%v missing", name, labels)
	}
	return m.Histogram.GetSampleSum()
}

func expect(t *testing.T, fams map[string]*dto.MetricFamily, want float64, name string, labels ...string) {
	t.Helper()
	got, ok := value(fams, name, labels...)
	if !ok {
		t.Errorf("%s%v: missing", name, labels)
		return
	}
	if got != want {
		t.Errorf("%s%v = %v, want %v", name, labels, got, want)
	}
}

func absent(t *testing.T, fams map[string]*dto.MetricFamily, name string, labels ...string) {
	t.Helper()
	if v, ok := value(fams, name, labels...); ok {
		t.Errorf("%s%v = %v, want no such series", name, labels, v)
	}
}

func newMetrics(t *testing.T, opts Options) *Metrics {
	t.Helper()
	m, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// A scripted workload: the scraped values are what it did.
func TestWorkloadValues(t *testing.T) {
	src := &fakeSource{
		ready: errors.New("recovering"),
		topics: []admin.Topic{
			{Name: "orders", Partitions: []admin.Partition{
				{Partition: 0, LogStart: 5, HighWatermark: 100, LastStable: 90, SizeBytes: 4096, Segments: 2},
				{Partition: 1, HighWatermark: 7, LastStable: 7, SizeBytes: 512, Segments: 1},
			}},
			{Name: "__consumer_offsets", Internal: true, Partitions: []admin.Partition{{Partition: 0, SizeBytes: 10, Segments: 1}}},
		},
		groups: []admin.Group{
			{ID: "billing", State: "Stable", Members: 3, Lag: []admin.PartitionLag{
				{Topic: "orders", Partition: 0, Committed: 60, End: 100, Lag: 40},
				{Topic: "orders", Partition: 1, Committed: 7, End: 7, Lag: 0},
			}},
			{ID: "audit", State: "Empty"},
		},
	}
	srv := server.Stats{Connections: 3, ConnectionsAccepted: 10, ConnectionsRejected: 1, Requests: 11,
		BytesIn: 1000, BytesOut: 2000, BytesSendfile: 1500, BytesCopied: 300}
	st := storage.Stats{Appends: 4, AppendBytes: 4000, Checkpoints: 2, RetentionDeleted: 3, IndexCacheHits: 11,
		IndexCacheMisses: 2, IndexCacheBytes: 8192, OpenSegmentFiles: 6,
		WAL: wal.Stats{Appends: 4, Records: 4, Bytes: 4200, Syncs: 2, SyncTime: 3 * time.Millisecond, Files: 2, Failed: true}}
	m := newMetrics(t, Options{
		Source:       src,
		ServerStats:  func() server.Stats { return srv },
		StorageStats: func() storage.Stats { return st },
		DiskSpace:    func() (int64, int64, error) { return 1 << 30, 1 << 40, nil },
	})

	fams := scrape(t, m)
	expect(t, fams, 0, "sluice_ready")
	absent(t, fams, "sluice_recovery_duration_seconds")

	// The workload: 3 produces, 2 fetches, 8 requests answered (one
	// failed), 2 WAL syncs, recovery done.
	m.ObserveProduce("orders", 10, 1000, 2*time.Millisecond)
	m.ObserveProduce("orders", 5, 500, 3*time.Millisecond)
	m.ObserveProduce("events", 1, 100, time.Millisecond)
	m.ObserveFetch("orders", 12, 1200)
	m.ObserveFetch("orders", 0, 64)
	m.ObserveProduceStages(time.Millisecond, 2*time.Millisecond, 500*time.Microsecond)
	m.ObserveProduceStages(3*time.Millisecond, 4*time.Millisecond, -time.Millisecond) // clock step: 0
	for i := range 8 {
		key := int16(0) // Produce
		if i >= 5 {
			key = 3 // Metadata
		}
		m.ObserveRequest(key, 9, time.Duration(i)*time.Millisecond, i == 7, server.Response{})
	}
	// Kafka error codes inside responses: two partitions of a produce
	// response, and a fetch answered with pre-encoded parts.
	pr := kmsg.NewPtrProduceResponse()
	pr.Topics = []kmsg.ProduceResponseTopic{{Topic: "orders", Partitions: []kmsg.ProduceResponseTopicPartition{
		{Partition: 0, ErrorCode: kerr.UnknownTopicOrPartition.Code},
		{Partition: 1},
		{Partition: 2, ErrorCode: kerr.CorruptMessage.Code},
	}}}
	m.ObserveRequest(0, 9, time.Millisecond, false, server.Response{Msg: pr})
	m.ObserveRequest(1, 12, time.Millisecond, false, server.Response{ErrorCodes: []int16{kerr.OffsetOutOfRange.Code, kerr.OffsetOutOfRange.Code}})
	m.ObserveWALSync(4096, 3, time.Millisecond)
	m.ObserveWALSync(100, 1, 2*time.Millisecond)
	m.SetRecovery(1500 * time.Millisecond)
	src.mu.Lock()
	src.ready = nil
	src.mu.Unlock()

	fams = scrape(t, m)
	expect(t, fams, 1, "sluice_ready")
	expect(t, fams, 1.5, "sluice_recovery_duration_seconds")

	expect(t, fams, 1500, "sluice_topic_received_bytes_total", "topic", "orders")
	expect(t, fams, 15, "sluice_topic_received_records_total", "topic", "orders")
	expect(t, fams, 100, "sluice_topic_received_bytes_total", "topic", "events")
	expect(t, fams, 1264, "sluice_topic_sent_bytes_total", "topic", "orders")
	expect(t, fams, 12, "sluice_topic_sent_records_total", "topic", "orders")
	expect(t, fams, 0, "sluice_topic_sent_bytes_total", "topic", "events")
	expect(t, fams, 3, "sluice_produce_duration_seconds")
	for stage, sum := range map[string]float64{"queue": .004, "wal": .006, "response": .0005} {
		expect(t, fams, 2, "sluice_produce_stage_duration_seconds", "stage", stage)
		if got := histSum(t, fams, "sluice_produce_stage_duration_seconds", "stage", stage); math.Abs(got-sum) > 1e-9 {
			t.Errorf("stage %s sum %v, want %v", stage, got, sum)
		}
	}

	expect(t, fams, 6, "sluice_requests_total", "api", "Produce")
	expect(t, fams, 1, "sluice_response_errors_total", "api", "Produce", "error", "UNKNOWN_TOPIC_OR_PARTITION")
	expect(t, fams, 1, "sluice_response_errors_total", "api", "Produce", "error", "CORRUPT_MESSAGE")
	expect(t, fams, 2, "sluice_response_errors_total", "api", "Fetch", "error", "OFFSET_OUT_OF_RANGE")
	absent(t, fams, "sluice_response_errors_total", "api", "Metadata", "error", "NONE")
	expect(t, fams, 3, "sluice_requests_total", "api", "Metadata")
	expect(t, fams, 0, "sluice_request_errors_total", "api", "Produce")
	expect(t, fams, 1, "sluice_request_errors_total", "api", "Metadata")
	expect(t, fams, 6, "sluice_request_duration_seconds", "api", "Produce")
	expect(t, fams, 1, "sluice_requests_total", "api", "Fetch")
	expect(t, fams, 1, "sluice_requests_in_flight") // 11 read, 10 answered

	expect(t, fams, 2, "sluice_wal_sync_duration_seconds")
	expect(t, fams, 2, "sluice_wal_sync_batch_bytes")
	expect(t, fams, 2, "sluice_wal_sync_batch_records")
	h := fams["sluice_wal_sync_batch_bytes"].Metric[0].Histogram
	if h.GetSampleSum() != 4196 {
		t.Errorf("sluice_wal_sync_batch_bytes sum %v, want 4196", h.GetSampleSum())
	}

	expect(t, fams, 3, "sluice_connections")
	expect(t, fams, 10, "sluice_connections_accepted_total")
	expect(t, fams, 1, "sluice_connections_rejected_total")
	expect(t, fams, 1000, "sluice_network_received_bytes_total")
	expect(t, fams, 2000, "sluice_network_sent_bytes_total")
	expect(t, fams, 1500, "sluice_fetch_file_bytes_total", "method", "sendfile")
	expect(t, fams, 300, "sluice_fetch_file_bytes_total", "method", "copy")

	expect(t, fams, 4, "sluice_storage_appends_total")
	expect(t, fams, 4000, "sluice_storage_append_bytes_total")
	expect(t, fams, 2, "sluice_checkpoints_total")
	expect(t, fams, 3, "sluice_retention_deleted_segments_total")
	expect(t, fams, 11, "sluice_index_cache_hits_total")
	expect(t, fams, 2, "sluice_index_cache_misses_total")
	expect(t, fams, 8192, "sluice_index_cache_bytes")
	expect(t, fams, 6, "sluice_open_segment_files")
	expect(t, fams, 4200, "sluice_wal_synced_bytes_total")
	expect(t, fams, 2, "sluice_wal_syncs_total")
	expect(t, fams, 0.003, "sluice_wal_sync_seconds_total")
	expect(t, fams, 2, "sluice_wal_files")
	expect(t, fams, 1, "sluice_wal_failed")
	expect(t, fams, 1<<30, "sluice_disk_free_bytes")
	expect(t, fams, 1<<40, "sluice_disk_total_bytes")

	expect(t, fams, 2, "sluice_topics")
	expect(t, fams, 3, "sluice_partitions")
	expect(t, fams, 4096, "sluice_partition_size_bytes", "topic", "orders", "partition", "0")
	expect(t, fams, 2, "sluice_partition_segments", "topic", "orders", "partition", "0")
	expect(t, fams, 5, "sluice_partition_log_start_offset", "topic", "orders", "partition", "0")
	expect(t, fams, 100, "sluice_partition_high_watermark", "topic", "orders", "partition", "0")
	expect(t, fams, 90, "sluice_partition_last_stable_offset", "topic", "orders", "partition", "0")
	expect(t, fams, 7, "sluice_partition_high_watermark", "topic", "orders", "partition", "1")
	expect(t, fams, 10, "sluice_partition_size_bytes", "topic", "__consumer_offsets", "partition", "0")

	expect(t, fams, 40, "sluice_consumer_lag", "group", "billing", "topic", "orders", "partition", "0")
	expect(t, fams, 0, "sluice_consumer_lag", "group", "billing", "topic", "orders", "partition", "1")
	expect(t, fams, 40, "sluice_consumer_group_lag", "group", "billing")
	expect(t, fams, 0, "sluice_consumer_group_lag", "group", "audit")
	expect(t, fams, 3, "sluice_consumer_group_members", "group", "billing")
	expect(t, fams, 1, "sluice_consumer_groups", "state", "Stable")
	expect(t, fams, 1, "sluice_consumer_groups", "state", "Empty")
	expect(t, fams, 0, "sluice_consumer_lag_series_dropped_total")
	absent(t, fams, "sluice_topic_received_bytes_total", "topic", OtherTopic)
	if fams["go_goroutines"] == nil || fams["process_start_time_seconds"] == nil {
		t.Errorf("runtime collectors missing")
	}
}

// Past MaxTopicLabels, topics are summed under _other, on the hot path and
// at scrape time alike.
func TestTopicLabelCap(t *testing.T) {
	src := &fakeSource{topics: []admin.Topic{
		{Name: "c", Partitions: []admin.Partition{{Partition: 0, SizeBytes: 30, Segments: 3}, {Partition: 1, SizeBytes: 5, Segments: 1}}},
		{Name: "d", Partitions: []admin.Partition{{Partition: 0, SizeBytes: 40, Segments: 4}}},
	}}
	m := newMetrics(t, Options{Source: src, MaxTopicLabels: 2, NoRuntimeMetrics: true})
	m.ObserveProduce("a", 1, 10, 0)
	m.ObserveProduce("b", 2, 20, 0)
	m.ObserveProduce("c", 3, 30, 0)
	m.ObserveProduce("d", 4, 40, 0)
	m.ObserveFetch("c", 5, 50)
	m.ObserveProduce("a", 1, 10, 0)

	fams := scrape(t, m)
	expect(t, fams, 20, "sluice_topic_received_bytes_total", "topic", "a")
	expect(t, fams, 20, "sluice_topic_received_bytes_total", "topic", "b")
	expect(t, fams, 70, "sluice_topic_received_bytes_total", "topic", OtherTopic)
	expect(t, fams, 7, "sluice_topic_received_records_total", "topic", OtherTopic)
	expect(t, fams, 50, "sluice_topic_sent_bytes_total", "topic", OtherTopic)
	absent(t, fams, "sluice_topic_received_bytes_total", "topic", "c")
	if n := len(fams["sluice_topic_received_bytes_total"].Metric); n != 3 {
		t.Errorf("%d topic series, want 3", n)
	}
	expect(t, fams, 75, "sluice_partition_size_bytes", "topic", OtherTopic, "partition", "")
	expect(t, fams, 8, "sluice_partition_segments", "topic", OtherTopic, "partition", "")
	absent(t, fams, "sluice_partition_high_watermark", "topic", "c", "partition", "0")
	expect(t, fams, 2, "sluice_topics")
	expect(t, fams, 3, "sluice_partitions")
}

// Past MaxLagSeries, lag series are dropped in a stable order and counted.
func TestLagSeriesCap(t *testing.T) {
	var groups []admin.Group
	for g := range 3 {
		var lag []admin.PartitionLag
		for p := 3; p >= 0; p-- { // unsorted on purpose
			lag = append(lag, admin.PartitionLag{Topic: "t", Partition: int32(p), Lag: int64(10*g + p)})
		}
		groups = append(groups, admin.Group{ID: fmt.Sprintf("g%d", 2-g), State: "Stable", Lag: lag})
	}
	m := newMetrics(t, Options{Source: &fakeSource{groups: groups}, MaxLagSeries: 5, NoRuntimeMetrics: true})
	fams := scrape(t, m)
	if n := len(fams["sluice_consumer_lag"].Metric); n != 5 {
		t.Fatalf("%d lag series, want 5", n)
	}
	// g0 is groups[2] (lags 20..23); then g1 = groups[1], partition 0.
	expect(t, fams, 20, "sluice_consumer_lag", "group", "g0", "topic", "t", "partition", "0")
	expect(t, fams, 23, "sluice_consumer_lag", "group", "g0", "topic", "t", "partition", "3")
	expect(t, fams, 10, "sluice_consumer_lag", "group", "g1", "topic", "t", "partition", "0")
	absent(t, fams, "sluice_consumer_lag", "group", "g1", "topic", "t", "partition", "1")
	expect(t, fams, 7, "sluice_consumer_lag_series_dropped_total") // 12 - 5
	expect(t, fams, 3, "sluice_consumer_groups", "state", "Stable")
	fams = scrape(t, m)
	expect(t, fams, 14, "sluice_consumer_lag_series_dropped_total")
}

// Every metric the package can export is documented in docs/metrics.md,
// every documented sluice_ name is exported, and the names pass
// Prometheus' linter.
func TestDocumented(t *testing.T) {
	doc, err := os.ReadFile("../../docs/metrics.md")
	if err != nil {
		t.Fatal(err)
	}
	documented := map[string]bool{}
	for _, match := range regexp.MustCompile("(?m)^\\| `(sluice_[a-z_]+)` \\| (\\w+) \\|").FindAllStringSubmatch(string(doc), -1) {
		documented[match[1]] = true
	}
	m, fams := fullyLoaded(t)
	for name := range fams {
		if strings.HasPrefix(name, "sluice_") && !documented[name] {
			t.Errorf("%s is exported but not in docs/metrics.md", name)
		}
	}
	for name := range documented {
		if fams[name] == nil {
			t.Errorf("%s is documented but not exported", name)
		}
	}
	problems, err := lint(m)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		if strings.HasPrefix(p.Metric, "sluice_") {
			t.Errorf("promlint: %s: %s", p.Metric, p.Text)
		}
	}
}

// fullyLoaded returns a Metrics with every input set and every metric
// observed once, and its scrape.
func fullyLoaded(t *testing.T) (*Metrics, map[string]*dto.MetricFamily) {
	src := &fakeSource{
		topics: []admin.Topic{{Name: "t", Partitions: []admin.Partition{{Partition: 0}}}},
		groups: []admin.Group{{ID: "g", State: "Stable", Lag: []admin.PartitionLag{{Topic: "t"}}}},
	}
	m := newMetrics(t, Options{
		Source:       src,
		ServerStats:  func() server.Stats { return server.Stats{} },
		StorageStats: func() storage.Stats { return storage.Stats{} },
		DiskSpace:    DiskSpace(t.TempDir()),
	})
	m.ObserveProduceStages(0, 0, 0)
	m.ObserveRequest(0, 0, 0, false, server.Response{ErrorCodes: []int16{3}})
	m.ObserveProduce("t", 1, 1, 0)
	m.ObserveFetch("t", 1, 1)
	m.ObserveWALSync(1, 1, 0)
	m.SetRecovery(time.Second)
	return m, scrape(t, m)
}

func TestDiskSpace(t *testing.T) {
	free, total, err := DiskSpace(t.TempDir())()
	if err != nil || total <= 0 || free < 0 || free > total {
		t.Fatalf("DiskSpace: free %d total %d err %v", free, total, err)
	}
	if _, _, err := DiskSpace(t.TempDir() + "/missing")(); err == nil {
		t.Fatal("DiskSpace of a missing directory: no error")
	}
	// A failing DiskSpace leaves the disk metrics out of the scrape only.
	m := newMetrics(t, Options{NoRuntimeMetrics: true, DiskSpace: func() (int64, int64, error) { return 0, 0, errors.New("boom") }})
	fams := scrape(t, m)
	absent(t, fams, "sluice_disk_free_bytes")
	expect(t, fams, 0, "sluice_consumer_lag_series_dropped_total")
}

// Unknown and out-of-range API keys get bounded label values.
func TestRequestKeys(t *testing.T) {
	m := newMetrics(t, Options{NoRuntimeMetrics: true})
	m.ObserveRequest(-1, 0, 0, true, server.Response{})
	m.ObserveRequest(1000, 0, 0, false, server.Response{})
	m.ObserveRequest(127, 0, 0, false, server.Response{})
	m.ObserveRequest(1, 0, 0, false, server.Response{})
	fams := scrape(t, m)
	expect(t, fams, 2, "sluice_requests_total", "api", "unknown")
	expect(t, fams, 1, "sluice_request_errors_total", "api", "unknown")
	expect(t, fams, 1, "sluice_requests_total", "api", "key_127")
	expect(t, fams, 1, "sluice_requests_total", "api", "Fetch")
	absent(t, fams, "sluice_requests_in_flight") // no ServerStats
}

// A nil *Metrics is a valid, silent no-op.
func TestNilMetrics(t *testing.T) {
	var m *Metrics
	m.ObserveRequest(0, 0, time.Second, true, server.Response{})
	m.ObserveProduce("t", 1, 1, time.Second)
	m.ObserveFetch("t", 1, 1)
	m.ObserveWALSync(1, 1, time.Second)
	m.SetRecovery(time.Second)
	if m.Handler() != nil {
		t.Fatal("nil Metrics has a handler")
	}
	// Its methods fit the hooks they are meant for.
	_ = server.Options{OnResponse: m.ObserveRequest}
	_ = wal.Options{OnSync: m.ObserveWALSync}
}

func TestOptionsValidate(t *testing.T) {
	o := Options{MaxTopicLabels: -1, MaxLagSeries: -2}
	err := o.Validate()
	if err == nil || !strings.Contains(err.Error(), "MaxTopicLabels") || !strings.Contains(err.Error(), "MaxLagSeries") {
		t.Fatalf("Validate: %v", err)
	}
	if _, err := New(o); err == nil {
		t.Fatal("New accepted bad options")
	}
	if err := (&Options{}).Validate(); err != nil {
		t.Fatalf("zero Options: %v", err)
	}
}

// Observations from many goroutines while scraping: counts add up (and
// the race detector sees the table's copy-on-write).
func TestConcurrent(t *testing.T) {
	m := newMetrics(t, Options{NoRuntimeMetrics: true, MaxTopicLabels: 10})
	const workers, each = 4, 500
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				topic := fmt.Sprintf("t%d", (w*each+i)%20)
				m.ObserveProduce(topic, 1, 10, time.Microsecond)
				m.ObserveRequest(int16(i%3), 0, time.Microsecond, false, server.Response{})
			}
		})
	}
	wg.Go(func() {
		for range 5 {
			rec := httptest.NewRecorder()
			m.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
			_, _ = io.Copy(io.Discard, rec.Body)
		}
	})
	wg.Wait()
	fams := scrape(t, m)
	var records float64
	for _, s := range fams["sluice_topic_received_records_total"].Metric {
		records += s.Counter.GetValue()
	}
	if records != workers*each {
		t.Fatalf("%v records over all topic series, want %d", records, workers*each)
	}
	if n := len(fams["sluice_topic_received_records_total"].Metric); n != 11 {
		t.Fatalf("%d topic series, want 10 and _other", n)
	}
	expect(t, fams, workers*each, "sluice_produce_duration_seconds")
}
