package server

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// waitFor bounds every wait in these tests; nothing should come close.
const waitFor = 5 * time.Second

// quiet is how long a test watches for something that must not happen.
const quiet = 100 * time.Millisecond

// testVersions is what testHandler serves.
var testVersions = map[int16][2]int16{
	0:  {3, 9},  // Produce
	3:  {0, 12}, // Metadata
	18: {0, 3},  // ApiVersions
}

// testHandler answers ApiVersions, Metadata (zero brokers) and Produce
// (NoResponse for acks=0). fn, if set, can take over a request by returning
// a non-nil Pending.
type testHandler struct {
	fn func(ctx context.Context, req *Request) Pending

	mu   sync.Mutex
	seen []*Request
}

func (h *testHandler) Versions(key int16) (int16, int16, bool) {
	v, ok := testVersions[key]
	return v[0], v[1], ok
}

func (h *testHandler) Handle(ctx context.Context, req *Request) Pending {
	h.mu.Lock()
	h.seen = append(h.seen, req)
	h.mu.Unlock()
	if h.fn != nil {
		if p := h.fn(ctx, req); p != nil {
			return p
		}
	}
	return Done(defaultResponse(req))
}

func (h *testHandler) requests() []*Request {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]*Request(nil), h.seen...)
}

// waitHandled waits until the handler has seen n requests.
func (h *testHandler) waitHandled(t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for len(h.requests()) < n {
		if time.Now().After(deadline) {
			t.Fatalf("handler saw %d requests, want %d", len(h.requests()), n)
		}
		time.Sleep(time.Millisecond)
	}
}

func defaultResponse(req *Request) Response {
	switch req.Key {
	case 18:
		resp := kmsg.NewPtrApiVersionsResponse()
		if req.UnsupportedVersion {
			resp.ErrorCode = 35 // UNSUPPORTED_VERSION
			k := kmsg.NewApiVersionsResponseApiKey()
			k.ApiKey, k.MinVersion, k.MaxVersion = 18, testVersions[18][0], testVersions[18][1]
			resp.ApiKeys = append(resp.ApiKeys, k)
			return Response{Msg: resp}
		}
		for _, key := range []int16{0, 3, 18} {
			k := kmsg.NewApiVersionsResponseApiKey()
			k.ApiKey, k.MinVersion, k.MaxVersion = key, testVersions[key][0], testVersions[key][1]
			resp.ApiKeys = append(resp.ApiKeys, k)
		}
		return Response{Msg: resp}
	case 3:
		resp := kmsg.NewPtrMetadataResponse()
		resp.ClusterID = kmsg.StringPtr("sluice-test")
		return Response{Msg: resp}
	case 0:
		if req.Body.(*kmsg.ProduceRequest).Acks == 0 {
			return Response{NoResponse: true}
		}
		return Response{Msg: kmsg.NewPtrProduceResponse()}
	}
	panic("testHandler: unexpected key")
}

// metadataHandler serves Metadata with its function and the other test
// keys as testHandler does.
type metadataHandler func(ctx context.Context, req *Request) Pending

func (metadataHandler) Versions(key int16) (int16, int16, bool) {
	v, ok := testVersions[key]
	return v[0], v[1], ok
}

func (f metadataHandler) Handle(ctx context.Context, req *Request) Pending {
	if req.Key != 3 {
		return Done(defaultResponse(req))
	}
	return f(ctx, req)
}

// gate is a Pending that completes when opened.
type gate struct {
	ch   chan struct{}
	resp Response
}

func newGate(resp Response) *gate { return &gate{ch: make(chan struct{}), resp: resp} }

func (g *gate) open() { close(g.ch) }

func (g *gate) Wait(ctx context.Context) Response {
	select {
	case <-g.ch:
		return g.resp
	case <-ctx.Done():
		return g.resp
	}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// startServer starts a server on a loopback port, shut down at cleanup.
func startServer(t *testing.T, h Handler, mod func(*Options)) *Server {
	t.Helper()
	opts := Options{Addr: "127.0.0.1:0", Logger: testLogger(t)}
	if mod != nil {
		mod(&opts)
	}
	s, err := New(opts, h)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), waitFor)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	})
	return s
}

// rawClient speaks the protocol over a plain socket, to check bytes.
type rawClient struct {
	t  *testing.T
	nc net.Conn
	f  *kmsg.RequestFormatter
}

func dial(t *testing.T, s *Server) *rawClient {
	t.Helper()
	nc, err := net.DialTimeout("tcp", s.Addr().String(), waitFor)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	return &rawClient{t: t, nc: nc, f: kmsg.NewRequestFormatter(kmsg.FormatterClientID("raw"))}
}

func encodeRequest(f *kmsg.RequestFormatter, req kmsg.Request, corr int32) []byte {
	return f.AppendRequest(nil, req, corr)
}

func (c *rawClient) write(b []byte) {
	c.t.Helper()
	_ = c.nc.SetWriteDeadline(time.Now().Add(waitFor))
	if _, err := c.nc.Write(b); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

func (c *rawClient) send(req kmsg.Request, corr int32) {
	c.t.Helper()
	c.write(encodeRequest(c.f, req, corr))
}

// readFrame reads one response frame, without its size prefix.
func (c *rawClient) readFrame(timeout time.Duration) ([]byte, error) {
	_ = c.nc.SetReadDeadline(time.Now().Add(timeout))
	var prefix [4]byte
	if _, err := io.ReadFull(c.nc, prefix[:]); err != nil {
		return nil, err
	}
	frame := make([]byte, binary.BigEndian.Uint32(prefix[:]))
	if _, err := io.ReadFull(c.nc, frame); err != nil {
		return nil, err
	}
	return frame, nil
}

func (c *rawClient) mustFrame() []byte {
	c.t.Helper()
	frame, err := c.readFrame(waitFor)
	if err != nil {
		c.t.Fatalf("reading response: %v", err)
	}
	return frame
}

// recv reads one response into resp, whose version must be set, and
// returns its correlation id. It checks the header version and that the
// body is exactly what resp re-encodes to.
func (c *rawClient) recv(resp kmsg.Response, flexibleHeader bool) int32 {
	c.t.Helper()
	frame := c.mustFrame()
	if len(frame) < 4 {
		c.t.Fatalf("frame of %d bytes", len(frame))
	}
	corr := int32(binary.BigEndian.Uint32(frame))
	body := frame[4:]
	if flexibleHeader {
		if len(body) == 0 || body[0] != 0 {
			c.t.Fatalf("response header v1 without an empty tag section: % x", frame[:min(len(frame), 8)])
		}
		body = body[1:]
	}
	if err := resp.ReadFrom(body); err != nil {
		c.t.Fatalf("decoding %s v%d: %v", kmsg.NameForKey(resp.Key()), resp.GetVersion(), err)
	}
	if again := resp.AppendTo(nil); !bytes.Equal(again, body) {
		c.t.Fatalf("%s v%d: body has %d bytes, re-encodes to %d", kmsg.NameForKey(resp.Key()), resp.GetVersion(), len(body), len(again))
	}
	return corr
}

// expectClosed reads until the server closes the connection and fails if
// a whole response frame arrives first or the server never closes.
func (c *rawClient) expectClosed() {
	c.t.Helper()
	frame, err := c.readFrame(waitFor)
	if err == nil {
		c.t.Fatalf("got a %d-byte response; want the connection closed", len(frame))
	}
	if isTimeout(err) {
		c.t.Fatalf("connection still open after %v", waitFor)
	}
}

// expectNothing checks that no response arrives for a while.
func (c *rawClient) expectNothing() {
	c.t.Helper()
	_ = c.nc.SetReadDeadline(time.Now().Add(quiet))
	var b [1]byte
	n, err := c.nc.Read(b[:])
	if n > 0 || !isTimeout(err) {
		c.t.Fatalf("want nothing for %v, got %d bytes, err %v", quiet, n, err)
	}
}

// metadata is a request the test handler answers; throttle marks it.
func metadata(version int16) *kmsg.MetadataRequest {
	req := kmsg.NewPtrMetadataRequest()
	req.Version = version
	return req
}

func apiVersions(version int16) *kmsg.ApiVersionsRequest {
	req := kmsg.NewPtrApiVersionsRequest()
	req.Version = version
	req.ClientSoftwareName = "raw"
	req.ClientSoftwareVersion = "1"
	return req
}

// checkHealthy does one ApiVersions round trip on a fresh connection.
func checkHealthy(t *testing.T, s *Server) {
	t.Helper()
	c := dial(t, s)
	c.send(apiVersions(3), 4242)
	resp := kmsg.NewPtrApiVersionsResponse()
	resp.Version = 3
	if corr := c.recv(resp, false); corr != 4242 || resp.ErrorCode != 0 || len(resp.ApiKeys) != 3 {
		t.Fatalf("healthy connection: corr %d, error %d, %d keys", corr, resp.ErrorCode, len(resp.ApiKeys))
	}
	c.nc.Close()
}

// waitConnections waits for the server's open connection count.
func waitConnections(t *testing.T, s *Server, n int64) {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for s.Stats().Connections != n {
		if time.Now().After(deadline) {
			t.Fatalf("%d connections open, want %d", s.Stats().Connections, n)
		}
		time.Sleep(time.Millisecond)
	}
}

func isReset(err error) bool { return errors.Is(err, syscall.ECONNRESET) }

// mdResp is an empty Metadata response to decode a version's answer into.
func mdResp(version int16) *kmsg.MetadataResponse {
	resp := kmsg.NewPtrMetadataResponse()
	resp.Version = version
	return resp
}
