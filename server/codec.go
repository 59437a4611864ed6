package server

import (
	"errors"

	"github.com/fastws/fastws/chat"
)

// Wire formats: each is a slot of chat.Event's encoding cache, so a
// broadcast is encoded once per format.
const (
	formatText   = iota // the text protocol, "\r\n"-terminated lines (telnet)
	formatWSText        // the text protocol, one websocket text frame per line
	formatWSJSON        // fastws.v1.json, one websocket text frame per event
)

// A codec is one protocol's wire format.
type codec interface {
	// newDecoder returns the decoder state of a new connection.
	newDecoder() decoder
	// handshake reports whether a connection joins the room only once its
	// decoder calls session.join (after a websocket upgrade), rather than
	// on connect.
	handshake() bool
	// refusal returns what a connection refused at accept is told (msg is
	// the reason without "! ") before it is closed.
	refusal(msg string) []byte
}

// input is where a connection's bytes enter: what arrived and is not yet
// consumed, gnet's inbound buffer (gnet.Conn implements it). Decoders read
// only through it, and write only through their session (session.send and
// the batch), so that a layer under both (TLS) needs no change to a codec;
// tests and fuzzers drive decoders from a byte slice.
type input interface {
	Peek(n int) ([]byte, error)
	Discard(n int) (int, error)
	InboundBuffered() int
}

// A decoder turns one connection's inbound bytes into calls on its session.
// It runs on the connection's event loop only.
type decoder interface {
	// decode consumes every complete unit buffered in in, handing each
	// line to s.line, and leaves a partial unit buffered. A
	// *protocolError ends the connection with ReasonProtocolError.
	decode(s *session, in input) error
	// format is the chat.Event encoding slot the session's output uses.
	format() int
	// appendEvent appends ev, rendered in that format, to b.
	appendEvent(b []byte, ev *chat.Event) []byte
	// farewell returns what the peer is sent just before the server
	// closes the connection for reason r (a websocket close frame), or nil.
	farewell(r chat.CloseReason) []byte
	// ping returns a keepalive ping to send, or nil if the protocol has
	// none (telnet) or the connection is not ready for one.
	ping() []byte
}

// keepBuffer is the largest buffer a decoder keeps between reads (a
// message, the answers of one read); a bigger one, grown by a burst, is
// dropped so that an idle connection costs little.
const keepBuffer = 4 << 10

// writeAnswers writes the answers a decoder gathered in one read (telnet
// negotiation, pongs) and returns buf emptied for the next. One write per
// read, not one per request: a storm of tiny writes to a peer that reads
// slowly would queue as many tiny buffers in gnet, which walks them all on
// every write.
func writeAnswers(s *session, buf []byte) []byte {
	if len(buf) == 0 {
		return buf
	}
	s.send(buf)
	if cap(buf) > keepBuffer {
		return nil
	}
	return buf[:0]
}

// protocolError is a violation by the peer, or a request the protocol
// answers and then closes (an HTTP page). Kind labels the error metric
// ("" = not an error). Msg, if set, is told to a member as an error line
// ("line too long (max 65536 bytes)"); Frame, if set, is written as it is
// (a websocket close frame, an HTTP response). Then the connection closes.
type protocolError struct {
	Kind  string
	Msg   string
	Frame []byte
}

func (e *protocolError) Error() string {
	if e.Msg == "" {
		return e.Kind
	}
	return e.Kind + ": " + e.Msg
}

// kindRefused labels a connection refused at accept by a limit
// (maxConnections, maxConnectionsPerIP), for every protocol.
const kindRefused = "refused"

// asProtocolError reports whether err is a protocol violation.
func asProtocolError(err error) (*protocolError, bool) {
	var pe *protocolError
	ok := errors.As(err, &pe)
	return pe, ok
}
