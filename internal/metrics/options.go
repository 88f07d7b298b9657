package metrics

import (
	"errors"
	"fmt"
	"log/slog"

	"github.com/sluice-io/sluice/internal/admin"
	"github.com/sluice-io/sluice/internal/server"
	"github.com/sluice-io/sluice/internal/storage"
)

// Defaults for the cardinality bounds.
const (
	DefaultMaxTopicLabels = 1000
	DefaultMaxLagSeries   = 10_000
)

// OtherTopic is the topic label value that sums every topic past
// MaxTopicLabels.
const OtherTopic = "_other"

// Source is the part of admin.Source the collector reads at scrape time;
// an admin.Source satisfies it.
type Source interface {
	Ready() error
	Topics() []admin.Topic
	Groups() []admin.Group
}

// Options configures a Metrics. Every input is optional: a nil func or
// Source leaves its metrics out.
type Options struct {
	// Source gives readiness, partitions (size, segments, offsets) and
	// consumer groups (lag), read at each scrape.
	Source Source
	// ServerStats and StorageStats return the snapshots read at each
	// scrape (server.Server.Stats, storage.Engine.Stats).
	ServerStats  func() server.Stats
	StorageStats func() storage.Stats
	// DiskSpace returns the free and total bytes of the file system the
	// data lives on (see DiskSpace); an error leaves them out of that
	// scrape.
	DiskSpace func() (freeBytes, totalBytes int64, err error)

	// MaxTopicLabels bounds the topic label values of per-topic series;
	// the rest are summed under topic="_other".
	MaxTopicLabels int
	// MaxLagSeries bounds sluice_consumer_lag's series, and separately
	// the per-group series; the rest are dropped and counted.
	MaxLagSeries int

	// NoRuntimeMetrics leaves out the Go runtime and process collectors
	// (go_*, process_*), which are on by default.
	NoRuntimeMetrics bool

	// Logger receives scrape errors; nil discards them.
	Logger *slog.Logger
}

// Validate reports every problem with o at once. Zero values are valid:
// they select the defaults.
func (o *Options) Validate() error {
	var errs []error
	if o.MaxTopicLabels < 0 {
		errs = append(errs, fmt.Errorf("metrics: options: MaxTopicLabels %d is negative", o.MaxTopicLabels))
	}
	if o.MaxLagSeries < 0 {
		errs = append(errs, fmt.Errorf("metrics: options: MaxLagSeries %d is negative", o.MaxLagSeries))
	}
	return errors.Join(errs...)
}

func (o Options) withDefaults() Options {
	if o.MaxTopicLabels == 0 {
		o.MaxTopicLabels = DefaultMaxTopicLabels
	}
	if o.MaxLagSeries == 0 {
		o.MaxLagSeries = DefaultMaxLagSeries
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}
