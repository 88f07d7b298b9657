package coord

import "time"

// Alarm is an owner goroutine's single timer, armed for its state's
// earliest deadline so the goroutine sleeps until there is something to do,
// never on a fixed ticker. Owned by one goroutine; not safe for concurrent
// use.
type Alarm struct {
	t   *time.Timer
	set bool
}

// NewAlarm returns a stopped alarm.
func NewAlarm() *Alarm {
	t := time.NewTimer(time.Hour)
	t.Stop()
	return &Alarm{t: t}
}

// C fires at the armed deadline; the owner calls Fired after reading it.
func (a *Alarm) C() <-chan time.Time { return a.t.C }

// Fired records that C was read: the alarm is no longer set.
func (a *Alarm) Fired() { a.set = false }

// Arm sets the alarm for next as seen from now, or stops it when next is
// zero (no deadline).
func (a *Alarm) Arm(next, now time.Time) {
	if next.IsZero() {
		a.Stop()
		return
	}
	a.t.Reset(max(next.Sub(now), 0))
	a.set = true
}

// Stop disarms the alarm.
func (a *Alarm) Stop() {
	if a.set {
		a.t.Stop()
		a.set = false
	}
}
