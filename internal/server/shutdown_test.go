package server

import (
	"context"
	"errors"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// Shutdown lets requests already read finish and their responses be
// written, then closes the connections.
func TestShutdownWaitsForInFlight(t *testing.T) {
	gates := make(chan *gate, 10)
	var released atomic.Int32
	h := &testHandler{fn: func(_ context.Context, req *Request) Pending {
		g := newGate(Response{Msg: kmsg.NewPtrMetadataResponse(), Release: func() { released.Add(1) }})
		gates <- g
		return g
	}}
	s, err := New(Options{Addr: "127.0.0.1:0", Logger: testLogger(t)}, h)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	c := dial(t, s)
	c.write(append(encodeRequest(c.f, metadata(1), 1), encodeRequest(c.f, metadata(1), 2)...))
	h.waitHandled(t, 2)

	done := make(chan error, 1)
	go func() { done <- s.Shutdown(context.Background()) }()
	select {
	case err := <-done:
		t.Fatalf("Shutdown returned %v with requests in flight", err)
	case <-time.After(quiet):
	}
	if nc, err := net.DialTimeout("tcp", s.Addr().String(), waitFor); err == nil {
		nc.Close()
		t.Fatal("a new connection was accepted during Shutdown")
	}
	(<-gates).open()
	(<-gates).open()
	for _, want := range []int32{1, 2} {
		if corr := c.recv(mdResp(1), false); corr != want {
			t.Fatalf("correlation id %d, want %d", corr, want)
		}
	}
	c.expectClosed()
	if err := <-done; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if released.Load() != 2 {
		t.Fatalf("Release called %d times, want 2", released.Load())
	}
	if n := len(h.requests()); n != 2 {
		t.Fatalf("handler saw %d requests", n)
	}
}

// When Shutdown's context expires, the handler's context is cancelled, the
// connections are closed, and every response is still released.
func TestShutdownContextExpires(t *testing.T) {
	var released, cancelled atomic.Int32
	h := &testHandler{fn: func(ctx context.Context, req *Request) Pending {
		return pendingFunc(func(wctx context.Context) Response {
			<-wctx.Done()
			cancelled.Add(1)
			return Response{Release: func() { released.Add(1) }}
		})
	}}
	s, err := New(Options{Addr: "127.0.0.1:0", Logger: testLogger(t)}, h)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	c := dial(t, s)
	c.send(metadata(1), 1)
	h.waitHandled(t, 1)
	ctx, cancel := context.WithTimeout(context.Background(), quiet)
	defer cancel()
	if err := s.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown: %v", err)
	}
	c.expectClosed()
	if cancelled.Load() != 1 || released.Load() != 1 {
		t.Fatalf("cancelled %d, released %d", cancelled.Load(), released.Load())
	}
}

// Shutdown stops a reader that is blocked on the in-flight limit and one
// in the middle of a frame.
func TestShutdownStopsReaders(t *testing.T) {
	gates := make(chan *gate, 10)
	h := &testHandler{fn: func(_ context.Context, req *Request) Pending {
		g := newGate(Response{Msg: kmsg.NewPtrMetadataResponse()})
		gates <- g
		return g
	}}
	s, err := New(Options{Addr: "127.0.0.1:0", Logger: testLogger(t), MaxInFlightRequests: 1}, h)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	full, partial := dial(t, s), dial(t, s)
	full.write(append(encodeRequest(full.f, metadata(1), 1), encodeRequest(full.f, metadata(1), 2)...))
	frame := encodeRequest(partial.f, metadata(1), 3)
	partial.write(frame[:len(frame)-3])
	h.waitHandled(t, 1)
	waitConnections(t, s, 2)

	done := make(chan error, 1)
	go func() { done <- s.Shutdown(context.Background()) }()
	time.Sleep(quiet)
	(<-gates).open()
	if corr := full.recv(mdResp(1), false); corr != 1 {
		t.Fatalf("correlation id %d", corr)
	}
	full.expectClosed()
	partial.expectClosed()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if n := len(h.requests()); n != 1 {
		t.Fatalf("handler saw %d requests after Shutdown stopped reading", n)
	}
}

type pendingFunc func(context.Context) Response

func (f pendingFunc) Wait(ctx context.Context) Response { return f(ctx) }
