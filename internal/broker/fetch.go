package broker

import (
	"context"
	"errors"
	"fmt"
	"math"
	"reflect"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/internal/partition"
	"github.com/sluice-io/sluice/internal/server"
	"github.com/sluice-io/sluice/internal/vfs"
)

// fetchItem is one partition a fetch reads.
type fetchItem struct {
	key      fetchKey
	topic    string
	id       [16]byte
	offset   int64
	maxBytes int32
	epoch    int32
	part     *partition.Partition
	err      error        // resolution error, answered as is
	sp       *sessionPart // nil without a session
}

// fetchPending is a fetch waiting for data or its deadline.
type fetchPending struct {
	b        *Broker
	version  int16
	minBytes int64
	maxBytes int64
	deadline time.Time
	items    []fetchItem
	// committed: read_committed (isolation level 1): reads stop at the
	// last stable offset and carry the aborted transactions.
	committed bool
	session   *fetchSession
	full      bool
	err       error // request-level error
}

// handleFetch resolves the fetch session and the partitions here, in
// request order; reading and long-polling happen in the Pending.
func (b *Broker) handleFetch(_ context.Context, r *server.Request) server.Pending {
	req := r.Body.(*kmsg.FetchRequest)
	now := b.now()
	f := &fetchPending{
		b:         b,
		version:   req.Version,
		minBytes:  int64(req.MinBytes),
		maxBytes:  int64(min(req.MaxBytes, b.opts.FetchMaxBytes)),
		deadline:  time.Now().Add(time.Duration(max(req.MaxWaitMillis, 0)) * time.Millisecond),
		committed: req.IsolationLevel == 1,
	}
	s, full, err := b.sessions.open(req, now)
	if err != nil {
		f.err = err
		return f
	}
	f.session, f.full = s, full
	key := func(name string, id [16]byte, p int32) fetchKey {
		if req.Version >= 13 {
			return fetchKey{id: id, part: p}
		}
		return fetchKey{name: name, part: p}
	}
	if s != nil {
		s.mu.Lock()
		defer s.mu.Unlock()
		for _, ft := range req.ForgottenTopics {
			for _, p := range ft.Partitions {
				s.forgetLocked(key(ft.Topic, ft.TopicID, p))
			}
		}
	}
	seen := map[fetchKey]bool{}
	for _, rt := range req.Topics {
		for _, rp := range rt.Partitions {
			k := key(rt.Topic, rt.TopicID, rp.Partition)
			if s != nil {
				s.updateLocked(k, rp.FetchOffset, rp.PartitionMaxBytes, rp.CurrentLeaderEpoch)
			}
			if !full || seen[k] {
				continue
			}
			seen[k] = true
			f.items = append(f.items, fetchItem{key: k, offset: rp.FetchOffset, maxBytes: rp.PartitionMaxBytes, epoch: rp.CurrentLeaderEpoch})
		}
	}
	if s != nil {
		if full {
			for i := range f.items {
				f.items[i].sp = s.index[f.items[i].key]
			}
		} else {
			for _, sp := range s.parts {
				f.items = append(f.items, fetchItem{key: sp.key, offset: sp.offset, maxBytes: sp.maxBytes, epoch: sp.epoch, sp: sp})
			}
			s.bumpEpochLocked()
		}
	}
	for i := range f.items {
		b.resolveFetchItem(&f.items[i], req.Version)
	}
	return f
}

func (b *Broker) resolveFetchItem(it *fetchItem, version int16) {
	var st *topicState
	if version >= 13 {
		st = b.topicByID(it.key.id)
		it.id = it.key.id
		if st == nil {
			it.err = errUnknownTopicID
			return
		}
	} else {
		st = b.topic(it.key.name)
		it.topic = it.key.name
		if st == nil {
			it.err = errUnknownTopic
			return
		}
	}
	it.topic, it.id = st.name, st.id
	it.part = st.partition(it.key.part)
	switch {
	case it.part == nil:
		it.err = errUnknownTopic
	case it.epoch > leaderEpoch:
		it.err = errUnknownLeaderEpoch
	case it.epoch != -1 && it.epoch < leaderEpoch:
		it.err = errFencedLeaderEpoch
	}
}

// fetchRead is what one read pass found for one item.
type fetchRead struct {
	err           error
	hw, logStart  int64
	lso           int64
	aborted       []abortedTxn         // read_committed: aborted transactions in the records
	res           partition.ReadResult // holds a file reference until released
	bytes         []byte               // records read into memory (no OS file)
	bytesReturned int64
	first2last    int64 // offsets the returned batches span
}

func (r *fetchRead) release() { r.res.Release() }

// Wait implements server.Pending: read; if there is not yet enough, wait
// for any partition to change, the deadline, or shutdown, and read again.
func (f *fetchPending) Wait(ctx context.Context) server.Response {
	if f.err != nil {
		return frameResponse(f.version, errorCode(f.err), 0, nil)
	}
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		// Take the change channels before reading, so a change after
		// the read cannot be missed.
		chans := make([]<-chan struct{}, 0, len(f.items))
		for _, it := range f.items {
			if it.part != nil {
				chans = append(chans, it.part.Changed())
			}
		}
		reads, total, stop := f.read()
		if stop || total >= f.minBytes || !time.Now().Before(f.deadline) || len(f.items) == 0 || ctx.Err() != nil || f.b.isClosing() {
			return f.respond(reads)
		}
		for i := range reads {
			reads[i].release()
		}
		if timer == nil {
			timer = time.NewTimer(time.Until(f.deadline))
		}
		cases := make([]reflect.SelectCase, 0, len(chans)+3)
		cases = append(cases,
			reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(timer.C)},
			reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(ctx.Done())},
			reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(f.b.closing)},
		)
		for _, c := range chans {
			cases = append(cases, reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(c)})
		}
		if chosen, _, _ := reflect.Select(cases); chosen == 0 {
			timer = nil // fired: the next pass answers
			f.deadline = time.Now()
		}
	}
}

// read does one pass over the items. stop is set when an error means the
// fetch must answer now, as Kafka's fetch purgatory does.
func (f *fetchPending) read() (reads []fetchRead, total int64, stop bool) {
	reads = make([]fetchRead, len(f.items))
	budget := f.maxBytes
	anyData := false
	for i := range f.items {
		it := &f.items[i]
		r := &reads[i]
		if it.err != nil {
			r.err, stop = it.err, true
			continue
		}
		r.logStart, r.hw = it.part.Offsets()
		r.lso = it.part.LastStableOffset()
		if budget <= 0 && anyData {
			continue
		}
		limit := min(int64(it.maxBytes), budget)
		upTo := int64(math.MaxInt64)
		if f.committed {
			upTo = r.lso
		}
		res, err := it.part.ReadUpTo(it.offset, max(limit, 0), upTo)
		r.logStart, r.hw = res.LogStart, res.End
		r.lso = min(r.lso, r.hw)
		if err != nil {
			if errors.Is(err, partition.ErrClosed) {
				err = fmt.Errorf("%w: %s-%d", errUnknownTopic, it.topic, it.key.part)
			}
			r.err, stop = err, true
			continue
		}
		if res.Range.Handle == nil {
			continue
		}
		n := res.Range.Len
		// The first batch of the first partition with data is sent
		// even when larger than the limits, so the client always makes
		// progress (KIP-74); elsewhere a batch that does not fit waits
		// for the next fetch.
		if anyData && n > limit {
			res.Release()
			continue
		}
		r.res = res
		if f.committed {
			ab, err := it.part.AbortedTransactions(res.Range.First, res.Range.Last+1)
			if err != nil {
				res.Release()
				r.res = partition.ReadResult{}
				r.err, stop = err, true
				continue
			}
			for _, a := range ab {
				r.aborted = append(r.aborted, abortedTxn{producerID: a.ProducerID, firstOffset: a.FirstOffset})
			}
		}
		if _, ok := res.Range.Handle.File().(vfs.OSFiler); !ok {
			if err := f.readBytes(r); err != nil {
				r.err, stop = err, true
				continue
			}
		}
		anyData = true
		r.bytesReturned = n
		r.first2last = res.Range.Last - res.Range.First + 1
		budget -= n
		total += n
	}
	return reads, total, stop
}

// readBytes reads a range into memory when its file is not an OS file
// (the in-memory filesystem of tests).
func (f *fetchPending) readBytes(r *fetchRead) error {
	rg := r.res.Range
	buf := make([]byte, rg.Len)
	if _, err := rg.Handle.File().ReadAt(buf, rg.Pos); err != nil {
		r.release()
		return fmt.Errorf("broker: read %s: %w", rg.Handle.File().Name(), err)
	}
	r.bytes = buf
	r.release()
	return nil
}

// respond builds the response from a read pass; the file references are
// released once the server has written it.
func (f *fetchPending) respond(reads []fetchRead) server.Response {
	var topics []frameTopic
	index := map[[16]byte]int{} // by topic ID, or by name hash below v13
	byName := map[string]int{}
	var served map[*sessionPart]bool
	if f.session != nil {
		f.session.mu.Lock()
		defer f.session.mu.Unlock()
		served = map[*sessionPart]bool{}
	}
	for i := range f.items {
		it, r := &f.items[i], &reads[i]
		fp := framePart{partition: it.key.part, errCode: errorCode(r.err), hw: -1, lso: -1, logStart: -1}
		if r.err == nil || errors.Is(r.err, partition.ErrOffsetOutOfRange) {
			fp.hw, fp.lso, fp.logStart = r.hw, r.lso, r.logStart
		}
		if f.committed {
			fp.committed, fp.aborted = true, r.aborted
		}
		if obs := f.b.opts.Observer; obs != nil && r.bytesReturned > 0 {
			// Records counted as offsets spanned (control and aborted
			// records included): the bytes are not decoded.
			obs.ObserveFetch(it.topic, int(r.first2last), int(r.bytesReturned))
		}
		switch {
		case r.bytes != nil:
			fp.records = r.bytes
		case r.res.Range.Handle != nil:
			fp.file = r.res.Range.Handle.File().(vfs.OSFiler).OSFile()
			fp.pos, fp.n = r.res.Range.Pos, r.res.Range.Len
		}
		if sp := it.sp; sp != nil {
			news := f.full || r.bytesReturned > 0 || r.err != nil || fp.hw != sp.lastHW || fp.logStart != sp.lastLogStart
			if r.err != nil {
				sp.lastHW, sp.lastLogStart = -1, -1
			} else {
				sp.lastHW, sp.lastLogStart = fp.hw, fp.logStart
			}
			if r.bytesReturned > 0 {
				served[sp] = true
			}
			if !news {
				continue
			}
		}
		var ti int
		var ok bool
		if f.version >= 13 {
			ti, ok = index[it.key.id]
		} else {
			ti, ok = byName[it.key.name]
		}
		if !ok {
			ti = len(topics)
			topics = append(topics, frameTopic{name: it.key.name, id: it.key.id})
			if f.version >= 13 {
				index[it.key.id] = ti
			} else {
				byName[it.key.name] = ti
			}
		}
		topics[ti].parts = append(topics[ti].parts, fp)
	}
	var sessionID int32
	if f.session != nil {
		sessionID = f.session.id
		f.session.rotateLocked(served)
	}
	resp := frameResponse(f.version, 0, sessionID, topics)
	resp.Release = func() {
		for i := range reads {
			reads[i].release()
		}
	}
	return resp
}
