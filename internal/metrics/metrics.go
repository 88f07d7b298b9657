package metrics

import (
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/internal/server"
)

// maxAPIKeys bounds the API keys with their own label value; a key outside
// [0, maxAPIKeys) is counted as api="unknown". Kafka's keys stay well below.
const maxAPIKeys = 128

// Histogram buckets, in the metric's unit.
var (
	// Request and produce latency: from a cached metadata answer to a
	// long-poll fetch or an acks=all produce waiting out a slow disk.
	latencyBuckets = []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}
	// fdatasync: tens of microseconds on NVMe, tens of milliseconds on
	// spinning or networked disks.
	syncBuckets        = []float64{.00005, .0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1}
	syncBytesBuckets   = prometheus.ExponentialBuckets(512, 4, 11) // 512 B .. 512 MiB
	syncRecordsBuckets = prometheus.ExponentialBuckets(1, 4, 10)   // 1 .. 262144
)

// Metrics holds Sluice's metrics and serves them. A nil *Metrics does
// nothing. It is safe for concurrent use.
type Metrics struct {
	opts   Options
	log    *slog.Logger
	reg    *prometheus.Registry
	topics *topicTable

	requests        *prometheus.CounterVec
	requestErrors   *prometheus.CounterVec
	responseErrors  *prometheus.CounterVec
	requestDuration *prometheus.HistogramVec
	api             [maxAPIKeys + 1]atomic.Pointer[apiSeries] // last: unknown
	completed       atomic.Uint64                             // ObserveRequest calls, for in-flight

	produceDuration prometheus.Histogram
	produceStages   *prometheus.HistogramVec
	stageQueue      prometheus.Observer
	stageWAL        prometheus.Observer
	stageResponse   prometheus.Observer
	syncDuration    prometheus.Histogram
	syncBytes       prometheus.Histogram
	syncRecords     prometheus.Histogram

	recoveryNanos atomic.Int64 // -1 until SetRecovery
	lagDropped    atomic.Uint64
}

// apiSeries are one API key's children of the request vectors, looked up
// once so an observation is a few atomic adds.
type apiSeries struct {
	name             string
	requests, errors prometheus.Counter
	duration         prometheus.Observer
	codes            *prometheus.CounterVec // sluice_response_errors_total
	byCode           sync.Map               // int16 -> prometheus.Counter
}

// countError counts one Kafka error code in a response of this API.
func (s *apiSeries) countError(code int16) {
	if c, ok := s.byCode.Load(code); ok {
		c.(prometheus.Counter).Inc()
		return
	}
	c, _ := s.byCode.LoadOrStore(code, s.codes.WithLabelValues(s.name, errorName(code)))
	c.(prometheus.Counter).Inc()
}

// New builds a Metrics with its own registry.
func New(opts Options) (*Metrics, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	opts = opts.withDefaults()
	m := &Metrics{
		opts:   opts,
		log:    opts.Logger,
		reg:    prometheus.NewRegistry(),
		topics: newTopicTable(opts.MaxTopicLabels),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_requests_total",
			Help: "Kafka requests answered or abandoned, by API.",
		}, []string{"api"}),
		requestErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_request_errors_total",
			Help: "Kafka requests that got no response or closed their connection, by API.",
		}, []string{"api"}),
		responseErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_response_errors_total",
			Help: "Kafka error codes in responses (top level, per topic, partition, group or resource), by API and error.",
		}, []string{"api", "error"}),
		requestDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "sluice_request_duration_seconds",
			Help:    "Time from reading a Kafka request to writing its response, by API.",
			Buckets: latencyBuckets,
		}, []string{"api"}),
		produceDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "sluice_produce_duration_seconds",
			Help:    "Time from receiving a produce request's batches to acknowledging them.",
			Buckets: latencyBuckets,
		}),
		produceStages: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "sluice_produce_stage_duration_seconds",
			Help:    "Where a produce request's time goes: queue (receipt to handing its batches to the WAL), wal (to durable, or appended for acks=1), response (to the response written).",
			Buckets: latencyBuckets,
		}, []string{"stage"}),
		syncDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "sluice_wal_sync_duration_seconds",
			Help:    "Time of one WAL group commit: write and fdatasync.",
			Buckets: syncBuckets,
		}),
		syncBytes: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "sluice_wal_sync_batch_bytes",
			Help:    "Bytes written by one WAL group commit.",
			Buckets: syncBytesBuckets,
		}),
		syncRecords: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "sluice_wal_sync_batch_records",
			Help:    "WAL records covered by one group commit.",
			Buckets: syncRecordsBuckets,
		}),
	}
	m.recoveryNanos.Store(-1)
	m.stageQueue = m.produceStages.WithLabelValues("queue")
	m.stageWAL = m.produceStages.WithLabelValues("wal")
	m.stageResponse = m.produceStages.WithLabelValues("response")
	cs := []prometheus.Collector{
		m.requests, m.requestErrors, m.responseErrors, m.requestDuration,
		m.produceDuration, m.produceStages, m.syncDuration, m.syncBytes, m.syncRecords,
		&collector{m: m},
	}
	if !opts.NoRuntimeMetrics {
		cs = append(cs, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	for _, c := range cs {
		if err := m.reg.Register(c); err != nil {
			return nil, fmt.Errorf("metrics: register: %w", err)
		}
	}
	return m, nil
}

// Handler serves the Prometheus exposition (text, or protobuf/OpenMetrics
// when the scraper asks). A failing part of a scrape is logged and left
// out rather than failing the whole scrape. Nil on a nil Metrics.
func (m *Metrics) Handler() http.Handler {
	if m == nil {
		return nil
	}
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{
		ErrorLog:      slogPrintln{m.log},
		ErrorHandling: promhttp.ContinueOnError,
		// Scrapes are cheap but not free; more at once than this is a
		// misconfiguration, answered 503.
		MaxRequestsInFlight: 4,
	})
}

type slogPrintln struct{ log *slog.Logger }

func (l slogPrintln) Println(v ...any) { l.log.Warn("metrics: " + fmt.Sprint(v...)) }

// ObserveRequest records one Kafka request. Its signature is
// server.Options.OnResponse's: failed means no response was written or the
// connection was closed for it (server.Options.OnResponse says exactly
// when); the Kafka error codes inside resp are counted by name. version is
// not a label, to bound cardinality.
func (m *Metrics) ObserveRequest(key, version int16, d time.Duration, failed bool, resp server.Response) {
	if m == nil {
		return
	}
	s := m.apiSeriesFor(key)
	s.requests.Inc()
	if failed {
		s.errors.Inc()
	}
	if resp.Msg != nil {
		errorCodes(resp.Msg, s.countError)
	} else {
		for _, c := range resp.ErrorCodes {
			s.countError(c)
		}
	}
	s.duration.Observe(d.Seconds())
	m.completed.Add(1)
}

func (m *Metrics) apiSeriesFor(key int16) *apiSeries {
	i := int(key)
	if i < 0 || i >= maxAPIKeys {
		i = maxAPIKeys
	}
	if s := m.api[i].Load(); s != nil {
		return s
	}
	name := "unknown"
	if i < maxAPIKeys {
		name = kmsg.NameForKey(key)
		if name == "Unknown" || name == "" {
			name = fmt.Sprintf("key_%d", key)
		}
	}
	s := &apiSeries{
		name:     name,
		codes:    m.responseErrors,
		requests: m.requests.WithLabelValues(name),
		errors:   m.requestErrors.WithLabelValues(name),
		duration: m.requestDuration.WithLabelValues(name),
	}
	// Racing first observations build equal children (the vectors
	// dedupe them); keep whichever was stored first.
	if !m.api[i].CompareAndSwap(nil, s) {
		s = m.api[i].Load()
	}
	return s
}

// ObserveProduce records batches appended to topic and acknowledged: records
// and bytes (the batches' wire size) count towards the topic's inbound
// totals, d (from receiving the request to the acknowledgement) towards
// sluice_produce_duration_seconds. Call it once per partition or once per
// topic and request; only the sums matter.
func (m *Metrics) ObserveProduce(topic string, records, bytes int, d time.Duration) {
	if m == nil {
		return
	}
	c, _ := m.topics.get(topic)
	c.recordsIn.Add(uint64(max(records, 0)))
	c.bytesIn.Add(uint64(max(bytes, 0)))
	m.produceDuration.Observe(d.Seconds())
}

// ObserveProduceStages records where one produce request's time went
// (broker.Observer says what each stage covers).
func (m *Metrics) ObserveProduceStages(queue, wal, response time.Duration) {
	if m == nil {
		return
	}
	m.stageQueue.Observe(max(queue, 0).Seconds())
	m.stageWAL.Observe(max(wal, 0).Seconds())
	m.stageResponse.Observe(max(response, 0).Seconds())
}

// ObserveFetch records record bytes served to a consumer or follower from
// topic. records is the number of records in them when the broker knows it
// (from the batch headers), else 0; whether the bytes went by sendfile is
// counted server-wide from server.Stats.
func (m *Metrics) ObserveFetch(topic string, records, bytes int) {
	if m == nil {
		return
	}
	c, _ := m.topics.get(topic)
	c.recordsOut.Add(uint64(max(records, 0)))
	c.bytesOut.Add(uint64(max(bytes, 0)))
}

// ObserveWALSync records one WAL group commit. Its signature is
// wal.Options.OnSync's.
func (m *Metrics) ObserveWALSync(bytes, records int, d time.Duration) {
	if m == nil {
		return
	}
	m.syncDuration.Observe(d.Seconds())
	m.syncBytes.Observe(float64(bytes))
	m.syncRecords.Observe(float64(records))
}

// SetRecovery records how long startup recovery took
// (storage.RecoveryReport.Duration).
func (m *Metrics) SetRecovery(d time.Duration) {
	if m == nil {
		return
	}
	m.recoveryNanos.Store(int64(max(d, 0)))
}
