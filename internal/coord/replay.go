package coord

import (
	"context"
	"errors"
	"fmt"
	"iter"
)

// ErrCorruptRecord is wrapped by every CorruptRecordError.
var ErrCorruptRecord = errors.New("corrupt record")

// CorruptRecordError reports a record of a coordinator's log that Load
// could not decode or apply. Index counts the records Load had seen before
// it, across all partitions.
type CorruptRecordError struct {
	Log   string // the package and the log: "group: offsets log"
	Index int64
	Err   error
}

func (e *CorruptRecordError) Error() string {
	return fmt.Sprintf("%s: %v %d: %v", e.Log, ErrCorruptRecord, e.Index, e.Err)
}

func (e *CorruptRecordError) Unwrap() []error { return []error{ErrCorruptRecord, e.Err} }

// replayCheckEvery is how many records Replay applies between looks at its
// context.
const replayCheckEvery = 1024

// Replay is the loop of a coordinator's Load: it hands each record of recs
// to apply, in order, and returns how many it applied. It stops at the
// first error: of the stream (wrapped, naming log, such as "txn:
// transaction log"), of ctx, or of apply (as a *CorruptRecordError at that
// record's index).
func Replay[R any](ctx context.Context, log string, recs iter.Seq2[R, error], apply func(R) error) (n int64, err error) {
	for r, err := range recs {
		if err != nil {
			return n, fmt.Errorf("%s: reading: %w", log, err)
		}
		if n%replayCheckEvery == 0 {
			if err := ctx.Err(); err != nil {
				return n, err
			}
		}
		if err := apply(r); err != nil {
			return n, &CorruptRecordError{Log: log, Index: n, Err: err}
		}
		n++
	}
	return n, nil
}
