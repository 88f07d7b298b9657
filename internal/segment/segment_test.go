package segment

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"testing"

	"github.com/sluice-io/sluice/internal/batch"
	"github.com/sluice-io/sluice/internal/index"
	"github.com/sluice-io/sluice/internal/vfs"
)

func env(t *testing.T, fs vfs.FS) *Env {
	c, err := index.NewCache(index.CacheOptions{MaxBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	return &Env{Files: NewFileCache(fs, 4), Indexes: c}
}

func mk(t *testing.T, base int64, n int) []byte {
	recs := make([]batch.Record, n)
	for i := range recs {
		recs[i] = batch.Record{Value: bytes.Repeat([]byte{byte(base + int64(i))}, 200)}
	}
	b, err := batch.Build(batch.CodecNone, 1000+base, recs, batch.BuildOptions{})
	if err != nil {
		t.Fatal(err)
	}
	batch.SetBaseOffset(b, base)
	return b
}

// appendN appends batches of 3 records until the segment holds count batches
// and returns their bytes.
func appendN(t *testing.T, s *Segment, count int) [][]byte {
	var out [][]byte
	for i := 0; i < count; i++ {
		b := mk(t, s.Next(), 3)
		h, _ := batch.ParseHeader(b)
		if err := s.Append(b, h); err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

func readRange(t *testing.T, r Range) []byte {
	buf := make([]byte, r.Len)
	if _, err := r.Handle.File().ReadAt(buf, r.Pos); err != nil && err != io.EOF {
		t.Fatal(err)
	}
	r.Handle.Release()
	return buf
}

func TestNames(t *testing.T) {
	if n := Name(42); n != "00000000000000000042" {
		t.Fatal(n)
	}
	for _, tc := range []struct {
		name string
		base int64
		suf  string
		ok   bool
	}{{"00000000000000000042.log", 42, ".log", true}, {"00000000000000000042.timeindex", 42, ".timeindex", true},
		{"42.log", 0, "", false}, {"0000000000000000004x.log", 0, "", false}, {"partition.metadata", 0, "", false}} {
		base, suf, ok := ParseName(tc.name)
		if ok != tc.ok || (ok && (base != tc.base || suf != tc.suf)) {
			t.Errorf("%s: %d %q %v", tc.name, base, suf, ok)
		}
	}
}

// A sealed segment whose index files are missing rebuilds them from the
// log, and reads agree with what was appended.
func TestSealedIndexRebuilt(t *testing.T) {
	fs := vfs.NewMem()
	e := env(t, fs)
	s, err := Create(fs, ".", 100, Options{IndexIntervalBytes: 1000})
	if err != nil {
		t.Fatal(err)
	}
	batches := appendN(t, s, 20)
	s.Seal()
	if err := s.Flush(e); err != nil {
		t.Fatal(err)
	}
	for _, suf := range []string{IndexSuffix, TimeIndexSuffix} {
		if err := fs.Remove(s.Path(suf)); err != nil {
			t.Fatal(err)
		}
	}
	e.Indexes.Remove(s.IndexKey())
	sealed := OpenSealed(fs, ".", 100, s.Next(), s.Size(), Options{IndexIntervalBytes: 1000})
	for i, want := range batches {
		h, _ := batch.ParseHeader(want)
		r, err := sealed.Read(e, h.BaseOffset+1, 1, sealed.Size())
		if err != nil {
			t.Fatal(err)
		}
		if got := readRange(t, r); !bytes.Equal(got, want) {
			t.Fatalf("batch %d differs after index rebuild", i)
		}
	}
	if _, err := fs.Stat(s.Path(IndexSuffix)); err != nil {
		t.Fatalf("rebuilt index not written back: %v", err)
	}
}

// A corrupt length in a sealed segment is reported with the file and the
// byte offset, by reads and by an index rebuild, never a panic.
func TestCorruptSealedSegmentReported(t *testing.T) {
	fs := vfs.NewMem()
	e := env(t, fs)
	s, err := Create(fs, ".", 0, Options{IndexIntervalBytes: 1 << 20}) // one index entry: reads walk headers
	if err != nil {
		t.Fatal(err)
	}
	batches := appendN(t, s, 10)
	s.Seal()
	if err := s.Flush(e); err != nil {
		t.Fatal(err)
	}
	pos := int64(len(batches[0]) + len(batches[1])) // third batch
	f, err := fs.OpenRW(s.Path(LogSuffix))
	if err != nil {
		t.Fatal(err)
	}
	f.WriteAt([]byte{0x7f, 0xff, 0xff, 0xff}, pos+8) // its length
	f.Close()
	e.Indexes.Remove(s.IndexKey())

	sealed := OpenSealed(fs, ".", 0, s.Next(), s.Size(), Options{IndexIntervalBytes: 1 << 20})
	_, err = sealed.Read(e, 8, 1, sealed.Size()) // past the bad batch
	var ce *CorruptError
	if !errors.As(err, &ce) || !errors.Is(err, ErrCorrupt) || ce.Offset != pos || ce.Path != s.Path(LogSuffix) {
		t.Fatalf("read: %v", err)
	}
	if want := fmt.Sprintf("at byte %d", pos); !bytes.Contains([]byte(err.Error()), []byte(want)) {
		t.Fatalf("error %q does not name the byte", err)
	}
	// Rebuilding the index from this log reports the damage too.
	fs.Remove(s.Path(IndexSuffix))
	e.Indexes.Remove(s.IndexKey())
	sealed = OpenSealed(fs, ".", 0, s.Next(), s.Size(), Options{IndexIntervalBytes: 1 << 20})
	if _, err := sealed.Read(e, 0, 1, sealed.Size()); !errors.As(err, &ce) || ce.Offset != pos {
		t.Fatalf("rebuild: %v", err)
	}
}

// Recover cuts a torn tail and a CRC failure, keeps what precedes them,
// and takes appends at the right offset afterwards.
func TestRecoverCutsTornTail(t *testing.T) {
	for _, damage := range []string{"torn", "crc", "gap"} {
		t.Run(damage, func(t *testing.T) {
			fs := vfs.NewMem()
			s, _ := Create(fs, ".", 0, Options{IndexIntervalBytes: 500})
			batches := appendN(t, s, 8)
			good := int64(0)
			for _, b := range batches[:6] {
				good += int64(len(b))
			}
			size := s.Size()
			s.Close()
			f, _ := fs.OpenRW(s.Path(LogSuffix))
			switch damage {
			case "torn":
				f.Truncate(good + 30)
			case "crc":
				f.WriteAt([]byte{0xee}, good+100)
			case "gap": // a batch whose base offset does not continue
				b := mk(t, 999, 3)
				f.WriteAt(b, good)
			}
			f.Close()
			r, cut, err := Recover(fs, ".", 0, 0, Options{IndexIntervalBytes: 500})
			if err != nil {
				t.Fatal(err)
			}
			if r.Size() != good || r.Next() != 18 {
				t.Fatalf("recovered size %d next %d, want %d 18 (cut %d of %d)", r.Size(), r.Next(), good, cut, size)
			}
			b := mk(t, 18, 1)
			h, _ := batch.ParseHeader(b)
			if err := r.Append(b, h); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestFileCacheBound(t *testing.T) {
	fs := vfs.NewMem()
	c := NewFileCache(fs, 2)
	for i := 0; i < 5; i++ {
		f, _ := fs.Create(fmt.Sprint(i))
		f.Close()
	}
	var held []*Handle
	for i := 0; i < 5; i++ {
		h, err := c.Acquire(fmt.Sprint(i))
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, h)
	}
	if c.Len() != 2 {
		t.Fatalf("cache holds %d descriptors", c.Len())
	}
	// Evicted handles still work for their holders.
	for _, h := range held {
		if _, err := h.File().Size(); err != nil {
			t.Fatalf("held handle closed under its reader: %v", err)
		}
		h.Release()
	}
	c.Close()
}
