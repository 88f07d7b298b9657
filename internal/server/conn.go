package server

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

const (
	// readBufferBytes is the read-ahead per connection. It is the only
	// unaccounted buffering on the read side, so it stays small.
	readBufferBytes = 32 << 10
	// writeChunkBytes is the most written under one write deadline, so
	// WriteTimeout bounds a stall, not the time to send a large response.
	writeChunkBytes = 1 << 20
	// keepEncodeBufferBytes: a larger encode buffer is dropped after use
	// rather than pinned for the connection's life.
	keepEncodeBufferBytes = 1 << 20
	// copyBufferBytes is the chunk size for file parts sent without
	// sendfile.
	copyBufferBytes = 64 << 10
)

var copyBufPool = sync.Pool{New: func() any {
	b := make([]byte, copyBufferBytes)
	return &b
}}

// inflight is a request read and not yet answered.
type inflight struct {
	req     *Request
	pending Pending
	budget  int64     // bytes held in Server.budget
	body    *[]byte   // the pooled buffer req.Body was decoded from
	read    time.Time // when the request was read; set only for OnResponse
}

// conn is one client connection. Its reader goroutine (serve) owns the
// read side and calls the handler; its writer goroutine (writeLoop) owns
// the write side and the encode buffers. They share only queue, slots, the
// atomics, and mu.
type conn struct {
	s     *Server
	nc    net.Conn
	tcp   *net.TCPConn // nc as a TCP socket, for sendfile; nil otherwise
	info  *ConnInfo
	log   *slog.Logger
	start time.Time

	// ctx is cancelled when the connection dies; readCtx also when
	// Shutdown stops the reader.
	ctx        context.Context
	cancel     context.CancelFunc
	readCtx    context.Context
	readCancel context.CancelFunc

	queue chan *inflight // reader to writer, in request order
	slots chan struct{}  // one token per request in flight

	inflight     atomic.Int64 // requests read and not yet answered
	lastActivity atomic.Int64 // time.Since(start) at the last byte read or response written

	// mu orders arming the read deadline against stopReading, so a
	// reader can never re-arm a deadline Shutdown just expired.
	mu struct {
		sync.Mutex
		stopping bool
	}
	closeOnce sync.Once

	// Writer-owned scratch.
	wbuf []byte
	bufs [][]byte
	iov  net.Buffers
}

func newConn(s *Server, nc net.Conn) *conn {
	id := s.nextID.Add(1)
	c := &conn{
		s:  s,
		nc: nc,
		info: &ConnInfo{
			ID:        id,
			Remote:    nc.RemoteAddr(),
			Local:     nc.LocalAddr(),
			Plaintext: true,
		},
		log:   s.log.With("conn", id, "remote", nc.RemoteAddr().String()),
		start: time.Now(),
		queue: make(chan *inflight, s.opts.MaxInFlightRequests),
		slots: make(chan struct{}, s.opts.MaxInFlightRequests),
	}
	c.tcp, _ = nc.(*net.TCPConn)
	c.ctx, c.cancel = context.WithCancel(s.baseCtx)
	c.readCtx, c.readCancel = context.WithCancel(c.ctx)
	return c
}

// serve runs the connection: the reader here, the writer on a goroutine it
// waits for.
func (c *conn) serve() {
	var wg sync.WaitGroup
	wg.Go(c.writeLoop)
	err := c.readLoop()
	close(c.queue)
	switch {
	case errors.Is(err, io.EOF), errors.Is(err, errStopped):
		// Answer what was read, then close: a client that half-closed
		// still gets its responses, and so does one read before
		// Shutdown.
		c.log.Debug("server: connection draining", "reason", err)
	case c.ctx.Err() != nil:
		// The writer or Shutdown already closed the connection.
	default:
		c.log.Debug("server: closing connection", "err", err)
		c.abort()
	}
	wg.Wait()
	c.abort()
	c.readCancel()
}

// abort closes the connection at once and cancels its context, which
// abandons every response not yet written.
func (c *conn) abort() {
	c.closeOnce.Do(func() {
		c.cancel()
		_ = c.nc.Close()
	})
}

// stopReading makes the reader stop at its next read, for Shutdown.
func (c *conn) stopReading() {
	c.mu.Lock()
	c.mu.stopping = true
	// Any past time wakes a Read blocked on the socket.
	_ = c.nc.SetReadDeadline(time.Unix(1, 0))
	c.mu.Unlock()
	c.readCancel()
}

func (c *conn) armRead(deadline time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.mu.stopping {
		return errStopped
	}
	return c.nc.SetReadDeadline(deadline)
}

func (c *conn) stopping() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.mu.stopping
}

func (c *conn) armWrite() error {
	return c.nc.SetWriteDeadline(time.Now().Add(c.s.opts.WriteTimeout))
}

func (c *conn) touch() { c.lastActivity.Store(int64(time.Since(c.start))) }

// readErr is why a reader waiting on readCtx gave up.
func (c *conn) readErr() error {
	if err := c.ctx.Err(); err != nil {
		return err
	}
	return errStopped
}

func (c *conn) readLoop() error {
	br := bufio.NewReaderSize(idleReader{c}, readBufferBytes)
	var prefix [4]byte
	for {
		// Past MaxInFlightRequests the reader stops reading here and
		// TCP pushes back on the client.
		select {
		case c.slots <- struct{}{}:
		case <-c.readCtx.Done():
			return c.readErr()
		}
		if _, err := io.ReadFull(br, prefix[:]); err != nil {
			return err
		}
		size := int32(binary.BigEndian.Uint32(prefix[:]))
		if size < 0 || int(size) > c.s.opts.MaxRequestBytes {
			return fmt.Errorf("%w: %d bytes, limit %d", errRequestTooLarge, size, c.s.opts.MaxRequestBytes)
		}
		// Past MaxInFlightBytes, likewise; the body is not read until
		// its bytes are admitted.
		if err := c.s.budget.Acquire(c.readCtx, int64(size)); err != nil {
			return c.readErr()
		}
		req, body, err := c.readRequest(br, int(size))
		var read time.Time
		if err == nil && c.s.opts.OnResponse != nil {
			read = time.Now()
		}
		var pending Pending
		if err == nil {
			pending, err = c.handle(req)
			if err != nil {
				// A handler that panicked may have kept
				// references into the body: let it go.
				body = nil
				c.observe(req, read, true, Response{})
			}
		}
		if err != nil {
			c.s.bodies.put(body)
			c.s.budget.Release(int64(size))
			return err
		}
		c.inflight.Add(1)
		// Never blocks: queue has a place for every slot.
		c.queue <- &inflight{req: req, pending: pending, budget: int64(size), body: body, read: read}
	}
}

// readRequest reads and decodes one request. body is the pooled buffer
// req.Body's byte fields point into; see finish for when it is reused.
func (c *conn) readRequest(r io.Reader, size int) (req *Request, body *[]byte, err error) {
	body, err = c.s.bodies.readBody(r, size)
	if err != nil {
		return nil, nil, err
	}
	c.s.stats.bytesIn.Add(int64(4 + size))
	req, err = parseRequest(c.s.h, *body)
	if err != nil {
		c.s.bodies.put(body)
		return nil, nil, err
	}
	req.Conn = c.info
	req.Size = 4 + size
	c.s.stats.requests.Add(1)
	return req, body, nil
}

// handle calls the handler, which is outside our control: a panic closes
// this connection only.
func (c *conn) handle(req *Request) (p Pending, err error) {
	defer func() {
		if r := recover(); r != nil {
			c.log.Error("server: handler panicked", "key", req.Key, "version", req.Version,
				"panic", r, "stack", string(debug.Stack()))
			p, err = nil, fmt.Errorf("%w: Handle panicked", errHandler)
		}
	}()
	p = c.s.h.Handle(c.ctx, req)
	if p == nil {
		c.log.Error("server: handler returned a nil Pending", "key", req.Key, "version", req.Version)
		return nil, fmt.Errorf("%w: nil Pending", errHandler)
	}
	return p, nil
}

// idleReader reads from the socket and enforces IdleTimeout: a read that
// times out while requests are in flight, or soon after the last activity,
// re-arms and goes on, so a long-poll never trips it.
type idleReader struct{ c *conn }

func (r idleReader) Read(p []byte) (int, error) {
	c := r.c
	idle := c.s.opts.IdleTimeout
	for {
		deadline := c.start.Add(time.Duration(c.lastActivity.Load()) + idle)
		if c.inflight.Load() > 0 {
			deadline = time.Now().Add(idle)
		}
		if err := c.armRead(deadline); err != nil {
			return 0, err
		}
		n, err := c.nc.Read(p)
		if n > 0 {
			c.touch()
			if isTimeout(err) {
				err = nil
			}
			return n, err
		}
		if !isTimeout(err) {
			return n, err
		}
		if c.stopping() {
			return 0, errStopped
		}
		if c.inflight.Load() == 0 && time.Since(c.start)-time.Duration(c.lastActivity.Load()) >= idle {
			return 0, errIdle
		}
	}
}

func isTimeout(err error) bool { return errors.Is(err, os.ErrDeadlineExceeded) }

func (c *conn) writeLoop() {
	for it := range c.queue {
		c.finish(it)
	}
}

// finish awaits one request's response, writes it unless the connection is
// dead, and returns its slot and bytes. The request's buffer is reused only
// when the handler said it no longer refers to it, and Wait returned with
// the connection alive: a Wait cut short by a dead connection may leave
// work behind that still reads the request's bytes (a produce's appends).
func (c *conn) finish(it *inflight) {
	resp, ok := c.await(it)
	reuse := ok && resp.ReuseRequest && c.ctx.Err() == nil
	failed := true
	if !ok {
		c.abort()
	} else if c.ctx.Err() == nil {
		err := c.respond(it.req, resp)
		failed = err != nil || resp.Close
		if err != nil {
			if errors.Is(err, errBadResponse) {
				c.log.Error("server: closing connection", "key", it.req.Key, "version", it.req.Version, "err", err)
			} else {
				c.log.Debug("server: closing connection", "err", err)
			}
			c.abort()
		}
	}
	// Observed before Release, which may return what resp points to.
	c.observe(it.req, it.read, failed, resp)
	c.release(resp)
	if reuse && it.body != nil {
		c.s.bodies.put(it.body)
		c.s.stats.bodiesReused.Add(1)
	}
	it.body = nil
	c.touch()
	c.inflight.Add(-1)
	<-c.slots
	c.s.budget.Release(it.budget)
}

// observe reports one finished request to Options.OnResponse.
func (c *conn) observe(req *Request, read time.Time, failed bool, resp Response) {
	if f := c.s.opts.OnResponse; f != nil {
		f(req.Key, req.Version, time.Since(read), failed, resp)
	}
}

func (c *conn) await(it *inflight) (resp Response, ok bool) {
	defer func() {
		if r := recover(); r != nil {
			c.log.Error("server: handler panicked in Wait", "key", it.req.Key, "version", it.req.Version,
				"panic", r, "stack", string(debug.Stack()))
			resp, ok = Response{}, false
		}
	}()
	return it.pending.Wait(c.ctx), true
}

func (c *conn) release(resp Response) {
	if resp.Release == nil {
		return
	}
	defer func() {
		if r := recover(); r != nil {
			c.log.Error("server: handler panicked in Release", "panic", r, "stack", string(debug.Stack()))
			c.abort()
		}
	}()
	resp.Release()
}

func (c *conn) respond(req *Request, resp Response) error {
	var err error
	switch {
	case resp.NoResponse && (resp.Msg != nil || resp.Parts != nil):
		err = fmt.Errorf("%w: NoResponse with a body", errBadResponse)
	case resp.NoResponse:
	case resp.Msg != nil && resp.Parts != nil:
		err = fmt.Errorf("%w: both Msg and Parts", errBadResponse)
	case resp.Msg != nil:
		err = c.writeMsg(req, resp.Msg)
	case resp.Parts != nil:
		err = c.writeParts(req, resp.Parts)
	default:
		err = fmt.Errorf("%w: no Msg, Parts or NoResponse", errBadResponse)
	}
	if err == nil && resp.Close {
		c.log.Debug("server: closing connection as the handler asked", "key", req.Key)
		c.abort()
	}
	return err
}

func (c *conn) writeMsg(req *Request, msg kmsg.Response) error {
	if msg.Key() != req.Key {
		return fmt.Errorf("%w: %s response to a %s request", errBadResponse,
			kmsg.NameForKey(msg.Key()), kmsg.NameForKey(req.Key))
	}
	version := req.Version
	if req.UnsupportedVersion {
		version = 0
	}
	msg.SetVersion(version)
	buf, err := encode(appendResponseHeader(c.wbuf[:0], req), msg)
	if err != nil {
		return err
	}
	if cap(buf) <= keepEncodeBufferBytes {
		c.wbuf = buf[:0]
	} else {
		c.wbuf = nil
	}
	if err := putSize(buf, int64(len(buf)-4)); err != nil {
		return err
	}
	c.bufs = append(c.bufs[:0], buf)
	return c.writeBytes(c.bufs)
}

// encode appends msg to dst. The handler built msg, so a panic in kmsg's
// encoder (a nil where a value belongs) is the handler's bug and closes
// only this connection.
func encode(dst []byte, msg kmsg.Response) (out []byte, err error) {
	defer func() {
		if r := recover(); r != nil {
			out, err = nil, fmt.Errorf("%w: encoding %s panicked: %v", errBadResponse, kmsg.NameForKey(msg.Key()), r)
		}
	}()
	return msg.AppendTo(dst), nil
}

// writeParts writes the response header and the parts in order, batching
// byte parts into writev calls and sending file parts with sendfile.
func (c *conn) writeParts(req *Request, parts []Part) error {
	n, err := partsLength(parts)
	if err != nil {
		return err
	}
	hdr := appendResponseHeader(c.wbuf[:0], req)
	c.wbuf = hdr[:0]
	if err := putSize(hdr, int64(len(hdr)-4)+n); err != nil {
		return err
	}
	// Drop references to the handler's buffers once written.
	defer func() { clear(c.bufs[:cap(c.bufs)]) }()
	pending := append(c.bufs[:0], hdr)
	for _, p := range parts {
		if p.File == nil {
			if len(p.Bytes) > 0 {
				pending = append(pending, p.Bytes)
			}
			continue
		}
		if err := c.writeBytes(pending); err != nil {
			return err
		}
		pending = pending[:0]
		if p.Length > 0 {
			if err := c.writeFile(p.File, p.Offset, p.Length); err != nil {
				return err
			}
		}
	}
	c.bufs = pending
	return c.writeBytes(pending)
}

// writeBytes writes bufs with writev, at most writeChunkBytes under each
// write deadline. It consumes bufs.
func (c *conn) writeBytes(bufs [][]byte) error {
	defer func() { clear(c.iov[:cap(c.iov)]) }()
	for len(bufs) > 0 {
		batch := c.iov[:0]
		size := 0
		for len(bufs) > 0 && size < writeChunkBytes {
			b := bufs[0]
			take := min(len(b), writeChunkBytes-size)
			batch = append(batch, b[:take])
			size += take
			if take == len(b) {
				bufs = bufs[1:]
			} else {
				bufs[0] = b[take:]
			}
		}
		c.iov = batch[:0]
		if err := c.armWrite(); err != nil {
			return err
		}
		n, err := batch.WriteTo(c.nc)
		c.s.stats.bytesOut.Add(n)
		if err != nil {
			return err
		}
	}
	return nil
}

// writeFile sends n bytes of f from off: with sendfile on a TCP socket
// unless disabled, else (or where the file system refuses sendfile) by
// copying.
func (c *conn) writeFile(f *os.File, off, n int64) error {
	if c.tcp != nil && !c.s.opts.DisableSendfile {
		sent, handled, err := c.sendfile(f, off, n)
		c.s.stats.bytesSendfile.Add(sent)
		c.s.stats.bytesOut.Add(sent)
		if err != nil || handled {
			return err
		}
		off, n = off+sent, n-sent
	}
	return c.copyFile(f, off, n)
}

// copyFile copies n bytes of f from off with positional reads, so
// concurrent responses on one file never share its cursor.
func (c *conn) copyFile(f *os.File, off, n int64) error {
	bp := copyBufPool.Get().(*[]byte)
	defer copyBufPool.Put(bp)
	r := io.NewSectionReader(f, off, n)
	for n > 0 {
		m, rerr := r.Read((*bp)[:min(n, int64(len(*bp)))])
		if m > 0 {
			if err := c.armWrite(); err != nil {
				return err
			}
			w, err := c.nc.Write((*bp)[:m])
			c.s.stats.bytesCopied.Add(int64(w))
			c.s.stats.bytesOut.Add(int64(w))
			if err != nil {
				return err
			}
			n -= int64(m)
		}
		if rerr != nil && n > 0 {
			if rerr == io.EOF {
				return fmt.Errorf("%w: %s shrank while being sent", errBadResponse, f.Name())
			}
			return rerr
		}
	}
	return nil
}
