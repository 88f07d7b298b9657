package server

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

type observed struct {
	key, version int16
	d            time.Duration
	failed       bool
	msgKey       int16 // the response's key, -1 without one
}

// recorder collects OnResponse calls.
type recorder struct {
	mu  sync.Mutex
	got []observed
}

func (r *recorder) hook(key, version int16, d time.Duration, failed bool, resp Response) {
	msgKey := int16(-1)
	if resp.Msg != nil {
		msgKey = resp.Msg.Key()
	}
	r.mu.Lock()
	r.got = append(r.got, observed{key, version, d, failed, msgKey})
	r.mu.Unlock()
}

func (r *recorder) wait(t *testing.T, n int) []observed {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for {
		r.mu.Lock()
		got := append([]observed(nil), r.got...)
		r.mu.Unlock()
		if len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("OnResponse called %d times, want %d", len(got), n)
		}
		time.Sleep(time.Millisecond)
	}
}

// OnResponse sees every request once, with its key, version and the time
// to its response, and failed only for requests that closed the
// connection.
func TestOnResponse(t *testing.T) {
	var rec recorder
	slow := newGate(Response{Msg: kmsg.NewPtrMetadataResponse()})
	h := &testHandler{fn: func(_ context.Context, req *Request) Pending {
		switch {
		case req.Key == 3 && req.CorrelationID == 2:
			return slow
		case req.Key == 3 && req.CorrelationID == 3:
			return Done{Msg: kmsg.NewPtrMetadataResponse(), Close: true}
		}
		return nil
	}}
	s := startServer(t, h, func(o *Options) { o.OnResponse = rec.hook })

	c := dial(t, s)
	c.send(apiVersions(3), 1)
	av := kmsg.NewPtrApiVersionsResponse()
	av.Version = 3
	c.recv(av, false)
	c.send(metadata(1), 2)
	h.waitHandled(t, 2)
	time.Sleep(20 * time.Millisecond)
	slow.open()
	c.recv(mdResp(1), false)
	c.send(metadata(1), 3)
	c.recv(mdResp(1), false)
	c.expectClosed()

	got := rec.wait(t, 3)
	if len(got) != 3 {
		t.Fatalf("OnResponse called %d times, want 3: %+v", len(got), got)
	}
	want := []observed{{key: 18, version: 3, msgKey: 18}, {key: 3, version: 1, msgKey: 3}, {key: 3, version: 1, failed: true, msgKey: 3}}
	for i, w := range want {
		if got[i].key != w.key || got[i].version != w.version || got[i].failed != w.failed || got[i].msgKey != w.msgKey {
			t.Errorf("call %d: %+v, want %+v", i, got[i], w)
		}
		if got[i].d < 0 || got[i].d > waitFor {
			t.Errorf("call %d: duration %v", i, got[i].d)
		}
	}
	if got[1].d < 20*time.Millisecond {
		t.Errorf("the gated request took %v, want at least 20ms", got[1].d)
	}

	// A panic in Handle is reported as failed, from the reader.
	s2 := startServer(t, metadataHandler(func(context.Context, *Request) Pending { panic("boom") }), func(o *Options) { o.OnResponse = rec.hook })
	c2 := dial(t, s2)
	c2.send(metadata(1), 1)
	c2.expectClosed()
	if got := rec.wait(t, 4); !got[3].failed || got[3].key != 3 || got[3].msgKey != -1 {
		t.Errorf("panicking Handle: %+v", got[3])
	}
}
