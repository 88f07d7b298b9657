package server

import (
	"context"
	"encoding/binary"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// A size prefix over MaxRequestBytes, or negative, closes the connection
// without reading the body; other connections keep working.
func TestOversizedFrame(t *testing.T) {
	h := &testHandler{}
	s := startServer(t, h, func(o *Options) { o.MaxRequestBytes = 1024 })
	healthy := dial(t, s)
	for _, size := range []int32{1025, 1 << 30, -1, -1 << 31} {
		c := dial(t, s)
		c.write(binary.BigEndian.AppendUint32(nil, uint32(size)))
		c.expectClosed()
		healthy.send(metadata(1), size)
		if corr := healthy.recv(mdResp(1), false); corr != size {
			t.Fatalf("correlation id %d, want %d", corr, size)
		}
	}
	if got := s.Stats().BytesIn; got >= 1024 {
		t.Fatalf("server read %d bytes; it should have read only the healthy requests", got)
	}
	// A request at the limit is fine.
	f := kmsg.NewRequestFormatter(kmsg.FormatterClientID(strings.Repeat("x", 1024)))
	frame := encodeRequest(f, metadata(1), 9)
	pad := len(frame) - 4 - 1024
	f = kmsg.NewRequestFormatter(kmsg.FormatterClientID(strings.Repeat("x", 1024-pad)))
	healthy.write(encodeRequest(f, metadata(1), 9))
	if corr := healthy.recv(mdResp(1), false); corr != 9 {
		t.Fatalf("correlation id %d", corr)
	}
}

// Past MaxInFlightRequests the reader stops; it resumes as responses go out.
func TestMaxInFlightRequests(t *testing.T) {
	gates := make(chan *gate, 10)
	h := &testHandler{fn: func(_ context.Context, req *Request) Pending {
		g := newGate(Response{Msg: kmsg.NewPtrMetadataResponse()})
		gates <- g
		return g
	}}
	s := startServer(t, h, func(o *Options) { o.MaxInFlightRequests = 2 })
	c := dial(t, s)
	var batch []byte
	for i := range 5 {
		batch = append(batch, encodeRequest(c.f, metadata(1), int32(i))...)
	}
	c.write(batch)
	h.waitHandled(t, 2)
	time.Sleep(quiet)
	if n := len(h.requests()); n != 2 {
		t.Fatalf("handler saw %d requests with 2 in flight allowed", n)
	}
	for i := range 5 {
		(<-gates).open()
		if corr := c.recv(mdResp(1), false); corr != int32(i) {
			t.Fatalf("correlation id %d, want %d", corr, i)
		}
	}
}

// Past MaxInFlightBytes, across connections, readers stop.
func TestMaxInFlightBytes(t *testing.T) {
	gates := make(chan *gate, 10)
	h := &testHandler{fn: func(_ context.Context, req *Request) Pending {
		g := newGate(Response{Msg: kmsg.NewPtrMetadataResponse()})
		gates <- g
		return g
	}}
	s := startServer(t, h, func(o *Options) { o.MaxRequestBytes, o.MaxInFlightBytes = 400, 400 })
	a, b := dial(t, s), dial(t, s)
	big := kmsg.NewRequestFormatter(kmsg.FormatterClientID(strings.Repeat("x", 300)))
	a.write(encodeRequest(big, metadata(1), 1))
	h.waitHandled(t, 1)
	b.write(encodeRequest(big, metadata(1), 2))
	time.Sleep(quiet)
	if n := len(h.requests()); n != 1 {
		t.Fatalf("handler saw %d requests; the second should wait for bytes", n)
	}
	(<-gates).open()
	a.recv(mdResp(1), false)
	h.waitHandled(t, 2)
	(<-gates).open()
	if corr := b.recv(mdResp(1), false); corr != 2 {
		t.Fatalf("correlation id %d", corr)
	}
}

// An idle connection is closed; one waiting on a slow response is not.
func TestIdleTimeout(t *testing.T) {
	const idle = 150 * time.Millisecond
	h := &testHandler{fn: func(context.Context, *Request) Pending {
		return slowPending{3 * idle}
	}}
	s := startServer(t, h, func(o *Options) { o.IdleTimeout = idle })

	start := time.Now()
	c := dial(t, s)
	c.expectClosed()
	if el := time.Since(start); el < idle {
		t.Fatalf("closed after %v, before the idle timeout", el)
	}

	c = dial(t, s)
	c.send(metadata(1), 5)
	if corr := c.recv(mdResp(1), false); corr != 5 {
		t.Fatalf("correlation id %d", corr)
	}
	start = time.Now()
	c.expectClosed()
	if el := time.Since(start); el < idle/2 {
		t.Fatalf("closed %v after the response; idle is counted from the last activity", el)
	}
}

type slowPending struct{ d time.Duration }

func (p slowPending) Wait(ctx context.Context) Response {
	select {
	case <-time.After(p.d):
	case <-ctx.Done():
	}
	return Response{Msg: kmsg.NewPtrMetadataResponse()}
}

// smallBufListener shrinks accepted sockets' send buffers so a client that
// does not read stalls the server quickly.
type smallBufListener struct{ net.Listener }

func (l smallBufListener) Accept() (net.Conn, error) {
	nc, err := l.Listener.Accept()
	if err == nil {
		_ = nc.(*net.TCPConn).SetWriteBuffer(4 << 10)
	}
	return nc, err
}

// A client that never reads is cut after WriteTimeout and blocks no one.
func TestWriteTimeout(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	big := make([]byte, 8<<20)
	s := startServer(t, metadataHandler(func(context.Context, *Request) Pending {
		return Done{Parts: []Part{{Bytes: big}}}
	}), func(o *Options) {
		o.Listener = smallBufListener{ln}
		o.WriteTimeout = 200 * time.Millisecond
	})
	stuck := dial(t, s)
	_ = stuck.nc.(*net.TCPConn).SetReadBuffer(4 << 10)
	stuck.send(metadata(1), 1)
	waitConnections(t, s, 1)
	checkHealthy(t, s) // while stuck's writer is blocked
	waitConnections(t, s, 0)
	if out := s.Stats().BytesOut; out >= int64(len(big)) {
		t.Fatalf("server wrote %d bytes to a client that reads nothing", out)
	}
}

// Past MaxConnections new connections are closed at once.
func TestMaxConnections(t *testing.T) {
	s := startServer(t, &testHandler{}, func(o *Options) { o.MaxConnections = 2 })
	a, b := dial(t, s), dial(t, s)
	for _, c := range []*rawClient{a, b} {
		c.send(metadata(1), 1)
		c.recv(mdResp(1), false)
	}
	dial(t, s).expectClosed()
	if st := s.Stats(); st.ConnectionsRejected != 1 || st.Connections != 2 {
		t.Fatalf("stats %+v", st)
	}
	a.nc.Close()
	waitConnections(t, s, 1)
	checkHealthy(t, s)
}
