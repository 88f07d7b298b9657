package coord

import (
	"context"
	"errors"
	"iter"
	"testing"
	"time"
)

func seq(rs ...int) iter.Seq2[int, error] {
	return func(yield func(int, error) bool) {
		for _, r := range rs {
			if r < 0 {
				yield(0, errors.New("stream broke"))
				return
			}
			if !yield(r, nil) {
				return
			}
		}
	}
}

func TestReplay(t *testing.T) {
	var got []int
	apply := func(r int) error {
		if r == 99 {
			return errors.New("bad value")
		}
		got = append(got, r)
		return nil
	}
	if n, err := Replay(t.Context(), "x: log", seq(1, 2, 3), apply); n != 3 || err != nil || len(got) != 3 {
		t.Fatalf("clean: %d %v %v", n, err, got)
	}
	n, err := Replay(t.Context(), "x: log", seq(1, 99, 3), apply)
	var ce *CorruptRecordError
	if n != 1 || !errors.As(err, &ce) || ce.Index != 1 || !errors.Is(err, ErrCorruptRecord) || err.Error() != "x: log: corrupt record 1: bad value" {
		t.Fatalf("bad record: %d %v", n, err)
	}
	if n, err := Replay(t.Context(), "x: log", seq(1, -1), apply); n != 1 || err == nil || errors.As(err, &ce) {
		t.Fatalf("broken stream: %d %v", n, err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if n, err := Replay(ctx, "x: log", seq(1, 2), apply); n != 0 || !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled: %d %v", n, err)
	}
}

func TestAlarm(t *testing.T) {
	a := NewAlarm()
	defer a.Stop()
	now := time.Now()
	a.Arm(time.Time{}, now) // no deadline: nothing fires
	select {
	case <-a.C():
		t.Fatal("fired without a deadline")
	case <-time.After(20 * time.Millisecond):
	}
	a.Arm(now.Add(-time.Second), now) // past: fires at once
	select {
	case <-a.C():
		a.Fired()
	case <-time.After(5 * time.Second):
		t.Fatal("a past deadline did not fire")
	}
	a.Arm(now.Add(time.Hour), now)
	a.Arm(time.Time{}, now) // disarmed again
	select {
	case <-a.C():
		t.Fatal("fired after being disarmed")
	case <-time.After(20 * time.Millisecond):
	}
}
