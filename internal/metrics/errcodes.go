package metrics

import (
	"reflect"
	"strconv"
	"sync"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Kafka answers most failures inside a well-formed response: a top-level
// ErrorCode, or one per topic, partition, group or resource. Counting them
// per API and code is what operators alert on (Kafka's ErrorsPerSec). The
// server hands over the response struct; the codes are found by walking
// it with a plan built once per response type, so a Produce response costs
// a few field loads, and parts that hold no ErrorCode (broker lists,
// record bytes) are never visited.

// codePlan says where the ErrorCode fields of one struct type are.
type codePlan struct {
	codes  []int        // indexes of int16 fields named ErrorCode
	nested []nestedPlan // struct, *struct and []struct fields holding some
}

type nestedPlan struct {
	index int
	kind  reflect.Kind // reflect.Struct, reflect.Pointer or reflect.Slice
	plan  *codePlan
}

var codePlans sync.Map // reflect.Type (struct) -> *codePlan, nil if none inside

var int16Type = reflect.TypeFor[int16]()

// planFor returns the plan of struct type t, nil when t holds no ErrorCode.
func planFor(t reflect.Type) *codePlan {
	if p, ok := codePlans.Load(t); ok {
		return p.(*codePlan)
	}
	p := buildPlan(t, map[reflect.Type]bool{})
	codePlans.Store(t, p)
	return p
}

func buildPlan(t reflect.Type, seen map[reflect.Type]bool) *codePlan {
	if seen[t] { // a recursive type: kmsg has none, but never loop
		return nil
	}
	seen[t] = true
	defer delete(seen, t)
	var p codePlan
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		if f.Name == "ErrorCode" && f.Type == int16Type {
			p.codes = append(p.codes, i)
			continue
		}
		var elem reflect.Type
		switch f.Type.Kind() {
		case reflect.Struct:
			elem = f.Type
		case reflect.Pointer, reflect.Slice:
			elem = f.Type.Elem()
		default:
			continue
		}
		if elem.Kind() != reflect.Struct {
			continue
		}
		if sub := buildPlan(elem, seen); sub != nil {
			p.nested = append(p.nested, nestedPlan{index: i, kind: f.Type.Kind(), plan: sub})
		}
	}
	if len(p.codes) == 0 && len(p.nested) == 0 {
		return nil
	}
	return &p
}

// errorCodes calls fn for every nonzero ErrorCode in msg.
func errorCodes(msg kmsg.Response, fn func(code int16)) {
	v := reflect.ValueOf(msg)
	if v.Kind() != reflect.Pointer || v.IsNil() || v.Elem().Kind() != reflect.Struct {
		return
	}
	v = v.Elem()
	if p := planFor(v.Type()); p != nil {
		p.walk(v, fn)
	}
}

func (p *codePlan) walk(v reflect.Value, fn func(int16)) {
	for _, i := range p.codes {
		if c := int16(v.Field(i).Int()); c != 0 {
			fn(c)
		}
	}
	for _, n := range p.nested {
		f := v.Field(n.index)
		switch n.kind {
		case reflect.Struct:
			n.plan.walk(f, fn)
		case reflect.Pointer:
			if !f.IsNil() {
				n.plan.walk(f.Elem(), fn)
			}
		case reflect.Slice:
			for j := range f.Len() {
				n.plan.walk(f.Index(j), fn)
			}
		}
	}
}

// errorName is the label value of a Kafka error code: Kafka's own name
// (UNKNOWN_TOPIC_OR_PARTITION), or code_N for a code kerr does not know.
func errorName(code int16) string {
	if ke, ok := kerr.ErrorForCode(code).(*kerr.Error); ok && ke.Code == code {
		return ke.Message
	}
	return "code_" + strconv.Itoa(int(code))
}
