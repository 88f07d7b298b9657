package coord

import (
	"slices"
	"sync"
	"testing"
)

func TestInboxSendStopClose(t *testing.T) {
	in := NewInbox[int](2)
	if !in.Send(1) || !in.Send(2) {
		t.Fatal("send refused with room")
	}
	blocked := make(chan bool)
	go func() { blocked <- in.Send(3) }() // full: waits until Stop
	in.Stop()
	if <-blocked {
		t.Fatal("a send blocked on a full inbox succeeded after Stop")
	}
	var drained []int
	in.Close(func(m int) { drained = append(drained, m) })
	if !slices.Equal(drained, []int{1, 2}) {
		t.Fatalf("drained %v", drained)
	}
	if in.Send(4) {
		t.Fatal("send accepted after Close")
	}
	in.Stop() // twice is harmless
}

func TestQueueNeverBlocksAndKeepsOrder(t *testing.T) {
	q := NewQueue[int]()
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 100 {
				q.Push(g*100 + i)
			}
		})
	}
	wg.Wait()
	<-q.C()
	if q.Len() != 400 {
		t.Fatalf("len %d", q.Len())
	}
	got := q.Take()
	last := map[int]int{0: -1, 1: 99, 2: 199, 3: 299}
	for _, v := range got {
		if v <= last[v/100] {
			t.Fatalf("out of order within a pusher: %d after %d", v, last[v/100])
		}
		last[v/100] = v
	}
	if len(q.Take()) != 0 {
		t.Fatal("Take left items")
	}
	q.Wake()
	q.Wake() // a second signal never blocks
	<-q.C()
}
