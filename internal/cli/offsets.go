package cli

import (
	"fmt"
	"strconv"
	"strings"
)

// offsetKind says how an --offset value picks the first record.
type offsetKind int

const (
	offsetStart     offsetKind = iota // the log start
	offsetEnd                         // the high watermark: only new records
	offsetExact                       // an absolute offset
	offsetFromStart                   // +N: N records after the log start
	offsetFromEnd                     // -N: the last N records
	offsetTime                        // @ms: the first record at or after a timestamp
)

// offsetSpec is a parsed --offset.
type offsetSpec struct {
	kind offsetKind
	n    int64
}

const offsetHelp = `where to start: start, end, N (an offset), +N (N after the start), -N (the last N), @MS (first record at or after a Unix time in ms)`

func parseOffset(s string) (offsetSpec, error) {
	bad := func() (offsetSpec, error) {
		return offsetSpec{}, fmt.Errorf("%w: %q (want start, end, N, +N, -N or @timestamp-ms)", ErrBadOffset, s)
	}
	switch strings.ToLower(s) {
	case "start", "beginning", "oldest", "earliest":
		return offsetSpec{kind: offsetStart}, nil
	case "end", "newest", "latest":
		return offsetSpec{kind: offsetEnd}, nil
	case "":
		return bad()
	}
	kind := offsetExact
	num := s
	switch s[0] {
	case '@':
		kind, num = offsetTime, s[1:]
	case '+':
		kind, num = offsetFromStart, s[1:]
	case '-':
		kind, num = offsetFromEnd, s[1:]
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n < 0 || num == "" || num[0] == '+' || num[0] == '-' {
		return bad()
	}
	return offsetSpec{kind: kind, n: n}, nil
}

// resolve picks the offset to start one partition at, given its log start
// and high watermark, and for @timestamp the offset ListOffsets returned
// (-1 when no record is that new). The result always lies in [start, end],
// so a too-large offset means "wait for new records" rather than an
// OFFSET_OUT_OF_RANGE reset to somewhere surprising.
func (o offsetSpec) resolve(start, end, atTime int64) int64 {
	var at int64
	switch o.kind {
	case offsetStart:
		at = start
	case offsetEnd:
		at = end
	case offsetExact:
		at = o.n
	case offsetFromStart:
		at = start + o.n
		if at < start { // overflow
			at = end
		}
	case offsetFromEnd:
		at = end - o.n
		if at > end { // overflow
			at = start
		}
	case offsetTime:
		at = atTime
		if at < 0 {
			at = end
		}
	}
	return min(max(at, start), end)
}
