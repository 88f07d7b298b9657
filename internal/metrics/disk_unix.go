//go:build unix

package metrics

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// DiskSpace returns a func for Options.DiskSpace that reports the free
// (available to unprivileged users) and total bytes of dir's file system.
func DiskSpace(dir string) func() (freeBytes, totalBytes int64, err error) {
	return func() (int64, int64, error) {
		var st unix.Statfs_t
		if err := unix.Statfs(dir, &st); err != nil {
			return 0, 0, fmt.Errorf("metrics: statfs %s: %w", dir, err)
		}
		bs := int64(st.Bsize)
		return int64(st.Bavail) * bs, int64(st.Blocks) * bs, nil
	}
}
