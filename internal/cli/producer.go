package cli

import (
	"fmt"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Producer defaults follow issue 3's benchmark settings so `sluice produce`
// and `sluice bench` batch the same way unless told otherwise.
const (
	lingerDefault        = 5 * time.Millisecond
	batchBytesMaxDefault = 1 << 20 // 1 MiB; Kafka's max.message.bytes default (1048588) admits it
	// batchBytesMaxLimit keeps a batch inside kgo's default 100 MiB
	// request cap with room to spare.
	batchBytesMaxLimit     = 64 << 20
	deliveryTimeoutDefault = time.Minute
)

// producerSettings are the client knobs shared by produce and bench.
type producerSettings struct {
	acks            string
	compression     string
	linger          time.Duration
	batchBytesMax   int32
	deliveryTimeout time.Duration
}

func (s *producerSettings) register(fl *pflag.FlagSet) {
	fl.StringVar(&s.acks, "acks", "all", "required acks: all (-1), 1 (leader) or 0 (none)")
	fl.StringVarP(&s.compression, "compression", "z", "none", "batch compression: none, gzip, snappy, lz4 or zstd")
	fl.DurationVar(&s.linger, "linger", lingerDefault, "how long a batch may wait to fill")
	fl.Int32Var(&s.batchBytesMax, "batch-max-bytes", batchBytesMaxDefault, "largest record batch the client builds")
	fl.DurationVar(&s.deliveryTimeout, "delivery-timeout", deliveryTimeoutDefault, "give up on a record not acknowledged within this (0: retry forever)")
}

// opts translates the settings into kgo options, reporting every bad value.
func (s *producerSettings) opts() ([]kgo.Opt, error) {
	var (
		opts []kgo.Opt
		errs []string
	)
	switch strings.ToLower(s.acks) {
	case "all", "-1":
		opts = append(opts, kgo.RequiredAcks(kgo.AllISRAcks()))
	case "1", "leader":
		// Idempotence needs acks=all; kgo refuses the combination.
		opts = append(opts, kgo.RequiredAcks(kgo.LeaderAck()), kgo.DisableIdempotentWrite())
	case "0", "none":
		opts = append(opts, kgo.RequiredAcks(kgo.NoAck()), kgo.DisableIdempotentWrite())
	default:
		errs = append(errs, fmt.Sprintf("--acks %q (want all, 1 or 0)", s.acks))
	}
	codec, err := parseCodec(s.compression)
	if err != nil {
		errs = append(errs, err.Error())
	} else {
		opts = append(opts, kgo.ProducerBatchCompression(codec))
	}
	if s.linger < 0 {
		errs = append(errs, fmt.Sprintf("--linger %v is negative", s.linger))
	} else {
		opts = append(opts, kgo.ProducerLinger(s.linger))
	}
	if s.batchBytesMax <= 0 || s.batchBytesMax > batchBytesMaxLimit {
		errs = append(errs, fmt.Sprintf("--batch-max-bytes %d (want 1 to %d)", s.batchBytesMax, batchBytesMaxLimit))
	} else {
		opts = append(opts, kgo.ProducerBatchMaxBytes(s.batchBytesMax))
	}
	if s.deliveryTimeout < 0 {
		errs = append(errs, fmt.Sprintf("--delivery-timeout %v is negative", s.deliveryTimeout))
	} else if s.deliveryTimeout > 0 {
		opts = append(opts, kgo.RecordDeliveryTimeout(s.deliveryTimeout))
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("%w: %s", ErrUsage, strings.Join(errs, "; "))
	}
	return opts, nil
}

func parseCodec(s string) (kgo.CompressionCodec, error) {
	switch strings.ToLower(s) {
	case "none", "":
		return kgo.NoCompression(), nil
	case "gzip":
		return kgo.GzipCompression(), nil
	case "snappy":
		return kgo.SnappyCompression(), nil
	case "lz4":
		return kgo.Lz4Compression(), nil
	case "zstd":
		return kgo.ZstdCompression(), nil
	}
	return kgo.CompressionCodec{}, fmt.Errorf("--compression %q (want none, gzip, snappy, lz4 or zstd)", s)
}
