package txn

import (
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/internal/coord"
)

// The package's own errors.
var (
	// ErrClosed is returned by Load once Close was called.
	ErrClosed = errors.New("txn: coordinator closed")
	// ErrLoaded is returned by a second call to Load.
	ErrLoaded = errors.New("txn: already loaded")
	// errPIDsExhausted: the int64 producer-id space is used up.
	errPIDsExhausted = errors.New("txn: producer ids exhausted")
	// errBusy: too many InitProducerId requests wait for a block of
	// producer ids to become durable.
	errBusy = errors.New("txn: too many requests waiting for producer ids")
)

// VerifyError is Verify's verdict against a transactional produce: the
// coordinator's code, as AddPartitionsToTxn with VerifyOnly reports it.
type VerifyError struct {
	TransactionalID string
	Partition       TopicPartition
	// Err is one of INVALID_TXN_STATE (the partition is not in the
	// ongoing transaction, or there is none), PRODUCER_FENCED (another
	// epoch owns the transactional id), INVALID_PRODUCER_ID_MAPPING (the
	// id is unknown or has another producer id), CONCURRENT_TRANSACTIONS
	// (the transaction is completing), COORDINATOR_LOAD_IN_PROGRESS or
	// COORDINATOR_NOT_AVAILABLE.
	Err *kerr.Error
}

func (e *VerifyError) Error() string {
	return fmt.Sprintf("txn: %s %s/%d: %s", e.TransactionalID, e.Partition.Topic, e.Partition.Partition, e.Err.Message)
}

func (e *VerifyError) Unwrap() error { return e.Err }

// ProduceCode is the error code a Produce response carries for this
// verdict, as Kafka's produce path translates the coordinator's answer
// (KIP-890 part 1): a fenced epoch is INVALID_PRODUCER_EPOCH, which every
// produce version knows; a producer id the transactional id does not own
// is INVALID_TXN_STATE; a coordinator that is busy, loading or gone is
// the retriable NOT_ENOUGH_REPLICAS, so the producer retries.
func (e *VerifyError) ProduceCode() int16 {
	switch e.Err {
	case kerr.ProducerFenced:
		return kerr.InvalidProducerEpoch.Code
	case kerr.InvalidProducerIDMapping:
		return kerr.InvalidTxnState.Code
	case kerr.ConcurrentTransactions, kerr.CoordinatorLoadInProgress, kerr.CoordinatorNotAvailable, kerr.NotCoordinator:
		return kerr.NotEnoughReplicas.Code
	}
	return e.Err.Code
}

// appendErrorCode maps the failure of an append to the transaction log
// as Kafka's TransactionStateManager does. A Log reports a specific
// condition by returning (or wrapping) a *kerr.Error; any other error is a
// local storage failure, answered with the retriable
// COORDINATOR_NOT_AVAILABLE so clients retry rather than give up.
func appendErrorCode(err error) int16 {
	var ke *kerr.Error
	if !errors.As(err, &ke) {
		return kerr.CoordinatorNotAvailable.Code
	}
	switch ke {
	case kerr.UnknownTopicOrPartition, kerr.NotEnoughReplicas, kerr.NotEnoughReplicasAfterAppend, kerr.RequestTimedOut:
		return kerr.CoordinatorNotAvailable.Code
	case kerr.NotLeaderForPartition, kerr.KafkaStorageError:
		return kerr.NotCoordinator.Code
	case kerr.MessageTooLarge, kerr.RecordListTooLarge:
		return kerr.UnknownServerError.Code
	}
	return ke.Code
}

// fenced turns PRODUCER_FENCED into INVALID_PRODUCER_EPOCH for request
// versions before first, which predate PRODUCER_FENCED (KIP-588).
func fenced(code int16, version, first int16) int16 {
	if code == kerr.ProducerFenced.Code && version < first {
		return kerr.InvalidProducerEpoch.Code
	}
	return code
}

// errorResponse answers req as a whole with code, as Kafka answers a
// coordinator that is loading or gone.
func errorResponse(req kmsg.Request, code int16) kmsg.Response {
	switch req := req.(type) {
	case *kmsg.InitProducerIDRequest:
		resp := req.ResponseKind().(*kmsg.InitProducerIDResponse)
		resp.ErrorCode, resp.ProducerID, resp.ProducerEpoch = code, -1, -1
		return resp
	case *kmsg.AddPartitionsToTxnRequest:
		if req.Version >= 4 {
			resp := req.ResponseKind().(*kmsg.AddPartitionsToTxnResponse)
			resp.ErrorCode = code
			return resp
		}
		return addPartitionsV3Response(req, func(TopicPartition) int16 { return code })
	case *kmsg.AddOffsetsToTxnRequest:
		resp := req.ResponseKind().(*kmsg.AddOffsetsToTxnResponse)
		resp.ErrorCode = code
		return resp
	case *kmsg.EndTxnRequest:
		resp := req.ResponseKind().(*kmsg.EndTxnResponse)
		resp.ErrorCode = code
		return resp
	case *kmsg.DescribeTransactionsRequest:
		resp := req.ResponseKind().(*kmsg.DescribeTransactionsResponse)
		for _, id := range req.TransactionalIDs {
			s := kmsg.NewDescribeTransactionsResponseTransactionState()
			s.TransactionalID, s.ErrorCode = id, code
			s.ProducerID, s.ProducerEpoch, s.StartTimestamp = -1, -1, -1
			resp.TransactionStates = append(resp.TransactionStates, s)
		}
		return resp
	case *kmsg.ListTransactionsRequest:
		resp := req.ResponseKind().(*kmsg.ListTransactionsResponse)
		resp.ErrorCode = code
		return resp
	}
	return coord.ErrorResponse(req, code)
}
