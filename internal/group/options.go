package group

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/sluice-io/sluice/internal/group/consumer"
)

// Defaults, named after the Kafka broker settings they mirror.
const (
	DefaultNumPartitions          = 50                 // offsets.topic.num.partitions
	DefaultMaxGroupSize           = 10000              // group.max.size
	DefaultMinSessionTimeout      = 6 * time.Second    // group.min.session.timeout.ms
	DefaultMaxSessionTimeout      = 30 * time.Minute   // group.max.session.timeout.ms
	DefaultInitialRebalanceDelay  = 3 * time.Second    // group.initial.rebalance.delay.ms
	DefaultOffsetsRetention       = 7 * 24 * time.Hour // offsets.retention.minutes
	DefaultMaxOffsetMetadataBytes = 4096               // offset.metadata.max.bytes
	DefaultMaxQueuedRequests      = 1024
)

// Options configures a Coordinator. Zero values take the defaults above.
type Options struct {
	Log    Log              // required
	Topics Topics           // required
	Now    func() time.Time // nil = time.Now
	Logger *slog.Logger     // nil = discard

	NumPartitions          int32         // offsets.topic.num.partitions
	MaxGroupSize           int           // group.max.size
	MinSessionTimeout      time.Duration // group.min.session.timeout.ms
	MaxSessionTimeout      time.Duration // group.max.session.timeout.ms
	InitialRebalanceDelay  time.Duration // group.initial.rebalance.delay.ms; negative means 0
	OffsetsRetention       time.Duration // offsets.retention.minutes
	MaxOffsetMetadataBytes int           // offset.metadata.max.bytes
	MaxQueuedRequests      int           // bound of the coordinator's input channel

	// Consumer configures the consumer-protocol (KIP-848) groups:
	// group.consumer.session.timeout.ms, group.consumer.heartbeat.interval.ms,
	// group.consumer.max.size and group.consumer.assignors.
	Consumer consumer.Options
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
	if o.MaxGroupSize == 0 {
		o.MaxGroupSize = DefaultMaxGroupSize
	}
	if o.MinSessionTimeout == 0 {
		o.MinSessionTimeout = DefaultMinSessionTimeout
	}
	if o.MaxSessionTimeout == 0 {
		o.MaxSessionTimeout = DefaultMaxSessionTimeout
	}
	switch {
	case o.InitialRebalanceDelay == 0:
		o.InitialRebalanceDelay = DefaultInitialRebalanceDelay
	case o.InitialRebalanceDelay < 0:
		o.InitialRebalanceDelay = 0
	}
	if o.OffsetsRetention == 0 {
		o.OffsetsRetention = DefaultOffsetsRetention
	}
	if o.MaxOffsetMetadataBytes == 0 {
		o.MaxOffsetMetadataBytes = DefaultMaxOffsetMetadataBytes
	}
	if o.MaxQueuedRequests == 0 {
		o.MaxQueuedRequests = DefaultMaxQueuedRequests
	}
	return o
}

// Validate reports every problem with o at once. Zero values are valid:
// they mean the defaults.
func (o Options) Validate() error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("group: "+format, args...))
	}
	if o.Log == nil {
		bad("Log is required")
	}
	if o.Topics == nil {
		bad("Topics is required")
	}
	d := o.withDefaults()
	if d.NumPartitions < 0 {
		bad("NumPartitions %d is negative", o.NumPartitions)
	}
	if d.MaxGroupSize < 0 {
		bad("MaxGroupSize %d is negative", o.MaxGroupSize)
	}
	if d.MinSessionTimeout < 0 {
		bad("MinSessionTimeout %v is negative", o.MinSessionTimeout)
	}
	if d.MaxSessionTimeout < 0 {
		bad("MaxSessionTimeout %v is negative", o.MaxSessionTimeout)
	}
	if d.MinSessionTimeout > d.MaxSessionTimeout {
		bad("MinSessionTimeout %v exceeds MaxSessionTimeout %v", d.MinSessionTimeout, d.MaxSessionTimeout)
	}
	if d.OffsetsRetention < 0 {
		bad("OffsetsRetention %v is negative", o.OffsetsRetention)
	}
	if d.MaxOffsetMetadataBytes < 0 {
		bad("MaxOffsetMetadataBytes %d is negative", o.MaxOffsetMetadataBytes)
	}
	if d.MaxQueuedRequests < 0 {
		bad("MaxQueuedRequests %d is negative", o.MaxQueuedRequests)
	}
	if err := o.Consumer.Validate(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
