package vfs

import (
	"bytes"
	"cmp"
	"io"
	"io/fs"
	"maps"
	"math/rand/v2"
	"os"
	"path"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

const (
	// memFileBytesMax bounds one in-memory file, so that a write at a wild
	// offset fails with EFBIG instead of allocating the machine away.
	memFileBytesMax = 1 << 30
	// crashPageBytes is the writeback granule CrashClone uses: the kernel
	// writes dirty pages back independently, so one large unsynced write
	// can survive a crash in part.
	crashPageBytes = 4096
)

// MemFS is an in-memory FS that remembers what is durable, so a test can
// ask what a crash at any instant would leave behind (CrashClone).
//
// It follows the durability contract in the package doc literally, the
// way a Linux filesystem with a journal behaves after a power cut:
//   - WriteAt and Truncate are visible to every reader at once but become
//     durable only at the next File.Sync, which makes the file's whole
//     current content (size and bytes) durable.
//   - Create of a new name, Rename, Remove and RemoveAll change directory
//     entries that become durable only at SyncDir of the directory (or Sync
//     of a handle opened on it). A crash keeps, for each directory, some
//     prefix of its unsynced entry changes in the order they were made, as
//     a journal would; a rename across two directories is kept or lost as
//     a whole in both.
//   - MkdirAll is durable at once. This is a simplification: storage code
//     creates its directories at startup and we do not want every test to
//     model losing them.
//   - An open File keeps working after its name is removed or replaced,
//     because on Linux the inode lives while it is open. If the removal is
//     lost in a crash the file comes back with whatever it had made durable.
//
// Errors carry the same syscall.Errno values the OS would return, so
// errors.Is(err, fs.ErrNotExist) and friends behave as with Default.
//
// MemFS is safe for concurrent use; one lock guards the whole tree.
type MemFS struct {
	mu struct {
		sync.RWMutex
		root   *memNode
		nextID uint64
		// pending holds the directories whose log is not empty, so a
		// crash can find every unsynced entry change, including those of
		// directories that are no longer reachable by name.
		pending map[*memNode]struct{}
	}
}

// memNode is an inode: a file or a directory.
type memNode struct {
	// id orders nodes so that CrashClone consumes randomness in a fixed
	// order and a seed replays the same crash.
	id    uint64
	isDir bool

	// Files. data is what readers see. synced is what the last Sync made
	// durable, and unsynced lists the changes since, oldest first, so a
	// crash can replay any subset of them onto synced.
	data     []byte
	synced   []byte
	unsynced []dataChange

	// Directories. children is the live view and syncedChildren the
	// durable one; log holds the entry changes in between, oldest first.
	children       map[string]*memNode
	syncedChildren map[string]*memNode
	log            []*dirOp
}

// dataChange is one unsynced WriteAt or Truncate.
type dataChange struct {
	off      int64
	data     []byte
	truncate bool
	size     int64
}

func (c dataChange) apply(b []byte) []byte {
	if c.truncate {
		return resize(b, c.size)
	}
	if len(c.data) == 0 {
		return b
	}
	if end := c.off + int64(len(c.data)); end > int64(len(b)) {
		b = resize(b, end)
	}
	copy(b[c.off:], c.data)
	return b
}

// resize returns b with the given length, any new bytes zero. It clears
// what a shrink cuts off, so a later grow within capacity reads zeros.
func resize(b []byte, size int64) []byte {
	if size <= int64(len(b)) {
		clear(b[size:])
		return b[:size]
	}
	old := len(b)
	b = slices.Grow(b, int(size)-old)[:size]
	clear(b[old:])
	return b
}

// dirOp is one atomic change to directory entries: a create or remove
// touches one entry, a rename two, possibly in two directories. Every
// directory it touches holds it in its log.
type dirOp struct {
	effects []dirEffect
	dirs    []*memNode
}

type dirEffect struct {
	dir  *memNode
	name string
	node *memNode // nil removes the entry
}

func (op *dirOp) applyTo(entries map[string]*memNode, dir *memNode) {
	for _, e := range op.effects {
		if e.dir != dir {
			continue
		}
		if e.node == nil {
			delete(entries, e.name)
		} else {
			entries[e.name] = e.node
		}
	}
}

// NewMem returns an empty MemFS holding only its root directory.
func NewMem() *MemFS {
	m := &MemFS{}
	m.mu.pending = make(map[*memNode]struct{})
	m.mu.root = m.newNodeLocked(true)
	return m
}

func (m *MemFS) newNodeLocked(dir bool) *memNode {
	m.mu.nextID++
	n := &memNode{id: m.mu.nextID, isDir: dir}
	if dir {
		n.children = make(map[string]*memNode)
		n.syncedChildren = make(map[string]*memNode)
	}
	return n
}

// splitPath cleans name and splits it into components. Relative and
// absolute names mean the same thing; the root has no components.
func splitPath(name string) []string {
	c := path.Clean("/" + name)
	if c == "/" {
		return nil
	}
	return strings.Split(c[1:], "/")
}

func (m *MemFS) walkLocked(parts []string) (*memNode, error) {
	n := m.mu.root
	for _, p := range parts {
		if !n.isDir {
			return nil, syscall.ENOTDIR
		}
		c, ok := n.children[p]
		if !ok {
			return nil, syscall.ENOENT
		}
		n = c
	}
	return n, nil
}

func (m *MemFS) lookupLocked(name string) (*memNode, error) {
	if name == "" {
		return nil, syscall.ENOENT
	}
	return m.walkLocked(splitPath(name))
}

// parentLocked returns the directory that holds name's entry, and the
// entry's name. The root has no entry, so it yields EBUSY as on Linux.
func (m *MemFS) parentLocked(name string) (*memNode, string, error) {
	if name == "" {
		return nil, "", syscall.ENOENT
	}
	parts := splitPath(name)
	if len(parts) == 0 {
		return nil, "", syscall.EBUSY
	}
	dir, err := m.walkLocked(parts[:len(parts)-1])
	if err != nil {
		return nil, "", err
	}
	if !dir.isDir {
		return nil, "", syscall.ENOTDIR
	}
	return dir, parts[len(parts)-1], nil
}

// changeLocked applies effects to the live tree and logs them as one
// unsynced dirOp in every directory they touch.
func (m *MemFS) changeLocked(effects ...dirEffect) *dirOp {
	op := &dirOp{effects: effects}
	for _, e := range effects {
		if e.node == nil {
			delete(e.dir.children, e.name)
		} else {
			e.dir.children[e.name] = e.node
		}
		if !slices.Contains(op.dirs, e.dir) {
			op.dirs = append(op.dirs, e.dir)
		}
	}
	for _, d := range op.dirs {
		d.log = append(d.log, op)
		m.mu.pending[d] = struct{}{}
	}
	return op
}

// commitLocked makes op durable. A journal commits in order, so every
// earlier change in each directory op touches is committed first; for a
// rename across directories that is why syncing either one is enough.
func (m *MemFS) commitLocked(op *dirOp) {
	for _, d := range op.dirs {
		for d.log[0] != op {
			m.commitLocked(d.log[0])
		}
	}
	for _, d := range op.dirs {
		op.applyTo(d.syncedChildren, d)
		d.log[0] = nil
		d.log = d.log[1:]
		if len(d.log) == 0 {
			d.log = nil
			delete(m.mu.pending, d)
		}
	}
}

func (m *MemFS) syncDirLocked(d *memNode) {
	for len(d.log) > 0 {
		m.commitLocked(d.log[0])
	}
}

// Create creates or truncates name for reading and writing. Truncating an
// existing file keeps its inode and is a data change like Truncate.
func (m *MemFS) Create(name string) (File, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	dir, base, err := m.parentLocked(name)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: name, Err: err}
	}
	n, ok := dir.children[base]
	switch {
	case ok && n.isDir:
		return nil, &fs.PathError{Op: "open", Path: name, Err: syscall.EISDIR}
	case ok:
		n.truncateLocked(0)
	default:
		n = m.newNodeLocked(false)
		m.changeLocked(dirEffect{dir: dir, name: base, node: n})
	}
	return &memFile{fs: m, node: n, name: name, writable: true}, nil
}

// OpenRW opens an existing file for reading and writing.
func (m *MemFS) OpenRW(name string) (File, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	n, err := m.lookupLocked(name)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: name, Err: err}
	}
	if n.isDir {
		return nil, &fs.PathError{Op: "open", Path: name, Err: syscall.EISDIR}
	}
	return &memFile{fs: m, node: n, name: name, writable: true}, nil
}

// Open opens an existing file or directory read-only. As with the OS, a
// read-only handle can still Sync, which makes the file durable.
func (m *MemFS) Open(name string) (File, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	n, err := m.lookupLocked(name)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: name, Err: err}
	}
	return &memFile{fs: m, node: n, name: name}, nil
}

// Remove removes a file or an empty directory.
func (m *MemFS) Remove(name string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	dir, base, err := m.parentLocked(name)
	if err == nil {
		err = m.removeLocked(dir, base)
	}
	if err != nil {
		return &fs.PathError{Op: "remove", Path: name, Err: err}
	}
	return nil
}

func (m *MemFS) removeLocked(dir *memNode, base string) error {
	n, ok := dir.children[base]
	if !ok {
		return syscall.ENOENT
	}
	if n.isDir && len(n.children) > 0 {
		return syscall.ENOTEMPTY
	}
	m.changeLocked(dirEffect{dir: dir, name: base})
	return nil
}

// RemoveAll removes name and everything below it, one logged entry
// removal at a time, so a crash can bring back any unsynced part of the
// tree. A missing name is not an error.
func (m *MemFS) RemoveAll(name string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	dir, base, err := m.parentLocked(name)
	if err == syscall.ENOENT {
		return nil
	}
	if err != nil {
		return &fs.PathError{Op: "unlinkat", Path: name, Err: err}
	}
	if _, ok := dir.children[base]; !ok {
		return nil
	}
	m.removeTreeLocked(dir, base)
	return nil
}

func (m *MemFS) removeTreeLocked(dir *memNode, base string) {
	n := dir.children[base]
	if n.isDir {
		for _, name := range slices.Sorted(maps.Keys(n.children)) {
			m.removeTreeLocked(n, name)
		}
	}
	m.changeLocked(dirEffect{dir: dir, name: base})
}

// Rename renames oldname to newname with Linux rename(2) semantics: an
// existing file at newname is replaced atomically, and a directory may
// replace only an empty directory.
func (m *MemFS) Rename(oldname, newname string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.renameLocked(oldname, newname); err != nil {
		return &os.LinkError{Op: "rename", Old: oldname, New: newname, Err: err}
	}
	return nil
}

func (m *MemFS) renameLocked(oldname, newname string) error {
	odir, obase, err := m.parentLocked(oldname)
	if err != nil {
		return err
	}
	n, ok := odir.children[obase]
	if !ok {
		return syscall.ENOENT
	}
	ndir, nbase, err := m.parentLocked(newname)
	if err != nil {
		return err
	}
	if odir == ndir && obase == nbase {
		return nil
	}
	if n.isDir {
		// A directory must not move below itself.
		oparts, nparts := splitPath(oldname), splitPath(newname)
		if len(nparts) > len(oparts) && slices.Equal(nparts[:len(oparts)], oparts) {
			return syscall.EINVAL
		}
	}
	if old, ok := ndir.children[nbase]; ok {
		switch {
		case n.isDir && !old.isDir:
			return syscall.ENOTDIR
		case !n.isDir && old.isDir:
			return syscall.EISDIR
		case old.isDir && len(old.children) > 0:
			return syscall.ENOTEMPTY
		}
	}
	m.changeLocked(dirEffect{dir: odir, name: obase}, dirEffect{dir: ndir, name: nbase, node: n})
	return nil
}

// MkdirAll creates dir and any missing parents. See the type comment for
// why the new directories are durable at once.
func (m *MemFS) MkdirAll(dir string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := m.mu.root
	for _, p := range splitPath(dir) {
		c, ok := n.children[p]
		if !ok {
			c = m.newNodeLocked(true)
			m.mkdirDurableLocked(n, p, c)
		} else if !c.isDir {
			return &fs.PathError{Op: "mkdir", Path: dir, Err: syscall.ENOTDIR}
		}
		n = c
	}
	return nil
}

// mkdirDurableLocked adds a durable entry. If an unsynced change in the
// same directory touched the name (a file removed there, say), the earlier
// changes must commit first, or a crash could bring back the old entry
// over the durable directory, a state no journal can produce.
func (m *MemFS) mkdirDurableLocked(parent *memNode, name string, n *memNode) {
	for _, op := range parent.log {
		for _, e := range op.effects {
			if e.dir == parent && e.name == name {
				m.commitLocked(m.changeLocked(dirEffect{dir: parent, name: name, node: n}))
				return
			}
		}
	}
	parent.children[name] = n
	parent.syncedChildren[name] = n
}

// ReadDir returns the names in dir, sorted.
func (m *MemFS) ReadDir(dir string) ([]string, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	n, err := m.lookupLocked(dir)
	if err == nil && !n.isDir {
		err = syscall.ENOTDIR
	}
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: dir, Err: err}
	}
	return slices.Sorted(maps.Keys(n.children)), nil
}

// Stat reports name's size and whether it is a directory.
func (m *MemFS) Stat(name string) (os.FileInfo, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	n, err := m.lookupLocked(name)
	if err != nil {
		return nil, &fs.PathError{Op: "stat", Path: name, Err: err}
	}
	return memFileInfo{name: path.Base(path.Clean("/" + name)), size: int64(len(n.data)), dir: n.isDir}, nil
}

// SyncDir makes every entry change in dir durable.
func (m *MemFS) SyncDir(dir string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	n, err := m.lookupLocked(dir)
	if err == nil && !n.isDir {
		err = syscall.ENOTDIR
	}
	if err != nil {
		return &fs.PathError{Op: "open", Path: dir, Err: err}
	}
	m.syncDirLocked(n)
	return nil
}

func (n *memNode) truncateLocked(size int64) {
	n.data = resize(n.data, size)
	n.unsynced = append(n.unsynced, dataChange{truncate: true, size: size})
}

func (n *memNode) syncLocked() {
	for _, c := range n.unsynced {
		n.synced = c.apply(n.synced)
	}
	n.unsynced = nil
}

// CrashOptions says how much of the unsynced state a crash keeps.
type CrashOptions struct {
	// Rand decides what of the unsynced state survives. Nil keeps
	// nothing unsynced: the clone holds exactly the durable state.
	Rand *rand.Rand
	// UnsyncedDataPercent is the chance, in percent, that each page of each
	// unsynced write or truncate survives, independently of the others. So
	// a crash can keep a later write and lose an earlier one, leaving a
	// hole that reads as zeros, as page-cache writeback can. 0 keeps only
	// synced data; values outside [0, 100] are clamped.
	UnsyncedDataPercent int
	// TornWrites lets a surviving page of an unsynced write be cut short
	// at a random length.
	TornWrites bool
}

// CrashClone returns a new, independent MemFS holding what a crash at this
// instant could leave on disk: all durable state, plus whatever part of
// the unsynced state opts lets survive. Every unsynced directory keeps a
// uniformly random prefix of its entry changes (none if Rand is nil).
// Everything in the clone is durable, and no file is open in it. m itself
// is not changed and keeps working.
//
// With the same m state, options and Rand seed, the result is the same.
func (m *MemFS) CrashClone(opts CrashOptions) *MemFS {
	m.mu.RLock()
	defer m.mu.RUnlock()
	c := &crasher{
		rnd:     opts.Rand,
		percent: min(max(opts.UnsyncedDataPercent, 0), 100),
		torn:    opts.TornWrites,
		dst:     NewMem(),
		clones:  make(map[*memNode]*memNode),
	}
	c.chooseCuts(slices.SortedFunc(maps.Keys(m.mu.pending), func(a, b *memNode) int {
		return cmp.Compare(a.id, b.id)
	}))
	root := c.dst.mu.root
	c.clones[m.mu.root] = root
	c.fillDir(m.mu.root, root)
	return c.dst
}

type crasher struct {
	rnd     *rand.Rand
	percent int
	torn    bool
	// cut[d] is how many of d's logged entry changes survive.
	cut    map[*memNode]int
	dst    *MemFS
	clones map[*memNode]*memNode
}

// chooseCuts picks how long a prefix of each directory's log survives. A
// change that touches two directories survives only if it is inside both
// prefixes; otherwise the prefix of each directory ends before it. Cuts
// only shrink, so the loop ends.
func (c *crasher) chooseCuts(dirs []*memNode) {
	c.cut = make(map[*memNode]int, len(dirs))
	type at struct {
		op  *dirOp
		dir *memNode
	}
	pos := make(map[at]int)
	for _, d := range dirs {
		if c.rnd != nil {
			c.cut[d] = c.rnd.IntN(len(d.log) + 1)
		}
		for i, op := range d.log {
			pos[at{op, d}] = i
		}
	}
	for changed := true; changed; {
		changed = false
		for _, d := range dirs {
			for i := range c.cut[d] {
				op := d.log[i]
				kept := true
				for _, e := range op.dirs {
					if e != d && pos[at{op, e}] >= c.cut[e] {
						kept = false
					}
				}
				if !kept {
					c.cut[d] = i
					changed = true
					break
				}
			}
		}
	}
}

func (c *crasher) survives() bool {
	if c.rnd == nil || c.percent == 0 {
		return false
	}
	return c.percent == 100 || c.rnd.IntN(100) < c.percent
}

// fillDir fills dst with the crash state of src's entries, in name order
// so a seed replays the same crash.
func (c *crasher) fillDir(src, dst *memNode) {
	entries := maps.Clone(src.syncedChildren)
	for _, op := range src.log[:c.cut[src]] {
		op.applyTo(entries, src)
	}
	for _, name := range slices.Sorted(maps.Keys(entries)) {
		n := entries[name]
		if _, ok := c.clones[n]; ok {
			// Every change moves a node atomically, so each node has at
			// most one entry in any crash state; two mean our own
			// bookkeeping is broken.
			panic("vfs: MemFS crash state reaches a node twice")
		}
		cn := c.dst.newNodeLocked(n.isDir)
		c.clones[n] = cn
		dst.children[name] = cn
		dst.syncedChildren[name] = cn
		if n.isDir {
			c.fillDir(n, cn)
		} else {
			cn.data = c.fileData(n)
			cn.synced = bytes.Clone(cn.data)
		}
	}
}

func (c *crasher) fileData(n *memNode) []byte {
	b := bytes.Clone(n.synced)
	for _, ch := range n.unsynced {
		if ch.truncate {
			if c.survives() {
				b = ch.apply(b)
			}
			continue
		}
		end := ch.off + int64(len(ch.data))
		for off := ch.off; off < end; {
			next := min((off/crashPageBytes+1)*crashPageBytes, end)
			page := ch.data[off-ch.off : next-ch.off]
			if c.survives() {
				if c.torn && c.rnd.IntN(2) == 0 {
					page = page[:c.rnd.IntN(len(page))]
				}
				b = dataChange{off: off, data: page}.apply(b)
			}
			off = next
		}
	}
	return b
}

// memFile is an open handle on a memNode. It holds the node, not the name,
// so it keeps working after the name is removed or renamed.
type memFile struct {
	fs       *MemFS
	node     *memNode
	name     string
	writable bool
	closed   atomic.Bool
}

func (f *memFile) err(op string, err error) error {
	return &fs.PathError{Op: op, Path: f.name, Err: err}
}

func (f *memFile) ReadAt(p []byte, off int64) (int, error) {
	if f.closed.Load() {
		return 0, f.err("read", fs.ErrClosed)
	}
	if off < 0 {
		return 0, f.err("readat", syscall.EINVAL)
	}
	f.fs.mu.RLock()
	defer f.fs.mu.RUnlock()
	if f.node.isDir {
		return 0, f.err("read", syscall.EISDIR)
	}
	if off >= int64(len(f.node.data)) {
		return 0, io.EOF
	}
	n := copy(p, f.node.data[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (f *memFile) WriteAt(p []byte, off int64) (int, error) {
	if f.closed.Load() {
		return 0, f.err("write", fs.ErrClosed)
	}
	if !f.writable {
		return 0, f.err("write", syscall.EBADF)
	}
	if off < 0 {
		return 0, f.err("writeat", syscall.EINVAL)
	}
	if off > memFileBytesMax-int64(len(p)) {
		return 0, f.err("write", syscall.EFBIG)
	}
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if len(p) == 0 {
		return 0, nil
	}
	ch := dataChange{off: off, data: bytes.Clone(p)}
	f.node.data = ch.apply(f.node.data)
	f.node.unsynced = append(f.node.unsynced, ch)
	return len(p), nil
}

func (f *memFile) Truncate(size int64) error {
	if f.closed.Load() {
		return f.err("truncate", fs.ErrClosed)
	}
	if !f.writable || size < 0 {
		return f.err("truncate", syscall.EINVAL)
	}
	if size > memFileBytesMax {
		return f.err("truncate", syscall.EFBIG)
	}
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	f.node.truncateLocked(size)
	return nil
}

// Sync makes the file's current content durable. On a handle opened on a
// directory it makes the directory's entries durable, as fsync does.
func (f *memFile) Sync() error {
	if f.closed.Load() {
		return f.err("sync", fs.ErrClosed)
	}
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if f.node.isDir {
		f.fs.syncDirLocked(f.node)
	} else {
		f.node.syncLocked()
	}
	return nil
}

func (f *memFile) Size() (int64, error) {
	if f.closed.Load() {
		return 0, f.err("stat", fs.ErrClosed)
	}
	f.fs.mu.RLock()
	defer f.fs.mu.RUnlock()
	return int64(len(f.node.data)), nil
}

// Preallocate does nothing: preallocation changes neither the size nor
// the bytes a reader or a crash can see.
func (f *memFile) Preallocate(size int64) error {
	if f.closed.Load() {
		return f.err("fallocate", fs.ErrClosed)
	}
	if size < 0 {
		return f.err("fallocate", syscall.EINVAL)
	}
	return nil
}

func (f *memFile) Close() error {
	if f.closed.Swap(true) {
		return f.err("close", fs.ErrClosed)
	}
	return nil
}

func (f *memFile) Name() string { return f.name }

type memFileInfo struct {
	name string
	size int64
	dir  bool
}

func (i memFileInfo) Name() string { return i.name }
func (i memFileInfo) Size() int64  { return i.size }
func (i memFileInfo) Mode() fs.FileMode {
	if i.dir {
		return fs.ModeDir | 0o755
	}
	return 0o644
}
func (i memFileInfo) ModTime() time.Time { return time.Time{} }
func (i memFileInfo) IsDir() bool        { return i.dir }
func (i memFileInfo) Sys() any           { return nil }
