package server

import (
	"bytes"
	"slices"
	"unicode/utf8"

	"github.com/fastws/fastws/chat"
	"github.com/fastws/fastws/server/config"
	"github.com/gobwas/ws"
)

// wsProtocolJSON is the subprotocol that carries room events as JSON
// (see wsjson.go); without it a connection speaks the text protocol.
const wsProtocolJSON = "fastws.v1.json"

// wsCodec is RFC 6455 WebSocket, plus the chat page on GET /:
//
//	connection = request ( page-response / refusal / upgrade-101 *frame )
//	request    = request-line *( header-field CRLF ) CRLF   ; 8 KiB at most
//	frame      = FIN RSV1-3=0 opcode MASK=1 length [ length16 / length64 ]
//	             masking-key payload
//	message    = text-frame(FIN=1)
//	           / text-frame(FIN=0) *( continuation(FIN=0) / control )
//	             continuation(FIN=1)
//	control    = ping / pong / close                      ; FIN=1, <= 125 bytes
//	text       = one line of the text protocol             ; valid UTF-8
//	           / {"text": "..."} / {"to": uid, "text": "..."} ; fastws.v1.json
//
// A message is at most maxPackageSize bytes. Binary messages (1003),
// reserved bits or opcodes, unmasked or malformed frames (1002), invalid
// UTF-8 (1007) and messages over the limit (1009) get a close frame with
// that code, then the connection closes. A ping is answered with a pong, a
// close with the same close, and no extension is ever negotiated
// (permessage-deflate offers are ignored).
//
// The framing and handshake come from github.com/gobwas/ws: it is the
// low-level, zero-copy kind of WebSocket library, whose header reader,
// checks, masking cipher and upgrader work on byte slices and plain
// io.Readers rather than owning a net.Conn and blocking on it. That is what
// gnet needs: a callback must never block, so the decoder peeks at what is
// buffered, lets gobwas parse it from a bytes.Reader, and returns to wait
// for more when a header or payload is not whole yet.
type wsCodec struct {
	maxMsg  int
	origins []string // allowedOrigins, lower-case; empty = any
}

func newWSCodec(cfg config.Instance) *wsCodec {
	return &wsCodec{maxMsg: cfg.Limits.MaxPackageSize, origins: cfg.AllowedOrigins}
}

func (wc *wsCodec) newDecoder() decoder {
	return &wsDecoder{codec: wc, frames: wsFrames{max: wc.maxMsg}}
}

func (*wsCodec) handshake() bool { return true }

// refusal answers a connection refused at accept with 503, before its
// request is read.
func (*wsCodec) refusal(msg string) []byte {
	return httpResponse(503, "text/plain; charset=utf-8", []byte(msg+"\n"), "")
}

// wsDecoder is one connection's state: the handshake, then frames.
type wsDecoder struct {
	codec    *wsCodec
	upgraded bool
	json     bool // fastws.v1.json was negotiated
	frames   wsFrames
	pongs    []byte // answers to the pings of one read, written after it
}

// farewell is the close frame for a close the server decides: protocol
// errors and shutdown send theirs with the error or the notice.
func (d *wsDecoder) farewell(r chat.CloseReason) []byte {
	if !d.upgraded {
		return nil
	}
	switch r {
	case chat.ReasonClientQuit:
		return closeFrame(ws.StatusNormalClosure, "bye")
	case chat.ReasonIdle:
		return closeFrame(ws.StatusGoingAway, "idle timeout")
	case chat.ReasonPingTimeout:
		return closeFrame(ws.StatusGoingAway, "ping timeout")
	case chat.ReasonSlowConsumer:
		return closeFrame(ws.StatusPolicyViolation, "slow consumer")
	case chat.ReasonFlood:
		return closeFrame(ws.StatusPolicyViolation, "flood")
	case chat.ReasonAuthTimeout:
		return closeFrame(ws.StatusPolicyViolation, "auth timeout")
	case chat.ReasonDisconnected:
		return closeFrame(ws.StatusNormalClosure, "disconnected")
	case chat.ReasonTokenExpired:
		return closeFrame(ws.StatusPolicyViolation, "token expired")
	}
	return nil
}

// wsPingFrame is the keepalive ping, the same bytes for every session.
var wsPingFrame = ws.MustCompileFrame(ws.NewPingFrame(nil))

func (d *wsDecoder) ping() []byte {
	if !d.upgraded {
		return nil
	}
	return wsPingFrame
}

func (d *wsDecoder) format() int {
	if d.json {
		return formatWSJSON
	}
	return formatWSText
}

func (d *wsDecoder) appendEvent(b []byte, ev *chat.Event) []byte {
	if d.json {
		return appendWSJSON(b, ev)
	}
	return appendWSText(b, ev)
}

func (d *wsDecoder) decode(s *session, c input) error {
	if !d.upgraded {
		if done, err := d.handshake(s, c); !done {
			return err
		}
	}
	err := d.readFrames(s, c)
	d.pongs = writeAnswers(s, d.pongs)
	return err
}

// readFrames handles every whole frame buffered on c, appending the
// answers to pings to d.pongs.
func (d *wsDecoder) readFrames(s *session, c input) error {
	for {
		fr, n, err := d.frames.read(c)
		s.bytesIn += uint64(n)
		if err != nil {
			return err
		}
		if n == 0 {
			d.frames.trim()
			return nil
		}
		switch fr.op {
		case wsText:
			d.message(s, fr.data)
		case wsPing:
			d.pongs = append(d.pongs, fr.reply...)
		case wsClose:
			// The close handshake is done once our echo is written.
			return &protocolError{Frame: fr.reply}
		}
	}
}

// message hands one client message to the room.
func (d *wsDecoder) message(s *session, b []byte) {
	if d.json {
		jsonMessage(s, b)
		return
	}
	if bytes.HasSuffix(b, []byte{'\n'}) {
		b = bytes.TrimSuffix(b[:len(b)-1], []byte{'\r'})
	}
	s.line(b)
}

// appendWSText appends ev in the text protocol to b, one text frame per
// line. The shutdown notice is followed by a close frame with 1001 (going
// away).
func appendWSText(b []byte, ev *chat.Event) []byte {
	if ev.Multiline() {
		for _, l := range ev.Lines() {
			start := len(b)
			b = frameText(append(b, l...), start)
		}
		return b
	}
	start := len(b)
	b = frameText(ev.AppendLine(b), start)
	if ev.Kind == chat.KindShutdown {
		b = append(b, wsCloseGoingAway...)
	}
	return b
}

// frameText makes b[start:], a line just appended, the payload of a text
// frame: it moves the line up and writes the frame header before it, so a
// line is rendered once, in place. A telnet member may send any bytes and
// a text frame must be UTF-8, so invalid bytes become U+FFFD.
func frameText(b []byte, start int) []byte {
	if !utf8.Valid(b[start:]) {
		p := bytes.ToValidUTF8(b[start:], []byte("\uFFFD"))
		return appendFrame(b[:start], ws.OpText, p)
	}
	n := len(b) - start
	var hdr [ws.MaxHeaderSize]byte
	h := appendHeader(hdr[:0], ws.OpText, n)
	b = slices.Grow(b, len(h))[:len(b)+len(h)]
	copy(b[start+len(h):], b[start:start+n])
	copy(b[start:], h)
	return b
}

// wsCloseGoingAway ends every websocket connection on a graceful stop.
var wsCloseGoingAway = closeFrame(ws.StatusGoingAway, "server is shutting down")
