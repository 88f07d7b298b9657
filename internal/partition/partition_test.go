package partition

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/sluice-io/sluice/internal/batch"
	"github.com/sluice-io/sluice/internal/index"
	"github.com/sluice-io/sluice/internal/segment"
	"github.com/sluice-io/sluice/internal/vfs"
)

func testEnv(t testing.TB, fsys vfs.FS) *segment.Env {
	c, err := index.NewCache(index.CacheOptions{MaxBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	return &segment.Env{Files: segment.NewFileCache(fsys, 8), Indexes: c}
}

func mkBatch(t testing.TB, n int, ts int64, size int) []byte {
	recs := make([]batch.Record, n)
	for i := range recs {
		recs[i] = batch.Record{OffsetDelta: int32(i), TimestampDelta: int64(i), Key: []byte(fmt.Sprintf("k%d", i)), Value: bytes.Repeat([]byte{'v'}, size)}
	}
	b, err := batch.Build(batch.CodecNone, ts, recs, batch.BuildOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

type harness struct {
	t    testing.TB
	fs   vfs.FS
	env  *segment.Env
	p    *Partition
	cfg  Config
	now  time.Time
	sent [][]byte // applied batches, in offset order
}

func newHarness(t testing.TB, cfg Config) *harness {
	h := &harness{t: t, fs: vfs.NewMem(), cfg: cfg, now: time.UnixMilli(1_700_000_000_000)}
	h.env = testEnv(t, h.fs)
	if err := h.fs.MkdirAll("p-0"); err != nil {
		t.Fatal(err)
	}
	p, err := Create(h.opts())
	if err != nil {
		t.Fatal(err)
	}
	h.p = p
	return h
}

func (h *harness) opts() Options {
	return Options{FS: h.fs, Dir: "p-0", ID: ID{Topic: "p", Partition: 0}, Config: h.cfg, Env: h.env, Now: func() time.Time { return h.now }}
}

// append runs both steps of an append, as the engine does after the WAL.
func (h *harness) append(b []byte) int64 {
	h.t.Helper()
	var base int64
	if _, err := h.p.Append(b, h.now, func(b int64) error { base = b; return nil }); err != nil {
		h.t.Fatal(err)
	}
	if err := h.p.Apply(b); err != nil {
		h.t.Fatal(err)
	}
	h.sent = append(h.sent, b)
	return base
}

func readRange(t testing.TB, r ReadResult) []byte {
	t.Helper()
	if r.Range.Handle == nil {
		return nil
	}
	out := make([]byte, r.Range.Len)
	if _, err := r.Range.Handle.File().ReadAt(out, r.Range.Pos); err != nil && err != io.EOF {
		t.Fatal(err)
	}
	return out
}

// readAll reads the partition from its log start, batch by batch, and
// checks the bytes equal what was appended from that offset on.
func (h *harness) checkReadAll(maxBytes int64) {
	h.t.Helper()
	start, end := h.p.Offsets()
	var got []byte
	for off := start; off < end; {
		r, err := h.p.Read(off, maxBytes)
		if err != nil {
			h.t.Fatalf("read %d: %v", off, err)
		}
		if r.Range.Handle == nil {
			h.t.Fatalf("read %d: empty before end %d", off, end)
		}
		got = append(got, readRange(h.t, r)...)
		off = r.Range.Last + 1
		r.Release()
	}
	var want []byte
	for _, b := range h.sent {
		hd, _ := batch.ParseHeader(b)
		if hd.LastOffset() >= start {
			want = append(want, b...)
		}
	}
	if !bytes.Equal(got, want) {
		h.t.Fatalf("read back %d bytes, want %d (equal=%v)", len(got), len(want), bytes.Equal(got, want))
	}
}

func TestAppendReadRoll(t *testing.T) {
	cfg := DefaultConfig()
	cfg.SegmentBytes = 8 << 10
	cfg.IndexIntervalBytes = 1024
	h := newHarness(t, cfg)
	want := int64(0)
	for i := 0; i < 200; i++ {
		n := 1 + i%7
		if base := h.append(mkBatch(t, n, h.now.UnixMilli()+int64(i), 50+i%300)); base != want {
			t.Fatalf("batch %d got base %d, want %d", i, base, want)
		}
		want += int64(n)
	}
	if segs := h.p.Segments(); len(segs) < 5 {
		t.Fatalf("expected rolls, got %d segments", len(segs))
	}
	for _, mb := range []int64{1, 500, 4096, 1 << 20} {
		h.checkReadAll(mb)
	}
	// Every offset is readable and the first batch returned holds it.
	for off := int64(0); off < want; off += 13 {
		r, err := h.p.Read(off, 1)
		if err != nil {
			t.Fatal(err)
		}
		if r.Range.First > off || r.Range.Last < off {
			t.Fatalf("read %d returned [%d, %d]", off, r.Range.First, r.Range.Last)
		}
		r.Release()
	}
	if _, err := h.p.Read(want+1, 100); !errors.Is(err, ErrOffsetOutOfRange) {
		t.Fatalf("read past end: %v", err)
	}
	if r, err := h.p.Read(want, 100); err != nil || r.Range.Handle != nil {
		t.Fatalf("read at end: %v %v", r.Range, err)
	}
}

func TestMaxBytesAtBatchBoundaries(t *testing.T) {
	cfg := DefaultConfig()
	cfg.IndexIntervalBytes = 1
	h := newHarness(t, cfg)
	var sizes []int64
	for i := 0; i < 20; i++ {
		b := mkBatch(t, 2, h.now.UnixMilli(), 100)
		sizes = append(sizes, int64(len(b)))
		h.append(b)
	}
	// maxBytes smaller than one batch still returns exactly one.
	r, _ := h.p.Read(0, 10)
	if r.Range.Len != sizes[0] {
		t.Fatalf("small max_bytes returned %d, want one batch of %d", r.Range.Len, sizes[0])
	}
	r.Release()
	// maxBytes of 2.5 batches returns 2.
	r, _ = h.p.Read(0, sizes[0]+sizes[1]+sizes[2]/2)
	if r.Range.Len != sizes[0]+sizes[1] || r.Range.Last != 3 {
		t.Fatalf("got %d bytes last %d, want %d last 3", r.Range.Len, r.Range.Last, sizes[0]+sizes[1])
	}
	r.Release()
}

func TestRecoverAfterCrash(t *testing.T) {
	for seed := uint64(0); seed < 40; seed++ {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.SegmentBytes = 4 << 10
			cfg.IndexIntervalBytes = 512
			h := newHarness(t, cfg)
			mem := h.fs.(*vfs.MemFS)
			for i := 0; i < 30; i++ {
				h.append(mkBatch(t, 3, h.now.UnixMilli()+int64(i), 100))
			}
			st, err := h.p.Flush()
			if err != nil {
				t.Fatal(err)
			}
			flushedBatches := len(h.sent)
			for i := 0; i < 30; i++ {
				h.append(mkBatch(t, 3, h.now.UnixMilli()+int64(i), 100))
			}
			crashed := mem.CrashClone(vfs.CrashOptions{Rand: seededRand(seed), UnsyncedDataPercent: 50, TornWrites: true})
			h2 := &harness{t: t, fs: crashed, cfg: cfg, now: h.now, env: testEnv(t, crashed)}
			p2, rst, err := Open(h2.opts(), &st)
			if err != nil {
				t.Fatal(err)
			}
			h2.p = p2
			if testing.Verbose() {
				t.Logf("recovery: %+v", rst)
			}
			_, end := p2.Offsets()
			if end < st.Next {
				t.Fatalf("recovered end %d below flushed %d", end, st.Next)
			}
			// What survived is a prefix of what was written.
			n := 0
			for _, b := range h.sent {
				hd, _ := batch.ParseHeader(b)
				if hd.LastOffset() < end {
					n++
				}
			}
			if n < flushedBatches {
				t.Fatalf("lost flushed batches: %d < %d", n, flushedBatches)
			}
			h2.sent = h.sent[:n]
			h2.checkReadAll(1 << 20)
			// It takes appends again at the right offset.
			if base := h2.append(mkBatch(t, 1, h.now.UnixMilli(), 10)); base != end {
				t.Fatalf("append after recovery at %d, want %d", base, end)
			}
		})
	}
}

func TestRetentionAndLogStart(t *testing.T) {
	cfg := DefaultConfig()
	cfg.SegmentBytes = 2 << 10
	cfg.RetentionBytes = 6 << 10
	h := newHarness(t, cfg)
	for i := 0; i < 60; i++ {
		h.append(mkBatch(t, 2, h.now.UnixMilli(), 200))
	}
	if _, err := h.p.Flush(); err != nil {
		t.Fatal(err)
	}
	n, err := h.p.EnforceRetention(h.now)
	if err != nil || n == 0 {
		t.Fatalf("retention deleted %d: %v", n, err)
	}
	if sz := h.p.Size(); sz > cfg.RetentionBytes+cfg.SegmentBytes {
		t.Fatalf("size %d after retention", sz)
	}
	start, _ := h.p.Offsets()
	if start == 0 {
		t.Fatal("log start did not move")
	}
	h.checkReadAll(1 << 20)
	if _, err := h.p.Read(start-1, 10); !errors.Is(err, ErrOffsetOutOfRange) {
		t.Fatalf("read below log start: %v", err)
	}
	// DeleteRecords moves the start inside a segment.
	if _, err := h.p.SetLogStart(start + 3); err != nil {
		t.Fatal(err)
	}
	if s, _ := h.p.Offsets(); s != start+3 {
		t.Fatalf("log start %d", s)
	}
	// Time retention.
	cfg.RetentionBytes = -1
	cfg.RetentionMs = time.Hour
	_ = h.p.SetConfig(cfg)
	if _, err := h.p.Flush(); err != nil {
		t.Fatal(err)
	}
	n, _ = h.p.EnforceRetention(h.now.Add(2 * time.Hour))
	if len(h.p.Segments()) != 1 || n == 0 {
		t.Fatalf("time retention left %d segments", len(h.p.Segments()))
	}
}

func TestTruncateTo(t *testing.T) {
	cfg := DefaultConfig()
	cfg.SegmentBytes = 2 << 10
	h := newHarness(t, cfg)
	for i := 0; i < 40; i++ {
		h.append(mkBatch(t, 2, h.now.UnixMilli(), 100))
	}
	if err := h.p.TruncateTo(31); err != nil { // batch [30,31] goes whole
		t.Fatal(err)
	}
	if _, end := h.p.Offsets(); end != 30 {
		t.Fatalf("end after truncate %d, want 30", end)
	}
	h.sent = h.sent[:15]
	h.checkReadAll(1 << 20)
	if base := h.append(mkBatch(t, 1, h.now.UnixMilli(), 10)); base != 30 {
		t.Fatalf("append after truncate at %d", base)
	}
	h.checkReadAll(1 << 20)
}

func TestOffsetForTimestamp(t *testing.T) {
	h := newHarness(t, DefaultConfig())
	base := h.now.UnixMilli()
	for i := 0; i < 10; i++ {
		h.append(mkBatch(t, 5, base+int64(i)*100, 20)) // records at base+i*100+[0,5)
	}
	for _, tc := range []struct {
		ts, off int64
		ok      bool
	}{{base - 5, 0, true}, {base, 0, true}, {base + 3, 3, true}, {base + 100, 5, true}, {base + 102, 7, true}, {base + 904, 49, true}, {base + 905, 0, false}} {
		off, _, ok, err := h.p.OffsetForTimestamp(tc.ts)
		if err != nil || ok != tc.ok || (ok && off != tc.off) {
			t.Errorf("ts %d: got %d %v %v, want %d %v", tc.ts-base, off, ok, err, tc.off, tc.ok)
		}
	}
	off, ts, ok, err := h.p.MaxTimestamp()
	if err != nil || !ok || off != 49 || ts != base+904 {
		t.Fatalf("max timestamp: %d %d %v %v", off, ts, ok, err)
	}
}

// A segment older than segment.ms rolls at the next append, however small.
func TestRollOnSegmentMs(t *testing.T) {
	cfg := DefaultConfig()
	cfg.SegmentMs = time.Hour
	h := newHarness(t, cfg)
	h.append(mkBatch(t, 2, h.now.UnixMilli(), 10))
	h.now = h.now.Add(59 * time.Minute)
	h.append(mkBatch(t, 2, h.now.UnixMilli(), 10))
	if n := len(h.p.Segments()); n != 1 {
		t.Fatalf("rolled before segment.ms: %d segments", n)
	}
	h.now = h.now.Add(2 * time.Minute)
	h.append(mkBatch(t, 2, h.now.UnixMilli(), 10))
	segs := h.p.Segments()
	if len(segs) != 2 || segs[1].Base != 4 || segs[0].State != segment.Sealed {
		t.Fatalf("after segment.ms: %+v", segs)
	}
	h.checkReadAll(1 << 20)
}

// ReadUpTo stops at a batch boundary below upTo, in any segment, and
// returns nothing when the read starts at or past it.
func TestReadUpTo(t *testing.T) {
	cfg := DefaultConfig()
	cfg.SegmentBytes = 2000 // a few batches per segment
	h := newHarness(t, cfg)
	for i := 0; i < 30; i++ {
		h.append(mkBatch(t, 3, 1000+int64(i), 100))
	}
	if len(h.p.Segments()) < 3 {
		t.Fatalf("%d segments; the test wants several", len(h.p.Segments()))
	}
	_, end := h.p.Offsets()
	for _, upTo := range []int64{0, 3, 27, 45, 60, 87, end} {
		// Read everything from 0 up to upTo, as many reads as it takes.
		var last int64 = -1
		for off := int64(0); off < end; {
			r, err := h.p.ReadUpTo(off, 350, upTo)
			if err != nil {
				t.Fatal(err)
			}
			if r.Range.Handle == nil {
				break
			}
			if r.Range.Last >= upTo {
				t.Fatalf("upTo %d: read returned offsets to %d", upTo, r.Range.Last)
			}
			last, off = r.Range.Last, r.Range.Last+1
			r.Release()
		}
		if last != upTo-1 {
			t.Fatalf("upTo %d: reads ended at %d, want %d", upTo, last, upTo-1)
		}
	}
}

// TestRollLogged: operators see one line per roll, with why it rolled.
func TestRollLogged(t *testing.T) {
	cfg := DefaultConfig()
	cfg.SegmentBytes = 4 << 10
	h := newHarness(t, cfg)
	var buf bytes.Buffer
	o := h.opts()
	o.Logger = slog.New(slog.NewTextHandler(&buf, nil))
	if err := h.fs.MkdirAll("p-1"); err != nil {
		t.Fatal(err)
	}
	o.Dir = "p-1"
	p, err := Create(o)
	if err != nil {
		t.Fatal(err)
	}
	h.p = p
	for i := range 20 {
		h.append(mkBatch(t, 1, h.now.UnixMilli()+int64(i), 1000))
	}
	rolls := len(h.p.Segments()) - 1
	if rolls < 3 {
		t.Fatalf("want several rolls, got %d", rolls)
	}
	if got := strings.Count(buf.String(), "partition: segment rolled"); got != rolls {
		t.Fatalf("logged %d rolls, made %d:\n%s", got, rolls, buf.String())
	}
	if !strings.Contains(buf.String(), "reason=segment.bytes") || !strings.Contains(buf.String(), "partition=p-0") {
		t.Fatalf("roll line lacks its fields:\n%s", buf.String())
	}
}
