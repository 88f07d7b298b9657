// Package txn is the transaction coordinator: producer ids for idempotent
// producers, and transactions (KIP-98) with InitProducerId,
// AddPartitionsToTxn, AddOffsetsToTxn and EndTxn, plus the admin APIs
// DescribeTransactions and ListTransactions (KIP-664), as Kafka's
// TransactionCoordinator serves them.
//
// Ownership: all mutable state belongs to one goroutine that reads a
// bounded channel (Coordinator.Do, Coordinator.Verify). The rules are a
// pure state machine (state): no I/O, no goroutines, logical time passed
// in, outputs returned as effects (responses, appends to the transaction
// log, marker writes, each with a continuation). The goroutine carries
// out effects and sleeps until the earliest deadline: the next timeout
// and expiry scan (Options.AbortCheckInterval) or a retry.
//
// Durability: every transition of a transactional id is a
// TxnMetadataValue record in __transaction_state, through the Log
// interface, in Kafka's format (docs/format/txn.md), appended before the
// transition is acknowledged; while it is in flight, other requests for
// the id are answered CONCURRENT_TRANSACTIONS. Producer ids are handed
// out from blocks whose end is recorded first (a record of our own), so
// a restart never hands out an id twice.
//
// Ending a transaction: PrepareCommit or PrepareAbort is made durable,
// the producer is answered, the markers are written (Markers), then
// CompleteCommit or CompleteAbort is appended. A failed marker write or
// Complete* append is retried with backoff until it succeeds; the
// transaction stays prepared meanwhile. Load completes every transaction
// it finds prepared the same way (markers are idempotent on the
// partitions), so a crash between the steps loses nothing.
//
// Fencing: InitProducerId bumps the epoch, aborting an ongoing
// transaction first; a transaction older than its timeout is aborted with
// a bumped epoch. Kafka's PrepareEpochFence is not a separate record
// here: the bump and PrepareAbort are one append, so an epoch is never
// bumped in memory before it is durable.
//
// Not served: EndTxn v5 (KIP-890 part 2, an epoch bump per transaction)
// and two-phase commit (KIP-939).
package txn
