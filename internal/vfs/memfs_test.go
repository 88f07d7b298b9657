package vfs_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"path"
	"slices"
	"sync"
	"syscall"
	"testing"

	"github.com/sluice-io/sluice/internal/vfs"
)

const pageBytes = 4096 // the writeback granule MemFS.CrashClone uses

func seeded(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, 0)) }

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func writeFile(t *testing.T, m vfs.FS, name string, data []byte) vfs.File {
	t.Helper()
	f, err := m.Create(name)
	must(t, err)
	if len(data) > 0 {
		_, err = f.WriteAt(data, 0)
		must(t, err)
	}
	return f
}

// readAll returns the whole content of name, or nil and false if it does
// not exist.
func readAll(t *testing.T, m vfs.FS, name string) ([]byte, bool) {
	t.Helper()
	f, err := m.Open(name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, false
	}
	must(t, err)
	defer f.Close()
	size, err := f.Size()
	must(t, err)
	b := make([]byte, size)
	if _, err := f.ReadAt(b, 0); err != nil && err != io.EOF {
		t.Fatal(err)
	}
	return b, true
}

func exists(t *testing.T, m vfs.FS, name string) bool {
	t.Helper()
	_, err := m.Stat(name)
	if errors.Is(err, fs.ErrNotExist) {
		return false
	}
	must(t, err)
	return true
}

func TestMemSyncedDataSurvivesEveryCrash(t *testing.T) {
	m := vfs.NewMem()
	must(t, m.MkdirAll("wal"))
	want := bytes.Repeat([]byte("durable!"), 1000)
	f := writeFile(t, m, "wal/000001.log", want)
	must(t, f.Sync())
	must(t, m.SyncDir("wal"))

	for seed := range uint64(50) {
		for _, pct := range []int{0, 50, 100} {
			c := m.CrashClone(vfs.CrashOptions{Rand: seeded(seed), UnsyncedDataPercent: pct, TornWrites: true})
			got, ok := readAll(t, c, "wal/000001.log")
			if !ok || !bytes.Equal(got, want) {
				t.Fatalf("seed %d pct %d: synced file lost or changed (exists %v, %d bytes)", seed, pct, ok, len(got))
			}
		}
	}
}

func TestMemUnsyncedDataLost(t *testing.T) {
	m := vfs.NewMem()
	f := writeFile(t, m, "f", []byte("synced"))
	must(t, f.Sync())
	must(t, m.SyncDir("."))
	_, err := f.WriteAt([]byte("-unsynced"), 6)
	must(t, err)
	_, err = f.WriteAt([]byte("S"), 0)
	must(t, err)

	// Readers see everything at once.
	if got, _ := readAll(t, m, "f"); string(got) != "Synced-unsynced" {
		t.Fatalf("live content %q", got)
	}
	for _, opts := range []vfs.CrashOptions{{}, {Rand: seeded(1)}, {Rand: seeded(2), UnsyncedDataPercent: 0, TornWrites: true}} {
		if got, _ := readAll(t, m.CrashClone(opts), "f"); string(got) != "synced" {
			t.Fatalf("%+v: crash kept unsynced data: %q", opts, got)
		}
	}
	// Everything unsynced survives at 100%.
	if got, _ := readAll(t, m.CrashClone(vfs.CrashOptions{Rand: seeded(1), UnsyncedDataPercent: 100}), "f"); string(got) != "Synced-unsynced" {
		t.Fatalf("100%% crash: %q", got)
	}

	// A truncate is a data change too: durable only at the next Sync.
	must(t, f.Sync())
	must(t, f.Truncate(2))
	if got, _ := readAll(t, m.CrashClone(vfs.CrashOptions{}), "f"); string(got) != "Synced-unsynced" {
		t.Fatalf("unsynced truncate survived: %q", got)
	}
	must(t, f.Sync())
	if got, _ := readAll(t, m.CrashClone(vfs.CrashOptions{}), "f"); string(got) != "Sy" {
		t.Fatalf("synced truncate lost: %q", got)
	}
}

// TestMemCrashHolesAndTornWrites checks that, across seeds, a crash can
// keep a later write without an earlier one (a hole of zeros) and can tear
// a write, and that it never invents bytes.
func TestMemCrashHolesAndTornWrites(t *testing.T) {
	m := vfs.NewMem()
	f := writeFile(t, m, "seg", nil)
	must(t, f.Sync())
	must(t, m.SyncDir("/"))
	a := bytes.Repeat([]byte{'a'}, pageBytes)
	b := bytes.Repeat([]byte{'b'}, pageBytes)
	_, err := f.WriteAt(a, 0)
	must(t, err)
	_, err = f.WriteAt(b, pageBytes)
	must(t, err)

	var hole, torn, all, none bool
	for seed := range uint64(200) {
		got, ok := readAll(t, m.CrashClone(vfs.CrashOptions{Rand: seeded(seed), UnsyncedDataPercent: 50, TornWrites: true}), "seg")
		if !ok {
			t.Fatalf("seed %d: synced file vanished", seed)
		}
		if len(got) > 2*pageBytes {
			t.Fatalf("seed %d: crash grew the file to %d bytes", seed, len(got))
		}
		for i, c := range got {
			if want := "ab"[i/pageBytes]; c != want && c != 0 {
				t.Fatalf("seed %d: byte %d is %q, neither written nor zero", seed, i, c)
			}
		}
		switch {
		case len(got) == 0:
			none = true
		case len(got) == 2*pageBytes && got[0] == 0 && got[pageBytes-1] == 0 && got[pageBytes] == 'b':
			hole = true
		case bytes.Equal(got, append(slices.Clip(a), b...)):
			all = true
		}
		// A torn page has its start but not its end.
		for p := 0; p < len(got); p += pageBytes {
			end := min(p+pageBytes, len(got))
			if got[p] != 0 && (end-p < pageBytes || got[end-1] == 0) {
				torn = true
			}
		}
	}
	if !hole || !torn || !all || !none {
		t.Fatalf("200 seeds did not show every outcome: hole %v torn %v all %v none %v", hole, torn, all, none)
	}
}

// TestMemLargeWriteSurvivesByPage checks that one unsynced write spanning
// several pages can survive in part, page by page.
func TestMemLargeWriteSurvivesByPage(t *testing.T) {
	m := vfs.NewMem()
	f := writeFile(t, m, "f", nil)
	must(t, f.Sync())
	must(t, m.SyncDir("."))
	_, err := f.WriteAt(bytes.Repeat([]byte{'x'}, 4*pageBytes), 0)
	must(t, err)
	var partial bool
	for seed := range uint64(50) {
		got, _ := readAll(t, m.CrashClone(vfs.CrashOptions{Rand: seeded(seed), UnsyncedDataPercent: 50}), "f")
		if len(got)%pageBytes != 0 {
			t.Fatalf("seed %d: untorn crash left %d bytes, not whole pages", seed, len(got))
		}
		if n := bytes.Count(got, []byte{'x'}); n > 0 && n < len(got) {
			partial = true
		}
	}
	if !partial {
		t.Fatal("no seed kept a later page of a write without an earlier one")
	}
}

func TestMemDirOpsRevert(t *testing.T) {
	m := vfs.NewMem()
	must(t, m.MkdirAll("d"))
	old := writeFile(t, m, "d/old", []byte("old"))
	must(t, old.Sync())
	must(t, old.Close())
	gone := writeFile(t, m, "d/gone", []byte("gone"))
	must(t, gone.Sync())
	must(t, gone.Close())
	must(t, m.SyncDir("d"))

	created := writeFile(t, m, "d/new", []byte("new"))
	must(t, created.Sync()) // data durable, entry not
	must(t, m.Rename("d/old", "d/renamed"))
	must(t, m.Remove("d/gone"))

	c := m.CrashClone(vfs.CrashOptions{})
	if exists(t, c, "d/new") {
		t.Error("created file survived without SyncDir")
	}
	if got, ok := readAll(t, c, "d/old"); !ok || string(got) != "old" || exists(t, c, "d/renamed") {
		t.Errorf("rename not reverted: old %q %v", got, ok)
	}
	if got, ok := readAll(t, c, "d/gone"); !ok || string(got) != "gone" {
		t.Errorf("removed file did not come back with its durable content: %q %v", got, ok)
	}

	// fsync of a handle opened on the directory is a SyncDir, as on Linux.
	dh, err := m.Open("d")
	must(t, err)
	must(t, dh.Sync())
	must(t, dh.Close())
	c = m.CrashClone(vfs.CrashOptions{})
	names, err := c.ReadDir("d")
	must(t, err)
	if !slices.Equal(names, []string{"new", "renamed"}) {
		t.Errorf("after SyncDir the crash left %q", names)
	}
	if got, _ := readAll(t, c, "d/new"); string(got) != "new" {
		t.Errorf("synced data of new file: %q", got)
	}
}

// TestMemDirOpsPrefix checks that a crash keeps a prefix of each
// directory's unsynced changes, and that across seeds it keeps none, all,
// and something in between.
func TestMemDirOpsPrefix(t *testing.T) {
	m := vfs.NewMem()
	must(t, m.MkdirAll("d"))
	const n = 8
	for i := range n {
		f := writeFile(t, m, fmt.Sprintf("d/%d", i), nil)
		must(t, f.Close())
	}
	// The last change renames the first file: it can only survive with all
	// the creates before it.
	must(t, m.Rename("d/0", "d/z"))
	seen := map[int]bool{}
	for seed := range uint64(100) {
		c := m.CrashClone(vfs.CrashOptions{Rand: seeded(seed)})
		names, err := c.ReadDir("d")
		must(t, err)
		var want []string
		k := len(names)
		if slices.Contains(names, "z") {
			k = n + 1
			for i := 1; i < n; i++ {
				want = append(want, fmt.Sprint(i))
			}
			want = append(want, "z")
		} else {
			for i := range k {
				want = append(want, fmt.Sprint(i))
			}
		}
		if !slices.Equal(names, want) {
			t.Fatalf("seed %d: crash kept %q, not a prefix of the changes", seed, names)
		}
		seen[k] = true
	}
	if !seen[0] || !seen[n+1] || len(seen) < 4 {
		t.Fatalf("prefix lengths seen: %v", seen)
	}
}

// TestMemCrossDirRenameAtomic checks that a rename between directories is
// kept or lost as a whole, and that syncing either directory commits it.
func TestMemCrossDirRenameAtomic(t *testing.T) {
	setup := func() *vfs.MemFS {
		m := vfs.NewMem()
		must(t, m.MkdirAll("a"))
		must(t, m.MkdirAll("b"))
		f := writeFile(t, m, "a/x", []byte("x"))
		must(t, f.Sync())
		must(t, m.SyncDir("a"))
		must(t, m.Rename("a/x", "b/x"))
		return m
	}
	m := setup()
	var inA, inB bool
	for seed := range uint64(50) {
		c := m.CrashClone(vfs.CrashOptions{Rand: seeded(seed)})
		a, b := exists(t, c, "a/x"), exists(t, c, "b/x")
		if a == b {
			t.Fatalf("seed %d: rename half applied: a/x %v b/x %v", seed, a, b)
		}
		inA, inB = inA || a, inB || b
	}
	if !inA || !inB {
		t.Fatalf("both outcomes not seen: a %v b %v", inA, inB)
	}
	for _, dir := range []string{"a", "b"} {
		m := setup()
		must(t, m.SyncDir(dir))
		for seed := range uint64(10) {
			c := m.CrashClone(vfs.CrashOptions{Rand: seeded(seed)})
			if exists(t, c, "a/x") || !exists(t, c, "b/x") {
				t.Fatalf("SyncDir(%s) did not commit the rename", dir)
			}
		}
	}
}

func TestMemMkdirAllIsDurable(t *testing.T) {
	m := vfs.NewMem()
	must(t, m.MkdirAll("/x/y/z"))
	c := m.CrashClone(vfs.CrashOptions{})
	if fi, err := c.Stat("x/y/z"); err != nil || !fi.IsDir() {
		t.Fatalf("MkdirAll not durable: %v", err)
	}
	// A directory made where an unsynced removal freed the name must not
	// let a crash bring the old file back over it.
	f := writeFile(t, m, "x/n", []byte("file"))
	must(t, f.Sync())
	must(t, m.SyncDir("x"))
	must(t, m.Remove("x/n"))
	must(t, m.MkdirAll("x/n"))
	for seed := range uint64(10) {
		c := m.CrashClone(vfs.CrashOptions{Rand: seeded(seed)})
		if fi, err := c.Stat("x/n"); err != nil || !fi.IsDir() {
			t.Fatalf("seed %d: x/n is not the durable directory: %v", seed, err)
		}
	}
}

func TestMemOpenHandleAfterRemoveAndRename(t *testing.T) {
	m := vfs.NewMem()
	f := writeFile(t, m, "a", []byte("one"))
	must(t, f.Sync())
	must(t, m.SyncDir("."))

	must(t, m.Remove("a"))
	if exists(t, m, "a") {
		t.Fatal("removed name still there")
	}
	_, err := f.WriteAt([]byte("two"), 3)
	must(t, err)
	buf := make([]byte, 6)
	if n, err := f.ReadAt(buf, 0); n != 6 || err != nil || string(buf) != "onetwo" {
		t.Fatalf("read through removed handle: %d %v %q", n, err, buf)
	}
	// Syncing the orphan makes its data durable; an unsynced removal that
	// a crash undoes brings that data back.
	must(t, f.Sync())
	if got, _ := readAll(t, m.CrashClone(vfs.CrashOptions{}), "a"); string(got) != "onetwo" {
		t.Fatalf("revived file: %q", got)
	}
	must(t, m.SyncDir("."))
	if exists(t, m.CrashClone(vfs.CrashOptions{}), "a") {
		t.Fatal("synced removal undone")
	}

	g := writeFile(t, m, "b", []byte("b"))
	must(t, m.Rename("b", "c"))
	_, err = g.WriteAt([]byte("!"), 1)
	must(t, err)
	if got, _ := readAll(t, m, "c"); string(got) != "b!" {
		t.Fatalf("write through renamed handle: %q", got)
	}
	if g.Name() != "b" {
		t.Fatalf("Name after rename %q, want the name it was opened with", g.Name())
	}
	// Replacing a name leaves the old inode with the handle.
	h := writeFile(t, m, "d", []byte("new"))
	must(t, m.Rename("d", "c"))
	if got, _ := readAll(t, m, "c"); string(got) != "new" {
		t.Fatalf("replaced: %q", got)
	}
	if n, err := g.ReadAt(buf[:2], 0); n != 2 || err != nil || string(buf[:2]) != "b!" {
		t.Fatalf("replaced handle: %q %v", buf[:2], err)
	}
	must(t, h.Close())
}

func TestMemCrashCloneIndependent(t *testing.T) {
	m := vfs.NewMem()
	f := writeFile(t, m, "f", []byte("base"))
	must(t, f.Sync())
	must(t, m.SyncDir("."))
	_, err := f.WriteAt([]byte("+more"), 4)
	must(t, err)
	g := writeFile(t, m, "g", []byte("g"))

	opts := func() vfs.CrashOptions {
		return vfs.CrashOptions{Rand: seeded(7), UnsyncedDataPercent: 50, TornWrites: true}
	}
	c1 := m.CrashClone(opts())

	// Changing the clone leaves m alone.
	cf, err := c1.OpenRW("f")
	must(t, err)
	_, err = cf.WriteAt([]byte("CLONE"), 0)
	must(t, err)
	must(t, c1.Remove("f"))
	must(t, c1.MkdirAll("only-in-clone"))
	if got, _ := readAll(t, m, "f"); string(got) != "base+more" {
		t.Fatalf("clone write reached m: %q", got)
	}
	if exists(t, m, "only-in-clone") {
		t.Fatal("clone mkdir reached m")
	}

	// m keeps its unsynced state: the same seed gives the same crash.
	c2 := m.CrashClone(opts())
	c3 := m.CrashClone(opts())
	for _, name := range []string{"f", "g"} {
		b2, ok2 := readAll(t, c2, name)
		b3, ok3 := readAll(t, c3, name)
		if ok2 != ok3 || !bytes.Equal(b2, b3) {
			t.Fatalf("%s: same seed, different crash", name)
		}
	}

	// Changing m leaves the clones alone, and m still works.
	_, err = g.WriteAt([]byte("GG"), 0)
	must(t, err)
	must(t, g.Sync())
	must(t, m.SyncDir("."))
	if got, _ := readAll(t, m.CrashClone(vfs.CrashOptions{}), "g"); string(got) != "GG" {
		t.Fatalf("m after clones: %q", got)
	}
	if got, ok := readAll(t, c2, "g"); ok && string(got) == "GG" {
		t.Fatal("m write reached a clone")
	}

	// Everything in a clone is durable: crashing it again changes nothing.
	c4 := c2.CrashClone(vfs.CrashOptions{})
	for _, name := range []string{"f", "g"} {
		b2, ok2 := readAll(t, c2, name)
		b4, ok4 := readAll(t, c4, name)
		if ok2 != ok4 || !bytes.Equal(b2, b4) {
			t.Fatalf("%s: clone holds non-durable state", name)
		}
	}
}

func TestMemConcurrentReadersAndWriter(t *testing.T) {
	m := vfs.NewMem()
	w := writeFile(t, m, "log", nil)
	const records, recordBytes = 500, 16
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	wg.Go(func() {
		rec := make([]byte, recordBytes)
		for i := range records {
			for j := range rec {
				rec[j] = byte(i)
			}
			if _, err := w.WriteAt(rec, int64(i*recordBytes)); err != nil {
				errs <- err
				return
			}
			if i%50 == 0 {
				if err := w.Sync(); err != nil {
					errs <- err
					return
				}
			}
		}
	})
	for range 3 {
		wg.Go(func() {
			r, err := m.Open("log")
			if err != nil {
				errs <- err
				return
			}
			defer r.Close()
			buf := make([]byte, recordBytes)
			for i := range 2 * records {
				k := i % records
				n, err := r.ReadAt(buf, int64(k*recordBytes))
				if err != nil && err != io.EOF {
					errs <- err
					return
				}
				// A record is written whole under the lock: a reader sees
				// all of it or none of it.
				if n == recordBytes && bytes.Count(buf, buf[:1]) != recordBytes {
					errs <- fmt.Errorf("torn record %d seen live: %v", k, buf)
					return
				}
			}
		})
	}
	wg.Go(func() {
		for seed := range uint64(20) {
			c := m.CrashClone(vfs.CrashOptions{Rand: seeded(seed), UnsyncedDataPercent: 50})
			if _, err := c.Stat("log"); err != nil && !errors.Is(err, fs.ErrNotExist) {
				errs <- err
				return
			}
		}
	})
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestMemErrorsAndEdges(t *testing.T) {
	m := vfs.NewMem()
	for _, op := range []func() error{
		func() error { _, err := m.Open("missing"); return err },
		func() error { _, err := m.OpenRW("missing"); return err },
		func() error { _, err := m.Stat("missing"); return err },
		func() error { _, err := m.ReadDir("missing"); return err },
		func() error { return m.Remove("missing") },
		func() error { return m.Rename("missing", "x") },
		func() error { _, err := m.Create("no/dir/f"); return err },
		func() error { return m.SyncDir("missing") },
	} {
		if err := op(); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("want ErrNotExist, got %v", err)
		}
	}
	must(t, m.RemoveAll("missing"))

	// Relative and absolute names, "." and "/" are the same places.
	f := writeFile(t, m, "/a/../f", []byte("x"))
	for _, name := range []string{"f", "/f", "./f", "//f"} {
		if !exists(t, m, name) {
			t.Errorf("%q not found", name)
		}
	}
	for _, root := range []string{".", "/", ""} {
		names, err := m.ReadDir(root)
		if root == "" {
			if err == nil {
				t.Error("ReadDir(\"\") succeeded")
			}
			continue
		}
		must(t, err)
		if !slices.Equal(names, []string{"f"}) {
			t.Errorf("ReadDir(%q) = %q", root, names)
		}
	}
	if fi, err := m.Stat("/"); err != nil || !fi.IsDir() {
		t.Errorf("root stat: %v", err)
	}

	// Writes past EOF extend with zeros; reads past EOF return io.EOF.
	_, err := f.WriteAt([]byte("y"), 3)
	must(t, err)
	buf := make([]byte, 8)
	n, err := f.ReadAt(buf, 0)
	if n != 4 || err != io.EOF || string(buf[:n]) != "x\x00\x00y" {
		t.Errorf("ReadAt: %d %v %q", n, err, buf[:n])
	}
	if n, err := f.ReadAt(buf, 10); n != 0 || err != io.EOF {
		t.Errorf("ReadAt past EOF: %d %v", n, err)
	}
	if _, err := f.WriteAt([]byte("z"), -1); err == nil {
		t.Error("negative offset write succeeded")
	}
	if _, err := f.WriteAt([]byte("z"), 1<<40); !errors.Is(err, syscall.EFBIG) {
		t.Errorf("huge offset write: %v", err)
	}
	must(t, f.Preallocate(1<<20))
	if size, _ := f.Size(); size != 4 {
		t.Errorf("Preallocate changed size to %d", size)
	}

	ro, err := m.Open("f")
	must(t, err)
	if _, err := ro.WriteAt([]byte("w"), 0); !errors.Is(err, syscall.EBADF) {
		t.Errorf("write on read-only handle: %v", err)
	}
	if err := ro.Truncate(0); err == nil {
		t.Error("truncate on read-only handle succeeded")
	}
	must(t, ro.Close())
	if err := ro.Close(); !errors.Is(err, fs.ErrClosed) {
		t.Errorf("second Close: %v", err)
	}
	for _, op := range []func() error{
		func() error { _, err := ro.ReadAt(buf, 0); return err },
		func() error { _, err := ro.WriteAt(buf, 0); return err },
		func() error { return ro.Sync() },
		func() error { _, err := ro.Size(); return err },
		func() error { return ro.Truncate(0) },
		func() error { return ro.Preallocate(1) },
	} {
		if err := op(); !errors.Is(err, fs.ErrClosed) {
			t.Errorf("closed handle: %v", err)
		}
	}

	must(t, m.MkdirAll("dir/sub"))
	if _, err := m.Create("dir"); !errors.Is(err, syscall.EISDIR) {
		t.Errorf("Create on a directory: %v", err)
	}
	if err := m.Remove("dir"); !errors.Is(err, syscall.ENOTEMPTY) {
		t.Errorf("Remove non-empty dir: %v", err)
	}
	if err := m.Rename("dir", "dir/sub/x"); err == nil {
		t.Error("moved a directory below itself")
	}
	if err := m.MkdirAll("f/x"); !errors.Is(err, syscall.ENOTDIR) {
		t.Errorf("MkdirAll through a file: %v", err)
	}
	if _, err := m.ReadDir("f"); !errors.Is(err, syscall.ENOTDIR) {
		t.Errorf("ReadDir of a file: %v", err)
	}
	if err := m.Remove("/"); err == nil {
		t.Error("removed the root")
	}
	must(t, m.RemoveAll("dir"))
	if exists(t, m, "dir/sub") || exists(t, m, "dir") {
		t.Error("RemoveAll left entries")
	}
}

// TestMemRandomWorkload drives random operations, crashes at random points
// (which must never panic or invent files), then syncs everything and
// checks that a crash keeps exactly the live state.
func TestMemRandomWorkload(t *testing.T) {
	for seed := range uint64(30) {
		rnd := seeded(seed)
		m := vfs.NewMem()
		dirs := []string{".", "a", "a/b", "c"}
		for _, d := range dirs {
			must(t, m.MkdirAll(d))
		}
		files := []string{"x", "y", "z"}
		pick := func(s []string) string { return s[rnd.IntN(len(s))] }
		name := func() string { return path.Join(pick(dirs), pick(files)) }
		var open []vfs.File
		for step := range 200 {
			switch rnd.IntN(9) {
			case 0:
				n := name()
				if f, err := m.Create(n); err == nil {
					open = append(open, f)
				}
			case 1, 2:
				if len(open) > 0 {
					b := bytes.Repeat([]byte{byte(step)}, 1+rnd.IntN(3*pageBytes))
					_, err := open[rnd.IntN(len(open))].WriteAt(b, int64(rnd.IntN(2*pageBytes)))
					must(t, err)
				}
			case 3:
				if len(open) > 0 {
					must(t, open[rnd.IntN(len(open))].Truncate(int64(rnd.IntN(pageBytes))))
				}
			case 4:
				for _, f := range open {
					must(t, f.Sync())
				}
			case 5:
				_ = m.Rename(name(), name())
			case 6:
				_ = m.Remove(name())
			case 7:
				must(t, m.SyncDir(pick(dirs)))
			case 8:
				c := m.CrashClone(vfs.CrashOptions{Rand: rnd, UnsyncedDataPercent: rnd.IntN(101), TornWrites: rnd.IntN(2) == 0})
				for _, d := range dirs {
					names, err := c.ReadDir(d)
					must(t, err)
					for _, n := range names {
						if !slices.Contains(files, n) && !slices.Contains(dirs, path.Join(d, n)) {
							t.Fatalf("seed %d: crash invented %s/%s", seed, d, n)
						}
					}
				}
			}
		}
		for _, f := range open {
			must(t, f.Sync())
		}
		for _, d := range dirs {
			must(t, m.SyncDir(d))
		}
		c := m.CrashClone(vfs.CrashOptions{Rand: rnd, UnsyncedDataPercent: 50, TornWrites: true})
		for _, d := range dirs {
			live, err := m.ReadDir(d)
			must(t, err)
			crashed, err := c.ReadDir(d)
			must(t, err)
			if !slices.Equal(live, crashed) {
				t.Fatalf("seed %d: %s: live %q, crash %q after syncing all", seed, d, live, crashed)
			}
			for _, n := range live {
				full := path.Join(d, n)
				if slices.Contains(dirs, full) {
					continue
				}
				a, _ := readAll(t, m, full)
				b, _ := readAll(t, c, full)
				if !bytes.Equal(a, b) {
					t.Fatalf("seed %d: %s differs after syncing all", seed, full)
				}
			}
		}
	}
}
