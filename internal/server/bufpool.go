package server

import (
	"io"
	"math/bits"
	"sync"
)

// Request bodies are read into pooled buffers. A produce request is mostly
// record bytes that the broker hands to the storage engine as they are, so
// at hundreds of MB/s a fresh, zeroed buffer per request was a tenth of the
// broker's CPU (allocation, clearing, growing by copying, and the garbage
// collections all that caused). A buffer goes back to the pool only when
// the handler says nothing refers to it any more (Response.ReuseRequest);
// otherwise the garbage collector frees it as before.
const (
	// minBodyClass and maxBodyClass bound the pooled size classes:
	// powers of two from 4 KiB to 128 MiB (above the 100 MiB default
	// MaxRequestBytes). Bodies outside them are allocated exactly.
	minBodyClass = 12
	maxBodyClass = 27
)

var bodyPools [maxBodyClass + 1]sync.Pool

// bodyClass is the smallest class whose buffers hold n bytes, or -1 when n
// is above the largest class.
func bodyClass(n int) int {
	if n <= 1<<minBodyClass {
		return minBodyClass
	}
	c := bits.Len(uint(n - 1))
	if c > maxBodyClass {
		return -1
	}
	return c
}

// getBody returns a buffer of length n. Its bytes are not cleared: the
// caller overwrites all of them before reading any.
func getBody(n int) *[]byte {
	c := bodyClass(n)
	if c < 0 {
		b := make([]byte, n)
		return &b
	}
	if p, ok := bodyPools[c].Get().(*[]byte); ok {
		*p = (*p)[:n]
		return p
	}
	b := make([]byte, n, 1<<c)
	return &b
}

// putBody returns a buffer from getBody to its pool. Only buffers with a
// class's exact capacity are kept, so a class never hands out a buffer too
// small for it.
func putBody(p *[]byte) {
	if p == nil {
		return
	}
	c := bodyClass(cap(*p))
	if c < 0 || cap(*p) != 1<<c {
		return
	}
	*p = (*p)[:0]
	bodyPools[c].Put(p)
}

// readBody reads a size-byte request body from r into a pooled buffer.
//
// Only firstBodyChunkBytes are read into a small buffer first: a client
// that sends a large size prefix and then stalls holds its in-flight bytes
// budget (acquired before this is called) but little memory. Once that
// first chunk has arrived, the rest goes into a buffer of the full size, so
// a large body is copied once (64 KiB), not once per doubling.
func readBody(r io.Reader, size int) (*[]byte, error) {
	first := min(size, firstBodyChunkBytes)
	bp := getBody(first)
	if _, err := io.ReadFull(r, *bp); err != nil {
		putBody(bp)
		return nil, unexpectedEOF(err)
	}
	if size == first {
		return bp, nil
	}
	full := getBody(size)
	copy(*full, *bp)
	putBody(bp)
	if _, err := io.ReadFull(r, (*full)[first:]); err != nil {
		putBody(full)
		return nil, unexpectedEOF(err)
	}
	return full, nil
}
