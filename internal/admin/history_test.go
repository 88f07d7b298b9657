package admin

import (
	"fmt"
	"reflect"
	"slices"
	"testing"
	"time"
)

// stubSource answers Topics and Groups from its fields; history needs no
// more.
type stubSource struct {
	topics []Topic
	groups []Group
}

func (s *stubSource) Ready() error                              { return nil }
func (s *stubSource) Topics() []Topic                           { return slices.Clone(s.topics) }
func (s *stubSource) Groups() []Group                           { return slices.Clone(s.groups) }
func (s *stubSource) Config() []ConfigEntry                     { return nil }
func (s *stubSource) TopicConfigs(string) ([]ConfigEntry, bool) { return nil, false }
func (s *stubSource) Records(string, int32, int64, int) (RecordPage, error) {
	return RecordPage{}, ErrUnknownTopic
}

func topic(name string, hws ...int64) Topic {
	t := Topic{Name: name}
	for i, hw := range hws {
		t.Partitions = append(t.Partitions, Partition{Partition: int32(i), HighWatermark: hw, SizeBytes: 10 * hw})
	}
	return t
}

func lagging(id string, lags ...int64) Group {
	g := Group{ID: id}
	for i, l := range lags {
		g.Lag = append(g.Lag, PartitionLag{Topic: "t", Partition: int32(i), Lag: l})
	}
	return g
}

func ptrs(vs ...any) []*int64 {
	out := make([]*int64, len(vs))
	for i, v := range vs {
		if v != nil {
			n := int64(v.(int))
			out[i] = &n
		}
	}
	return out
}

// The ring keeps the last HistorySamples samples, oldest first; a topic or
// group missing from a sample is null there.
func TestHistoryRing(t *testing.T) {
	h := newHistory(2*time.Second, 3)
	src := &stubSource{}
	t0 := time.UnixMilli(1_700_000_000_000)
	if got := h.json(); len(got.TimesMs) != 0 || len(got.Topics) != 0 || got.IntervalMs != 2000 {
		t.Fatalf("empty history %+v", got)
	}
	steps := []struct {
		topics []Topic
		groups []Group
	}{
		{[]Topic{topic("a", 1, 2), topic("b", 5)}, []Group{lagging("g", 3)}}, // dropped from the ring
		{[]Topic{topic("a", 3, 4)}, []Group{lagging("g", 1, 1)}},
		{[]Topic{topic("c", 7), topic("a", 5, 5), topic("b", 6)}, nil},
		{[]Topic{topic("b", 9)}, []Group{lagging("g", 0), lagging("h", 2)}},
	}
	for i, s := range steps {
		src.topics, src.groups = s.topics, s.groups
		h.take(src, t0.Add(time.Duration(i)*2*time.Second))
	}
	got := h.json()
	want := HistoryJSON{
		IntervalMs: 2000,
		TimesMs:    []int64{1_700_000_002_000, 1_700_000_004_000, 1_700_000_006_000},
		Topics: map[string]TopicHistoryJSON{
			"a": {Records: ptrs(7, 10, nil), Bytes: ptrs(70, 100, nil)},
			"b": {Records: ptrs(nil, 6, 9), Bytes: ptrs(nil, 60, 90)},
			"c": {Records: ptrs(nil, 7, nil), Bytes: ptrs(nil, 70, nil)},
		},
		Groups: map[string]GroupHistoryJSON{
			"g": {Lag: ptrs(2, nil, 0)},
			"h": {Lag: ptrs(nil, nil, 2)},
		},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("history\n got %s\nwant %s", dump(got), dump(want))
	}
}

func dump(h HistoryJSON) string {
	s := fmt.Sprintf("times %v", h.TimesMs)
	show := func(ps []*int64) []any {
		var out []any
		for _, p := range ps {
			if p == nil {
				out = append(out, nil)
			} else {
				out = append(out, *p)
			}
		}
		return out
	}
	for n, th := range h.Topics {
		s += fmt.Sprintf(" %s:%v/%v", n, show(th.Records), show(th.Bytes))
	}
	for n, gh := range h.Groups {
		s += fmt.Sprintf(" %s:%v", n, show(gh.Lag))
	}
	return s
}

// One sample holds at most HistoryTopicsMax topics and HistoryGroupsMax
// groups, the first by name whatever order the Source lists them in.
func TestHistoryBounds(t *testing.T) {
	src := &stubSource{}
	for i := HistoryTopicsMax + 4; i >= 0; i-- {
		src.topics = append(src.topics, topic(fmt.Sprintf("t%05d", i), 1))
	}
	for i := HistoryGroupsMax + 4; i >= 0; i-- {
		src.groups = append(src.groups, lagging(fmt.Sprintf("g%05d", i), 1))
	}
	h := newHistory(time.Second, 2)
	h.take(src, time.Now())
	got := h.json()
	if len(got.Topics) != HistoryTopicsMax || len(got.Groups) != HistoryGroupsMax {
		t.Fatalf("%d topics, %d groups", len(got.Topics), len(got.Groups))
	}
	last := fmt.Sprintf("t%05d", HistoryTopicsMax-1)
	if _, ok := got.Topics[last]; !ok {
		t.Errorf("%s (within the first %d by name) missing", last, HistoryTopicsMax)
	}
	if _, ok := got.Topics[fmt.Sprintf("t%05d", HistoryTopicsMax)]; ok {
		t.Error("a topic past the bound was sampled")
	}
	if _, ok := got.Groups[fmt.Sprintf("g%05d", HistoryGroupsMax)]; ok {
		t.Error("a group past the bound was sampled")
	}
}
