package errorfs

import (
	"sync/atomic"
	"syscall"
)

// opSet is a set of Ops; the empty set given by no Ops means every Op.
type opSet uint32

func newOpSet(ops []Op) opSet {
	if len(ops) == 0 {
		return 1<<numOps - 1
	}
	var s opSet
	for _, op := range ops {
		if op >= 0 && op < numOps {
			s |= 1 << op
		}
	}
	return s
}

func (s opSet) has(op Op) bool { return op >= 0 && op < numOps && s&(1<<op) != 0 }

// OnIndex fails the n-th (0-based) operation among ops, once, with err
// (ErrInjected if nil). No ops means every operation counts. Paired with a
// Counter over the same ops, a test can count the operations of a workload
// and then fail each one in turn.
func OnIndex(n int64, err error, ops ...Op) Injector {
	return &indexInjector{ops: newOpSet(ops), n: n, err: orInjected(err)}
}

// After fails the n-th (0-based) operation among ops and every later one,
// like a disk that died. No ops means every operation counts.
func After(n int64, err error, ops ...Op) Injector {
	return &indexInjector{ops: newOpSet(ops), n: n, err: orInjected(err), sticky: true}
}

func orInjected(err error) error {
	if err == nil {
		return ErrInjected
	}
	return err
}

type indexInjector struct {
	ops    opSet
	n      int64
	err    error
	sticky bool
	count  atomic.Int64
}

func (i *indexInjector) MaybeError(op Op, _ string, _ int) error {
	if !i.ops.has(op) {
		return nil
	}
	k := i.count.Add(1) - 1
	if k == i.n || (i.sticky && k > i.n) {
		return i.err
	}
	return nil
}

// NoSpaceAfter lets writes through until limitBytes bytes have been
// written through the wrapper, then fails them with syscall.ENOSPC. As on
// Linux, the write that crosses the limit writes the part that fits and
// reports ENOSPC (a *ShortWriteError); every write after that writes
// nothing. Bytes count when the wrapper lets them through, whether or not
// the wrapped FS then manages to write them. Only writes count and fail:
// Truncate and Preallocate never run out of space here.
func NoSpaceAfter(limitBytes int64) Injector {
	return &noSpace{limitBytes: limitBytes}
}

type noSpace struct {
	limitBytes int64
	usedBytes  atomic.Int64
}

func (s *noSpace) MaybeError(op Op, _ string, n int) error {
	if op != OpWrite || n <= 0 {
		return nil
	}
	for {
		used := s.usedBytes.Load()
		if used >= s.limitBytes {
			return &ShortWriteError{N: 0, Err: syscall.ENOSPC}
		}
		if used+int64(n) <= s.limitBytes {
			if s.usedBytes.CompareAndSwap(used, used+int64(n)) {
				return nil
			}
			continue
		}
		if s.usedBytes.CompareAndSwap(used, s.limitBytes) {
			return &ShortWriteError{N: int(s.limitBytes - used), Err: syscall.ENOSPC}
		}
	}
}

// Counter counts operations among its ops (every operation if none) and
// never fails one. Combine it with other injectors through Any.
type Counter struct {
	ops   opSet
	count atomic.Int64
}

// NewCounter returns a Counter of ops.
func NewCounter(ops ...Op) *Counter { return &Counter{ops: newOpSet(ops)} }

// MaybeError counts op if it is one of c's and returns nil.
func (c *Counter) MaybeError(op Op, _ string, _ int) error {
	if c.ops.has(op) {
		c.count.Add(1)
	}
	return nil
}

// Count returns how many operations c has seen.
func (c *Counter) Count() int64 { return c.count.Load() }

// Any asks every injector, in order, and returns the first error. It asks
// all of them even after one fails, so Counters and index injectors see
// every operation and their counts stay comparable.
func Any(injs ...Injector) Injector {
	return InjectorFunc(func(op Op, path string, n int) error {
		var first error
		for _, inj := range injs {
			if err := inj.MaybeError(op, path, n); err != nil && first == nil {
				first = err
			}
		}
		return first
	})
}
