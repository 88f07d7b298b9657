//go:build linux

package server

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// sendfileChunkBytes is the most sent under one write deadline.
const sendfileChunkBytes = 4 << 20

// sendfile sends n bytes of f from off to the connection's socket with
// sendfile(2). The offset is passed explicitly, so the kernel neither reads
// nor moves f's cursor and concurrent responses on one file cannot
// interfere. When the socket is full it waits in the runtime poller, which
// honours the write deadline. handled is false, with nothing sent, when the
// file system does not support sendfile and the caller should copy.
func (c *conn) sendfile(f *os.File, off, n int64) (sent int64, handled bool, err error) {
	dst, err := c.tcp.SyscallConn()
	if err != nil {
		return 0, true, err
	}
	src, serr := f.SyscallConn()
	if serr != nil {
		return 0, false, nil
	}
	handled = true
	// Control keeps f's descriptor open while we use it.
	cerr := src.Control(func(sfd uintptr) {
		for sent < n && err == nil && handled {
			if err = c.armWrite(); err != nil {
				return
			}
			chunk := int(min(n-sent, sendfileChunkBytes))
			werr := dst.Write(func(dfd uintptr) bool {
				for {
					m, e := unix.Sendfile(int(dfd), int(sfd), &off, chunk)
					switch {
					case e == nil && m > 0:
						sent += int64(m)
						return true
					case e == nil:
						// Zero bytes: the file ended early. Without
						// this check the loop would spin.
						err = fmt.Errorf("%w: %s ended at offset %d while being sent", errBadResponse, f.Name(), off)
						return true
					case e == unix.EINTR:
						continue
					case e == unix.EAGAIN:
						return false // wait for the socket in the poller
					case sent == 0 && (e == unix.EINVAL || e == unix.ENOSYS || e == unix.EOPNOTSUPP):
						handled = false
						return true
					default:
						err = os.NewSyscallError("sendfile", e)
						return true
					}
				}
			})
			if werr != nil && err == nil {
				err = werr
			}
		}
	})
	if cerr != nil && err == nil {
		err = cerr
	}
	return sent, handled, err
}
