package admin

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
)

// ErrClosed is returned by Start after Shutdown.
var ErrClosed = errors.New("admin: closed")

// Server is the admin HTTP listener. It is safe for concurrent use.
type Server struct {
	opts Options
	src  Source
	log  *slog.Logger
	ln   net.Listener
	hs   *http.Server
	hist *history
	stop chan struct{} // closed by Shutdown: stops the history sampler

	mu struct {
		sync.Mutex
		started, closed bool
	}
	wg sync.WaitGroup
}

// New validates opts and binds the listener, so Addr is valid at once.
// Requests are served after Start.
func New(opts Options, src Source) (*Server, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	if src == nil {
		return nil, errors.New("admin: nil Source")
	}
	opts = opts.withDefaults()
	s := &Server{opts: opts, src: src, log: opts.Logger,
		hist: newHistory(opts.HistoryInterval, opts.HistorySamples), stop: make(chan struct{})}
	s.ln = opts.Listener
	if s.ln == nil {
		ln, err := net.Listen("tcp", opts.Addr)
		if err != nil {
			return nil, fmt.Errorf("admin: listen: %w", err)
		}
		s.ln = ln
	}
	s.hs = &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: opts.ReadHeaderTimeout,
		// The handlers are bounded by RequestTimeout; these keep a
		// slow client from holding a connection past it.
		ReadTimeout:    opts.RequestTimeout,
		WriteTimeout:   opts.RequestTimeout + opts.ReadHeaderTimeout,
		IdleTimeout:    opts.IdleTimeout,
		MaxHeaderBytes: opts.MaxHeaderBytes,
		ErrorLog:       slog.NewLogLogger(opts.Logger.Handler(), slog.LevelDebug),
	}
	return s, nil
}

// Addr is the address the server listens on.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Start serves requests on a goroutine the server owns, and samples the
// Source for /api/history on another; Shutdown waits for both. A listener
// failure is logged.
func (s *Server) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mu.closed {
		return ErrClosed
	}
	if s.mu.started {
		return errors.New("admin: already started")
	}
	s.mu.started = true
	s.wg.Go(func() {
		if err := s.hs.Serve(s.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("admin: listener failed", "addr", s.ln.Addr().String(), "err", err)
		}
	})
	s.wg.Go(func() { s.hist.sampleLoop(s.src, s.stop) })
	return nil
}

// Shutdown stops accepting and sampling, waits for in-flight requests and
// the sampler, and closes the listener. If ctx expires first, it closes
// every connection at once and returns ctx's error. A second call returns
// nil.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	if s.mu.closed {
		s.mu.Unlock()
		s.wg.Wait()
		return nil
	}
	s.mu.closed = true
	started := s.mu.started
	s.mu.Unlock()
	close(s.stop)

	var err error
	if started {
		err = s.hs.Shutdown(ctx)
		if err != nil {
			_ = s.hs.Close()
		}
	} else {
		_ = s.ln.Close()
	}
	s.wg.Wait()
	return err
}
