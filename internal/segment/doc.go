// Package segment is one piece of a partition's log: a .log file of record
// batches stored exactly as clients sent them, a sparse offset index
// (.index) and a time index (.timeindex). The byte layouts are in
// docs/format/segment.md and docs/format/index.md.
//
// A Segment is not safe for concurrent use on its own: the partition that
// owns it serialises writers and publishes sizes to readers under its lock.
// Reads of bytes below a published size may run concurrently with an append,
// because the log file is only ever appended to.
//
// Lifecycle: Active (the one segment being appended to) -> Sealed (rolled,
// may still hold unsynced bytes) -> Flushed (data and indexes synced) ->
// Archived (a copy in object storage; later) -> Deleted.
package segment
