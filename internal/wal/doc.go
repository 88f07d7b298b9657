// Package wal is Sluice's shared write-ahead log: every partition appends
// to this one log, and one fdatasync covers everything written in a commit
// window, so the cost of durability does not grow with the partition
// count. It knows nothing of Kafka; payloads are opaque bytes.
//
// # Contract
//
//   - Append copies the payload into the pending batch and returns its
//     LSN. A single writer goroutine writes the whole batch and syncs it;
//     appends that arrive meanwhile share the next sync (group commit).
//   - A record's done callback reports success only after the fdatasync
//     covering it returned nil. Callbacks run one at a time, in LSN order,
//     on a goroutine of their own.
//   - Errors stick: after a failed write, sync or file creation (ENOSPC
//     included) every pending record completes with an error wrapping
//     ErrFailed and the cause, every later Append returns it, and nothing
//     is acknowledged again until the log is reopened.
//   - Open recovers what the files hold, stopping at a torn tail, and
//     always starts a fresh file at the recovered end.
//   - Memory is bounded: Append blocks once MaxPendingBytes are waiting
//     to be written.
//
// The on-disk format and the recovery rules are in docs/format/wal.md.
//
// A WAL is safe for concurrent use.
package wal
