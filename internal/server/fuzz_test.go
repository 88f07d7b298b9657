package server

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// FuzzConn feeds arbitrary bytes to a live server as one client's stream.
// Invariants: the server never panics (a panic in any server goroutine
// kills the fuzz process), it answers or closes that connection promptly
// once the client stops sending, and a second connection opened before the
// input still gets answers afterwards.
func FuzzConn(f *testing.F) {
	fmtr := kmsg.NewRequestFormatter(kmsg.FormatterClientID("fuzz"))
	var seeds [][]byte
	for _, req := range []kmsg.Request{apiVersions(0), apiVersions(3), apiVersions(4), metadata(1), metadata(9), metadata(12)} {
		seeds = append(seeds, encodeRequest(fmtr, req, 1))
	}
	md := metadata(12)
	md.Topics = append(md.Topics, kmsg.MetadataRequestTopic{Topic: kmsg.StringPtr("orders")})
	seeds = append(seeds, encodeRequest(fmtr, md, 2))
	produce := kmsg.NewPtrProduceRequest()
	produce.Version, produce.Acks = 9, 0
	seeds = append(seeds, encodeRequest(fmtr, produce, 3))
	for _, seed := range seeds {
		f.Add(seed)
		for _, i := range []int{0, 3, 5, 9, 11, 13, len(seed) - 1} {
			if i < len(seed) {
				flipped := append([]byte(nil), seed...)
				flipped[i] ^= 0xff
				f.Add(flipped)
			}
		}
		f.Add(append(append([]byte(nil), seed...), seed...))
		f.Add(seed[:len(seed)/2])
	}
	f.Add(binary.BigEndian.AppendUint32(nil, 1<<31-1))

	s, err := New(Options{Addr: "127.0.0.1:0", MaxRequestBytes: 1 << 20}, metadataHandler(
		func(_ context.Context, req *Request) Pending { return Done(defaultResponse(req)) }))
	if err != nil {
		f.Fatal(err)
	}
	if err := s.Start(); err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), waitFor)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			f.Errorf("Shutdown: %v", err)
		}
	})
	healthy, err := net.Dial("tcp", s.Addr().String())
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { healthy.Close() })
	var corr int32

	f.Fuzz(func(t *testing.T, data []byte) {
		nc, err := net.Dial("tcp", s.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		// The server may close before reading everything; that is fine.
		_ = nc.SetDeadline(time.Now().Add(waitFor))
		_, _ = nc.Write(data)
		_ = nc.(*net.TCPConn).CloseWrite()
		if n, err := io.Copy(io.Discard, nc); isTimeout(err) {
			t.Fatalf("server neither answered and closed nor closed within %v (read %d bytes; %s; stats %+v)",
				waitFor, n, nc.LocalAddr(), s.Stats())
		} else if err != nil && !errors.Is(err, net.ErrClosed) && !isReset(err) {
			t.Fatalf("reading: %v", err)
		}

		corr++
		c := &rawClient{t: t, nc: healthy, f: fmtr}
		c.send(apiVersions(3), corr)
		resp := kmsg.NewPtrApiVersionsResponse()
		resp.Version = 3
		if got := c.recv(resp, false); got != corr || resp.ErrorCode != 0 {
			t.Fatalf("healthy connection: correlation id %d (want %d), error %d", got, corr, resp.ErrorCode)
		}
	})
}
