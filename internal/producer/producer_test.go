package producer

import (
	"errors"
	"math"
	"testing"
	"time"

	"github.com/sluice-io/sluice/internal/batch"
)

// step is one batch offered to the state: Check, then (if accepted) Update
// at the next offset.
type step struct {
	pid       int64
	epoch     int16
	seq       int32
	n         int32 // records
	txn       bool
	marker    MarkerKind // for control batches; zero value is Abort, so ctl gates it
	ctl       bool
	coord     int32
	ts        int64
	wantErr   error
	wantDupAt int64 // with ErrDuplicate: the original base offset
}

func data(pid int64, epoch int16, seq, n int32) step {
	return step{pid: pid, epoch: epoch, seq: seq, n: n, ts: 1000}
}

func (s step) tx() step          { s.txn = true; return s }
func (s step) err(e error) step  { s.wantErr = e; return s }
func (s step) dup(at int64) step { s.wantErr, s.wantDupAt = ErrDuplicate, at; return s }
func marker(pid int64, epoch int16, k MarkerKind, coord int32) step {
	return step{pid: pid, epoch: epoch, seq: -1, n: 1, txn: true, ctl: true, marker: k, coord: coord, ts: 1000}
}

func (s step) batch(base int64) Batch {
	b := Batch{ProducerID: s.pid, Epoch: s.epoch, FirstSeq: s.seq, LastOffsetDelta: s.n - 1, BaseOffset: base,
		MaxTimestamp: s.ts, Transactional: s.txn, Control: s.ctl, Marker: NoMarker}
	if s.ctl {
		b.Marker, b.CoordinatorEpoch = s.marker, s.coord
	}
	return b
}

// run plays steps against a fresh state and returns it with the aborted
// transactions and the next offset.
func run(t *testing.T, steps []step) (*State, []AbortedTxn, int64) {
	t.Helper()
	s := New(Options{})
	var aborted []AbortedTxn
	next := int64(0)
	for i, st := range steps {
		b := st.batch(next)
		err := s.Check(b)
		if st.wantErr == nil {
			if err != nil {
				t.Fatalf("step %d %+v: %v", i, st, err)
			}
		} else {
			if !errors.Is(err, st.wantErr) {
				t.Fatalf("step %d %+v: got %v, want %v", i, st, err, st.wantErr)
			}
			var de *DuplicateError
			if errors.As(err, &de) && de.BaseOffset != st.wantDupAt {
				t.Fatalf("step %d: duplicate of offset %d, want %d", i, de.BaseOffset, st.wantDupAt)
			}
			continue
		}
		if a := s.Update(b); a != nil {
			aborted = append(aborted, *a)
		}
		next = b.LastOffset() + 1
	}
	return s, aborted, next
}

func TestCheckTable(t *testing.T) {
	five := []step{data(1, 0, 0, 2), data(1, 0, 2, 3), data(1, 0, 5, 1), data(1, 0, 6, 4), data(1, 0, 10, 2)}
	tests := []struct {
		name  string
		steps []step
	}{
		{"first batch at zero", []step{data(1, 0, 0, 3)}},
		{"first batch of an unknown producer at any sequence (KIP-360)", []step{data(1, 3, 42, 3), data(1, 3, 45, 1)}},
		{"in order", []step{data(1, 0, 0, 3), data(1, 0, 3, 1), data(1, 0, 4, 10)}},
		{"duplicate of each of the last five", append(append([]step{}, five...),
			data(1, 0, 0, 2).dup(0), data(1, 0, 2, 3).dup(2), data(1, 0, 5, 1).dup(5), data(1, 0, 6, 4).dup(6),
			data(1, 0, 10, 2).dup(10), data(1, 0, 12, 1))},
		{"a sixth batch pushes the oldest out", append(append([]step{}, five...),
			data(1, 0, 12, 1), data(1, 0, 0, 2).err(ErrOutOfOrderSequence), data(1, 0, 2, 3).dup(2))},
		{"same first sequence, other length is not a duplicate", []step{data(1, 0, 0, 3), data(1, 0, 0, 2).err(ErrOutOfOrderSequence)}},
		{"gap", []step{data(1, 0, 0, 3), data(1, 0, 4, 1).err(ErrOutOfOrderSequence), data(1, 0, 3, 1)}},
		{"older epoch fenced", []step{data(1, 2, 0, 1), data(1, 1, 1, 1).err(ErrInvalidProducerEpoch)}},
		{"older epoch duplicate is fenced, not a duplicate", []step{data(1, 1, 0, 1), data(1, 2, 0, 1), data(1, 1, 0, 1).err(ErrInvalidProducerEpoch)}},
		{"epoch bump starts at zero", []step{data(1, 0, 0, 5), data(1, 1, 5, 1).err(ErrOutOfOrderSequence), data(1, 1, 0, 1), data(1, 1, 1, 1)}},
		{"epoch bump forgets old batches", []step{data(1, 0, 0, 1), data(1, 1, 0, 1), data(1, 0, 0, 1).err(ErrInvalidProducerEpoch)}},
		{"wrap-around", []step{data(1, 0, math.MaxInt32-2, 3), data(1, 0, 0, 2), data(1, 0, 2, 1)}},
		{"wrap-around inside a batch", []step{data(1, 0, math.MaxInt32-1, 4), data(1, 0, 2, 1), data(1, 0, math.MaxInt32-1, 4).dup(0)}},
		{"after MaxInt32 only zero", []step{data(1, 0, math.MaxInt32, 1), data(1, 0, math.MaxInt32+0, 1).dup(0), data(1, 0, 1, 1).err(ErrOutOfOrderSequence), data(1, 0, 0, 1)}},
		{"producers are independent", []step{data(1, 0, 0, 1), data(2, 0, 0, 1), data(1, 0, 1, 1), data(2, 0, 1, 1)}},
		{"transaction commit", []step{data(1, 0, 0, 1).tx(), data(1, 0, 1, 1).tx(), marker(1, 0, Commit, 0), data(1, 0, 2, 1)}},
		{"non-transactional batch inside a transaction", []step{data(1, 0, 0, 1).tx(), data(1, 0, 1, 1).err(ErrInvalidTxnState)}},
		{"marker from an older epoch", []step{data(1, 1, 0, 1).tx(), marker(1, 0, Abort, 0).err(ErrInvalidProducerEpoch)}},
		{"marker from an older coordinator", []step{data(1, 0, 0, 1).tx(), marker(1, 0, Commit, 5), data(1, 0, 1, 1).tx(),
			marker(1, 0, Abort, 4).err(ErrCoordinatorFenced), marker(1, 0, Abort, 5)}},
		{"marker with a bumped epoch, then sequence zero", []step{data(1, 0, 0, 3).tx(), marker(1, 1, Abort, 0),
			data(1, 1, 3, 1).err(ErrOutOfOrderSequence), data(1, 1, 0, 1).tx()}},
		{"marker for an unknown producer", []step{marker(9, 0, Abort, 0), data(9, 0, 0, 1)}},
		{"a coordinator's sequence-less writes check only the epoch", []step{data(3, 1, -1, 2).tx(), data(3, 1, -1, 1).tx(),
			marker(3, 1, Commit, 0), data(3, 1, -1, 1).tx(), data(3, 0, -1, 1).tx().err(ErrInvalidProducerEpoch)}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { run(t, tc.steps) })
	}
}

func TestTransactions(t *testing.T) {
	s, aborted, next := run(t, []step{
		data(1, 0, 0, 2).tx(),   // 0-1: pid 1 opens at 0
		data(2, 0, 0, 1).tx(),   // 2: pid 2 opens at 2
		data(3, 0, 0, 1),        // 3: idempotent only
		marker(1, 0, Abort, 0),  // 4: pid 1 aborted
		data(1, 0, 2, 1).tx(),   // 5: pid 1 opens at 5
		marker(2, 0, Commit, 0), // 6: pid 2 committed
		marker(1, 0, Abort, 0),  // 7: pid 1 aborted again
		marker(1, 0, Abort, 0),  // 8: an empty transaction: no entry
	})
	if next != 9 {
		t.Fatalf("next %d", next)
	}
	want := []AbortedTxn{
		{ProducerID: 1, FirstOffset: 0, LastOffset: 4, LastStableOffset: 2}, // pid 2 still open at 2
		{ProducerID: 1, FirstOffset: 5, LastOffset: 7, LastStableOffset: 8},
	}
	if len(aborted) != len(want) {
		t.Fatalf("aborted %+v", aborted)
	}
	for i := range want {
		if aborted[i] != want[i] {
			t.Fatalf("aborted[%d] = %+v, want %+v", i, aborted[i], want[i])
		}
	}
	if _, ok := s.FirstUnstableOffset(); ok {
		t.Fatal("a transaction is still open")
	}
	// Open transactions order the first unstable offset.
	s.Update(data(4, 0, 0, 1).tx().batch(9))
	s.Update(data(5, 0, 0, 1).tx().batch(10))
	if f, ok := s.FirstUnstableOffset(); !ok || f != 9 {
		t.Fatalf("first unstable %d %v", f, ok)
	}
	s.Update(marker(4, 0, Commit, 0).batch(11))
	if f, ok := s.FirstUnstableOffset(); !ok || f != 10 {
		t.Fatalf("first unstable %d %v", f, ok)
	}
	infos := s.Producers()
	if len(infos) != 5 || infos[4].ProducerID != 5 || infos[4].TxnStartOffset != 10 || infos[0].LastSequence != 2 {
		t.Fatalf("producers %+v", infos)
	}
}

func TestExpiryAndLimit(t *testing.T) {
	s := New(Options{Expiration: time.Hour, MaxProducers: 3})
	now := time.UnixMilli(10 * 3600_000)
	old := now.Add(-2 * time.Hour).UnixMilli()
	for pid := int64(0); pid < 3; pid++ {
		b := data(pid, 0, 0, 1).batch(pid)
		b.MaxTimestamp = old
		if pid == 2 {
			b.Transactional = true // an open transaction never expires
		}
		if err := s.Admit(pid, 0, now); err != nil {
			t.Fatal(err)
		}
		s.Update(b)
	}
	// Full, but two are expired: admitting removes them.
	if err := s.Admit(7, 0, now); err != nil {
		t.Fatal(err)
	}
	if s.Len() != 1 || s.Get(2) == nil {
		t.Fatalf("after expiry: %+v", s.Producers())
	}
	fresh := data(7, 0, 0, 1).batch(3)
	fresh.MaxTimestamp = now.UnixMilli()
	s.Update(fresh)
	if err := s.Admit(8, 0, now); err != nil {
		t.Fatal(err)
	}
	if err := s.Admit(8, 1, now); !errors.Is(err, ErrTooManyProducers) {
		t.Fatalf("admit past the limit: %v", err)
	}
	if err := s.Admit(7, 5, now); err != nil {
		t.Fatalf("a known producer is always admitted: %v", err)
	}
	if n := s.RemoveExpired(now.Add(3 * time.Hour)); n != 1 || s.Get(2) == nil {
		t.Fatalf("expired %d: %+v", n, s.Producers())
	}
}

func TestOptionsValidate(t *testing.T) {
	if err := (Options{Expiration: -1, MaxProducers: -1}).Validate(); err == nil {
		t.Fatal("negative options accepted")
	}
	if err := (Options{}).Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestFromBatch(t *testing.T) {
	for _, k := range []MarkerKind{Abort, Commit} {
		b, err := batch.Build(batch.CodecNone, 5000, []batch.Record{MarkerRecord(k, 7)},
			batch.BuildOptions{Control: true, Transactional: true, ProducerID: 3, ProducerEpoch: 2})
		if err != nil {
			t.Fatal(err)
		}
		h, err := batch.Verify(b)
		if err != nil {
			t.Fatal(err)
		}
		pb, err := FromBatch(b, h)
		if err != nil {
			t.Fatal(err)
		}
		if !pb.Control || pb.Marker != k || pb.CoordinatorEpoch != 7 || pb.ProducerID != 3 || pb.Epoch != 2 || pb.MaxTimestamp != 5000 {
			t.Fatalf("%+v", pb)
		}
	}
	// Another control type is no marker; a short key is an error.
	other := batch.Record{Key: []byte{0, 0, 0, 2}, Value: []byte{0, 0}}
	short := batch.Record{Key: []byte{0}, Value: []byte{0}}
	for i, r := range []batch.Record{other, short} {
		b, _ := batch.Build(batch.CodecNone, 0, []batch.Record{r}, batch.BuildOptions{Control: true, Transactional: true, ProducerID: 1})
		h, _ := batch.Verify(b)
		pb, err := FromBatch(b, h)
		if i == 0 && (err != nil || pb.Marker != NoMarker) {
			t.Fatalf("other control type: %+v %v", pb, err)
		}
		if i == 1 && !errors.Is(err, ErrBadMarker) {
			t.Fatalf("short key: %v", err)
		}
	}
}

func TestSnapshotRoundTrip(t *testing.T) {
	s, _, next := run(t, []step{
		data(1, 0, 0, 2).tx(), data(2, 3, 7, 1), data(2, 3, 8, 1), data(2, 3, 9, 1), data(2, 3, 10, 1), data(2, 3, 11, 1),
		data(2, 3, 12, 1), marker(5, 1, Commit, 4), data(6, 0, 0, 1).tx(),
	})
	b := s.Snapshot(next)
	got, off, err := DecodeSnapshot("x.snapshot", b, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if off != next || !got.Equal(s) {
		t.Fatalf("round trip: %d %+v vs %+v", off, got.Producers(), s.Producers())
	}
	if f, _ := got.FirstUnstableOffset(); f != 0 {
		t.Fatalf("first unstable %d", f)
	}
	for i := range b {
		c := append([]byte(nil), b...)
		c[i] ^= 0x40
		if _, _, err := DecodeSnapshot("x.snapshot", c, Options{}); !errors.Is(err, ErrCorruptSnapshot) {
			t.Fatalf("flipped byte %d: %v", i, err)
		}
	}
	if _, _, err := DecodeSnapshot("x.snapshot", b[:len(b)-1], Options{}); !errors.Is(err, ErrCorruptSnapshot) {
		t.Fatalf("short: %v", err)
	}
	// A snapshot taken at an offset the entries do not fit is refused.
	if _, _, err := DecodeSnapshot("x.snapshot", s.Snapshot(3), Options{}); !errors.Is(err, ErrCorruptSnapshot) {
		t.Fatalf("entries past the offset: %v", err)
	}
}
