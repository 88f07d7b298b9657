package server

import (
	"context"
	"net"
	"os"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// Handler serves decoded requests. The broker implements it.
type Handler interface {
	// Versions reports the versions of key the handler serves. The server
	// decodes only those; any other version closes the connection, except
	// for ApiVersions (see Request.UnsupportedVersion).
	Versions(key int16) (minVersion, maxVersion int16, ok bool)

	// Handle is called from the connection's reader goroutine, once per
	// request and in request order, so work the handler starts here is
	// started in the order the client sent it. It must not block for
	// long: while it runs, the connection reads nothing. Slow work
	// belongs in the returned Pending. ctx is cancelled when the
	// connection dies or Shutdown gives up waiting. Handle must not
	// return nil.
	Handle(ctx context.Context, req *Request) Pending
}

// Pending is a response that may not be ready yet.
type Pending interface {
	// Wait blocks until the response is ready and returns it. It is
	// called once, from the connection's writer goroutine, in request
	// order. ctx is cancelled when the connection dies or Shutdown gives
	// up waiting; Wait must then return promptly (any Response will do,
	// it is not written, but its Release is still called).
	Wait(ctx context.Context) Response
}

// Done is a Pending whose response is already known.
type Done Response

// Wait returns the response.
func (d Done) Wait(context.Context) Response { return Response(d) }

// Request is one decoded request. The handler may keep it and its Body;
// Body's byte slices point into the request's frame, which the server
// reuses only if the response sets ReuseRequest.
type Request struct {
	Key           int16
	Version       int16
	CorrelationID int32
	ClientID      *string // nil when the client sent a null client id

	// Body is the decoded request with its version set. It is nil when
	// UnsupportedVersion is set.
	Body kmsg.Request

	// UnsupportedVersion is set only for an ApiVersions request whose
	// version the handler does not serve. The handler should answer
	// UNSUPPORTED_VERSION (35) with its ApiVersions range; the server
	// encodes that response at version 0, as Kafka clients expect.
	UnsupportedVersion bool

	Conn *ConnInfo
	Size int // bytes on the wire, size prefix included
}

// ConnInfo describes the connection a request arrived on. Every request on
// a connection carries the same *ConnInfo.
type ConnInfo struct {
	ID        uint64 // unique within the process
	Remote    net.Addr
	Local     net.Addr
	Plaintext bool // no TLS; always true until TLS listeners exist

	// State is the handler's per-connection state (for example a SASL
	// exchange). The server never touches it. Handle calls for one
	// connection never overlap, so Handle may use it without locking;
	// Pending.Wait runs on another goroutine and must not.
	State any
}

// Response is what the server writes for one request. Exactly one of Msg,
// Parts or NoResponse is used.
type Response struct {
	// Msg is encoded at the request's version (version 0 when the
	// request had UnsupportedVersion). Its key must match the request's.
	Msg kmsg.Response

	// Parts is a pre-encoded response body, everything after the
	// response header, in pieces: a fetch can send record batches
	// straight from segment files.
	Parts []Part

	// ErrorCodes lists the nonzero Kafka error codes inside Parts, once
	// per occurrence, for Options.OnResponse: a pre-encoded body is
	// opaque to the server. Ignored when Msg is set.
	ErrorCodes []int16

	// NoResponse writes nothing (a produce with acks=0) while keeping
	// the order of the responses around it.
	NoResponse bool

	// Close closes the connection after this response is written (or at
	// once with NoResponse). Kafka closes the connection after a failed
	// acks=0 produce, so the client notices, and after a failed SASL
	// authentication.
	Close bool

	// Release, if set, is called exactly once when the response has been
	// written or abandoned, so the handler can drop file references and
	// return buffers. (A Wait that panics returns no Response, so there
	// is nothing to release.)
	Release func()

	// ReuseRequest tells the server that nothing the handler started
	// still refers to the request's bytes (the byte slices in Body,
	// such as a produce's records), so once this response is written
	// and released the server may read the next request into the same
	// buffer. Leave it false for a request whose bytes are kept, or
	// when unsure: the buffer is then left to the garbage collector.
	// The server ignores it when Wait returned because ctx was done.
	ReuseRequest bool
}

// Part is one piece of a pre-encoded response body: either Bytes, or the
// Length bytes of File starting at Offset. File ranges are sent with
// sendfile when possible, with an explicit offset, so concurrent responses
// never share the file's cursor; the server does not close File.
type Part struct {
	Bytes  []byte
	File   *os.File
	Offset int64
	Length int64
}

// Stats is a snapshot of the server's counters.
type Stats struct {
	Connections         int64 // open now
	ConnectionsAccepted int64 // since start, excluding rejected ones
	ConnectionsRejected int64 // closed at once: MaxConnections or shutting down
	Requests            int64 // requests read and handed to the handler
	BytesIn             int64 // request bytes read, size prefixes included
	BytesOut            int64 // response bytes written, size prefixes included
	BytesSendfile       int64 // file-part bytes sent with sendfile
	BytesCopied         int64 // file-part bytes copied through user space
}
