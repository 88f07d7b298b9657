package partition

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/sluice-io/sluice/internal/batch"
	"github.com/sluice-io/sluice/internal/segment"
)

// rec is one record as written, for comparing with what the log holds.
type rec struct {
	off       int64
	key       string
	value     []byte
	tombstone bool
	ts        int64
	hdr       string // one header value, "" for none
	batchTS   int64  // the batch's max timestamp (tombstone expiry)
}

func compactConfig() Config {
	cfg := DefaultConfig()
	cfg.SegmentBytes = 2 << 10
	cfg.IndexIntervalBytes = 256
	cfg.Compact, cfg.NoDelete = true, true
	cfg.DeleteRetention = 200 * time.Millisecond
	cfg.MinCleanableDirtyRatio = 0
	return cfg
}

var codecs = []batch.Codec{batch.CodecNone, batch.CodecGzip, batch.CodecSnappy, batch.CodecLZ4, batch.CodecZstd}

// put appends one batch of records over keys and returns them as written.
func (h *harness) put(r *rand.Rand, codec batch.Codec, keys []string, tombstone func() bool) []rec {
	h.t.Helper()
	recs := make([]batch.Record, len(keys))
	ts := h.now.UnixMilli()
	for i, k := range keys {
		recs[i] = batch.Record{TimestampDelta: int64(i), Key: []byte(k)}
		if tombstone() {
			recs[i].ValueNull = true
		} else {
			recs[i].Value = []byte(fmt.Sprintf("%s=%d", k, r.Uint32()))
		}
		if r.IntN(3) == 0 {
			recs[i].Headers = []batch.RecordHeader{{Key: []byte("h"), Value: []byte(fmt.Sprint(r.IntN(100)))}}
		}
	}
	b, err := batch.Build(codec, ts, recs, batch.BuildOptions{})
	if err != nil {
		h.t.Fatal(err)
	}
	bh, _ := batch.ParseHeader(b)
	base := h.append(b)
	out := make([]rec, len(recs))
	for i, x := range recs {
		out[i] = rec{off: base + int64(i), key: string(x.Key), value: x.Value, tombstone: x.ValueNull, ts: ts + int64(i), batchTS: bh.MaxTimestamp}
		if len(x.Headers) > 0 {
			out[i].hdr = string(x.Headers[0].Value)
		}
	}
	return out
}

// readRecords reads the whole readable log and checks its framing: whole
// batches that verify, claiming contiguous offsets, records strictly
// increasing within them.
func (h *harness) readRecords() []rec {
	h.t.Helper()
	start, end := h.p.Offsets()
	var out []rec
	next := int64(-1)
	for off := start; off < end; {
		res, err := h.p.Read(off, 1+rand.Int64N(4<<10))
		if err != nil {
			h.t.Fatalf("read %d: %v", off, err)
		}
		if res.Range.Handle == nil {
			h.t.Fatalf("nothing at %d below end %d", off, end)
		}
		buf := make([]byte, res.Range.Len)
		if _, err := res.Range.Handle.File().ReadAt(buf, res.Range.Pos); err != nil && err != io.EOF {
			h.t.Fatal(err)
		}
		res.Release()
		for it := batch.NewIter(buf); it.Next(); {
			bh, err := batch.Verify(it.Batch())
			if err != nil {
				h.t.Fatalf("batch at %d: %v", it.Header().BaseOffset, err)
			}
			if next >= 0 && bh.BaseOffset != next {
				h.t.Fatalf("batch at %d after one ending at %d", bh.BaseOffset, next-1)
			}
			next = bh.LastOffset() + 1
			last := int64(-1)
			err = batch.Records(it.Batch(), func(r *batch.Record) error {
				o := bh.BaseOffset + int64(r.OffsetDelta)
				if o <= last || o > bh.LastOffset() {
					return fmt.Errorf("record offset %d after %d in batch ending at %d", o, last, bh.LastOffset())
				}
				last = o
				if o < start {
					return nil
				}
				x := rec{off: o, key: string(r.Key), value: bytes.Clone(r.Value), tombstone: r.ValueNull, ts: bh.BaseTimestamp + r.TimestampDelta}
				if len(r.Headers) > 0 {
					x.hdr = string(r.Headers[0].Value)
				}
				out = append(out, x)
				return nil
			})
			if err != nil {
				h.t.Fatal(err)
			}
		}
		off = res.Range.Last + 1
	}
	if next >= 0 && next != end {
		h.t.Fatalf("batches end at %d, log end is %d", next, end)
	}
	for i := 1; i < len(out); i++ {
		if out[i].off <= out[i-1].off {
			h.t.Fatalf("offsets not increasing: %d after %d", out[i].off, out[i-1].off)
		}
	}
	return out
}

// checkCompacted checks the log against every record written: each
// surviving offset holds exactly what was written there, and each key's
// last record is the last one written for it, or gone only if that was a
// tombstone older than delete.retention.ms at the last compaction.
func checkCompacted(t testing.TB, got []rec, written map[int64]rec, latest map[string]rec, horizon int64) {
	t.Helper()
	last := map[string]rec{}
	for _, g := range got {
		w, ok := written[g.off]
		if !ok {
			t.Fatalf("offset %d was never written", g.off)
		}
		if g.key != w.key || !bytes.Equal(g.value, w.value) || g.tombstone != w.tombstone || g.ts != w.ts || g.hdr != w.hdr {
			t.Fatalf("offset %d changed: %+v, written %+v", g.off, g, w)
		}
		last[g.key] = g
	}
	for k, w := range latest {
		g, ok := last[k]
		switch {
		case ok && g.off != w.off:
			t.Fatalf("key %s: last record at %d, last written at %d", k, g.off, w.off)
		case !ok && !w.tombstone:
			t.Fatalf("key %s: value written at %d is gone", k, w.off)
		case !ok && w.batchTS >= horizon:
			t.Fatalf("key %s: tombstone at %d removed before delete.retention.ms", k, w.off)
		}
	}
}

// TestCompactProperty writes puts, overwrites and tombstones over a small
// key space in every codec, with segment rolls, interleaved compactions
// (some with a key map too small for the dirty log) and reopens, and
// checks after each compaction that the log yields each key's last value,
// that surviving records are unchanged, and that no offset moved.
func TestCompactProperty(t *testing.T) {
	seeds := 6
	if testing.Short() {
		seeds = 2
	}
	for seed := uint64(1); seed <= uint64(seeds); seed++ {
		t.Run(fmt.Sprint("seed=", seed), func(t *testing.T) {
			t.Logf("seed %d", seed)
			r := seededRand(seed)
			cfg := compactConfig()
			cfg.DeleteRetention = time.Duration(5+r.IntN(60)) * time.Millisecond
			h := newHarness(t, cfg)
			written := map[int64]rec{}
			latest := map[string]rec{}
			nkeys := 5 + r.IntN(20)
			var total CompactStats
			fulls := 0
			for step := 0; step < 400; step++ {
				h.now = h.now.Add(time.Duration(1+r.IntN(10)) * time.Millisecond)
				keys := make([]string, 1+r.IntN(4))
				for i := range keys {
					keys[i] = fmt.Sprint("key", r.IntN(nkeys))
				}
				for _, x := range h.put(r, codecs[r.IntN(len(codecs))], keys, func() bool { return r.IntN(8) == 0 }) {
					written[x.off] = x
					latest[x.key] = x
				}
				if r.IntN(25) != 0 {
					continue
				}
				fst, err := h.p.Flush()
				if err != nil {
					t.Fatal(err)
				}
				if r.IntN(4) == 0 {
					h.reopen(&fst)
				}
				_, endBefore := h.p.Offsets()
				startBefore, _ := h.p.Offsets()
				segs := h.p.Segments()
				active := segs[len(segs)-1]
				opts := CompactOptions{DurableBelow: fst.SegmentBase}
				if r.IntN(3) == 0 {
					opts.DedupeBufferBytes = offsetMapEntryBytes * int64(8+r.IntN(20))
				}
				st, err := h.p.Compact(context.Background(), h.now, opts)
				if err != nil {
					t.Fatalf("step %d: %v", step, err)
				}
				if start, end := h.p.Offsets(); start != startBefore || end != endBefore || h.p.Next() != end {
					t.Fatalf("offsets moved: [%d, %d) -> [%d, %d)", startBefore, endBefore, start, end)
				}
				segs = h.p.Segments()
				if a := segs[len(segs)-1]; a != active {
					t.Fatalf("active segment changed: %+v -> %+v", active, a)
				}
				total.RecordsRemoved += st.RecordsRemoved
				total.TombstonesRemoved += st.TombstonesRemoved
				total.SegmentsBefore += st.SegmentsBefore
				total.SegmentsAfter += st.SegmentsAfter
				if st.MapFull {
					fulls++
				}
				if st.End > fst.SegmentBase || st.End > endBefore {
					t.Fatalf("compacted up to %d, past the durable %d", st.End, fst.SegmentBase)
				}
				// A tombstone may go only once its batch is older than
				// delete.retention.ms; later compactions only push the
				// horizon forward.
				horizon := h.now.UnixMilli() - h.cfg.DeleteRetention.Milliseconds()
				checkCompacted(t, h.readRecords(), written, latest, horizon)
			}
			t.Logf("removed %d records (%d tombstones), %d segments became %d, %d passes with a full map",
				total.RecordsRemoved, total.TombstonesRemoved, total.SegmentsBefore, total.SegmentsAfter, fulls)
			if total.RecordsRemoved == 0 || total.TombstonesRemoved == 0 || total.SegmentsAfter >= total.SegmentsBefore {
				t.Fatal("compaction did too little for the test to mean anything")
			}
			h.p.Close()
		})
	}
}

func (h *harness) reopen(cp *FlushState) {
	h.t.Helper()
	h.p.Close()
	p, _, err := Open(h.opts(), cp)
	if err != nil {
		h.t.Fatal(err)
	}
	h.p = p
}

// TestCompactTombstonesCodecsReaders: in every codec, superseded records
// and keyless ones go, a tombstone older than delete.retention.ms goes and
// a younger one stays, the active segment is untouched, and a reader
// holding a range of an old segment keeps reading its old bytes.
func TestCompactTombstonesCodecsReaders(t *testing.T) {
	for _, codec := range codecs {
		t.Run(codec.String(), func(t *testing.T) {
			cfg := compactConfig()
			cfg.DeleteRetention = time.Hour
			h := newHarness(t, cfg)
			r := seededRand(7)
			never := func() bool { return false }
			always := func() bool { return true }
			old := h.put(r, codec, []string{"a", "b", "c"}, never)
			h.put(r, codec, []string{"a"}, always) // old tombstone for a
			keyless, _ := batch.Build(codec, h.now.UnixMilli(), []batch.Record{{Value: []byte("no key")}}, batch.BuildOptions{})
			h.append(keyless)
			h.now = h.now.Add(2 * time.Hour)
			young := h.put(r, codec, []string{"b"}, always) // young tombstone for b
			for i := 0; i < 40; i++ {
				h.put(r, codec, []string{"d"}, never) // rolls segments
			}
			last := h.put(r, codec, []string{"e"}, never)
			fst, err := h.p.Flush()
			if err != nil {
				t.Fatal(err)
			}
			held, err := h.p.Read(0, 1<<20)
			if err != nil {
				t.Fatal(err)
			}
			heldBytes := make([]byte, held.Range.Len)
			if _, err := held.Range.Handle.File().ReadAt(heldBytes, held.Range.Pos); err != nil && err != io.EOF {
				t.Fatal(err)
			}
			segs := h.p.Segments()
			active := segs[len(segs)-1]
			if active.Base > last[0].off || fst.SegmentBase != active.Base {
				t.Fatalf("setup: active segment %+v, flushed %+v", active, fst)
			}
			st, err := h.p.Compact(context.Background(), h.now, CompactOptions{DurableBelow: fst.SegmentBase})
			if err != nil {
				t.Fatal(err)
			}
			if st.TombstonesRemoved != 1 || st.KeylessRemoved != 1 || st.BytesAfter >= st.BytesBefore {
				t.Fatalf("stats %+v", st)
			}
			got := map[string][]rec{}
			for _, x := range h.readRecords() {
				got[x.key] = append(got[x.key], x)
			}
			if len(got["a"]) != 0 || len(got[""]) != 0 {
				t.Fatalf("a or the keyless record survived: %+v %+v", got["a"], got[""])
			}
			if b := got["b"]; len(b) != 1 || !b[0].tombstone || b[0].off != young[0].off {
				t.Fatalf("b: %+v", b)
			}
			if c := got["c"]; len(c) != 1 || c[0].off != old[2].off || !bytes.Equal(c[0].value, old[2].value) {
				t.Fatalf("c: %+v", c)
			}
			if d := got["d"]; d[len(d)-1].off != last[0].off-1 {
				t.Fatalf("d: %+v", d)
			}
			segs = h.p.Segments()
			if a := segs[len(segs)-1]; a != active {
				t.Fatalf("active segment changed: %+v -> %+v", active, a)
			}
			// The old range still reads the old bytes.
			buf := make([]byte, held.Range.Len)
			if _, err := held.Range.Handle.File().ReadAt(buf, held.Range.Pos); err != nil && err != io.EOF {
				t.Fatal(err)
			}
			held.Release()
			if !bytes.Equal(buf, heldBytes) {
				t.Fatal("a reader's old segment changed under it")
			}
			// A second pass finds nothing dirty.
			st, err = h.p.Compact(context.Background(), h.now, CompactOptions{DurableBelow: fst.SegmentBase})
			if err != nil || st.SegmentsBefore != 0 {
				t.Fatalf("second pass: %+v %v", st, err)
			}
			// After a reopen everything counts as dirty again; the pass
			// rewrites and the result reads the same.
			h.reopen(&fst)
			before := h.readRecords()
			if _, err := h.p.Compact(context.Background(), h.now, CompactOptions{DurableBelow: fst.SegmentBase}); err != nil {
				t.Fatal(err)
			}
			if after := h.readRecords(); fmt.Sprint(after) != fmt.Sprint(before) {
				t.Fatal("a pass over a compacted log changed it")
			}
			h.p.Close()
		})
	}
}

// TestCompactOnlyKeepsOldSegments: with cleanup.policy=compact alone,
// retention.ms and retention.bytes delete nothing.
func TestCompactOnlyKeepsOldSegments(t *testing.T) {
	cfg := compactConfig()
	cfg.RetentionMs, cfg.RetentionBytes = time.Millisecond, 1
	h := newHarness(t, cfg)
	r := seededRand(3)
	for i := 0; i < 30; i++ {
		h.put(r, batch.CodecNone, []string{fmt.Sprint(i)}, func() bool { return false })
	}
	if _, err := h.p.Flush(); err != nil {
		t.Fatal(err)
	}
	h.now = h.now.Add(time.Hour)
	n, err := h.p.EnforceRetention(h.now)
	if err != nil || n != 0 {
		t.Fatalf("retention deleted %d segments (%v) of a compact-only partition", n, err)
	}
	h.p.cfgSet(func(c *Config) { c.NoDelete = false })
	if n, _ := h.p.EnforceRetention(h.now); n == 0 {
		t.Fatal("compact,delete: retention deleted nothing")
	}
	h.p.Close()
}

func (p *Partition) cfgSet(fn func(*Config)) {
	c := p.Config()
	fn(&c)
	if err := p.SetConfig(c); err != nil {
		panic(err)
	}
}

var parseTemp = segment.ParseTempName
