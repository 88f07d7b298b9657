package cli

import (
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"sort"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// The client's latency includes its own linger and queueing; what the
// broker adds is read from the broker's sluice_produce_duration_seconds
// histogram (receipt of a produce request to the acknowledgement of its
// batches, once per partition), scraped before and after the run.

const (
	brokerProduceHistogram = "sluice_produce_duration_seconds"
	brokerScrapeTimeout    = 5 * time.Second
	brokerScrapeMaxBytes   = 64 << 20
	brokerWithinMs         = 5 // the share acknowledged within this is reported
)

// brokerLatency is the broker's view of the run's produce latency.
type brokerLatency struct {
	Observations uint64  `json:"observations"`
	P50Ms        float64 `json:"p50_ms"`
	P99Ms        float64 `json:"p99_ms"`
	// Within5Ms is the share of observations at most 5 ms.
	Within5Ms float64 `json:"within_5ms"`
}

// histSnapshot is a cumulative Prometheus histogram: upper bounds in
// seconds, ascending, with the count at or below each; +Inf last.
type histSnapshot struct {
	bounds []float64
	counts []uint64
}

// scrapeHistogram reads one unlabelled histogram from a Prometheus text
// endpoint.
func scrapeHistogram(ctx context.Context, url, name string) (histSnapshot, error) {
	ctx, cancel := context.WithTimeout(ctx, brokerScrapeTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return histSnapshot{}, err
	}
	req.Header.Set("Accept", "text/plain; version=0.0.4")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return histSnapshot{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return histSnapshot{}, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(io.LimitReader(resp.Body, brokerScrapeMaxBytes))
	if err != nil {
		return histSnapshot{}, fmt.Errorf("GET %s: %w", url, err)
	}
	fam := fams[name]
	if fam == nil || fam.GetType() != dto.MetricType_HISTOGRAM || len(fam.Metric) != 1 {
		return histSnapshot{}, fmt.Errorf("GET %s: no histogram %s (is it a Sluice broker's admin listener?)", url, name)
	}
	h := fam.Metric[0].GetHistogram()
	var s histSnapshot
	for _, b := range h.GetBucket() {
		s.bounds = append(s.bounds, b.GetUpperBound())
		s.counts = append(s.counts, b.GetCumulativeCount())
	}
	if len(s.bounds) == 0 || !math.IsInf(s.bounds[len(s.bounds)-1], 1) {
		s.bounds = append(s.bounds, math.Inf(1))
		s.counts = append(s.counts, h.GetSampleCount())
	}
	return s, nil
}

// sub is what was observed between before and s (same buckets).
func (s histSnapshot) sub(before histSnapshot) (histSnapshot, error) {
	if len(before.bounds) == 0 {
		return s, nil
	}
	if len(before.bounds) != len(s.bounds) {
		return histSnapshot{}, fmt.Errorf("the histogram's buckets changed during the run")
	}
	out := histSnapshot{bounds: s.bounds, counts: make([]uint64, len(s.counts))}
	for i := range s.counts {
		if s.counts[i] < before.counts[i] {
			return histSnapshot{}, fmt.Errorf("the histogram went backwards (broker restarted?)")
		}
		out.counts[i] = s.counts[i] - before.counts[i]
	}
	return out, nil
}

func (s histSnapshot) total() uint64 {
	if len(s.counts) == 0 {
		return 0
	}
	return s.counts[len(s.counts)-1]
}

// quantile interpolates linearly inside the bucket holding rank q, as
// Prometheus's histogram_quantile does; in the +Inf bucket it answers the
// last finite bound. In seconds; NaN when empty.
func (s histSnapshot) quantile(q float64) float64 {
	n := s.total()
	if n == 0 {
		return math.NaN()
	}
	rank := q * float64(n)
	i := sort.Search(len(s.counts), func(i int) bool { return float64(s.counts[i]) >= rank })
	if i >= len(s.bounds)-1 {
		if len(s.bounds) < 2 {
			return math.NaN()
		}
		return s.bounds[len(s.bounds)-2]
	}
	lo, below := 0.0, uint64(0)
	if i > 0 {
		lo, below = s.bounds[i-1], s.counts[i-1]
	}
	in := s.counts[i] - below
	if in == 0 {
		return s.bounds[i]
	}
	return lo + (s.bounds[i]-lo)*(rank-float64(below))/float64(in)
}

// within is the share of observations at or below bound seconds, exact
// when bound is a bucket bound, else interpolated.
func (s histSnapshot) within(bound float64) float64 {
	n := s.total()
	if n == 0 {
		return math.NaN()
	}
	lo, below := 0.0, uint64(0)
	for i, b := range s.bounds {
		if bound <= b {
			if math.IsInf(b, 1) {
				return float64(below) / float64(n)
			}
			in := float64(s.counts[i] - below)
			return (float64(below) + in*(bound-lo)/(b-lo)) / float64(n)
		}
		lo, below = b, s.counts[i]
	}
	return 1
}

func (s histSnapshot) latency() *brokerLatency {
	if s.total() == 0 {
		return &brokerLatency{} // JSON has no NaN
	}
	return &brokerLatency{
		Observations: s.total(),
		P50Ms:        s.quantile(0.50) * 1e3,
		P99Ms:        s.quantile(0.99) * 1e3,
		Within5Ms:    s.within(brokerWithinMs / 1e3),
	}
}

// brokerTable is the broker-side latency rows, header first; nil when no
// target has them.
func brokerTable(rs []produceResult) [][]string {
	var rows [][]string
	for _, r := range rs {
		if r.Broker == nil {
			continue
		}
		if rows == nil {
			rows = [][]string{{"TARGET", "OBSERVATIONS", "P50", "P99", fmt.Sprintf("WITHIN %dms", brokerWithinMs)}}
		}
		b := r.Broker
		rows = append(rows, []string{r.Target, fmt.Sprint(b.Observations), fmtMs(b.P50Ms), fmtMs(b.P99Ms),
			fmt.Sprintf("%.2f%%", 100*b.Within5Ms)})
	}
	return rows
}
