package cli

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// formatHelp documents the verbs of `consume -f`.
const formatHelp = `output format: "json" (one object per line) or a template with
  %t topic  %p partition  %o offset  %k key  %v (or %s) value  %h headers (k=v,k=v)
  %T timestamp (ms)  %d timestamp (RFC 3339)  %K key length  %V value length  %% a percent sign
  and the escapes \n \t \r \\`

// recordFormatter appends one record's text to dst.
type recordFormatter func(dst []byte, r *kgo.Record) []byte

// compileFormat turns a -f template into a formatter. It checks the whole
// template up front so a typo fails before anything is consumed.
func compileFormat(tmpl string, printHeaders bool) (recordFormatter, error) {
	if tmpl == "json" {
		return func(dst []byte, r *kgo.Record) []byte { return appendJSONRecord(dst, r, printHeaders) }, nil
	}
	if printHeaders && !strings.Contains(tmpl, "%h") {
		tmpl = "%h\t" + tmpl
	}
	type piece struct {
		lit  string
		verb byte
	}
	var pieces []piece
	var lit strings.Builder
	flush := func() {
		if lit.Len() > 0 {
			pieces = append(pieces, piece{lit: lit.String()})
			lit.Reset()
		}
	}
	for i := 0; i < len(tmpl); i++ {
		c := tmpl[i]
		switch c {
		case '%', '\\':
			if i+1 >= len(tmpl) {
				return nil, fmt.Errorf("%w: %q ends in a lone %c", ErrBadFormat, tmpl, c)
			}
			i++
			n := tmpl[i]
			if c == '\\' {
				switch n {
				case 'n':
					lit.WriteByte('\n')
				case 't':
					lit.WriteByte('\t')
				case 'r':
					lit.WriteByte('\r')
				case '\\':
					lit.WriteByte('\\')
				default:
					return nil, fmt.Errorf("%w: unknown escape \\%c in %q", ErrBadFormat, n, tmpl)
				}
				continue
			}
			switch n {
			case '%':
				lit.WriteByte('%')
			case 't', 'p', 'o', 'k', 'v', 's', 'h', 'T', 'd', 'K', 'V':
				flush()
				pieces = append(pieces, piece{verb: n})
			default:
				return nil, fmt.Errorf("%w: unknown verb %%%c in %q", ErrBadFormat, n, tmpl)
			}
		default:
			lit.WriteByte(c)
		}
	}
	flush()
	return func(dst []byte, r *kgo.Record) []byte {
		for _, p := range pieces {
			if p.verb == 0 {
				dst = append(dst, p.lit...)
				continue
			}
			switch p.verb {
			case 't':
				dst = append(dst, r.Topic...)
			case 'p':
				dst = strconv.AppendInt(dst, int64(r.Partition), 10)
			case 'o':
				dst = strconv.AppendInt(dst, r.Offset, 10)
			case 'k':
				dst = append(dst, r.Key...)
			case 'v', 's':
				dst = append(dst, r.Value...)
			case 'h':
				for i, h := range r.Headers {
					if i > 0 {
						dst = append(dst, ',')
					}
					dst = append(dst, h.Key...)
					dst = append(dst, '=')
					dst = append(dst, h.Value...)
				}
			case 'T':
				dst = strconv.AppendInt(dst, r.Timestamp.UnixMilli(), 10)
			case 'd':
				dst = r.Timestamp.UTC().AppendFormat(dst, time.RFC3339Nano)
			case 'K':
				dst = strconv.AppendInt(dst, int64(len(r.Key)), 10)
			case 'V':
				dst = strconv.AppendInt(dst, int64(len(r.Value)), 10)
			}
		}
		return dst
	}, nil
}

// jsonRecord is the "json" output format. Keys and values are printed as
// strings; bytes that are not UTF-8 become U+FFFD, as encoding/json does.
type jsonRecord struct {
	Topic     string       `json:"topic"`
	Partition int32        `json:"partition"`
	Offset    int64        `json:"offset"`
	Timestamp int64        `json:"timestamp"`
	Key       *string      `json:"key"`
	Value     *string      `json:"value"`
	Headers   []jsonHeader `json:"headers,omitempty"`
}

type jsonHeader struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

func appendJSONRecord(dst []byte, r *kgo.Record, headers bool) []byte {
	j := jsonRecord{
		Topic: r.Topic, Partition: r.Partition, Offset: r.Offset,
		Timestamp: r.Timestamp.UnixMilli(),
	}
	if r.Key != nil {
		k := string(r.Key)
		j.Key = &k
	}
	if r.Value != nil {
		v := string(r.Value)
		j.Value = &v
	}
	if headers {
		for _, h := range r.Headers {
			j.Headers = append(j.Headers, jsonHeader{Key: h.Key, Value: string(h.Value)})
		}
	}
	b, err := json.Marshal(j)
	if err != nil {
		// Only strings and integers go in, so Marshal cannot fail; if it
		// ever does, say so in the output rather than drop the record.
		b = []byte(strconv.Quote(err.Error()))
	}
	dst = append(dst, b...)
	return append(dst, '\n')
}
