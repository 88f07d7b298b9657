package admin

import (
	"cmp"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strconv"
)

// Bounds of GET /api/topics/{name}/records.
const (
	// RecordsLimitDefault is how many records are read without ?limit.
	RecordsLimitDefault = 20
	// RecordsLimitMax caps ?limit; a larger one reads this many.
	RecordsLimitMax = 200
	// RecordFieldBytesMax is the most of a key, a value or a header
	// value that is served; the rest is cut and the record marked
	// truncated.
	RecordFieldBytesMax = 4096
)

// The JSON shapes. Field names are an API: change them only by adding.

// TopicSummaryJSON is one entry of GET /api/topics.
type TopicSummaryJSON struct {
	Name       string `json:"name"`
	ID         string `json:"id"`
	Internal   bool   `json:"internal"`
	Partitions int    `json:"partitions"`
	Records    int64  `json:"records"` // high watermarks minus log starts, summed
	SizeBytes  int64  `json:"size_bytes"`
	Segments   int    `json:"segments"`
}

// TopicJSON is GET /api/topics/{name}.
type TopicJSON struct {
	Name       string          `json:"name"`
	ID         string          `json:"id"`
	Internal   bool            `json:"internal"`
	Records    int64           `json:"records"`
	SizeBytes  int64           `json:"size_bytes"`
	Segments   int             `json:"segments"`
	Partitions []PartitionJSON `json:"partitions"`
	// Configs are the topic's effective configs, sorted by name, as
	// DescribeConfigs lists them.
	Configs []ConfigEntryJSON `json:"configs"`
}

// PartitionJSON is one partition of a TopicJSON.
type PartitionJSON struct {
	Partition        int32 `json:"partition"`
	LogStartOffset   int64 `json:"log_start_offset"`
	HighWatermark    int64 `json:"high_watermark"`
	LastStableOffset int64 `json:"last_stable_offset"`
	SizeBytes        int64 `json:"size_bytes"`
	Segments         int   `json:"segments"`
}

// GroupSummaryJSON is one entry of GET /api/groups.
type GroupSummaryJSON struct {
	GroupID string `json:"group_id"`
	Type    string `json:"type"`
	State   string `json:"state"`
	Members int    `json:"members"`
	Lag     int64  `json:"lag"` // summed over the group's partitions
}

// GroupJSON is GET /api/groups/{id}. Unlike GroupSummaryJSON, members is
// the list of members (its length is the count).
type GroupJSON struct {
	GroupID      string             `json:"group_id"`
	Type         string             `json:"type"`
	State        string             `json:"state"`
	ProtocolType string             `json:"protocol_type"`
	Protocol     string             `json:"protocol"`   // the assignor
	Generation   int32              `json:"generation"` // generation, or group epoch (KIP-848)
	Members      []MemberJSON       `json:"members"`    // sorted by member_id
	Lag          int64              `json:"lag"`
	Partitions   []PartitionLagJSON `json:"partitions"`
}

// MemberJSON is one member of a GroupJSON.
type MemberJSON struct {
	MemberID    string           `json:"member_id"`
	InstanceID  *string          `json:"instance_id"` // null without static membership
	ClientID    string           `json:"client_id"`
	Host        string           `json:"host"`
	Assignments []AssignmentJSON `json:"assignments"` // sorted by topic
}

// AssignmentJSON is a member's partitions of one topic, ascending.
type AssignmentJSON struct {
	Topic      string  `json:"topic"`
	Partitions []int32 `json:"partitions"`
}

// RecordsJSON is GET /api/topics/{name}/records.
type RecordsJSON struct {
	Topic          string       `json:"topic"`
	Partition      int32        `json:"partition"`
	LogStartOffset int64        `json:"log_start_offset"`
	HighWatermark  int64        `json:"high_watermark"`
	Records        []RecordJSON `json:"records"`
}

// RecordJSON is one record of a RecordsJSON. Key, Value and header values
// are base64 (standard encoding), null when null, cut to
// RecordFieldBytesMax bytes; the sizes are the full lengths (-1 for null).
type RecordJSON struct {
	Offset      int64        `json:"offset"`
	TimestampMs int64        `json:"timestamp_ms"`
	Key         []byte       `json:"key"`
	Value       []byte       `json:"value"`
	KeySize     int          `json:"key_size"`
	ValueSize   int          `json:"value_size"`
	Truncated   bool         `json:"truncated"` // a key, value or header value was cut
	Headers     []HeaderJSON `json:"headers"`
}

// HeaderJSON is one record header.
type HeaderJSON struct {
	Key   string `json:"key"`
	Value []byte `json:"value"`
}

// HistoryJSON is GET /api/history: the samples the server took, oldest
// first. Every series has the length of TimesMs and is null where its
// topic or group did not exist (or was past the sampling bounds).
type HistoryJSON struct {
	IntervalMs int64                       `json:"interval_ms"`
	TimesMs    []int64                     `json:"times_ms"`
	Topics     map[string]TopicHistoryJSON `json:"topics"`
	Groups     map[string]GroupHistoryJSON `json:"groups"`
}

// TopicHistoryJSON is one topic's series: the sum of its partitions' high
// watermarks (cumulative records) and of their sizes.
type TopicHistoryJSON struct {
	Records []*int64 `json:"records"`
	Bytes   []*int64 `json:"bytes"`
}

// GroupHistoryJSON is one group's summed lag.
type GroupHistoryJSON struct {
	Lag []*int64 `json:"lag"`
}

// PartitionLagJSON is one partition of a GroupJSON.
type PartitionLagJSON struct {
	Topic           string `json:"topic"`
	Partition       int32  `json:"partition"`
	CommittedOffset int64  `json:"committed_offset"`
	EndOffset       int64  `json:"end_offset"`
	Lag             int64  `json:"lag"`
}

// ConfigEntryJSON is one entry of GET /api/config.
type ConfigEntryJSON struct {
	Name   string `json:"name"`
	Value  string `json:"value"`
	Source string `json:"source"`
}

// ErrorJSON is the body of every 4xx/5xx answer from /api.
type ErrorJSON struct {
	Error string `json:"error"`
}

// Handler returns the admin routes, for tests and for embedding in another
// mux. The server built by New serves exactly this.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	if s.opts.Metrics != nil {
		// promhttp bounds and compresses its own output; RequestTimeout
		// still bounds the connection through the server's timeouts.
		mux.Handle("GET /metrics", s.opts.Metrics)
	}
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeText(w, http.StatusOK, "ok")
	})
	mux.HandleFunc("GET /readyz", s.readyz)
	mux.HandleFunc("GET /api/topics", s.topics)
	mux.HandleFunc("GET /api/topics/{name}", s.topic)
	mux.HandleFunc("GET /api/topics/{name}/records", s.records)
	mux.HandleFunc("GET /api/groups", s.groups)
	mux.HandleFunc("GET /api/groups/{id}", s.group)
	mux.HandleFunc("GET /api/config", s.config)
	mux.HandleFunc("GET /api/history", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, s.hist.json())
	})
	registerConsole(mux) // GET / and /console/{file}: the web console (console.go)
	mux.HandleFunc("GET /api/", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusNotFound, ErrorJSON{Error: "no such endpoint"})
	})
	// TimeoutHandler buffers the response and answers 503 past the
	// deadline, so a Source that hangs cannot pin a connection.
	return http.TimeoutHandler(mux, s.opts.RequestTimeout, "admin: request timed out\n")
}

func (s *Server) readyz(w http.ResponseWriter, _ *http.Request) {
	if err := s.src.Ready(); err != nil {
		writeText(w, http.StatusServiceUnavailable, "not ready: "+err.Error())
		return
	}
	writeText(w, http.StatusOK, "ready")
}

func (s *Server) topics(w http.ResponseWriter, _ *http.Request) {
	topics := s.src.Topics()
	out := make([]TopicSummaryJSON, 0, len(topics))
	for _, t := range topics {
		tot := topicTotals(t)
		out = append(out, TopicSummaryJSON{
			Name: t.Name, ID: t.ID, Internal: t.Internal,
			Partitions: len(t.Partitions), Records: tot.records, SizeBytes: tot.size, Segments: tot.segments,
		})
	}
	slices.SortFunc(out, func(a, b TopicSummaryJSON) int { return cmp.Compare(a.Name, b.Name) })
	writeJSON(w, http.StatusOK, struct {
		Topics []TopicSummaryJSON `json:"topics"`
	}{out})
}

func (s *Server) topic(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	for _, t := range s.src.Topics() {
		if t.Name != name {
			continue
		}
		tot := topicTotals(t)
		out := TopicJSON{
			Name: t.Name, ID: t.ID, Internal: t.Internal, Records: tot.records, SizeBytes: tot.size, Segments: tot.segments,
			Partitions: make([]PartitionJSON, 0, len(t.Partitions)),
		}
		for _, p := range t.Partitions {
			out.Partitions = append(out.Partitions, PartitionJSON{
				Partition: p.Partition, LogStartOffset: p.LogStart, HighWatermark: p.HighWatermark,
				LastStableOffset: p.LastStable, SizeBytes: p.SizeBytes, Segments: p.Segments,
			})
		}
		slices.SortFunc(out.Partitions, func(a, b PartitionJSON) int { return cmp.Compare(a.Partition, b.Partition) })
		// A topic deleted since Topics has no configs: an empty list,
		// not a 404 for a topic just listed.
		configs, _ := s.src.TopicConfigs(name)
		out.Configs = make([]ConfigEntryJSON, 0, len(configs))
		for _, c := range configs {
			out.Configs = append(out.Configs, ConfigEntryJSON(c))
		}
		slices.SortFunc(out.Configs, func(a, b ConfigEntryJSON) int { return cmp.Compare(a.Name, b.Name) })
		writeJSON(w, http.StatusOK, out)
		return
	}
	writeJSON(w, http.StatusNotFound, ErrorJSON{Error: "unknown topic " + name})
}

// records serves GET /api/topics/{name}/records?partition=P&offset=O&limit=N.
func (s *Server) records(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	q := r.URL.Query()
	badParam := func(param, v string) {
		writeJSON(w, http.StatusBadRequest, ErrorJSON{Error: "bad " + param + " " + strconv.Quote(v)})
	}
	var part int32
	if v := q.Get("partition"); v != "" {
		p, err := strconv.ParseInt(v, 10, 32)
		if err != nil || p < 0 {
			badParam("partition", v)
			return
		}
		part = int32(p)
	}
	offset := int64(-1) // the last limit records
	if v := q.Get("offset"); v != "" {
		o, err := strconv.ParseInt(v, 10, 64)
		if err != nil || o < 0 {
			badParam("offset", v)
			return
		}
		offset = o
	}
	limit := RecordsLimitDefault
	if v := q.Get("limit"); v != "" {
		l, err := strconv.Atoi(v)
		if err != nil || l <= 0 {
			badParam("limit", v)
			return
		}
		limit = min(l, RecordsLimitMax)
	}
	page, err := s.src.Records(name, part, offset, limit)
	switch {
	case errors.Is(err, ErrUnknownTopic):
		writeJSON(w, http.StatusNotFound, ErrorJSON{Error: "unknown topic " + name})
		return
	case errors.Is(err, ErrUnknownPartition):
		writeJSON(w, http.StatusNotFound, ErrorJSON{Error: "unknown partition " + strconv.Itoa(int(part)) + " of topic " + name})
		return
	case err != nil:
		s.log.Warn("admin: reading records failed", "topic", name, "partition", part, "offset", offset, "err", err)
		writeJSON(w, http.StatusInternalServerError, ErrorJSON{Error: err.Error()})
		return
	}
	out := RecordsJSON{Topic: name, Partition: part, LogStartOffset: page.LogStart, HighWatermark: page.HighWatermark,
		Records: make([]RecordJSON, 0, min(len(page.Records), limit))}
	for _, rec := range page.Records {
		// The Source promised at most limit records in offset order;
		// hold it to that rather than serve more than asked.
		if len(out.Records) == limit {
			break
		}
		out.Records = append(out.Records, recordJSON(rec))
	}
	writeJSON(w, http.StatusOK, out)
}

// recordJSON converts one record, cutting what the Source did not.
func recordJSON(rec Record) RecordJSON {
	out := RecordJSON{Offset: rec.Offset, TimestampMs: rec.TimestampMs, KeySize: rec.KeySize, ValueSize: rec.ValueSize,
		Truncated: rec.Truncated, Headers: make([]HeaderJSON, 0, len(rec.Headers))}
	cut := func(b []byte) []byte {
		if len(b) > RecordFieldBytesMax {
			out.Truncated = true
			return b[:RecordFieldBytesMax]
		}
		return b
	}
	out.Key, out.Value = cut(rec.Key), cut(rec.Value)
	for _, h := range rec.Headers {
		out.Headers = append(out.Headers, HeaderJSON{Key: h.Key, Value: cut(h.Value)})
	}
	return out
}

type totals struct {
	records, size int64
	segments      int
}

func topicTotals(t Topic) totals {
	var tot totals
	for _, p := range t.Partitions {
		tot.records += max(p.HighWatermark-p.LogStart, 0)
		tot.size += p.SizeBytes
		tot.segments += p.Segments
	}
	return tot
}

func (s *Server) groups(w http.ResponseWriter, _ *http.Request) {
	groups := s.src.Groups()
	out := make([]GroupSummaryJSON, 0, len(groups))
	for _, g := range groups {
		out = append(out, GroupSummaryJSON{
			GroupID: g.ID, Type: g.Type, State: g.State, Members: g.Members, Lag: totalLag(g),
		})
	}
	slices.SortFunc(out, func(a, b GroupSummaryJSON) int { return cmp.Compare(a.GroupID, b.GroupID) })
	writeJSON(w, http.StatusOK, struct {
		Groups []GroupSummaryJSON `json:"groups"`
	}{out})
}

func (s *Server) group(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	for _, g := range s.src.Groups() {
		if g.ID != id {
			continue
		}
		out := GroupJSON{
			GroupID: g.ID, Type: g.Type, State: g.State, Lag: totalLag(g),
			ProtocolType: g.ProtocolType, Protocol: g.Protocol, Generation: g.Generation,
			Members:    make([]MemberJSON, 0, len(g.MemberList)),
			Partitions: make([]PartitionLagJSON, 0, len(g.Lag)),
		}
		for _, m := range g.MemberList {
			out.Members = append(out.Members, memberJSON(m))
		}
		slices.SortFunc(out.Members, func(a, b MemberJSON) int { return cmp.Compare(a.MemberID, b.MemberID) })
		for _, l := range g.Lag {
			out.Partitions = append(out.Partitions, PartitionLagJSON{
				Topic: l.Topic, Partition: l.Partition, CommittedOffset: l.Committed, EndOffset: l.End, Lag: l.Lag,
			})
		}
		slices.SortFunc(out.Partitions, func(a, b PartitionLagJSON) int {
			return cmp.Or(cmp.Compare(a.Topic, b.Topic), cmp.Compare(a.Partition, b.Partition))
		})
		writeJSON(w, http.StatusOK, out)
		return
	}
	writeJSON(w, http.StatusNotFound, ErrorJSON{Error: "unknown group " + id})
}

// memberJSON converts one member, sorting its assignments by topic and
// partition on copies.
func memberJSON(m Member) MemberJSON {
	out := MemberJSON{MemberID: m.ID, ClientID: m.ClientID, Host: m.Host, Assignments: make([]AssignmentJSON, 0, len(m.Assignments))}
	if m.InstanceID != "" {
		id := m.InstanceID
		out.InstanceID = &id
	}
	for _, a := range m.Assignments {
		ps := slices.Clone(a.Partitions)
		if ps == nil {
			ps = []int32{}
		}
		slices.Sort(ps)
		out.Assignments = append(out.Assignments, AssignmentJSON{Topic: a.Topic, Partitions: ps})
	}
	slices.SortFunc(out.Assignments, func(a, b AssignmentJSON) int { return cmp.Compare(a.Topic, b.Topic) })
	return out
}

func totalLag(g Group) int64 {
	var n int64
	for _, l := range g.Lag {
		n += max(l.Lag, 0)
	}
	return n
}

func (s *Server) config(w http.ResponseWriter, _ *http.Request) {
	entries := s.src.Config()
	out := make([]ConfigEntryJSON, 0, len(entries))
	for _, e := range entries {
		out = append(out, ConfigEntryJSON(e))
	}
	slices.SortFunc(out, func(a, b ConfigEntryJSON) int { return cmp.Compare(a.Name, b.Name) })
	writeJSON(w, http.StatusOK, struct {
		Config []ConfigEntryJSON `json:"config"`
	}{out})
}

func writeText(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_, _ = w.Write([]byte(msg + "\n"))
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		// Only our own types are encoded; this is a bug, not input.
		code, b = http.StatusInternalServerError, []byte(`{"error":"encoding failed"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_, _ = w.Write(append(b, '\n'))
}
