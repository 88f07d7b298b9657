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

	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestBodyClass(t *testing.T) {
	for _, tc := range []struct{ n, class int }{
		{0, minBodyClass},
		{1, minBodyClass},
		{1 << minBodyClass, minBodyClass},
		{1<<minBodyClass + 1, minBodyClass + 1},
		{1 << 20, 20},
		{1<<20 + 1, 21},
		{1 << maxBodyClass, maxBodyClass},
		{1<<maxBodyClass + 1, -1},
	} {
		if got := bodyClass(tc.n); got != tc.class {
			t.Errorf("bodyClass(%d) = %d, want %d", tc.n, got, tc.class)
		}
	}
	for _, n := range []int{0, 100, 5000, 1 << 20, 1<<maxBodyClass + 1} {
		b := getBody(n)
		if len(*b) != n || cap(*b) < n {
			t.Errorf("getBody(%d): len %d cap %d", n, len(*b), cap(*b))
		}
		putBody(b)
	}
	// A buffer whose capacity is not a class's exact size is never
	// pooled, so no class can hand out one too small for it.
	odd := make([]byte, 5000)
	putBody(&odd)
	for range 100 {
		if b := getBody(8000); cap(*b) < 8000 {
			t.Fatalf("getBody(8000) has cap %d", cap(*b))
		}
	}
}

func TestReadBody(t *testing.T) {
	for _, size := range []int{0, 1, 4096, 4097, firstBodyChunkBytes, firstBodyChunkBytes + 1, 1<<20 + 3} {
		src := make([]byte, size)
		for i := range src {
			src[i] = byte(i * 7)
		}
		// Dirty a pooled buffer of the size's class, so a body that
		// was not fully overwritten would show.
		junk := getBody(size)
		for i := range *junk {
			(*junk)[i] = 0xee
		}
		putBody(junk)
		bp, err := readBody(bytes.NewReader(src), size)
		if err != nil {
			t.Fatalf("size %d: %v", size, err)
		}
		if !bytes.Equal(*bp, src) {
			t.Fatalf("size %d: body differs", size)
		}
		putBody(bp)

		// A body cut short, in its first chunk or after it.
		for _, have := range []int{size / 2, size - 1} {
			if have < 0 || have >= size {
				continue
			}
			_, err := readBody(bytes.NewReader(src[:have]), size)
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
