// Package vfs is the small filesystem interface the storage packages use, so
// that tests can swap the real filesystem for a crashable in-memory one
// (MemFS) or a fault-injecting wrapper (errorfs).
//
// The interface is positional: files are read and written with ReadAt and
// WriteAt, never through a shared cursor, so one File may serve concurrent
// readers while a single writer appends.
//
// Durability contract, the same for every implementation:
//   - File data is durable only after File.Sync returns nil.
//   - A file's existence (create, rename, remove) is durable only after
//     FS.SyncDir of its parent directory returns nil.
//
// Implementations are safe for concurrent use.
package vfs

import (
	"io"
	"os"
)

// File is an open file.
type File interface {
	io.ReaderAt
	io.WriterAt
	io.Closer
	// Sync makes the file's data durable (fdatasync on Linux).
	Sync() error
	// Truncate changes the file's size.
	Truncate(size int64) error
	// Size returns the file's current size.
	Size() (int64, error)
	// Preallocate reserves space for the first size bytes without
	// changing the file's size, where the filesystem supports it.
	Preallocate(size int64) error
	// Name returns the path the file was opened with.
	Name() string
}

// OSFiler is implemented by files backed by an operating-system file, so
// the network layer can send their bytes with sendfile.
type OSFiler interface {
	OSFile() *os.File
}

// FS is a filesystem.
type FS interface {
	// Create creates or truncates name for reading and writing.
	Create(name string) (File, error)
	// OpenRW opens an existing file for reading and writing.
	OpenRW(name string) (File, error)
	// Open opens an existing file read-only.
	Open(name string) (File, error)
	Remove(name string) error
	RemoveAll(name string) error
	Rename(oldname, newname string) error
	MkdirAll(dir string) error
	// ReadDir returns the names in dir, sorted.
	ReadDir(dir string) ([]string, error)
	// Stat reports whether name exists, its size and whether it is a directory.
	Stat(name string) (os.FileInfo, error)
	// SyncDir makes the directory entries of dir durable.
	SyncDir(dir string) error
}

// SyncFSer is implemented by filesystems that can make every file and
// directory entry durable in one call (syncfs(2) on Linux). A checkpoint
// that would otherwise fsync thousands of files uses it instead: one
// journal commit rather than one per file.
type SyncFSer interface {
	// SyncFS makes everything written to the filesystem holding path
	// durable, data and directory entries alike.
	SyncFS(path string) error
}

// WritebackStarter is implemented by files that can start writing a range
// back to disk without waiting for it (sync_file_range with
// SYNC_FILE_RANGE_WRITE on Linux). It promises no durability; it only
// keeps dirty data from piling up until the next fsync, which would then
// stall everything queued behind it.
type WritebackStarter interface {
	StartWriteback(off, n int64) error
}
