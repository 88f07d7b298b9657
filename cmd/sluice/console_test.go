package main

import (
	"bytes"
	"context"
	"fmt"
	"image/png"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// consoleTestTimeout bounds the whole browser test: broker start, the
// workload, the browser and every wait in it.
const consoleTestTimeout = 50 * time.Second

// findChromium returns the browser to drive: SLUICE_CHROMIUM, else the
// first of the usual names on PATH. None skips the test (it is the only
// test that needs a browser), unless SLUICE_REQUIRE_CHROMIUM=1: CI
// installs Debian's chromium and sets it, so there the test never skips.
func findChromium(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("SLUICE_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	const msg = "no Chromium found: set SLUICE_CHROMIUM or install one (Debian: apt-get install chromium)"
	if os.Getenv("SLUICE_REQUIRE_CHROMIUM") == "1" {
		t.Fatal(msg + "; SLUICE_REQUIRE_CHROMIUM=1 forbids skipping")
	}
	t.Skip(msg)
	return ""
}

// The test's workload: a 3-partition topic with a per-topic config
// override, text records with keys and a header, one binary value, and a
// consumer group that committed part of them and stays a member.
const (
	consoleTopic  = "console-orders"
	consoleGroup  = "console-billing"
	consoleClient = "console-e2e"
)

// consoleBinary is partition 0's last record's value: not UTF-8, so the
// console shows it as hex even without the toggle.
var consoleBinary = []byte{0x00, 0x01, 0xfe, 0xff, 0x80, 0x7f, 0x10}

func consoleText(p, i int) string {
	return fmt.Sprintf(`{"order":%d,"partition":%d,"status":"paid"}`, i, p)
}

// hexOf is how the console prints bytes as hex.
func hexOf(b []byte) string {
	parts := make([]string, len(b))
	for i, c := range b {
		parts[i] = fmt.Sprintf("%02x", c)
	}
	return strings.Join(parts, " ")
}

// switchProxy stands between the browser and the admin listener so the
// test can cut the console off (every connection closed at once, as when
// the broker goes away) and restore it, without restarting the broker on
// the same port.
type switchProxy struct {
	down atomic.Bool
	rp   *httputil.ReverseProxy
}

func (p *switchProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if p.down.Load() {
		if hj, ok := w.(http.Hijacker); ok {
			if c, _, err := hj.Hijack(); err == nil {
				c.Close()
				return
			}
		}
		http.Error(w, "down", http.StatusBadGateway)
		return
	}
	p.rp.ServeHTTP(w, r)
}

func TestConsoleInBrowser(t *testing.T) {
	chromium := findChromium(t)
	ctx, cancel := context.WithTimeout(context.Background(), consoleTestTimeout)
	defer cancel()
	kafka, adminBase := startServed(t, ctx)
	target, err := url.Parse(adminBase)
	if err != nil {
		t.Fatal(err)
	}
	proxy := &switchProxy{rp: httputil.NewSingleHostReverseProxy(target)}
	front := httptest.NewServer(proxy) // 127.0.0.1
	t.Cleanup(front.Close)
	base := front.URL

	// --- The workload.
	cl, err := kgo.NewClient(kgo.SeedBrokers(kafka), kgo.DefaultProduceTopic(consoleTopic), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	retention := "3600000"
	if r, err := adm.CreateTopic(ctx, 3, 1, map[string]*string{"retention.ms": &retention}, consoleTopic); err != nil || r.Err != nil {
		t.Fatalf("create topic: %v %v", err, r.Err)
	}
	// Partition 0: 6 text records and the binary one (hw 7); partition
	// 1: 4 (hw 4); partition 2: 3 (hw 3).
	counts := []int{6, 4, 3}
	var recs []*kgo.Record
	for p, n := range counts {
		for i := range n {
			recs = append(recs, &kgo.Record{Partition: int32(p), Key: fmt.Appendf(nil, "order-%d-%d", p, i), Value: []byte(consoleText(p, i)),
				Headers: []kgo.RecordHeader{{Key: "trace-id", Value: fmt.Appendf(nil, "t-%d-%d", p, i)}}})
		}
	}
	recs = append(recs, &kgo.Record{Partition: 0, Key: []byte("binary"), Value: consoleBinary})
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
	hw := []int64{7, 4, 3}

	// The group: one member that consumes everything, commits part of
	// it and stays in the group (its client closes at the end).
	gc, err := kgo.NewClient(kgo.SeedBrokers(kafka), kgo.ClientID(consoleClient), kgo.ConsumerGroup(consoleGroup),
		kgo.ConsumeTopics(consoleTopic), kgo.DisableAutoCommit(), kgo.FetchMaxWait(200*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer gc.Close()
	for got := 0; got < len(recs); {
		fs := gc.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("consumed %d of %d records: %v", got, len(recs), err)
		}
		fs.EachError(func(topic string, p int32, err error) { t.Logf("fetch %s/%d: %v", topic, p, err) })
		got += fs.NumRecords()
	}
	committed := []int64{3, 4, 1}
	commit := map[string]map[int32]kgo.EpochOffset{consoleTopic: {}}
	var wantLag int64
	for p, off := range committed {
		commit[consoleTopic][int32(p)] = kgo.EpochOffset{Epoch: -1, Offset: off}
		wantLag += hw[p] - off
	}
	var commitErr error
	gc.CommitOffsetsSync(ctx, commit, func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
		commitErr = err
		for _, rt := range resp.Topics {
			for _, rp := range rt.Partitions {
				if err := kerr.ErrorForCode(rp.ErrorCode); err != nil && commitErr == nil {
					commitErr = fmt.Errorf("%s/%d: %w", rt.Topic, rp.Partition, err)
				}
			}
		}
	})
	if commitErr != nil {
		t.Fatalf("commit: %v", commitErr)
	}

	// --- The browser.
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromium),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("force-color-profile", "srgb"),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	}
	actx, acancel := chromedp.NewExecAllocator(ctx, opts...)
	defer acancel()
	bctx, bcancel := chromedp.NewContext(actx, chromedp.WithErrorf(t.Logf))
	defer bcancel()

	do := func(what string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(bctx, actions...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	// text reads one element's textContent (trimmed).
	text := func(sel string) string {
		t.Helper()
		s, err := chromedp.Run(bctx, chromedp.TextContent(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("text of %s: %v", sel, err)
		}
		return strings.TrimSpace(s)
	}
	// waitJS waits until a JavaScript predicate is true; the page polls
	// every 2 s, so 10 s is five polls.
	waitJS := func(what, predicate string) {
		t.Helper()
		if _, err := chromedp.Run(bctx, chromedp.Poll[bool](predicate, chromedp.WithPollingTimeout(10*time.Second),
			chromedp.WithPollingInterval(100*time.Millisecond))); err != nil {
			t.Fatalf("waiting for %s: %v", what, err)
		}
	}
	shotDir := os.Getenv("SLUICE_CONSOLE_SCREENSHOT_DIR")
	screenshot := func(name string) {
		t.Helper()
		buf, err := chromedp.Run(bctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatalf("screenshot %s: %v", name, err)
		}
		checkNotBlank(t, name, buf)
		if shotDir != "" {
			if err := os.WriteFile(filepath.Join(shotDir, name+".png"), buf, 0o644); err != nil {
				t.Errorf("saving screenshot: %v", err)
			}
		}
	}
	row := func(table, key string) string {
		return fmt.Sprintf(`[data-testid=%s] tbody tr[data-key=%q]`, table, key)
	}

	// Topics: the topic is listed (internal topics hidden by default).
	do("open the console",
		chromedp.Navigate(base+"/"),
		chromedp.WaitVisible(chromedp.CSS(row("topics-table", consoleTopic))))
	if s := text(`[data-testid=broker-name]`); !strings.Contains(s, "node 1") {
		t.Errorf("header broker name %q", s)
	}
	waitJS("the topic's record count", fmt.Sprintf(`document.querySelector(%q)?.textContent === "14"`,
		row("topics-table", consoleTopic)+` [data-testid=topic-records]`))
	if n, err := chromedp.Run(bctx, chromedp.Evaluate[int](`document.querySelectorAll('[data-testid=topics-table] tbody tr[data-key^="__"]').length`)); err != nil || n != 0 {
		t.Errorf("internal topics shown by default: %d %v", n, err)
	}
	// Internal topics appear with the toggle, and go again.
	do("show internal topics",
		chromedp.Click(chromedp.CSS(`[data-testid=toggle-internal]`)),
		chromedp.WaitVisible(chromedp.CSS(row("topics-table", "__consumer_offsets"))),
		chromedp.Click(chromedp.CSS(`[data-testid=toggle-internal]`)),
		chromedp.WaitNotPresent(chromedp.CSS(row("topics-table", "__consumer_offsets"))))
	// A marker that a reload would lose: every later step must keep it.
	do("set the no-reload marker", chromedp.Evaluate[chromedp.Void](`window.sluiceNoReload = 42`))
	screenshot("console-topics")

	// Topic detail: partitions, configs, records.
	do("open the topic",
		chromedp.Click(chromedp.CSS(row("topics-table", consoleTopic)+` a[data-testid=topic-link]`)),
		chromedp.WaitVisible(chromedp.CSS(row("partitions-table", "2"))))
	for p, want := range hw {
		if got := text(row("partitions-table", fmt.Sprint(p)) + ` [data-testid=hw]`); got != fmt.Sprint(want) {
			t.Errorf("partition %d high watermark %q, want %d", p, got, want)
		}
	}
	do("configs", chromedp.WaitVisible(chromedp.CSS(row("configs-table", "retention.ms"))))
	if got := text(row("configs-table", "retention.ms") + ` [data-testid=config-value]`); got != retention {
		t.Errorf("retention.ms shown as %q", got)
	}
	if cls, err := chromedp.Run(bctx, chromedp.AttributeValue(chromedp.CSS(row("configs-table", "retention.ms")), "class")); err != nil || !strings.Contains(cls.Value, "override") {
		t.Errorf("the retention.ms override is not highlighted: %+v %v", cls, err)
	}

	// The record browser loads partition 0's latest records by itself.
	valueSel := func(off int) string { return row("records-table", fmt.Sprint(off)) + ` [data-testid=rec-value] .bytes` }
	do("records", chromedp.WaitVisible(chromedp.CSS(valueSel(6))))
	if got := text(valueSel(0)); got != consoleText(0, 0) {
		t.Errorf("offset 0 value %q, want %q", got, consoleText(0, 0))
	}
	if got := text(row("records-table", "0") + ` [data-testid=rec-key] .bytes`); got != "order-0-0" {
		t.Errorf("offset 0 key %q", got)
	}
	if got := text(row("records-table", "0") + ` [data-testid=rec-headers]`); got != "trace-id: t-0-0" {
		t.Errorf("offset 0 headers %q", got)
	}
	if got := text(valueSel(6)); got != hexOf(consoleBinary) {
		t.Errorf("binary value shown as %q, want hex %q", got, hexOf(consoleBinary))
	}
	// The hex toggle: the text value turns into its hex, without a fetch.
	do("hex toggle", chromedp.Click(chromedp.CSS(`[data-testid=rb-hex]`)))
	waitJS("hex values", fmt.Sprintf(`document.querySelector(%q)?.dataset.format === "hex"`, valueSel(0)))
	if got := text(valueSel(0)); got != hexOf([]byte(consoleText(0, 0))) {
		t.Errorf("offset 0 as hex %q", got)
	}
	if got := text(valueSel(6)); got != hexOf(consoleBinary) {
		t.Errorf("binary value as hex %q", got)
	}
	do("hex toggle off", chromedp.Click(chromedp.CSS(`[data-testid=rb-hex]`)))
	// An offset and a limit: exactly offsets 2 and 3.
	do("offset 2 limit 2",
		chromedp.SetValue(chromedp.CSS(`[data-testid=rb-offset]`), "2"),
		chromedp.SetValue(chromedp.CSS(`[data-testid=rb-limit]`), "2"),
		chromedp.Click(chromedp.CSS(`[data-testid=rb-load]`)))
	waitJS("offsets 2 and 3", `[...document.querySelectorAll('[data-testid=records-table] tbody tr')].map(r => r.dataset.key).join(",") === "2,3"`)
	screenshot("console-topic")

	// Groups: the group and its exact lag.
	do("groups page",
		chromedp.Click(chromedp.CSS(`[data-testid=nav-groups]`)),
		chromedp.WaitVisible(chromedp.CSS(row("groups-table", consoleGroup))))
	if got := text(row("groups-table", consoleGroup) + ` [data-testid=group-lag]`); got != fmt.Sprint(wantLag) {
		t.Errorf("groups page lag %q, want %d", got, wantLag)
	}
	screenshot("console-groups")

	// Group detail: the member, its assignment, the lag and the chart.
	do("group page",
		chromedp.Click(chromedp.CSS(row("groups-table", consoleGroup)+` a[data-testid=group-link]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=members-table] tbody tr[data-key]`)))
	if got := text(`[data-testid=group-lag]`); got != fmt.Sprint(wantLag) {
		t.Errorf("group lag %q, want %d", got, wantLag)
	}
	if got := text(`[data-testid=members-table] tbody tr[data-key] [data-testid=member-client]`); got != consoleClient {
		t.Errorf("member client id %q", got)
	}
	if got := text(`[data-testid=members-table] tbody tr[data-key] [data-testid=member-assignments]`); got != consoleTopic+": 0, 1, 2" {
		t.Errorf("member assignment %q", got)
	}
	for p := range hw {
		key := consoleTopic + "\x00" + fmt.Sprint(p)
		got, err := chromedp.Run(bctx, chromedp.Evaluate[string](fmt.Sprintf(
			`[...document.querySelectorAll('[data-testid=lag-table] tbody tr')].find(r => r.dataset.key === %q)?.querySelector('[data-testid=lag-value]')?.textContent ?? ""`, key)))
		if err != nil || got != fmt.Sprint(hw[p]-committed[p]) {
			t.Errorf("partition %d lag %q %v, want %d", p, got, err, hw[p]-committed[p])
		}
	}
	// History is sampled every 2 s: a line needs two samples.
	waitJS("a drawn lag line", `(document.querySelector('[data-testid=lag-chart] path[data-testid=lag-line]')?.getAttribute('d') ?? "").includes("L")`)
	screenshot("console-group")

	// Broker: readiness and the configuration.
	do("broker page",
		chromedp.Click(chromedp.CSS(`[data-testid=nav-broker]`)),
		chromedp.WaitVisible(chromedp.CSS(row("config-table", "node.id"))))
	waitJS("readiness", `document.querySelector('[data-testid=readiness]')?.textContent === "ready"`)
	screenshot("console-broker")

	// Live update: more records raise partition 0's high watermark on
	// the open topic page, with no reload.
	do("back to the topic", chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`location.hash = "#/topics/%s"`, consoleTopic)),
		chromedp.WaitVisible(chromedp.CSS(row("partitions-table", "0"))))
	var more []*kgo.Record
	for i := range 5 {
		more = append(more, &kgo.Record{Partition: 0, Value: fmt.Appendf(nil, "more-%d", i)})
	}
	if err := cl.ProduceSync(ctx, more...).FirstErr(); err != nil {
		t.Fatalf("produce more: %v", err)
	}
	waitJS("the new high watermark", fmt.Sprintf(`document.querySelector(%q)?.textContent === "12"`, row("partitions-table", "0")+` [data-testid=hw]`))
	if v, err := chromedp.Run(bctx, chromedp.Evaluate[int](`window.sluiceNoReload ?? 0`)); err != nil || v != 42 {
		t.Errorf("the page reloaded (marker %d, %v)", v, err)
	}
	if hidden, err := chromedp.Run(bctx, chromedp.Evaluate[bool](`document.querySelector('[data-testid=disconnected-banner]').hidden`)); err != nil || !hidden {
		t.Errorf("disconnected banner shown while connected (%v)", err)
	}

	// The broker goes away: the banner says so, the figures stay; it
	// comes back: the banner goes and updates resume.
	proxy.down.Store(true)
	waitJS("the disconnected banner", `!document.querySelector('[data-testid=disconnected-banner]').hidden`)
	if got := text(`[data-testid=disconnected-text]`); !strings.Contains(got, "did not answer") {
		t.Errorf("banner text %q", got)
	}
	if got := text(row("partitions-table", "0") + ` [data-testid=hw]`); got != "12" {
		t.Errorf("high watermark while disconnected %q, want the last one seen", got)
	}
	screenshot("console-disconnected")
	proxy.down.Store(false)
	waitJS("the banner to go", `document.querySelector('[data-testid=disconnected-banner]').hidden`)
	if v, err := chromedp.Run(bctx, chromedp.Evaluate[int](`window.sluiceNoReload ?? 0`)); err != nil || v != 42 {
		t.Errorf("the page reloaded (marker %d, %v)", v, err)
	}
}

// checkNotBlank decodes a PNG and fails if it looks empty: a page that
// rendered has text, borders and a chart, so many colors and no single
// color covering almost everything.
func checkNotBlank(t *testing.T, name string, buf []byte) {
	t.Helper()
	img, err := png.Decode(bytes.NewReader(buf))
	if err != nil {
		t.Fatalf("%s: not a PNG: %v", name, err)
	}
	b := img.Bounds()
	counts := make(map[[4]uint32]int)
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bl, a := img.At(x, y).RGBA()
			counts[[4]uint32{r, g, bl, a}]++
		}
	}
	total, top := b.Dx()*b.Dy(), 0
	for _, n := range counts {
		top = max(top, n)
	}
	if len(counts) < 40 || float64(top) > 0.97*float64(total) {
		t.Errorf("%s looks blank: %dx%d, %d colors, the commonest on %.1f%% of pixels", name, b.Dx(), b.Dy(), len(counts), 100*float64(top)/float64(total))
	}
}
