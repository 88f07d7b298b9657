package batch

// Iter walks a record set, the concatenation of batches found in a Produce
// request or a segment file, without allocating:
//
//	for it := batch.NewIter(b); it.Next(); {
//		h, raw := it.Header(), it.Batch()
//		...
//	}
//	if err := it.Err(); err != nil { ... }
//
// Iter only frames the batches: it parses each header and checks that the
// whole batch is present. Call Validate or Verify on Batch() to check the
// CRC. Iteration stops at the first problem; Offset() then says where the
// bad batch starts, which is where a segment recovery truncates, and
// errors.Is(it.Err(), ErrTruncated) tells a torn tail from damage.
//
// An Iter is not safe for concurrent use.
type Iter struct {
	b    []byte
	pos  int // start of the current batch
	next int // start of the batch after it
	h    Header
	err  error
}

// NewIter returns an iterator over the batches in b.
func NewIter(b []byte) Iter { return Iter{b: b} }

// Next advances to the next batch and reports whether there is one. It
// returns false at the end of b or on error.
func (it *Iter) Next() bool {
	if it.err != nil {
		return false
	}
	it.pos = it.next
	if it.pos >= len(it.b) {
		it.h = Header{}
		return false
	}
	rest := it.b[it.pos:]
	h, err := parseHeader(rest, int64(it.pos))
	if err != nil {
		it.h, it.err = Header{}, err
		return false
	}
	if n := h.Size(); n > len(rest) {
		it.h = Header{}
		it.err = truncated(int64(len(it.b)), "batch at byte %d needs %d bytes, have %d", it.pos, n, len(rest))
		return false
	}
	it.h = h
	it.next = it.pos + h.Size()
	return true
}

// Header is the current batch's header.
func (it *Iter) Header() Header { return it.h }

// Batch is the current batch's bytes, a subslice of the record set.
func (it *Iter) Batch() []byte { return it.b[it.pos:it.next] }

// Offset is the byte offset of the current batch in the record set. After
// Next returns false it is where iteration stopped: len(b) at a clean end,
// otherwise the start of the batch that could not be framed.
func (it *Iter) Offset() int { return it.pos }

// Err is the error that stopped iteration, or nil at a clean end.
func (it *Iter) Err() error { return it.err }
