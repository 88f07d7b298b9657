package group

// served lists the versions of each API key Do serves, for ApiVersions.
// Every version kmsg knows is served in full; see the notes.
var served = map[int16][2]int16{
	11: {0, 9},  // JoinGroup: v4 MEMBER_ID_REQUIRED, v5 static members, v9 SkipAssignment
	14: {0, 5},  // SyncGroup: v5 protocol type and name checked
	12: {0, 4},  // Heartbeat
	13: {0, 5},  // LeaveGroup: v3 batch leave
	8:  {0, 10}, // OffsetCommit: v10 topic ids; v2-v4 retention time is ignored, as Kafka 2.1+ does
	9:  {0, 10}, // OffsetFetch: v8 several groups, v10 topic ids; v9 member fields are for consumer groups
	28: {0, 6},  // TxnOffsetCommit: v3 member fields (KIP-447), v6 topic ids
	47: {0, 0},  // OffsetDelete
	42: {0, 3},  // DeleteGroups
	15: {0, 6},  // DescribeGroups
	16: {0, 5},  // ListGroups: v4 states filter, v5 types filter
	68: {0, 1},  // ConsumerGroupHeartbeat (KIP-848): v1 regex subscriptions
	69: {0, 1},  // ConsumerGroupDescribe: v1 member type
}

// Versions reports the versions of key that Do serves correctly.
func Versions(key int16) (min, max int16, ok bool) {
	v, ok := served[key]
	return v[0], v[1], ok
}
