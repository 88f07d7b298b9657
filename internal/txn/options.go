package txn

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"time"
)

// Defaults, named after the Kafka broker settings they mirror.
const (
	DefaultNumPartitions       = 50                 // transaction.state.log.num.partitions
	DefaultMaxTimeout          = 15 * time.Minute   // transaction.max.timeout.ms
	DefaultIDExpiration        = 7 * 24 * time.Hour // transactional.id.expiration.ms
	DefaultAbortCheckInterval  = 10 * time.Second   // transaction.abort.timed.out.transaction.cleanup.interval.ms
	DefaultMaxQueuedRequests   = 1024
	DefaultMaxTransactionalIDs = 100000
)

// Options configures a Coordinator. Zero values take the defaults above.
type Options struct {
	Log     Log     // required: the __transaction_state log
	Markers Markers // required: writes COMMIT and ABORT markers
	Topics  Topics  // required

	Now    func() time.Time // nil = time.Now
	Logger *slog.Logger     // nil = discard

	NumPartitions       int32         // transaction.state.log.num.partitions
	MaxTimeout          time.Duration // transaction.max.timeout.ms
	IDExpiration        time.Duration // transactional.id.expiration.ms
	AbortCheckInterval  time.Duration // transaction.abort.timed.out.transaction.cleanup.interval.ms
	MaxQueuedRequests   int           // bound of the coordinator's input channel
	MaxTransactionalIDs int           // transactional ids kept at once; InitProducerId for one more is refused
}

// withDefaults returns o with every zero value replaced by its default.
func (o Options) withDefaults() Options {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.NumPartitions == 0 {
		o.NumPartitions = DefaultNumPartitions
	}
	if o.MaxTimeout == 0 {
		o.MaxTimeout = DefaultMaxTimeout
	}
	if o.IDExpiration == 0 {
		o.IDExpiration = DefaultIDExpiration
	}
	if o.AbortCheckInterval == 0 {
		o.AbortCheckInterval = DefaultAbortCheckInterval
	}
	if o.MaxQueuedRequests == 0 {
		o.MaxQueuedRequests = DefaultMaxQueuedRequests
	}
	if o.MaxTransactionalIDs == 0 {
		o.MaxTransactionalIDs = DefaultMaxTransactionalIDs
	}
	return o
}

// Validate reports every problem with o at once. Zero values are valid:
// they mean the defaults.
func (o Options) Validate() error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("txn: "+format, args...))
	}
	if o.Log == nil {
		bad("Log is required")
	}
	if o.Markers == nil {
		bad("Markers is required")
	}
	if o.Topics == nil {
		bad("Topics is required")
	}
	if o.NumPartitions < 0 {
		bad("NumPartitions %d is negative", o.NumPartitions)
	}
	if o.MaxTimeout < 0 {
		bad("MaxTimeout %v is negative", o.MaxTimeout)
	} else if o.MaxTimeout > math.MaxInt32*time.Millisecond {
		bad("MaxTimeout %v does not fit Kafka's int32 milliseconds", o.MaxTimeout)
	}
	if o.IDExpiration < 0 {
		bad("IDExpiration %v is negative", o.IDExpiration)
	}
	if o.AbortCheckInterval < 0 {
		bad("AbortCheckInterval %v is negative", o.AbortCheckInterval)
	}
	if o.MaxQueuedRequests < 0 {
		bad("MaxQueuedRequests %d is negative", o.MaxQueuedRequests)
	}
	if o.MaxTransactionalIDs < 0 {
		bad("MaxTransactionalIDs %d is negative", o.MaxTransactionalIDs)
	}
	return errors.Join(errs...)
}
