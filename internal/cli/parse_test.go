package cli

import (
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

func TestParseOffset(t *testing.T) {
	good := map[string]offsetSpec{
		"start": {kind: offsetStart}, "beginning": {kind: offsetStart}, "END": {kind: offsetEnd},
		"0": {kind: offsetExact}, "42": {kind: offsetExact, n: 42},
		"-5": {kind: offsetFromEnd, n: 5}, "+3": {kind: offsetFromStart, n: 3},
		"@1700000000000": {kind: offsetTime, n: 1700000000000},
	}
	for in, want := range good {
		got, err := parseOffset(in)
		if err != nil || got != want {
			t.Errorf("parseOffset(%q) = %+v, %v; want %+v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "x", "-", "+", "@", "@-1", "--1", "+-1", "1.5", "99999999999999999999"} {
		if _, err := parseOffset(in); !errors.Is(err, ErrBadOffset) {
			t.Errorf("parseOffset(%q): %v, want ErrBadOffset", in, err)
		}
	}
}

func TestOffsetResolve(t *testing.T) {
	const start, end = 10, 20
	cases := []struct {
		spec   string
		atTime int64
		want   int64
	}{
		{"start", -1, 10}, {"end", -1, 20}, {"15", -1, 15}, {"3", -1, 10}, {"99", -1, 20},
		{"-4", -1, 16}, {"-100", -1, 10}, {"+4", -1, 14}, {"+100", -1, 20},
		{"@5", 12, 12}, {"@5", -1, 20}, {"@5", 3, 10},
		{"-9223372036854775807", -1, 10}, {"+9223372036854775807", -1, 20},
	}
	for _, c := range cases {
		o, err := parseOffset(c.spec)
		if err != nil {
			t.Fatal(err)
		}
		if got := o.resolve(start, end, c.atTime); got != c.want {
			t.Errorf("%s (time offset %d): %d, want %d", c.spec, c.atTime, got, c.want)
		}
	}
}

func TestCompileFormat(t *testing.T) {
	r := &kgo.Record{
		Topic: "t", Partition: 3, Offset: 77, Key: []byte("k"), Value: []byte("v\tv"),
		Timestamp: time.UnixMilli(1700000000123),
		Headers:   []kgo.RecordHeader{{Key: "a", Value: []byte("1")}, {Key: "b", Value: []byte("2")}},
	}
	cases := map[string]string{
		`%k\t%v\n`:              "k\tv\tv\n",
		`%t/%p/%o %T %K %V`:     "t/3/77 1700000000123 1 3",
		`%d`:                    "2023-11-14T22:13:20.123Z",
		`100%% %s \\ %h\r`:      "100% v\tv \\ a=1,b=2\r",
		`plain`:                 "plain",
		`%v%v`:                  "v\tvv\tv",
		`%k` + "\n" + `literal`: "k\nliteral",
	}
	for tmpl, want := range cases {
		f, err := compileFormat(tmpl, false)
		if err != nil {
			t.Errorf("%q: %v", tmpl, err)
			continue
		}
		if got := string(f(nil, r)); got != want {
			t.Errorf("%q: got %q, want %q", tmpl, got, want)
		}
	}
	f, err := compileFormat(`%v\n`, true)
	if err != nil {
		t.Fatal(err)
	}
	if got := string(f(nil, r)); got != "a=1,b=2\tv\tv\n" {
		t.Errorf("--print-headers: %q", got)
	}
	for _, bad := range []string{"%", `\`, "%x", `\q`, "ok%"} {
		if _, err := compileFormat(bad, false); !errors.Is(err, ErrBadFormat) {
			t.Errorf("%q: %v, want ErrBadFormat", bad, err)
		}
	}
	// A nil key prints as JSON null, an empty one as "".
	j := string(appendJSONRecord(nil, &kgo.Record{Topic: "t", Value: []byte{}}, false))
	if want := `{"topic":"t","partition":0,"offset":0,"timestamp":` + "-62135596800000" + `,"key":null,"value":""}` + "\n"; j != want {
		t.Errorf("json: %s want %s", j, want)
	}
}

func TestParseByteSize(t *testing.T) {
	good := map[string]int64{
		"0": 0, "1024": 1024, "1KiB": 1024, "4GiB": 4 << 30, "1kb": 1000, "2MB": 2e6,
		"3m": 3 << 20, "512 KiB": 512 << 10, "7b": 7, "1TiB": 1 << 40,
	}
	for in, want := range good {
		if got, err := parseByteSize(in); err != nil || got != want {
			t.Errorf("%q: %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "x", "-1", "1.5GiB", "KiB", "99999999999TiB"} {
		if _, err := parseByteSize(in); !errors.Is(err, ErrUsage) {
			t.Errorf("%q: %v, want ErrUsage", in, err)
		}
	}
}

func TestParseKV(t *testing.T) {
	got, err := parseKV([]string{"a=1", "b=x=y", "c="})
	if err != nil || !slices.Equal(got, [][2]string{{"a", "1"}, {"b", "x=y"}, {"c", ""}}) {
		t.Errorf("%v %v", got, err)
	}
	for _, bad := range []string{"a", "=1"} {
		if _, err := parseKV([]string{bad}); !errors.Is(err, ErrUsage) {
			t.Errorf("%q: %v", bad, err)
		}
	}
}

func TestProducerSettingsReportsEveryProblem(t *testing.T) {
	s := producerSettings{acks: "2", compression: "brotli", linger: -1, batchBytesMax: 0, deliveryTimeout: -1}
	_, err := s.opts()
	if !errors.Is(err, ErrUsage) {
		t.Fatalf("%v", err)
	}
	for _, want := range []string{"--acks", "brotli", "--linger", "--batch-max-bytes", "--delivery-timeout"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %s", err, want)
		}
	}
	for _, acks := range []string{"all", "-1", "1", "leader", "0", "none"} {
		s := producerSettings{acks: acks, compression: "lz4", linger: time.Millisecond, batchBytesMax: 1 << 20}
		if _, err := s.opts(); err != nil {
			t.Errorf("acks %s: %v", acks, err)
		}
	}
}

// TestHistQuantiles checks the histogram against exact quantiles of random
// samples: every answer within 1% (the bucket width) of the truth.
func TestHistQuantiles(t *testing.T) {
	seed := rand.Uint64()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 0))
	var h latencyHist
	samples := make([]time.Duration, 20000)
	for i := range samples {
		// Log-uniform from 1µs to ~1s: every scale the table shows.
		d := time.Duration(float64(time.Microsecond) * math.Pow(10, rng.Float64()*6))
		samples[i] = d
		h.record(d)
	}
	slices.Sort(samples)
	for _, q := range []float64{0.5, 0.9, 0.99, 0.999, 1} {
		idx := int(q*float64(len(samples))+0.5) - 1
		exact := samples[max(idx, 0)]
		got := h.quantile(q)
		if diff := float64(got-exact) / float64(exact); diff < -0.01 || diff > 0.01 {
			t.Errorf("q%.3f: %v, exact %v (%.2f%% off)", q, got, exact, diff*100)
		}
	}
	if h.count() != uint64(len(samples)) {
		t.Errorf("count %d", h.count())
	}
	below := h.countBelow(samples[len(samples)/2])
	if half := uint64(len(samples) / 2); below < half-200 || below > half+200 {
		t.Errorf("countBelow(median) = %d of %d", below, len(samples))
	}
	// Bucket bounds are monotonic and every value maps into its bucket.
	for _, v := range []uint64{0, 1, 127, 128, 129, 255, 256, 1000, 1 << 20, 1<<40 + 12345, 1 << 50, ^uint64(0) >> 1} {
		i := histIndex(v)
		if i < 0 || i >= histBuckets {
			t.Fatalf("histIndex(%d) = %d out of range", v, i)
		}
		if i < histBuckets-1 && (histValue(i) < v || (i > 0 && histValue(i-1) >= v)) {
			t.Errorf("value %d in bucket %d (%d, %d]", v, i, histValue(i-1), histValue(i))
		}
	}
	var empty latencyHist
	if empty.quantile(0.99) != 0 {
		t.Error("empty histogram quantile not 0")
	}
}
