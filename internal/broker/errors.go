package broker

import (
	"context"
	"errors"
	"io/fs"
	"syscall"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/sluice-io/sluice/internal/batch"
	"github.com/sluice-io/sluice/internal/partition"
	"github.com/sluice-io/sluice/internal/producer"
	"github.com/sluice-io/sluice/internal/segment"
	"github.com/sluice-io/sluice/internal/storage"
	"github.com/sluice-io/sluice/internal/topics"
	"github.com/sluice-io/sluice/internal/txn"
	"github.com/sluice-io/sluice/internal/wal"
)

// The broker's own errors. Handlers return these (wrapped with details);
// kafkaError turns them into codes through errorTable.
var (
	errUnknownTopic             = errors.New("broker: unknown topic or partition")
	errUnknownTopicID           = errors.New("broker: unknown topic ID")
	errTopicExists              = errors.New("broker: topic already exists")
	errInvalidTopic             = errors.New("broker: invalid topic")
	errInvalidPartitions        = errors.New("broker: invalid partition count")
	errInvalidReplicationFactor = errors.New("broker: invalid replication factor")
	errInvalidReplicaAssignment = errors.New("broker: invalid replica assignment")
	errInvalidRequest           = errors.New("broker: invalid request")
	errInvalidRequiredAcks      = errors.New("broker: invalid required acks")
	errInvalidTimestamp         = errors.New("broker: invalid timestamp")
	errInvalidRecord            = errors.New("broker: invalid record")
	errUnsupportedVersion       = errors.New("broker: unsupported version")
	errUnknownLeaderEpoch       = errors.New("broker: unknown leader epoch")
	errFencedLeaderEpoch        = errors.New("broker: fenced leader epoch")
	errInvalidConfig            = errors.New("broker: invalid config")
	errUnsupportedResource      = errors.New("broker: unsupported resource type")
	errDuplicateResource        = errors.New("broker: resource listed twice")
	errFetchSessionNotFound     = errors.New("broker: fetch session not found")
	errInvalidFetchSessionEpoch = errors.New("broker: invalid fetch session epoch")
	errUnsupportedEndpointType  = errors.New("broker: unsupported endpoint type")
	errRecordListTooLarge       = errors.New("broker: record set too large")
	errDuplicateTopicInRequest  = errors.New("broker: topic listed twice")
	errPolicyViolation          = errors.New("broker: policy violation")
)

// errorTable maps errors to Kafka error codes. The first entry that
// matches wins, so more specific errors come first.
var errorTable = []struct {
	match func(error) bool
	code  *kerr.Error
}{
	{is(errUnknownTopic), kerr.UnknownTopicOrPartition},
	{is(errUnknownTopicID), kerr.UnknownTopicID},
	{is(errTopicExists), kerr.TopicAlreadyExists},
	{is(topics.ErrExists), kerr.TopicAlreadyExists},
	{is(topics.ErrNotFound), kerr.UnknownTopicOrPartition},
	{is(errInvalidTopic), kerr.InvalidTopicException},
	{is(errInternalTopic), kerr.InvalidTopicException},
	{is(storage.ErrInvalidName), kerr.InvalidTopicException},
	{is(errInvalidPartitions), kerr.InvalidPartitions},
	{is(topics.ErrLimit), kerr.PolicyViolation},
	{is(errPolicyViolation), kerr.PolicyViolation},
	{is(errInvalidReplicationFactor), kerr.InvalidReplicationFactor},
	{is(errInvalidReplicaAssignment), kerr.InvalidReplicaAssignment},
	{is(errInvalidRequest), kerr.InvalidRequest},
	{is(errDuplicateTopicInRequest), kerr.InvalidRequest},
	{is(errDuplicateResource), kerr.InvalidRequest},
	{is(errInvalidRequiredAcks), kerr.InvalidRequiredAcks},
	{is(errInvalidTimestamp), kerr.InvalidTimestamp},
	{is(errInvalidRecord), kerr.InvalidRecord},
	{is(errUnsupportedVersion), kerr.UnsupportedVersion},
	{is(errUnknownLeaderEpoch), kerr.UnknownLeaderEpoch},
	{is(errFencedLeaderEpoch), kerr.FencedLeaderEpoch},
	{is(errInvalidConfig), kerr.InvalidConfig},
	{is(topics.ErrInvalidConfig), kerr.InvalidConfig},
	{is(errUnsupportedResource), kerr.InvalidRequest},
	{is(errFetchSessionNotFound), kerr.FetchSessionIDNotFound},
	{is(errInvalidFetchSessionEpoch), kerr.InvalidFetchSessionEpoch},
	{is(errUnsupportedEndpointType), kerr.UnsupportedEndpointType},

	// Produce.
	{is(batch.ErrUnsupportedMagic), kerr.UnsupportedForMessageFormat},
	{is(batch.ErrCorrupt), kerr.CorruptMessage},
	{is(partition.ErrTooLarge), kerr.MessageTooLarge},
	{is(wal.ErrTooLarge), kerr.MessageTooLarge},
	{is(batch.ErrTooLarge), kerr.MessageTooLarge},
	{is(errRecordListTooLarge), kerr.RecordListTooLarge},

	// Idempotent and transactional producers.
	{is(producer.ErrOutOfOrderSequence), kerr.OutOfOrderSequenceNumber},
	{is(producer.ErrInvalidProducerEpoch), kerr.InvalidProducerEpoch},
	{is(producer.ErrUnknownProducerID), kerr.UnknownProducerID},
	{is(producer.ErrInvalidTxnState), kerr.InvalidTxnState},
	{is(producer.ErrCoordinatorFenced), kerr.TransactionCoordinatorFenced},
	{is(producer.ErrTooManyProducers), kerr.PolicyViolation},
	{is(producer.ErrBadMarker), kerr.InvalidRecord},

	// Reads.
	{is(partition.ErrOffsetOutOfRange), kerr.OffsetOutOfRange},

	// A partition closed under a request: its topic was deleted, or the
	// broker is stopping. Both are retriable from the client's side:
	// it refreshes metadata and learns which.
	{is(partition.ErrClosed), kerr.NotLeaderForPartition},
	{is(storage.ErrClosed), kerr.NotLeaderForPartition},
	{is(storage.ErrNotFound), kerr.UnknownTopicOrPartition},

	// Storage failures: the log cannot be written (or read) safely.
	{is(partition.ErrFailed), kerr.KafkaStorageError},
	{is(wal.ErrFailed), kerr.KafkaStorageError},
	{is(wal.ErrClosed), kerr.NotLeaderForPartition},
	{is(wal.ErrCorrupt), kerr.KafkaStorageError},
	{is(segment.ErrCorrupt), kerr.KafkaStorageError},
	{is(segment.ErrFull), kerr.KafkaStorageError},
	{is(segment.ErrClosed), kerr.NotLeaderForPartition},
	{isFSError, kerr.KafkaStorageError},

	{is(context.DeadlineExceeded), kerr.RequestTimedOut},
	{is(context.Canceled), kerr.RequestTimedOut},
}

func is(target error) func(error) bool {
	return func(err error) bool { return errors.Is(err, target) }
}

func isFSError(err error) bool {
	var pe *fs.PathError
	var errno syscall.Errno
	return errors.As(err, &pe) || errors.As(err, &errno)
}

// kafkaError returns the Kafka error for err: nil for nil, and
// UNKNOWN_SERVER_ERROR for anything the table does not know.
func kafkaError(err error) *kerr.Error {
	if err == nil {
		return nil
	}
	// The transaction coordinator's produce-path verdict carries its own
	// code (KIP-890 part 1).
	var ve *txn.VerifyError
	if errors.As(err, &ve) {
		if ke, ok := kerr.ErrorForCode(ve.ProduceCode()).(*kerr.Error); ok {
			return ke
		}
	}
	for _, e := range errorTable {
		if e.match(err) {
			return e.code
		}
	}
	return kerr.UnknownServerError
}

// errorCode returns the Kafka error code for err (0 for nil).
func errorCode(err error) int16 {
	if e := kafkaError(err); e != nil {
		return e.Code
	}
	return 0
}

// errorMessage returns a message for err to put in responses that carry
// one: nil for nil, so the field stays null.
func errorMessage(err error) *string {
	if err == nil {
		return nil
	}
	s := err.Error()
	return &s
}
