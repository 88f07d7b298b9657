// Package group is the group coordinator: consumer groups of the classic
// protocol (JoinGroup, SyncGroup, Heartbeat, LeaveGroup) and committed
// offsets (OffsetCommit, OffsetFetch, OffsetDelete), with the admin APIs
// DescribeGroups, ListGroups and DeleteGroups, as Kafka's GroupCoordinator
// serves them, and transactional offsets (TxnOffsetCommit, KIP-98 and
// KIP-447): pending per (group, producer) until the broker reports the
// transaction's marker with CompleteTxn (txnoffsets.go has the rules).
//
// Ownership: all mutable state belongs to one goroutine that reads a
// bounded channel (Coordinator.Do). The group rules are a pure state
// machine (classicGroup, state): no I/O, no goroutines, logical time
// passed in, outputs returned as effects (responses to send, records to
// append with a continuation). The goroutine only carries out effects and
// sleeps until the earliest deadline (session expiry, join and sync
// timeouts, the initial rebalance delay, offset retention).
//
// Durability: state is made durable in the offsets log (__consumer_offsets)
// through the Log interface, in Kafka's record formats
// (docs/format/groups.md). A commit is acknowledged, and visible, only
// once its records are durable; a failed append is answered with Kafka's
// error mapping and changes nothing. Load rebuilds groups and offsets
// from the log at startup.
//
// Consumer-protocol (KIP-848) groups: ConsumerGroupHeartbeat and
// ConsumerGroupDescribe drive the state machine of internal/group/consumer,
// one per group, on the same goroutine. A group id is either classic or
// consumer, as in Kafka: a joining heartbeat converts an empty classic group
// (its offsets stay) and a JoinGroup converts an empty consumer group; a
// non-empty group of the other protocol is GROUP_ID_NOT_FOUND for a
// heartbeat and INCONSISTENT_GROUP_PROTOCOL for a JoinGroup. A heartbeat is
// answered once its records are durable; at most one append per consumer
// group is in flight (later heartbeats wait behind it), and a failed one is
// answered COORDINATOR_NOT_AVAILABLE and the group rebuilt from the latest
// durable record of each of its keys, which the coordinator keeps. Commits
// and fetches from members are checked against their member epoch; the
// broker calls TopicsChanged so that groups follow topic metadata.
package group
