package metrics

import (
	"strings"
	"sync"
	"sync/atomic"
)

// topicCounters are one topic label value's counters.
type topicCounters struct {
	bytesIn, recordsIn, bytesOut, recordsOut atomic.Uint64
}

// topicTable hands out per-topic counters, first come first served, up to
// max topics; the rest share other. Lookups are lock-free and allocation
// free: the map is copied on insert, which happens at most max times.
type topicTable struct {
	max   int
	m     atomic.Pointer[map[string]*topicCounters]
	full  atomic.Bool // max reached: misses go to other without locking
	other topicCounters

	mu sync.Mutex // serializes inserts
}

func newTopicTable(maxTopics int) *topicTable {
	t := &topicTable{max: maxTopics}
	m := map[string]*topicCounters{}
	t.m.Store(&m)
	return t
}

// get returns topic's counters and whether they are its own (false: other).
func (t *topicTable) get(topic string) (*topicCounters, bool) {
	if c, ok := (*t.m.Load())[topic]; ok {
		return c, true
	}
	if t.full.Load() {
		return &t.other, false
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	old := *t.m.Load()
	if c, ok := old[topic]; ok {
		return c, true
	}
	if len(old) >= t.max {
		t.full.Store(true)
		return &t.other, false
	}
	m := make(map[string]*topicCounters, len(old)+1)
	for k, v := range old {
		m[k] = v
	}
	c := new(topicCounters)
	// The caller's string may point into a request buffer that is reused.
	m[strings.Clone(topic)] = c
	t.m.Store(&m)
	return c, true
}

// snapshot returns the current map (read-only) and whether other is in use.
func (t *topicTable) snapshot() (map[string]*topicCounters, bool) {
	return *t.m.Load(), t.full.Load()
}
