package group

import (
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// call is one request the coordinator accepted; it owes exactly one
// response on ch (buffered, so answering never blocks).
type call struct {
	req      kmsg.Request
	client   Client
	ch       chan kmsg.Response
	answered bool
}

func newCall(req kmsg.Request, client Client) *call {
	return &call{req: req, client: client, ch: make(chan kmsg.Response, 1)}
}

// effects collects what one step of the state machine asks its driver to
// do: answer parked or current requests, and append records to the
// offsets log. The state machine itself performs no I/O, so tests run
// it step by step and look at the effects.
type effects struct {
	replies []reply
	writes  []write
	events  []event
}

// event is a notable state change for the log (one line each, at info):
// the state machine reports it; the owner goroutine logs it.
type event struct {
	msg  string
	args []any
}

func (fx *effects) event(msg string, args ...any) {
	fx.events = append(fx.events, event{msg, args})
}

type reply struct {
	to   *call
	resp kmsg.Response
}

// write asks for recs to be appended to the group's offsets-log
// partition. then, if not nil, runs on the owner goroutine once the
// append is durable (err nil) or has failed; it may produce more effects.
type write struct {
	group string
	recs  []Record
	then  func(now time.Time, err error, fx *effects)
}

func (fx *effects) reply(to *call, resp kmsg.Response) {
	fx.replies = append(fx.replies, reply{to, resp})
}

func (fx *effects) write(group string, recs []Record, then func(time.Time, error, *effects)) {
	fx.writes = append(fx.writes, write{group, recs, then})
}
