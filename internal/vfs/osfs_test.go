package vfs_test

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/sluice-io/sluice/internal/vfs"
)

// errClass names an error by what callers test it for, so the OS and MemFS
// transcripts compare equal while their messages differ.
func errClass(err error) string {
	var errno syscall.Errno
	switch {
	case err == nil:
		return "ok"
	case err == io.EOF:
		return "EOF"
	case errors.Is(err, fs.ErrNotExist):
		return "notexist"
	case errors.Is(err, fs.ErrClosed):
		return "closed"
	case errors.As(err, &errno):
		return "errno:" + errno.Error()
	default:
		return "error"
	}
}

// conformance runs one fixed script of operations under root and returns
// a transcript of what each step returned.
func conformance(t *testing.T, fsys vfs.FS, root string) []string {
	var out []string
	p := func(name string) string { return filepath.Join(root, name) }
	log := func(format string, args ...any) { out = append(out, fmt.Sprintf(format, args...)) }
	read := func(f vfs.File, n int, off int64) {
		buf := make([]byte, n)
		got, err := f.ReadAt(buf, off)
		log("read %d@%d: %q %s", n, off, buf[:got], errClass(err))
	}
	size := func(f vfs.File) {
		n, err := f.Size()
		log("size %d %s", n, errClass(err))
	}
	stat := func(name string) {
		fi, err := fsys.Stat(p(name))
		if err != nil {
			log("stat %s: %s", name, errClass(err))
			return
		}
		if fi.IsDir() {
			// A directory's size is the filesystem's business.
			log("stat %s: name %s dir", name, fi.Name())
			return
		}
		log("stat %s: name %s size %d", name, fi.Name(), fi.Size())
	}
	readDir := func(name string) {
		names, err := fsys.ReadDir(p(name))
		log("readdir %s: %q %s", name, names, errClass(err))
	}

	log("mkdir %s", errClass(fsys.MkdirAll(p("d/e"))))
	f, err := fsys.Create(p("d/a"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.WriteAt([]byte("hello"), 0)
	log("write %s", errClass(err))
	_, err = f.WriteAt([]byte("XY"), 7)
	log("write past EOF %s", errClass(err))
	size(f)
	read(f, 9, 0)
	read(f, 4, 7)
	read(f, 4, 20)
	log("sync %s", errClass(f.Sync()))
	log("preallocate %s", errClass(f.Preallocate(1<<16)))
	size(f)
	stat("d/a")
	stat("d")

	log("rename %s", errClass(fsys.Rename(p("d/a"), p("d/b"))))
	stat("d/a")
	stat("d/b")
	read(f, 5, 0) // the handle follows the inode
	log("rename missing %s", errClass(fsys.Rename(p("d/a"), p("d/c"))))
	log("rename into missing dir %s", errClass(fsys.Rename(p("d/b"), p("nodir/b"))))

	for _, name := range []string{"d/c", "d/0"} {
		g, err := fsys.Create(p(name))
		log("create %s %s", name, errClass(err))
		if err == nil {
			log("close %s", errClass(g.Close()))
		}
	}
	readDir("d")
	readDir("d/b")
	readDir("missing")

	log("truncate %s", errClass(f.Truncate(3)))
	read(f, 5, 0)
	log("truncate up %s", errClass(f.Truncate(5)))
	read(f, 5, 0)

	// Create of an existing name truncates the same file.
	g, err := fsys.Create(p("d/b"))
	log("recreate %s", errClass(err))
	size(f)
	if err == nil {
		log("close %s", errClass(g.Close()))
	}

	ro, err := fsys.Open(p("d/b"))
	log("open %s", errClass(err))
	if err == nil {
		_, err = ro.WriteAt([]byte("no"), 0)
		log("write read-only: failed %v", err != nil)
		log("close %s", errClass(ro.Close()))
		_, err = ro.ReadAt(make([]byte, 1), 0)
		log("read closed %s", errClass(err))
	}
	_, err = fsys.Open(p("d/missing"))
	log("open missing %s", errClass(err))
	_, err = fsys.OpenRW(p("d/missing"))
	log("openrw missing %s", errClass(err))

	log("remove %s", errClass(fsys.Remove(p("d/b"))))
	log("remove again %s", errClass(fsys.Remove(p("d/b"))))
	_, err = f.WriteAt([]byte("orphan"), 0)
	log("write removed %s", errClass(err))
	read(f, 6, 0)
	log("close %s", errClass(f.Close()))
	log("remove non-empty dir %s", errClass(fsys.Remove(p("d"))))
	readDir("d")
	log("syncdir %s", errClass(fsys.SyncDir(p("d"))))
	log("removeall %s", errClass(fsys.RemoveAll(p("d"))))
	log("removeall missing %s", errClass(fsys.RemoveAll(p("d"))))
	stat("d")
	readDir(".")
	return out
}

// TestConformance runs the same script against the OS filesystem and
// MemFS: MemFS is only a useful stand-in if it behaves the same.
func TestConformance(t *testing.T) {
	osOut := conformance(t, vfs.Default, t.TempDir())

	m := vfs.NewMem()
	if err := m.MkdirAll("/data"); err != nil {
		t.Fatal(err)
	}
	memOut := conformance(t, m, "/data")

	if !slices.Equal(osOut, memOut) {
		var diff strings.Builder
		for i := range max(len(osOut), len(memOut)) {
			var o, mm string
			if i < len(osOut) {
				o = osOut[i]
			}
			if i < len(memOut) {
				mm = memOut[i]
			}
			mark := "  "
			if o != mm {
				mark = "!="
			}
			fmt.Fprintf(&diff, "%s os:  %s\n   mem: %s\n", mark, o, mm)
		}
		t.Fatalf("OS and MemFS differ:\n%s", diff.String())
	}
	// Spot-check that the script means what we think on both.
	for _, want := range []string{
		`read 9@0: "hello\x00\x00XY" ok`,
		`read 4@7: "XY" EOF`,
		`stat d/a: notexist`,
		`readdir d: ["0" "b" "c" "e"] ok`,
		`read 5@0: "hel\x00\x00" ok`,
		`remove non-empty dir errno:directory not empty`,
		`read 6@0: "orphan" ok`,
	} {
		if !slices.Contains(osOut, want) {
			t.Errorf("transcript lacks %s", want)
		}
	}
}
