//go:build !unix

package metrics

import "errors"

// DiskSpace returns a func for Options.DiskSpace; off Unix it reports an
// error, which leaves the disk metrics out.
func DiskSpace(dir string) func() (freeBytes, totalBytes int64, err error) {
	return func() (int64, int64, error) { return 0, 0, errors.New("metrics: disk space not supported here") }
}
