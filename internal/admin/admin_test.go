package admin_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
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

	topicConfigs map[string][]admin.ConfigEntry
	pages        map[string]admin.RecordPage // by "topic/partition"
	recordsErr   error
	// The arguments of the last Records call.
	lastOffset int64
	lastLimit  int
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
	f.mu.Lock()
	defer f.mu.Unlock()
	// A fresh snapshot, as Source promises: callers (the metrics
	// collector) sort what they get in place.
	out := slices.Clone(f.topics)
	for i := range out {
		out[i].Partitions = slices.Clone(out[i].Partitions)
	}
	return out
}
func (f *fakeSource) Groups() []admin.Group {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := slices.Clone(f.groups)
	for i := range out {
		out[i].Lag = slices.Clone(out[i].Lag)
		out[i].MemberList = slices.Clone(out[i].MemberList)
	}
	return out
}

func (f *fakeSource) setTopics(ts []admin.Topic) {
	f.mu.Lock()
	f.topics = ts
	f.mu.Unlock()
}

func (f *fakeSource) setGroups(gs []admin.Group) {
	f.mu.Lock()
	f.groups = gs
	f.mu.Unlock()
}

func (f *fakeSource) Config() []admin.ConfigEntry { return slices.Clone(f.config) }

func (f *fakeSource) TopicConfigs(topic string) ([]admin.ConfigEntry, bool) {
	c, ok := f.topicConfigs[topic]
	return slices.Clone(c), ok
}

// Records serves the page stored for the partition, as is: the handler's
// own bounds are what the tests check.
func (f *fakeSource) Records(topic string, partition int32, offset int64, limit int) (admin.RecordPage, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.lastOffset, f.lastLimit = offset, limit
	if f.recordsErr != nil {
		return admin.RecordPage{}, f.recordsErr
	}
	var known bool
	for _, t := range f.topics {
		known = known || t.Name == topic
	}
	if !known {
		return admin.RecordPage{}, fmt.Errorf("fake: %w: %s", admin.ErrUnknownTopic, topic)
	}
	page, ok := f.pages[fmt.Sprintf("%s/%d", topic, partition)]
	if !ok {
		return admin.RecordPage{}, fmt.Errorf("fake: %w: %d", admin.ErrUnknownPartition, partition)
	}
	return page, nil
}

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
			{ID: "billing", Type: "classic", State: "Stable", Members: 3,
				ProtocolType: "consumer", Protocol: "cooperative-sticky", Generation: 4,
				MemberList: []admin.Member{
					{ID: "m-2", ClientID: "app", Host: "/127.0.0.1", Assignments: []admin.Assignment{
						{Topic: "orders", Partitions: []int32{1, 0}},
						{Topic: "audit", Partitions: nil},
					}},
					{ID: "m-1", InstanceID: "pod-1", ClientID: "app", Host: "/127.0.0.2"},
					{ID: "m-3", ClientID: "other"},
				},
				Lag: []admin.PartitionLag{
					{Topic: "orders", Partition: 1, Committed: 7, End: 7, Lag: 0},
					{Topic: "orders", Partition: 0, Committed: 60, End: 100, Lag: 40},
				}},
			{ID: "audit", Type: "consumer", State: "Empty"},
		},
		config: []admin.ConfigEntry{
			{Name: "log.retention.ms", Value: "604800000", Source: "default"},
			{Name: "broker.id", Value: "1", Source: "config_file"},
		},
		topicConfigs: map[string][]admin.ConfigEntry{
			"orders": {
				{Name: "retention.ms", Value: "3600000", Source: "TOPIC_CONFIG"},
				{Name: "cleanup.policy", Value: "delete", Source: "DEFAULT_CONFIG"},
			},
		},
		pages: map[string]admin.RecordPage{
			"orders/0": {LogStart: 5, HighWatermark: 100, Records: []admin.Record{
				{Offset: 97, TimestampMs: 1700000000000, Key: []byte("k"), Value: []byte("hello"), KeySize: 1, ValueSize: 5,
					Headers: []admin.RecordHeader{{Key: "trace", Value: []byte{0, 1}}, {Key: "nil", Value: nil}}},
				{Offset: 98, TimestampMs: 1700000000001, Key: nil, KeySize: -1, Value: bytes.Repeat([]byte{'x'}, 5000), ValueSize: 5000},
				{Offset: 99, TimestampMs: 1700000000002, Key: []byte{}, KeySize: 0, Value: nil, ValueSize: -1},
			}},
			"orders/1": {LogStart: 0, HighWatermark: 7},
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
		// records: (100 - 5) + (7 - 0), the offsets a consumer would read.
		{Name: "orders", ID: "AAAAAAAAAAAAAAAAAAAAAQ", Partitions: 2, Records: 102, SizeBytes: 4608, Segments: 3},
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
	decode(t, body, []string{"name", "id", "internal", "records", "size_bytes", "segments", "partitions", "configs"}, &topic)
	wantParts := []admin.PartitionJSON{
		{Partition: 0, LogStartOffset: 5, HighWatermark: 100, LastStableOffset: 90, SizeBytes: 4096, Segments: 2},
		{Partition: 1, HighWatermark: 7, LastStableOffset: 7, SizeBytes: 512, Segments: 1},
	}
	if !reflect.DeepEqual(topic.Partitions, wantParts) || topic.SizeBytes != 4608 || topic.Records != 102 {
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
	decode(t, body, []string{"group_id", "type", "state", "protocol_type", "protocol", "generation", "members", "lag", "partitions"}, &g)
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
		{"GET", "/nope", http.StatusNotFound},
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
	o := admin.Options{Addr: "nope", RequestTimeout: -1, ReadHeaderTimeout: -1, IdleTimeout: -1, MaxHeaderBytes: -1,
		HistoryInterval: time.Millisecond, HistorySamples: admin.HistorySamplesMax + 1}
	err := o.Validate()
	for _, f := range []string{"Addr", "RequestTimeout", "ReadHeaderTimeout", "IdleTimeout", "MaxHeaderBytes", "HistoryInterval", "HistorySamples"} {
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

func TestTopicConfigsJSON(t *testing.T) {
	h := newServer(t, newSource(), nil).Handler()
	code, body, _ := get(t, h, "GET", "/api/topics/orders")
	if code != 200 {
		t.Fatalf("/api/topics/orders: %d %s", code, body)
	}
	var topic admin.TopicJSON
	decode(t, body, []string{"name", "id", "internal", "records", "size_bytes", "segments", "partitions", "configs"}, &topic)
	want := []admin.ConfigEntryJSON{
		{Name: "cleanup.policy", Value: "delete", Source: "DEFAULT_CONFIG"},
		{Name: "retention.ms", Value: "3600000", Source: "TOPIC_CONFIG"},
	}
	if !reflect.DeepEqual(topic.Configs, want) {
		t.Errorf("configs %+v, want %+v (sorted by name)", topic.Configs, want)
	}
	// A topic the Source lists without configs (deleted in between):
	// an empty list, never null.
	_, body, _ = get(t, h, "GET", "/api/topics/__consumer_offsets")
	if !strings.Contains(body, `"configs":[]`) {
		t.Errorf("configs of a topic without any: %s", body)
	}
}

func TestGroupMembersJSON(t *testing.T) {
	h := newServer(t, newSource(), nil).Handler()
	code, body, _ := get(t, h, "GET", "/api/groups/billing")
	if code != 200 {
		t.Fatalf("/api/groups/billing: %d", code)
	}
	var g admin.GroupJSON
	decode(t, body, []string{"group_id", "type", "state", "protocol_type", "protocol", "generation", "members", "lag", "partitions"}, &g)
	if g.ProtocolType != "consumer" || g.Protocol != "cooperative-sticky" || g.Generation != 4 {
		t.Errorf("group %+v", g)
	}
	pod := "pod-1"
	want := []admin.MemberJSON{
		{MemberID: "m-1", InstanceID: &pod, ClientID: "app", Host: "/127.0.0.2", Assignments: []admin.AssignmentJSON{}},
		{MemberID: "m-2", ClientID: "app", Host: "/127.0.0.1", Assignments: []admin.AssignmentJSON{
			{Topic: "audit", Partitions: []int32{}},
			{Topic: "orders", Partitions: []int32{0, 1}},
		}},
		{MemberID: "m-3", ClientID: "other", Assignments: []admin.AssignmentJSON{}},
	}
	if !reflect.DeepEqual(g.Members, want) {
		t.Errorf("members %+v\nwant %+v", g.Members, want)
	}
	for _, frag := range []string{
		`{"member_id":"m-1","instance_id":"pod-1","client_id":"app","host":"/127.0.0.2","assignments":[]}`,
		`"instance_id":null`,
		`{"topic":"audit","partitions":[]}`,
	} {
		if !strings.Contains(body, frag) {
			t.Errorf("body lacks %s: %s", frag, body)
		}
	}
	// The summary keeps members as a count.
	_, body, _ = get(t, h, "GET", "/api/groups")
	if !strings.Contains(body, `"members":3`) {
		t.Errorf("/api/groups lost the member count: %s", body)
	}
	_, body, _ = get(t, h, "GET", "/api/groups/audit")
	if !strings.Contains(body, `"members":[]`) {
		t.Errorf("a group without members: %s", body)
	}
}

func TestRecordsJSON(t *testing.T) {
	src := newSource()
	h := newServer(t, src, nil).Handler()

	code, body, _ := get(t, h, "GET", "/api/topics/orders/records")
	if code != 200 {
		t.Fatalf("records: %d %s", code, body)
	}
	var page admin.RecordsJSON
	decode(t, body, []string{"topic", "partition", "log_start_offset", "high_watermark", "records"}, &page)
	if page.Topic != "orders" || page.Partition != 0 || page.LogStartOffset != 5 || page.HighWatermark != 100 || len(page.Records) != 3 {
		t.Fatalf("page %+v", page)
	}
	// Defaults: the last 20 records of partition 0.
	if src.lastOffset != -1 || src.lastLimit != admin.RecordsLimitDefault {
		t.Errorf("Records called with offset %d limit %d", src.lastOffset, src.lastLimit)
	}
	r0, r1, r2 := page.Records[0], page.Records[1], page.Records[2]
	if r0.Offset != 97 || string(r0.Key) != "k" || string(r0.Value) != "hello" || r0.Truncated || r0.TimestampMs != 1700000000000 {
		t.Errorf("record 0 %+v", r0)
	}
	if len(r0.Headers) != 2 || r0.Headers[0].Key != "trace" || !bytes.Equal(r0.Headers[0].Value, []byte{0, 1}) || r0.Headers[1].Value != nil {
		t.Errorf("headers %+v", r0.Headers)
	}
	// A value past RecordFieldBytesMax is cut and the record marked;
	// value_size keeps the full length.
	if r1.Key != nil || r1.KeySize != -1 || len(r1.Value) != admin.RecordFieldBytesMax || r1.ValueSize != 5000 || !r1.Truncated {
		t.Errorf("record 1: key %v key_size %d value %d bytes value_size %d truncated %v", r1.Key, r1.KeySize, len(r1.Value), r1.ValueSize, r1.Truncated)
	}
	if r2.Key == nil || len(r2.Key) != 0 || r2.Value != nil || r2.ValueSize != -1 {
		t.Errorf("record 2 (empty key, null value) %+v", r2)
	}
	var raw struct {
		Records []map[string]any `json:"records"`
	}
	if err := json.Unmarshal([]byte(body), &raw); err != nil {
		t.Fatal(err)
	}
	wantKeys := []string{"offset", "timestamp_ms", "key", "value", "key_size", "value_size", "truncated", "headers"}
	for i, rec := range raw.Records {
		for _, k := range wantKeys {
			if _, ok := rec[k]; !ok {
				t.Errorf("record %d lacks %s", i, k)
			}
		}
		if len(rec) != len(wantKeys) {
			t.Errorf("record %d has fields %v", i, rec)
		}
	}
	if raw.Records[0]["value"] != base64.StdEncoding.EncodeToString([]byte("hello")) || raw.Records[1]["key"] != nil ||
		raw.Records[2]["key"] != "" || raw.Records[2]["value"] != nil {
		t.Errorf("base64 and nulls: %s", body)
	}
	if !strings.Contains(body, `"headers":[{"key":"trace","value":"AAE="},{"key":"nil","value":null}]`) ||
		!strings.Contains(body, `"headers":[]`) {
		t.Errorf("headers: %s", body)
	}

	// Parameters reach the Source; limit is capped.
	if code, body, _ := get(t, h, "GET", "/api/topics/orders/records?partition=1&offset=3&limit=5000"); code != 200 ||
		!strings.Contains(body, `"partition":1`) || !strings.Contains(body, `"records":[]`) {
		t.Errorf("partition 1: %d %s", code, body)
	}
	if src.lastOffset != 3 || src.lastLimit != admin.RecordsLimitMax {
		t.Errorf("Records called with offset %d limit %d, want 3 %d", src.lastOffset, src.lastLimit, admin.RecordsLimitMax)
	}
	// The handler serves no more than limit even if the Source does.
	if _, body, _ := get(t, h, "GET", "/api/topics/orders/records?limit=2"); strings.Count(body, `"offset":`) != 2 {
		t.Errorf("limit=2 served %s", body)
	}

	for _, tc := range []struct {
		query string
		code  int
	}{
		{"partition=x", 400},
		{"partition=-1", 400},
		{"partition=99999999999", 400},
		{"offset=abc", 400},
		{"offset=-5", 400},
		{"limit=0", 400},
		{"limit=-3", 400},
		{"limit=ten", 400},
		{"partition=7", 404},
	} {
		code, body, _ := get(t, h, "GET", "/api/topics/orders/records?"+tc.query)
		var e admin.ErrorJSON
		if code != tc.code {
			t.Errorf("?%s: %d %s, want %d", tc.query, code, body, tc.code)
			continue
		}
		decode(t, body, []string{"error"}, &e)
	}
	if code, _, _ := get(t, h, "GET", "/api/topics/nope/records"); code != 404 {
		t.Errorf("unknown topic: %d", code)
	}
	if code, _, _ := get(t, h, "POST", "/api/topics/orders/records"); code != http.StatusMethodNotAllowed {
		t.Errorf("POST records: %d", code)
	}
	src.recordsErr = errors.New("disk on fire")
	if code, body, _ := get(t, h, "GET", "/api/topics/orders/records"); code != 500 || !strings.Contains(body, "disk on fire") {
		t.Errorf("Source error: %d %s", code, body)
	}
}

// The server samples from Start to Shutdown, keeps HistorySamples, and
// serves them on /api/history; Shutdown stops the sampler (goleak checks
// it is gone).
func TestHistoryServed(t *testing.T) {
	src := newSource()
	s := newServer(t, src, func(o *admin.Options) {
		o.HistoryInterval = 20 * time.Millisecond
		o.HistorySamples = 3
	})
	h := s.Handler()
	history := func() admin.HistoryJSON {
		t.Helper()
		code, body, _ := get(t, h, "GET", "/api/history")
		if code != 200 {
			t.Fatalf("/api/history: %d %s", code, body)
		}
		var out admin.HistoryJSON
		decode(t, body, []string{"interval_ms", "times_ms", "topics", "groups"}, &out)
		return out
	}
	if got := history(); len(got.TimesMs) != 0 || got.IntervalMs != 20 {
		t.Fatalf("before Start: %+v", got)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	// The first sample is taken at Start.
	waitUntil(t, "a first sample", func() bool { return len(history().TimesMs) >= 1 })
	got := history()
	orders, ok := got.Topics["orders"]
	if !ok || *orders.Records[0] != 107 || *orders.Bytes[0] != 4608 || *got.Groups["billing"].Lag[0] != 40 {
		t.Fatalf("first sample %+v", got)
	}
	if _, ok := got.Topics["__consumer_offsets"]; !ok {
		t.Error("internal topics are sampled too")
	}
	// A topic that appears later is null before it existed.
	src.setTopics(append(slices.Clone(src.topics), admin.Topic{Name: "new", Partitions: []admin.Partition{{HighWatermark: 1}}}))
	src.setGroups(nil)
	waitUntil(t, "a full ring with the new topic", func() bool {
		h := history()
		n := len(h.TimesMs)
		return n == 3 && h.Topics["new"].Records[n-1] != nil && h.Topics["new"].Records[0] == nil
	})
	got = history()
	if !slices.IsSorted(got.TimesMs) {
		t.Errorf("times not oldest first: %v", got.TimesMs)
	}
	for name, th := range got.Topics {
		if len(th.Records) != 3 || len(th.Bytes) != 3 {
			t.Errorf("topic %s series %d/%d long", name, len(th.Records), len(th.Bytes))
		}
	}
	if g, ok := got.Groups["billing"]; ok && (len(g.Lag) != 3 || g.Lag[2] != nil) {
		t.Errorf("billing after it went away: %+v", g.Lag)
	}
	time.Sleep(60 * time.Millisecond)
	if n := len(history().TimesMs); n != 3 {
		t.Errorf("ring holds %d samples, want 3", n)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	last := history().TimesMs
	time.Sleep(60 * time.Millisecond)
	if after := history().TimesMs; !slices.Equal(after, last) {
		t.Errorf("sampling went on after Shutdown: %v then %v", last, after)
	}
}

func waitUntil(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
