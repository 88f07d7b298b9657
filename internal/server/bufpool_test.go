package server

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestBodyClass(t *testing.T) {
	for _, tc := range []struct{ n, bytes int }{
		{0, 4 << 10},
		{1, 4 << 10},
		{4 << 10, 4 << 10},
		{4<<10 + 1, 8 << 10},
		{1 << 20, 1 << 20},
		{1<<20 + 1, 2 << 20},
		{100 << 20, 128 << 20},
		{128 << 20, 128 << 20},
		{128<<20 + 1, -1},
	} {
		c := bodyClass(tc.n)
		got := -1
		if c >= 0 {
			got = bodyClassBytes(c)
		}
		if got != tc.bytes {
			t.Errorf("bodyClass(%d) holds %d bytes, want %d", tc.n, got, tc.bytes)
		}
	}
	// Classes are numbered densely in size order and each holds what it
	// is asked for.
	prev := 0
	for c := range bodyClasses {
		n := bodyClassBytes(c)
		if n <= prev || bodyClass(n) != c || bodyClass(prev+1) != c {
			t.Fatalf("class %d (%d bytes) after %d: bodyClass(%d)=%d, bodyClass(%d)=%d",
				c, n, prev, n, bodyClass(n), prev+1, bodyClass(prev+1))
		}
		prev = n
	}
	if prev != 1<<maxBodyExp {
		t.Fatalf("largest class %d bytes, want %d", prev, 1<<maxBodyExp)
	}
}

func TestBodyPool(t *testing.T) {
	p := newBodyPool(4 << 20)
	for _, n := range []int{0, 100, 5000, 1 << 20, 1<<maxBodyExp + 1} {
		b := p.get(n)
		if len(*b) != n || cap(*b) < n {
			t.Errorf("get(%d): len %d cap %d", n, len(*b), cap(*b))
		}
		p.put(b)
	}
	// A buffer whose capacity is not a class's exact size is never
	// pooled, so no class can hand out one too small for it.
	odd := make([]byte, 5000)
	p.put(&odd)
	for range 100 {
		if b := p.get(8000); cap(*b) < 8000 {
			t.Fatalf("get(8000) has cap %d", cap(*b))
		}
	}
	if !p.drop() || p.drop() {
		t.Fatal("drop reports puts since the last drop, once")
	}

	// The pool holds at most its byte limit; what is over goes to the
	// garbage collector.
	var bufs []*[]byte
	for range 10 {
		bufs = append(bufs, p.get(1<<20))
	}
	for _, b := range bufs {
		p.put(b)
	}
	if p.mu.bytes != 4<<20 {
		t.Fatalf("pool holds %d bytes, limit %d", p.mu.bytes, 4<<20)
	}
	// A body takes a free buffer of the next class before allocating.
	if b := p.get(400 << 10); cap(*b) != 1<<20 || p.mu.bytes != 3<<20 {
		t.Fatalf("get(400 KiB): cap %d, pool holds %d", cap(*b), p.mu.bytes)
	}
	p.drop()
	if p.mu.bytes != 0 {
		t.Fatalf("pool holds %d bytes after drop", p.mu.bytes)
	}
}

func TestReadBody(t *testing.T) {
	p := newBodyPool(64 << 20)
	for _, size := range []int{0, 1, 4096, 4097, firstBodyChunkBytes, firstBodyChunkBytes + 1, 1<<20 + 3} {
		src := make([]byte, size)
		for i := range src {
			src[i] = byte(i * 7)
		}
		// Dirty a pooled buffer of the size's class, so a body that
		// was not fully overwritten would show.
		junk := p.get(size)
		for i := range *junk {
			(*junk)[i] = 0xee
		}
		p.put(junk)
		b, err := p.readBody(bytes.NewReader(src), size)
		if err != nil {
			t.Fatalf("size %d: %v", size, err)
		}
		if !bytes.Equal(*b, src) {
			t.Fatalf("size %d: body differs", size)
		}
		p.put(b)

		// A body cut short, in its first chunk or after it.
		for _, have := range []int{size / 2, size - 1} {
			if have < 0 || have >= size {
				continue
			}
			_, err := p.readBody(bytes.NewReader(src[:have]), size)
			if !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Fatalf("size %d, %d bytes sent: err %v, want ErrUnexpectedEOF", size, have, err)
			}
		}
	}
}

// produceWith returns a Produce request whose records are payload.
func produceWith(payload []byte) *kmsg.ProduceRequest {
	req := kmsg.NewPtrProduceRequest()
	req.Version = 9
	req.Acks = -1
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = "t"
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Records = payload
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	return req
}

// payloadFor is request i's records: large enough to need a pooled buffer
// past the first chunk, and different for every i.
func payloadFor(i int) []byte {
	p := make([]byte, firstBodyChunkBytes+1000*i)
	for j := range p {
		p[j] = byte(i)
	}
	binary.BigEndian.PutUint32(p, uint32(i))
	return p
}

func records(req *Request) []byte {
	return req.Body.(*kmsg.ProduceRequest).Topics[0].Partitions[0].Records
}

// Bodies are reused only when the handler says so. A handler that keeps
// its requests' bytes and does not set ReuseRequest sees them unchanged
// however many requests follow; one that sets it gets every request
// decoded intact from recycled buffers.
func TestReuseRequestOnlyWhenAsked(t *testing.T) {
	const n = 40
	for _, reuse := range []bool{false, true} {
		t.Run(fmt.Sprintf("reuse=%v", reuse), func(t *testing.T) {
			var mu sync.Mutex
			var kept [][]byte
			var bad []string
			h := &testHandler{fn: func(_ context.Context, req *Request) Pending {
				if req.Key != 0 {
					return nil
				}
				rec := records(req)
				i := int(binary.BigEndian.Uint32(rec))
				mu.Lock()
				defer mu.Unlock()
				if !bytes.Equal(rec, payloadFor(i)) {
					bad = append(bad, fmt.Sprintf("request %d decoded wrong", i))
				}
				if !reuse {
					kept = append(kept, rec)
				}
				return Done{Msg: kmsg.NewPtrProduceResponse(), ReuseRequest: reuse}
			}}
			s := startServer(t, h, nil)
			c := dial(t, s)
			// Pipelined in waves of at most the in-flight limit, so
			// later requests are read while earlier ones are held.
			for i := 0; i < n; i++ {
				c.send(produceWith(payloadFor(i)), int32(i))
				if i%8 == 7 {
					for range 8 {
						c.mustFrame()
					}
				}
			}
			// Once the connection is gone, every finish has run.
			c.nc.Close()
			waitConnections(t, s, 0)
			mu.Lock()
			defer mu.Unlock()
			for _, b := range bad {
				t.Error(b)
			}
			for _, rec := range kept {
				i := int(binary.BigEndian.Uint32(rec))
				if !bytes.Equal(rec, payloadFor(i)) {
					t.Errorf("kept request %d changed after its response", i)
				}
			}
			got := s.stats.bodiesReused.Load()
			if !reuse && got != 0 {
				t.Errorf("%d bodies reused without ReuseRequest", got)
			}
			if reuse && got != n {
				t.Errorf("%d bodies reused, want %d", got, n)
			}
		})
	}
}

// A Wait cut short by the connection's death may leave work that still
// reads the request's bytes, so its buffer is not reused even when the
// response asks for it.
func TestNoReuseAfterConnectionDies(t *testing.T) {
	waiting := make(chan struct{})
	h := &testHandler{fn: func(_ context.Context, req *Request) Pending {
		if req.Key != 0 {
			return nil
		}
		return pendingFunc(func(ctx context.Context) Response {
			close(waiting)
			<-ctx.Done()
			return Response{NoResponse: true, ReuseRequest: true}
		})
	}}
	s := startServer(t, h, nil)
	c := dial(t, s)
	c.send(produceWith(payloadFor(1)), 1)
	<-waiting
	// A negative size prefix makes the server abort the connection,
	// which cancels the context the Wait above is blocked on.
	c.write([]byte{0xff, 0xff, 0xff, 0xff})
	waitConnections(t, s, 0)
	if got := s.stats.bodiesReused.Load(); got != 0 {
		t.Fatalf("%d bodies reused after the connection died", got)
	}
}

// An idle server drops its pooled buffers, once per burst of traffic, and
// goes on serving afterwards.
func TestIdleServerDropsPool(t *testing.T) {
	h := &testHandler{fn: func(_ context.Context, req *Request) Pending {
		if req.Key != 0 {
			return nil
		}
		return Done{Msg: kmsg.NewPtrProduceResponse(), ReuseRequest: true}
	}}
	s, err := New(Options{Addr: "127.0.0.1:0", Logger: testLogger(t)}, h)
	if err != nil {
		t.Fatal(err)
	}
	s.trimEvery = 20 * time.Millisecond
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Shutdown(context.Background()); err != nil {
			t.Error(err)
		}
	})
	c := dial(t, s)
	for round := int64(1); round <= 2; round++ {
		c.send(produceWith(payloadFor(int(round))), int32(round))
		c.mustFrame()
		deadline := time.Now().Add(waitFor)
		for s.stats.poolDrops.Load() < round {
			if time.Now().After(deadline) {
				t.Fatalf("round %d: pool not dropped after %v idle", round, waitFor)
			}
			time.Sleep(time.Millisecond)
		}
	}
	// Nothing was put since: idleness alone drops nothing more.
	time.Sleep(10 * s.trimEvery)
	if got := s.stats.poolDrops.Load(); got != 2 {
		t.Fatalf("%d drops, want 2", got)
	}
	checkHealthy(t, s)
}
