// Package metrics is Sluice's Prometheus adapter, and the only package that
// imports Prometheus. Every metric is listed in docs/metrics.md.
//
// Two kinds of input:
//
//   - Pulled at scrape time: counters and gauges the broker already keeps
//     (server.Stats, storage.Stats with wal.Stats) and the Source's view of
//     topics, partitions and groups are read when Prometheus scrapes, so the
//     data path pays nothing for them.
//   - Observed per event: what needs a histogram or a per-topic split is
//     pushed through the Observe methods, whose signatures match the hooks
//     they plug into (server.Options.OnResponse, wal.Options.OnSync). Each
//     costs a few atomic adds and no allocation; see the benchmarks.
//
// # Label cardinality
//
// Per-topic series are bounded by Options.MaxTopicLabels: the first topics
// seen (by an Observe call or a scrape) get their own label value until the
// cap is reached, for the life of the process; later topics are summed under
// topic="_other". Consumer lag is bounded by Options.MaxLagSeries; series past
// it are dropped and counted in sluice_consumer_lag_series_dropped_total.
//
// A nil *Metrics is valid and does nothing, so callers can hold one
// unconditionally and switch metrics off by passing nil. A Metrics is safe
// for concurrent use.
package metrics
