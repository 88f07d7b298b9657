package cli

// The --chart report of bench produce and bench consume: one HTML page that
// stands alone (inline CSS and SVG, no script, nothing fetched), so it can
// be mailed, attached to an issue or opened from disk years later. Every
// coordinate is computed here; the template only places what it is given,
// and html/template escapes every string on the way out.

import (
	"bufio"
	_ "embed"
	"fmt"
	"html/template"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"
)

//go:embed chart.html.tmpl
var chartTemplateText string

// chartTemplate is parsed once; a template that does not parse is a bug in
// this package, caught by every test, not bad input.
var chartTemplate = template.Must(template.New("report").Parse(chartTemplateText))

// Chart geometry, in SVG user units (pixels at 100% zoom).
const (
	chartWidthPx        = 960
	chartHeightPx       = 340
	chartMarginLeftPx   = 76 // y tick labels and the rotated y label
	chartMarginRightPx  = 20
	chartMarginTopPx    = 40 // the legend
	chartMarginBottomPx = 52 // x tick labels and the x label
	// chartDotsMax: lines with at most this many points also get a dot
	// per point, so a short run still shows its samples.
	chartDotsMax = 40
	// chartTicksMax is the most intervals an axis is cut into.
	chartTicksMax = 7
)

// Colours per target, the same in every chart of a report: Sluice blue,
// kfake orange; anything else from the palette.
const (
	colorSluice = "#2563eb"
	colorKfake  = "#ea580c"
)

var chartPalette = []string{"#16a34a", "#9333ea", "#db2777", "#0891b2"}

func targetColor(name string, i int) string {
	switch name {
	case targetSluice:
		return colorSluice
	case targetKfake:
		return colorKfake
	}
	return chartPalette[i%len(chartPalette)]
}

// chartReport is everything the page shows.
type chartReport struct {
	Title    string // the page title and heading
	Summary  string // the settings line the command prints first
	Settings []chartSetting
	Results  htmlTable
	Latency  *htmlTable // produce only: share acknowledged within each bound
	Broker   *htmlTable // produce with --broker-metrics: the broker's own latency
	Charts   []svgChart
}

type chartSetting struct{ Name, Value string }

// htmlTable is a text table (header first) for the template.
type htmlTable struct {
	Header []string
	Rows   []htmlRow
}

type htmlRow struct {
	Cells []string
	Ratio bool // the target/target row
}

// newHTMLTable takes rows as the text table prints them, header first;
// ratioRow marks the last row as the ratio row.
func newHTMLTable(rows [][]string, ratioRow bool) htmlTable {
	var t htmlTable
	if len(rows) == 0 {
		return t
	}
	t.Header = rows[0]
	for i, r := range rows[1:] {
		t.Rows = append(t.Rows, htmlRow{Cells: r, Ratio: ratioRow && i == len(rows)-2})
	}
	return t
}

// svgChart is one chart, laid out.
type svgChart struct {
	ID             string // the figure's id, an anchor for links and tests
	Title          string
	Note           string // a sentence under the chart
	Width, Height  int
	Plot           svgRect
	XLabel, YLabel svgLabel
	XTicks, YTicks []svgTick
	Lines          []svgLine
	Bars           []svgBar
	Legend         []svgLegendItem
	Empty          bool // nothing to plot: the chart says so
	EmptyAt        svgPoint
}

type svgRect struct{ X, Y, W, H float64 }

type svgPoint struct{ X, Y float64 }

type svgLabel struct {
	Text string
	X, Y float64
}

// svgTick is a tick: a grid line from (X1,Y1) to (X2,Y2) and its label at
// (TX,TY).
type svgTick struct {
	X1, Y1, X2, Y2 float64
	TX, TY         float64
	Label          string
}

type svgLine struct {
	Name, Color string
	Points      string // "x,y x,y ..." for <polyline points>
	N           int    // how many points
	Dots        []svgPoint
}

type svgBar struct {
	X, Y, W, H     float64
	Color          string
	Label          string // the value, drawn above the bar
	LabelX, LabelY float64
}

type svgLegendItem struct {
	Name, Color string
	X, Y        float64 // the swatch's top left
	TX, TY      float64 // the text's start
}

// chartSeries is one target's values.
type chartSeries struct {
	Name string
	X, Y []float64 // X unused by bar charts
}

// axisScale is a linear axis from 0 to Top in steps of Step, with labels
// printed to Decimals places.
type axisScale struct {
	Top, Step float64
	Decimals  int
	Ticks     []float64
}

// niceScale chooses an axis from 0 covering maxV in at most
// chartTicksMax steps, each 1, 2 or 5 times a power of ten: the smallest
// such step wastes the least height. An empty or broken range (0,
// negative, NaN, Inf) gets the axis 0..1 rather than a division by zero.
func niceScale(maxV float64) axisScale {
	if !(maxV > 0) || math.IsInf(maxV, 0) {
		maxV = 1
	}
	raw := maxV / chartTicksMax
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	step := 10 * mag
	for _, m := range []float64{1, 2, 5} {
		if m*mag >= raw*(1-1e-9) {
			step = m * mag
			break
		}
	}
	n := int(math.Ceil(maxV/step - 1e-9))
	s := axisScale{Step: step, Top: float64(n) * step, Decimals: max(0, -int(math.Floor(math.Log10(step)+1e-9)))}
	for i := 0; i <= n; i++ {
		s.Ticks = append(s.Ticks, float64(i)*step)
	}
	return s
}

func (s axisScale) label(v float64) string { return strconv.FormatFloat(v, 'f', s.Decimals, 64) }

// r1 rounds a coordinate to a tenth of a pixel: finer is invisible and
// only makes the file bigger.
func r1(v float64) float64 { return math.Round(v*10) / 10 }

// finite returns v, or 0 for NaN and infinities, and never below 0: every
// axis here starts at 0.
func finite(v float64) float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
		return 0
	}
	return v
}

func newSVGChart(title, xLabel, yLabel string) svgChart {
	c := svgChart{Title: title, Width: chartWidthPx, Height: chartHeightPx}
	c.Plot = svgRect{
		X: chartMarginLeftPx, Y: chartMarginTopPx,
		W: chartWidthPx - chartMarginLeftPx - chartMarginRightPx,
		H: chartHeightPx - chartMarginTopPx - chartMarginBottomPx,
	}
	c.XLabel = svgLabel{Text: xLabel, X: r1(c.Plot.X + c.Plot.W/2), Y: chartHeightPx - 10}
	c.YLabel = svgLabel{Text: yLabel, X: 18, Y: r1(c.Plot.Y + c.Plot.H/2)}
	c.EmptyAt = svgPoint{X: r1(c.Plot.X + c.Plot.W/2), Y: r1(c.Plot.Y + c.Plot.H/2)}
	return c
}

// yAxis adds horizontal grid lines and labels for s and returns the map
// from a value to its y coordinate.
func (c *svgChart) yAxis(s axisScale) func(float64) float64 {
	py := func(v float64) float64 { return r1(c.Plot.Y + c.Plot.H - v/s.Top*c.Plot.H) }
	for _, v := range s.Ticks {
		y := py(v)
		c.YTicks = append(c.YTicks, svgTick{X1: c.Plot.X, Y1: y, X2: c.Plot.X + c.Plot.W, Y2: y,
			TX: c.Plot.X - 8, TY: y, Label: s.label(v)})
	}
	return py
}

// legend lays the series names out in a row above the plot.
func (c *svgChart) legend(names, colors []string) {
	x := c.Plot.X
	for i, n := range names {
		c.Legend = append(c.Legend, svgLegendItem{Name: n, Color: colors[i], X: r1(x), Y: 14, TX: r1(x + 20), TY: 24})
		// About 7.5 px per character at the legend's 13 px font.
		x += 20 + 7.5*float64(len([]rune(n))) + 24
	}
}

// lineChart plots each series as a polyline over a shared linear x axis.
func lineChart(title, xLabel, yLabel string, series []chartSeries) svgChart {
	c := newSVGChart(title, xLabel, yLabel)
	var xMax, yMax float64
	total := 0
	for _, s := range series {
		for i := range s.X {
			xMax, yMax = max(xMax, finite(s.X[i])), max(yMax, finite(s.Y[i]))
		}
		total += len(s.X)
	}
	xs, ys := niceScale(xMax), niceScale(yMax)
	py := c.yAxis(ys)
	px := func(v float64) float64 { return r1(c.Plot.X + v/xs.Top*c.Plot.W) }
	for _, v := range xs.Ticks {
		x := px(v)
		c.XTicks = append(c.XTicks, svgTick{X1: x, Y1: c.Plot.Y, X2: x, Y2: c.Plot.Y + c.Plot.H,
			TX: x, TY: c.Plot.Y + c.Plot.H + 18, Label: xs.label(v)})
	}
	var names, colors []string
	for i, s := range series {
		l := svgLine{Name: s.Name, Color: targetColor(s.Name, i), N: len(s.X)}
		var b []byte
		for j := range s.X {
			x, y := px(finite(s.X[j])), py(finite(s.Y[j]))
			if j > 0 {
				b = append(b, ' ')
			}
			b = strconv.AppendFloat(b, x, 'f', -1, 64)
			b = append(b, ',')
			b = strconv.AppendFloat(b, y, 'f', -1, 64)
			if len(s.X) <= chartDotsMax {
				l.Dots = append(l.Dots, svgPoint{X: x, Y: y})
			}
		}
		l.Points = string(b)
		c.Lines = append(c.Lines, l)
		names, colors = append(names, s.Name), append(colors, l.Color)
	}
	c.legend(names, colors)
	c.Empty = total == 0
	return c
}

// barChart draws one group of bars per entry of groups, one bar per series
// in each, with each bar's value written above it by label.
func barChart(title, yLabel string, groups []string, series []chartSeries, label func(float64) string) svgChart {
	c := newSVGChart(title, "", yLabel)
	var yMax float64
	total := 0
	for _, s := range series {
		for _, v := range s.Y {
			yMax = max(yMax, finite(v))
		}
		total += len(s.Y)
	}
	// Room above the tallest bar for its label.
	py := c.yAxis(niceScale(yMax * 1.08))
	groupW := c.Plot.W / float64(max(len(groups), 1))
	inner := groupW * 0.72
	barW := inner / float64(max(len(series), 1))
	for g, name := range groups {
		x0 := c.Plot.X + float64(g)*groupW
		cx := r1(x0 + groupW/2)
		c.XTicks = append(c.XTicks, svgTick{X1: cx, Y1: c.Plot.Y + c.Plot.H, X2: cx, Y2: c.Plot.Y + c.Plot.H + 5,
			TX: cx, TY: c.Plot.Y + c.Plot.H + 20, Label: name})
		for i, s := range series {
			if g >= len(s.Y) {
				continue
			}
			v := finite(s.Y[g])
			x := x0 + (groupW-inner)/2 + float64(i)*barW
			y := py(v)
			c.Bars = append(c.Bars, svgBar{X: r1(x + 1), Y: y, W: r1(barW - 2), H: r1(c.Plot.Y + c.Plot.H - y),
				Color: targetColor(s.Name, i), Label: label(v), LabelX: r1(x + barW/2), LabelY: r1(y - 5)})
		}
	}
	var names, colors []string
	for i, s := range series {
		names, colors = append(names, s.Name), append(colors, targetColor(s.Name, i))
	}
	c.legend(names, colors)
	c.Empty = total == 0
	return c
}

// throughputChart plots MB/s per interval, a line per target.
func throughputChart(title string, names []string, series [][]seriesPoint) svgChart {
	var ss []chartSeries
	for i, pts := range series {
		s := chartSeries{Name: names[i]}
		for _, p := range pts {
			s.X, s.Y = append(s.X, p.TSec), append(s.Y, p.MBPerSec)
		}
		ss = append(ss, s)
	}
	return lineChart(title, "seconds since the start of the run", "MB/s", ss)
}

// Ids of the report's figures.
const (
	chartIDThroughput      = "throughput"
	chartIDPercentiles     = "latency-percentiles"
	chartIDLatencyOverTime = "latency-over-time"
)

// percentileGroups are the bars of the latency chart.
var percentileGroups = []string{"p50", "p90", "p99", "p99.9", "max"}

func produceCharts(rs []produceResult) []svgChart {
	var (
		names []string
		tput  [][]seriesPoint
		pct   []chartSeries
		p99s  []chartSeries
	)
	for _, r := range rs {
		names, tput = append(names, r.Target), append(tput, r.Series)
		p90 := 0.0
		if r.hist != nil {
			p90 = ms(r.hist.quantile(0.90))
		}
		pct = append(pct, chartSeries{Name: r.Target, Y: []float64{r.P50Ms, p90, r.P99Ms, r.P999Ms, r.MaxMs}})
		s := chartSeries{Name: r.Target}
		for _, p := range r.Series {
			if p.P99Ms > 0 { // intervals with nothing acknowledged have no latency
				s.X, s.Y = append(s.X, p.TSec), append(s.Y, p.P99Ms)
			}
		}
		p99s = append(p99s, s)
	}
	t := throughputChart("Throughput: acknowledged value bytes per interval", names, tput)
	t.ID = chartIDThroughput
	t.Note = "Each point is the rate over the interval that ends there."
	l := barChart("Latency percentiles, from Produce to acknowledgement", "ms", percentileGroups, pct, fmtMs)
	l.ID = chartIDPercentiles
	l.Note = "Over the whole run, to histogram precision (under 1%); linger included."
	o := lineChart("Latency over time: p99 of the records acknowledged in each interval", "seconds since the start of the run", "ms", p99s)
	o.ID = chartIDLatencyOverTime
	o.Note = "Intervals in which nothing was acknowledged have no point; intervals merged to bound memory on long runs show the larger of their p99s."
	return []svgChart{t, l, o}
}

// settings lists the run's parameters for the report.
func (f *benchFlags) settings(kind string, seeds []string, started time.Time) []chartSetting {
	var targets []string
	for _, t := range f.targets() {
		if t == targetSluice {
			targets = append(targets, "sluice at "+strings.Join(seeds, ","))
		} else {
			targets = append(targets, t+" (in process)")
		}
	}
	topic := "a fresh one per target, deleted afterwards"
	switch {
	case f.topic != "":
		topic = f.topic
	case f.keepTopic:
		topic = "a fresh one per target, kept"
	}
	duration := "no limit"
	if f.duration > 0 {
		duration = f.duration.String()
	}
	s := []chartSetting{
		{"targets", strings.Join(targets, "; ")},
		{"topic", topic},
		{"record size", humanBytes(int64(f.recordBytes))},
		{"partitions", fmt.Sprint(f.partitions)},
		{"replicas", fmt.Sprint(f.replicas)},
		{"acks", f.acks},
		{"linger", f.linger.String()},
		{"batch size", "up to " + humanBytes(int64(f.batchBytesMax))},
		{"compression", f.compression},
		{"in flight", f.inFlight()},
	}
	if kind == "produce" {
		s = append(s, chartSetting{"rate", f.rateText()})
	}
	s = append(s,
		chartSetting{"duration", duration},
		chartSetting{"bytes", bytesOrNone(int64(f.bytes))},
		chartSetting{"date", started.Format("2006-01-02 15:04:05 -0700")},
		chartSetting{"go", runtime.Version()},
		chartSetting{"platform", fmt.Sprintf("%s/%s, %d CPUs", runtime.GOOS, runtime.GOARCH, runtime.NumCPU())},
	)
	if h, err := os.Hostname(); err == nil && h != "" {
		s = append(s, chartSetting{"host", h})
	}
	return s
}

func produceReport(f *benchFlags, seeds []string, rs []produceResult, started time.Time) chartReport {
	lat := newHTMLTable(latencyTable(rs), false)
	rep := chartReport{
		Title:    "sluice bench produce",
		Summary:  f.produceSummary(),
		Settings: f.settings("produce", seeds, started),
		Results:  newHTMLTable(produceTable(rs), len(rs) == 2),
		Latency:  &lat,
		Charts:   produceCharts(rs),
	}
	if rows := brokerTable(rs); rows != nil {
		b := newHTMLTable(rows, false)
		rep.Broker = &b
	}
	return rep
}

func consumeReport(f *benchFlags, seeds []string, rs []consumeResult, started time.Time) chartReport {
	var (
		names  []string
		series [][]seriesPoint
	)
	for _, r := range rs {
		names, series = append(names, r.Target), append(series, r.Series)
	}
	t := throughputChart("Throughput: bytes read per interval", names, series)
	t.ID = chartIDThroughput
	t.Note = "Each point is the rate over the interval that ends there; the fill before the read is not shown."
	return chartReport{
		Title:    "sluice bench consume",
		Summary:  f.consumeSummary(),
		Settings: f.settings("consume", seeds, started),
		Results:  newHTMLTable(consumeTable(rs), len(rs) == 2),
		Charts:   []svgChart{t},
	}
}

func renderChart(w io.Writer, rep chartReport) error {
	return chartTemplate.Execute(w, rep)
}

// writeChart writes the report to a temporary file next to path and renames
// it over path, so an interrupted or failed write leaves no half report.
func writeChart(path string, rep chartReport) (err error) {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return fmt.Errorf("cli: writing chart: %w", err)
	}
	defer func() {
		if err != nil {
			_ = tmp.Close()
			_ = os.Remove(tmp.Name())
			err = fmt.Errorf("cli: writing chart %s: %w", path, err)
		}
	}()
	bw := bufio.NewWriter(tmp)
	if err = renderChart(bw, rep); err != nil {
		return err
	}
	if err = bw.Flush(); err != nil {
		return err
	}
	// CreateTemp makes the file private; a report is for sharing.
	if err = tmp.Chmod(0o644); err != nil {
		return err
	}
	if err = tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
