// Package admin is Sluice's HTTP admin listener: Prometheus metrics,
// liveness and readiness probes, and a read-only JSON view of topics,
// partitions, consumer groups and the broker's configuration.
//
// # The seam
//
// The broker implements Source; the listener only reads it, at request
// time, so nothing here costs the data path anything. The /metrics handler
// is passed in as a plain http.Handler (internal/metrics builds it), which
// keeps this package free of Prometheus.
//
// # Endpoints
//
//	GET /                    the web console (console/, embedded; docs/console.md)
//	GET /console/{file}      its assets
//	GET /metrics             Prometheus text exposition (Options.Metrics)
//	GET /healthz             200 "ok" while the process serves HTTP
//	GET /readyz              200 "ready" once Source.Ready() is nil, else 503 and the reason
//	GET /api/topics          topics with partition counts and totals
//	GET /api/topics/{name}   one topic with every partition and its configs
//	GET /api/topics/{name}/records   recent records of one partition (browse)
//	GET /api/groups          consumer groups with total lag
//	GET /api/groups/{id}     one group: members, assignments, lag per partition
//	GET /api/config          broker configuration entries
//	GET /api/history         throughput and lag sampled by the history goroutine
//
// JSON field names are snake_case and stable; see the *JSON types. Only GET
// and HEAD are served (405 otherwise) and request bodies are never read.
// Every request is bounded by Options.RequestTimeout, headers by
// Options.MaxHeaderBytes.
//
// # Goroutines
//
// Start runs the HTTP server and the history sampler (one Source.Topics
// and Source.Groups call every Options.HistoryInterval, kept in a bounded
// ring) on goroutines the Server owns; Shutdown stops both and waits for
// them and for in-flight requests. A Server is safe for concurrent
// use.
package admin
