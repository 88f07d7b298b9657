package wal

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/sluice-io/sluice/internal/vfs"
)

// Defaults and limits for Options.
const (
	DefaultFileBytes       = 64 << 20
	DefaultSyncBytes       = 4 << 20
	DefaultMaxPendingBytes = 64 << 20
	DefaultMaxRecordBytes  = 16 << 20
	DefaultRecycleFiles    = 4
	DefaultPrepareAhead    = 2

	// minFileBytes keeps room for the header and a few small records; a
	// smaller file would rotate on almost every append.
	minFileBytes = 128
	// maxFileBytes bounds one preallocation.
	maxFileBytes = 1 << 32
	// maxPendingBytesLimit bounds the memory the two batch buffers hold.
	maxPendingBytesLimit = 1 << 32
	// maxSyncDelay bounds how long an acknowledgement may be held back
	// on purpose.
	maxSyncDelay = time.Second
	// maxRecycleFiles bounds the disk space the recycle pool may hold.
	maxRecycleFiles = 64
	// maxPrepareAhead bounds the disk space held by files prepared
	// before they are needed.
	maxPrepareAhead = 8
)

// Options configure a WAL. The zero value of every field but Dir means
// "use the default".
type Options struct {
	// FS is the filesystem; nil means vfs.Default.
	FS vfs.FS
	// Dir holds the log's files. It is created if missing and must not
	// be shared with anything else.
	Dir string

	// FileBytes is the size each file is preallocated to and rotated at.
	// A record too big for a fresh file gets a file of its own, which
	// grows past FileBytes.
	FileBytes int64
	// SyncDelay, if positive, holds a write back for up to this long
	// after the first pending append, to gather more records into the
	// same sync. Zero writes as soon as the writer is free: group commit
	// then comes only from appends that arrive while a sync runs.
	SyncDelay time.Duration
	// SyncBytes ends a SyncDelay wait early once this many bytes are
	// pending.
	SyncBytes int
	// MaxPendingBytes bounds the framed bytes appended but not yet handed
	// to the filesystem. Append blocks (until its context is done) while
	// a record would exceed it. Memory held by the WAL is about twice
	// this: one buffer filling while the other is written.
	MaxPendingBytes int
	// MaxRecordBytes is the largest payload Append accepts.
	MaxRecordBytes int
	// RecycleFiles is how many trimmed files are kept for reuse instead
	// of removed, so that rotation rarely allocates disk blocks. Negative
	// disables recycling.
	RecycleFiles int
	// PrepareAhead is how many files the preparer keeps ready (created or
	// recycled, zero-filled, synced) beyond the one being written. With
	// one, a writer faster than the preparer's zero-filling waits for it
	// at a rotation; with two it has a whole file's time to spare.
	PrepareAhead int

	// Logger receives rotation, recovery and failure events; nil
	// discards them.
	Logger *slog.Logger
	// OnSync, if set, is called on the writer goroutine after each
	// successful sync with the framed bytes and the records it covered
	// and how long the write and sync took (a metrics hook; it must be
	// quick).
	OnSync func(bytes, records int, d time.Duration)
}

// withDefaults returns a copy of o with zero fields replaced by defaults.
func (o Options) withDefaults() Options {
	if o.FS == nil {
		o.FS = vfs.Default
	}
	if o.FileBytes == 0 {
		o.FileBytes = DefaultFileBytes
	}
	if o.SyncBytes == 0 {
		o.SyncBytes = DefaultSyncBytes
	}
	if o.MaxPendingBytes == 0 {
		o.MaxPendingBytes = DefaultMaxPendingBytes
	}
	if o.MaxRecordBytes == 0 {
		o.MaxRecordBytes = DefaultMaxRecordBytes
		// A small MaxPendingBytes caps the default rather than failing
		// validation for a field the caller did not set.
		if lim := o.MaxPendingBytes - frameHeaderBytes; lim > 0 && o.MaxRecordBytes > lim {
			o.MaxRecordBytes = lim
		}
	}
	if o.RecycleFiles == 0 {
		o.RecycleFiles = DefaultRecycleFiles
	} else if o.RecycleFiles < 0 {
		o.RecycleFiles = 0
	}
	if o.PrepareAhead == 0 {
		o.PrepareAhead = DefaultPrepareAhead
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return o
}

// Validate reports every problem with o at once. Zero fields are valid:
// they take their defaults.
func (o *Options) Validate() error {
	d := o.withDefaults()
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("wal: options: "+format, args...))
	}
	if d.Dir == "" {
		bad("Dir is empty")
	}
	if d.FileBytes < minFileBytes || d.FileBytes > maxFileBytes {
		bad("FileBytes %d is outside [%d, %d]", d.FileBytes, minFileBytes, int64(maxFileBytes))
	}
	if d.SyncDelay < 0 || d.SyncDelay > maxSyncDelay {
		bad("SyncDelay %v is outside [0, %v]", d.SyncDelay, maxSyncDelay)
	}
	if d.SyncBytes < 0 {
		bad("SyncBytes %d is negative", d.SyncBytes)
	}
	if d.PrepareAhead < 1 || d.PrepareAhead > maxPrepareAhead {
		bad("PrepareAhead %d is outside [1, %d]", d.PrepareAhead, maxPrepareAhead)
	}
	if d.MaxPendingBytes < 0 || int64(d.MaxPendingBytes) > maxPendingBytesLimit {
		bad("MaxPendingBytes %d is outside [0, %d]", d.MaxPendingBytes, int64(maxPendingBytesLimit))
	}
	if d.MaxRecordBytes < 0 || d.MaxRecordBytes > maxRecordBytesLimit {
		bad("MaxRecordBytes %d is outside [0, %d]", d.MaxRecordBytes, maxRecordBytesLimit)
	} else if d.MaxPendingBytes >= 0 && d.MaxRecordBytes+frameHeaderBytes > d.MaxPendingBytes {
		// Otherwise an Append of the largest record could never find room.
		bad("MaxRecordBytes %d plus its %d-byte frame exceeds MaxPendingBytes %d",
			d.MaxRecordBytes, frameHeaderBytes, d.MaxPendingBytes)
	}
	if d.RecycleFiles > maxRecycleFiles {
		bad("RecycleFiles %d is above the maximum %d", o.RecycleFiles, maxRecycleFiles)
	}
	return errors.Join(errs...)
}
