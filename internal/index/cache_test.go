package index

import (
	"fmt"
	"sync"
	"testing"
)

// sealed returns a decoded offset and time index with n entries each, the
// way a sealed segment's indexes reach the cache (capacity equals length).
func sealed(t testing.TB, base int64, n int) (*Offsets, *Times) {
	t.Helper()
	o, tm := NewOffsets(base), NewTimes(base)
	for i := range int64(n) {
		if err := o.Append(base+i, i*10); err != nil {
			t.Fatal(err)
		}
		if err := tm.Append(i, base+i); err != nil {
			t.Fatal(err)
		}
	}
	o2, err := DecodeOffsets("o", base, append([]byte(nil), o.FileBytes()...))
	if err != nil {
		t.Fatal(err)
	}
	t2, err := DecodeTimes("t", base, append([]byte(nil), tm.FileBytes()...))
	if err != nil {
		t.Fatal(err)
	}
	return o2, t2
}

func newCache(t testing.TB, maxBytes int64) *Cache {
	t.Helper()
	c, err := NewCache(CacheOptions{MaxBytes: maxBytes})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestCacheOptions(t *testing.T) {
	if _, err := NewCache(CacheOptions{MaxBytes: -1}); err == nil {
		t.Errorf("negative MaxBytes accepted")
	}
	c := newCache(t, 0)
	if c.maxBytes != DefaultCacheMaxBytes {
		t.Errorf("default MaxBytes %d", c.maxBytes)
	}
}

func TestCacheGetPutRemove(t *testing.T) {
	c := newCache(t, 1<<20)
	k := Key{Dir: "topic-0", BaseOffset: 100}
	if _, _, ok := c.Get(k); ok {
		t.Fatal("hit in an empty cache")
	}
	o, tm := sealed(t, 100, 10)
	c.Put(k, o, tm)
	go1, gt, ok := c.Get(k)
	if !ok || go1 != o || gt != tm {
		t.Fatal("Get after Put missed or returned other indexes")
	}
	if _, _, ok := c.Get(Key{Dir: "topic-1", BaseOffset: 100}); ok {
		t.Fatal("hit for another directory")
	}
	hits, misses, bytes := c.Stats()
	if want := entrySize(k, o, tm); hits != 1 || misses != 2 || bytes != want {
		t.Fatalf("Stats() = (%d, %d, %d), want (1, 2, %d)", hits, misses, bytes, want)
	}
	// Replacing an entry re-accounts it; nil indexes are allowed.
	c.Put(k, o, nil)
	if _, gt, ok := c.Get(k); !ok || gt != nil {
		t.Fatal("replacement not visible")
	}
	if _, _, bytes := c.Stats(); bytes != entrySize(k, o, nil) {
		t.Fatalf("bytes %d after replacement, want %d", bytes, entrySize(k, o, nil))
	}
	c.Remove(k)
	c.Remove(k) // removing a missing key is a no-op
	if _, _, ok := c.Get(k); ok {
		t.Fatal("hit after Remove")
	}
	if _, _, bytes := c.Stats(); bytes != 0 {
		t.Fatalf("bytes %d after Remove", bytes)
	}
}

func TestCacheByteBoundAndLRUOrder(t *testing.T) {
	o, tm := sealed(t, 0, 20)
	key := func(i int) Key { return Key{Dir: "d", BaseOffset: int64(i)} }
	size := entrySize(key(0), o, tm)
	c := newCache(t, 3*size+size/2) // room for three entries

	for i := range 3 {
		c.Put(key(i), o, tm)
	}
	// Touch 0 so that 1 is the least recently used.
	if _, _, ok := c.Get(key(0)); !ok {
		t.Fatal("entry 0 missing")
	}
	c.Put(key(3), o, tm)
	present := func(i int) bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		_, ok := c.mu.entries[key(i)]
		return ok
	}
	if present(1) || !present(0) || !present(2) || !present(3) {
		t.Fatalf("after evicting: 0:%v 1:%v 2:%v 3:%v, want 1 evicted", present(0), present(1), present(2), present(3))
	}
	c.Put(key(4), o, tm)
	if present(2) || !present(0) {
		t.Fatalf("second eviction took the wrong entry")
	}
	if _, _, bytes := c.Stats(); bytes != 3*size {
		t.Fatalf("bytes %d, want %d", bytes, 3*size)
	}

	// An entry larger than the bound is not cached and displaces nothing,
	// but it does drop a stale entry under the same key.
	big, bigT := sealed(t, 0, 1000)
	c.Put(key(99), big, bigT)
	if present(99) || !present(0) || !present(3) || !present(4) {
		t.Fatal("an oversized entry was cached or evicted others")
	}
	c.Put(key(0), big, bigT)
	if present(0) {
		t.Fatal("an oversized replacement left the stale entry")
	}
	if _, _, bytes := c.Stats(); bytes != 2*size {
		t.Fatalf("bytes %d, want %d", bytes, 2*size)
	}
}

func TestCacheConcurrent(t *testing.T) {
	o, tm := sealed(t, 0, 8)
	size := entrySize(Key{Dir: "dir-0"}, o, tm)
	c := newCache(t, 10*size) // far fewer than the keys, so eviction runs
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 2000 {
				k := Key{Dir: fmt.Sprintf("dir-%d", g), BaseOffset: int64(i % 37)}
				switch i % 3 {
				case 0:
					c.Put(k, o, tm)
				case 1:
					if go1, _, ok := c.Get(k); ok && go1 != o {
						t.Error("Get returned a foreign index")
					}
				default:
					if i%7 == 0 {
						c.Remove(k)
					}
				}
				if _, _, b := c.Stats(); b > c.maxBytes {
					t.Errorf("bytes %d over the bound %d", b, c.maxBytes)
				}
			}
		})
	}
	wg.Wait()
	// The list and the map agree.
	c.mu.Lock()
	defer c.mu.Unlock()
	n, bytes := 0, int64(0)
	for e := c.mu.head; e != nil && n <= len(c.mu.entries); e = e.next {
		n++
		bytes += e.size
	}
	if n != len(c.mu.entries) || bytes != c.mu.bytes {
		t.Fatalf("list has %d entries and %d bytes, map %d, accounted %d", n, bytes, len(c.mu.entries), c.mu.bytes)
	}
}
