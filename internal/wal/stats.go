package wal

import "time"

// Stats is a snapshot of a WAL's counters since Open.
type Stats struct {
	Appends     uint64        // records accepted by Append
	Records     uint64        // records covered by a successful sync
	Bytes       uint64        // bytes written and synced (frames and file headers)
	Syncs       uint64        // successful write+sync rounds, one per group commit
	SyncTime    time.Duration // total time spent writing and syncing
	SyncTimeMax time.Duration // longest single write+sync
	Rotations   uint64        // files the writer moved on to
	// RotationWaits counts rotations at which the next file was not
	// ready yet, and RotationWait is the time the writer (and so every
	// append) spent waiting for it.
	RotationWaits uint64
	RotationWait  time.Duration
	Files         int  // live .wal files, the one appends go to included
	PoolFiles     int  // trimmed files waiting to be recycled
	Failed        bool // the WAL has latched a failure
}

// Stats returns a snapshot of the counters. It is cheap: a few atomic
// loads and two short critical sections.
func (w *WAL) Stats() Stats {
	s := Stats{
		Appends:       w.stats.appends.Load(),
		Records:       w.stats.records.Load(),
		Bytes:         w.stats.bytes.Load(),
		Syncs:         w.stats.syncs.Load(),
		SyncTime:      time.Duration(w.stats.syncNanos.Load()),
		SyncTimeMax:   time.Duration(w.stats.syncMaxNanos.Load()),
		Rotations:     w.stats.rotations.Load(),
		RotationWaits: w.stats.rotationWaits.Load(),
		RotationWait:  time.Duration(w.stats.rotationWaitNanos.Load()),
	}
	w.mu.Lock()
	s.Files = len(w.mu.files)
	s.Failed = w.mu.err != nil
	w.mu.Unlock()
	w.pool.Lock()
	s.PoolFiles = len(w.pool.seqs)
	w.pool.Unlock()
	return s
}
