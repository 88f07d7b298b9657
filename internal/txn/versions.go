package txn

// served lists the versions of each API key Do serves, for ApiVersions.
var served = map[int16][2]int16{
	22: {0, 5}, // InitProducerId: v3 KIP-360 producer id and epoch, v4 PRODUCER_FENCED, v5 TRANSACTION_ABORTABLE (never sent here)
	24: {0, 5}, // AddPartitionsToTxn: v2 PRODUCER_FENCED, v4 batched with VerifyOnly (KIP-890 part 1), v5 TRANSACTION_ABORTABLE
	25: {0, 4}, // AddOffsetsToTxn: v2 PRODUCER_FENCED
	26: {0, 4}, // EndTxn: v2 PRODUCER_FENCED; v5 (KIP-890 part 2, an epoch bump per transaction) is not served
	65: {0, 0}, // DescribeTransactions
	66: {0, 2}, // ListTransactions: v1 duration filter, v2 transactional-id pattern
}

// Versions reports the versions of key that Do serves correctly.
func Versions(key int16) (min, max int16, ok bool) {
	v, ok := served[key]
	return v[0], v[1], ok
}
