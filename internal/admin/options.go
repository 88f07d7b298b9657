package admin

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"
)

// Defaults. The listener binds to loopback unless told otherwise: it has no
// authentication.
const (
	DefaultAddr              = "127.0.0.1:9644"
	DefaultRequestTimeout    = 10 * time.Second
	DefaultReadHeaderTimeout = 5 * time.Second
	DefaultIdleTimeout       = 60 * time.Second
	DefaultMaxHeaderBytes    = 16 << 10
	DefaultHistoryInterval   = 2 * time.Second
	DefaultHistorySamples    = 150 // five minutes at the default interval
)

// Bounds on the history options: a sampler faster than HistoryIntervalMin
// would cost the broker more than a chart is worth, and HistorySamplesMax
// bounds the ring's memory (each sample holds up to HistoryTopicsMax
// topics and HistoryGroupsMax groups).
const (
	HistoryIntervalMin = 10 * time.Millisecond
	HistorySamplesMax  = 10_000
)

// Options configures a Server. Zero values mean the defaults above.
type Options struct {
	// Addr is the TCP address to listen on, "host:port".
	Addr string
	// Listener, if set, is used instead of listening on Addr (tests).
	// The server closes it on Shutdown.
	Listener net.Listener

	// Metrics serves /metrics; nil answers 404 there.
	Metrics http.Handler

	// RequestTimeout bounds one request: reading it, running the
	// handler and writing the response. A handler past it answers 503.
	RequestTimeout time.Duration
	// ReadHeaderTimeout bounds reading a request's headers.
	ReadHeaderTimeout time.Duration
	// IdleTimeout closes a keep-alive connection idle this long.
	IdleTimeout time.Duration
	// MaxHeaderBytes bounds a request's headers.
	MaxHeaderBytes int

	// HistoryInterval is how often the server samples the Source's
	// topics and groups for /api/history, from Start to Shutdown.
	HistoryInterval time.Duration
	// HistorySamples is how many samples /api/history keeps, the oldest
	// dropped first.
	HistorySamples int

	// Logger receives listener errors; nil discards them.
	Logger *slog.Logger
}

// Validate reports every problem with o at once. Zero values are valid:
// they select the defaults.
func (o *Options) Validate() error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("admin: options: "+format, args...))
	}
	if o.Addr != "" && o.Listener == nil {
		if _, _, err := net.SplitHostPort(o.Addr); err != nil {
			bad("Addr %q: %v", o.Addr, err)
		}
	}
	if o.RequestTimeout < 0 {
		bad("RequestTimeout %v is negative", o.RequestTimeout)
	}
	if o.ReadHeaderTimeout < 0 {
		bad("ReadHeaderTimeout %v is negative", o.ReadHeaderTimeout)
	}
	if o.IdleTimeout < 0 {
		bad("IdleTimeout %v is negative", o.IdleTimeout)
	}
	if o.MaxHeaderBytes < 0 {
		bad("MaxHeaderBytes %d is negative", o.MaxHeaderBytes)
	}
	if o.HistoryInterval != 0 && o.HistoryInterval < HistoryIntervalMin {
		bad("HistoryInterval %v is below %v", o.HistoryInterval, HistoryIntervalMin)
	}
	if o.HistorySamples < 0 || o.HistorySamples > HistorySamplesMax {
		bad("HistorySamples %d is outside [0, %d]", o.HistorySamples, HistorySamplesMax)
	}
	return errors.Join(errs...)
}

func (o Options) withDefaults() Options {
	if o.Addr == "" {
		o.Addr = DefaultAddr
	}
	if o.RequestTimeout == 0 {
		o.RequestTimeout = DefaultRequestTimeout
	}
	if o.ReadHeaderTimeout == 0 {
		o.ReadHeaderTimeout = DefaultReadHeaderTimeout
	}
	if o.IdleTimeout == 0 {
		o.IdleTimeout = DefaultIdleTimeout
	}
	if o.MaxHeaderBytes == 0 {
		o.MaxHeaderBytes = DefaultMaxHeaderBytes
	}
	if o.HistoryInterval == 0 {
		o.HistoryInterval = DefaultHistoryInterval
	}
	if o.HistorySamples == 0 {
		o.HistorySamples = DefaultHistorySamples
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}
