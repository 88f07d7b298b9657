package vfs

import (
	"errors"
	"fmt"
	"io"
)

// ErrTooLarge is returned by ReadFile for a file above its bound.
var ErrTooLarge = errors.New("vfs: file too large")

// ReadFile returns the whole of the file at path, refusing (ErrTooLarge)
// one of more than maxBytes when maxBytes is positive. It is for the small
// files Sluice keeps beside its logs: indexes, snapshots, metadata.
func ReadFile(fsys FS, path string, maxBytes int64) ([]byte, error) {
	f, err := fsys.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	size, err := f.Size()
	if err != nil {
		return nil, err
	}
	if maxBytes > 0 && size > maxBytes {
		return nil, fmt.Errorf("%w: %s: %d bytes, at most %d", ErrTooLarge, path, size, maxBytes)
	}
	b := make([]byte, size)
	n, err := f.ReadAt(b, 0)
	if n == len(b) {
		return b, nil
	}
	if err == nil || err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return nil, fmt.Errorf("vfs: read %s: %w", path, err)
}
