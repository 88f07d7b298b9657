package txn

import (
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// call is one request the coordinator accepted; it owes exactly one
// response on ch (buffered, so answering never blocks).
type call struct {
	req      kmsg.Request
	ch       chan kmsg.Response
	answered bool
}

func newCall(req kmsg.Request) *call {
	return &call{req: req, ch: make(chan kmsg.Response, 1)}
}

// then is a continuation: it runs on the owner goroutine once an append
// or a marker write is done (err nil) or has failed, and may produce
// more effects.
type then func(now time.Time, err error, fx *effects)

// effects collects what one step of the state machine asks its driver to
// do: answer requests, append records to the transaction log, write
// transaction markers. The state machine itself performs no I/O, so tests
// run it step by step and look at the effects.
type effects struct {
	replies []reply
	writes  []write
	markers []markerWrite
}

type reply struct {
	to   *call
	resp kmsg.Response
}

// write asks for recs to be appended to partition p of the log.
type write struct {
	p    int32
	recs []Record
	then then
}

// markerWrite asks for COMMIT (commit) or ABORT markers of (pid, epoch)
// on every partition of parts.
type markerWrite struct {
	pid    int64
	epoch  int16
	commit bool
	parts  []TopicPartition
	then   then
}

func (fx *effects) reply(to *call, resp kmsg.Response) {
	fx.replies = append(fx.replies, reply{to, resp})
}

func (fx *effects) write(p int32, recs []Record, k then) {
	fx.writes = append(fx.writes, write{p, recs, k})
}

func (fx *effects) mark(m markerWrite) { fx.markers = append(fx.markers, m) }
