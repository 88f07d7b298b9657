package vfs

// SyncFS makes every file's data and every directory's entries durable, as
// syncfs(2) does.
func (m *MemFS) SyncFS(string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	var walk func(n *memNode)
	walk = func(n *memNode) {
		if !n.isDir {
			n.syncLocked()
			return
		}
		m.syncDirLocked(n)
		for _, c := range n.children {
			walk(c)
		}
	}
	walk(m.mu.root)
	// Directories no longer reachable by name may still hold unsynced
	// entry changes.
	for d := range m.mu.pending {
		m.syncDirLocked(d)
	}
	return nil
}
