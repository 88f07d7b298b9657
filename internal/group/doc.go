// Package group is the group coordinator: consumer groups of the classic
// protocol (JoinGroup, SyncGroup, Heartbeat, LeaveGroup) and committed
// offsets (OffsetCommit, OffsetFetch, OffsetDelete), with the admin APIs
// DescribeGroups, ListGroups and DeleteGroups, as Kafka's GroupCoordinator
// serves them.
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
// The consumer-protocol (KIP-848) groups live in internal/group/consumer
// and are wired in later; ConsumerGroupHeartbeat and ConsumerGroupDescribe
// are answered UNSUPPORTED_VERSION until then.
package group
