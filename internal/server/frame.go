package server

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"runtime/debug"

	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Reasons a connection is closed. None reaches the client, which sees only
// the close, as with Kafka; they are for logs and tests.
var (
	errRequestTooLarge    = errors.New("server: request size prefix out of range")
	errHeader             = errors.New("server: malformed request header")
	errUnknownKey         = errors.New("server: unknown api key")
	errUnsupportedVersion = errors.New("server: unsupported api version")
	errDecode             = errors.New("server: request does not decode")
	errIdle               = errors.New("server: connection idle")
	errStopped            = errors.New("server: stopped reading")
	errHandler            = errors.New("server: handler failed")
	errBadResponse        = errors.New("server: handler returned a malformed response")
)

const (
	apiVersionsKey        = 18
	controlledShutdownKey = 7

	// firstBodyChunkBytes is the most a reader allocates for a request
	// body before that many bytes have arrived (see readBody), so a
	// client that sends a large size prefix and then stalls costs little
	// memory.
	firstBodyChunkBytes = 64 << 10
)

// unexpectedEOF turns io.EOF into io.ErrUnexpectedEOF: a frame's size
// prefix promised more bytes.
func unexpectedEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// parseRequest decodes a request frame (the bytes after the size prefix).
// An error means the connection must close. It never panics: kmsg and the
// handler's Versions are outside our control, so a panic in either is
// recovered and reported as a decode failure.
func parseRequest(h Handler, frame []byte) (req *Request, err error) {
	defer func() {
		if p := recover(); p != nil {
			req, err = nil, fmt.Errorf("%w: panic: %v\n%s", errDecode, p, debug.Stack())
		}
	}()
	r := kbin.Reader{Src: frame}
	key, version, corr := r.Int16(), r.Int16(), r.Int32()
	if !r.Ok() {
		return nil, fmt.Errorf("%w: %d bytes", errHeader, len(frame))
	}
	req = &Request{Key: key, Version: version, CorrelationID: corr}
	body := kmsg.RequestForKey(key)
	if body == nil {
		return nil, fmt.Errorf("%w %d", errUnknownKey, key)
	}
	if !(key == controlledShutdownKey && version == 0) {
		req.ClientID = r.NullableString()
	}
	lo, hi, ok := h.Versions(key)
	if !ok || version < lo || version > hi || version < 0 || version > body.MaxVersion() {
		if key != apiVersionsKey {
			return nil, fmt.Errorf("%w: %s v%d", errUnsupportedVersion, kmsg.NameForKey(key), version)
		}
		// The rest of the header and the body are in a format we may
		// not know; Kafka answers from the fixed part alone.
		if !r.Ok() {
			req.ClientID = nil
		}
		req.UnsupportedVersion = true
		return req, nil
	}
	body.SetVersion(version)
	if body.IsFlexible() {
		skipTags(&r)
	}
	if !r.Ok() {
		return nil, fmt.Errorf("%w: %s v%d", errHeader, kmsg.NameForKey(key), version)
	}
	if err := body.ReadFrom(r.Src); err != nil {
		return nil, fmt.Errorf("%w: %s v%d: %v", errDecode, kmsg.NameForKey(key), version, err)
	}
	req.Body = body
	return req, nil
}

// skipTags skips a tagged-field section. kmsg.SkipTags loops as many times
// as the count says even after the bytes run out, so a forged count near
// 2^32 costs about half a minute of CPU; a count that cannot fit in the
// bytes left fails here at once.
//
// kmsg's body decoders have the same loop in every flexible struct and
// nothing here can bound it without the schema; see the package doc.
func skipTags(r *kbin.Reader) {
	n := r.Uvarint()
	if uint64(n) > uint64(len(r.Src))/2 {
		r.Span(-1) // marks the reader bad
		return
	}
	for ; n > 0 && r.Ok(); n-- {
		r.Uvarint() // tag
		r.Span(int(r.Uvarint()))
	}
}

// flexibleResponseHeader reports whether the response to req uses header v1.
func flexibleResponseHeader(req *Request) bool {
	return req.Key != apiVersionsKey && req.Body != nil && req.Body.IsFlexible()
}

// appendResponseHeader appends a response header to dst with a zero size
// prefix, to be filled by putSize.
func appendResponseHeader(dst []byte, req *Request) []byte {
	dst = binary.BigEndian.AppendUint32(dst, 0)
	dst = binary.BigEndian.AppendUint32(dst, uint32(req.CorrelationID))
	if flexibleResponseHeader(req) {
		dst = append(dst, 0) // no tagged fields
	}
	return dst
}

// putSize fills the size prefix of a frame whose bytes after the prefix
// total n.
func putSize(frame []byte, n int64) error {
	if n > math.MaxInt32 {
		return fmt.Errorf("%w: %d bytes does not fit a frame", errBadResponse, n)
	}
	binary.BigEndian.PutUint32(frame[:4], uint32(n))
	return nil
}

// partsLength checks parts and returns the bytes they add up to. A file
// range must lie within the file now, or the frame's size prefix would
// promise bytes that never come and desynchronise the client.
func partsLength(parts []Part) (int64, error) {
	var n int64
	for i, p := range parts {
		if p.File == nil {
			n += int64(len(p.Bytes))
			continue
		}
		if p.Bytes != nil {
			return 0, fmt.Errorf("%w: part %d has both bytes and a file", errBadResponse, i)
		}
		if p.Offset < 0 || p.Length < 0 {
			return 0, fmt.Errorf("%w: part %d has range %d+%d", errBadResponse, i, p.Offset, p.Length)
		}
		fi, err := p.File.Stat()
		if err != nil {
			return 0, fmt.Errorf("%w: part %d: %v", errBadResponse, i, err)
		}
		if p.Offset > fi.Size()-p.Length {
			return 0, fmt.Errorf("%w: part %d range %d+%d is past the end of %s (%d bytes)",
				errBadResponse, i, p.Offset, p.Length, p.File.Name(), fi.Size())
		}
		n += p.Length
		if n > math.MaxInt32 {
			return 0, fmt.Errorf("%w: parts exceed a frame", errBadResponse)
		}
	}
	return n, nil
}
