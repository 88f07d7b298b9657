package cli

import (
	"bytes"
	"encoding/xml"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// htmlDoc is what the tests read back from a report. The report is parsed
// with encoding/xml in its lenient HTML mode (golang.org/x/net/html is not
// a dependency of the module): that is enough to find elements and
// attributes and to prove the page is well nested.
type htmlDoc struct {
	lines   []polyline
	cells   []string            // text of every <td> and <th>
	ticks   map[string][]string // figure id: its tick labels, y then x
	figures []string            // figure ids in order
	texts   []string            // every text node
	inFig   map[string][]string // figure id: its text nodes
}

type polyline struct {
	figure, target, color string
	n                     int // data-points
	points                int // coordinate pairs in points
}

func parseReport(t *testing.T, page string) htmlDoc {
	t.Helper()
	d := xml.NewDecoder(strings.NewReader(page))
	d.Strict = false
	d.AutoClose = xml.HTMLAutoClose
	d.Entity = xml.HTMLEntity
	doc := htmlDoc{ticks: map[string][]string{}, inFig: map[string][]string{}}
	var stack []xml.StartElement
	figure := ""
	attr := func(e xml.StartElement, name string) string {
		for _, a := range e.Attr {
			if a.Name.Local == name {
				return a.Value
			}
		}
		return ""
	}
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("report does not parse: %v", err)
		}
		switch tok := tok.(type) {
		case xml.StartElement:
			stack = append(stack, tok)
			switch tok.Name.Local {
			case "figure":
				figure = attr(tok, "id")
				doc.figures = append(doc.figures, figure)
			case "polyline":
				p := polyline{figure: figure, target: attr(tok, "data-target"), color: attr(tok, "stroke"),
					points: len(strings.Fields(attr(tok, "points")))}
				n, err := strconv.Atoi(attr(tok, "data-points"))
				if err != nil {
					t.Fatalf("data-points: %v", err)
				}
				p.n = n
				doc.lines = append(doc.lines, p)
			}
		case xml.EndElement:
			if len(stack) > 0 {
				stack = stack[:len(stack)-1]
			}
		case xml.CharData:
			if len(stack) == 0 {
				continue
			}
			text := strings.TrimSpace(string(tok))
			if text == "" {
				continue
			}
			doc.texts = append(doc.texts, text)
			if figure != "" {
				doc.inFig[figure] = append(doc.inFig[figure], text)
			}
			top := stack[len(stack)-1]
			switch {
			case top.Name.Local == "td" || top.Name.Local == "th":
				doc.cells = append(doc.cells, text)
			case top.Name.Local == "text" && attr(top, "class") == "tick":
				doc.ticks[figure] = append(doc.ticks[figure], text)
			}
		}
	}
	return doc
}

func (d htmlDoc) linesIn(figure string) []polyline {
	var out []polyline
	for _, l := range d.lines {
		if l.figure == figure {
			out = append(out, l)
		}
	}
	return out
}

func TestNiceScale(t *testing.T) {
	for _, tc := range []struct {
		max    float64
		top    float64
		labels []string
	}{
		{0, 1, []string{"0.0", "0.2", "0.4", "0.6", "0.8", "1.0"}},
		{math.NaN(), 1, []string{"0.0", "0.2", "0.4", "0.6", "0.8", "1.0"}},
		{math.Inf(1), 1, []string{"0.0", "0.2", "0.4", "0.6", "0.8", "1.0"}},
		{-3, 1, []string{"0.0", "0.2", "0.4", "0.6", "0.8", "1.0"}},
		{1.3, 1.4, []string{"0.0", "0.2", "0.4", "0.6", "0.8", "1.0", "1.2", "1.4"}},
		{950, 1000, []string{"0", "200", "400", "600", "800", "1000"}},
		{1000, 1000, []string{"0", "200", "400", "600", "800", "1000"}},
		{3.32, 3.5, []string{"0.0", "0.5", "1.0", "1.5", "2.0", "2.5", "3.0", "3.5"}},
		{0.0042, 0.005, []string{"0.000", "0.001", "0.002", "0.003", "0.004", "0.005"}},
		{12345, 14000, nil},
	} {
		s := niceScale(tc.max)
		if math.Abs(s.Top-tc.top) > 1e-9 {
			t.Errorf("niceScale(%v): top %v, want %v", tc.max, s.Top, tc.top)
		}
		var labels []string
		for _, v := range s.Ticks {
			labels = append(labels, s.label(v))
		}
		if tc.labels != nil && !slices.Equal(labels, tc.labels) {
			t.Errorf("niceScale(%v): labels %v, want %v", tc.max, labels, tc.labels)
		}
	}
	// Whatever the range: it is covered, with at most chartTicksMax steps,
	// and no whole step to spare; labels are distinct.
	for v := 1e-6; v < 1e9; v *= 1.37 {
		s := niceScale(v)
		if s.Top < v || s.Top-s.Step >= v || len(s.Ticks) > chartTicksMax+1 || len(s.Ticks) < 2 {
			t.Fatalf("niceScale(%v) = %+v", v, s)
		}
		seen := map[string]bool{}
		for _, x := range s.Ticks {
			l := s.label(x)
			if seen[l] {
				t.Fatalf("niceScale(%v): label %s twice (%+v)", v, l, s)
			}
			seen[l] = true
		}
	}
}

// syntheticSeries is n points one tenth of a second apart, at rate MB/s
// with a ripple.
func syntheticSeries(n int, rate float64) []seriesPoint {
	var out []seriesPoint
	for i := range n {
		out = append(out, seriesPoint{TSec: float64(i+1) / 10, MBPerSec: rate * (1 + 0.1*math.Sin(float64(i))),
			RecordsPerSec: rate * 1000, P99Ms: 5 + float64(i%7)})
	}
	return out
}

func TestChartRendersSyntheticSeries(t *testing.T) {
	for _, tc := range []struct {
		name   string
		series map[string][]seriesPoint
		yTicks []string // of the throughput chart
	}{
		{"flat zero", map[string][]seriesPoint{"sluice": {{TSec: 0.1}, {TSec: 0.2}}}, []string{"0.0", "0.2", "1.0"}},
		{"small", map[string][]seriesPoint{"sluice": syntheticSeries(3, 1.1)}, []string{"0.0", "0.2", "1.2"}},
		{"large", map[string][]seriesPoint{"sluice": syntheticSeries(250, 800), "kfake": syntheticSeries(37, 400)}, []string{"0", "200", "1000"}},
		{"empty", map[string][]seriesPoint{"kfake": {}}, []string{"0.0", "1.0"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var rs []produceResult
			for _, target := range []string{"sluice", "kfake"} {
				s, ok := tc.series[target]
				if !ok {
					continue
				}
				h := &latencyHist{}
				for i := range 100 {
					h.record(time.Duration(i+1) * time.Millisecond)
				}
				rs = append(rs, produceResult{Target: target, Series: s, hist: h, Records: 1234567, MBPerSec: 987.6,
					P50Ms: 50, P99Ms: 99, P999Ms: 100, MaxMs: 100})
			}
			f := &benchFlags{g: &globals{}}
			f.producerSettings = producerSettings{acks: "all", compression: "none", linger: 5 * time.Millisecond, batchBytesMax: 1 << 20}
			f.recordBytes, f.partitions, f.against = 1024, 16, targetBoth
			var b bytes.Buffer
			if err := renderChart(&b, produceReport(f, []string{"127.0.0.1:9092"}, rs, time.Now())); err != nil {
				t.Fatal(err)
			}
			doc := parseReport(t, b.String())
			if want := []string{chartIDThroughput, chartIDPercentiles, chartIDLatencyOverTime}; !slices.Equal(doc.figures, want) {
				t.Errorf("figures %v, want %v", doc.figures, want)
			}
			lines := doc.linesIn(chartIDThroughput)
			if len(lines) != len(rs) {
				t.Fatalf("%d throughput lines for %d targets", len(lines), len(rs))
			}
			for i, l := range lines {
				if l.target != rs[i].Target || l.n != len(rs[i].Series) || l.points != len(rs[i].Series) ||
					l.color != targetColor(rs[i].Target, i) {
					t.Errorf("line %+v for %s with %d points", l, rs[i].Target, len(rs[i].Series))
				}
			}
			ticks := doc.ticks[chartIDThroughput]
			for _, want := range tc.yTicks {
				if !slices.Contains(ticks, want) {
					t.Errorf("throughput ticks %v lack %s", ticks, want)
				}
			}
			for _, want := range []string{"MB/s", "ms", "seconds since the start of the run", "p99.9", "1234567", "987.6", "99.0ms"} {
				if !slices.Contains(doc.texts, want) {
					t.Errorf("report lacks the text %q", want)
				}
			}
			if empty := slices.Contains(doc.inFig[chartIDThroughput], "no data"); empty != (tc.name == "empty") {
				t.Errorf("\"no data\" shown: %v", empty)
			}
		})
	}
}

func TestChartEscapesEveryString(t *testing.T) {
	const evil = `<script>alert("x")</script>&<b>`
	h := &latencyHist{}
	h.record(time.Millisecond)
	rs := []produceResult{{Target: evil, Series: syntheticSeries(3, 10), hist: h, FirstError: evil}}
	rep := chartReport{
		Title:    evil,
		Summary:  evil,
		Settings: []chartSetting{{evil, evil}},
		Results:  newHTMLTable([][]string{{evil}, {evil}}, false),
		Charts:   produceCharts(rs),
	}
	rep.Charts[0].Title, rep.Charts[0].Note = evil, evil
	var b bytes.Buffer
	if err := renderChart(&b, rep); err != nil {
		t.Fatal(err)
	}
	page := b.String()
	for _, bad := range []string{"<script", "<b>", `"x"`} {
		if strings.Contains(page, bad) {
			t.Errorf("report holds %s unescaped", bad)
		}
	}
	doc := parseReport(t, page)
	// Escaped, the label still reads as written: in the legend, the
	// table, the settings, the polyline's data-target.
	if n := strings.Count(strings.Join(doc.texts, "\n"), evil); n < 6 {
		t.Errorf("the label reads back %d times:\n%s", n, page)
	}
	if l := doc.linesIn(chartIDThroughput); len(l) != 1 || l[0].target != evil {
		t.Errorf("lines %+v", l)
	}
}

func TestSamplerBoundsAndSums(t *testing.T) {
	start := time.Unix(1000, 0)
	h := &latencyHist{}
	s := newSampler(start, 10*time.Millisecond, h) // below the minimum: raised
	if s.interval != sampleIntervalMin {
		t.Fatalf("interval %v", s.interval)
	}
	now := start
	var wantBytes, wantRecords int64
	// A long run of unknown length: many more ticks than points allowed.
	for i := range 5 * seriesPointsMax {
		now = now.Add(s.interval)
		s.add(1000, 1)
		h.record(time.Duration(i%10+1) * time.Millisecond)
		wantBytes, wantRecords = wantBytes+1000, wantRecords+1
		s.tick(now)
		if len(s.points) > seriesPointsMax {
			t.Fatalf("%d points after %d ticks", len(s.points), i+1)
		}
	}
	// A short tail is folded into the last point, a long one is not.
	s.add(7, 1)
	wantBytes, wantRecords = wantBytes+7, wantRecords+1
	n := len(s.points)
	pts := s.finish(now.Add(time.Millisecond))
	if len(pts) != n {
		t.Errorf("short tail: %d points, want %d", len(pts), n)
	}
	var gotBytes, gotRecords int64
	var gotDur time.Duration
	for i, p := range pts {
		gotBytes, gotRecords, gotDur = gotBytes+p.bytes, gotRecords+p.records, gotDur+p.dur
		if i > 0 && p.end-pts[i-1].end != p.dur {
			t.Fatalf("point %d: end %v after %v, dur %v", i, p.end, pts[i-1].end, p.dur)
		}
		if p.latN > 0 && (p.p99 < time.Millisecond || p.p99 > p.max || p.max > 11*time.Millisecond) {
			t.Fatalf("point %d: p99 %v max %v", i, p.p99, p.max)
		}
	}
	if gotBytes != wantBytes || gotRecords != wantRecords || gotDur != pts[len(pts)-1].end {
		t.Errorf("sums: %d bytes %d records over %v; want %d, %d over %v", gotBytes, gotRecords, gotDur,
			wantBytes, wantRecords, pts[len(pts)-1].end)
	}
	series := seriesOf(pts)
	if len(series) != len(pts) || series[0].MBPerSec <= 0 || series[0].P99Ms <= 0 {
		t.Errorf("series %+v", series[:1])
	}

	s = newSampler(start, time.Second, nil)
	s.add(100, 1)
	s.tick(start.Add(time.Second))
	if pts := s.finish(start.Add(1600 * time.Millisecond)); len(pts) != 2 || pts[1].dur != 600*time.Millisecond {
		t.Errorf("long tail: %+v", pts)
	}
	if got := seriesOf(nil); got == nil || len(got) != 0 {
		t.Errorf("empty series %v: want [] in JSON, not null", got)
	}
}

func TestSamplerGoroutine(t *testing.T) {
	// The real ticker: some points in a short run, and finish joins the
	// goroutine (goleak in TestMain checks).
	s := startSampler(time.Now(), sampleIntervalMin, nil)
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) {
		s.add(10, 1)
		time.Sleep(10 * time.Millisecond)
		if s.records.Load() >= 35 {
			break
		}
	}
	if pts := s.finish(time.Now()); len(pts) < 2 {
		t.Errorf("%d points from a %v run", len(pts), time.Duration(len(pts))*sampleIntervalMin)
	}
}

func TestIntervalLatency(t *testing.T) {
	h := &latencyHist{}
	for range 1000 {
		h.record(time.Second) // before the interval: must not count
	}
	prev := h.snapshot(nil)
	for i := range 100 {
		h.record(time.Duration(i+1) * time.Millisecond)
	}
	p99, maxD, n := intervalLatency(prev, h.snapshot(nil))
	near := func(got, want time.Duration) bool { return math.Abs(float64(got-want)) <= float64(want)/histSub+1 }
	if n != 100 || !near(p99, 99*time.Millisecond) || !near(maxD, 100*time.Millisecond) {
		t.Errorf("p99 %v max %v n %d", p99, maxD, n)
	}
	cur := h.snapshot(nil)
	if p99, maxD, n := intervalLatency(cur, cur); p99 != 0 || maxD != 0 || n != 0 {
		t.Errorf("empty interval: %v %v %d", p99, maxD, n)
	}
}

func TestChartPath(t *testing.T) {
	dir := t.TempDir()
	for path, want := range map[string]string{
		"":                                 "",
		filepath.Join(dir, "r.html"):       "",
		filepath.Join(dir, "R.HTM"):        "",
		filepath.Join(dir, "r.png"):        "only .html is supported",
		filepath.Join(dir, "r"):            "only .html is supported",
		filepath.Join(dir, "no", "r.html"): "does not exist",
	} {
		err := validateChartPath(path)
		if (err == nil) != (want == "") || (err != nil && !strings.Contains(err.Error(), want)) {
			t.Errorf("%q: %v, want %q", path, err, want)
		}
	}

	// The file appears whole or not at all, readable by others.
	rep := chartReport{Title: "t", Results: newHTMLTable([][]string{{"A"}, {"1"}}, false)}
	path := filepath.Join(dir, "r.html")
	if err := writeChart(path, rep); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(path); err != nil || st.Mode().Perm() != 0o644 {
		t.Errorf("stat %v %v", st, err)
	}
	// A path that is a directory fails at the rename: no temp file stays.
	bad := filepath.Join(dir, "d.html")
	if err := os.Mkdir(bad, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := writeChart(bad, rep); err == nil {
		t.Error("writing over a directory: no error")
	}
	ents, _ := os.ReadDir(dir)
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	if !slices.Equal(names, []string{"d.html", "r.html"}) {
		t.Errorf("directory holds %v", names)
	}
}
