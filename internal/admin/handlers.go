package admin

import (
	"cmp"
	"encoding/json"
	"net/http"
	"slices"
)

// The JSON shapes. Field names are an API: change them only by adding.

// TopicSummaryJSON is one entry of GET /api/topics.
type TopicSummaryJSON struct {
	Name       string `json:"name"`
	ID         string `json:"id"`
	Internal   bool   `json:"internal"`
	Partitions int    `json:"partitions"`
	SizeBytes  int64  `json:"size_bytes"`
	Segments   int    `json:"segments"`
}

// TopicJSON is GET /api/topics/{name}.
type TopicJSON struct {
	Name       string          `json:"name"`
	ID         string          `json:"id"`
	Internal   bool            `json:"internal"`
	SizeBytes  int64           `json:"size_bytes"`
	Segments   int             `json:"segments"`
	Partitions []PartitionJSON `json:"partitions"`
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

// GroupJSON is GET /api/groups/{id}.
type GroupJSON struct {
	GroupID    string             `json:"group_id"`
	Type       string             `json:"type"`
	State      string             `json:"state"`
	Members    int                `json:"members"`
	Lag        int64              `json:"lag"`
	Partitions []PartitionLagJSON `json:"partitions"`
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
	mux.HandleFunc("GET /api/groups", s.groups)
	mux.HandleFunc("GET /api/groups/{id}", s.group)
	mux.HandleFunc("GET /api/config", s.config)
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
		size, segs := topicTotals(t)
		out = append(out, TopicSummaryJSON{
			Name: t.Name, ID: t.ID, Internal: t.Internal,
			Partitions: len(t.Partitions), SizeBytes: size, Segments: segs,
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
		size, segs := topicTotals(t)
		out := TopicJSON{
			Name: t.Name, ID: t.ID, Internal: t.Internal, SizeBytes: size, Segments: segs,
			Partitions: make([]PartitionJSON, 0, len(t.Partitions)),
		}
		for _, p := range t.Partitions {
			out.Partitions = append(out.Partitions, PartitionJSON{
				Partition: p.Partition, LogStartOffset: p.LogStart, HighWatermark: p.HighWatermark,
				LastStableOffset: p.LastStable, SizeBytes: p.SizeBytes, Segments: p.Segments,
			})
		}
		slices.SortFunc(out.Partitions, func(a, b PartitionJSON) int { return cmp.Compare(a.Partition, b.Partition) })
		writeJSON(w, http.StatusOK, out)
		return
	}
	writeJSON(w, http.StatusNotFound, ErrorJSON{Error: "unknown topic " + name})
}

func topicTotals(t Topic) (size int64, segments int) {
	for _, p := range t.Partitions {
		size += p.SizeBytes
		segments += p.Segments
	}
	return size, segments
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
			GroupID: g.ID, Type: g.Type, State: g.State, Members: g.Members, Lag: totalLag(g),
			Partitions: make([]PartitionLagJSON, 0, len(g.Lag)),
		}
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
