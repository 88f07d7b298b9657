package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

type consumeFlags struct {
	globals
	offset        string
	partitions    []int32
	maxRecords    int64
	format        string
	printHeaders  bool
	exitAtEnd     bool
	readCommitted bool
	timeout       time.Duration
}

func consumeCommand() *cobra.Command {
	f := &consumeFlags{}
	cmd := &cobra.Command{
		Use:   "consume TOPIC",
		Short: "Print records from a topic",
		Long: `Print records from a topic's partitions, without a consumer group.

Runs until interrupted, until -n records were printed, or with --exit-at-end
once every partition reached the high watermark it had at start.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cmd.SilenceUsage = true
			return runConsume(cmd, f, args[0])
		},
	}
	f.register(cmd)
	fl := cmd.Flags()
	fl.StringVarP(&f.offset, "offset", "o", "start", offsetHelp)
	fl.Int32SliceVarP(&f.partitions, "partitions", "p", nil, "partitions to read (default all; repeatable or comma-separated)")
	fl.Int64VarP(&f.maxRecords, "num", "n", 0, "stop after this many records (0: no limit)")
	fl.StringVarP(&f.format, "format", "f", `%v\n`, formatHelp)
	fl.BoolVar(&f.printHeaders, "print-headers", false, "include headers (json: a headers field; templates: a leading %h and a tab)")
	fl.BoolVarP(&f.exitAtEnd, "exit-at-end", "e", false, "stop once the high watermarks seen at start are reached")
	fl.BoolVar(&f.readCommitted, "read-committed", false, "skip records of aborted transactions and stop at the last stable offset")
	fl.DurationVar(&f.timeout, "timeout", adminTimeoutDefault, "how long to wait for the broker's metadata and offsets")
	return cmd
}

func runConsume(cmd *cobra.Command, f *consumeFlags, topic string) error {
	spec, err := parseOffset(f.offset)
	if err != nil {
		return err
	}
	format, err := compileFormat(f.format, f.printHeaders)
	if err != nil {
		return err
	}
	if f.maxRecords < 0 {
		return fmt.Errorf("%w: -n %d", ErrUsage, f.maxRecords)
	}
	ctx, stop := signalContext(cmd)
	defer stop()

	cl, err := kgo.NewClient(f.clientOpts(cmd)...)
	if err != nil {
		return fmt.Errorf("cli: connecting: %w", err)
	}
	defer cl.Close()
	starts, ends, err := consumeBounds(ctx, f, kadm.NewClient(cl), topic, spec)
	if err != nil {
		return err
	}

	// Partitions already at their end are done before we start; the rest
	// are done once a record at or past end-1 arrives.
	assign := make(map[int32]kgo.Offset, len(starts))
	pending := make(map[int32]int64, len(starts))
	for p, at := range starts {
		assign[p] = kgo.NewOffset().At(at)
		if at < ends[p] {
			pending[p] = ends[p]
		}
	}
	if f.exitAtEnd && len(pending) == 0 {
		return nil
	}

	opts := f.clientOpts(cmd)
	opts = append(opts,
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: assign}),
		// Control records still occupy offsets: seeing them is how we know
		// a partition ending in a transaction marker has been read.
		kgo.KeepControlRecords(),
	)
	if f.readCommitted {
		opts = append(opts, kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	}
	cons, err := kgo.NewClient(opts...)
	if err != nil {
		return fmt.Errorf("cli: connecting: %w", err)
	}
	defer cons.Close()

	out := bufio.NewWriterSize(cmd.OutOrStdout(), 64<<10)
	defer out.Flush()
	var (
		printed int64
		buf     []byte
	)
	for {
		fetches := cons.PollFetches(ctx)
		if ctx.Err() != nil || fetches.IsClientClosed() {
			return nil // interrupted: what was printed stands
		}
		for _, fe := range fetches.Errors() {
			if errors.Is(fe.Err, context.Canceled) {
				return nil
			}
			stderrf(cmd, "sluice: consume %s/%d: %v\n", fe.Topic, fe.Partition, fe.Err)
		}
		done := false
		fetches.EachRecord(func(r *kgo.Record) {
			if done {
				return
			}
			if end, ok := pending[r.Partition]; ok && r.Offset >= end-1 {
				delete(pending, r.Partition)
			}
			if r.Attrs.IsControl() {
				return
			}
			buf = format(buf[:0], r)
			if _, err := out.Write(buf); err != nil {
				done = true
				return
			}
			printed++
			if f.maxRecords > 0 && printed >= f.maxRecords {
				done = true
			}
		})
		if err := out.Flush(); err != nil {
			return fmt.Errorf("cli: writing output: %w", err)
		}
		if done || (f.exitAtEnd && len(pending) == 0) {
			return nil
		}
	}
}

// consumeBounds checks the topic and partitions and returns, per partition,
// the offset to start at and the end offset seen now.
func consumeBounds(ctx context.Context, f *consumeFlags, adm *kadm.Client, topic string, spec offsetSpec) (starts, ends map[int32]int64, err error) {
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	details, err := adm.ListTopics(ctx, topic)
	if err != nil {
		return nil, nil, fmt.Errorf("cli: metadata: %w", err)
	}
	d, ok := details[topic]
	if !ok {
		return nil, nil, fmt.Errorf("cli: topic %s: no metadata returned", topic)
	}
	if d.Err != nil {
		return nil, nil, fmt.Errorf("cli: topic %s: %w", topic, d.Err)
	}
	parts := f.partitions
	if len(parts) == 0 {
		for p := range d.Partitions {
			parts = append(parts, p)
		}
		slices.Sort(parts)
	}
	for _, p := range parts {
		if _, ok := d.Partitions[p]; !ok {
			return nil, nil, fmt.Errorf("%w: topic %s has no partition %d (it has %d)", ErrUsage, topic, p, len(d.Partitions))
		}
	}

	lo, err := adm.ListStartOffsets(ctx, topic)
	if err != nil {
		return nil, nil, fmt.Errorf("cli: list start offsets: %w", err)
	}
	listEnd := adm.ListEndOffsets
	if f.readCommitted {
		listEnd = adm.ListCommittedOffsets
	}
	hi, err := listEnd(ctx, topic)
	if err != nil {
		return nil, nil, fmt.Errorf("cli: list end offsets: %w", err)
	}
	var at kadm.ListedOffsets
	if spec.kind == offsetTime {
		if at, err = adm.ListOffsetsAfterMilli(ctx, spec.n, topic); err != nil {
			return nil, nil, fmt.Errorf("cli: list offsets by time: %w", err)
		}
	}
	starts = make(map[int32]int64, len(parts))
	ends = make(map[int32]int64, len(parts))
	for _, p := range parts {
		s, ok1 := lo.Lookup(topic, p)
		e, ok2 := hi.Lookup(topic, p)
		if !ok1 || !ok2 {
			return nil, nil, fmt.Errorf("cli: no offsets returned for %s/%d", topic, p)
		}
		if s.Err != nil || e.Err != nil {
			return nil, nil, fmt.Errorf("cli: offsets of %s/%d: %w", topic, p, errors.Join(s.Err, e.Err))
		}
		t := int64(-1)
		if o, ok := at.Lookup(topic, p); ok && o.Err == nil {
			t = o.Offset
		}
		starts[p] = spec.resolve(s.Offset, e.Offset, t)
		ends[p] = e.Offset
	}
	return starts, ends, nil
}
