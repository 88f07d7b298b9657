package segment

import (
	"bytes"
	"errors"
	"testing"

	"github.com/sluice-io/sluice/internal/batch"
	"github.com/sluice-io/sluice/internal/vfs"
)

func TestParseTempName(t *testing.T) {
	for name, want := range map[string]bool{
		"00000000000000000042.log.swap":          true,
		"00000000000000000042.index.cleaned":     true,
		"00000000000000000042.timeindex.swap":    true,
		"00000000000000000042.log":               false,
		"00000000000000000042.deleted.swap":      false,
		"0042.log.swap":                          false,
		"00000000000000000042.log.cleaned.swap":  false,
		"checkpoint.tmp":                         false,
		"00000000000000000042.timeindex.cleaned": true,
	} {
		base, _, _, ok := ParseTempName(name)
		if ok != want || (ok && base != 42) {
			t.Errorf("%s: %d %v", name, base, ok)
		}
	}
}

// TestTempLifecycle writes a compaction output next to the segment it
// replaces, commits it, checks what recovery would learn from the swap,
// installs it and reads it back through the caches.
func TestTempLifecycle(t *testing.T) {
	mem := vfs.NewMem()
	mem.MkdirAll("p")
	e := env(t, mem)
	old, err := Create(mem, "p", 0, Options{IndexIntervalBytes: 256})
	if err != nil {
		t.Fatal(err)
	}
	bs := appendN(t, old, 6)
	old.Seal()
	if err := old.Flush(e); err != nil {
		t.Fatal(err)
	}
	var seen [][]byte
	if err := old.Batches(e, func(b []byte, h batch.Header) error {
		seen = append(seen, bytes.Clone(b))
		return nil
	}); err != nil || len(seen) != 6 {
		t.Fatalf("Batches: %d, %v", len(seen), err)
	}

	out, err := CreateTemp(mem, "p", 0, Options{IndexIntervalBytes: 256})
	if err != nil {
		t.Fatal(err)
	}
	// Keep batches 0 and 5; 1..4 become one empty batch.
	h0, _ := batch.ParseHeader(bs[0])
	h5, _ := batch.ParseHeader(bs[5])
	h1, _ := batch.ParseHeader(bs[1])
	h4, _ := batch.ParseHeader(bs[4])
	empty := batch.Empty(h1.BaseOffset, int32(h4.LastOffset()-h1.BaseOffset), -1, h4.MaxTimestamp)
	he, _ := batch.ParseHeader(empty)
	for _, x := range []struct {
		b []byte
		h batch.Header
	}{{bs[0], h0}, {empty, he}, {bs[5], h5}} {
		if err := out.Append(x.b, x.h); err != nil {
			t.Fatal(err)
		}
	}
	if err := out.CommitTemp(); err != nil {
		t.Fatal(err)
	}
	if _, err := mem.Stat("p/00000000000000000000.log.swap"); err != nil {
		t.Fatal(err)
	}
	next, err := RecoverSwap(mem, "p", 0)
	if err != nil || next != old.Next() {
		t.Fatalf("RecoverSwap: %d %v, want %d", next, err, old.Next())
	}
	if j := out.PrepareFlush(); j != nil {
		t.Fatal("a committed output has nothing to flush")
	}
	// Reads work from the output's own handle before it is installed.
	r, err := out.Read(e, 0, 1<<20, out.Size())
	if err != nil || r.Last != old.Next()-1 {
		t.Fatalf("read before install: %+v %v", r, err)
	}
	r.Handle.Release()
	if err := old.Remove(e.Files); err != nil {
		t.Fatal(err)
	}
	e.Indexes.Remove(old.IndexKey())
	if err := out.InstallTemp(); err != nil {
		t.Fatal(err)
	}
	out.Settle(e)
	r, err = out.Read(e, h5.BaseOffset, 1<<20, out.Size())
	if err != nil || !bytes.Equal(readRange(t, r), bs[5]) {
		t.Fatalf("read after install: %v", err)
	}
	names, _ := mem.ReadDir("p")
	if len(names) != 4 { // .log, .index, .timeindex, .txnindex
		t.Fatalf("files %v", names)
	}

	// An abandoned output leaves nothing behind.
	tmp, err := CreateTemp(mem, "p", 100, Options{IndexIntervalBytes: 256})
	if err != nil {
		t.Fatal(err)
	}
	if err := tmp.RemoveTemp(); err != nil {
		t.Fatal(err)
	}
	if names2, _ := mem.ReadDir("p"); len(names2) != 4 {
		t.Fatalf("files after RemoveTemp %v", names2)
	}
}

func TestBatchesCorrupt(t *testing.T) {
	mem := vfs.NewMem()
	mem.MkdirAll("p")
	e := env(t, mem)
	s, _ := Create(mem, "p", 0, Options{IndexIntervalBytes: 256})
	appendN(t, s, 3)
	s.Seal()
	if err := s.Flush(e); err != nil {
		t.Fatal(err)
	}
	f, _ := mem.OpenRW(s.Path(LogSuffix))
	f.WriteAt([]byte{0xFF}, 1000) // inside the second batch
	f.Close()
	err := s.Batches(e, func([]byte, batch.Header) error { return nil })
	var ce *CorruptError
	if !errors.As(err, &ce) || ce.Offset == 0 {
		t.Fatalf("want a corruption error past the first batch, got %v", err)
	}
}
