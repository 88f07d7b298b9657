package txn

import (
	"maps"
	"regexp"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// describe is DescribeTransactions (KIP-664).
func (st *state) describe(req *kmsg.DescribeTransactionsRequest) *kmsg.DescribeTransactionsResponse {
	resp := req.ResponseKind().(*kmsg.DescribeTransactionsResponse)
	for _, id := range req.TransactionalIDs {
		s := kmsg.NewDescribeTransactionsResponseTransactionState()
		s.TransactionalID = id
		s.ProducerID, s.ProducerEpoch, s.StartTimestamp = -1, -1, -1
		t := st.txns[id]
		switch {
		case id == "":
			s.ErrorCode = kerr.InvalidRequest.Code
		case t == nil || t.state == kmsg.TransactionStateDead:
			s.ErrorCode = kerr.TransactionalIDNotFound.Code
		default:
			s.State = t.state.String()
			s.TimeoutMillis = t.timeoutMs
			s.StartTimestamp = millis(t.start)
			s.ProducerID, s.ProducerEpoch = t.pid, t.epoch
			s.Topics = []kmsg.DescribeTransactionsResponseTransactionStateTopic{}
			for _, tp := range t.sortedParts() {
				if n := len(s.Topics); n == 0 || s.Topics[n-1].Topic != tp.Topic {
					s.Topics = append(s.Topics, kmsg.DescribeTransactionsResponseTransactionStateTopic{Topic: tp.Topic})
				}
				last := &s.Topics[len(s.Topics)-1]
				last.Partitions = append(last.Partitions, tp.Partition)
			}
		}
		resp.TransactionStates = append(resp.TransactionStates, s)
	}
	return resp
}

// list is ListTransactions: v1 adds the duration filter (KIP-994), v2
// the transactional-id pattern (re2, as Go's regexp).
func (st *state) list(now time.Time, req *kmsg.ListTransactionsRequest) *kmsg.ListTransactionsResponse {
	resp := req.ResponseKind().(*kmsg.ListTransactionsResponse)
	var pattern *regexp.Regexp
	if req.Version >= 2 && req.TransactionalIDPattern != nil && *req.TransactionalIDPattern != "" {
		re, err := regexp.Compile(*req.TransactionalIDPattern)
		if err != nil {
			resp.ErrorCode = kerr.InvalidRegularExpression.Code
			return resp
		}
		pattern = re
	}
	states := make(map[kmsg.TransactionState]bool)
	for _, name := range req.StateFilters {
		if s, ok := stateByName(name); ok {
			states[s] = true
		} else {
			resp.UnknownStateFilters = append(resp.UnknownStateFilters, name)
		}
	}
	duration := int64(-1)
	if req.Version >= 1 {
		duration = req.DurationFilterMillis
	}
	resp.TransactionStates = []kmsg.ListTransactionsResponseTransactionState{}
	for _, id := range slices.Sorted(maps.Keys(st.txns)) {
		t := st.txns[id]
		switch {
		case t.state == kmsg.TransactionStateDead:
			continue
		case len(req.ProducerIDFilters) > 0 && !slices.Contains(req.ProducerIDFilters, t.pid):
			continue
		case len(req.StateFilters) > 0 && !states[t.state]: // only unknown names: nothing matches
			continue
		case duration >= 0 && (t.start.IsZero() || now.Sub(t.start).Milliseconds() <= duration):
			// Only transactions running longer than the filter; one
			// without a start time is not running.
			continue
		case pattern != nil && !pattern.MatchString(id):
			continue
		}
		s := kmsg.NewListTransactionsResponseTransactionState()
		s.TransactionalID, s.ProducerID, s.TransactionState = id, t.pid, t.state.String()
		resp.TransactionStates = append(resp.TransactionStates, s)
	}
	return resp
}

// stateByName matches Kafka's TransactionState.fromName: exact names.
func stateByName(name string) (kmsg.TransactionState, bool) {
	for s := kmsg.TransactionStateEmpty; s <= kmsg.TransactionStatePrepareEpochFence; s++ {
		if s.String() == name {
			return s, true
		}
	}
	return 0, false
}
