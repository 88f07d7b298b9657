package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/semaphore"
)

// ErrClosed is returned by Serve and Start after Shutdown.
var ErrClosed = errors.New("server: closed")

// Accept retry backoff after a temporary error (EMFILE and the like), as
// net/http does: the condition usually clears, and spinning would not help.
const (
	acceptBackoffMin = 5 * time.Millisecond
	acceptBackoffMax = time.Second
)

// Server is a Kafka protocol server. It is safe for concurrent use.
type Server struct {
	opts Options
	h    Handler
	log  *slog.Logger
	ln   net.Listener

	// budget holds the request bytes read and not yet answered, across
	// all connections (Options.MaxInFlightBytes).
	budget *semaphore.Weighted
	// bodies holds request buffers for reuse; trimEvery is how often
	// trimLoop checks whether the server is idle (bufpool.go).
	bodies    *bodyPool
	trimEvery time.Duration

	// baseCtx is the parent of every connection's context; Shutdown
	// cancels it when its own context expires.
	baseCtx    context.Context
	baseCancel context.CancelFunc

	// draining is closed when Shutdown starts.
	draining chan struct{}
	nextID   atomic.Uint64

	// wg counts the accept loop, the pool trimmer and every connection
	// goroutine. Add is only called under mu while !closed, so no Add
	// races with Shutdown's Wait.
	wg sync.WaitGroup

	mu struct {
		sync.Mutex
		closed  bool
		serving bool
		conns   map[*conn]struct{}
	}

	stats struct {
		connections, accepted, rejected atomic.Int64
		requests, bytesIn, bytesOut     atomic.Int64
		bytesSendfile, bytesCopied      atomic.Int64
		bodiesReused, poolDrops         atomic.Int64 // for tests
	}
}

// New validates opts and binds the listener, so Addr is valid at once.
// Connections are served after Serve or Start.
func New(opts Options, h Handler) (*Server, error) {
	if h == nil {
		return nil, errors.New("server: nil handler")
	}
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	opts = opts.withDefaults()
	ln := opts.Listener
	if ln == nil {
		var err error
		ln, err = net.Listen("tcp", opts.Addr)
		if err != nil {
			return nil, fmt.Errorf("server: listen: %w", err)
		}
	}
	s := &Server{
		opts:      opts,
		h:         h,
		log:       opts.Logger,
		ln:        ln,
		budget:    semaphore.NewWeighted(int64(opts.MaxInFlightBytes)),
		bodies:    newBodyPool(int64(opts.MaxInFlightBytes)),
		trimEvery: bodyPoolIdle,
		draining:  make(chan struct{}),
	}
	s.baseCtx, s.baseCancel = context.WithCancel(context.Background())
	s.mu.conns = make(map[*conn]struct{})
	return s, nil
}

// Addr is the address the server listens on.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Serve accepts connections until Shutdown, then returns nil. It returns
// ErrClosed if Shutdown came first, and an error if the listener fails for
// good (connections already open keep being served until Shutdown).
func (s *Server) Serve() error {
	if err := s.startServing(); err != nil {
		return err
	}
	defer s.wg.Done()
	return s.acceptLoop()
}

// Start runs Serve on a goroutine the server owns; Shutdown waits for it.
// A listener failure is logged.
func (s *Server) Start() error {
	if err := s.startServing(); err != nil {
		return err
	}
	go func() {
		defer s.wg.Done()
		if err := s.acceptLoop(); err != nil {
			s.log.Error("server: accept loop stopped", "err", err)
		}
	}()
	return nil
}

func (s *Server) startServing() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mu.closed {
		return ErrClosed
	}
	if s.mu.serving {
		return errors.New("server: already serving")
	}
	s.mu.serving = true
	s.wg.Add(2)
	go func() {
		defer s.wg.Done()
		s.trimLoop(s.trimEvery)
	}()
	return nil
}

func (s *Server) acceptLoop() error {
	backoff := time.Duration(0)
	for {
		nc, err := s.ln.Accept()
		if err != nil {
			select {
			case <-s.draining:
				return nil
			default:
			}
			if !isTemporary(err) {
				return fmt.Errorf("server: accept: %w", err)
			}
			backoff = min(max(2*backoff, acceptBackoffMin), acceptBackoffMax)
			s.log.Warn("server: accept failed; retrying", "err", err, "backoff", backoff)
			t := time.NewTimer(backoff)
			select {
			case <-s.draining:
				t.Stop()
				return nil
			case <-t.C:
			}
			continue
		}
		backoff = 0
		s.admit(nc)
	}
}

func isTemporary(err error) bool {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true
	}
	// Temporary is deprecated on net.Error, yet it is still how accept
	// reports EMFILE and ECONNABORTED; net/http relies on it too.
	var te interface{ Temporary() bool }
	return errors.As(err, &te) && te.Temporary()
}

// admit registers nc and starts its goroutine, or closes it at once when
// the server is full or shutting down.
func (s *Server) admit(nc net.Conn) {
	s.mu.Lock()
	if s.mu.closed || len(s.mu.conns) >= s.opts.MaxConnections {
		closed := s.mu.closed
		s.mu.Unlock()
		s.stats.rejected.Add(1)
		s.log.Debug("server: connection refused", "remote", nc.RemoteAddr(),
			"shutting_down", closed, "max_connections", s.opts.MaxConnections)
		_ = nc.Close()
		return
	}
	c := newConn(s, nc)
	s.mu.conns[c] = struct{}{}
	s.wg.Add(1)
	s.mu.Unlock()
	s.stats.accepted.Add(1)
	s.stats.connections.Add(1)
	go func() {
		defer s.wg.Done()
		defer s.forget(c)
		c.serve()
	}()
}

func (s *Server) forget(c *conn) {
	s.mu.Lock()
	delete(s.mu.conns, c)
	s.mu.Unlock()
	s.stats.connections.Add(-1)
}

// Shutdown stops accepting connections and reading requests, waits for the
// requests already read to be answered, and closes every connection. If ctx
// expires first, it cancels the handler's contexts, closes the connections
// at once, waits for the goroutines to exit and returns ctx's error. A
// second call waits like the first.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	first := !s.mu.closed
	s.mu.closed = true
	conns := make([]*conn, 0, len(s.mu.conns))
	for c := range s.mu.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	if first {
		close(s.draining)
		if err := s.ln.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			s.log.Warn("server: closing listener", "err", err)
		}
	}
	for _, c := range conns {
		c.stopReading()
	}

	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		s.baseCancel()
		return nil
	case <-ctx.Done():
	}
	s.baseCancel()
	for _, c := range conns {
		c.abort()
	}
	<-done
	return ctx.Err()
}

// Stats returns a snapshot of the server's counters.
func (s *Server) Stats() Stats {
	return Stats{
		Connections:         s.stats.connections.Load(),
		ConnectionsAccepted: s.stats.accepted.Load(),
		ConnectionsRejected: s.stats.rejected.Load(),
		Requests:            s.stats.requests.Load(),
		BytesIn:             s.stats.bytesIn.Load(),
		BytesOut:            s.stats.bytesOut.Load(),
		BytesSendfile:       s.stats.bytesSendfile.Load(),
		BytesCopied:         s.stats.bytesCopied.Load(),
	}
}
