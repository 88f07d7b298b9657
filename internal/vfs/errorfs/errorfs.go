// Package errorfs wraps a vfs.FS and fails chosen operations on purpose, so
// tests can drive storage code through every error path it has: a create
// that fails, a sync that fails, a disk that fills up or dies.
//
// Before each operation the wrapper asks its Injector; a nil answer lets the
// operation through to the wrapped FS, an error fails it without touching
// the wrapped FS (an injected Sync failure therefore leaves the data not
// durable, which is the worst a real fsync failure can mean). The one
// exception is a *ShortWriteError on a write, which writes a prefix first.
//
// Files the wrapper opens are wrapped too. They deliberately do not
// implement vfs.OSFiler, so nothing (sendfile, say) can bypass injection.
//
// FS and the injectors in this package are safe for concurrent use.
package errorfs

import (
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/sluice-io/sluice/internal/vfs"
)

// ErrInjected is the error the ready-made injectors return when they are
// given a nil error.
var ErrInjected = errors.New("errorfs: injected error")

// Op is a kind of filesystem operation an Injector can fail.
type Op int

const (
	OpCreate      Op = iota // FS.Create
	OpOpen                  // FS.Open, FS.OpenRW
	OpRead                  // File.ReadAt
	OpWrite                 // File.WriteAt
	OpSync                  // File.Sync
	OpSyncDir               // FS.SyncDir
	OpRename                // FS.Rename; the path is the old name
	OpRemove                // FS.Remove, FS.RemoveAll
	OpTruncate              // File.Truncate
	OpPreallocate           // File.Preallocate
	OpMkdir                 // FS.MkdirAll
	OpReadDir               // FS.ReadDir
	OpStat                  // FS.Stat
	OpSyncFS                // FS.SyncFS
	numOps
)

var opNames = [numOps]string{
	"create", "open", "read", "write", "sync", "syncdir", "rename",
	"remove", "truncate", "preallocate", "mkdir", "readdir", "stat", "syncfs",
}

func (o Op) String() string {
	if o < 0 || o >= numOps {
		return fmt.Sprintf("Op(%d)", int(o))
	}
	return opNames[o]
}

// Injector decides which operations fail.
type Injector interface {
	// MaybeError is called before op runs on path. n is len(p) for
	// OpRead and OpWrite and 0 otherwise. A nil result lets the operation
	// run; anything else fails it. For OpWrite, a *ShortWriteError writes
	// its first N bytes and then fails with its Err.
	MaybeError(op Op, path string, n int) error
}

// InjectorFunc adapts a function to the Injector interface.
type InjectorFunc func(op Op, path string, n int) error

// MaybeError calls fn.
func (fn InjectorFunc) MaybeError(op Op, path string, n int) error { return fn(op, path, n) }

// ShortWriteError, returned by an Injector for OpWrite, makes the wrapper
// write the first N bytes of the buffer and then return N and Err, the way
// os.File.WriteAt reports a disk that filled up mid-write.
type ShortWriteError struct {
	N   int
	Err error
}

func (e *ShortWriteError) Error() string {
	return fmt.Sprintf("errorfs: short write of %d bytes: %v", e.N, e.Err)
}

func (e *ShortWriteError) Unwrap() error { return e.Err }

// FS is a vfs.FS that consults an Injector before every operation.
type FS struct {
	fs  vfs.FS
	inj Injector
}

var _ vfs.FS = (*FS)(nil)

// Wrap returns fs with failures injected by inj. A nil inj injects nothing.
func Wrap(fs vfs.FS, inj Injector) *FS {
	if inj == nil {
		inj = InjectorFunc(func(Op, string, int) error { return nil })
	}
	return &FS{fs: fs, inj: inj}
}

// Unwrap returns the wrapped FS.
func (f *FS) Unwrap() vfs.FS { return f.fs }

func (f *FS) check(op Op, path string, n int) error {
	if err := f.inj.MaybeError(op, path, n); err != nil {
		return &fs.PathError{Op: op.String(), Path: path, Err: err}
	}
	return nil
}

func (f *FS) wrapFile(file vfs.File, err error) (vfs.File, error) {
	if err != nil {
		return nil, err
	}
	return &errFile{File: file, inj: f.inj}, nil
}

func (f *FS) Create(name string) (vfs.File, error) {
	if err := f.check(OpCreate, name, 0); err != nil {
		return nil, err
	}
	return f.wrapFile(f.fs.Create(name))
}

func (f *FS) OpenRW(name string) (vfs.File, error) {
	if err := f.check(OpOpen, name, 0); err != nil {
		return nil, err
	}
	return f.wrapFile(f.fs.OpenRW(name))
}

func (f *FS) Open(name string) (vfs.File, error) {
	if err := f.check(OpOpen, name, 0); err != nil {
		return nil, err
	}
	return f.wrapFile(f.fs.Open(name))
}

func (f *FS) Remove(name string) error {
	if err := f.check(OpRemove, name, 0); err != nil {
		return err
	}
	return f.fs.Remove(name)
}

func (f *FS) RemoveAll(name string) error {
	if err := f.check(OpRemove, name, 0); err != nil {
		return err
	}
	return f.fs.RemoveAll(name)
}

func (f *FS) Rename(oldname, newname string) error {
	if err := f.inj.MaybeError(OpRename, oldname, 0); err != nil {
		return &os.LinkError{Op: OpRename.String(), Old: oldname, New: newname, Err: err}
	}
	return f.fs.Rename(oldname, newname)
}

func (f *FS) MkdirAll(dir string) error {
	if err := f.check(OpMkdir, dir, 0); err != nil {
		return err
	}
	return f.fs.MkdirAll(dir)
}

func (f *FS) ReadDir(dir string) ([]string, error) {
	if err := f.check(OpReadDir, dir, 0); err != nil {
		return nil, err
	}
	return f.fs.ReadDir(dir)
}

func (f *FS) Stat(name string) (os.FileInfo, error) {
	if err := f.check(OpStat, name, 0); err != nil {
		return nil, err
	}
	return f.fs.Stat(name)
}

func (f *FS) SyncDir(dir string) error {
	if err := f.check(OpSyncDir, dir, 0); err != nil {
		return err
	}
	return f.fs.SyncDir(dir)
}

// errFile embeds the wrapped file for Close, Size and Name, which are
// never failed, and intercepts the rest.
type errFile struct {
	vfs.File
	inj Injector
}

func (f *errFile) check(op Op, n int) error {
	if err := f.inj.MaybeError(op, f.Name(), n); err != nil {
		return &fs.PathError{Op: op.String(), Path: f.Name(), Err: err}
	}
	return nil
}

func (f *errFile) ReadAt(p []byte, off int64) (int, error) {
	if err := f.check(OpRead, len(p)); err != nil {
		return 0, err
	}
	return f.File.ReadAt(p, off)
}

func (f *errFile) WriteAt(p []byte, off int64) (int, error) {
	err := f.inj.MaybeError(OpWrite, f.Name(), len(p))
	if err == nil {
		return f.File.WriteAt(p, off)
	}
	var short *ShortWriteError
	if !errors.As(err, &short) {
		return 0, &fs.PathError{Op: OpWrite.String(), Path: f.Name(), Err: err}
	}
	n := min(max(short.N, 0), len(p))
	if n > 0 {
		if m, werr := f.File.WriteAt(p[:n], off); werr != nil {
			return m, werr
		}
	}
	return n, &fs.PathError{Op: OpWrite.String(), Path: f.Name(), Err: short.Err}
}

func (f *errFile) Sync() error {
	if err := f.check(OpSync, 0); err != nil {
		return err
	}
	return f.File.Sync()
}

func (f *errFile) Truncate(size int64) error {
	if err := f.check(OpTruncate, 0); err != nil {
		return err
	}
	return f.File.Truncate(size)
}

func (f *errFile) Preallocate(size int64) error {
	if err := f.check(OpPreallocate, 0); err != nil {
		return err
	}
	return f.File.Preallocate(size)
}
