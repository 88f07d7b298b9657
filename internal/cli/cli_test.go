package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kfake"
	"go.uber.org/goleak"

	"github.com/sluice-io/sluice/internal/broker/brokertest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// commandTimeout bounds every command a test runs, so a hang fails fast.
const commandTimeout = 30 * time.Second

// A backend is a broker the commands run against: Sluice itself, through
// the broker's test harness, and franz-go's in-memory kfake, which shows
// that what a test expects is Kafka's behaviour and not only ours.
type backend struct {
	name  string
	start func(t *testing.T) string
}

var backends = []backend{
	{"sluice", func(t *testing.T) string { return brokertest.Start(t).Addr() }},
	{"kfake", startKfake},
}

func startKfake(t *testing.T) string {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.AllowAutoTopicCreation(), kfake.DefaultNumPartitions(1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c.ListenAddrs()[0]
}

// eachBroker runs fn once per backend, each with a fresh broker.
func eachBroker(t *testing.T, fn func(t *testing.T, addr string)) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) { fn(t, b.start(t)) })
	}
}

type result struct {
	stdout, stderr string
	err            error
}

// run executes `sluice ARGS... -b addr` in process with stdin as input.
func run(t *testing.T, addr, stdin string, args ...string) result {
	t.Helper()
	root := &cobra.Command{Use: "sluice", SilenceErrors: true}
	root.AddCommand(Commands()...)
	var out, errb bytes.Buffer
	root.SetIn(strings.NewReader(stdin))
	root.SetOut(&out)
	root.SetErr(&errb)
	root.SetArgs(append(args, "-b", addr))
	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	defer cancel()
	err := root.ExecuteContext(ctx)
	return result{stdout: out.String(), stderr: errb.String(), err: err}
}

// mustRun is run that fails the test on a command error.
func mustRun(t *testing.T, addr, stdin string, args ...string) result {
	t.Helper()
	r := run(t, addr, stdin, args...)
	if r.err != nil {
		t.Fatalf("sluice %s: %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), r.err, r.stdout, r.stderr)
	}
	return r
}

func TestTopicLifecycle(t *testing.T) {
	eachBroker(t, func(t *testing.T, addr string) {

		r := mustRun(t, addr, "", "topic", "create", "orders", "events", "-p", "3", "-r", "1", "-c", "retention.ms=60000")
		for _, want := range []string{"orders", "events", "OK"} {
			if !strings.Contains(r.stdout, want) {
				t.Errorf("create output lacks %q:\n%s", want, r.stdout)
			}
		}
		// Creating it again fails for that topic and the command says so.
		r = run(t, addr, "", "topic", "create", "orders")
		if !errors.Is(r.err, ErrFailed) || !strings.Contains(r.stdout, "TOPIC_ALREADY_EXISTS") {
			t.Errorf("duplicate create: err %v, output:\n%s", r.err, r.stdout)
		}

		var rows []topicRow
		r = mustRun(t, addr, "", "topic", "list", "--format", "json")
		if err := json.Unmarshal([]byte(r.stdout), &rows); err != nil {
			t.Fatalf("list json: %v\n%s", err, r.stdout)
		}
		if len(rows) != 2 || rows[0].Name != "events" || rows[1].Name != "orders" || rows[1].Partitions != 3 || rows[1].Replicas != 1 {
			t.Errorf("list: %+v", rows)
		}
		r = mustRun(t, addr, "", "topic", "list")
		if lines := strings.Split(strings.TrimSpace(r.stdout), "\n"); len(lines) != 3 || !strings.HasPrefix(lines[0], "NAME") {
			t.Errorf("list table:\n%s", r.stdout)
		}

		mustRun(t, addr, "a\nb\nc\n", "produce", "orders", "-p", "1", "-q")
		d := describe(t, addr, "orders")
		if len(d.Partitions) != 3 {
			t.Fatalf("describe partitions: %+v", d.Partitions)
		}
		if p := d.Partitions[1]; p.LogStart != 0 || p.HighWatermark != 3 || p.Leader < 0 {
			t.Errorf("partition 1: %+v", p)
		}
		if v, src := configOf(d, "retention.ms"); v != "60000" || src != "DYNAMIC_TOPIC_CONFIG" {
			t.Errorf("retention.ms = %q from %s", v, src)
		}
		r = mustRun(t, addr, "", "topic", "describe", "orders")
		for _, want := range []string{"PARTITIONS", "HIGH-WATERMARK", "CONFIGS", "retention.ms", "DYNAMIC_TOPIC_CONFIG"} {
			if !strings.Contains(r.stdout, want) {
				t.Errorf("describe text lacks %q:\n%s", want, r.stdout)
			}
		}

		mustRun(t, addr, "", "topic", "alter", "orders", "-c", "retention.ms=120000", "-c", "max.message.bytes=2000000", "-p", "5")
		d = describe(t, addr, "orders")
		if v, _ := configOf(d, "retention.ms"); v != "120000" {
			t.Errorf("after alter retention.ms = %q", v)
		}
		if v, _ := configOf(d, "max.message.bytes"); v != "2000000" {
			t.Errorf("after alter max.message.bytes = %q", v)
		}
		if len(d.Partitions) != 5 {
			t.Errorf("after alter %d partitions, want 5", len(d.Partitions))
		}
		mustRun(t, addr, "", "topic", "alter", "orders", "--delete-config", "max.message.bytes")
		if v, src := configOf(describe(t, addr, "orders"), "max.message.bytes"); v == "2000000" || src == "DYNAMIC_TOPIC_CONFIG" {
			t.Errorf("after delete-config max.message.bytes = %q from %s", v, src)
		}
		// A value the broker refuses fails that topic, with the reason
		// (kfake takes any value, so only Sluice is asked).
		if r = run(t, addr, "", "topic", "alter", "orders", "-c", "retention.ms=soon"); strings.HasSuffix(t.Name(), "/sluice") &&
			(!errors.Is(r.err, ErrFailed) || !strings.Contains(r.stdout, "INVALID_CONFIG")) {
			t.Errorf("bad config value: %v\n%s", r.err, r.stdout)
		}
		if r = run(t, addr, "", "topic", "alter", "orders"); !errors.Is(r.err, ErrUsage) {
			t.Errorf("alter with nothing to change: %v", r.err)
		}

		mustRun(t, addr, "", "topic", "delete", "orders", "events")
		r = mustRun(t, addr, "", "topic", "list")
		if strings.Contains(r.stdout, "orders") {
			t.Errorf("orders still listed:\n%s", r.stdout)
		}
		if r = run(t, addr, "", "topic", "delete", "orders"); !errors.Is(r.err, ErrFailed) {
			t.Errorf("deleting a missing topic: %v\n%s", r.err, r.stdout)
		}
		if r = run(t, addr, "", "topic", "describe", "orders"); !errors.Is(r.err, ErrFailed) {
			t.Errorf("describing a missing topic: %v\n%s", r.err, r.stdout)
		}
	})
}

func describe(t *testing.T, addr, topic string) topicDescription {
	t.Helper()
	var ds []topicDescription
	r := mustRun(t, addr, "", "topic", "describe", topic, "--format", "json")
	if err := json.Unmarshal([]byte(r.stdout), &ds); err != nil || len(ds) != 1 {
		t.Fatalf("describe json (%v):\n%s", err, r.stdout)
	}
	return ds[0]
}

func configOf(d topicDescription, key string) (value, source string) {
	for _, c := range d.Configs {
		if c.Key == key {
			if c.Value != nil {
				value = *c.Value
			}
			return value, c.Source
		}
	}
	return "", ""
}

func TestProduceConsumeKeysHeaders(t *testing.T) {
	eachBroker(t, func(t *testing.T, addr string) {
		mustRun(t, addr, "", "topic", "create", "kv", "-p", "4")
		var in strings.Builder
		var want []string
		for i := range 50 {
			fmt.Fprintf(&in, "key-%d:value:%d\n", i, i)
			want = append(want, fmt.Sprintf("key-%d=value:%d h1=v1,h2=a=b", i, i))
		}
		r := mustRun(t, addr, in.String(), "produce", "kv", "--key-delim", ":", "-H", "h1=v1", "-H", "h2=a=b",
			"--compression", "zstd", "--linger", "1ms")
		if !strings.Contains(r.stderr, "produced 50 of 50 records") {
			t.Errorf("produce summary: %q", r.stderr)
		}

		r = mustRun(t, addr, "", "consume", "kv", "-e", "-f", `%k=%v %h\n`)
		got := strings.Split(strings.TrimSpace(r.stdout), "\n")
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("consumed:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
		}

		// Same key, same partition: %p and %o agree for every record of one key.
		r = mustRun(t, addr, "", "consume", "kv", "-e", "-f", "json", "--print-headers")
		var n int
		for _, line := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
			var j jsonRecord
			if err := json.Unmarshal([]byte(line), &j); err != nil {
				t.Fatalf("json line %q: %v", line, err)
			}
			if j.Topic != "kv" || j.Key == nil || j.Value == nil || !strings.HasPrefix(*j.Key, "key-") || len(j.Headers) != 2 || j.Headers[1].Value != "a=b" {
				t.Errorf("json record %s", line)
			}
			n++
		}
		if n != 50 {
			t.Errorf("json consumed %d records, want 50", n)
		}
	})
}

func TestConsumeOffsets(t *testing.T) {
	eachBroker(t, func(t *testing.T, addr string) {
		mustRun(t, addr, "", "topic", "create", "seq", "-p", "2")
		var in strings.Builder
		for i := range 10 {
			fmt.Fprintf(&in, "%d\n", i)
		}
		mustRun(t, addr, in.String(), "produce", "seq", "-p", "0", "-q")
		mustRun(t, addr, "x\n", "produce", "seq", "-p", "1", "-q")

		cases := []struct {
			name string
			args []string
			want string
		}{
			{"start", []string{"-o", "start"}, "0/0/0 0/1/1 0/2/2 0/3/3 0/4/4 0/5/5 0/6/6 0/7/7 0/8/8 0/9/9"},
			{"exact", []string{"-o", "7"}, "0/7/7 0/8/8 0/9/9"},
			{"last three", []string{"-o", "-3"}, "0/7/7 0/8/8 0/9/9"},
			{"last three, = form", []string{"--offset=-3"}, "0/7/7 0/8/8 0/9/9"},
			{"from start plus", []string{"-o", "+8"}, "0/8/8 0/9/9"},
			{"beyond end clamps", []string{"-o", "100"}, ""},
			{"end", []string{"-o", "end"}, ""},
			{"count", []string{"-o", "2", "-n", "3"}, "0/2/2 0/3/3 0/4/4"},
			{"timestamp zero", []string{"-o", "@0", "-n", "2"}, "0/0/0 0/1/1"},
			{"future timestamp", []string{"-o", fmt.Sprintf("@%d", time.Now().Add(time.Hour).UnixMilli())}, ""},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				args := append([]string{"consume", "seq", "-p", "0", "-e", "-f", `%p/%o/%v `}, c.args...)
				r := mustRun(t, addr, "", args...)
				if got := strings.TrimSpace(r.stdout); got != c.want {
					t.Errorf("got %q, want %q", got, c.want)
				}
			})
		}

		// Two partitions, comma-separated; -e exits when both are read.
		r := mustRun(t, addr, "", "consume", "seq", "-p", "0,1", "-o", "-1", "-e", "-f", `%p:%v\n`)
		got := strings.Fields(r.stdout)
		slices.Sort(got)
		if !slices.Equal(got, []string{"0:9", "1:x"}) {
			t.Errorf("two partitions: %q", got)
		}
		// -n without -e stops by itself.
		r = mustRun(t, addr, "", "consume", "seq", "-n", "11")
		if n := len(strings.Fields(r.stdout)); n != 11 {
			t.Errorf("-n 11 printed %d records", n)
		}
	})
}

func TestConsumeErrors(t *testing.T) {
	eachBroker(t, func(t *testing.T, addr string) {
		mustRun(t, addr, "", "topic", "create", "one", "-p", "1")
		for _, c := range []struct {
			args []string
			want error
		}{
			{[]string{"consume", "one", "-o", "x"}, ErrBadOffset},
			{[]string{"consume", "one", "-f", "%q"}, ErrBadFormat},
			{[]string{"consume", "one", "-p", "3"}, ErrUsage},
			{[]string{"consume", "one", "-n", "-1"}, ErrUsage},
			{[]string{"produce", "one", "--compression", "brotli", "--acks", "2"}, ErrUsage},
			{[]string{"produce", "one", "-H", "novalue"}, ErrUsage},
			{[]string{"bench", "produce", "--against", "nowhere"}, ErrUsage},
			{[]string{"bench", "produce", "--max-in-flight", "-1"}, ErrUsage},
		} {
			if r := run(t, addr, "", c.args...); !errors.Is(r.err, c.want) {
				t.Errorf("%v: err %v, want %v", c.args, r.err, c.want)
			}
		}
		r := run(t, addr, "", "consume", "missing-topic", "-e")
		if r.err == nil || !strings.Contains(r.err.Error(), "UNKNOWN_TOPIC_OR_PARTITION") {
			t.Errorf("missing topic: %v", r.err)
		}
		// Both problems are reported at once.
		r = run(t, addr, "", "produce", "one", "--compression", "brotli", "--acks", "2")
		if r.err == nil || !strings.Contains(r.err.Error(), "brotli") || !strings.Contains(r.err.Error(), "--acks") {
			t.Errorf("produce flags: %v", r.err)
		}
		// An empty topic with -e ends at once.
		if r := mustRun(t, addr, "", "consume", "one", "-e"); r.stdout != "" {
			t.Errorf("empty topic printed %q", r.stdout)
		}
	})
}

func TestProduceFile(t *testing.T) {
	eachBroker(t, func(t *testing.T, addr string) {
		path := filepath.Join(t.TempDir(), "in.txt")
		var b strings.Builder
		for i := range 1000 {
			fmt.Fprintf(&b, "line-%04d\n", i)
		}
		b.WriteString("last-line-without-newline")
		if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
		// Auto-created by the broker, as kcat would have it.
		r := mustRun(t, addr, "", "produce", "fromfile", "--file", path, "--progress", "--acks", "1")
		if !strings.Contains(r.stderr, "1001 records") || !strings.Contains(r.stderr, "produced 1001 of 1001") {
			t.Errorf("progress/summary on stderr:\n%s", r.stderr)
		}
		r = mustRun(t, addr, "", "consume", "fromfile", "-e", "-o", "-1")
		if r.stdout != "last-line-without-newline\n" {
			t.Errorf("last record %q", r.stdout)
		}

		// A line past --max-line-bytes is refused with a clear error.
		r = run(t, addr, strings.Repeat("x", 100)+"\n", "produce", "fromfile", "--max-line-bytes", "10")
		if !errors.Is(r.err, ErrUsage) || !strings.Contains(r.err.Error(), "max-line-bytes") {
			t.Errorf("long line: %v", r.err)
		}
		if r = run(t, addr, "", "produce", "fromfile", "--file", filepath.Join(t.TempDir(), "nope")); r.err == nil {
			t.Error("missing file: no error")
		}
	})
}

func TestCommandTree(t *testing.T) {
	want := map[string][]string{
		"topic":   {"alter", "create", "delete", "describe", "list"},
		"produce": nil,
		"consume": nil,
		"bench":   {"consume", "produce", "storage"},
		"group":   {"delete", "describe", "list", "reset-offsets"},
	}
	for _, c := range Commands() {
		subs, ok := want[c.Name()]
		if !ok {
			t.Errorf("unexpected command %s", c.Name())
			continue
		}
		var got []string
		for _, s := range c.Commands() {
			got = append(got, s.Name())
		}
		slices.Sort(got)
		if !slices.Equal(got, subs) {
			t.Errorf("%s subcommands %v, want %v", c.Name(), got, subs)
		}
		if c.PersistentFlags().Lookup("brokers") == nil {
			t.Errorf("%s has no --brokers", c.Name())
		}
		delete(want, c.Name())
	}
	if len(want) > 0 {
		t.Errorf("missing commands: %v", want)
	}
}

func TestBrokersFromEnv(t *testing.T) {
	eachBroker(t, func(t *testing.T, addr string) {
		t.Setenv(BrokersEnv, addr)
		root := &cobra.Command{Use: "sluice", SilenceErrors: true}
		root.AddCommand(Commands()...)
		var out bytes.Buffer
		root.SetOut(&out)
		root.SetErr(io.Discard)
		root.SetArgs([]string{"topic", "create", "fromenv", "--timeout", "10s"})
		if err := root.Execute(); err != nil {
			t.Fatalf("with %s=%s: %v", BrokersEnv, addr, err)
		}
		if !strings.Contains(out.String(), "fromenv") {
			t.Errorf("output:\n%s", out.String())
		}
	})
}

func TestBenchProduceBoth(t *testing.T) {
	// The broker under test stands in for Sluice; --against both adds an
	// in-process kfake, so the table has two rows and a ratio.
	addr := brokertest.Start(t).Addr()
	chart := filepath.Join(t.TempDir(), "both.html")
	r := mustRun(t, addr, "", "bench", "produce", "--against", "both", "--duration", "300ms",
		"--partitions", "4", "--record-bytes", "512", "--chart", chart)
	for _, want := range []string{"TARGET", "sluice", "kfake", "sluice/kfake", "P99", "LATENCY", "WITHIN"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("bench output lacks %q:\n%s", want, r.stdout)
		}
	}
	// The chart has a line per target in each line chart, in the
	// targets' colours, and every cell of the text tables.
	page, err := os.ReadFile(chart)
	if err != nil {
		t.Fatal(err)
	}
	doc := parseReport(t, string(page))
	for _, fig := range []string{chartIDThroughput, chartIDLatencyOverTime} {
		var got []string
		for _, l := range doc.linesIn(fig) {
			got = append(got, l.target+" "+l.color)
		}
		if want := []string{"sluice " + colorSluice, "kfake " + colorKfake}; !slices.Equal(got, want) {
			t.Errorf("%s: lines %v, want %v", fig, got, want)
		}
	}
	for _, line := range strings.Split(r.stdout, "\n") {
		if line == "" || strings.HasPrefix(line, "LATENCY") {
			continue
		}
		// tabwriter pads columns with at least two spaces.
		for _, cell := range regexp.MustCompile(`\s{2,}`).Split(strings.TrimSpace(line), -1) {
			if !slices.Contains(doc.cells, cell) {
				t.Errorf("chart lacks the table cell %q", cell)
			}
		}
	}
	if !strings.Contains(string(page), `<tr class="ratio"><td>sluice/kfake</td>`) {
		t.Error("chart has no ratio row")
	}
	// The same in flight against both: idempotence off, 3 requests.
	r = mustRun(t, addr, "", "bench", "produce", "--against", "both", "--duration", "300ms",
		"--partitions", "2", "--max-in-flight", "3")
	if !strings.Contains(r.stderr, "in flight 3, not idempotent") || strings.Count(r.stdout, "ms") == 0 {
		t.Errorf("--max-in-flight 3:\nstderr: %s\nstdout: %s", r.stderr, r.stdout)
	}
	r = mustRun(t, addr, "", "bench", "produce", "--against", "kfake", "--bytes", "256KiB", "--duration", "0", "--format", "json")
	var rs []produceResult
	if err := json.Unmarshal([]byte(r.stdout), &rs); err != nil || len(rs) != 1 {
		t.Fatalf("json (%v):\n%s", err, r.stdout)
	}
	if got := rs[0]; got.Target != "kfake" || got.Bytes != 256<<10 || got.Records != 256 || got.Errors != 0 || got.P99Ms <= 0 || got.P50Ms > got.P99Ms {
		t.Errorf("bounded by bytes: %+v", got)
	}
	// Fresh topics are deleted afterwards.
	if r = mustRun(t, addr, "", "topic", "list"); strings.Contains(r.stdout, "sluice-bench-") {
		t.Errorf("bench left its topic:\n%s", r.stdout)
	}
}

// TestBenchChart checks --chart against the JSON of the same run: one
// line per target with a point per interval of the series, and the
// figures of the table.
func TestBenchChart(t *testing.T) {
	addr := startKfake(t) // unused: --against kfake starts its own
	dir := t.TempDir()
	for _, tc := range []struct {
		kind      string
		args      []string
		pointsMin int
	}{
		{"produce", []string{"--duration", "500ms"}, 3},
		// Reading 2 MiB takes well under one 100 ms interval.
		{"consume", []string{"--bytes", "2MiB", "--duration", "1s"}, 1},
	} {
		t.Run(tc.kind, func(t *testing.T) {
			chart := filepath.Join(dir, tc.kind+".html")
			args := append([]string{"bench", tc.kind, "--against", "kfake", "--partitions", "2", "--format", "json", "--chart", chart}, tc.args...)
			r := mustRun(t, addr, "", args...)
			if !strings.Contains(r.stderr, "chart written to "+chart) {
				t.Errorf("stderr:\n%s", r.stderr)
			}
			var rs []struct {
				Records  int64         `json:"records"`
				MBPerSec float64       `json:"mb_per_s"`
				Series   []seriesPoint `json:"series"`
			}
			if err := json.Unmarshal([]byte(r.stdout), &rs); err != nil || len(rs) != 1 {
				t.Fatalf("json (%v):\n%s", err, r.stdout)
			}
			series := rs[0].Series
			if len(series) < tc.pointsMin || len(series) > seriesPointsMax {
				t.Fatalf("%d points in the series", len(series))
			}
			var records float64
			for i, p := range series {
				if p.TSec <= 0 || (i > 0 && p.TSec <= series[i-1].TSec) || p.MBPerSec < 0 {
					t.Fatalf("series point %d: %+v", i, p)
				}
				dt := p.TSec
				if i > 0 {
					dt -= series[i-1].TSec
				}
				records += p.RecordsPerSec * dt
			}
			// The series accounts for every record of the run.
			if math.Abs(records-float64(rs[0].Records)) > 0.01*float64(rs[0].Records)+1 {
				t.Errorf("series sums to %.0f records, the run has %d", records, rs[0].Records)
			}
			page, err := os.ReadFile(chart)
			if err != nil {
				t.Fatal(err)
			}
			doc := parseReport(t, string(page))
			lines := doc.linesIn(chartIDThroughput)
			if len(lines) != 1 || lines[0].target != "kfake" || lines[0].points != len(series) || lines[0].n != len(series) {
				t.Errorf("throughput lines %+v, want one for kfake with %d points", lines, len(series))
			}
			for _, want := range []string{fmt.Sprint(rs[0].Records), fmt.Sprintf("%.1f", rs[0].MBPerSec)} {
				if !slices.Contains(doc.cells, want) {
					t.Errorf("chart table lacks %s", want)
				}
			}
			if tc.kind == "produce" && len(doc.linesIn(chartIDLatencyOverTime)) != 1 {
				t.Errorf("produce chart has no latency line")
			}
		})
	}
	// Only HTML, and the refusal comes before the run.
	r := run(t, addr, "", "bench", "produce", "--against", "kfake", "--duration", "10s", "--chart", filepath.Join(dir, "c.png"))
	if !errors.Is(r.err, ErrUsage) || !strings.Contains(r.err.Error(), "only .html is supported") || strings.Contains(r.stderr, "bench produce:") {
		t.Errorf("--chart c.png: %v\n%s", r.err, r.stderr)
	}
	if _, err := os.Stat(filepath.Join(dir, "c.png")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("c.png: %v", err)
	}
}

func TestBenchConsume(t *testing.T) {
	addr := brokertest.Start(t).Addr()
	r := mustRun(t, addr, "", "bench", "consume", "--against", "both", "--bytes", "512KiB", "--partitions", "3", "--format", "json")
	var rs []consumeResult
	if err := json.Unmarshal([]byte(r.stdout), &rs); err != nil || len(rs) != 2 {
		t.Fatalf("json (%v):\n%s", err, r.stdout)
	}
	for _, c := range rs {
		if !c.Complete || c.Bytes != 512<<10 || c.Records != 512 || c.Error != "" || c.MBPerSec <= 0 {
			t.Errorf("%+v", c)
		}
	}
	// An existing topic with data is read as it is.
	mustRun(t, addr, "", "topic", "create", "mine", "-p", "2")
	mustRun(t, addr, "a\nb\nc\n", "produce", "mine", "-q")
	r = mustRun(t, addr, "", "bench", "consume", "--topic", "mine")
	if !strings.Contains(r.stdout, "sluice") || !strings.Contains(r.stdout, "true") {
		t.Errorf("existing topic:\n%s", r.stdout)
	}
	if r = mustRun(t, addr, "", "topic", "list"); !strings.Contains(r.stdout, "mine") {
		t.Errorf("bench deleted the user's topic:\n%s", r.stdout)
	}
}
