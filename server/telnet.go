package server

import (
	"bytes"
	"strconv"

	"github.com/fastws/fastws/chat"
)

// Telnet commands (RFC 854) and the one option we answer (RFC 860).
const (
	telnetSE   = 240
	telnetSB   = 250
	telnetWILL = 251
	telnetWONT = 252
	telnetDO   = 253
	telnetDONT = 254
	telnetIAC  = 255

	telnetOptBinary     = 0
	telnetOptTimingMark = 6
)

// telnetGreeting is what the server sends at connect, in front of the
// welcome: it offers and asks for TRANSMIT-BINARY (RFC 856) both ways. Without
// it, inetutils telnet strips the 8th bit of what its user types: the
// bytes of 李 (e6 9d 8e) turn 0x9d into Ctrl-], its escape to the
// telnet> prompt, and other UTF-8 into commands.
var telnetGreeting = []byte{telnetIAC, telnetWILL, telnetOptBinary, telnetIAC, telnetDO, telnetOptBinary}

// telnetKindTooLong labels a line over maxPackageSize, the one protocol
// error of telnet.
const telnetKindTooLong = "line_too_long"

// telnetCodec is the line protocol of telnet and nc:
//
//	line = *( data / IAC-sequence ) [ CR ] LF
//
// IAC sequences (commands, option negotiation, subnegotiation) are
// stripped from the line and never reach the room; IAC IAC is a data byte
// 255. Every other byte passes through untouched. With its welcome the
// server offers and asks for TRANSMIT-BINARY (telnetGreeting); it answers DO
// TIMING-MARK with WILL (inetutils telnet sends IAC IP IAC DO TM on Ctrl-C
// and discards output until the mark comes back) and refuses every other
// option. Server lines end in CR LF.
type telnetCodec struct{ maxLine int }

func (tc telnetCodec) newDecoder() decoder {
	return &telnetDecoder{maxLine: tc.maxLine, binary: telnetBinary{offered: true, asked: true}}
}

func (telnetCodec) refusal(msg string) []byte { return []byte("! " + msg + "\r\n") }

func (telnetCodec) handshake() bool { return false }

// telnetDecoder is one connection's line decoder.
type telnetDecoder struct {
	maxLine int
	scan    int  // bytes of the buffered partial line already scanned
	iac     bool // the partial line holds IAC sequences
	strip   int  // bytes of IAC sequences in the scanned part
	reply   []byte
	binary  telnetBinary
}

// telnetBinary is the state of TRANSMIT-BINARY in each direction, kept
// so that the server answers only a request that changes it (RFC 1143):
// answering an acknowledgement would start a loop of them.
type telnetBinary struct {
	us, them       bool // on: we send binary / the client does
	offered, asked bool // our WILL / our DO awaits its answer
}

// answer returns reply with the answer to the client's verb (WILL, WONT,
// DO or DONT) for TRANSMIT-BINARY appended, if it needs one.
func (b *telnetBinary) answer(verb byte, reply []byte) []byte {
	switch verb {
	case telnetDO, telnetDONT: // about what we send
		return answerBinary(&b.us, &b.offered, verb == telnetDO, telnetWILL, telnetWONT, reply)
	case telnetWILL, telnetWONT: // about what the client sends
		return answerBinary(&b.them, &b.asked, verb == telnetWILL, telnetDO, telnetDONT, reply)
	}
	return reply
}

// answerBinary sets one direction of TRANSMIT-BINARY as the client asks
// (want on or off) and appends our verb (yes or no) only when that
// changes it and we did not ask first (pending): an answer to our own
// request is an acknowledgement, and acknowledging it would loop.
func answerBinary(on, pending *bool, want bool, yes, no byte, reply []byte) []byte {
	switch {
	case want && !*on && !*pending:
		reply = append(reply, telnetIAC, yes, telnetOptBinary)
	case !want && *on:
		reply = append(reply, telnetIAC, no, telnetOptBinary)
	}
	*on, *pending = want, false
	return reply
}

func (*telnetDecoder) format() int { return formatText }

func (*telnetDecoder) farewell(chat.CloseReason) []byte { return nil }

func (*telnetDecoder) ping() []byte { return nil }

// appendEvent renders ev as telnet lines. The welcome, the first thing a
// connection is sent, carries telnetGreeting in front: the negotiation
// goes out in the same write, and counts as no message of its own.
func (*telnetDecoder) appendEvent(b []byte, ev *chat.Event) []byte {
	if ev.Kind == chat.KindWelcome {
		b = append(b, telnetGreeting...)
	}
	return appendTelnet(b, ev)
}

// appendTelnet appends ev's lines, each ending in CR LF, to b.
func appendTelnet(b []byte, ev *chat.Event) []byte {
	if !ev.Multiline() {
		return append(ev.AppendLine(b), '\r', '\n')
	}
	for _, l := range ev.Lines() {
		b = append(append(b, l...), '\r', '\n')
	}
	return b
}

func (d *telnetDecoder) decode(s *session, c input) error {
	err := d.lines(s, c)
	d.reply = writeAnswers(s, d.reply)
	return err
}

// lines hands every complete line buffered on c to s, appending the
// answers to option requests to d.reply.
func (d *telnetDecoder) lines(s *session, c input) error {
	for {
		buf, _ := c.Peek(-1)
		if d.scan == 0 && len(buf) > 1 && buf[0] == telnetIAC && buf[1] != telnetIAC {
			// A command between lines (Ctrl-C's IAC IP IAC DO TM): answer
			// now, the client is waiting for its timing mark.
			n := iacLen(buf)
			if n == 0 || n > d.rawLimit() {
				if len(buf) > d.rawLimit() {
					return d.tooLong()
				}
				return nil
			}
			_, d.reply = cleanTelnet(buf[:n], d.reply, &d.binary)
			_, _ = c.Discard(n)
			s.bytesIn += uint64(n)
			continue
		}
		end, next, iac := scanTelnet(buf, d.scan)
		if iac {
			d.iac = true
			d.strip += stripped(buf[d.scan:next])
		}
		if end < 0 {
			// The partial line is too long once its text, less a CR that
			// may precede the LF, is; or once IAC sequences alone make it
			// long, so a flood of them cannot grow the buffer.
			text := next - d.strip
			if text > d.maxLine+1 || (text == d.maxLine+1 && buf[next-1] != '\r') || len(buf) > d.rawLimit() {
				return d.tooLong()
			}
			d.scan = next
			return nil
		}
		line := buf[:end]
		if end > d.rawLimit() {
			return d.tooLong()
		}
		answered := len(d.reply)
		if d.iac {
			line, d.reply = cleanTelnet(line, d.reply, &d.binary)
		}
		line = bytes.TrimSuffix(line, []byte{'\r'})
		if len(line) > d.maxLine {
			d.reply = d.reply[:answered] // a refused line gets no answers
			return d.tooLong()
		}
		s.line(line)
		_, _ = c.Discard(end + 1)
		s.bytesIn += uint64(end + 1)
		d.scan, d.iac, d.strip = 0, false, 0
	}
}

// rawLimit bounds a line as sent, IAC sequences included.
func (d *telnetDecoder) rawLimit() int { return 2*d.maxLine + 64 }

// stripped returns how many bytes cleanTelnet removes from b, which holds
// only whole IAC sequences.
func stripped(b []byte) int {
	n := 0
	for i := 0; i < len(b); {
		if b[i] != telnetIAC {
			i++
			continue
		}
		l := iacLen(b[i:])
		if l == 0 {
			break
		}
		if b[i+1] == telnetIAC {
			n++ // IAC IAC leaves one data byte
		} else {
			n += l
		}
		i += l
	}
	return n
}

func (d *telnetDecoder) tooLong() error {
	return &protocolError{Kind: telnetKindTooLong, Msg: "line too long (max " + strconv.Itoa(d.maxLine) + " bytes)"}
}

// scanTelnet looks for the end of the first line in buf, starting at from,
// a position outside any IAC sequence. It returns the index of the LF, or
// -1 and the position to resume from once more bytes arrive, and whether it
// passed an IAC sequence.
func scanTelnet(buf []byte, from int) (end, next int, iac bool) {
	i := from
	for i < len(buf) {
		if buf[i] != telnetIAC {
			// Not bytes.IndexAny: it reads its set as UTF-8, where "\xff"
			// is U+FFFD and matches any invalid byte of a line.
			j := indexLFOrIAC(buf[i:])
			if j < 0 {
				return -1, len(buf), iac
			}
			i += j
			if buf[i] == '\n' {
				return i, i + 1, iac
			}
		}
		n := iacLen(buf[i:])
		if n == 0 {
			return -1, i, true
		}
		iac = true
		i += n
	}
	return -1, i, iac
}

// indexLFOrIAC returns the index of the first LF or IAC byte in b, or -1.
func indexLFOrIAC(b []byte) int {
	end := bytes.IndexByte(b, '\n')
	head := b
	if end >= 0 {
		head = b[:end]
	}
	if i := bytes.IndexByte(head, telnetIAC); i >= 0 {
		return i
	}
	return end
}

// iacLen returns the length of the IAC sequence at the start of b, or 0 if
// b ends before the sequence does.
func iacLen(b []byte) int {
	if len(b) < 2 {
		return 0
	}
	switch b[1] {
	case telnetWILL, telnetWONT, telnetDO, telnetDONT:
		if len(b) < 3 {
			return 0
		}
		return 3
	case telnetSB:
		for i := 2; i+1 < len(b); i++ {
			if b[i] == telnetIAC {
				if b[i+1] == telnetSE {
					return i + 2
				}
				i++ // IAC IAC inside subnegotiation
			}
		}
		return 0
	}
	return 2 // IAC IAC, or a two-byte command (IP, AYT, NOP, ...)
}

// cleanTelnet returns line without its IAC sequences (IAC IAC becomes one
// 255 byte) and appends to reply the answers to any option requests,
// keeping TRANSMIT-BINARY's state in bin. line holds only whole
// sequences. The result may share line's array.
func cleanTelnet(line, reply []byte, bin *telnetBinary) ([]byte, []byte) {
	out := line[:0:0]
	for i := 0; i < len(line); {
		if line[i] != telnetIAC {
			out = append(out, line[i])
			i++
			continue
		}
		n := iacLen(line[i:])
		switch {
		case n == 0: // cannot happen for a scanned line; drop the rest
			return out, reply
		case line[i+1] == telnetIAC:
			out = append(out, telnetIAC)
		case n == 3 && line[i+2] == telnetOptBinary:
			reply = bin.answer(line[i+1], reply)
		case line[i+1] == telnetDO && line[i+2] == telnetOptTimingMark:
			reply = append(reply, telnetIAC, telnetWILL, telnetOptTimingMark)
		case line[i+1] == telnetDO:
			reply = append(reply, telnetIAC, telnetWONT, line[i+2])
		case line[i+1] == telnetWILL:
			reply = append(reply, telnetIAC, telnetDONT, line[i+2])
		}
		i += n
	}
	return out, reply
}
