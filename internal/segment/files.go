package segment

import (
	"container/list"
	"sync"
	"sync/atomic"

	"github.com/sluice-io/sluice/internal/vfs"
)

// Handle is a reference-counted open file. Readers hold a reference for as
// long as they use the file (a fetch response being sent with sendfile), so
// the descriptor cache can evict a handle without closing it under them.
type Handle struct {
	f       vfs.File
	refs    atomic.Int64 // one for the owner (cache or segment) plus one per reader
	closeMu sync.Once
}

func newHandle(f vfs.File) *Handle {
	h := &Handle{f: f}
	h.refs.Store(1)
	return h
}

// File returns the open file. Valid until the last Release.
func (h *Handle) File() vfs.File { return h.f }

// acquire adds a reference if the handle is still alive.
func (h *Handle) acquire() bool {
	for {
		n := h.refs.Load()
		if n <= 0 {
			return false
		}
		if h.refs.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

// Release drops a reference; the file closes with the last one.
func (h *Handle) Release() {
	if h.refs.Add(-1) == 0 {
		h.closeMu.Do(func() { _ = h.f.Close() })
	}
}

// FileCache bounds the descriptors held open for sealed segments' log
// files: an LRU of read-only handles. Active segments hold their own
// read-write handle outside the cache. Safe for concurrent use.
type FileCache struct {
	fs  vfs.FS
	max int

	mu struct {
		sync.Mutex
		lru   *list.List // of *cacheEntry, front = most recent
		byKey map[string]*list.Element
	}
	opens, hits atomic.Uint64
}

type cacheEntry struct {
	path string
	h    *Handle
}

// NewFileCache returns a cache holding at most maxOpen descriptors.
func NewFileCache(fs vfs.FS, maxOpen int) *FileCache {
	if maxOpen < 1 {
		maxOpen = 1
	}
	c := &FileCache{fs: fs, max: maxOpen}
	c.mu.lru = list.New()
	c.mu.byKey = make(map[string]*list.Element)
	return c
}

// Acquire returns a referenced handle for path, opening it if needed. The
// caller must Release it.
func (c *FileCache) Acquire(path string) (*Handle, error) {
	c.mu.Lock()
	if e, ok := c.mu.byKey[path]; ok {
		ce := e.Value.(*cacheEntry)
		if ce.h.acquire() {
			c.mu.lru.MoveToFront(e)
			c.mu.Unlock()
			c.hits.Add(1)
			return ce.h, nil
		}
		c.removeLocked(e)
	}
	c.mu.Unlock()

	// Open outside the lock: a slow open must not stall every reader.
	f, err := c.fs.Open(path)
	if err != nil {
		return nil, err
	}
	c.opens.Add(1)
	h := newHandle(f)
	h.acquire() // the caller's reference

	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.mu.byKey[path]; ok {
		// Someone else opened it meanwhile; keep theirs cached, ours is
		// private to this caller and closes on its Release.
		_ = e
		h.refs.Add(-1) // drop the cache's reference we will not store
		return h, nil
	}
	c.mu.byKey[path] = c.mu.lru.PushFront(&cacheEntry{path: path, h: h})
	for c.mu.lru.Len() > c.max {
		c.removeLocked(c.mu.lru.Back())
	}
	return h, nil
}

// Evict drops path from the cache (the segment was deleted or truncated).
// Readers holding references keep a working handle.
func (c *FileCache) Evict(path string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.mu.byKey[path]; ok {
		c.removeLocked(e)
	}
}

func (c *FileCache) removeLocked(e *list.Element) {
	ce := e.Value.(*cacheEntry)
	c.mu.lru.Remove(e)
	delete(c.mu.byKey, ce.path)
	ce.h.Release()
}

// Len returns the number of open cached descriptors.
func (c *FileCache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.mu.lru.Len()
}

// Stats returns how many opens and cache hits there were.
func (c *FileCache) Stats() (opens, hits uint64) { return c.opens.Load(), c.hits.Load() }

// Close releases every cached handle.
func (c *FileCache) Close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for c.mu.lru.Len() > 0 {
		c.removeLocked(c.mu.lru.Back())
	}
}
