package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kgo"
)

const (
	// lineBytesMaxDefault bounds one input line, so a file without
	// newlines cannot make us buffer it whole; brokers refuse records this
	// big long before.
	lineBytesMaxDefault = 16 << 20
	// flushTimeoutOnInterrupt bounds the wait for records already handed to
	// the client after Ctrl-C.
	flushTimeoutOnInterrupt = 10 * time.Second
)

type produceFlags struct {
	globals
	producerSettings
	file         string
	keyDelim     string
	headers      []string
	partition    int32
	lineBytesMax int
	progress     bool
	quiet        bool
}

func produceCommand() *cobra.Command {
	f := &produceFlags{}
	cmd := &cobra.Command{
		Use:   "produce TOPIC",
		Short: "Send lines from stdin or a file as records",
		Long: `Send each input line as one record. With --key-delim, the text before the
first delimiter is the key. A progress bar (bytes and records) shows on stderr
when --file is given and stderr is a terminal, or with --progress.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cmd.SilenceUsage = true
			return runProduce(cmd, f, args[0])
		},
	}
	f.globals.register(cmd)
	fl := cmd.Flags()
	f.producerSettings.register(fl)
	fl.StringVar(&f.file, "file", "", "read records from this file instead of stdin")
	fl.StringVarP(&f.keyDelim, "key-delim", "K", "", "split each line into key and value at the first occurrence of this string")
	fl.StringArrayVarP(&f.headers, "header", "H", nil, "header key=value added to every record (repeatable)")
	fl.Int32VarP(&f.partition, "partition", "p", -1, "send every record to this partition (-1: by key, or spread when keyless)")
	fl.IntVar(&f.lineBytesMax, "max-line-bytes", lineBytesMaxDefault, "longest input line accepted")
	fl.BoolVar(&f.progress, "progress", false, "show a progress bar even when reading stdin or not on a terminal")
	fl.BoolVarP(&f.quiet, "quiet", "q", false, "print nothing on success")
	return cmd
}

// produceTally collects promise results; promises run on kgo's goroutines.
type produceTally struct {
	mu       sync.Mutex
	acked    int64
	failed   int64
	firstErr error
}

func (t *produceTally) done(_ *kgo.Record, err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if err != nil {
		t.failed++
		if t.firstErr == nil {
			t.firstErr = err
		}
		return
	}
	t.acked++
}

func runProduce(cmd *cobra.Command, f *produceFlags, topic string) error {
	popts, err := f.producerSettings.opts()
	if err != nil {
		return err
	}
	kvs, err := parseKV(f.headers)
	if err != nil {
		return err
	}
	if f.lineBytesMax <= 0 {
		return fmt.Errorf("%w: --max-line-bytes %d", ErrUsage, f.lineBytesMax)
	}
	headers := make([]kgo.RecordHeader, len(kvs))
	for i, kv := range kvs {
		headers[i] = kgo.RecordHeader{Key: kv[0], Value: []byte(kv[1])}
	}

	var (
		in    io.Reader = cmd.InOrStdin()
		total int64     = -1
	)
	if f.file != "" {
		file, err := os.Open(f.file)
		if err != nil {
			return fmt.Errorf("cli: %w", err)
		}
		defer file.Close()
		if st, err := file.Stat(); err == nil && st.Mode().IsRegular() {
			total = st.Size()
		}
		in = file
	}
	var bar *progress
	if f.progress || (f.file != "" && isTerminal(cmd.ErrOrStderr())) {
		bar = newProgress(cmd.ErrOrStderr(), total)
	}

	opts := append(f.clientOpts(cmd), popts...)
	opts = append(opts,
		kgo.DefaultProduceTopic(topic),
		// As kcat does: let the broker create the topic if its
		// auto.create.topics.enable allows.
		kgo.AllowAutoTopicCreation(),
	)
	if f.partition >= 0 {
		opts = append(opts, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return fmt.Errorf("cli: connecting: %w", err)
	}
	defer cl.Close()

	ctx, stop := signalContext(cmd)
	defer stop()
	tally := &produceTally{}
	start := time.Now()
	var readBytes, records, payload int64
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 0, min(64<<10, f.lineBytesMax)), f.lineBytesMax)
	for ctx.Err() == nil && sc.Scan() {
		line := sc.Bytes()
		readBytes += int64(len(line)) + 1
		r := &kgo.Record{Partition: f.partition, Headers: headers}
		if f.keyDelim != "" {
			if k, v, ok := strings.Cut(string(line), f.keyDelim); ok {
				r.Key, r.Value = []byte(k), []byte(v)
			} else {
				r.Value = append([]byte(nil), line...)
			}
		} else {
			// The scanner reuses its buffer; the client keeps the value
			// until the record is acknowledged.
			r.Value = append([]byte(nil), line...)
		}
		payload += int64(len(r.Key) + len(r.Value))
		records++
		cl.Produce(ctx, r, tally.done)
		bar.update(clampTo(readBytes, total), records)
	}
	readErr := sc.Err()
	if errors.Is(readErr, bufio.ErrTooLong) {
		readErr = fmt.Errorf("%w: a line is longer than --max-line-bytes %d", ErrUsage, f.lineBytesMax)
	}

	flushCtx := context.Background()
	if ctx.Err() != nil {
		var cancel context.CancelFunc
		flushCtx, cancel = context.WithTimeout(flushCtx, flushTimeoutOnInterrupt)
		defer cancel()
	}
	flushErr := cl.Flush(flushCtx)
	bar.finish(clampTo(readBytes, total), records)
	elapsed := time.Since(start)

	tally.mu.Lock()
	acked, failed, firstErr := tally.acked, tally.failed, tally.firstErr
	tally.mu.Unlock()
	if !f.quiet || failed > 0 || readErr != nil {
		stderrf(cmd, "produced %d of %d records (%s) to %s in %v\n",
			acked, records, humanBytes(payload), topic, elapsed.Round(time.Millisecond))
	}
	switch {
	case readErr != nil:
		return fmt.Errorf("cli: reading input: %w", readErr)
	case failed > 0:
		return fmt.Errorf("%w: %d records not produced, first error: %w", ErrFailed, failed, firstErr)
	case flushErr != nil:
		return fmt.Errorf("cli: flushing: %w", flushErr)
	case ctx.Err() != nil:
		return fmt.Errorf("cli: interrupted after %d records", records)
	}
	return nil
}

// clampTo keeps the bytes-read count (which counts a newline the last line
// may not have) within a known total.
func clampTo(n, total int64) int64 {
	if total >= 0 && n > total {
		return total
	}
	return n
}

// humanBytes renders a byte count in binary units.
func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 5; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
