// Package storage is Sluice's storage engine: one shared write-ahead log in
// front of many partition logs, with checkpoints, recovery and retention.
//
// Write path (see DESIGN.md): Engine.Append validates a batch and assigns
// its offsets under the partition's lock, appends a WAL record; the WAL's
// group commit covers it with one fdatasync shared by every partition
// written in that window; then, on the WAL's completion goroutine and in WAL
// order, the batch is written into the partition's active segment (page
// cache) and becomes readable, and the caller's callback runs. Nothing is
// acknowledged before the fsync that covers it.
//
// Checkpoint: the engine remembers the WAL position up to which every
// record has been applied, flushes (fsyncs) every partition changed since
// the last checkpoint, records the position and each partition's flushed
// state in the checkpoint file (written to a temporary file, synced, renamed
// into place, directory synced), and only then trims the WAL below it.
//
// Recovery: read the checkpoint, open every partition trusting what the
// checkpoint says is flushed and verifying the rest with CRCs (torn tails
// cut), then replay the WAL from the checkpoint position; replay skips what
// the segments already hold, so it is idempotent.
//
// Compaction: for partitions with cleanup.policy=compact, a cleaner
// goroutine compacts the dirtiest partition (partition.Compact) every
// CleanerBackoff, one at a time, within CleanerDedupeBufferBytes of key map
// and CleanerIOBytesPerSecond, and only below what the last checkpoint made
// durable. Engine.Compact runs a pass now.
//
// Producers: each partition keeps the state of its idempotent and
// transactional producers (internal/producer), checked at Append. Every
// checkpoint's flush writes a snapshot of that state next to the segments
// (docs/format/producer.md), so recovery loads the newest snapshot the
// checkpoint covers and scans only the log after it; a partition without
// one is scanned whole.
//
// An Engine is safe for concurrent use.
package storage
