package index

import (
	"errors"
	"fmt"
	"sync"
)

// DefaultCacheMaxBytes is the cache bound when CacheOptions.MaxBytes is 0.
const DefaultCacheMaxBytes = 64 << 20

// cacheEntryOverheadBytes approximates the memory of one cache entry beyond
// the index bytes themselves: the entry, its map slot and the two index
// structs. It keeps a cache of many tiny indexes from exceeding its bound
// by more than a constant factor.
const cacheEntryOverheadBytes = 192

// Key names one segment's indexes: the partition directory and the
// segment's base offset.
type Key struct {
	Dir        string
	BaseOffset int64
}

// CacheOptions configures a Cache.
type CacheOptions struct {
	// MaxBytes bounds the memory of the cached indexes (their byte
	// capacity plus a small per-entry overhead). 0 means
	// DefaultCacheMaxBytes.
	MaxBytes int64
}

func (o CacheOptions) withDefaults() CacheOptions {
	if o.MaxBytes == 0 {
		o.MaxBytes = DefaultCacheMaxBytes
	}
	return o
}

// Validate reports every problem with o at once.
func (o CacheOptions) Validate() error {
	var errs []error
	if o.MaxBytes < 0 {
		errs = append(errs, fmt.Errorf("index: cache MaxBytes %d is negative", o.MaxBytes))
	}
	return errors.Join(errs...)
}

// Cache is the hot tier for the indexes of sealed segments: an LRU bounded
// by total bytes. It is safe for concurrent use.
//
// Cached indexes are shared by every caller of Get, so they must not be
// mutated after Put: only sealed segments' indexes belong here. (A mutation
// would also leave the cache's byte accounting stale.)
type Cache struct {
	maxBytes int64

	mu struct {
		sync.Mutex
		entries map[Key]*cacheEntry
		// head is the most recently used entry, tail the least.
		head, tail   *cacheEntry
		bytes        int64
		hits, misses uint64
	}
}

type cacheEntry struct {
	key        Key
	offsets    *Offsets
	times      *Times
	size       int64
	prev, next *cacheEntry
}

// NewCache returns an empty cache.
func NewCache(opts CacheOptions) (*Cache, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	opts = opts.withDefaults()
	c := &Cache{maxBytes: opts.MaxBytes}
	c.mu.entries = make(map[Key]*cacheEntry)
	return c, nil
}

func entrySize(key Key, o *Offsets, t *Times) int64 {
	n := int64(cacheEntryOverheadBytes + len(key.Dir))
	if o != nil {
		n += o.memBytes()
	}
	if t != nil {
		n += t.memBytes()
	}
	return n
}

// Get returns the indexes cached under key and marks them most recently
// used. Either index may be nil if it was Put as nil.
func (c *Cache) Get(key Key) (*Offsets, *Times, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.mu.entries[key]
	if !ok {
		c.mu.misses++
		return nil, nil, false
	}
	c.mu.hits++
	c.unlinkLocked(e)
	c.pushFrontLocked(e)
	return e.offsets, e.times, true
}

// Put caches the indexes under key, replacing what was there, and evicts
// the least recently used entries until the cache is within MaxBytes. An
// entry larger than MaxBytes is not cached (and any older entry under key
// is removed, so Get never returns stale indexes).
func (c *Cache) Put(key Key, o *Offsets, t *Times) {
	size := entrySize(key, o, t)
	c.mu.Lock()
	defer c.mu.Unlock()
	if old, ok := c.mu.entries[key]; ok {
		c.removeLocked(old)
	}
	if size > c.maxBytes {
		return
	}
	e := &cacheEntry{key: key, offsets: o, times: t, size: size}
	c.mu.entries[key] = e
	c.pushFrontLocked(e)
	c.mu.bytes += size
	for c.mu.bytes > c.maxBytes {
		c.removeLocked(c.mu.tail)
	}
}

// Remove drops the entry under key, if any, as when its segment is deleted.
func (c *Cache) Remove(key Key) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.mu.entries[key]; ok {
		c.removeLocked(e)
	}
}

// Stats returns the number of Get hits and misses so far and the bytes
// currently accounted to cached entries.
func (c *Cache) Stats() (hits, misses uint64, bytes int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.mu.hits, c.mu.misses, c.mu.bytes
}

func (c *Cache) removeLocked(e *cacheEntry) {
	c.unlinkLocked(e)
	delete(c.mu.entries, e.key)
	c.mu.bytes -= e.size
}

func (c *Cache) unlinkLocked(e *cacheEntry) {
	if e.prev != nil {
		e.prev.next = e.next
	} else {
		c.mu.head = e.next
	}
	if e.next != nil {
		e.next.prev = e.prev
	} else {
		c.mu.tail = e.prev
	}
	e.prev, e.next = nil, nil
}

func (c *Cache) pushFrontLocked(e *cacheEntry) {
	e.next = c.mu.head
	if c.mu.head != nil {
		c.mu.head.prev = e
	}
	c.mu.head = e
	if c.mu.tail == nil {
		c.mu.tail = e
	}
}
