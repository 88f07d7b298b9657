package cli

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-io/sluice/internal/storagebench"
)

// Benchmark defaults from issue 3: 1 KiB records, 16 partitions, acks=all,
// 5 ms linger, 1 MiB batches (the last three are producerSettings').
const (
	benchRecordBytesDefault     = 1 << 10
	benchPartitionsDefault      = 16
	benchProduceDurationDefault = 10 * time.Second
	benchConsumeBytesDefault    = 1 << 30
	benchConsumeDurationDefault = 2 * time.Minute
	// benchRecordBytesMax keeps one record inside the default 1 MiB batch.
	benchRecordBytesMax = 1 << 20
	// benchMaxInFlightLimit bounds --max-in-flight (client memory: each
	// request can carry a batch per partition).
	benchMaxInFlightLimit = 64
)

// Targets of --against.
const (
	targetSluice = "sluice"
	targetKfake  = "kfake"
	targetBoth   = "both"
)

type benchFlags struct {
	g *globals
	producerSettings
	against     string
	topic       string
	partitions  int32
	replicas    int16
	recordBytes byteSize
	duration    time.Duration
	bytes       byteSize
	keepTopic   bool
	format      string
	rate        byteSize // produce only; 0 = as fast as the client goes
	maxInFlight int      // 0 = kgo's default; see register
	chart       string   // HTML report to write; "" = none
	brokerURL   string   // produce only: the broker's /metrics, for its own latency
}

func benchCommand() *cobra.Command {
	g := &globals{}
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure produce and consume throughput against a broker and franz-go's in-memory fake",
		Long: `Run a produce or consume workload against the broker at -b (start one
first: bench never starts a Sluice broker), against franz-go's in-memory fake
broker started in this process (--against kfake), or against both with the
same client settings (--against both), and print a table.`,
	}
	g.register(cmd)
	// storage measures the engine in process; it ignores -b.
	cmd.AddCommand(benchProduceCommand(g), benchConsumeCommand(g), storagebench.Command())
	return cmd
}

func (f *benchFlags) register(cmd *cobra.Command, duration time.Duration, bytes int64) {
	fl := cmd.Flags()
	f.producerSettings.register(fl)
	f.duration, f.bytes, f.recordBytes = duration, byteSize(bytes), benchRecordBytesDefault
	fl.StringVar(&f.against, "against", targetSluice, "where to run: sluice (the broker at -b), kfake (in-process fake) or both")
	fl.StringVar(&f.topic, "topic", "", "topic to use (default: a fresh one, deleted afterwards)")
	fl.Int32Var(&f.partitions, "partitions", benchPartitionsDefault, "partitions of a fresh topic")
	fl.Int16Var(&f.replicas, "replicas", 1, "replication factor of a fresh topic")
	fl.Var(&f.recordBytes, "record-bytes", "value size of each record (e.g. 1024, 1KiB)")
	fl.DurationVar(&f.duration, "duration", duration, "stop after this long (0: no time limit)")
	fl.Var(&f.bytes, "bytes", "stop after this many value bytes (e.g. 4GiB; 0: no byte limit)")
	fl.BoolVar(&f.keepTopic, "keep-topic", false, "do not delete a fresh topic afterwards")
	fl.StringVar(&f.format, "format", "text", "output format: text or json")
	// kgo keeps 5 produce requests in flight per broker only for an
	// idempotent producer, and only once the broker has granted it a
	// producer id; otherwise 1. A broker without InitProducerId (Sluice
	// until idempotent producers land) therefore gets 1 where kfake
	// gets 5, from the same client settings. This flag gives both the
	// same number.
	fl.IntVar(&f.maxInFlight, "max-in-flight", 0, "produce requests in flight per broker; above 0 this turns idempotent writes off\n"+
		"so that kgo honours it against every broker (0: kgo's default, 5 if the broker grants a producer id, else 1)")
	fl.StringVar(&f.chart, "chart", "", "also write an HTML report with charts (settings, throughput over time, latency,\n"+
		"the results table) to this .html file; it needs no network or JavaScript to view")
}

// validate reports every bad flag at once.
func (f *benchFlags) validate(needBytes bool) error {
	var errs []error
	switch f.against {
	case targetSluice, targetKfake, targetBoth:
	default:
		errs = append(errs, fmt.Errorf("--against %q (want sluice, kfake or both)", f.against))
	}
	if _, err := f.producerSettings.opts(); err != nil {
		errs = append(errs, err)
	}
	if _, err := parseOutputFormat(f.format); err != nil {
		errs = append(errs, err)
	}
	if f.partitions <= 0 {
		errs = append(errs, fmt.Errorf("--partitions %d must be positive", f.partitions))
	}
	if f.recordBytes <= 0 || f.recordBytes > benchRecordBytesMax {
		errs = append(errs, fmt.Errorf("--record-bytes %d (want 1 to %d)", f.recordBytes, benchRecordBytesMax))
	}
	if f.duration < 0 {
		errs = append(errs, fmt.Errorf("--duration %v is negative", f.duration))
	}
	if f.maxInFlight < 0 || f.maxInFlight > benchMaxInFlightLimit {
		errs = append(errs, fmt.Errorf("--max-in-flight %d (want 0 to %d)", f.maxInFlight, benchMaxInFlightLimit))
	}
	if err := validateChartPath(f.chart); err != nil {
		errs = append(errs, err)
	}
	if needBytes && f.bytes <= 0 {
		errs = append(errs, errors.New("--bytes must be positive: it sets how much to write before reading"))
	}
	if !needBytes && f.duration == 0 && f.bytes == 0 {
		errs = append(errs, errors.New("give --duration or --bytes: the run needs a bound"))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("%w: %w", ErrUsage, err)
	}
	return nil
}

func (f *benchFlags) targets() []string {
	if f.against == targetBoth {
		return []string{targetSluice, targetKfake}
	}
	return []string{f.against}
}

// validateChartPath checks --chart before the run rather than after it: a
// long run should not end in "no such directory".
func validateChartPath(path string) error {
	if path == "" {
		return nil
	}
	if ext := strings.ToLower(filepath.Ext(path)); ext != ".html" && ext != ".htm" {
		return fmt.Errorf("--chart %q: only .html is supported (a self-contained page with inline SVG; "+
			"for an image, open it in a browser and print or screenshot it)", path)
	}
	if st, err := os.Stat(filepath.Dir(path)); err != nil || !st.IsDir() {
		return fmt.Errorf("--chart %q: directory %s does not exist", path, filepath.Dir(path))
	}
	return nil
}

func (f *benchFlags) inFlight() string {
	if f.maxInFlight > 0 {
		return fmt.Sprintf("%d, not idempotent", f.maxInFlight)
	}
	return "kgo default"
}

func (f *benchFlags) describe() string {
	return fmt.Sprintf("%s records, %d partitions, acks=%s, linger %v, batches up to %s, compression %s, in flight %s",
		humanBytes(int64(f.recordBytes)), f.partitions, f.acks, f.linger, humanBytes(int64(f.batchBytesMax)), f.compression, f.inFlight())
}

// rateText is the offered load of bench produce, in words.
func (f *benchFlags) rateText() string {
	if f.rate > 0 {
		return fmt.Sprintf("%.1f MB/s", float64(f.rate)/1e6)
	}
	return "as fast as possible"
}

// produceSummary is the line bench produce starts with, also the
// report's subtitle.
func (f *benchFlags) produceSummary() string {
	return fmt.Sprintf("bench produce: %s; offered %s, bounded by duration %v, bytes %s",
		f.describe(), f.rateText(), f.duration, bytesOrNone(int64(f.bytes)))
}

// benchEnv is one target, connected.
type benchEnv struct {
	name  string
	seeds []string
	cl    *kgo.Client
	adm   *kadm.Client
	topic string
	fresh bool // we created the topic and delete it afterwards
	stop  func()
}

// open starts the target (kfake) or points at it (sluice), and makes the
// topic ready.
func (f *benchFlags) open(ctx context.Context, cmd *cobra.Command, target string) (*benchEnv, error) {
	popts, err := f.producerSettings.opts()
	if err != nil {
		return nil, err
	}
	opts := append(f.g.clientOpts(cmd), popts...)
	opts = append(opts, kgo.ClientID("sluice-bench"))
	if f.maxInFlight > 0 {
		opts = append(opts, kgo.DisableIdempotentWrite(), kgo.MaxProduceRequestsInflightPerBroker(f.maxInFlight))
	}
	env := &benchEnv{name: target, seeds: f.g.seeds(cmd), stop: func() {}}
	if target == targetKfake {
		// One broker, like the single Sluice node it is compared with.
		c, err := kfake.NewCluster(kfake.NumBrokers(1))
		if err != nil {
			return nil, fmt.Errorf("cli: starting kfake: %w", err)
		}
		env.stop = c.Close
		env.seeds = c.ListenAddrs()
	}
	opts = append(opts, kgo.SeedBrokers(env.seeds...))
	env.cl, err = kgo.NewClient(opts...)
	if err != nil {
		env.stop()
		return nil, fmt.Errorf("cli: connecting: %w", err)
	}
	env.adm = kadm.NewClient(env.cl)
	env.topic = f.topic
	if env.topic == "" {
		env.topic = "sluice-bench-" + strings.ToLower(rand.Text()[:10])
		env.fresh = !f.keepTopic
	}
	actx, cancel := context.WithTimeout(ctx, adminTimeoutDefault)
	defer cancel()
	resps, err := env.adm.CreateTopics(actx, f.partitions, f.replicas, nil, env.topic)
	if err == nil {
		r := resps[env.topic]
		err = r.Err
		if errors.Is(err, kerr.TopicAlreadyExists) && f.topic != "" {
			err = nil // the user's topic, used as it is
		} else if err != nil && r.ErrMessage != "" {
			err = fmt.Errorf("%w: %s", err, r.ErrMessage)
		}
	}
	if err != nil {
		env.close(ctx)
		return nil, fmt.Errorf("cli: %s: creating topic %s: %w", target, env.topic, err)
	}
	return env, nil
}

func (e *benchEnv) close(ctx context.Context) {
	if e.fresh && e.adm != nil {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), adminTimeoutDefault)
		_, _ = e.adm.DeleteTopics(dctx, e.topic) // best effort: a leftover topic is harmless
		cancel()
	}
	if e.cl != nil {
		e.cl.Close()
	}
	e.stop()
}

// produceResult is one row of the produce table, also its JSON form.
type produceResult struct {
	Target        string  `json:"target"`
	Records       int64   `json:"records"`
	Bytes         int64   `json:"bytes"`
	Seconds       float64 `json:"seconds"`
	MBPerSec      float64 `json:"mb_per_s"`
	RecordsPerSec float64 `json:"records_per_s"`
	P50Ms         float64 `json:"p50_ms"`
	P99Ms         float64 `json:"p99_ms"`
	P999Ms        float64 `json:"p999_ms"`
	MaxMs         float64 `json:"max_ms"`
	Errors        int64   `json:"errors"`
	FirstError    string  `json:"first_error,omitempty"`
	// Broker is the broker's own produce latency over the run, with
	// --broker-metrics (the sluice target only).
	Broker *brokerLatency `json:"broker,omitempty"`
	// Series is the run sampled per interval, for plotting.
	Series []seriesPoint `json:"series"`

	hist *latencyHist
}

func benchProduceCommand(g *globals) *cobra.Command {
	f := &benchFlags{g: g}
	cmd := &cobra.Command{
		Use:   "produce",
		Short: "Produce fixed-size records as fast as the client allows; report MB/s, records/s and latency",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := f.validate(false); err != nil {
				return err
			}
			cmd.SilenceUsage = true
			ctx, stop := signalContext(cmd)
			defer stop()
			started := time.Now()
			stderrf(cmd, "%s\n", f.produceSummary())
			var results []produceResult
			for _, t := range f.targets() {
				env, err := f.open(ctx, cmd, t)
				if err != nil {
					return err
				}
				stderrf(cmd, "bench produce: %s, topic %s ...\n", t, env.topic)
				var before histSnapshot
				scrape := t == targetSluice && f.brokerURL != ""
				if scrape {
					if before, err = scrapeHistogram(ctx, f.brokerURL, brokerProduceHistogram); err != nil {
						env.close(ctx)
						return fmt.Errorf("cli: --broker-metrics: %w", err)
					}
				}
				r := produceLoad(ctx, env, int(f.recordBytes), f.duration, int64(f.bytes), int64(f.rate))
				if scrape {
					after, err := scrapeHistogram(context.WithoutCancel(ctx), f.brokerURL, brokerProduceHistogram)
					if err == nil {
						after, err = after.sub(before)
					}
					if err != nil {
						stderrf(cmd, "bench produce: --broker-metrics: %v\n", err)
					} else {
						r.Broker = after.latency()
					}
				}
				env.close(ctx)
				results = append(results, r)
				if ctx.Err() != nil {
					break
				}
			}
			if err := printProduceResults(cmd, f, results); err != nil {
				return err
			}
			// A failed run still gets its report, as it gets its table.
			if f.chart != "" {
				if err := writeChart(f.chart, produceReport(f, f.g.seeds(cmd), results, started)); err != nil {
					return err
				}
				stderrf(cmd, "chart written to %s\n", f.chart)
			}
			return resultsErr(results)
		},
	}
	f.register(cmd, benchProduceDurationDefault, 0)
	cmd.Flags().StringVar(&f.brokerURL, "broker-metrics", "", "the Sluice broker's Prometheus endpoint (e.g. http://127.0.0.1:9644/metrics):\n"+
		"also report the broker's own produce latency, receipt to acknowledgement, over the run")
	cmd.Flags().Var(&f.rate, "rate", "offered load in value bytes per second, e.g. 50MB (0: as fast as possible;\n"+
		"at full speed latency includes time queued in the client, so measure latency at a set rate)")
	return cmd
}

func resultsErr(rs []produceResult) error {
	for _, r := range rs {
		if r.Errors > 0 {
			return fmt.Errorf("%w: %s: %d records failed, first: %s", ErrFailed, r.Target, r.Errors, r.FirstError)
		}
	}
	return nil
}

// produceLoad sends records of recordBytes random bytes until the duration
// or the byte budget runs out, then waits for every acknowledgement. With
// rate > 0 it paces itself to that many bytes per second. Latency is per
// record, from Produce to its promise: the time a caller of the client
// would wait, linger included. Acknowledged bytes, records and latency are
// also sampled per interval (see sampler).
func produceLoad(ctx context.Context, env *benchEnv, recordBytes int, duration time.Duration, budget, rate int64) produceResult {
	value := make([]byte, recordBytes)
	_, _ = rand.Read(value) // random bytes: compression gets no free win
	var (
		hist  = &latencyHist{}
		tally produceTally
	)
	start := time.Now()
	interval := sampleIntervalMin // unknown length: the sampler coarsens as it goes
	if duration > 0 {
		interval = sampleInterval(duration)
	}
	smp := startSampler(start, interval, hist)
	promise := func(r *kgo.Record, err error) {
		if err == nil {
			// kgo stamps Timestamp with time.Now() in Produce, monotonic
			// reading included.
			hist.record(time.Since(r.Timestamp))
			smp.add(int64(len(r.Value)), 1)
		}
		tally.done(r, err)
	}
	var deadline time.Time
	if duration > 0 {
		deadline = start.Add(duration)
	}
	var sent int64
	for i := 0; ctx.Err() == nil; i++ {
		if budget > 0 && sent >= budget {
			break
		}
		// Checking the clock every record costs more than the check
		// saves; every 64 records is well under a millisecond.
		if i%64 == 0 && !deadline.IsZero() && time.Now().After(deadline) {
			break
		}
		if rate > 0 {
			// Sleep off any lead over the schedule; sleeps under a
			// millisecond are not worth the timer.
			ahead := time.Duration(float64(sent)/float64(rate)*float64(time.Second)) - time.Since(start)
			if ahead >= time.Millisecond {
				select {
				case <-time.After(ahead):
				case <-ctx.Done():
				}
				continue
			}
		}
		env.cl.Produce(ctx, &kgo.Record{Topic: env.topic, Value: value}, promise)
		sent += int64(recordBytes)
	}
	_ = env.cl.Flush(context.WithoutCancel(ctx)) // bounded by the delivery timeout
	end := time.Now()
	elapsed := end.Sub(start)
	points := smp.finish(end)

	tally.mu.Lock()
	defer tally.mu.Unlock()
	r := produceResult{
		Target: env.name, Records: tally.acked, Bytes: smp.bytes.Load(), Seconds: elapsed.Seconds(),
		Errors: tally.failed, hist: hist, Series: seriesOf(points),
		P50Ms: ms(hist.quantile(0.50)), P99Ms: ms(hist.quantile(0.99)), P999Ms: ms(hist.quantile(0.999)),
		MaxMs: ms(time.Duration(hist.max.Load())),
	}
	if tally.firstErr != nil {
		r.FirstError = tally.firstErr.Error()
	}
	if s := elapsed.Seconds(); s > 0 {
		r.MBPerSec = float64(r.Bytes) / 1e6 / s
		r.RecordsPerSec = float64(r.Records) / s
	}
	return r
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// histBoundsMs are the rows of the latency histogram table.
var histBoundsMs = []float64{0.5, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000}

func printProduceResults(cmd *cobra.Command, f *benchFlags, rs []produceResult) error {
	if f.format == string(formatJSON) {
		return writeJSON(cmd.OutOrStdout(), rs)
	}
	w := cmd.OutOrStdout()
	if err := printTable(w, produceTable(rs)); err != nil {
		return err
	}
	fmt.Fprintln(w, "\nLATENCY (share of records acknowledged within)")
	if err := printTable(w, latencyTable(rs)); err != nil {
		return err
	}
	if rows := brokerTable(rs); rows != nil {
		fmt.Fprintln(w, "\nBROKER-SIDE PRODUCE LATENCY (receipt to acknowledgement, per partition, from "+brokerProduceHistogram+")")
		return printTable(w, rows)
	}
	return nil
}

// printTable prints rows under a header; the first row is the header.
func printTable(w io.Writer, rows [][]string) error {
	t := newTable(w)
	for _, r := range rows {
		t.row(toAny(r)...)
	}
	return t.flush()
}

// produceTable is the results table, header first; with two targets the
// last row holds the ratios. The text output and the chart both print it,
// so their figures cannot drift apart.
func produceTable(rs []produceResult) [][]string {
	rows := [][]string{{"TARGET", "RECORDS", "BYTES", "SECONDS", "MB/s", "RECORDS/s", "P50", "P99", "P999", "MAX", "ERRORS"}}
	for _, r := range rs {
		rows = append(rows, []string{r.Target, fmt.Sprint(r.Records), humanBytes(r.Bytes), fmt.Sprintf("%.2f", r.Seconds),
			fmt.Sprintf("%.1f", r.MBPerSec), fmt.Sprintf("%.0f", r.RecordsPerSec), fmtMs(r.P50Ms), fmtMs(r.P99Ms),
			fmtMs(r.P999Ms), fmtMs(r.MaxMs), fmt.Sprint(r.Errors)})
	}
	if len(rs) == 2 {
		a, b := rs[0], rs[1]
		rows = append(rows, []string{a.Target + "/" + b.Target, "", "", "", ratio(a.MBPerSec, b.MBPerSec),
			ratio(a.RecordsPerSec, b.RecordsPerSec), ratio(a.P50Ms, b.P50Ms), ratio(a.P99Ms, b.P99Ms),
			ratio(a.P999Ms, b.P999Ms), ratio(a.MaxMs, b.MaxMs), ""})
	}
	return rows
}

// latencyTable is the share of records acknowledged within each of
// histBoundsMs, header first.
func latencyTable(rs []produceResult) [][]string {
	header := []string{"WITHIN"}
	for _, r := range rs {
		header = append(header, r.Target)
	}
	rows := [][]string{header}
	for _, b := range histBoundsMs {
		row := []string{fmtMs(b)}
		for _, r := range rs {
			n := r.hist.count()
			if n == 0 {
				row = append(row, "-")
				continue
			}
			c := r.hist.countBelow(time.Duration(b * float64(time.Millisecond)))
			row = append(row, fmt.Sprintf("%.2f%%", 100*float64(c)/float64(n)))
		}
		rows = append(rows, row)
	}
	return rows
}

func fmtMs(v float64) string {
	switch {
	case v >= 100:
		return fmt.Sprintf("%.0fms", v)
	case v >= 10:
		return fmt.Sprintf("%.1fms", v)
	}
	return fmt.Sprintf("%.2fms", v)
}

func ratio(a, b float64) string {
	if b == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2fx", a/b)
}

func bytesOrNone(n int64) string {
	if n == 0 {
		return "unlimited"
	}
	return humanBytes(n)
}
