package server

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// tempFile returns an open file holding n seeded pseudo-random bytes.
func tempFile(t *testing.T, n int) *os.File {
	t.Helper()
	f, _ := tempFileData(t, n)
	return f
}

func tempFileData(t *testing.T, n int) (*os.File, []byte) {
	t.Helper()
	data := make([]byte, n)
	r := rand.NewChaCha8([32]byte{1})
	_, _ = r.Read(data)
	path := filepath.Join(t.TempDir(), "segment.log")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f, data
}

// fileRangeHandler answers Metadata with a body of byte and file parts: the
// client id says which file range, as "offset,length".
func fileRangeHandler(t *testing.T, f *os.File, released *releases) Handler {
	return metadataHandler(func(_ context.Context, req *Request) Pending {
		var off, n int64
		if _, err := fmt.Sscanf(*req.ClientID, "%d,%d", &off, &n); err != nil {
			t.Errorf("client id %q: %v", *req.ClientID, err)
		}
		released.add()
		return Done{
			Parts: []Part{
				{Bytes: []byte("head")},
				{File: f, Offset: off, Length: n},
				{Bytes: []byte("mid")},
				{Bytes: nil},
				{File: f, Offset: off, Length: 0},
				{File: f, Offset: 0, Length: 7},
				{Bytes: []byte("tail")},
			},
			Release: released.done,
		}
	})
}

func expectedBody(data []byte, off, n int64) []byte {
	var b []byte
	b = append(b, "head"...)
	b = append(b, data[off:off+n]...)
	b = append(b, "mid"...)
	b = append(b, data[:7]...)
	return append(b, "tail"...)
}

func fileRequest(off, n int64, corr int32) []byte {
	f := kmsg.NewRequestFormatter(kmsg.FormatterClientID(fmt.Sprintf("%d,%d", off, n)))
	return encodeRequest(f, metadata(9), corr)
}

// A file range arrives byte for byte, with sendfile and without.
func TestFileParts(t *testing.T) {
	const size = 3<<20 + 123
	for _, sendfile := range []bool{true, false} {
		t.Run(fmt.Sprintf("sendfile=%v", sendfile), func(t *testing.T) {
			f, data := tempFileData(t, size)
			var released releases
			s := startServer(t, fileRangeHandler(t, f, &released), func(o *Options) { o.DisableSendfile = !sendfile })
			c := dial(t, s)
			var total int64
			for i, r := range [][2]int64{{0, size}, {1, 1}, {size - 10, 10}, {12345, 2 << 20}} {
				c.write(fileRequest(r[0], r[1], int32(i)))
				frame := c.mustFrame()
				want := binary.BigEndian.AppendUint32(nil, uint32(i))
				want = append(want, 0) // flexible response header
				want = append(want, expectedBody(data, r[0], r[1])...)
				if !bytes.Equal(frame, want) {
					t.Fatalf("range %v: %d bytes differ from the %d expected", r, len(frame), len(want))
				}
				total += r[1] + 7
			}
			released.wait(t)
			st := s.Stats()
			if sendfile && (st.BytesSendfile != total || st.BytesCopied != 0) {
				t.Fatalf("sendfile %d, copied %d, want %d sent with sendfile", st.BytesSendfile, st.BytesCopied, total)
			}
			if !sendfile && (st.BytesCopied != total || st.BytesSendfile != 0) {
				t.Fatalf("sendfile %d, copied %d, want %d copied", st.BytesSendfile, st.BytesCopied, total)
			}
		})
	}
}

// Concurrent responses reading one file at different offsets never share a
// cursor.
func TestFilePartsConcurrent(t *testing.T) {
	const size = 1 << 20
	for _, sendfile := range []bool{true, false} {
		t.Run(fmt.Sprintf("sendfile=%v", sendfile), func(t *testing.T) {
			f, data := tempFileData(t, size)
			var released releases
			s := startServer(t, fileRangeHandler(t, f, &released), func(o *Options) { o.DisableSendfile = !sendfile })
			const conns, perConn = 6, 8
			var wg sync.WaitGroup
			for ci := range conns {
				c := dial(t, s)
				wg.Go(func() {
					rng := rand.New(rand.NewPCG(uint64(ci), 7))
					var ranges [][2]int64
					var batch []byte
					for i := range perConn {
						off := rng.Int64N(size)
						n := rng.Int64N(min(size-off, 256<<10) + 1)
						ranges = append(ranges, [2]int64{off, n})
						batch = append(batch, fileRequest(off, n, int32(i))...)
					}
					if _, err := c.nc.Write(batch); err != nil {
						t.Error(err)
						return
					}
					for i, r := range ranges {
						frame, err := c.readFrame(waitFor)
						if err != nil {
							t.Error(err)
							return
						}
						want := binary.BigEndian.AppendUint32(nil, uint32(i))
						want = append(want, 0)
						want = append(want, expectedBody(data, r[0], r[1])...)
						if !bytes.Equal(frame, want) {
							t.Errorf("conn %d response %d (range %v) differs", ci, i, r)
							return
						}
					}
				})
			}
			wg.Wait()
			released.wait(t)
		})
	}
}

// A file range past the end of the file is the handler's bug: the
// connection closes before a byte of the response is written.
func TestFilePartPastEnd(t *testing.T) {
	f := tempFile(t, 100)
	var released releases
	s := startServer(t, fileRangeHandler(t, f, &released), nil)
	for _, r := range [][2]int64{{50, 51}, {101, 0}, {-1, 2}, {0, -1}} {
		c := dial(t, s)
		c.write(fileRequest(r[0], r[1], 1))
		c.expectClosed()
	}
	released.wait(t)
	checkHealthy(t, s)
	if out := s.Stats().BytesOut; out > 100 {
		t.Fatalf("wrote %d bytes for responses that should have been refused", out)
	}
}

// releases counts responses handed out and not yet released. A WaitGroup
// would do, but its Add runs on a connection goroutine that the test knows
// has run only through the network, which the race detector does not see
// as ordering, so it reports Add racing with Wait.
type releases struct{ n atomic.Int64 }

func (r *releases) add()  { r.n.Add(1) }
func (r *releases) done() { r.n.Add(-1) }

func (r *releases) wait(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for r.n.Load() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d responses not released after %v", r.n.Load(), waitFor)
		}
		time.Sleep(time.Millisecond)
	}
}
