package cli

import (
	"math/bits"
	"sync/atomic"
	"time"
)

// latencyHist is a log-linear histogram of durations: each power of two is
// split into histSub buckets, so any quantile is within 1/histSub (under 1%)
// of the true value, in fixed memory however many samples arrive. Record is
// safe for concurrent use (kgo runs promises on several goroutines);
// quantiles are read after recording stops.
type latencyHist struct {
	counts [histBuckets]atomic.Uint64
	n      atomic.Uint64
	max    atomic.Int64
}

const (
	histSubBits = 7
	histSub     = 1 << histSubBits
	// Durations are recorded in nanoseconds; 2^44 ns is about 4.9 hours,
	// far past any delivery timeout, and larger values land in the last
	// bucket.
	histExpMax  = 44
	histBuckets = (histExpMax - histSubBits + 2) * histSub
)

// histIndex maps v >= 0 to its bucket. Values below histSub have one bucket
// each; above, the top histSubBits+1 bits choose the bucket.
func histIndex(v uint64) int {
	if v < histSub {
		return int(v)
	}
	exp := bits.Len64(v) - 1 - histSubBits // >= 0
	if exp > histExpMax-histSubBits {
		return histBuckets - 1
	}
	sub := int(v>>uint(exp)) - histSub // in [0, histSub)
	return (exp+1)*histSub + sub
}

// histValue is the upper bound of bucket i, the value its samples report.
func histValue(i int) uint64 {
	if i < histSub {
		return uint64(i)
	}
	exp := i/histSub - 1
	sub := uint64(i%histSub) + histSub
	return (sub+1)<<uint(exp) - 1
}

func (h *latencyHist) record(d time.Duration) {
	if d < 0 {
		d = 0
	}
	h.counts[histIndex(uint64(d))].Add(1)
	h.n.Add(1)
	for {
		m := h.max.Load()
		if int64(d) <= m || h.max.CompareAndSwap(m, int64(d)) {
			return
		}
	}
}

func (h *latencyHist) count() uint64 { return h.n.Load() }

// quantile returns the smallest bucket bound at or below which a fraction q
// of the samples lie; 0 when empty.
func (h *latencyHist) quantile(q float64) time.Duration {
	n := h.n.Load()
	if n == 0 {
		return 0
	}
	rank := uint64(q*float64(n) + 0.5)
	rank = min(max(rank, 1), n)
	var seen uint64
	for i := range h.counts {
		seen += h.counts[i].Load()
		if seen >= rank {
			return min(time.Duration(histValue(i)), time.Duration(h.max.Load()))
		}
	}
	return time.Duration(h.max.Load())
}

// countBelow returns how many samples are at most d (to bucket precision).
func (h *latencyHist) countBelow(d time.Duration) uint64 {
	var c uint64
	limit := histIndex(uint64(max(d, 0)))
	for i := 0; i <= limit; i++ {
		c += h.counts[i].Load()
	}
	return c
}

// snapshot copies the bucket counts into dst, reusing it when it is large
// enough. Recording may go on meanwhile; each count only grows, so a later
// snapshot never holds less in any bucket than an earlier one.
func (h *latencyHist) snapshot(dst []uint64) []uint64 {
	if cap(dst) < histBuckets {
		dst = make([]uint64, histBuckets)
	}
	dst = dst[:histBuckets]
	for i := range h.counts {
		dst[i] = h.counts[i].Load()
	}
	return dst
}

// intervalLatency returns the p99 and the largest sample (both as bucket
// bounds, so within 1/histSub of the truth) of the samples recorded between
// two snapshots, and how many there were. Diffing cumulative snapshots
// gives per-interval figures from one histogram, where a histogram per
// interval would cost 40 KB each.
func intervalLatency(prev, cur []uint64) (p99, maxD time.Duration, n uint64) {
	top := -1
	for i := range cur {
		if d := cur[i] - prev[i]; d > 0 {
			n += d
			top = i
		}
	}
	if n == 0 {
		return 0, 0, 0
	}
	rank := min(max(uint64(0.99*float64(n)+0.5), 1), n)
	var seen uint64
	for i := 0; i <= top; i++ {
		seen += cur[i] - prev[i]
		if seen >= rank {
			p99 = time.Duration(histValue(i))
			break
		}
	}
	return p99, time.Duration(histValue(top)), n
}

// A run's throughput over time, for --chart and the JSON "series": the
// load adds what was acknowledged (produce) or read (consume) to two atomic
// counters, and a ticker goroutine turns their growth per interval into a
// point. Memory is bounded whatever the run's length: past
// seriesPointsMax points, neighbours are merged in pairs and the interval
// doubles.
const (
	sampleIntervalMin = 100 * time.Millisecond
	// seriesPointsTarget is how many points a run of known length gets.
	seriesPointsTarget = 200
	// seriesPointsMax bounds a run of unknown length: bounded by bytes, a
	// consume that ends before its --duration, a slow final flush.
	seriesPointsMax = 2 * seriesPointsTarget
)

// sampleInterval is the interval for a run expected to last d (0: unknown).
func sampleInterval(d time.Duration) time.Duration {
	return max(sampleIntervalMin, d/seriesPointsTarget)
}

// samplePoint is one interval of a run.
type samplePoint struct {
	end     time.Duration // since the start of the run
	dur     time.Duration // length of the interval, measured
	bytes   int64
	records int64
	// Latency of the records acknowledged in the interval (produce only);
	// latN == 0 when there were none.
	p99, max time.Duration
	latN     uint64
}

// merge folds b, the interval after a, into a. The p99 of the union is not
// known from the two p99s; the larger one is an upper bound, which is the
// honest side to err on for a latency chart.
func (a samplePoint) merge(b samplePoint) samplePoint {
	a.end = b.end
	a.dur += b.dur
	a.bytes += b.bytes
	a.records += b.records
	a.p99, a.max = max(a.p99, b.p99), max(a.max, b.max)
	a.latN += b.latN
	return a
}

// sampler samples one run. add is safe for concurrent use; the rest of the
// state belongs to the ticker goroutine until finish has joined it, then to
// finish's caller.
type sampler struct {
	bytes   atomic.Int64 // cumulative
	records atomic.Int64 // cumulative
	hist    *latencyHist // nil: no latency figures

	start, last            time.Time
	interval               time.Duration
	lastBytes, lastRecords int64
	lastCounts, counts     []uint64 // hist snapshots at last and now
	points                 []samplePoint

	stop, done chan struct{}
}

// newSampler returns a sampler for a run that started at start; it samples
// only when ticked (see run).
func newSampler(start time.Time, interval time.Duration, hist *latencyHist) *sampler {
	s := &sampler{hist: hist, start: start, last: start, interval: max(interval, sampleIntervalMin)}
	if hist != nil {
		s.lastCounts = hist.snapshot(nil)
	}
	return s
}

// startSampler starts a sampler with its ticker goroutine; finish stops it.
func startSampler(start time.Time, interval time.Duration, hist *latencyHist) *sampler {
	s := newSampler(start, interval, hist)
	s.stop, s.done = make(chan struct{}), make(chan struct{})
	go s.run()
	return s
}

func (s *sampler) add(bytes, records int64) {
	s.bytes.Add(bytes)
	s.records.Add(records)
}

func (s *sampler) run() {
	defer close(s.done)
	t := time.NewTicker(s.interval)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			was := s.interval
			s.tick(time.Now())
			if s.interval != was {
				t.Reset(s.interval)
			}
		}
	}
}

// measure returns the interval from the last sample to now and makes now
// the last sample.
func (s *sampler) measure(now time.Time) samplePoint {
	b, r := s.bytes.Load(), s.records.Load()
	p := samplePoint{end: now.Sub(s.start), dur: now.Sub(s.last), bytes: b - s.lastBytes, records: r - s.lastRecords}
	s.last, s.lastBytes, s.lastRecords = now, b, r
	if s.hist != nil {
		s.counts = s.hist.snapshot(s.counts)
		p.p99, p.max, p.latN = intervalLatency(s.lastCounts, s.counts)
		s.lastCounts, s.counts = s.counts, s.lastCounts
	}
	return p
}

// tick closes an interval at now.
func (s *sampler) tick(now time.Time) {
	s.points = append(s.points, s.measure(now))
	if len(s.points) > seriesPointsMax {
		merged := s.points[:0]
		for i := 0; i < len(s.points); i += 2 {
			p := s.points[i]
			if i+1 < len(s.points) {
				p = p.merge(s.points[i+1])
			}
			merged = append(merged, p)
		}
		s.points = merged
		s.interval *= 2
	}
}

// finish stops the ticker goroutine, waits for it, closes the last,
// partial interval at now and returns the points. A last interval shorter
// than half the interval is folded into the one before, so a run's tail
// does not show as a noisy spike.
func (s *sampler) finish(now time.Time) []samplePoint {
	if s.stop != nil {
		close(s.stop)
		<-s.done
	}
	p := s.measure(now)
	switch {
	case p.dur <= 0:
	case p.dur < s.interval/2 && len(s.points) > 0:
		s.points[len(s.points)-1] = s.points[len(s.points)-1].merge(p)
	default:
		s.points = append(s.points, p)
	}
	return s.points
}

// seriesPoint is one point of the JSON "series": the rates over the
// interval that ends at TSec.
type seriesPoint struct {
	TSec          float64 `json:"t_s"`
	MBPerSec      float64 `json:"mb_per_s"`
	RecordsPerSec float64 `json:"records_per_s"`
	// Produce only, and only for intervals in which records were
	// acknowledged: to bucket precision (under 1%).
	P99Ms float64 `json:"p99_ms,omitempty"`
	MaxMs float64 `json:"max_ms,omitempty"`
}

func seriesOf(points []samplePoint) []seriesPoint {
	out := make([]seriesPoint, 0, len(points))
	for _, p := range points {
		sp := seriesPoint{TSec: p.end.Seconds()}
		if s := p.dur.Seconds(); s > 0 {
			sp.MBPerSec = float64(p.bytes) / 1e6 / s
			sp.RecordsPerSec = float64(p.records) / s
		}
		if p.latN > 0 {
			sp.P99Ms, sp.MaxMs = ms(p.p99), ms(p.max)
		}
		out = append(out, sp)
	}
	return out
}
