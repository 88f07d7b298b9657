package errorfs_test

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/sluice-io/sluice/internal/vfs"
	"github.com/sluice-io/sluice/internal/vfs/errorfs"
)

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func content(t *testing.T, fsys vfs.FS, name string) string {
	t.Helper()
	f, err := fsys.Open(name)
	if errors.Is(err, fs.ErrNotExist) {
		return "<missing>"
	}
	must(t, err)
	defer f.Close()
	size, err := f.Size()
	must(t, err)
	b := make([]byte, size)
	if _, err := f.ReadAt(b, 0); err != nil && err != io.EOF {
		t.Fatal(err)
	}
	return string(b)
}

func TestOnIndexFailsOnce(t *testing.T) {
	m := vfs.NewMem()
	w := errorfs.Wrap(m, errorfs.OnIndex(1, nil, errorfs.OpWrite))
	f, err := w.Create("f")
	must(t, err)
	var errs []error
	for i := range 4 {
		_, err := f.WriteAt([]byte{'a' + byte(i)}, int64(i))
		errs = append(errs, err)
	}
	for i, err := range errs {
		if (i == 1) != errors.Is(err, errorfs.ErrInjected) {
			t.Errorf("write %d: %v", i, err)
		}
	}
	var pe *fs.PathError
	if !errors.As(errs[1], &pe) || pe.Path != "f" || pe.Op != "write" {
		t.Errorf("injected error does not name op and path: %v", errs[1])
	}
	// The failed write wrote nothing.
	if got := content(t, m, "f"); got != "a\x00cd" {
		t.Errorf("content %q", got)
	}
	// Other ops are not counted or failed.
	must(t, f.Sync())
	must(t, w.SyncDir("."))
}

func TestAfterIsADeadDisk(t *testing.T) {
	m := vfs.NewMem()
	dead := errors.New("dead disk")
	w := errorfs.Wrap(m, errorfs.After(2, dead, errorfs.OpSync, errorfs.OpSyncDir))
	f, err := w.Create("f")
	must(t, err)
	must(t, f.Sync())
	must(t, w.SyncDir("."))
	for range 3 {
		if err := f.Sync(); !errors.Is(err, dead) {
			t.Fatalf("sync after the disk died: %v", err)
		}
		if err := w.SyncDir("."); !errors.Is(err, dead) {
			t.Fatalf("syncdir after the disk died: %v", err)
		}
	}
	// Ops outside the set still work.
	_, err = f.WriteAt([]byte("x"), 0)
	must(t, err)
	_, err = w.Stat("f")
	must(t, err)
}

func TestNoEmptyOpsMeansEveryOp(t *testing.T) {
	w := errorfs.Wrap(vfs.NewMem(), errorfs.OnIndex(2, nil))
	must(t, w.MkdirAll("d"))
	_, err := w.Create("d/f")
	must(t, err)
	if _, err := w.Stat("d/f"); !errors.Is(err, errorfs.ErrInjected) {
		t.Fatalf("third op: %v", err)
	}
	if err := w.Rename("d/f", "d/g"); err != nil {
		t.Fatalf("fourth op: %v", err)
	}
}

func TestNoSpaceAfter(t *testing.T) {
	m := vfs.NewMem()
	w := errorfs.Wrap(m, errorfs.NoSpaceAfter(10))
	f, err := w.Create("f")
	must(t, err)
	if n, err := f.WriteAt([]byte("012345"), 0); n != 6 || err != nil {
		t.Fatalf("first write: %d %v", n, err)
	}
	// The write that crosses the limit writes what fits.
	n, err := f.WriteAt([]byte("6789AB"), 6)
	if n != 4 || !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("crossing write: %d %v", n, err)
	}
	if n, err := f.WriteAt([]byte("C"), 10); n != 0 || !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("write when full: %d %v", n, err)
	}
	if got := content(t, m, "f"); got != "0123456789" {
		t.Fatalf("content %q", got)
	}
	// Everything but writes goes on working.
	must(t, f.Sync())
	must(t, f.Truncate(2))
	if n, err := f.WriteAt(nil, 0); n != 0 || err != nil {
		t.Fatalf("empty write when full: %d %v", n, err)
	}
	buf := make([]byte, 2)
	if _, err := f.ReadAt(buf, 0); err != nil || string(buf) != "01" {
		t.Fatalf("read when full: %q %v", buf, err)
	}
}

func TestNoSpaceAfterConcurrent(t *testing.T) {
	m := vfs.NewMem()
	const limitBytes = 1000
	w := errorfs.Wrap(m, errorfs.NoSpaceAfter(limitBytes))
	f, err := w.Create("f")
	must(t, err)
	var written atomic.Int64
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 100 {
				n, _ := f.WriteAt(make([]byte, 7), int64((g*100+i)*7))
				written.Add(int64(n))
			}
		})
	}
	wg.Wait()
	if written.Load() != limitBytes {
		t.Fatalf("wrote %d bytes through a %d-byte disk", written.Load(), limitBytes)
	}
}

// workload is a small durable write: the steps a log append goes through.
func workload(fsys vfs.FS) error {
	if err := fsys.MkdirAll("wal"); err != nil {
		return err
	}
	f, err := fsys.Create("wal/1.log")
	if err != nil {
		return err
	}
	defer f.Close()
	for i := range 3 {
		if _, err := f.WriteAt([]byte(fmt.Sprintf("rec%d;", i)), int64(i*5)); err != nil {
			return err
		}
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := fsys.SyncDir("wal"); err != nil {
		return err
	}
	return fsys.Rename("wal/1.log", "wal/done.log")
}

// TestCountThenFailEach is the crash-at-the-k-th-op pattern: count the
// operations of a workload, then fail each in turn and check that the
// failure reaches the caller.
func TestCountThenFailEach(t *testing.T) {
	counter := errorfs.NewCounter()
	must(t, workload(errorfs.Wrap(vfs.NewMem(), counter)))
	total := counter.Count()
	if total != 8 {
		t.Fatalf("workload has %d ops, want 8 (mkdir, create, 3 writes, sync, syncdir, rename)", total)
	}
	for k := range total {
		c := errorfs.NewCounter()
		m := vfs.NewMem()
		err := workload(errorfs.Wrap(m, errorfs.Any(c, errorfs.OnIndex(k, nil))))
		if !errors.Is(err, errorfs.ErrInjected) {
			t.Fatalf("failing op %d: workload returned %v", k, err)
		}
		// Any asks every injector, so the counter saw the failing op too.
		if c.Count() != k+1 {
			t.Fatalf("failing op %d: counter saw %d ops", k, c.Count())
		}
		if k < total-1 && content(t, m, "wal/done.log") != "<missing>" {
			t.Fatalf("failing op %d: workload finished anyway", k)
		}
	}
}

func TestOnIndexConcurrentFiresOnce(t *testing.T) {
	w := errorfs.Wrap(vfs.NewMem(), errorfs.OnIndex(50, nil, errorfs.OpStat))
	must(t, w.MkdirAll("d"))
	var failed atomic.Int64
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 50 {
				if _, err := w.Stat("d"); errors.Is(err, errorfs.ErrInjected) {
					failed.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if failed.Load() != 1 {
		t.Fatalf("OnIndex fired %d times", failed.Load())
	}
}

// TestComposesWithCrashClone checks that an injected Sync or SyncDir
// failure leaves the state non-durable, as a real one may.
func TestComposesWithCrashClone(t *testing.T) {
	m := vfs.NewMem()
	w := errorfs.Wrap(m, errorfs.OnIndex(1, nil, errorfs.OpSync, errorfs.OpSyncDir))
	f, err := w.Create("f")
	must(t, err)
	must(t, f.Sync()) // op 0
	if err := w.SyncDir("."); !errors.Is(err, errorfs.ErrInjected) {
		t.Fatalf("syncdir: %v", err) // op 1 fails: the entry is not durable
	}
	_, err = f.WriteAt([]byte("data"), 0)
	must(t, err)
	if content(t, m.CrashClone(vfs.CrashOptions{}), "f") != "<missing>" {
		t.Fatal("file survived although the SyncDir failed")
	}
	w2 := errorfs.Wrap(m, errorfs.OnIndex(0, nil, errorfs.OpSync))
	f2, err := w2.OpenRW("f")
	must(t, err)
	if err := f2.Sync(); !errors.Is(err, errorfs.ErrInjected) {
		t.Fatalf("sync: %v", err)
	}
	must(t, w2.SyncDir("."))
	if got := content(t, m.CrashClone(vfs.CrashOptions{}), "f"); got != "" {
		t.Fatalf("data durable after a failed Sync: %q", got)
	}
	must(t, f2.Sync()) // the retry works
	if got := content(t, m.CrashClone(vfs.CrashOptions{}), "f"); got != "data" {
		t.Fatalf("data after a good Sync: %q", got)
	}
}

func TestFailedMetadataOpsChangeNothing(t *testing.T) {
	m := vfs.NewMem()
	must(t, m.MkdirAll("d"))
	f, err := m.Create("d/a")
	must(t, err)
	must(t, f.Close())
	w := errorfs.Wrap(m, errorfs.After(0, nil, errorfs.OpRename, errorfs.OpRemove, errorfs.OpCreate, errorfs.OpMkdir, errorfs.OpTruncate, errorfs.OpPreallocate, errorfs.OpOpen, errorfs.OpReadDir))
	var le *os.LinkError
	if err := w.Rename("d/a", "d/b"); !errors.Is(err, errorfs.ErrInjected) || !errors.As(err, &le) {
		t.Errorf("rename: %v (want an *os.LinkError)", err)
	}
	if err := w.Remove("d/a"); !errors.Is(err, errorfs.ErrInjected) {
		t.Errorf("remove: %v", err)
	}
	if err := w.RemoveAll("d"); !errors.Is(err, errorfs.ErrInjected) {
		t.Errorf("removeall: %v", err)
	}
	if _, err := w.Create("d/c"); !errors.Is(err, errorfs.ErrInjected) {
		t.Errorf("create: %v", err)
	}
	if err := w.MkdirAll("e"); !errors.Is(err, errorfs.ErrInjected) {
		t.Errorf("mkdir: %v", err)
	}
	if _, err := w.Open("d/a"); !errors.Is(err, errorfs.ErrInjected) {
		t.Errorf("open: %v", err)
	}
	if _, err := w.OpenRW("d/a"); !errors.Is(err, errorfs.ErrInjected) {
		t.Errorf("openrw: %v", err)
	}
	if _, err := w.ReadDir("d"); !errors.Is(err, errorfs.ErrInjected) {
		t.Errorf("readdir: %v", err)
	}
	names, err := m.ReadDir("d")
	must(t, err)
	if len(names) != 1 || names[0] != "a" {
		t.Errorf("failed ops changed the tree: %q", names)
	}
	if _, err := m.Stat("e"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("failed mkdir made e: %v", err)
	}
}

func TestFileOpsFail(t *testing.T) {
	m := vfs.NewMem()
	w := errorfs.Wrap(m, errorfs.After(0, nil, errorfs.OpRead, errorfs.OpTruncate, errorfs.OpPreallocate))
	f, err := w.Create("f")
	must(t, err)
	_, err = f.WriteAt([]byte("abc"), 0)
	must(t, err)
	if _, err := f.ReadAt(make([]byte, 1), 0); !errors.Is(err, errorfs.ErrInjected) {
		t.Errorf("read: %v", err)
	}
	if err := f.Truncate(0); !errors.Is(err, errorfs.ErrInjected) {
		t.Errorf("truncate: %v", err)
	}
	if err := f.Preallocate(10); !errors.Is(err, errorfs.ErrInjected) {
		t.Errorf("preallocate: %v", err)
	}
	if size, err := f.Size(); size != 3 || err != nil {
		t.Errorf("size after failed truncate: %d %v", size, err)
	}
	if f.Name() != "f" {
		t.Errorf("name %q", f.Name())
	}
	must(t, f.Close())
}

func TestWrappedOSFilesHideOSFile(t *testing.T) {
	dir := t.TempDir()
	w := errorfs.Wrap(vfs.Default, nil)
	if w.Unwrap() != vfs.Default {
		t.Fatal("Unwrap")
	}
	f, err := w.Create(filepath.Join(dir, "f"))
	must(t, err)
	defer f.Close()
	if _, ok := f.(vfs.OSFiler); ok {
		t.Fatal("wrapped file exposes its *os.File, which would bypass injection")
	}
	_, err = f.WriteAt([]byte("x"), 0)
	must(t, err)
	must(t, f.Sync())
}

func TestOpString(t *testing.T) {
	for op, want := range map[errorfs.Op]string{
		errorfs.OpCreate: "create", errorfs.OpSyncDir: "syncdir", errorfs.OpStat: "stat", errorfs.Op(99): "Op(99)",
	} {
		if op.String() != want {
			t.Errorf("%d: %q", int(op), op.String())
		}
	}
}
