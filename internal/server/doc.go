// Package server is Sluice's Kafka network front end: the listener, request
// framing, per-connection pipelining, connection limits and zero-copy
// response writing. It knows nothing about topics, offsets or storage; the
// broker plugs in through a Handler.
//
// # Framing
//
// Every request and response is a frame with a big-endian int32 size prefix
// that counts the bytes after it. Requests are decoded with franz-go's kmsg;
// nothing here hand-writes a request codec.
//
//	request:  size int32 | api_key int16 | api_version int16 | correlation_id int32
//	          | client_id nullable string | [tagged fields, header v2 only] | body
//	response: size int32 | correlation_id int32 | [tagged fields, header v1 only] | body
//
// A request uses header v2 exactly when its key and version are flexible
// (KIP-482), and its response then uses header v1, except ApiVersions
// responses, which always use header v0 so that a client that does not yet
// know the broker's versions can read them. ControlledShutdown v0 has no
// client_id.
//
// # Pipelining
//
// Each connection has one reader goroutine and one writer goroutine. The
// reader decodes requests in arrival order and calls Handler.Handle for each,
// in that order, so the handler can enqueue work (a produce's WAL append) in
// the order the client sent it. Handle returns a Pending; the writer awaits
// the Pendings in request order and writes each response as soon as it and
// every earlier one are ready. A slow request (a produce waiting for fsync, a
// fetch long-poll) therefore overlaps later requests without reordering the
// responses, which Kafka clients depend on.
//
// # Limits
//
// Past Options.MaxInFlightRequests on a connection, or
// Options.MaxInFlightBytes of request bytes across the server, a reader stops
// reading: TCP pushes back on the client and nothing is buffered without
// bound. A size prefix above Options.MaxRequestBytes, or negative, closes the
// connection without reading the body. A connection with nothing in flight
// and no bytes for Options.IdleTimeout is closed, as is one whose client
// accepts no bytes for Options.WriteTimeout. Past Options.MaxConnections new
// connections are closed at once.
//
// # Failures
//
// Input never panics the server. An unknown API key, a version the handler
// does not serve, or a request that does not decode closes that connection
// only, as Kafka does; the exception is ApiVersions at an unsupported
// version, which reaches the handler with Request.UnsupportedVersion set so
// it can answer UNSUPPORTED_VERSION in a v0 response. A panic in the handler
// is recovered, logged with its stack, and closes that connection only.
//
// Forged tagged-field counts: upstream kmsg (v1.15.0) decodes a tagged-field
// section by looping as many times as its uvarint count says, even once the
// bytes have run out (one 7-byte request cost a minute of CPU). The request
// header's tags are skipped here with a bounded loop, and the module is
// replaced by third_party/kmsg, whose loops stop when the input does.
//
// # Goroutines and shutdown
//
// The Server owns the accept loop, a goroutine that empties the request
// buffer pool once the server is idle, and one goroutine per connection,
// which owns that connection's writer goroutine; Shutdown waits for all of
// them.
// Shutdown stops accepting and reading, lets every request already read
// finish and its response be written, then closes the connections. If its
// context expires first, the context given to Handle and Pending.Wait is
// cancelled and the connections are closed at once.
//
// A Server is safe for concurrent use.
package server
