package admin

import (
	"cmp"
	"slices"
	"sync"
	"time"
)

// Bounds on one history sample: a broker with more topics or groups keeps
// the history of the first ones by name, so the ring's memory and the
// /api/history answer stay bounded whatever the broker holds.
const (
	HistoryTopicsMax = 1000
	HistoryGroupsMax = 1000
)

// history is the ring of samples the sampler goroutine takes; /api/history
// reads it. Safe for concurrent use.
type history struct {
	interval time.Duration
	mu       struct {
		sync.Mutex
		ring []sample // oldest first once full: ring[next:] then ring[:next]
		next int
		full bool
	}
}

// sample is what the broker looked like at one moment.
type sample struct {
	timeMs int64
	topics map[string]topicSample
	groups map[string]int64 // summed lag
}

type topicSample struct {
	records int64 // sum of the partitions' high watermarks
	bytes   int64 // sum of the partitions' sizes
}

func newHistory(interval time.Duration, samples int) *history {
	h := &history{interval: interval}
	h.mu.ring = make([]sample, samples)
	return h
}

// take reads the Source once and adds a sample. It runs on the sampler
// goroutine only, outside the lock: a slow Source delays the next sample,
// never a reader.
func (h *history) take(src Source, now time.Time) {
	topics := src.Topics()
	slices.SortFunc(topics, func(a, b Topic) int { return cmp.Compare(a.Name, b.Name) })
	groups := src.Groups()
	slices.SortFunc(groups, func(a, b Group) int { return cmp.Compare(a.ID, b.ID) })
	s := sample{
		timeMs: now.UnixMilli(),
		topics: make(map[string]topicSample, min(len(topics), HistoryTopicsMax)),
		groups: make(map[string]int64, min(len(groups), HistoryGroupsMax)),
	}
	for _, t := range topics {
		if len(s.topics) == HistoryTopicsMax {
			break
		}
		var ts topicSample
		for _, p := range t.Partitions {
			ts.records += p.HighWatermark
			ts.bytes += p.SizeBytes
		}
		s.topics[t.Name] = ts
	}
	for _, g := range groups {
		if len(s.groups) == HistoryGroupsMax {
			break
		}
		s.groups[g.ID] = totalLag(g)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.mu.ring[h.mu.next] = s
	h.mu.next++
	if h.mu.next == len(h.mu.ring) {
		h.mu.next, h.mu.full = 0, true
	}
}

// samples returns the samples, oldest first. The maps are shared and
// never written after take: read only.
func (h *history) samples() []sample {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.mu.full {
		return slices.Clone(h.mu.ring[:h.mu.next])
	}
	return slices.Concat(h.mu.ring[h.mu.next:], h.mu.ring[:h.mu.next])
}

// json lays the samples out as series: one array per topic and group, the
// length of times_ms, null where the name was absent from a sample.
func (h *history) json() HistoryJSON {
	ss := h.samples()
	out := HistoryJSON{
		IntervalMs: h.interval.Milliseconds(),
		TimesMs:    make([]int64, len(ss)),
		Topics:     map[string]TopicHistoryJSON{},
		Groups:     map[string]GroupHistoryJSON{},
	}
	for i, s := range ss {
		out.TimesMs[i] = s.timeMs
		for name, ts := range s.topics {
			th, ok := out.Topics[name]
			if !ok {
				th = TopicHistoryJSON{Records: make([]*int64, len(ss)), Bytes: make([]*int64, len(ss))}
				out.Topics[name] = th
			}
			th.Records[i], th.Bytes[i] = &ts.records, &ts.bytes
		}
		for id, lag := range s.groups {
			gh, ok := out.Groups[id]
			if !ok {
				gh = GroupHistoryJSON{Lag: make([]*int64, len(ss))}
				out.Groups[id] = gh
			}
			gh.Lag[i] = &lag
		}
	}
	return out
}

// sampleLoop samples at once and then every interval until stop closes.
func (h *history) sampleLoop(src Source, stop <-chan struct{}) {
	h.take(src, time.Now())
	t := time.NewTicker(h.interval)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case now := <-t.C:
			h.take(src, now)
		}
	}
}
