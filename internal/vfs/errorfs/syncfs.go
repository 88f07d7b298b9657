package errorfs

import (
	"errors"

	"github.com/sluice-io/sluice/internal/vfs"
)

// SyncFS passes through to the wrapped filesystem's SyncFS, if it has one,
// after asking the injector about OpSyncFS.
func (f *FS) SyncFS(path string) error {
	if err := f.check(OpSyncFS, path, 0); err != nil {
		return err
	}
	s, ok := f.fs.(vfs.SyncFSer)
	if !ok {
		return errors.ErrUnsupported
	}
	return s.SyncFS(path)
}
