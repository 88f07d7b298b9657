package server

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"time"
)

// Defaults, named after the Kafka settings they mirror.
const (
	DefaultAddr                = ":9092"
	DefaultMaxRequestBytes     = 100 << 20        // socket.request.max.bytes
	DefaultMaxInFlightRequests = 64               // per connection
	DefaultMaxInFlightBytes    = 256 << 20        // queued.max.request.bytes
	DefaultMaxConnections      = 10_000           // max.connections
	DefaultIdleTimeout         = 10 * time.Minute // connections.max.idle.ms
	DefaultWriteTimeout        = 30 * time.Second
)

// Options configures a Server. Zero values mean the defaults above.
type Options struct {
	// Addr is the TCP address to listen on, "host:port".
	Addr string
	// Listener, if set, is used instead of listening on Addr (tests, and
	// TLS later). The server closes it on Shutdown.
	Listener net.Listener

	// MaxRequestBytes is the largest request frame accepted, size prefix
	// excluded; a larger size prefix closes the connection unread.
	MaxRequestBytes int
	// MaxInFlightRequests is how many requests one connection may have
	// read and not yet answered before its reader stops reading.
	MaxInFlightRequests int
	// MaxInFlightBytes is how many request bytes may be read and not yet
	// answered across all connections before readers stop reading. It is
	// server-wide, like Kafka's queued.max.request.bytes, because its job
	// is to bound the broker's memory, which a per-connection budget
	// times MaxConnections would not. It must be at least
	// MaxRequestBytes, or a largest request could never be admitted.
	MaxInFlightBytes int
	// MaxConnections is how many connections may be open; past it new
	// connections are closed at once.
	MaxConnections int

	// IdleTimeout closes a connection with nothing in flight that has
	// sent nothing and been sent nothing for this long.
	IdleTimeout time.Duration
	// WriteTimeout closes a connection whose client accepts no bytes of
	// a response for this long, so a client that stops reading cannot
	// pin a goroutine and its in-flight budget forever.
	WriteTimeout time.Duration

	// DisableSendfile copies file parts through user space instead of
	// using sendfile. It exists to measure what zero-copy buys; the zero
	// value keeps sendfile on.
	DisableSendfile bool

	// Logger receives connection-level events; nil discards them.
	Logger *slog.Logger

	// OnResponse, if set, is called once for every request read and
	// handed to the handler, on the connection's writer goroutine (or its
	// reader, when Handle fails), after the response was written or
	// abandoned. d runs from the moment the request was read to then.
	// failed is true when no response reached the client or the
	// connection was closed because of this request: a handler panic, a
	// bad or unwritable response, a connection that died first, or a
	// response whose Close was set (Kafka's way to report a failed acks=0
	// produce or authentication). resp is the handler's response (zero
	// when Handle failed), so the hook can count the Kafka error codes
	// inside it; it must not keep resp or anything it points to. It is a
	// metrics hook and must be quick.
	OnResponse func(key, version int16, d time.Duration, failed bool, resp Response)
}

// Validate reports every problem with o at once. Zero values are valid:
// they select the defaults.
func (o *Options) Validate() error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("server: options: "+format, args...))
	}
	if o.Addr != "" && o.Listener == nil {
		if _, _, err := net.SplitHostPort(o.Addr); err != nil {
			bad("Addr %q: %v", o.Addr, err)
		}
	}
	if o.MaxRequestBytes < 0 {
		bad("MaxRequestBytes %d is negative", o.MaxRequestBytes)
	}
	if o.MaxRequestBytes > math.MaxInt32 {
		bad("MaxRequestBytes %d exceeds the int32 size prefix", o.MaxRequestBytes)
	}
	if o.MaxInFlightRequests < 0 {
		bad("MaxInFlightRequests %d is negative", o.MaxInFlightRequests)
	}
	if o.MaxInFlightBytes < 0 {
		bad("MaxInFlightBytes %d is negative", o.MaxInFlightBytes)
	}
	if o.MaxConnections < 0 {
		bad("MaxConnections %d is negative", o.MaxConnections)
	}
	if o.IdleTimeout < 0 {
		bad("IdleTimeout %v is negative", o.IdleTimeout)
	}
	if o.WriteTimeout < 0 {
		bad("WriteTimeout %v is negative", o.WriteTimeout)
	}
	if o.MaxRequestBytes >= 0 && o.MaxInFlightBytes >= 0 {
		d := o.withDefaults()
		if d.MaxInFlightBytes < d.MaxRequestBytes {
			bad("MaxInFlightBytes %d is below MaxRequestBytes %d", d.MaxInFlightBytes, d.MaxRequestBytes)
		}
	}
	return errors.Join(errs...)
}

// withDefaults returns a copy of o with zero values replaced by defaults.
func (o Options) withDefaults() Options {
	if o.Addr == "" {
		o.Addr = DefaultAddr
	}
	if o.MaxRequestBytes == 0 {
		o.MaxRequestBytes = DefaultMaxRequestBytes
	}
	if o.MaxInFlightRequests == 0 {
		o.MaxInFlightRequests = DefaultMaxInFlightRequests
	}
	if o.MaxInFlightBytes == 0 {
		o.MaxInFlightBytes = max(DefaultMaxInFlightBytes, o.MaxRequestBytes)
	}
	if o.MaxConnections == 0 {
		o.MaxConnections = DefaultMaxConnections
	}
	if o.IdleTimeout == 0 {
		o.IdleTimeout = DefaultIdleTimeout
	}
	if o.WriteTimeout == 0 {
		o.WriteTimeout = DefaultWriteTimeout
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}
