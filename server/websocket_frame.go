package server

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"strconv"
	"unicode/utf8"

	"github.com/gobwas/ws"
)

// Protocol error kinds of the websocket codec: the label of the error
// metric, a small fixed set.
const (
	wsKindProtocol    = "ws_protocol"    // close 1002: bad framing
	wsKindUTF8        = "ws_utf8"        // close 1007: a text message or close reason is not UTF-8
	wsKindTooBig      = "ws_too_big"     // close 1009: a message over maxPackageSize
	wsKindUnsupported = "ws_unsupported" // close 1003: a binary message
	wsKindHandshake   = "ws_handshake"   // an HTTP request that is neither a page nor a valid upgrade
	wsKindOrigin      = "ws_origin"      // an upgrade from an Origin not in allowedOrigins
)

// wsOp is what a frame asks of the session.
type wsOp uint8

const (
	wsNone  wsOp = iota // nothing: a fragment of an open message, a pong
	wsText              // a whole text message: data
	wsPing              // a ping: reply is the pong to write
	wsClose             // a valid close: reply is the close to echo, then the connection ends
)

// wsFrame is one frame's outcome. data and reply belong to the reader and
// are valid until its next read.
type wsFrame struct {
	op    wsOp
	data  []byte
	reply []byte
}

// wsFrames is the frame layer of one connection: it parses client frames,
// reassembles fragmented text messages and checks them (RFC 6455 sections
// 5 and 8.1). Every check that needs only the header is made before the
// payload is waited for, so a peer can not make it buffer a frame it is
// going to refuse.
//
// What every message touches comes first and the control frame buffer
// last, so that a message costs few cache lines.
type wsFrames struct {
	max     int  // the largest message, bytes: maxPackageSize
	open    bool // a fragmented text message is open
	msg     []byte
	checked int // msg[:checked] is valid UTF-8 that ends on a code point boundary
	hdr     [ws.MaxHeaderSize]byte
	rd      bytes.Reader
	reply   []byte
	ctl     [ws.MaxControlFramePayloadSize]byte
}

// read reads the first frame buffered on in. It returns the number of
// bytes consumed, 0 if no whole frame is buffered yet (nothing is
// consumed then), and a *protocolError if the frame breaks the protocol.
// The payload is copied out before it is discarded.
func (f *wsFrames) read(in input) (fr wsFrame, n int, err error) {
	avail := in.InboundBuffered()
	if avail < ws.MinHeaderSize {
		return fr, 0, nil
	}
	hb, _ := in.Peek(min(avail, ws.MaxHeaderSize))
	h, hlen, err := f.header(hb)
	if err != nil || hlen == 0 {
		return fr, 0, err
	}
	n = hlen + int(h.Length) // h.Length is at most max, checked by header
	if avail < n {
		return fr, 0, nil
	}
	buf, _ := in.Peek(n)
	fr, err = f.payload(h, buf[hlen:])
	_, _ = in.Discard(n)
	return fr, n, err
}

// header parses and checks the frame header at the start of b. It returns
// the header's length, 0 if b ends inside it.
func (f *wsFrames) header(b []byte) (ws.Header, int, error) {
	if h, ok := f.shortText(b); ok {
		return h, wsShortHeader, nil
	}
	return f.anyHeader(b)
}

// anyHeader is header for any frame.
func (f *wsFrames) anyHeader(b []byte) (ws.Header, int, error) {
	f.rd.Reset(b)
	h, err := ws.ReadHeaderBuffer(&f.rd, f.hdr[:0])
	switch {
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		return h, 0, nil
	case err != nil:
		return h, 0, wsFail(ws.StatusProtocolError, wsKindProtocol, err.Error())
	}
	state := ws.StateServerSide
	if f.open {
		state = state.Set(ws.StateFragmented)
	}
	if err := ws.CheckHeader(h, state); err != nil {
		return h, 0, wsFail(ws.StatusProtocolError, wsKindProtocol, err.Error())
	}
	if h.OpCode == ws.OpBinary {
		return h, 0, wsFail(ws.StatusUnsupportedData, wsKindUnsupported, "binary messages are not supported")
	}
	if !h.OpCode.IsControl() {
		used := 0
		if f.open {
			used = len(f.msg)
		}
		if h.Length > int64(f.max-used) {
			return h, 0, wsFail(ws.StatusMessageTooBig, wsKindTooBig, "message too big (max "+strconv.Itoa(f.max)+" bytes)")
		}
	}
	return h, len(b) - f.rd.Len(), nil
}

// wsShortHeader is the length of a masked frame's header with a payload
// of at most 125 bytes: a chat line, nearly every frame a client sends.
const wsShortHeader = 2 + 4

// shortText reads the header at the start of b if it is a chat line's:
// a whole, masked text frame of at most 125 bytes, with no RSV bit and
// no fragmented message open. Such a header passes every check of header,
// which it saves the general parse for; any other reports false.
func (f *wsFrames) shortText(b []byte) (ws.Header, bool) {
	const finText, masked = 0x80 | byte(ws.OpText), 0x80
	if len(b) < wsShortHeader || b[0] != finText || b[1]&masked == 0 || f.open {
		return ws.Header{}, false
	}
	n := int(b[1] &^ masked)
	if n > 125 || n > f.max {
		return ws.Header{}, false
	}
	return ws.Header{Fin: true, OpCode: ws.OpText, Masked: true, Length: int64(n), Mask: [4]byte(b[2:6])}, true
}

// payload handles a frame whose header h passed header and whose masked
// payload p is whole.
func (f *wsFrames) payload(h ws.Header, p []byte) (wsFrame, error) {
	switch h.OpCode {
	case ws.OpText, ws.OpContinuation:
		return f.data(h, p)
	case ws.OpPing:
		b := f.control(h, p)
		f.reply = appendFrame(f.reply[:0], ws.OpPong, b)
		return wsFrame{op: wsPing, data: b, reply: f.reply}, nil
	case ws.OpClose:
		return f.close(f.control(h, p))
	}
	return wsFrame{}, nil // a pong: unsolicited ones are ignored (RFC 6455 5.5.3)
}

// control returns the unmasked payload of a control frame.
func (f *wsFrames) control(h ws.Header, p []byte) []byte {
	b := f.ctl[:copy(f.ctl[:], p)]
	ws.Cipher(b, h.Mask, 0)
	return b
}

// data appends a text frame or continuation to the message, checks its
// UTF-8 as far as it goes, and returns the message once it is final.
func (f *wsFrames) data(h ws.Header, p []byte) (wsFrame, error) {
	if h.OpCode == ws.OpText {
		f.msg, f.checked = f.msg[:0], 0
	}
	start := len(f.msg)
	f.msg = append(f.msg, p...)
	ws.Cipher(f.msg[start:], h.Mask, 0)
	if !h.Fin {
		f.open = true
		n, ok := utf8Prefix(f.msg[f.checked:])
		if !ok {
			return wsFrame{}, wsFail(ws.StatusInvalidFramePayloadData, wsKindUTF8, "invalid UTF-8 in text message")
		}
		f.checked += n
		return wsFrame{}, nil
	}
	f.open = false
	if !utf8.Valid(f.msg[f.checked:]) {
		return wsFrame{}, wsFail(ws.StatusInvalidFramePayloadData, wsKindUTF8, "invalid UTF-8 in text message")
	}
	return wsFrame{op: wsText, data: f.msg}, nil
}

// close checks a close frame's payload b (RFC 6455 5.5.1, 7.4) and returns
// the close to echo: the same code, or an empty close for an empty one.
func (f *wsFrames) close(b []byte) (wsFrame, error) {
	switch {
	case len(b) == 0:
		return wsFrame{op: wsClose, reply: ws.CompiledClose}, nil
	case len(b) == 1:
		return wsFrame{}, wsFail(ws.StatusProtocolError, wsKindProtocol, "close payload of 1 byte")
	}
	code := binary.BigEndian.Uint16(b)
	if !validCloseCode(code) {
		return wsFrame{}, wsFail(ws.StatusProtocolError, wsKindProtocol, "invalid close code "+strconv.Itoa(int(code)))
	}
	if !utf8.Valid(b[2:]) {
		return wsFrame{}, wsFail(ws.StatusInvalidFramePayloadData, wsKindUTF8, "invalid UTF-8 in close reason")
	}
	return wsFrame{op: wsClose, reply: closeFrame(ws.StatusCode(code), "")}, nil
}

// trim drops a message buffer grown past keepBuffer once no message is
// open.
func (f *wsFrames) trim() {
	if !f.open && cap(f.msg) > keepBuffer {
		f.msg, f.checked = nil, 0
	}
}

// validCloseCode reports whether a peer may send code in a close frame
// (RFC 6455 7.4): the defined codes but 1004, 1005, 1006 and 1015 (never
// on the wire), and the registered and private ranges 3000-4999.
func validCloseCode(code uint16) bool {
	switch {
	case code >= 1000 && code <= 1003, code >= 1007 && code <= 1011:
		return true
	case code >= 3000 && code <= 4999:
		return true
	}
	return false
}

// utf8Prefix reports whether b is valid UTF-8 but for, at its end, the
// start of a code point that more bytes may complete, and returns the
// length of the part before that start. It lets a fragmented message fail
// on the fragment that breaks it, even when a code point spans fragments.
func utf8Prefix(b []byte) (int, bool) {
	if utf8.Valid(b) {
		return len(b), true
	}
	i := len(b) - 1
	for i > 0 && len(b)-i < utf8.UTFMax-1 && !utf8.RuneStart(b[i]) {
		i--
	}
	tail := b[i:]
	if utf8.FullRune(tail) || !utf8.Valid(b[:i]) {
		return 0, false
	}
	// FullRune checked the lead byte and the first continuation byte's
	// range; the rest must be continuation bytes.
	for _, c := range tail[1:] {
		if c&0xc0 != 0x80 {
			return 0, false
		}
	}
	return i, true
}

// wsFail is a violation that ends the connection with a close frame.
func wsFail(code ws.StatusCode, kind, reason string) *protocolError {
	return &protocolError{Kind: kind, Frame: closeFrame(code, reason)}
}

// closeFrame returns a close frame with code and reason, cut to fit the
// 125 bytes of a control frame on a code point boundary.
func closeFrame(code ws.StatusCode, reason string) []byte {
	const maxReason = ws.MaxControlFramePayloadSize - 2
	if len(reason) > maxReason {
		n := maxReason
		for n > 0 && !utf8.RuneStart(reason[n]) {
			n--
		}
		reason = reason[:n]
	}
	return ws.MustCompileFrame(ws.NewCloseFrame(ws.NewCloseFrameBody(code, reason)))
}

// appendHeader appends the header of one final unmasked frame of op with
// an n-byte payload (RFC 6455 section 5.2). gobwas/ws writes headers only
// to an io.Writer, which would cost an allocation per frame.
func appendHeader(b []byte, op ws.OpCode, n int) []byte {
	b = append(b, 0x80|byte(op)) // FIN
	switch {
	case n <= 125:
		return append(b, byte(n))
	case n <= 0xffff:
		return binary.BigEndian.AppendUint16(append(b, 126), uint16(n))
	}
	return binary.BigEndian.AppendUint64(append(b, 127), uint64(n))
}

// appendFrame appends one final unmasked frame of op carrying p to b.
func appendFrame(b []byte, op ws.OpCode, p []byte) []byte {
	return append(appendHeader(b, op, len(p)), p...)
}
