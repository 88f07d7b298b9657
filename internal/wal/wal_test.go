package wal

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"path"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/goleak"

	"github.com/sluice-io/sluice/internal/vfs"
	"github.com/sluice-io/sluice/internal/vfs/errorfs"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const testDir = "wal"

// rec is a replayed record.
type rec struct {
	lsn     LSN
	payload []byte
}

func memOpts(fs vfs.FS) Options {
	// Files are zero-filled to FileBytes: keep them small in memory.
	return Options{FS: fs, Dir: testDir, MaxPendingBytes: 1 << 20, FileBytes: 1 << 20}
}

func mustOpen(t testing.TB, o Options) *WAL {
	t.Helper()
	w, err := Open(o)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return w
}

func mustClose(t testing.TB, w *WAL) {
	t.Helper()
	if err := w.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

// payloadOf returns a deterministic payload of size n for record i.
func payloadOf(i, n int) []byte {
	p := make([]byte, n)
	for j := range p {
		p[j] = byte(i*31 + j*7 + j>>8)
	}
	return p
}

func replayAll(t testing.TB, w *WAL, from LSN) []rec {
	t.Helper()
	var out []rec
	err := w.Replay(from, func(lsn LSN, p []byte) error {
		out = append(out, rec{lsn, bytes.Clone(p)})
		return nil
	})
	if err != nil {
		t.Fatalf("Replay(%d): %v", from, err)
	}
	return out
}

// appendAll appends payloads with AppendSync and returns their LSNs.
func appendAll(t testing.TB, w *WAL, payloads [][]byte) []LSN {
	t.Helper()
	lsns := make([]LSN, len(payloads))
	for i, p := range payloads {
		start := w.End()
		end, err := w.AppendSync(context.Background(), p)
		if err != nil {
			t.Fatalf("AppendSync %d: %v", i, err)
		}
		if want := start + LSN(frameHeaderBytes+len(p)); end != want {
			t.Fatalf("record %d: end %d, want %d", i, end, want)
		}
		lsns[i] = start
	}
	return lsns
}

func checkRecords(t testing.TB, got []rec, lsns []LSN, payloads [][]byte) {
	t.Helper()
	if len(got) != len(payloads) {
		t.Fatalf("replayed %d records, want %d", len(got), len(payloads))
	}
	for i := range got {
		if got[i].lsn != lsns[i] || !bytes.Equal(got[i].payload, payloads[i]) {
			t.Fatalf("record %d: lsn %d (%d bytes), want lsn %d (%d bytes)",
				i, got[i].lsn, len(got[i].payload), lsns[i], len(payloads[i]))
		}
	}
}

func walFiles(t testing.TB, fs vfs.FS, suffix string) []string {
	t.Helper()
	names, err := fs.ReadDir(testDir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, n := range names {
		if strings.HasSuffix(n, suffix) {
			out = append(out, n)
		}
	}
	return out
}

func TestRoundTrip(t *testing.T) {
	for _, name := range []string{"mem", "os"} {
		t.Run(name, func(t *testing.T) {
			var fs vfs.FS = vfs.NewMem()
			o := memOpts(fs)
			if name == "os" {
				o.FS, o.Dir = vfs.Default, t.TempDir()
			}
			w := mustOpen(t, o)
			if got := replayAll(t, w, 0); len(got) != 0 {
				t.Fatalf("fresh log replayed %d records", len(got))
			}
			var payloads [][]byte
			for i := range 100 {
				payloads = append(payloads, payloadOf(i, (i*397)%3000))
			}
			lsns := appendAll(t, w, payloads)
			end := w.End()
			if d := w.DurableEnd(); d != end {
				t.Fatalf("DurableEnd %d, End %d", d, end)
			}
			mustClose(t, w)

			w = mustOpen(t, o)
			defer mustClose(t, w)
			if w.End() != end {
				t.Fatalf("reopened End %d, want %d", w.End(), end)
			}
			checkRecords(t, replayAll(t, w, 0), lsns, payloads)
		})
	}
}

func TestRotation(t *testing.T) {
	fs := vfs.NewMem()
	o := memOpts(fs)
	o.FileBytes = 512
	w := mustOpen(t, o)
	var payloads [][]byte
	for i := range 200 {
		payloads = append(payloads, payloadOf(i, 20+i%150))
	}
	lsns := appendAll(t, w, payloads)
	st := w.Stats()
	if st.Rotations < 20 || st.Files != int(st.Rotations)+1 {
		t.Fatalf("stats %+v: want many rotations and one file per rotation", st)
	}
	mustClose(t, w)
	w = mustOpen(t, o)
	defer mustClose(t, w)
	checkRecords(t, replayAll(t, w, 0), lsns, payloads)
	// Every file but the last written stays within FileBytes.
	for _, n := range walFiles(t, fs, walSuffix) {
		fi, err := fs.Stat(path.Join(testDir, n))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Size() > o.FileBytes {
			t.Fatalf("%s has %d bytes, FileBytes %d", n, fi.Size(), o.FileBytes)
		}
	}
}

func TestRecordLargerThanFile(t *testing.T) {
	fs := vfs.NewMem()
	o := memOpts(fs)
	o.FileBytes = 256
	w := mustOpen(t, o)
	sizes := []int{50, 1000, 50, 5000, 0, 10, 300}
	var payloads [][]byte
	for i, n := range sizes {
		payloads = append(payloads, payloadOf(i, n))
	}
	lsns := appendAll(t, w, payloads)
	mustClose(t, w)
	w = mustOpen(t, o)
	defer mustClose(t, w)
	checkRecords(t, replayAll(t, w, 0), lsns, payloads)
}

func TestReplayFrom(t *testing.T) {
	fs := vfs.NewMem()
	o := memOpts(fs)
	o.FileBytes = 400
	w := mustOpen(t, o)
	var payloads [][]byte
	for i := range 60 {
		payloads = append(payloads, payloadOf(i, 7*i))
	}
	lsns := appendAll(t, w, payloads)
	end := w.End()
	mustClose(t, w)

	w = mustOpen(t, o)
	defer mustClose(t, w)
	for _, k := range []int{0, 1, 17, 30, 59} {
		checkRecords(t, replayAll(t, w, lsns[k]), lsns[k:], payloads[k:])
	}
	if got := replayAll(t, w, end); len(got) != 0 {
		t.Fatalf("Replay(End) returned %d records", len(got))
	}
	// From inside a record: that record is skipped.
	checkRecords(t, replayAll(t, w, lsns[10]+1), lsns[11:], payloads[11:])
	if err := w.Replay(end+1, nil); !errors.Is(err, ErrOutOfRange) {
		t.Fatalf("Replay past the end: %v, want ErrOutOfRange", err)
	}
	stop := errors.New("stop")
	n := 0
	err := w.Replay(0, func(LSN, []byte) error {
		n++
		if n == 5 {
			return stop
		}
		return nil
	})
	if err != stop || n != 5 {
		t.Fatalf("Replay with a failing fn: err %v after %d calls", err, n)
	}
	if _, err := w.AppendSync(context.Background(), []byte("x")); err != nil {
		t.Fatal(err)
	}
	if err := w.Replay(0, nil); err == nil {
		t.Fatal("Replay after Append succeeded")
	}
}

func TestTrimAndRecycle(t *testing.T) {
	fs := vfs.NewMem()
	o := memOpts(fs)
	o.FileBytes = 512
	o.RecycleFiles = 2
	w := mustOpen(t, o)
	var payloads [][]byte
	for i := range 200 {
		payloads = append(payloads, payloadOf(i, 40+i%90))
	}
	lsns := appendAll(t, w, payloads[:100])
	before := w.Stats().Files
	checkpoint := lsns[60] // a record boundary: the start of record 60
	if err := w.Trim(checkpoint); err != nil {
		t.Fatal(err)
	}
	st := w.Stats()
	if st.Files >= before || st.PoolFiles != 2 {
		t.Fatalf("after Trim: %d files (was %d), %d in the pool; want fewer and 2", st.Files, before, st.PoolFiles)
	}
	if got := len(walFiles(t, fs, freeSuffix)); got != 2 {
		t.Fatalf("%d .free files, want 2", got)
	}
	// Trimming past the durable end trims no further than it.
	if err := w.Trim(1 << 60); err != nil {
		t.Fatal(err)
	}
	// The next appends reuse the pool: its files still hold old records
	// that must not come back.
	lsns = append(lsns, appendAll(t, w, payloads[100:])...)
	if w.Stats().PoolFiles != 0 {
		t.Fatalf("pool not used: %+v", w.Stats())
	}
	mustClose(t, w)

	w = mustOpen(t, o)
	defer mustClose(t, w)
	checkRecords(t, replayAll(t, w, lsns[150]), lsns[150:], payloads[150:])
	if err := w.Replay(checkpoint, nil); !errors.Is(err, ErrOutOfRange) {
		t.Fatalf("Replay of trimmed records: %v, want ErrOutOfRange", err)
	}
}

// TestRecycledStaleRecords writes same-sized records so that the frames
// left in a recycled file line up exactly with the new ones. Only the seq
// mixed into the checksum stops recovery from reading them as records
// after the new ones.
func TestRecycledStaleRecords(t *testing.T) {
	fs := vfs.NewMem()
	o := memOpts(fs)
	const perFile = 5
	o.FileBytes = fileHeaderBytes + perFile*(frameHeaderBytes+100)
	o.RecycleFiles = 2
	w := mustOpen(t, o)
	var payloads [][]byte
	for i := range 6*perFile + perFile + 1 {
		payloads = append(payloads, payloadOf(i, 100))
	}
	lsns := appendAll(t, w, payloads[:6*perFile])
	if err := w.Trim(w.End()); err != nil {
		t.Fatal(err)
	}
	if st := w.Stats(); st.PoolFiles != 2 {
		t.Fatalf("pool holds %d files, want 2", st.PoolFiles)
	}
	// One more file's worth, then one record into a recycled file.
	lsns = append(lsns, appendAll(t, w, payloads[6*perFile:])...)
	mustClose(t, w)
	w = mustOpen(t, o)
	defer mustClose(t, w)
	from := 5 * perFile
	checkRecords(t, replayAll(t, w, lsns[from]), lsns[from:], payloads[from:])
}

func TestTrimThenReplayAfterReopen(t *testing.T) {
	fs := vfs.NewMem()
	o := memOpts(fs)
	o.FileBytes = 300
	w := mustOpen(t, o)
	var payloads [][]byte
	for i := range 80 {
		payloads = append(payloads, payloadOf(i, 30+i))
	}
	lsns := appendAll(t, w, payloads)
	mustClose(t, w)

	w = mustOpen(t, o)
	if err := w.Trim(lsns[40]); err != nil {
		t.Fatal(err)
	}
	// Replay before Append still works after a Trim, from the checkpoint.
	checkRecords(t, replayAll(t, w, lsns[40]), lsns[40:], payloads[40:])
	mustClose(t, w)
	w = mustOpen(t, o)
	defer mustClose(t, w)
	checkRecords(t, replayAll(t, w, lsns[40]), lsns[40:], payloads[40:])
}

func TestValidate(t *testing.T) {
	o := Options{FileBytes: 10, SyncDelay: -time.Second, SyncBytes: -1,
		MaxPendingBytes: 100, MaxRecordBytes: 200, RecycleFiles: 1000}
	err := o.Validate()
	if err == nil {
		t.Fatal("Validate accepted bad options")
	}
	for _, want := range []string{"Dir", "FileBytes", "SyncDelay", "SyncBytes", "MaxRecordBytes", "RecycleFiles"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Validate error does not mention %s:\n%v", want, err)
		}
	}
	if _, err := Open(o); err == nil {
		t.Fatal("Open accepted bad options")
	}
	good := Options{Dir: "x"}
	if err := good.Validate(); err != nil {
		t.Fatalf("defaults rejected: %v", err)
	}
	// A small MaxPendingBytes caps the default MaxRecordBytes.
	small := Options{Dir: "x", MaxPendingBytes: 4096}
	if err := small.Validate(); err != nil {
		t.Fatalf("small MaxPendingBytes rejected: %v", err)
	}
}

func TestLimitsAndClose(t *testing.T) {
	fs := vfs.NewMem()
	o := memOpts(fs)
	o.MaxRecordBytes = 100
	w := mustOpen(t, o)
	ctx := context.Background()
	if _, err := w.Append(ctx, make([]byte, 101), nil); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("oversized Append: %v, want ErrTooLarge", err)
	}
	if _, err := w.AppendSync(ctx, make([]byte, 100)); err != nil {
		t.Fatal(err)
	}
	// Records appended just before Close are written and acknowledged.
	var mu sync.Mutex
	var acked int
	for range 10 {
		if _, err := w.Append(ctx, []byte("tail"), func(_ LSN, err error) {
			if err == nil {
				mu.Lock()
				acked++
				mu.Unlock()
			}
		}); err != nil {
			t.Fatal(err)
		}
	}
	mustClose(t, w)
	if acked != 10 {
		t.Fatalf("%d of 10 records acknowledged by Close", acked)
	}
	if w.DurableEnd() != w.End() {
		t.Fatalf("after Close: DurableEnd %d, End %d", w.DurableEnd(), w.End())
	}
	mustClose(t, w) // idempotent
	if _, err := w.Append(ctx, nil, nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("Append after Close: %v", err)
	}
	if _, err := w.AppendSync(ctx, nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("AppendSync after Close: %v", err)
	}
	if err := w.Trim(0); !errors.Is(err, ErrClosed) {
		t.Fatalf("Trim after Close: %v", err)
	}
	if err := w.Replay(0, nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("Replay after Close: %v", err)
	}
}

// TestConcurrentOrder appends from many goroutines and checks that
// callbacks come in strictly increasing LSN order and that syncs are
// shared.
func TestConcurrentOrder(t *testing.T) {
	const goroutines, perG = 8, 250
	fs := vfs.NewMem()
	o := memOpts(fs)
	o.FileBytes = 16 << 10
	o.SyncDelay = time.Millisecond
	w := mustOpen(t, o)

	var ends []LSN // written only by the completer
	var errs []error
	done := func(end LSN, err error) {
		ends = append(ends, end)
		if err != nil {
			errs = append(errs, err)
		}
	}
	type appended struct {
		lsn LSN
		p   []byte
	}
	results := make([][]appended, goroutines)
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			var last LSN
			for i := range perG {
				p := payloadOf(g*perG+i, 1+(g*perG+i)%200)
				lsn, err := w.Append(context.Background(), p, done)
				if err != nil {
					t.Error(err)
					return
				}
				if i > 0 && lsn <= last {
					t.Errorf("goroutine %d: LSN %d after %d", g, lsn, last)
				}
				last = lsn
				results[g] = append(results[g], appended{lsn, p})
			}
		})
	}
	wg.Wait()
	mustClose(t, w)
	if len(errs) > 0 {
		t.Fatalf("%d callbacks failed, first: %v", len(errs), errs[0])
	}
	if len(ends) != goroutines*perG {
		t.Fatalf("%d callbacks, want %d", len(ends), goroutines*perG)
	}
	for i := 1; i < len(ends); i++ {
		if ends[i] <= ends[i-1] {
			t.Fatalf("callback %d: end %d after %d", i, ends[i], ends[i-1])
		}
	}
	st := w.Stats()
	t.Logf("%d appends, %d syncs", st.Appends, st.Syncs)
	if st.Records != st.Appends || st.Syncs*4 > st.Appends {
		t.Fatalf("stats %+v: want every record synced and far fewer syncs than appends", st)
	}

	w = mustOpen(t, o)
	defer mustClose(t, w)
	byLSN := map[LSN][]byte{}
	for _, rs := range results {
		for _, r := range rs {
			byLSN[r.lsn] = r.p
		}
	}
	got := replayAll(t, w, 0)
	if len(got) != len(byLSN) {
		t.Fatalf("replayed %d records, want %d", len(got), len(byLSN))
	}
	for _, r := range got {
		if !bytes.Equal(r.payload, byLSN[r.lsn]) {
			t.Fatalf("record at %d differs", r.lsn)
		}
	}
}

func TestCorruptMiddleFile(t *testing.T) {
	fs := vfs.NewMem()
	o := memOpts(fs)
	o.FileBytes = 256
	w := mustOpen(t, o)
	var payloads [][]byte
	for i := range 30 {
		payloads = append(payloads, payloadOf(i, 60))
	}
	appendAll(t, w, payloads)
	mustClose(t, w)

	first := path.Join(testDir, walFiles(t, fs, walSuffix)[0])
	flipByte(t, fs, first, fileHeaderBytes+frameHeaderBytes+70+5) // in the second record
	_, err := Open(o)
	var ce *CorruptError
	if !errors.As(err, &ce) || !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Open: %v, want a CorruptError", err)
	}
	if ce.Path != first || ce.Offset != fileHeaderBytes+70 {
		t.Fatalf("CorruptError at %s:%d, want %s:%d", ce.Path, ce.Offset, first, fileHeaderBytes+70)
	}
	t.Log(err)
}

func TestCorruptHeaders(t *testing.T) {
	setup := func(t *testing.T) (*vfs.MemFS, Options, []string) {
		fs := vfs.NewMem()
		o := memOpts(fs)
		o.FileBytes = 256
		w := mustOpen(t, o)
		for i := range 20 {
			if _, err := w.AppendSync(context.Background(), payloadOf(i, 60)); err != nil {
				t.Fatal(err)
			}
		}
		mustClose(t, w)
		return fs, o, walFiles(t, fs, walSuffix)
	}
	t.Run("middle header damaged", func(t *testing.T) {
		fs, o, names := setup(t)
		flipByte(t, fs, path.Join(testDir, names[1]), 10)
		if _, err := Open(o); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("Open: %v, want ErrCorrupt", err)
		}
	})
	t.Run("middle file missing", func(t *testing.T) {
		fs, o, names := setup(t)
		if err := fs.Remove(path.Join(testDir, names[2])); err != nil {
			t.Fatal(err)
		}
		if _, err := Open(o); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("Open: %v, want ErrCorrupt", err)
		}
	})
	t.Run("newer version", func(t *testing.T) {
		fs, o, names := setup(t)
		p := path.Join(testDir, names[0])
		hdr := readFile(t, fs, p)[:fileHeaderBytes]
		h, _, _ := decodeFileHeader(hdr)
		encodeFileHeader(hdr, h)
		hdr[5] = 2 // version 2
		putHeaderCRC(hdr)
		writeAt(t, fs, p, hdr, 0)
		_, err := Open(o)
		if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "version") {
			t.Fatalf("Open: %v, want a version error", err)
		}
	})
}

// TestTornTail cuts the last written file inside a record: recovery keeps
// what precedes it, and the fresh file seals the tail, so that appending
// and reopening again finds exactly the kept and the new records.
func TestTornTail(t *testing.T) {
	fs := vfs.NewMem()
	o := memOpts(fs)
	o.FileBytes = 1024
	w := mustOpen(t, o)
	var payloads [][]byte
	for i := range 12 {
		payloads = append(payloads, payloadOf(i, 100))
	}
	lsns := appendAll(t, w, payloads)
	mustClose(t, w)

	// The last file with records is the last one with a valid header.
	var lastPath string
	for _, n := range walFiles(t, fs, walSuffix) {
		p := path.Join(testDir, n)
		if _, st, _ := decodeFileHeader(readFile(t, fs, p)); st == headerValid {
			lastPath = p
		}
	}
	data := readFile(t, fs, lastPath)
	// Files are zero-filled to FileBytes: the records end at the last
	// non-zero byte (the last payload byte is never zero here).
	end := len(data)
	for end > 0 && data[end-1] == 0 {
		end--
	}
	data = data[:end]
	truncate(t, fs, lastPath, int64(len(data)-50))

	w = mustOpen(t, o)
	got := replayAll(t, w, 0)
	checkRecords(t, got, lsns[:11], payloads[:11])
	if w.End() != lsns[11] {
		t.Fatalf("End %d, want %d", w.End(), lsns[11])
	}
	more := [][]byte{payloadOf(100, 10), payloadOf(101, 2000), payloadOf(102, 10)}
	lsns2 := appendAll(t, w, more)
	mustClose(t, w)
	// Put the torn record's bytes back: the old file now holds a valid
	// record past the new file's start, which must be ignored.
	writeAt(t, fs, lastPath, data[len(data)-50:], int64(len(data)-50))

	w = mustOpen(t, o)
	defer mustClose(t, w)
	checkRecords(t, replayAll(t, w, 0), append(lsns[:11:11], lsns2...), append(payloads[:11:11], more...))
}

// TestTrimKeepsPosition trims to the durable end while the next file's
// header is not yet durable (the writer waits for the preparer). The file
// before it must stay: recovery needs a valid header to know where the
// LSNs stand, or the log would restart at 0.
func TestTrimKeepsPosition(t *testing.T) {
	mem := vfs.NewMem()
	gate := newGate(errorfs.OpPreallocate, "0000000000000002.wal")
	gate.arm()
	o := memOpts(gate.fs(mem))
	o.FileBytes = 256
	w := mustOpen(t, o)
	defer gate.release()
	for fileHeaderBytes+int64(w.End())+110 <= o.FileBytes {
		if _, err := w.AppendSync(context.Background(), make([]byte, 100)); err != nil {
			t.Fatal(err)
		}
	}
	rotating := w.End()
	if _, err := w.Append(context.Background(), make([]byte, 100), nil); err != nil {
		t.Fatal(err)
	}
	if st := w.Stats(); st.Files != 2 {
		t.Fatalf("the last Append did not rotate: %+v", st)
	}
	if err := w.Trim(rotating); err != nil {
		t.Fatal(err)
	}
	w2 := mustOpen(t, memOpts(mem.CrashClone(vfs.CrashOptions{})))
	if w2.End() != rotating {
		t.Fatalf("after Trim(%d) and a crash the log ends at %d", rotating, w2.End())
	}
	mustClose(t, w2)
	gate.release()
	mustClose(t, w)
}

// TestSyncDelay runs in a synctest bubble, so time is fake and the
// commit window is exact.
func TestSyncDelay(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		o := memOpts(vfs.NewMem())
		o.SyncDelay, o.SyncBytes = 10*time.Millisecond, 1000
		w := mustOpen(t, o)
		start := time.Now()
		var mu sync.Mutex // synctest.Wait is no happens-before edge for the race detector
		var ackedAt []time.Duration
		done := func(_ LSN, err error) {
			if err != nil {
				t.Error(err)
			}
			mu.Lock()
			ackedAt = append(ackedAt, time.Since(start))
			mu.Unlock()
		}
		acked := func() []time.Duration {
			mu.Lock()
			defer mu.Unlock()
			return slices.Clone(ackedAt)
		}
		appendN := func(n int) {
			for range n {
				if _, err := w.Append(context.Background(), make([]byte, 100), done); err != nil {
					t.Fatal(err)
				}
			}
		}
		appendN(5)
		synctest.Wait() // the writer waits out the window
		if w.DurableEnd() != 0 || len(acked()) != 0 {
			t.Fatalf("written before SyncDelay: durable %d, %d acked", w.DurableEnd(), len(acked()))
		}
		time.Sleep(o.SyncDelay)
		synctest.Wait()
		if a := acked(); w.DurableEnd() != w.End() || w.Stats().Syncs != 1 || len(a) != 5 || a[4] != o.SyncDelay {
			t.Fatalf("after SyncDelay: durable %d of %d, %+v, acked at %v", w.DurableEnd(), w.End(), w.Stats(), a)
		}
		// SyncBytes pending end the window at once.
		appendN(10) // 1100 framed bytes
		synctest.Wait()
		if a := acked(); w.DurableEnd() != w.End() || w.Stats().Syncs != 2 || len(a) != 15 || a[14] != o.SyncDelay {
			t.Fatalf("SyncBytes did not end the window: durable %d of %d, %+v, acked at %v",
				w.DurableEnd(), w.End(), w.Stats(), a)
		}
		mustClose(t, w)
	})
}

// TestBackpressure: Append blocks while MaxPendingBytes are pending and
// gives up when its context is done.
func TestBackpressure(t *testing.T) {
	gate := newSyncGate()
	o := memOpts(gate.fs(vfs.NewMem()))
	o.MaxPendingBytes, o.MaxRecordBytes = 1000, 400
	w := mustOpen(t, o)
	gate.arm()
	ctx := context.Background()
	// The first record is taken by the writer, which then waits in Sync.
	if _, err := w.Append(ctx, make([]byte, 300), nil); err != nil {
		t.Fatal(err)
	}
	<-gate.entered
	for range 3 {
		if _, err := w.Append(ctx, make([]byte, 300), nil); err != nil {
			t.Fatal(err)
		}
	}
	tctx, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	if _, err := w.Append(tctx, make([]byte, 300), nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Append over MaxPendingBytes: %v, want DeadlineExceeded", err)
	}
	blocked := make(chan error, 1)
	go func() {
		_, err := w.AppendSync(ctx, make([]byte, 300))
		blocked <- err
	}()
	gate.release()
	if err := <-blocked; err != nil {
		t.Fatal(err)
	}
	mustClose(t, w)
}

// TestAppendDoesNotAllocate checks the steady state: payloads are copied
// into reused buffers.
func TestAppendDoesNotAllocate(t *testing.T) {
	gate := newSyncGate()
	o := memOpts(gate.fs(vfs.NewMem()))
	o.MaxPendingBytes = 4 << 20
	w := mustOpen(t, o)
	gate.arm()
	ctx := context.Background()
	p := make([]byte, 100)
	done := func(LSN, error) {}
	if _, err := w.Append(ctx, p, done); err != nil {
		t.Fatal(err)
	}
	<-gate.entered // the writer now waits; the rest stays pending
	allocs := testing.AllocsPerRun(2000, func() {
		if _, err := w.Append(ctx, p, done); err != nil {
			t.Fatal(err)
		}
	})
	gate.release()
	mustClose(t, w)
	if allocs != 0 {
		t.Fatalf("Append allocates %v times per call", allocs)
	}
}

func flipByte(t testing.TB, fs vfs.FS, name string, off int64) {
	t.Helper()
	b := readFile(t, fs, name)
	writeAt(t, fs, name, []byte{b[off] ^ 0x40}, off)
}

func putHeaderCRC(hdr []byte) {
	binary.BigEndian.PutUint32(hdr[28:32], crcOf(hdr[:28]))
}

func readFile(t testing.TB, fs vfs.FS, name string) []byte {
	t.Helper()
	f, err := fs.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	size, err := f.Size()
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, size)
	if _, err := f.ReadAt(b, 0); err != nil && size > 0 {
		t.Fatal(err)
	}
	return b
}

func writeAt(t testing.TB, fs vfs.FS, name string, b []byte, off int64) {
	t.Helper()
	f, err := fs.OpenRW(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
}

func truncate(t testing.TB, fs vfs.FS, name string, size int64) {
	t.Helper()
	f, err := fs.OpenRW(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
}
