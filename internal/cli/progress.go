package cli

import (
	"fmt"
	"io"
	"os"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"
)

// progressInterval is how often the bar redraws; faster only costs CPU.
const progressInterval = 150 * time.Millisecond

// progress draws bytes and records read so far on stderr. A nil *progress
// draws nothing, so callers need no checks. It is used from one goroutine.
type progress struct {
	bar  *progressbar.ProgressBar
	next time.Time
}

// isTerminal reports whether w is a terminal; only then is a bar that
// redraws itself with carriage returns readable.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// newProgress starts a bar over totalBytes (-1 when unknown, e.g. stdin).
func newProgress(w io.Writer, totalBytes int64) *progress {
	bar := progressbar.NewOptions64(totalBytes,
		progressbar.OptionSetWriter(w),
		progressbar.OptionShowBytes(true),
		progressbar.OptionShowCount(),
		progressbar.OptionSetDescription("0 records"),
		progressbar.OptionSetWidth(30),
		// The bar redraws only when we update it: no ticker goroutine
		// that would outlive the command.
		progressbar.OptionSetSpinnerChangeInterval(0),
		progressbar.OptionThrottle(progressInterval),
		progressbar.OptionOnCompletion(func() { fmt.Fprintln(w) }),
	)
	return &progress{bar: bar}
}

// update records the running totals; it redraws at most every
// progressInterval.
func (p *progress) update(bytes, records int64) {
	if p == nil {
		return
	}
	now := time.Now()
	if now.Before(p.next) {
		return
	}
	p.next = now.Add(progressInterval)
	p.bar.Describe(fmt.Sprintf("%d records", records))
	_ = p.bar.Set64(bytes) // drawing to stderr: nothing to do about a failure
}

// finish draws the final totals and ends the line. A bar cut short (an
// interrupt, a failed send) or of unknown length stays where it stopped
// rather than jump to full.
func (p *progress) finish(bytes, records int64) {
	if p == nil {
		return
	}
	p.bar.Describe(fmt.Sprintf("%d records", records))
	_ = p.bar.Set64(bytes)
	if max := p.bar.GetMax64(); max > 0 && bytes >= max {
		_ = p.bar.Finish()
		return
	}
	_ = p.bar.Exit() // its completion hook ends the line
}
