package broker_test

import (
	"sync"
	"testing"
	"time"

	"github.com/sluice-io/sluice/internal/batch"
	"github.com/sluice-io/sluice/internal/broker"
	"github.com/sluice-io/sluice/internal/broker/brokertest"
)

// recordingObserver keeps what the broker reports.
type recordingObserver struct {
	mu       sync.Mutex
	produced map[string][2]int // topic -> records, bytes
	stages   [][3]time.Duration
}

func (o *recordingObserver) ObserveProduce(topic string, records, bytes int, _ time.Duration) {
	o.mu.Lock()
	defer o.mu.Unlock()
	c := o.produced[topic]
	o.produced[topic] = [2]int{c[0] + records, c[1] + bytes}
}

func (o *recordingObserver) ObserveFetch(string, int, int) {}

func (o *recordingObserver) ObserveProduceStages(queue, wal, response time.Duration) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.stages = append(o.stages, [3]time.Duration{queue, wal, response})
}

func (o *recordingObserver) snapshot() (map[string][2]int, [][3]time.Duration) {
	o.mu.Lock()
	defer o.mu.Unlock()
	p := map[string][2]int{}
	for k, v := range o.produced {
		p[k] = v
	}
	return p, append([][3]time.Duration(nil), o.stages...)
}

// Each acks=all produce reports its stages once, after its response was
// written; the stages add up to no more than the client waited; acks=0
// reports none.
func TestObserveProduceStages(t *testing.T) {
	obs := &recordingObserver{produced: map[string][2]int{}}
	b := brokertest.Start(t, func(o *broker.Options) { o.Observer = obs })
	createTopic(t, b, "stages", 2, nil)
	rc := dialRaw(t, b.Addr())
	var batches int
	for i := range 3 {
		bt := buildBatch(t, batch.CodecNone, time.Now().UnixMilli(), 4, 100)
		batches++
		began := time.Now()
		rc.do(produceReq(9, "stages", int32(i%2), bt))
		waited := time.Since(began)
		// The response is written before Release runs: wait for it.
		deadline := time.Now().Add(5 * time.Second)
		for {
			if _, st := obs.snapshot(); len(st) == i+1 {
				s := st[i]
				if s[0] < 0 || s[1] < 0 || s[2] < 0 {
					t.Fatalf("negative stage %v", s)
				}
				if sum := s[0] + s[1] + s[2]; sum > waited+time.Millisecond {
					t.Fatalf("stages %v add to %v, more than the client's %v", s, sum, waited)
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("request %d: no stages reported", i)
			}
			time.Sleep(time.Millisecond)
		}
	}
	req := produceReq(9, "stages", 0, buildBatch(t, batch.CodecNone, time.Now().UnixMilli(), 4, 100))
	req.Acks = 0
	rc.send(req)
	// A produce after it, answered: by then the acks=0 one was handled.
	rc.do(produceReq(9, "stages", 1, buildBatch(t, batch.CodecNone, time.Now().UnixMilli(), 4, 100)))
	// The answered one reports once its response is written; then give a
	// wrong report from the acks=0 one time to show up too.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
		if _, st := obs.snapshot(); len(st) >= 4 || time.Now().After(deadline) {
			break
		}
	}
	time.Sleep(20 * time.Millisecond)
	produced, stages := obs.snapshot()
	if len(stages) != 4 {
		t.Fatalf("%d stage reports for 4 acknowledged requests and one acks=0", len(stages))
	}
	if got := produced["stages"][0]; got != 5*4 {
		t.Fatalf("%d records observed, want 20", got)
	}
}
