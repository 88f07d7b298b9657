package wal

import (
	"fmt"
	"hash/crc32"
	"path"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/sluice-io/sluice/internal/vfs"
	"github.com/sluice-io/sluice/internal/vfs/errorfs"
)

// firstFile is the file a WAL opened on an empty directory appends to.
const firstFile = "0000000000000001.wal"

func crcOf(b []byte) uint32 { return crc32.Checksum(b, crc32.MakeTable(crc32.Castagnoli)) }

// opGate holds every op on a file whose name ends with suffix, once
// armed, until released: a test can keep the writer or the preparer busy
// while appends pile up.
type opGate struct {
	op      errorfs.Op
	suffix  string
	armed   atomic.Bool
	entered chan struct{}
	gate    chan struct{}
	once    sync.Once
}

// newSyncGate gates the syncs of the file appends go to first.
func newSyncGate() *opGate { return newGate(errorfs.OpSync, firstFile) }

func newGate(op errorfs.Op, suffix string) *opGate {
	return &opGate{op: op, suffix: suffix, entered: make(chan struct{}, 1), gate: make(chan struct{})}
}

func (g *opGate) fs(inner vfs.FS) vfs.FS {
	return errorfs.Wrap(inner, errorfs.InjectorFunc(func(op errorfs.Op, path string, _ int) error {
		if op == g.op && g.armed.Load() && strings.HasSuffix(path, g.suffix) {
			select {
			case g.entered <- struct{}{}:
			default:
			}
			<-g.gate
		}
		return nil
	}))
}

func (g *opGate) arm()     { g.armed.Store(true) }
func (g *opGate) release() { g.once.Do(func() { close(g.gate) }) }

// dumpDir describes the files of testDir, for failure messages.
func dumpDir(fs vfs.FS) string {
	var sb strings.Builder
	names, err := fs.ReadDir(testDir)
	if err != nil {
		return err.Error()
	}
	for _, n := range names {
		f, err := fs.Open(path.Join(testDir, n))
		if err != nil {
			fmt.Fprintf(&sb, "%s: %v\n", n, err)
			continue
		}
		size, _ := f.Size()
		b := make([]byte, min(size, fileHeaderBytes))
		_, _ = f.ReadAt(b, 0)
		f.Close()
		h, st, reason := decodeFileHeader(b)
		fmt.Fprintf(&sb, "  %s: %d bytes, header seq %d start %d state %d %s\n", n, size, h.seq, h.startLSN, st, reason)
	}
	return sb.String()
}
