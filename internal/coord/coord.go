// Package coord holds what Sluice's coordinators (internal/group,
// internal/txn) share with Kafka's: how a key is placed on a partition of
// the coordinator's internal topic, and the error response to a request a
// coordinator does not serve. It has no state and is safe for concurrent
// use.
package coord

import (
	"math"
	"reflect"
	"unicode/utf16"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// Partition is the partition of a coordinator's internal topic that holds
// key (a group id or a transactional id): Kafka's
// Utils.abs(key.hashCode()) % n, so clients and tools that compute it
// agree. It returns 0 when n is not positive.
func Partition(key string, n int32) int32 {
	if n <= 0 {
		return 0
	}
	// Java hashes the UTF-16 code units of the string it decoded from
	// the wire; []rune turns invalid UTF-8 into U+FFFD as Java's decoder
	// does.
	var h int32
	for _, u := range utf16.Encode([]rune(key)) {
		h = 31*h + int32(u)
	}
	if h == math.MinInt32 { // Kafka's Utils.abs
		h = 0
	} else if h < 0 {
		h = -h
	}
	return h % n
}

// ErrorResponse answers req with code in its response's top-level
// ErrorCode. Every Kafka response a coordinator may be asked for has one;
// a response without it is answered empty rather than with a panic.
func ErrorResponse(req kmsg.Request, code int16) kmsg.Response {
	resp := req.ResponseKind()
	v := reflect.ValueOf(resp)
	if v.Kind() == reflect.Pointer && v.Elem().Kind() == reflect.Struct {
		if f := v.Elem().FieldByName("ErrorCode"); f.IsValid() && f.CanSet() && f.Kind() == reflect.Int16 {
			f.SetInt(int64(code))
		}
	}
	return resp
}
