// Package producer is the idempotent and transactional producer state of
// one partition, as Kafka's ProducerStateManager keeps it: for every
// producer id its epoch, its last BatchesRetained batches (to recognise a
// retried batch and report where the original went), its open
// transaction and its coordinator epoch; and, across producers, the open
// transactions that hold back the last stable offset.
//
// The package is pure: no I/O, no clock of its own. The partition log
// checks a client's batch with Check before assigning offsets, and feeds
// every batch that enters the log, in offset order, to Update (appends,
// recovery scans and WAL replay alike), so that the state after any
// sequence of Updates is what a scan of the log would build. Snapshot
// encodes the whole state at an offset (docs/format/producer.md) so that
// recovery need not scan the whole log.
//
// The rules follow Kafka's ProducerAppendInfo (Kafka 3.x, transaction
// versions 0 and 1):
//
//   - A batch whose epoch and sequence range equal one of the producer's
//     last BatchesRetained batches is a duplicate (*DuplicateError with
//     the original offsets); nothing is appended.
//   - An epoch older than the producer's is fenced (ErrInvalidProducerEpoch).
//   - A newer epoch must start at sequence 0; the current epoch must
//     continue the last sequence by one (wrapping from MaxInt32 to 0), or
//     start at 0 when the epoch has no batches yet (a marker bumped it);
//     otherwise ErrOutOfOrderSequence.
//   - A producer the partition has no state for is accepted at any
//     sequence: since Kafka 2.5 (KIP-360) its state may simply have been
//     removed by retention or expiry, and the producer is not fenced for it.
//   - A non-transactional batch while the producer has a transaction open
//     is ErrInvalidTxnState; a transactional batch with none open starts
//     one at its base offset.
//   - A transaction marker (a control batch, COMMIT or ABORT) from an older
//     producer epoch, or an older coordinator epoch, is refused; otherwise
//     it ends the producer's transaction, and an ABORT yields an AbortedTxn.
//
// A State is not safe for concurrent use: its owner (the partition) holds
// its lock around every call.
package producer

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"time"
)

// BatchesRetained is how many of a producer's last batches are kept to
// detect duplicates: Kafka's NUM_BATCHES_TO_RETAIN, which is also the most
// in-flight requests an idempotent producer may have per connection.
const BatchesRetained = 5

// Defaults.
const (
	// DefaultExpiration is producer.id.expiration.ms.
	DefaultExpiration = 24 * time.Hour
	// DefaultMaxProducers bounds the producer ids one partition tracks.
	// An entry is about 250 bytes, so the default costs at most 2.5 MB
	// per partition.
	DefaultMaxProducers = 10_000
)

// NoSequence, NoEpoch and NoOffset are Kafka's "none" values.
const (
	NoSequence = -1
	NoEpoch    = -1
	NoOffset   = -1
)

var (
	// ErrOutOfOrderSequence is OUT_OF_ORDER_SEQUENCE_NUMBER.
	ErrOutOfOrderSequence = errors.New("producer: out of order sequence number")
	// ErrInvalidProducerEpoch is INVALID_PRODUCER_EPOCH: a zombie
	// producer instance, fenced by a newer epoch.
	ErrInvalidProducerEpoch = errors.New("producer: invalid producer epoch")
	// ErrDuplicate matches every *DuplicateError.
	ErrDuplicate = errors.New("producer: duplicate batch")
	// ErrUnknownProducerID is UNKNOWN_PRODUCER_ID, which brokers before
	// Kafka 2.5 returned for a non-zero first sequence from a producer
	// they had no state for. Since KIP-360 such a batch is accepted, and
	// Check never returns it; it is defined so that the broker's error
	// table has one name for the code.
	ErrUnknownProducerID = errors.New("producer: unknown producer id")
	// ErrInvalidTxnState is INVALID_TXN_STATE: a non-transactional batch
	// from a producer with an open transaction.
	ErrInvalidTxnState = errors.New("producer: invalid transaction state")
	// ErrCoordinatorFenced is TRANSACTION_COORDINATOR_FENCED: a marker
	// from a coordinator epoch older than one already seen.
	ErrCoordinatorFenced = errors.New("producer: transaction coordinator fenced")
	// ErrTooManyProducers is returned for a new producer id when the
	// partition already tracks Options.MaxProducers that have not
	// expired.
	ErrTooManyProducers = errors.New("producer: too many producers")
)

// DuplicateError reports a retried batch that the log already holds: the
// broker answers it with the original's offsets (once they are readable).
type DuplicateError struct {
	ProducerID        int64
	Epoch             int16
	FirstSeq, LastSeq int32
	// BaseOffset and LastOffset are where the original batch went.
	BaseOffset, LastOffset int64
}

func (e *DuplicateError) Error() string {
	return fmt.Sprintf("producer: duplicate batch: producer %d epoch %d sequences [%d, %d] already at offsets [%d, %d]",
		e.ProducerID, e.Epoch, e.FirstSeq, e.LastSeq, e.BaseOffset, e.LastOffset)
}

func (e *DuplicateError) Unwrap() error { return ErrDuplicate }

// Options bound the state.
type Options struct {
	// Expiration is producer.id.expiration.ms: a producer with no open
	// transaction and no batch for this long is forgotten. Zero means
	// DefaultExpiration.
	Expiration time.Duration
	// MaxProducers bounds the producer ids tracked; zero means
	// DefaultMaxProducers. Past it, expired producers go first, then a
	// new producer id is refused with ErrTooManyProducers. Producers
	// found in the log itself (recovery) are never refused.
	MaxProducers int
}

// WithDefaults fills in zero fields.
func (o Options) WithDefaults() Options {
	if o.Expiration == 0 {
		o.Expiration = DefaultExpiration
	}
	if o.MaxProducers == 0 {
		o.MaxProducers = DefaultMaxProducers
	}
	return o
}

// Validate reports every problem with o.
func (o Options) Validate() error {
	var errs []error
	if o.Expiration < 0 {
		errs = append(errs, fmt.Errorf("producer: producer.id.expiration.ms %v negative", o.Expiration))
	}
	if o.MaxProducers < 0 {
		errs = append(errs, fmt.Errorf("producer: MaxProducers %d negative", o.MaxProducers))
	}
	return errors.Join(errs...)
}

// BatchMeta is what is kept of one of a producer's recent batches.
type BatchMeta struct {
	FirstSeq, LastSeq       int32
	FirstOffset, LastOffset int64
	Timestamp               int64 // the batch's max timestamp
}

// Entry is one producer's state.
type Entry struct {
	ProducerID int64
	Epoch      int16
	// Batches are the last (at most BatchesRetained) batches of the
	// current epoch, oldest first.
	Batches          []BatchMeta
	LastTimestamp    int64
	CoordinatorEpoch int32
	// TxnFirstOffset is the first offset of the open transaction, or
	// NoOffset.
	TxnFirstOffset int64
}

// LastSeq is the last sequence of the current epoch, or NoSequence.
func (e *Entry) LastSeq() int32 {
	if e == nil || len(e.Batches) == 0 {
		return NoSequence
	}
	return e.Batches[len(e.Batches)-1].LastSeq
}

// Clone returns a deep copy of e (nil for nil).
func (e *Entry) Clone() *Entry {
	if e == nil {
		return nil
	}
	c := *e
	c.Batches = append([]BatchMeta(nil), e.Batches...)
	return &c
}

// MarkerKind is the type of a control record (Kafka's ControlRecordType).
type MarkerKind int16

const (
	Abort  MarkerKind = 0
	Commit MarkerKind = 1
	// NoMarker is a control batch that ends no transaction: an empty one
	// (compaction removed its record) or another control type (Kafka's
	// LEADER_CHANGE and the like).
	NoMarker MarkerKind = -1
)

// Batch is what the state needs of a batch: its header fields and, for a
// control batch, its marker. FromBatch builds it from the bytes.
type Batch struct {
	ProducerID      int64
	Epoch           int16
	FirstSeq        int32
	LastOffsetDelta int32
	// BaseOffset is the batch's first offset once assigned; Check
	// ignores it.
	BaseOffset    int64
	MaxTimestamp  int64
	Transactional bool
	Control       bool
	// Marker and CoordinatorEpoch are set for a control batch.
	Marker           MarkerKind
	CoordinatorEpoch int32
}

// LastOffset is the batch's last offset.
func (b Batch) LastOffset() int64 { return b.BaseOffset + int64(b.LastOffsetDelta) }

// LastSeq is the sequence of the batch's last record, wrapping past
// MaxInt32 to 0 as producers do.
func (b Batch) LastSeq() int32 {
	if b.FirstSeq < 0 {
		return NoSequence
	}
	return addSeq(b.FirstSeq, b.LastOffsetDelta)
}

func addSeq(seq, delta int32) int32 {
	if seq > math.MaxInt32-delta {
		return delta - (math.MaxInt32 - seq) - 1
	}
	return seq + delta
}

func inSequence(last, next int32) bool {
	return int64(next) == int64(last)+1 || (next == 0 && last == math.MaxInt32)
}

// AbortedTxn is an aborted transaction, as the .txnindex records it and
// Fetch (read_committed) reports it.
type AbortedTxn struct {
	ProducerID  int64
	FirstOffset int64
	LastOffset  int64 // the ABORT marker's offset
	// LastStableOffset is the last stable offset right after the marker:
	// the first offset of the earliest other open transaction, or the
	// offset after the marker. Readers of the index stop at an entry whose
	// LastStableOffset reaches their upper bound.
	LastStableOffset int64
}

// Info describes a producer, for DescribeProducers.
type Info struct {
	ProducerID       int64
	Epoch            int16
	LastSequence     int32 // NoSequence when the epoch has no batch
	LastTimestamp    int64
	CoordinatorEpoch int32
	TxnStartOffset   int64 // NoOffset when no transaction is open
}

type openTxn struct {
	first int64
	pid   int64
}

// State is one partition's producer state.
type State struct {
	opts      Options
	producers map[int64]*Entry
	// ongoing holds the open transactions ordered by first offset; the
	// first one holds back the last stable offset.
	ongoing []openTxn
}

// New returns an empty state. opts must be valid; zero fields take the
// defaults.
func New(opts Options) *State {
	return &State{opts: opts.WithDefaults(), producers: map[int64]*Entry{}}
}

// Options returns the state's options, defaults filled in.
func (s *State) Options() Options { return s.opts }

// Len returns the number of producers tracked.
func (s *State) Len() int { return len(s.producers) }

// Get returns the producer's entry, or nil. The caller must not modify it.
func (s *State) Get(pid int64) *Entry { return s.producers[pid] }

// FirstUnstableOffset returns the first offset of the earliest open
// transaction; ok is false when none is open.
func (s *State) FirstUnstableOffset() (offset int64, ok bool) {
	if len(s.ongoing) == 0 {
		return 0, false
	}
	return s.ongoing[0].first, true
}

// Producers describes every producer, ordered by id.
func (s *State) Producers() []Info {
	out := make([]Info, 0, len(s.producers))
	for _, e := range s.producers {
		out = append(out, Info{
			ProducerID: e.ProducerID, Epoch: e.Epoch, LastSequence: e.LastSeq(), LastTimestamp: e.LastTimestamp,
			CoordinatorEpoch: e.CoordinatorEpoch, TxnStartOffset: e.TxnFirstOffset,
		})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ProducerID < out[j].ProducerID })
	return out
}

// Check validates a client's batch b against the producer's entry cur (nil
// when the partition has no state for it): nil when b may be appended, a
// *DuplicateError when the log already holds it, or one of the package's
// sentinels. It does not change anything.
func Check(cur *Entry, b Batch) error {
	if b.Control {
		return checkMarker(cur, b)
	}
	if b.FirstSeq == NoSequence {
		// A coordinator's own write (transactional offset commits in
		// the offsets topic) carries no sequence; Kafka checks only
		// its epoch (AppendOrigin.COORDINATOR).
		if cur != nil && b.Epoch < cur.Epoch {
			return fmt.Errorf("%w: producer %d sent epoch %d, the partition has seen %d", ErrInvalidProducerEpoch, b.ProducerID, b.Epoch, cur.Epoch)
		}
		return nil
	}
	if cur == nil {
		// KIP-360: no state means any sequence.
		return nil
	}
	if b.Epoch == cur.Epoch {
		last := b.LastSeq()
		for _, m := range cur.Batches {
			if m.FirstSeq == b.FirstSeq && m.LastSeq == last {
				return &DuplicateError{ProducerID: b.ProducerID, Epoch: b.Epoch, FirstSeq: m.FirstSeq, LastSeq: m.LastSeq,
					BaseOffset: m.FirstOffset, LastOffset: m.LastOffset}
			}
		}
	}
	if b.Epoch < cur.Epoch {
		return fmt.Errorf("%w: producer %d sent epoch %d, the partition has seen %d", ErrInvalidProducerEpoch, b.ProducerID, b.Epoch, cur.Epoch)
	}
	if b.Epoch != cur.Epoch {
		if b.FirstSeq != 0 {
			return fmt.Errorf("%w: producer %d starts epoch %d at sequence %d, not 0", ErrOutOfOrderSequence, b.ProducerID, b.Epoch, b.FirstSeq)
		}
	} else if last := cur.LastSeq(); !inSequence(last, b.FirstSeq) {
		return fmt.Errorf("%w: producer %d epoch %d sent sequence %d after %d", ErrOutOfOrderSequence, b.ProducerID, b.Epoch, b.FirstSeq, last)
	}
	if cur.TxnFirstOffset != NoOffset && !b.Transactional {
		return fmt.Errorf("%w: non-transactional batch from producer %d while its transaction from offset %d is open",
			ErrInvalidTxnState, b.ProducerID, cur.TxnFirstOffset)
	}
	return nil
}

func checkMarker(cur *Entry, b Batch) error {
	if cur == nil || b.Marker == NoMarker {
		return nil
	}
	if b.Epoch < cur.Epoch {
		return fmt.Errorf("%w: marker for producer %d at epoch %d, the partition has seen %d", ErrInvalidProducerEpoch, b.ProducerID, b.Epoch, cur.Epoch)
	}
	if b.CoordinatorEpoch < cur.CoordinatorEpoch {
		return fmt.Errorf("%w: marker for producer %d from coordinator epoch %d, the partition has seen %d",
			ErrCoordinatorFenced, b.ProducerID, b.CoordinatorEpoch, cur.CoordinatorEpoch)
	}
	return nil
}

// Next returns cur (nil: a new producer) after appending b at b.BaseOffset,
// and the transaction b ended, if any (ended is nil otherwise). It applies
// b whatever Check would say: a batch in the log is a fact, as Kafka's
// loading and replication treat it. cur is not modified.
func Next(cur *Entry, b Batch) (next *Entry, ended *AbortedTxn, aborted bool) {
	if b.Control && b.Marker == NoMarker {
		// Kafka leaves the producer alone for these.
		return cur.Clone(), nil, false
	}
	var e *Entry
	if cur == nil {
		e = &Entry{ProducerID: b.ProducerID, Epoch: b.Epoch, CoordinatorEpoch: -1, TxnFirstOffset: NoOffset}
	} else {
		e = cur.Clone()
	}
	if e.Epoch != b.Epoch {
		// A new epoch starts its sequences afresh.
		e.Epoch = b.Epoch
		e.Batches = e.Batches[:0]
	}
	e.LastTimestamp = b.MaxTimestamp
	if b.Control {
		e.CoordinatorEpoch = b.CoordinatorEpoch
		if e.TxnFirstOffset != NoOffset {
			// A marker for an empty transaction changes neither the
			// last stable offset nor the aborted list, as in Kafka.
			ended = &AbortedTxn{ProducerID: b.ProducerID, FirstOffset: e.TxnFirstOffset, LastOffset: b.BaseOffset}
			aborted = b.Marker == Abort
		}
		e.TxnFirstOffset = NoOffset
		return e, ended, aborted
	}
	if e.TxnFirstOffset == NoOffset && b.Transactional {
		e.TxnFirstOffset = b.BaseOffset
	}
	if b.FirstSeq == NoSequence {
		return e, nil, false // no sequence to remember (see Check)
	}
	if len(e.Batches) == BatchesRetained {
		copy(e.Batches, e.Batches[1:])
		e.Batches = e.Batches[:BatchesRetained-1]
	}
	e.Batches = append(e.Batches, BatchMeta{FirstSeq: b.FirstSeq, LastSeq: b.LastSeq(), FirstOffset: b.BaseOffset,
		LastOffset: b.LastOffset(), Timestamp: b.MaxTimestamp})
	return e, nil, false
}

// Admit makes room for a new producer id: if the state (plus extra
// producers its owner has in flight) holds MaxProducers, it removes the
// expired ones first, then refuses with ErrTooManyProducers.
func (s *State) Admit(pid int64, extra int, now time.Time) error {
	if _, ok := s.producers[pid]; ok || len(s.producers)+extra < s.opts.MaxProducers {
		return nil
	}
	s.RemoveExpired(now)
	if len(s.producers)+extra < s.opts.MaxProducers {
		return nil
	}
	return fmt.Errorf("%w: the partition tracks %d producer ids (limit %d); producer %d refused",
		ErrTooManyProducers, len(s.producers)+extra, s.opts.MaxProducers, pid)
}

// Check validates a client's batch against the state; see the function
// Check. It does not admit new producers (see Admit).
func (s *State) Check(b Batch) error { return Check(s.producers[b.ProducerID], b) }

// Update applies a batch that entered the log at b.BaseOffset (batches come
// in offset order) and returns the aborted transaction it ended, if it is
// an ABORT marker of a non-empty transaction. Batches without a producer id
// change nothing.
func (s *State) Update(b Batch) *AbortedTxn {
	if b.ProducerID < 0 || (b.Control && b.Marker == NoMarker) {
		return nil
	}
	cur := s.producers[b.ProducerID]
	next, ended, aborted := Next(cur, b)
	s.producers[b.ProducerID] = next
	if cur != nil && cur.TxnFirstOffset != NoOffset && next.TxnFirstOffset == NoOffset {
		s.removeOngoing(b.ProducerID, cur.TxnFirstOffset)
	}
	if next.TxnFirstOffset != NoOffset && (cur == nil || cur.TxnFirstOffset == NoOffset) {
		s.addOngoing(openTxn{first: next.TxnFirstOffset, pid: b.ProducerID})
	}
	if ended == nil || !aborted {
		return nil
	}
	ended.LastStableOffset = ended.LastOffset + 1
	if first, ok := s.FirstUnstableOffset(); ok {
		ended.LastStableOffset = first
	}
	return ended
}

func (s *State) addOngoing(t openTxn) {
	// Transactions start in offset order, so this is an append except
	// when a snapshot is being loaded.
	i := sort.Search(len(s.ongoing), func(i int) bool { return s.ongoing[i].first > t.first })
	s.ongoing = append(s.ongoing, openTxn{})
	copy(s.ongoing[i+1:], s.ongoing[i:])
	s.ongoing[i] = t
}

func (s *State) removeOngoing(pid, first int64) {
	for i, t := range s.ongoing {
		if t.pid == pid && t.first == first {
			s.ongoing = append(s.ongoing[:i], s.ongoing[i+1:]...)
			return
		}
	}
}

// RemoveExpired forgets producers with no open transaction whose last
// batch is older than Options.Expiration, and returns how many went.
func (s *State) RemoveExpired(now time.Time) int {
	n := 0
	limit := now.UnixMilli() - s.opts.Expiration.Milliseconds()
	for pid, e := range s.producers {
		if e.TxnFirstOffset == NoOffset && e.LastTimestamp <= limit {
			delete(s.producers, pid)
			n++
		}
	}
	return n
}

// Clone returns a deep copy of s.
func (s *State) Clone() *State {
	c := &State{opts: s.opts, producers: make(map[int64]*Entry, len(s.producers)), ongoing: append([]openTxn(nil), s.ongoing...)}
	for pid, e := range s.producers {
		c.producers[pid] = e.Clone()
	}
	return c
}

// Equal reports whether s and o hold the same producers and open
// transactions (options aside), for tests and recovery checks.
func (s *State) Equal(o *State) bool {
	if len(s.producers) != len(o.producers) || len(s.ongoing) != len(o.ongoing) {
		return false
	}
	for i := range s.ongoing {
		if s.ongoing[i] != o.ongoing[i] {
			return false
		}
	}
	for pid, e := range s.producers {
		f := o.producers[pid]
		if f == nil || e.Epoch != f.Epoch || e.LastTimestamp != f.LastTimestamp || e.CoordinatorEpoch != f.CoordinatorEpoch ||
			e.TxnFirstOffset != f.TxnFirstOffset || len(e.Batches) != len(f.Batches) {
			return false
		}
		for i := range e.Batches {
			if e.Batches[i] != f.Batches[i] {
				return false
			}
		}
	}
	return true
}
