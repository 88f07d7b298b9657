package server

import (
	"io"
	"math/bits"
	"runtime/debug"
	"sync"
	"time"
)

// Request bodies are read into pooled buffers. A produce request is mostly
// record bytes that the broker hands to the storage engine as they are, so
// at hundreds of MB/s a fresh, zeroed buffer per request was a tenth of the
// broker's CPU (allocation, clearing, growing by copying, and the garbage
// collections all that caused). A buffer goes back to the pool only when
// the handler says nothing refers to it any more (Response.ReuseRequest);
// otherwise the garbage collector frees it as before.
//
// Size classes are powers of two from 4 KiB to 128 MiB, above the 100 MiB
// default MaxRequestBytes; larger bodies are allocated exactly and never
// pooled. Finer classes waste less of each buffer but share buffers less:
// with the varied request sizes of a 10,000-partition produce they held
// nearly twice the memory. When a body's class has no free buffer, one of
// the next class is taken before allocating, for the same reason.
//
// A pool holds what the busiest moment needed, at most MaxInFlightBytes
// (more could never be in use at once), so a server that has read no
// request for bodyPoolIdle drops its pool and returns the memory to the
// OS (see trimLoop): an idle broker's memory does not depend on its last
// burst of traffic.
const (
	minBodyExp  = 12
	maxBodyExp  = 27
	bodyClasses = maxBodyExp - minBodyExp + 1

	// bodyPoolIdle is how long a server reads no request before it
	// drops its pooled buffers.
	bodyPoolIdle = 10 * time.Second
)

// bodyClass is the class of the smallest pooled buffer that holds n bytes,
// or -1 when n is above the largest class.
func bodyClass(n int) int {
	if n <= 1<<minBodyExp {
		return 0
	}
	e := bits.Len(uint(n - 1))
	if e > maxBodyExp {
		return -1
	}
	return e - minBodyExp
}

// bodyClassBytes is the capacity of class c's buffers.
func bodyClassBytes(c int) int { return 1 << (c + minBodyExp) }

// bodyPool is a server's pool of request-body buffers: a free list per
// class under one mutex (a few operations per request). It is not a
// sync.Pool because dropping one of those frees nothing until two garbage
// collections later, and an idle server must be able to give its buffers
// back at once. It is safe for concurrent use.
type bodyPool struct {
	maxBytes int64 // most bytes of free buffers held

	mu struct {
		sync.Mutex
		free  [bodyClasses][]*[]byte
		bytes int64 // capacity of the free buffers
		puts  int64 // buffers put since the last drop
	}
}

func newBodyPool(maxBytes int64) *bodyPool { return &bodyPool{maxBytes: maxBytes} }

// get returns a buffer of length n. Its bytes are not cleared: the caller
// overwrites all of them before reading any.
func (p *bodyPool) get(n int) *[]byte {
	c := bodyClass(n)
	if c < 0 {
		b := make([]byte, n)
		return &b
	}
	p.mu.Lock()
	for k := c; k <= min(c+1, bodyClasses-1); k++ {
		if free := p.mu.free[k]; len(free) > 0 {
			b := free[len(free)-1]
			free[len(free)-1] = nil
			p.mu.free[k] = free[:len(free)-1]
			p.mu.bytes -= int64(cap(*b))
			p.mu.Unlock()
			*b = (*b)[:n]
			return b
		}
	}
	p.mu.Unlock()
	b := make([]byte, n, bodyClassBytes(c))
	return &b
}

// put returns a buffer from get to the pool. Only buffers with a class's
// exact capacity are kept, so a class never hands out one too small, and
// only while the pool holds less than maxBytes.
func (p *bodyPool) put(b *[]byte) {
	if b == nil {
		return
	}
	c := bodyClass(cap(*b))
	if c < 0 || cap(*b) != bodyClassBytes(c) {
		return
	}
	*b = (*b)[:0]
	p.mu.Lock()
	defer p.mu.Unlock()
	p.mu.puts++
	if p.mu.bytes+int64(cap(*b)) > p.maxBytes {
		return
	}
	p.mu.free[c] = append(p.mu.free[c], b)
	p.mu.bytes += int64(cap(*b))
}

// drop forgets every pooled buffer and reports whether any had been put
// since the last drop.
func (p *bodyPool) drop() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	used := p.mu.puts > 0
	p.mu.free = [bodyClasses][]*[]byte{}
	p.mu.bytes, p.mu.puts = 0, 0
	return used
}

// readBody reads a size-byte request body from r into a pooled buffer.
//
// Only firstBodyChunkBytes are read into a small buffer first: a client
// that sends a large size prefix and then stalls holds its in-flight bytes
// budget (acquired before this is called) but little memory. Once that
// first chunk has arrived, the rest goes into a buffer of the full size, so
// a large body is copied once (64 KiB), not once per doubling.
func (p *bodyPool) readBody(r io.Reader, size int) (*[]byte, error) {
	first := min(size, firstBodyChunkBytes)
	b := p.get(first)
	if _, err := io.ReadFull(r, *b); err != nil {
		p.put(b)
		return nil, unexpectedEOF(err)
	}
	if size == first {
		return b, nil
	}
	full := p.get(size)
	copy(*full, *b)
	p.put(b)
	if _, err := io.ReadFull(r, (*full)[first:]); err != nil {
		p.put(full)
		return nil, unexpectedEOF(err)
	}
	return full, nil
}

// trimLoop drops the body pool once the server has read no request for
// bodyPoolIdle, and then asks the runtime to return free memory to the
// OS at once: that is a forced garbage collection, cheap in a process
// with nothing to do, and it is done only after the pool was used. It
// runs until Shutdown starts.
func (s *Server) trimLoop(every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	last := s.stats.requests.Load()
	for {
		select {
		case <-s.draining:
			return
		case <-t.C:
		}
		now := s.stats.requests.Load()
		if now == last && s.bodies.drop() {
			debug.FreeOSMemory()
			s.stats.poolDrops.Add(1)
		}
		last = now
	}
}
