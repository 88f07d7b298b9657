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
