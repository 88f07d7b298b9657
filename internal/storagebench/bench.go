// Package storagebench measures the storage engine against the raw disk in
// one run: sequential write+fdatasync baselines, acknowledged (fsynced)
// append throughput across partition counts, batch sizes and appender
// counts, append latency at a fixed rate, and recovery time. It backs
// `sluice bench storage`; docs/benchmarks.md records its figures.
package storagebench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sluice-io/sluice/internal/batch"
	"github.com/sluice-io/sluice/internal/partition"
	"github.com/sluice-io/sluice/internal/storage"
)

// Logger receives the engine's events during runs (nil discards).
var Logger *slog.Logger

// Options say what to measure.
type Options struct {
	Dir        string  // scratch directory on the filesystem under test
	Bytes      int64   // bytes written per throughput cell
	Batches    []int   // batch sizes in bytes (1 KiB records)
	Partitions []int   // partition counts
	Appenders  []int   // concurrent appenders
	Headline   int64   // bytes of the single long run (0 skips it)
	Recovery   []int64 // log sizes for the recovery runs (0 entries skip)
	TailBytes  int64   // unflushed tail for the recovery runs
	Latency    bool    // run the fixed-rate latency test
	Out        io.Writer
}

// Run measures and prints markdown tables to o.Out.
func Run(ctx context.Context, o Options) error {
	if dir := os.Getenv(openOnlyEnv); dir != "" {
		return openOnly(o.Out, dir)
	}
	if v := os.Getenv("SLUICE_BENCH_CHECKPOINT_BYTES"); v != "" {
		n, err := parseSize(v)
		if err != nil {
			return err
		}
		checkpointBytes = n
	}
	if v := os.Getenv("SLUICE_BENCH_FLUSH_PARALLELISM"); v != "" {
		fmt.Sscan(v, &flushParallelism)
	}
	if err := os.MkdirAll(o.Dir, 0o755); err != nil {
		return err
	}
	w := o.Out
	fmt.Fprintf(w, "# sluice bench storage\n\nscratch dir: %s, %s per cell, 1 KiB records\n\n", "(given by --dir)", human(o.Bytes))
	raw := map[int]rawResult{}
	fmt.Fprintf(w, "## Raw baseline: sequential write + fdatasync per chunk\n\n| chunk | MB/s | fdatasync p50 | p99 | p999 |\n|---|---|---|---|---|\n")
	for _, bs := range o.Batches {
		r, err := rawWriteSync(o.Dir, bs, o.Bytes)
		if err != nil {
			return err
		}
		raw[bs] = r
		fmt.Fprintf(w, "| %s | %.0f | %v | %v | %v |\n", human(int64(bs)), r.mbps, r.p50, r.p99, r.p999)
	}
	fmt.Fprintf(w, "\n## Acknowledged (fsynced) appends\n\n| partitions | batch | appenders | MB/s | vs raw | syncs | batches/sync |\n|---|---|---|---|---|---|---|\n")
	onePart := map[[2]int]float64{}
	for _, parts := range o.Partitions {
		for _, bs := range o.Batches {
			for _, ap := range o.Appenders {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				r, err := appendRun(ctx, o.Dir, parts, bs, ap, o.Bytes)
				if err != nil {
					return fmt.Errorf("%d partitions, %d B batches, %d appenders: %w", parts, bs, ap, err)
				}
				note := ""
				if parts == o.Partitions[0] {
					onePart[[2]int{bs, ap}] = r.mbps
				} else if base := onePart[[2]int{bs, ap}]; base > 0 {
					note = fmt.Sprintf(" (%.0f%% of %d-partition)", 100*r.mbps/base, o.Partitions[0])
				}
				fmt.Fprintf(w, "| %d | %s | %d | %.0f%s | %.2fx | %d | %.1f |\n", parts, human(int64(bs)), ap, r.mbps, note, r.mbps/raw[bs].mbps, r.syncs, float64(r.batches)/float64(max(1, r.syncs)))
			}
		}
	}
	if o.Headline > 0 && len(o.Batches) > 0 && len(o.Appenders) > 0 {
		bs := o.Batches[len(o.Batches)-1]
		ap := o.Appenders[len(o.Appenders)-1]
		rr, err := rawWriteSync(o.Dir, bs, o.Headline)
		if err != nil {
			return err
		}
		r, err := appendRun(ctx, o.Dir, 16, bs, ap, o.Headline)
		if err != nil {
			return err
		}
		fmt.Fprintf(w, "\n## Long run: %s, 16 partitions, %s batches, %d appenders\n\n| | MB/s |\n|---|---|\n| raw write+fdatasync | %.0f |\n| acknowledged appends | %.0f (%.0f%% of raw) |\n", human(o.Headline), human(int64(bs)), ap, rr.mbps, r.mbps, 100*r.mbps/rr.mbps)
	}
	if o.Latency && len(o.Batches) > 0 {
		if err := latencyRun(ctx, w, o.Dir, raw, o.Batches[0], o.Bytes); err != nil {
			return err
		}
	}
	for _, size := range o.Recovery {
		if err := recoveryRun(ctx, w, o.Dir, size, o.TailBytes); err != nil {
			return err
		}
	}
	return nil
}

type rawResult struct {
	mbps           float64
	p50, p99, p999 time.Duration
}

func rawWriteSync(dir string, chunk int, total int64) (rawResult, error) {
	path := filepath.Join(dir, "raw")
	defer os.Remove(path)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return rawResult{}, err
	}
	defer f.Close()
	// Preallocated as the WAL's files are, so both pay the same metadata
	// cost per fdatasync.
	if err := unix.Fallocate(int(f.Fd()), unix.FALLOC_FL_KEEP_SIZE, 0, total); err != nil && err != unix.EOPNOTSUPP {
		return rawResult{}, err
	}
	buf := make([]byte, chunk)
	for i := range buf {
		buf[i] = byte(i * 31)
	}
	n := int(total / int64(chunk))
	lat := make([]time.Duration, 0, n)
	start := time.Now()
	for i := 0; i < n; i++ {
		t0 := time.Now()
		if _, err := f.WriteAt(buf, int64(i)*int64(chunk)); err != nil {
			return rawResult{}, err
		}
		if err := unix.Fdatasync(int(f.Fd())); err != nil {
			return rawResult{}, err
		}
		lat = append(lat, time.Since(t0))
	}
	el := time.Since(start)
	p := percentiles(lat)
	return rawResult{mbps: float64(int64(n)*int64(chunk)) / el.Seconds() / 1e6, p50: p[0], p99: p[1], p999: p[2]}, nil
}

func percentiles(l []time.Duration) [3]time.Duration {
	if len(l) == 0 {
		return [3]time.Duration{}
	}
	sort.Slice(l, func(i, j int) bool { return l[i] < l[j] })
	at := func(q float64) time.Duration { return l[min(len(l)-1, int(q*float64(len(l))))].Round(time.Microsecond) }
	return [3]time.Duration{at(0.50), at(0.99), at(0.999)}
}

// makeBatch builds a batch of 1 KiB records totalling about size bytes.
func makeBatch(size int, seed uint64) []byte {
	n := max(1, size/1024)
	r := rand.New(rand.NewPCG(seed, 1))
	recs := make([]batch.Record, n)
	for i := range recs {
		v := make([]byte, 1000)
		for j := range v {
			v[j] = byte(r.Uint32())
		}
		recs[i] = batch.Record{OffsetDelta: int32(i), Value: v}
	}
	b, err := batch.Build(batch.CodecNone, time.Now().UnixMilli(), recs, batch.BuildOptions{})
	if err != nil {
		panic(err)
	}
	return b
}

// checkpointBytes overrides the engine's CheckpointBytes when set (for
// experiments).
var checkpointBytes int64

// flushParallelism overrides the engine's FlushParallelism when set.
var flushParallelism int

func engineOptions(dir string) storage.Options {
	cfg := partition.DefaultConfig()
	cfg.SegmentBytes = 256 << 20
	cfg.MaxMessageBytes = 8 << 20
	return storage.Options{Dir: dir, Partition: cfg, MaxOpenSegmentFiles: 1024, Logger: Logger, CheckpointBytes: checkpointBytes, FlushParallelism: flushParallelism}
}

func openWithPartitions(dir string, parts int) (*storage.Engine, []*partition.Partition, error) {
	e, _, err := storage.Open(engineOptions(dir))
	if err != nil {
		return nil, nil, err
	}
	ps := e.Partitions()
	for i := len(ps); i < parts; i++ {
		p, err := e.CreatePartition(partition.ID{Topic: "bench", TopicID: [16]byte{1}, Partition: int32(i)}, engineOptions(dir).Partition)
		if err != nil {
			e.Close()
			return nil, nil, err
		}
		ps = append(ps, p)
	}
	return e, ps, nil
}

type appendResult struct {
	mbps           float64
	syncs, batches uint64
	latency        [3]time.Duration
	elapsed        time.Duration
}

func appendRun(ctx context.Context, scratch string, parts, batchBytes, appenders int, total int64) (appendResult, error) {
	dir := filepath.Join(scratch, "engine")
	defer os.RemoveAll(dir)
	e, ps, err := openWithPartitions(dir, parts)
	if err != nil {
		return appendResult{}, err
	}
	defer e.Close()
	before := e.Stats().WAL
	perAppender := total / int64(appenders) / int64(batchBytes)
	var wg sync.WaitGroup
	var errOnce atomic.Pointer[error]
	start := time.Now()
	for a := 0; a < appenders; a++ {
		wg.Add(1)
		go func(a int) {
			defer wg.Done()
			b := makeBatch(batchBytes, uint64(a))
			for i := int64(0); i < perAppender && ctx.Err() == nil; i++ {
				p := ps[(int64(a)+i*int64(appenders))%int64(len(ps))]
				if _, err := e.AppendSync(ctx, p, b); err != nil {
					errOnce.CompareAndSwap(nil, &err)
					return
				}
			}
		}(a)
	}
	wg.Wait()
	el := time.Since(start)
	if p := errOnce.Load(); p != nil {
		return appendResult{}, *p
	}
	after := e.Stats().WAL
	bytes := perAppender * int64(appenders) * int64(batchBytes)
	return appendResult{mbps: float64(bytes) / el.Seconds() / 1e6, syncs: after.Syncs - before.Syncs, batches: after.Records - before.Records, elapsed: el}, nil
}

// latencyWarmup is how long latencyRun appends before the steady-state
// measurement: a fresh engine zero-fills new WAL files until trimmed ones
// can be recycled, which a running broker no longer does.
const latencyWarmup = 5 * time.Second

// latencyRun measures append latency at a quarter of the peak rate of 8
// appenders, against the raw fdatasync latency of the same chunk size:
// for the first latencyWarmup of a fresh engine, then for about 10 s of
// steady state.
func latencyRun(ctx context.Context, w io.Writer, scratch string, raw map[int]rawResult, batchBytes int, total int64) error {
	peak, err := appendRun(ctx, scratch, 16, batchBytes, 8, total)
	if err != nil {
		return err
	}
	rate := peak.mbps * 1e6 / 4 / float64(batchBytes) // batches per second
	dir := filepath.Join(scratch, "engine")
	defer os.RemoveAll(dir)
	e, ps, err := openWithPartitions(dir, 16)
	if err != nil {
		return err
	}
	defer e.Close()
	warm := int(rate * latencyWarmup.Seconds())
	n := int(min(int64(rate*10), total/int64(batchBytes))) // about 10 s
	lat := make([]time.Duration, warm+n)
	bufs := make([][]byte, 64)
	for i := range bufs {
		bufs[i] = makeBatch(batchBytes, uint64(i))
	}
	free := make(chan int, len(bufs))
	for i := range bufs {
		free <- i
	}
	interval := time.Duration(float64(time.Second) / rate)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range lat {
		if d := time.Until(start.Add(time.Duration(i) * interval)); d > 0 {
			time.Sleep(d)
		}
		bi := <-free
		t0 := time.Now()
		wg.Add(1)
		if _, err := e.Append(ctx, ps[i%len(ps)], bufs[bi], func(int64, error) {
			lat[i] = time.Since(t0)
			free <- bi
			wg.Done()
		}); err != nil {
			return err
		}
	}
	wg.Wait()
	cold, steady := percentiles(lat[:warm]), percentiles(lat[warm:])
	r := raw[batchBytes]
	fmt.Fprintf(w, "\n## Append latency at a quarter of peak (%.0f MB/s, %s batches, 16 partitions)\n\n| | p50 | p99 | p999 |\n|---|---|---|---|\n"+
		"| raw write+fdatasync | %v | %v | %v |\n| acknowledged append, first %v of a fresh engine | %v | %v | %v |\n| acknowledged append, steady state (next %.0f s) | %v | %v | %v |\n\n"+
		"p99 ratio, steady state: %.2fx raw (fresh engine: %.2fx)\n",
		peak.mbps/4, human(int64(batchBytes)), r.p50, r.p99, r.p999, latencyWarmup, cold[0], cold[1], cold[2],
		float64(n)/rate, steady[0], steady[1], steady[2],
		float64(steady[1])/float64(max(1, r.p99)), float64(cold[1])/float64(max(1, r.p99)))
	return nil
}

// recoveryRun builds a log of size bytes, checkpoints it, appends an
// unflushed tail without a checkpoint, abandons the engine as a crash would
// and times a fresh Open.
func recoveryRun(ctx context.Context, w io.Writer, scratch string, size, tail int64) error {
	dir := filepath.Join(scratch, "recovery")
	defer os.RemoveAll(dir)
	e, ps, err := openWithPartitions(dir, 16)
	if err != nil {
		return err
	}
	b := makeBatch(1<<20, 7)
	fill := func(bytes int64) error {
		var wg sync.WaitGroup
		var firstErr atomic.Pointer[error]
		per := bytes / int64(len(b)) / 8
		for a := 0; a < 8; a++ {
			wg.Add(1)
			go func(a int) {
				defer wg.Done()
				bb := append([]byte(nil), b...)
				for i := int64(0); i < per; i++ {
					if _, err := e.AppendSync(ctx, ps[(int64(a)*per+i)%int64(len(ps))], bb); err != nil {
						firstErr.CompareAndSwap(nil, &err)
						return
					}
				}
			}(a)
		}
		wg.Wait()
		if p := firstErr.Load(); p != nil {
			return *p
		}
		return nil
	}
	if err := fill(size); err != nil {
		return err
	}
	if err := e.Close(); err != nil {
		return err
	}
	// The tail: no checkpoint may cover it.
	o := engineOptions(dir)
	o.CheckpointBytes = 1 << 40
	o.CheckpointInterval = 24 * time.Hour
	e, _, err = storage.Open(o)
	if err != nil {
		return err
	}
	ps = e.Partitions()
	if err := fill(tail); err != nil {
		return err
	}
	// Crash: the engine is abandoned, never closed, and a fresh process
	// opens the directory, so its time and memory are the recovery's own.
	cmd := exec.CommandContext(ctx, exe(), os.Args[1:]...)
	cmd.Env = append(os.Environ(), openOnlyEnv+"="+dir)
	out, err := cmd.Output()
	if err != nil {
		return fmt.Errorf("recovery child: %w", err)
	}
	var r openResult
	if err := json.Unmarshal(out[bytes.LastIndexByte(out[:len(out)-1], '\n')+1:], &r); err != nil {
		return fmt.Errorf("recovery child said %q: %w", out, err)
	}
	fmt.Fprintf(w, "\n## Recovery: %s log, %s unflushed tail\n\n| open time | replayed batches | skipped | WAL bytes read | segments | RSS after open |\n|---|---|---|---|---|---|\n| %v | %d | %d | %s | %d | %s |\n",
		human(size), human(tail), r.Open.Round(time.Millisecond), r.Report.ReplayedRecords, r.Report.SkippedRecords, human(r.Report.ReplayedBytes), r.Report.Segments, human(r.RSS))
	return nil
}

// openOnlyEnv, set to a directory, makes Run open that engine, print an
// openResult as JSON and return: the recovery child.
const openOnlyEnv = "SLUICE_BENCH_OPEN_ONLY"

type openResult struct {
	Open   time.Duration
	RSS    int64
	Report storage.RecoveryReport
}

func exe() string {
	p, err := os.Executable()
	if err != nil {
		return os.Args[0]
	}
	return p
}

func openOnly(w io.Writer, dir string) error {
	start := time.Now()
	e, rep, err := storage.Open(engineOptions(dir))
	if err != nil {
		return err
	}
	r := openResult{Open: time.Since(start), RSS: rssBytes(), Report: rep}
	// A crashed log's directory: leave it as recovery left it, no
	// checkpoint of our own.
	b, _ := json.Marshal(r)
	fmt.Fprintf(w, "%s\n", b)
	return e.Close()
}

func rssBytes() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "VmRSS:") {
			var kb int64
			fmt.Sscanf(strings.TrimSpace(strings.TrimPrefix(l, "VmRSS:")), "%d", &kb)
			return kb << 10
		}
	}
	return 0
}

func human(n int64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%d GiB", n>>30)
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	}
	return fmt.Sprintf("%d B", n)
}
