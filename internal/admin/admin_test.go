package admin_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluice-io/sluice/internal/admin"
	"github.com/sluice-io/sluice/internal/metrics"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type fakeSource struct {
	mu     sync.Mutex
	ready  error
	topics []admin.Topic
	groups []admin.Group
	config []admin.ConfigEntry
	block  chan struct{} // if set, Topics waits on it
}

func (f *fakeSource) Ready() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.ready
}

func (f *fakeSource) setReady(err error) {
	f.mu.Lock()
	f.ready = err
	f.mu.Unlock()
}

func (f *fakeSource) Topics() []admin.Topic {
	if f.block != nil {
		<-f.block
	}
	return slices.Clone(f.topics)
}
func (f *fakeSource) Groups() []admin.Group       { return slices.Clone(f.groups) }
func (f *fakeSource) Config() []admin.ConfigEntry { return slices.Clone(f.config) }

func newSource() *fakeSource {
	return &fakeSource{
		ready: errors.New("recovering partitions"),
		topics: []admin.Topic{
			{Name: "orders", ID: "AAAAAAAAAAAAAAAAAAAAAQ", Partitions: []admin.Partition{
				{Partition: 1, HighWatermark: 7, LastStable: 7, SizeBytes: 512, Segments: 1},
				{Partition: 0, LogStart: 5, HighWatermark: 100, LastStable: 90, SizeBytes: 4096, Segments: 2},
			}},
			{Name: "__consumer_offsets", Internal: true, Partitions: []admin.Partition{{Partition: 0, SizeBytes: 10, Segments: 1}}},
		},
		groups: []admin.Group{
			{ID: "billing", Type: "classic", State: "Stable", Members: 3, Lag: []admin.PartitionLag{
				{Topic: "orders", Partition: 1, Committed: 7, End: 7, Lag: 0},
				{Topic: "orders", Partition: 0, Committed: 60, End: 100, Lag: 40},
			}},
			{ID: "audit", Type: "consumer", State: "Empty"},
		},
		config: []admin.ConfigEntry{
			{Name: "log.retention.ms", Value: "604800000", Source: "default"},
			{Name: "broker.id", Value: "1", Source: "config_file"},
		},
	}
}

func newServer(t *testing.T, src admin.Source, mod func(*admin.Options)) *admin.Server {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	opts := admin.Options{Listener: ln}
	if mod != nil {
		mod(&opts)
	}
	s, err := admin.New(opts, src)
	if err != nil {
		ln.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	})
	return s
}

// get serves one request through the handler.
func get(t *testing.T, h http.Handler, method, path string) (int, string, http.Header) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(method, path, nil))
	return rec.Code, rec.Body.String(), rec.Header()
}

func TestProbes(t *testing.T) {
	src := newSource()
	h := newServer(t, src, nil).Handler()

	if code, body, _ := get(t, h, "GET", "/healthz"); code != 200 || body != "ok\n" {
		t.Errorf("/healthz: %d %q", code, body)
	}
	code, body, _ := get(t, h, "GET", "/readyz")
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "recovering partitions") {
		t.Errorf("/readyz while recovering: %d %q", code, body)
	}
	src.setReady(nil)
	if code, body, _ := get(t, h, "GET", "/readyz"); code != 200 || body != "ready\n" {
		t.Errorf("/readyz when ready: %d %q", code, body)
	}
	// Not ready again (storage went read-only): 503 again.
	src.setReady(errors.New("storage: wal failed"))
	if code, _, _ := get(t, h, "GET", "/readyz"); code != http.StatusServiceUnavailable {
		t.Errorf("/readyz after a failure: %d", code)
	}
}

// decode checks a JSON body's exact field names, recursively, against want
// (a value of the documented shape), and decodes it into out.
func decode(t *testing.T, body string, wantKeys []string, out any) {
	t.Helper()
	var raw map[string]any
	if err := json.Unmarshal([]byte(body), &raw); err != nil {
		t.Fatalf("not JSON: %v: %s", err, body)
	}
	var keys []string
	for k := range raw {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	slices.Sort(wantKeys)
	if !slices.Equal(keys, wantKeys) {
		t.Errorf("fields %v, want %v", keys, wantKeys)
	}
	dec := json.NewDecoder(strings.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(out); err != nil {
		t.Fatalf("decoding %s: %v", body, err)
	}
}

func TestTopicsJSON(t *testing.T) {
	h := newServer(t, newSource(), nil).Handler()

	code, body, hdr := get(t, h, "GET", "/api/topics")
	if code != 200 || hdr.Get("Content-Type") != "application/json" {
		t.Fatalf("/api/topics: %d %s %q", code, hdr.Get("Content-Type"), body)
	}
	var list struct{ Topics []admin.TopicSummaryJSON }
	decode(t, body, []string{"topics"}, &list)
	want := []admin.TopicSummaryJSON{
		{Name: "__consumer_offsets", Internal: true, Partitions: 1, SizeBytes: 10, Segments: 1},
		{Name: "orders", ID: "AAAAAAAAAAAAAAAAAAAAAQ", Partitions: 2, SizeBytes: 4608, Segments: 3},
	}
	if !reflect.DeepEqual(list.Topics, want) {
		t.Errorf("topics %+v, want %+v", list.Topics, want)
	}
	if !strings.Contains(body, `"size_bytes":4608`) || !strings.Contains(body, `"internal":true`) {
		t.Errorf("snake_case fields missing: %s", body)
	}

	code, body, _ = get(t, h, "GET", "/api/topics/orders")
	if code != 200 {
		t.Fatalf("/api/topics/orders: %d %s", code, body)
	}
	var topic admin.TopicJSON
	decode(t, body, []string{"name", "id", "internal", "size_bytes", "segments", "partitions"}, &topic)
	wantParts := []admin.PartitionJSON{
		{Partition: 0, LogStartOffset: 5, HighWatermark: 100, LastStableOffset: 90, SizeBytes: 4096, Segments: 2},
		{Partition: 1, HighWatermark: 7, LastStableOffset: 7, SizeBytes: 512, Segments: 1},
	}
	if !reflect.DeepEqual(topic.Partitions, wantParts) || topic.SizeBytes != 4608 {
		t.Errorf("topic %+v", topic)
	}
	for _, f := range []string{"partition", "log_start_offset", "high_watermark", "last_stable_offset"} {
		if !strings.Contains(body, `"`+f+`":`) {
			t.Errorf("field %s missing: %s", f, body)
		}
	}

	code, body, _ = get(t, h, "GET", "/api/topics/nope")
	var e admin.ErrorJSON
	if code != 404 {
		t.Errorf("unknown topic: %d", code)
	}
	decode(t, body, []string{"error"}, &e)
}

func TestGroupsAndConfigJSON(t *testing.T) {
	h := newServer(t, newSource(), nil).Handler()

	code, body, _ := get(t, h, "GET", "/api/groups")
	if code != 200 {
		t.Fatalf("/api/groups: %d", code)
	}
	var list struct{ Groups []admin.GroupSummaryJSON }
	decode(t, body, []string{"groups"}, &list)
	want := []admin.GroupSummaryJSON{
		{GroupID: "audit", Type: "consumer", State: "Empty"},
		{GroupID: "billing", Type: "classic", State: "Stable", Members: 3, Lag: 40},
	}
	if !reflect.DeepEqual(list.Groups, want) {
		t.Errorf("groups %+v, want %+v", list.Groups, want)
	}

	code, body, _ = get(t, h, "GET", "/api/groups/billing")
	if code != 200 {
		t.Fatalf("/api/groups/billing: %d", code)
	}
	var g admin.GroupJSON
	decode(t, body, []string{"group_id", "type", "state", "members", "lag", "partitions"}, &g)
	wantLag := []admin.PartitionLagJSON{
		{Topic: "orders", Partition: 0, CommittedOffset: 60, EndOffset: 100, Lag: 40},
		{Topic: "orders", Partition: 1, CommittedOffset: 7, EndOffset: 7, Lag: 0},
	}
	if !reflect.DeepEqual(g.Partitions, wantLag) || g.Lag != 40 {
		t.Errorf("group %+v", g)
	}
	if !strings.Contains(body, `"committed_offset":60`) || !strings.Contains(body, `"end_offset":100`) {
		t.Errorf("snake_case fields missing: %s", body)
	}
	if code, _, _ := get(t, h, "GET", "/api/groups/nope"); code != 404 {
		t.Errorf("unknown group: %d", code)
	}

	code, body, _ = get(t, h, "GET", "/api/config")
	if code != 200 {
		t.Fatalf("/api/config: %d", code)
	}
	var cfg struct{ Config []admin.ConfigEntryJSON }
	decode(t, body, []string{"config"}, &cfg)
	if len(cfg.Config) != 2 || cfg.Config[0].Name != "broker.id" || cfg.Config[1].Source != "default" {
		t.Errorf("config %+v", cfg.Config)
	}
	if !strings.Contains(body, `{"name":"broker.id","value":"1","source":"config_file"}`) {
		t.Errorf("config entry shape: %s", body)
	}
}

// Only GET (and HEAD); unknown paths are 404; no /metrics without a
// metrics handler.
func TestMethodsAndPaths(t *testing.T) {
	h := newServer(t, newSource(), nil).Handler()
	for _, tc := range []struct {
		method, path string
		code         int
	}{
		{"POST", "/api/topics", http.StatusMethodNotAllowed},
		{"DELETE", "/api/topics/orders", http.StatusMethodNotAllowed},
		{"PUT", "/healthz", http.StatusMethodNotAllowed},
		{"HEAD", "/healthz", http.StatusOK},
		{"GET", "/api/nope", http.StatusNotFound},
		{"GET", "/api/topics/orders/extra", http.StatusNotFound},
		{"GET", "/metrics", http.StatusNotFound},
		{"GET", "/", http.StatusNotFound},
	} {
		if code, body, _ := get(t, h, tc.method, tc.path); code != tc.code {
			t.Errorf("%s %s: %d %q, want %d", tc.method, tc.path, code, body, tc.code)
		}
	}
}

// A Source that hangs gets a 503 after RequestTimeout, not a stuck client.
func TestRequestTimeout(t *testing.T) {
	src := newSource()
	src.block = make(chan struct{})
	defer close(src.block)
	h := newServer(t, src, func(o *admin.Options) { o.RequestTimeout = 50 * time.Millisecond }).Handler()
	code, body, _ := get(t, h, "GET", "/api/topics")
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "timed out") {
		t.Errorf("hung Source: %d %q", code, body)
	}
}

// Over a real socket, with internal/metrics plugged in: readiness flips,
// /metrics is valid exposition carrying the Source's values, and Shutdown
// leaves no goroutine behind.
func TestServeWithMetrics(t *testing.T) {
	src := newSource()
	m, err := metrics.New(metrics.Options{Source: src, NoRuntimeMetrics: true})
	if err != nil {
		t.Fatal(err)
	}
	s := newServer(t, src, func(o *admin.Options) { o.Metrics = m.Handler() })
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err == nil {
		t.Error("second Start: no error")
	}
	base := "http://" + s.Addr().String()
	client := &http.Client{Timeout: 5 * time.Second}
	fetch := func(path string) (int, string) {
		t.Helper()
		resp, err := client.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, string(b)
	}
	if code, _ := fetch("/readyz"); code != 503 {
		t.Errorf("/readyz during recovery: %d", code)
	}
	m.ObserveProduce("orders", 3, 300, time.Millisecond)
	src.setReady(nil)
	if code, _ := fetch("/readyz"); code != 200 {
		t.Errorf("/readyz after recovery: %d", code)
	}
	code, body := fetch("/metrics")
	if code != 200 {
		t.Fatalf("/metrics: %d", code)
	}
	for _, line := range []string{
		"sluice_ready 1",
		`sluice_topic_received_records_total{topic="orders"} 3`,
		`sluice_consumer_lag{group="billing",partition="0",topic="orders"} 40`,
		`sluice_partition_high_watermark{partition="0",topic="orders"} 100`,
	} {
		if !strings.Contains(body, line+"\n") {
			t.Errorf("/metrics lacks %q", line)
		}
	}
	client.CloseIdleConnections()
}

func TestShutdownBeforeStart(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s, err := admin.New(admin.Options{Listener: ln}, newSource())
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); !errors.Is(err, admin.ErrClosed) {
		t.Fatalf("Start after Shutdown: %v", err)
	}
	if err := s.Shutdown(context.Background()); err != nil {
		t.Fatalf("second Shutdown: %v", err)
	}
	if _, err := net.DialTimeout("tcp", ln.Addr().String(), time.Second); err == nil {
		t.Error("listener still open after Shutdown")
	}
}

func TestOptions(t *testing.T) {
	o := admin.Options{Addr: "nope", RequestTimeout: -1, ReadHeaderTimeout: -1, IdleTimeout: -1, MaxHeaderBytes: -1}
	err := o.Validate()
	for _, f := range []string{"Addr", "RequestTimeout", "ReadHeaderTimeout", "IdleTimeout", "MaxHeaderBytes"} {
		if err == nil || !strings.Contains(err.Error(), f) {
			t.Errorf("Validate does not report %s: %v", f, err)
		}
	}
	if _, err := admin.New(o, newSource()); err == nil {
		t.Error("New accepted bad options")
	}
	if _, err := admin.New(admin.Options{Addr: "127.0.0.1:0"}, nil); err == nil {
		t.Error("New accepted a nil Source")
	}
	// Addr binds at New, so Addr() is valid before Start.
	s, err := admin.New(admin.Options{Addr: "127.0.0.1:0"}, newSource())
	if err != nil {
		t.Fatal(err)
	}
	if s.Addr().(*net.TCPAddr).Port == 0 {
		t.Error("no port bound")
	}
	if err := s.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
}
