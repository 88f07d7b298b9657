package server

import (
	"context"
	"encoding/binary"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// A real client negotiates versions (answering its too-new ApiVersions with
// a v0 UNSUPPORTED_VERSION response first) and gets answers.
func TestFranzGoClient(t *testing.T) {
	h := &testHandler{}
	s := startServer(t, h, nil)
	cl, err := kgo.NewClient(kgo.SeedBrokers(s.Addr().String()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()

	av, err := kmsg.NewPtrApiVersionsRequest().RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	if av.ErrorCode != 0 || len(av.ApiKeys) != 3 {
		t.Fatalf("ApiVersions: error %d, keys %v", av.ErrorCode, av.ApiKeys)
	}
	md, err := kmsg.NewPtrMetadataRequest().RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	if md.ClusterID == nil || *md.ClusterID != "sluice-test" {
		t.Fatalf("Metadata: cluster id %v", md.ClusterID)
	}

	var downgraded, flexible bool
	for _, req := range h.requests() {
		if req.Key == 18 && req.UnsupportedVersion {
			downgraded = true
		}
		if req.Body != nil && req.Body.IsFlexible() {
			flexible = true
		}
	}
	if !downgraded {
		t.Error("the client never sent an ApiVersions version above 3; the downgrade path went untested")
	}
	if !flexible {
		t.Error("no flexible request was exercised")
	}
}

// Request header v1 and v2, response header v0 and v1, and ApiVersions'
// exception, byte for byte.
func TestHeaders(t *testing.T) {
	h := &testHandler{}
	s := startServer(t, h, nil)
	c := dial(t, s)

	for i, tc := range []struct {
		req      kmsg.Request
		resp     kmsg.Response
		flexible bool // response header v1
	}{
		{apiVersions(0), kmsg.NewPtrApiVersionsResponse(), false},
		{apiVersions(3), kmsg.NewPtrApiVersionsResponse(), false}, // flexible, yet header v0
		{metadata(1), kmsg.NewPtrMetadataResponse(), false},
		{metadata(8), kmsg.NewPtrMetadataResponse(), false},
		{metadata(9), kmsg.NewPtrMetadataResponse(), true},
		{metadata(12), kmsg.NewPtrMetadataResponse(), true},
	} {
		corr := int32(1000 + i)
		c.send(tc.req, corr)
		tc.resp.SetVersion(tc.req.GetVersion())
		if got := c.recv(tc.resp, tc.flexible); got != corr {
			t.Fatalf("%s v%d: correlation id %d, want %d", kmsg.NameForKey(tc.req.Key()), tc.req.GetVersion(), got, corr)
		}
	}

	// Client ids: a string, and null.
	nullClient := &rawClient{t: t, nc: c.nc, f: kmsg.NewRequestFormatter()}
	nullClient.send(metadata(9), 7)
	nullClient.recv(mdResp(9), true)
	reqs := h.requests()
	if id := reqs[0].ClientID; id == nil || *id != "raw" {
		t.Errorf("client id %v, want raw", id)
	}
	if id := reqs[len(reqs)-1].ClientID; id != nil {
		t.Errorf("client id %q, want null", *id)
	}
	for _, req := range reqs {
		if req.Conn == nil || req.Conn.ID != reqs[0].Conn.ID || !req.Conn.Plaintext {
			t.Errorf("request conn info %+v", req.Conn)
		}
		if want := len(encodeRequest(kmsg.NewRequestFormatter(kmsg.FormatterClientID("raw")), req.Body, 0)); req.ClientID != nil && req.Size != want {
			t.Errorf("%s v%d: Size %d, want %d", kmsg.NameForKey(req.Key), req.Version, req.Size, want)
		}
	}
}

// ApiVersions at a version the handler does not serve reaches the handler
// without a body and is answered at v0, even above what kmsg knows and
// with a body in an unknown format.
func TestApiVersionsUnsupported(t *testing.T) {
	h := &testHandler{}
	s := startServer(t, h, nil)
	c := dial(t, s)

	c.send(apiVersions(4), 77)
	// Version 99 with a garbage body, as a future client might send.
	frame := binary.BigEndian.AppendUint32(nil, 0)
	frame = binary.BigEndian.AppendUint16(frame, 18)
	frame = binary.BigEndian.AppendUint16(frame, 99)
	frame = binary.BigEndian.AppendUint32(frame, 78)
	frame = append(frame, 0xff, 0xff, 0x80, 0x81, 0x82)
	binary.BigEndian.PutUint32(frame, uint32(len(frame)-4))
	c.write(frame)

	for _, corr := range []int32{77, 78} {
		resp := kmsg.NewPtrApiVersionsResponse()
		resp.Version = 0
		if got := c.recv(resp, false); got != corr {
			t.Fatalf("correlation id %d, want %d", got, corr)
		}
		if resp.ErrorCode != 35 || len(resp.ApiKeys) != 1 || resp.ApiKeys[0].MaxVersion != 3 {
			t.Fatalf("response %+v, want UNSUPPORTED_VERSION with ApiVersions 0-3", resp)
		}
	}
	for _, req := range h.requests() {
		if !req.UnsupportedVersion || req.Body != nil {
			t.Errorf("request v%d: UnsupportedVersion %v, Body %v", req.Version, req.UnsupportedVersion, req.Body)
		}
	}
	// The connection stays usable.
	c.send(apiVersions(3), 79)
	resp := kmsg.NewPtrApiVersionsResponse()
	resp.Version = 3
	if c.recv(resp, false) != 79 || resp.ErrorCode != 0 {
		t.Fatalf("after downgrade: %+v", resp)
	}
}

// Responses come back in request order even when later ones are ready
// first, and Handle is called in request order.
func TestPipelinedOrder(t *testing.T) {
	gates := make(chan *gate, 10)
	h := &testHandler{fn: func(_ context.Context, req *Request) Pending {
		resp := kmsg.NewPtrMetadataResponse()
		resp.ThrottleMillis = req.CorrelationID
		g := newGate(Response{Msg: resp})
		gates <- g
		return g
	}}
	s := startServer(t, h, nil)
	c := dial(t, s)

	const n = 5
	var batch []byte
	for i := range n {
		batch = append(batch, encodeRequest(c.f, metadata(9), int32(i+1))...)
	}
	c.write(batch) // all in one write: the server must split frames
	h.waitHandled(t, n)
	var gs []*gate
	for range n {
		gs = append(gs, <-gates)
	}
	for i := n - 1; i >= 1; i-- {
		gs[i].open()
	}
	c.expectNothing()
	gs[0].open()
	for i := range n {
		resp := kmsg.NewPtrMetadataResponse()
		resp.Version = 9
		corr := c.recv(resp, true)
		if corr != int32(i+1) || resp.ThrottleMillis != corr {
			t.Fatalf("response %d: correlation id %d, throttle %d", i, corr, resp.ThrottleMillis)
		}
	}
	for i, req := range h.requests() {
		if req.CorrelationID != int32(i+1) {
			t.Fatalf("Handle call %d had correlation id %d", i, req.CorrelationID)
		}
	}
}

// An acks=0 produce gets no response, but the response after it still
// waits for it.
func TestNoResponse(t *testing.T) {
	var released atomic.Int32
	produceGate := newGate(Response{NoResponse: true, Release: func() { released.Add(1) }})
	h := &testHandler{fn: func(_ context.Context, req *Request) Pending {
		if req.Key == 0 && req.CorrelationID == 1 {
			return produceGate
		}
		return nil
	}}
	s := startServer(t, h, nil)
	c := dial(t, s)

	produce := kmsg.NewPtrProduceRequest()
	produce.Version = 7
	produce.Acks = 0
	var batch []byte
	batch = append(batch, encodeRequest(c.f, produce, 1)...)
	batch = append(batch, encodeRequest(c.f, metadata(1), 2)...)
	batch = append(batch, encodeRequest(c.f, produce, 3)...)
	batch = append(batch, encodeRequest(c.f, metadata(1), 4)...)
	c.write(batch)
	h.waitHandled(t, 4)
	c.expectNothing()
	produceGate.open()
	for _, want := range []int32{2, 4} {
		resp := kmsg.NewPtrMetadataResponse()
		resp.Version = 1
		if corr := c.recv(resp, false); corr != want {
			t.Fatalf("correlation id %d, want %d", corr, want)
		}
	}
	if released.Load() != 1 {
		t.Fatalf("Release called %d times", released.Load())
	}
}

// Protocol violations close that connection only; others keep working.
func TestBadRequestsClose(t *testing.T) {
	header := func(key, version int16, corr int32, rest ...byte) []byte {
		b := binary.BigEndian.AppendUint32(nil, 0)
		b = binary.BigEndian.AppendUint16(b, uint16(key))
		b = binary.BigEndian.AppendUint16(b, uint16(version))
		b = binary.BigEndian.AppendUint32(b, uint32(corr))
		b = append(b, rest...)
		binary.BigEndian.PutUint32(b, uint32(len(b)-4))
		return b
	}
	f := kmsg.NewRequestFormatter(kmsg.FormatterClientID("raw"))
	truncated := encodeRequest(f, metadata(1), 1)
	truncated = truncated[:len(truncated)-2]
	binary.BigEndian.PutUint32(truncated, uint32(len(truncated)-4))
	fetch := kmsg.NewPtrFetchRequest()
	fetch.Version = 4

	for _, tc := range []struct {
		name  string
		frame []byte
	}{
		{"unknown key", header(999, 0, 1, 0, 0)},
		{"negative key", header(-1, 0, 1, 0, 0)},
		{"key the handler does not serve", encodeRequest(f, fetch, 1)},
		{"version above the handler's", encodeRequest(f, metadata(13), 1)},
		{"version above kmsg's", header(3, 200, 1, 0, 0)},
		{"negative version", header(3, -1, 1, 0, 0)},
		{"version below the handler's", func() []byte { p := kmsg.NewPtrProduceRequest(); p.Version = 2; return encodeRequest(f, p, 1) }()},
		{"truncated body", truncated},
		{"short header", header(3, 1, 1)[:8]},
		{"empty frame", []byte{0, 0, 0, 0}},
		{"client id past the frame", header(3, 1, 1, 0x7f, 0xff, 'a')},
		// kmsg.SkipTags would loop 2^32 times on this header.
		{"forged header tag count", header(18, 3, 1, 0, 1, 'x', 0xff, 0xff, 0xff, 0xff, 0x0f)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := &testHandler{}
			s := startServer(t, h, nil)
			c := dial(t, s)
			c.send(metadata(1), 0) // a good request first is still answered
			c.recv(mdResp(1), false)
			if tc.name == "short header" {
				binary.BigEndian.PutUint32(tc.frame, 4)
			}
			c.write(tc.frame)
			c.expectClosed()
			checkHealthy(t, s)
			if n := len(h.requests()); n != 2 {
				t.Fatalf("handler saw %d requests, want 2", n)
			}
		})
	}
}

// A panic in Handle, Wait or Release, or a malformed response, closes that
// connection only.
func TestHandlerFailures(t *testing.T) {
	for _, tc := range []struct {
		name string
		p    func() Pending
	}{
		{"panic in Handle", func() Pending { panic("boom") }},
		{"panic in Wait", func() Pending { return panicPending{} }},
		{"panic in Release", func() Pending { return Done{Msg: kmsg.NewPtrMetadataResponse(), Release: func() { panic("boom") }} }},
		{"nil Pending", func() Pending { return nil }},
		{"empty response", func() Pending { return Done{} }},
		{"Msg and Parts", func() Pending { return Done{Msg: kmsg.NewPtrMetadataResponse(), Parts: []Part{}} }},
		{"NoResponse with a body", func() Pending { return Done{Msg: kmsg.NewPtrMetadataResponse(), NoResponse: true} }},
		{"wrong key", func() Pending { return Done{Msg: kmsg.NewPtrFetchResponse()} }},
		{"Close", func() Pending { return Done{Msg: kmsg.NewPtrMetadataResponse(), Close: true} }},
		{"bytes and file in one part", func() Pending { return Done{Parts: []Part{{Bytes: []byte{1}, File: tempFile(t, 10)}}} }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := startServer(t, metadataHandler(func(context.Context, *Request) Pending { return tc.p() }), nil)
			c := dial(t, s)
			c.send(metadata(1), 1)
			if tc.name == "panic in Release" || tc.name == "Close" {
				// The response is written before the close.
				c.recv(mdResp(1), false)
			}
			c.expectClosed()
			checkHealthy(t, s)
		})
	}
}

type panicPending struct{}

func (panicPending) Wait(context.Context) Response { panic("boom") }

func TestOptionsValidate(t *testing.T) {
	var o Options
	if err := o.Validate(); err != nil {
		t.Fatalf("zero options: %v", err)
	}
	o = Options{
		Addr:                "no-port",
		MaxRequestBytes:     -1,
		MaxInFlightRequests: -1,
		MaxInFlightBytes:    -1,
		MaxConnections:      -1,
		IdleTimeout:         -time.Second,
		WriteTimeout:        -time.Second,
	}
	err := o.Validate()
	for _, want := range []string{"Addr", "MaxRequestBytes", "MaxInFlightRequests", "MaxInFlightBytes", "MaxConnections", "IdleTimeout", "WriteTimeout"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate did not report %s: %v", want, err)
		}
	}
	o = Options{MaxRequestBytes: 10 << 20, MaxInFlightBytes: 1 << 20}
	if err := o.Validate(); err == nil || !strings.Contains(err.Error(), "below MaxRequestBytes") {
		t.Errorf("Validate: %v", err)
	}
	// Raising MaxRequestBytes alone raises the default budget with it.
	o = Options{MaxRequestBytes: 300 << 20}
	if err := o.Validate(); err != nil {
		t.Errorf("Validate: %v", err)
	}
	if _, err := New(Options{MaxConnections: -1}, &testHandler{}); err == nil {
		t.Error("New accepted invalid options")
	}
}

func TestServeAfterShutdown(t *testing.T) {
	s, err := New(Options{Addr: "127.0.0.1:0"}, &testHandler{})
	if err != nil {
		t.Fatal(err)
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- s.Serve() }()
	c := dial(t, s)
	c.send(metadata(1), 1)
	c.recv(mdResp(1), false)
	if err := s.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := <-serveErr; err != nil {
		t.Fatalf("Serve: %v", err)
	}
	if err := s.Serve(); !errors.Is(err, ErrClosed) {
		t.Fatalf("Serve after Shutdown: %v", err)
	}
	if err := s.Shutdown(context.Background()); err != nil {
		t.Fatalf("second Shutdown: %v", err)
	}
}
