package cli

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// consumeResult is one row of the consume table, also its JSON form.
type consumeResult struct {
	Target        string  `json:"target"`
	Records       int64   `json:"records"`
	Bytes         int64   `json:"bytes"`
	Seconds       float64 `json:"seconds"`
	MBPerSec      float64 `json:"mb_per_s"`
	RecordsPerSec float64 `json:"records_per_s"`
	Complete      bool    `json:"complete"` // read to the end, not cut by --duration
	FillMBPerSec  float64 `json:"fill_mb_per_s,omitempty"`
	Error         string  `json:"error,omitempty"`
	// Series is the read sampled per interval, for plotting.
	Series []seriesPoint `json:"series"`
}

// consumeSummary is the line bench consume starts with, also the report's
// subtitle.
func (f *benchFlags) consumeSummary() string {
	return fmt.Sprintf("bench consume: %s; %s to read, at most %v", f.describe(), humanBytes(int64(f.bytes)), f.duration)
}

func benchConsumeCommand(g *globals) *cobra.Command {
	f := &benchFlags{g: g}
	cmd := &cobra.Command{
		Use:   "consume",
		Short: "Fill a topic, then read it from the start; report MB/s",
		Long: `Write --bytes of records to a fresh topic (or use --topic as it is, if it
holds records), then read every partition from its start to the end offsets
seen before reading, and report the read rate. With kfake the data lives in
this process's memory, so keep --bytes within RAM.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := f.validate(true); err != nil {
				return err
			}
			cmd.SilenceUsage = true
			ctx, stop := signalContext(cmd)
			defer stop()
			started := time.Now()
			stderrf(cmd, "%s\n", f.consumeSummary())
			var results []consumeResult
			for _, t := range f.targets() {
				env, err := f.open(ctx, cmd, t)
				if err != nil {
					return err
				}
				r := f.consumeTarget(ctx, cmd, env)
				env.close(ctx)
				results = append(results, r)
				if ctx.Err() != nil {
					break
				}
			}
			if err := printConsumeResults(cmd, f, results); err != nil {
				return err
			}
			if f.chart != "" {
				if err := writeChart(f.chart, consumeReport(f, f.g.seeds(cmd), results, started)); err != nil {
					return err
				}
				stderrf(cmd, "chart written to %s\n", f.chart)
			}
			for _, r := range results {
				if r.Error != "" {
					return fmt.Errorf("%w: %s: %s", ErrFailed, r.Target, r.Error)
				}
			}
			return nil
		},
	}
	f.register(cmd, benchConsumeDurationDefault, benchConsumeBytesDefault)
	return cmd
}

func (f *benchFlags) consumeTarget(ctx context.Context, cmd *cobra.Command, env *benchEnv) consumeResult {
	res := consumeResult{Target: env.name, Series: []seriesPoint{}}
	starts, ends, err := topicBounds(ctx, env)
	if err != nil {
		res.Error = err.Error()
		return res
	}
	var have int64
	for p := range ends {
		have += ends[p] - starts[p]
	}
	if have == 0 {
		stderrf(cmd, "bench consume: %s: writing %s to %s ...\n", env.name, humanBytes(int64(f.bytes)), env.topic)
		// The fill is bounded by bytes alone: a time limit here would
		// leave less to read than asked for.
		fill := produceLoad(ctx, env, int(f.recordBytes), 0, int64(f.bytes), 0)
		res.FillMBPerSec = fill.MBPerSec
		if fill.Errors > 0 {
			res.Error = fmt.Sprintf("filling: %d records failed, first: %s", fill.Errors, fill.FirstError)
			return res
		}
		if starts, ends, err = topicBounds(ctx, env); err != nil {
			res.Error = err.Error()
			return res
		}
	}
	stderrf(cmd, "bench consume: %s: reading %s ...\n", env.name, env.topic)
	return consumeLoad(ctx, cmd, f, env, starts, ends, res)
}

// topicBounds returns each partition's log start and end offsets.
func topicBounds(ctx context.Context, env *benchEnv) (starts, ends map[int32]int64, err error) {
	actx, cancel := context.WithTimeout(ctx, adminTimeoutDefault)
	defer cancel()
	lo, err := env.adm.ListStartOffsets(actx, env.topic)
	if err == nil {
		err = lo.Error()
	}
	if err != nil {
		return nil, nil, fmt.Errorf("listing start offsets: %w", err)
	}
	hi, err := env.adm.ListEndOffsets(actx, env.topic)
	if err == nil {
		err = hi.Error()
	}
	if err != nil {
		return nil, nil, fmt.Errorf("listing end offsets: %w", err)
	}
	starts, ends = map[int32]int64{}, map[int32]int64{}
	lo.Each(func(o kadm.ListedOffset) { starts[o.Partition] = o.Offset })
	hi.Each(func(o kadm.ListedOffset) { ends[o.Partition] = o.Offset })
	for p := range ends {
		if _, ok := starts[p]; !ok {
			return nil, nil, fmt.Errorf("no start offset for partition %d", p)
		}
	}
	return starts, ends, nil
}

// consumeLoad reads [start, end) of every partition with a fresh consumer.
// What it reads is also sampled per interval (see sampler); --duration only
// caps the read, which usually ends well before it, so the sampler starts
// at its finest interval and coarsens if the read goes on.
func consumeLoad(ctx context.Context, cmd *cobra.Command, f *benchFlags, env *benchEnv, starts, ends map[int32]int64, res consumeResult) consumeResult {
	assign := map[int32]kgo.Offset{}
	pending := map[int32]int64{}
	for p, end := range ends {
		if starts[p] < end {
			assign[p] = kgo.NewOffset().At(starts[p])
			pending[p] = end
		}
	}
	opts := append(f.g.clientOpts(cmd),
		kgo.ClientID("sluice-bench"),
		kgo.SeedBrokers(env.seeds...),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{env.topic: assign}),
		kgo.KeepControlRecords(),
	)
	cons, err := kgo.NewClient(opts...)
	if err != nil {
		res.Error = err.Error()
		return res
	}
	defer cons.Close()

	rctx := ctx
	if f.duration > 0 {
		var cancel context.CancelFunc
		rctx, cancel = context.WithTimeout(ctx, f.duration)
		defer cancel()
	}
	start := time.Now()
	smp := startSampler(start, sampleIntervalMin, nil)
	for len(pending) > 0 && rctx.Err() == nil {
		fetches := cons.PollFetches(rctx)
		for _, fe := range fetches.Errors() {
			if errors.Is(fe.Err, context.Canceled) || errors.Is(fe.Err, context.DeadlineExceeded) {
				continue
			}
			res.Error = fmt.Sprintf("fetching %s/%d: %v", fe.Topic, fe.Partition, fe.Err)
		}
		if res.Error != "" {
			break
		}
		bytes0, records0 := res.Bytes, res.Records
		fetches.EachRecord(func(r *kgo.Record) {
			if end, ok := pending[r.Partition]; ok && r.Offset >= end-1 {
				delete(pending, r.Partition)
			}
			if r.Attrs.IsControl() {
				return
			}
			res.Records++
			res.Bytes += int64(len(r.Key) + len(r.Value))
		})
		smp.add(res.Bytes-bytes0, res.Records-records0)
	}
	end := time.Now()
	elapsed := end.Sub(start)
	res.Series = seriesOf(smp.finish(end))
	res.Complete = len(pending) == 0
	res.Seconds = elapsed.Seconds()
	if s := elapsed.Seconds(); s > 0 {
		res.MBPerSec = float64(res.Bytes) / 1e6 / s
		res.RecordsPerSec = float64(res.Records) / s
	}
	return res
}

func printConsumeResults(cmd *cobra.Command, f *benchFlags, rs []consumeResult) error {
	if f.format == string(formatJSON) {
		return writeJSON(cmd.OutOrStdout(), rs)
	}
	return printTable(cmd.OutOrStdout(), consumeTable(rs))
}

// consumeTable is the results table, header first; with two targets the
// last row holds the ratios. Shared by the text output and the chart.
func consumeTable(rs []consumeResult) [][]string {
	rows := [][]string{{"TARGET", "RECORDS", "BYTES", "SECONDS", "MB/s", "RECORDS/s", "COMPLETE", "FILL MB/s", "ERROR"}}
	for _, r := range rs {
		fill := "-"
		if r.FillMBPerSec > 0 {
			fill = fmt.Sprintf("%.1f", r.FillMBPerSec)
		}
		rows = append(rows, []string{r.Target, fmt.Sprint(r.Records), humanBytes(r.Bytes), fmt.Sprintf("%.2f", r.Seconds),
			fmt.Sprintf("%.1f", r.MBPerSec), fmt.Sprintf("%.0f", r.RecordsPerSec), fmt.Sprint(r.Complete), fill, orDash(r.Error)})
	}
	if len(rs) == 2 {
		a, b := rs[0], rs[1]
		rows = append(rows, []string{a.Target + "/" + b.Target, "", "", "", ratio(a.MBPerSec, b.MBPerSec),
			ratio(a.RecordsPerSec, b.RecordsPerSec), "", ratio(a.FillMBPerSec, b.FillMBPerSec), ""})
	}
	return rows
}
