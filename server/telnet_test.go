package server

import (
	"bytes"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/fastws/fastws/chat"
	"github.com/panjf2000/gnet/v2"
)

// Byte strings in these tests spell telnet commands as escapes:
//
//	\xff IAC   \xfe DONT   \xfd DO   \xfc WONT   \xfb WILL   \xfa SB
//	\xf4 IP    \xf1 NOP    \xf0 SE   \x06 TIMING-MARK (TM)
//
// "\xff\xf4\xff\xfd\x06" (IAC IP IAC DO TM) is what inetutils telnet sends
// on Ctrl-C.
const (
	telnetCtrlC    = "\xff\xf4\xff\xfd\x06"
	telnetWillTM   = "\xff\xfb\x06"
	telnetChinese  = "你好，世界！这是一行中文。"
	telnetEmoji    = "hi 😀 \U0001F600" // 4-byte runes start with 0xF0 (SE's value)
	telnetSBWithLF = "\xff\xfa\x18\n\x01\xff\xf0"
	// telnetSBWithIAC holds an escaped 255 followed by SE's byte value and a LF:
	// neither the SE nor the LF ends anything.
	telnetSBWithIAC = "\xff\xfa\x18\xff\xff\xf0\n\xff\xf0"
)

func TestScanTelnet(t *testing.T) {
	tests := []struct {
		name      string
		buf       string
		from      int
		end, next int
		iac       bool
	}{
		{"empty", "", 0, -1, 0, false},
		{"plain line", "hello\n", 0, 5, 6, false},
		{"CRLF", "hello\r\n", 0, 6, 7, false},
		{"no newline yet", "hello", 0, -1, 5, false},
		{"first of two lines", "ab\ncd\n", 0, 2, 3, false},
		{"resume from", "hello\n", 3, 5, 6, false},
		{"resume at second line", "ab\ncd\n", 3, 5, 6, false},
		{"resume at end", "hello", 5, -1, 5, false},
		{"IAC IAC", "a\xff\xffb\n", 0, 4, 5, true},
		{"IAC IAC then LF", "\xff\xff\n", 0, 2, 3, true},
		{"ctrl-C", telnetCtrlC + "\n", 0, 5, 6, true},
		{"ctrl-C mid line", "ab" + telnetCtrlC + "c\r\n", 0, 9, 10, true},
		{"DO with LF as option", "\xff\xfd\n\n", 0, 3, 4, true},
		{"IAC LF is a command", "\xff\nx\n", 0, 3, 4, true},
		{"SB with LF", telnetSBWithLF + "x\n", 0, 8, 9, true},
		{"SB with IAC IAC", telnetSBWithIAC + "\n", 0, 9, 10, true},
		{"lone IAC", "\xff", 0, -1, 0, true},
		{"cut after IAC", "ab\xff", 0, -1, 2, true},
		{"cut after DO", "ab\xff\xfd", 0, -1, 2, true},
		{"cut in SB", "ab\xff\xfa\x18\n", 0, -1, 2, true},
		{"cut between IAC and SE", "ab\xff\xfa\x18\xff", 0, -1, 2, true},
		{"whole sequence no LF", "ab\xff\xfd\x06", 0, -1, 5, true},
		{"chinese", telnetChinese + "\n", 0, len(telnetChinese), len(telnetChinese) + 1, false},
		{"emoji", telnetEmoji + "\n", 0, len(telnetEmoji), len(telnetEmoji) + 1, false},
		{"latin-1 byte", "caf\xe9\n", 0, 4, 5, false},
		{"lone continuation byte", "\x80\n", 0, 1, 2, false},
		{"U+FFFD", "\uFFFD\n", 0, 3, 4, false},
		{"chinese cut mid-rune, resumed", telnetChinese[:2] + telnetChinese[2:] + "\n", 2, len(telnetChinese), len(telnetChinese) + 1, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			end, next, iac := scanTelnet([]byte(tt.buf), tt.from)
			if end != tt.end || next != tt.next || iac != tt.iac {
				t.Errorf("scanTelnet(%q, %d) = %d, %d, %v, want %d, %d, %v",
					tt.buf, tt.from, end, next, iac, tt.end, tt.next, tt.iac)
			}
		})
	}
}

// TestScanTelnetCut scans every prefix of lines built from tokens: a cut
// inside an IAC sequence must resume at the sequence's start, any other cut
// at the cut, and resuming on the whole buffer must find the same LF.
func TestScanTelnetCut(t *testing.T) {
	tests := []struct {
		name   string
		tokens []string // IAC sequences are single tokens
	}{
		{"plain", []string{"h", "i", "\r", "\n"}},
		{"ctrl-C at start", []string{"\xff\xf4", "\xff\xfd\x06", "x", "\n"}},
		{"ctrl-C mid line", []string{"a", "\xff\xf4", "\xff\xfd\x06", "b", "\n"}},
		{"IAC IAC", []string{"a", "\xff\xff", "\xff\xff", "b", "\n"}},
		{"options", []string{"\xff\xfb\x01", "\xff\xfc\x03", "\xff\xfe\x18", "z", "\n"}},
		{"SB with LF", []string{"a", telnetSBWithLF, "b", "\r", "\n"}},
		{"SB with IAC IAC", []string{telnetSBWithIAC, "c", "\n"}},
		{"chinese", []string{"你", "好", "\xff\xf1", "世", "界", "\n"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			buf := []byte(strings.Join(tt.tokens, ""))
			wantEnd := len(buf) - 1
			for k := 0; k < len(buf); k++ {
				wantNext, wantIAC := k, false
				p := 0
				for _, tok := range tt.tokens {
					if p >= k {
						break
					}
					if tok[0] == telnetIAC {
						wantIAC = true
						if p+len(tok) > k {
							wantNext = p
						}
					}
					p += len(tok)
				}
				end, next, iac := scanTelnet(buf[:k], 0)
				if end != -1 || next != wantNext || iac != wantIAC {
					t.Errorf("scanTelnet(%q, 0) = %d, %d, %v, want -1, %d, %v",
						buf[:k], end, next, iac, wantNext, wantIAC)
					continue
				}
				end, next, _ = scanTelnet(buf, next)
				if end != wantEnd || next != wantEnd+1 {
					t.Errorf("after cut at %d: scanTelnet(%q, resume) = %d, %d, want %d, %d",
						k, buf, end, next, wantEnd, wantEnd+1)
				}
			}
		})
	}
}

func TestIACLen(t *testing.T) {
	tests := []struct {
		name string
		b    string
		want int
	}{
		{"empty", "", 0},
		{"lone IAC", "\xff", 0},
		{"IAC IAC", "\xff\xff", 2},
		{"IAC IAC then data", "\xff\xffab", 2},
		{"IP", "\xff\xf4", 2},
		{"NOP then data", "\xff\xf1abc", 2},
		{"IAC LF", "\xff\n", 2},
		{"ctrl-C", telnetCtrlC, 2},
		{"DO cut", "\xff\xfd", 0},
		{"DO TM", "\xff\xfd\x06", 3},
		{"DO TM then data", "\xff\xfd\x06\n", 3},
		{"WILL", "\xff\xfb\x01", 3},
		{"WONT", "\xff\xfc\x01", 3},
		{"DONT", "\xff\xfe\x01", 3},
		{"DO IAC", "\xff\xfd\xff", 3},
		{"SB cut", "\xff\xfa", 0},
		{"SB cut in body", "\xff\xfa\x18\x00abc", 0},
		{"SB cut between IAC and SE", "\xff\xfa\x18\xff", 0},
		{"SB empty", "\xff\xfa\xff\xf0", 4},
		{"SB", "\xff\xfa\x18\x01\xff\xf0", 6},
		{"SB then data", "\xff\xfa\x18\x01\xff\xf0ab\n", 6},
		{"SB with LF", telnetSBWithLF, len(telnetSBWithLF)},
		{"SB with IAC IAC", telnetSBWithIAC, len(telnetSBWithIAC)},
		{"SB with IAC IAC cut", telnetSBWithIAC[:5], 0},
		{"SB with only IAC IAC SE", "\xff\xfa\x18\xff\xff\xf0", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := iacLen([]byte(tt.b)); got != tt.want {
				t.Errorf("iacLen(%q) = %d, want %d", tt.b, got, tt.want)
			}
		})
	}
}

// TestIACLenCut checks that every proper prefix of a sequence is incomplete
// and that bytes after a sequence do not change its length.
func TestIACLenCut(t *testing.T) {
	for _, seq := range []string{"\xff\xff", "\xff\xf4", "\xff\xfd\x06", "\xff\xfb\x18", telnetSBWithLF, telnetSBWithIAC, "\xff\xfa\xff\xf0"} {
		t.Run(strconv.Quote(seq), func(t *testing.T) {
			for k := range len(seq) {
				if got := iacLen([]byte(seq[:k])); got != 0 {
					t.Errorf("iacLen(%q) = %d, want 0", seq[:k], got)
				}
			}
			for _, tail := range []string{"", "x", "\n", "\xff\xf0", "\xff\xff"} {
				if got := iacLen([]byte(seq + tail)); got != len(seq) {
					t.Errorf("iacLen(%q) = %d, want %d", seq+tail, got, len(seq))
				}
			}
		})
	}
}

func TestCleanTelnet(t *testing.T) {
	tests := []struct {
		name      string
		line      string
		reply     string // reply before the call
		want      string
		wantReply string
	}{
		{"plain", "hello", "", "hello", ""},
		{"empty", "", "", "", ""},
		{"IAC IAC is 255", "a\xff\xffb", "", "a\xffb", ""},
		{"two IAC IAC", "\xff\xff\xff\xff", "", "\xff\xff", ""},
		{"ctrl-C", telnetCtrlC, "", "", telnetWillTM},
		{"IP mid line", "ab\xff\xf4c", "", "abc", ""},
		{"NOP", "a\xff\xf1b", "", "ab", ""},
		{"DO TM", "\xff\xfd\x06", "", "", telnetWillTM},
		{"DO x", "\xff\xfd\x01", "", "", "\xff\xfc\x01"},
		{"DO terminal type", "x\xff\xfd\x18y", "", "xy", "\xff\xfc\x18"},
		{"WILL x", "\xff\xfb\x03", "", "", "\xff\xfe\x03"},
		{"WILL TM", "\xff\xfb\x06", "", "", "\xff\xfe\x06"},
		{"WONT", "\xff\xfc\x01", "", "", ""},
		{"DONT", "\xff\xfe\x01", "", "", ""},
		{"DONT TM", "\xff\xfe\x06", "", "", ""},
		{"replies in order", "\xff\xfd\x01a\xff\xfb\x03\xff\xfd\x06", "", "a", "\xff\xfc\x01\xff\xfe\x03" + telnetWillTM},
		{"appends to reply", "\xff\xfd\x01", telnetWillTM, "", telnetWillTM + "\xff\xfc\x01"},
		{"SB with LF", "a" + telnetSBWithLF + "b", "", "ab", ""},
		{"SB with IAC IAC", "a" + telnetSBWithIAC + "b", "", "ab", ""},
		{"chinese", telnetChinese, "", telnetChinese, ""},
		{"emoji", telnetEmoji, "", telnetEmoji, ""},
		{"chinese around NOP", "你\xff\xf1好", "", "你好", ""},
		{"CR kept", "ab\r", "", "ab\r", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bin := telnetBinary{offered: true, asked: true}
			got, reply := cleanTelnet([]byte(tt.line), []byte(tt.reply), &bin)
			if string(got) != tt.want || string(reply) != tt.wantReply {
				t.Errorf("cleanTelnet(%q, %q) = %q, %q, want %q, %q",
					tt.line, tt.reply, got, reply, tt.want, tt.wantReply)
			}
		})
	}
}

// TestTelnetBinary checks TRANSMIT-BINARY's negotiation: the server
// offers and asks for it at connect, takes the answers without a word,
// and answers only a request that changes an option (RFC 1143), so that
// no two peers loop.
func TestTelnetBinary(t *testing.T) {
	const (
		will, wont, do, dont = "\xff\xfb\x00", "\xff\xfc\x00", "\xff\xfd\x00", "\xff\xfe\x00"
	)
	tests := []struct {
		name, in, reply string
		want            telnetBinary
	}{
		{"inetutils accepts both", do + will, "", telnetBinary{us: true, them: true}},
		{"acknowledged twice", do + will + do + will, "", telnetBinary{us: true, them: true}},
		{"refused both", dont + wont, "", telnetBinary{}},
		{"on, then turned off", do + will + dont + wont, wont + dont, telnetBinary{}},
		{"off, then asked again", dont + wont + do + will, will + do, telnetBinary{us: true, them: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bin := telnetBinary{offered: true, asked: true}
			got, reply := cleanTelnet([]byte(tt.in), nil, &bin)
			if len(got) != 0 || string(reply) != tt.reply || bin != tt.want {
				t.Errorf("got line %q, reply %q, state %+v; want no line, reply %q, state %+v", got, reply, bin, tt.reply, tt.want)
			}
		})
	}
	if ev := (&chat.Event{Kind: chat.KindWelcome, UID: 7}); !bytes.HasPrefix((&telnetDecoder{}).appendEvent(nil, ev), telnetGreeting) {
		t.Errorf("the welcome does not start with IAC WILL BINARY IAC DO BINARY")
	}
}

func TestEncodeTelnet(t *testing.T) {
	who := &chat.Event{Kind: chat.KindWho, UID: 1, Online: 2, Members: []chat.MemberInfo{
		{UID: 1, Nick: "alice", Protocol: "telnet"},
		{UID: 2, Protocol: "websocket"},
	}}
	info := &chat.Event{Kind: chat.KindInfo, UID: 1}
	tests := []struct {
		name string
		ev   *chat.Event
		want string
	}{
		{"message", &chat.Event{Kind: chat.KindMessage, UID: 3, Text: "hi"}, "uid 3: hi\r\n"},
		{"message with nick", &chat.Event{Kind: chat.KindMessage, UID: 3, Nick: "bob", Text: "hi"}, "bob(3): hi\r\n"},
		{"chinese message", &chat.Event{Kind: chat.KindMessage, UID: 3, Text: telnetChinese}, "uid 3: " + telnetChinese + "\r\n"},
		{"error", &chat.Event{Kind: chat.KindError, Text: "slow down"}, "! slow down\r\n"},
		{"join", &chat.Event{Kind: chat.KindJoin, UID: 4}, "* uid 4 joined\r\n"},
		{"shutdown", &chat.Event{Kind: chat.KindShutdown}, "* server is shutting down\r\n"},
		{"who", who, strings.Join(who.Lines(), "\r\n") + "\r\n"},
		{"info", info, strings.Join(info.Lines(), "\r\n") + "\r\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := appendTelnet(nil, tt.ev)
			if string(got) != tt.want {
				t.Errorf("appendTelnet = %q, want %q", got, tt.want)
			}
			if tt.ev.Kind == chat.KindWho && len(tt.ev.Lines()) != 3 {
				t.Errorf("who.Lines() = %q, want 2 members and a count", tt.ev.Lines())
			}
			if n, want := bytes.Count(got, []byte("\r\n")), len(tt.ev.Lines()); n != want {
				t.Errorf("appendTelnet = %q: got %d CRLF, want %d (one per line)", got, n, want)
			}
			if n := bytes.Count(got, []byte("\n")); n != bytes.Count(got, []byte("\r\n")) {
				t.Errorf("appendTelnet = %q: bare LF", got)
			}
			var d telnetDecoder
			if enc := d.appendEvent(nil, tt.ev); !bytes.Equal(enc, got) {
				t.Errorf("telnetDecoder.appendEvent = %q, want %q", enc, got)
			}
		})
	}
	if f := (&telnetDecoder{}).format(); f != formatText {
		t.Errorf("format() = %d, want formatText (%d)", f, formatText)
	}
	if got, want := string(telnetCodec{}.refusal("server full")), "! server full\r\n"; got != want {
		t.Errorf("refusal = %q, want %q", got, want)
	}
}

// fakeConn is the part of a gnet.Conn the decoders use; any other method
// panics on the nil embedded interface. Like gnet's, Peek's result is valid
// only until Discard, which scribbles over it to catch later use.
type fakeConn struct {
	gnet.Conn
	in     []byte
	out    bytes.Buffer
	peeked []byte
}

func (c *fakeConn) Peek(n int) ([]byte, error) {
	if n > len(c.in) {
		return nil, io.ErrShortBuffer
	}
	if n <= 0 {
		n = len(c.in)
	}
	c.peeked = append([]byte(nil), c.in[:n]...)
	return c.peeked, nil
}

func (c *fakeConn) Discard(n int) (int, error) {
	for i := range c.peeked {
		c.peeked[i] = '#'
	}
	c.peeked = nil
	if n <= 0 || n > len(c.in) {
		n = len(c.in) // gnet discards everything for n <= 0
	}
	c.in = c.in[n:]
	return n, nil
}

func (c *fakeConn) Write(p []byte) (int, error) { return c.out.Write(p) }

func (c *fakeConn) InboundBuffered() int { return len(c.in) }

// telnetRoom records what the room does with a member's lines, in order:
// room-wide events ("room"), events for the member alone ("self") and
// closes.
type telnetRoom struct {
	mu     sync.Mutex
	events []string
	texts  []string // Text of every event
	room   []string // Text of every room-wide message
}

func (r *telnetRoom) add(to string, ev *chat.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, to+" "+ev.Kind.String()+" "+strconv.Quote(strings.Join(ev.Lines(), "\n")))
	r.texts = append(r.texts, ev.Text)
	if to == "room" && ev.Kind == chat.KindMessage {
		r.room = append(r.room, ev.Text)
	}
}

type telnetSelf struct{ r *telnetRoom }

func (s telnetSelf) Send(ev *chat.Event) { s.r.add("self", ev) }

func (s telnetSelf) Reply(ev *chat.Event) { s.Send(ev) }

func (s telnetSelf) Close(reason chat.CloseReason) {
	s.r.mu.Lock()
	s.r.events = append(s.r.events, "self close "+reason.String())
	s.r.mu.Unlock()
}

type telnetGroup struct{ r *telnetRoom }

func (g telnetGroup) Broadcast(ev *chat.Event) { g.r.add("room", ev) }

// telnetHarness is one telnet session decoding into a room of its own.
type telnetHarness struct {
	conn *fakeConn
	dec  *telnetDecoder
	s    *session
	room *telnetRoom
}

func newTelnetHarness(tb testing.TB, maxLine int) *telnetHarness {
	tb.Helper()
	hub := chat.NewHub(chat.Options{Now: func() time.Time { return time.Unix(1, 0) }})
	room := &telnetRoom{}
	hub.AddFanout(telnetGroup{room})
	dec, ok := telnetCodec{maxLine: maxLine}.newDecoder().(*telnetDecoder)
	if !ok {
		tb.Fatalf("telnetCodec.newDecoder() is %T, want *telnetDecoder", telnetCodec{}.newDecoder())
	}
	conn := &fakeConn{}
	s := &session{r: &reactor{hub: hub}, conn: conn, dec: dec}
	hub.JoinMember(&s.m, telnetSelf{room}, chat.JoinOptions{Protocol: "telnet"})
	*room = telnetRoom{} // forget the welcome and the join notice
	return &telnetHarness{conn: conn, dec: dec, s: s, room: room}
}

// telnetResult is everything decoding an input did.
type telnetResult struct {
	events   []string
	room     []string
	texts    []string
	out      string
	err      string // the *protocolError's Msg, or ""
	msgsIn   uint64
	bytesIn  uint64
	buffered int
}

func (h *telnetHarness) result() telnetResult {
	return telnetResult{
		events:   h.room.events,
		room:     h.room.room,
		texts:    h.room.texts,
		out:      h.conn.out.String(),
		msgsIn:   h.s.msgsIn,
		bytesIn:  h.s.bytesIn,
		buffered: h.conn.InboundBuffered(),
	}
}

// decodeTelnet feeds chunks to a new session as successive reads, calling
// decode after each, and stops at the first error as the server does.
func decodeTelnet(tb testing.TB, maxLine int, chunks ...[]byte) telnetResult {
	tb.Helper()
	h := newTelnetHarness(tb, maxLine)
	for _, c := range chunks {
		h.conn.in = append(h.conn.in, c...)
		if err := h.dec.decode(h.s, h.conn); err != nil {
			pe, ok := asProtocolError(err)
			if !ok {
				tb.Fatalf("decode returned %v (%T), want nil or a *protocolError", err, err)
			}
			r := h.result()
			r.err = pe.Msg
			return r
		}
	}
	return h.result()
}

// bytewise splits in into one-byte reads.
func bytewise(in []byte) [][]byte {
	chunks := make([][]byte, len(in))
	for i := range in {
		chunks[i] = in[i : i+1]
	}
	return chunks
}

// diffTelnetResult says how got differs from want; the bytes consumed and
// left buffered count only when there was no error.
func diffTelnetResult(got, want telnetResult) []string {
	var d []string
	if !slices.Equal(got.events, want.events) {
		d = append(d, fmt.Sprintf("got events %q, want %q", got.events, want.events))
	}
	if got.out != want.out {
		d = append(d, fmt.Sprintf("got written %q, want %q", got.out, want.out))
	}
	if got.err != want.err {
		d = append(d, fmt.Sprintf("got error %q, want %q", got.err, want.err))
	}
	if got.msgsIn != want.msgsIn {
		d = append(d, fmt.Sprintf("got %d lines, want %d", got.msgsIn, want.msgsIn))
	}
	if got.err == "" && want.err == "" && (got.bytesIn != want.bytesIn || got.buffered != want.buffered) {
		d = append(d, fmt.Sprintf("got %d bytes consumed and %d buffered, want %d and %d",
			got.bytesIn, got.buffered, want.bytesIn, want.buffered))
	}
	return d
}

// sameTelnetResult fails tb if got differs from want.
func sameTelnetResult(tb testing.TB, what string, got, want telnetResult) {
	tb.Helper()
	for _, d := range diffTelnetResult(got, want) {
		tb.Errorf("%s: %s", what, d)
	}
}

// sameTelnetAtEverySplit checks that in read as two chunks, split at each
// position in turn, gives want. It reports the first failing split and
// where else it fails.
func sameTelnetAtEverySplit(tb testing.TB, maxLine int, in []byte, want telnetResult) {
	tb.Helper()
	var failed []int
	for i := 0; i <= len(in); i++ {
		d := diffTelnetResult(decodeTelnet(tb, maxLine, in[:i], in[i:]), want)
		if len(d) > 0 && len(failed) == 0 {
			tb.Errorf("decode(%s) split at %d: %s", shortQuote(in), i, strings.Join(d, "; "))
		}
		if len(d) > 0 {
			failed = append(failed, i)
		}
	}
	if len(failed) > 1 {
		tb.Errorf("decode(%s): also differs when split at %v", shortQuote(in), failed[1:])
	}
}

// shortQuote quotes b for a message, eliding the middle of a long input.
func shortQuote[T ~string | ~[]byte](b T) string {
	const keep = 24
	if len(b) <= 3*keep {
		return strconv.Quote(string(b))
	}
	return strconv.Quote(string(b[:keep])) + "..." + strconv.Itoa(len(b)-2*keep) + " bytes..." + strconv.Quote(string(b[len(b)-keep:]))
}

var telnetDecodeTests = []struct {
	name     string
	in       string
	room     []string // Text of each room-wide message
	out      string   // written back to the client
	bytesIn  uint64
	buffered int
}{
	{"plain line", "hello\n", []string{"hello"}, "", 6, 0},
	{"CRLF", "hello\r\n", []string{"hello"}, "", 7, 0},
	{"two lines", "a\r\nb\n", []string{"a", "b"}, "", 5, 0},
	{"no newline yet", "hello", nil, "", 0, 5},
	{"line then partial", "a\nbc", []string{"a"}, "", 2, 2},
	{"bare CR becomes a space", "a\rb\r\n", []string{"a b"}, "", 5, 0},
	{"IAC IAC", "a\xff\xffb\r\n", []string{"a\ufffdb"}, "", 6, 0}, // a lone 255 is not UTF-8
	{"IAC IAC first", "\xff\xffb\n", []string{"\ufffdb"}, "", 4, 0},
	{"IP mid line", "ab\xff\xf4c\n", []string{"abc"}, "", 6, 0},
	{"ctrl-C then line", telnetCtrlC + "hi\r\n", []string{"hi"}, telnetWillTM, 9, 0},
	{"ctrl-C alone", telnetCtrlC, nil, telnetWillTM, 5, 0},
	{"ctrl-C after a line", "hi\n" + telnetCtrlC, []string{"hi"}, telnetWillTM, 8, 0},
	{"ctrl-C mid line", "ab" + telnetCtrlC + "c\n", []string{"abc"}, telnetWillTM, 9, 0},
	{"ctrl-C mid unfinished line", "ab" + telnetCtrlC, nil, "", 0, 7},
	{"DO x", "a\xff\xfd\x01b\n", []string{"ab"}, "\xff\xfc\x01", 6, 0},
	{"WILL x", "\xff\xfb\x18ok\n", []string{"ok"}, "\xff\xfe\x18", 6, 0},
	{"WONT and DONT", "\xff\xfc\x01\xff\xfe\x03ok\n", []string{"ok"}, "", 9, 0},
	{"SB with LF", "a" + telnetSBWithLF + "b\r\n", []string{"ab"}, "", 11, 0},
	{"SB with LF first", telnetSBWithLF + "b\n", []string{"b"}, "", 9, 0},
	{"SB with IAC IAC", "a" + telnetSBWithIAC + "b\n", []string{"ab"}, "", 12, 0},
	{"chinese", telnetChinese + "\r\n", []string{telnetChinese}, "", uint64(len(telnetChinese)) + 2, 0},
	{"emoji", telnetEmoji + "\n", []string{telnetEmoji}, "", uint64(len(telnetEmoji)) + 1, 0},
	{"chinese around NOP", "你\xff\xf1好\n", []string{"你好"}, "", 9, 0},
	{"latin-1", "caf\xe9\r\n", []string{"caf\ufffd"}, "", 6, 0},
	{"U+FFFD", "\uFFFD\n", []string{"\uFFFD"}, "", 4, 0},
	{"blank line", "\r\n", nil, "", 2, 0},
}

func TestTelnetDecode(t *testing.T) {
	const maxLine = 64
	for _, tt := range telnetDecodeTests {
		t.Run(tt.name, func(t *testing.T) {
			in := []byte(tt.in)
			whole := decodeTelnet(t, maxLine, in)
			if whole.err != "" {
				t.Fatalf("decode(%q) error %q, want none", tt.in, whole.err)
			}
			if !slices.Equal(whole.room, tt.room) {
				t.Errorf("decode(%q): got room lines %q, want %q", tt.in, whole.room, tt.room)
			}
			if len(whole.events) != len(tt.room) {
				t.Errorf("decode(%q): got events %q, want only the room lines", tt.in, whole.events)
			}
			if whole.out != tt.out {
				t.Errorf("decode(%q): got written %q, want %q", tt.in, whole.out, tt.out)
			}
			if whole.bytesIn != tt.bytesIn || whole.buffered != tt.buffered {
				t.Errorf("decode(%q): got %d bytes consumed and %d buffered, want %d and %d",
					tt.in, whole.bytesIn, whole.buffered, tt.bytesIn, tt.buffered)
			}
			sameTelnetResult(t, "byte at a time", decodeTelnet(t, maxLine, bytewise(in)...), whole)
			sameTelnetAtEverySplit(t, maxLine, in, whole)
		})
	}
}

// TestTelnetDecodeCtrlC checks that Ctrl-C at the start of a line is
// answered as soon as it is read (inetutils telnet discards output until the
// timing mark comes back), once, and that nothing reaches the room.
func TestTelnetDecodeCtrlC(t *testing.T) {
	tests := []struct {
		name  string
		reads []string
		lines uint64 // "hi\r\n" before Ctrl-C
	}{
		{"one read", []string{telnetCtrlC}, 0},
		{"a byte at a time", strings.Split(telnetCtrlC, ""), 0},
		{"after a line", []string{"hi\r\n", telnetCtrlC}, 1},
		{"after a line, same read", []string{"hi\r\n" + telnetCtrlC}, 1},
		{"cut before TM", []string{telnetCtrlC[:4], telnetCtrlC[4:]}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newTelnetHarness(t, 64)
			for i, rd := range tt.reads {
				h.conn.in = append(h.conn.in, rd...)
				if err := h.dec.decode(h.s, h.conn); err != nil {
					t.Fatalf("decode after %q: %v", rd, err)
				}
				if i < len(tt.reads)-1 && h.conn.out.Len() != 0 {
					t.Errorf("after %q: got written %q, want nothing yet", rd, h.conn.out.Bytes())
				}
			}
			if got := h.conn.out.String(); got != telnetWillTM {
				t.Errorf("got written %q, want %q", got, telnetWillTM)
			}
			lines := tt.lines
			if h.s.msgsIn != lines || len(h.room.room) != int(lines) {
				t.Errorf("got %d lines and room lines %q, want only the line before Ctrl-C", h.s.msgsIn, h.room.room)
			}
			if h.s.bytesIn != lines*4+5 || h.conn.InboundBuffered() != 0 {
				t.Errorf("got %d bytes consumed and %d buffered, want %d and 0", h.s.bytesIn, h.conn.InboundBuffered(), lines*4+5)
			}

			// The answer is not repeated with the lines that follow.
			h.conn.out.Reset()
			for _, rd := range []string{"a\r\n", "b\r\nc\r\n"} {
				h.conn.in = append(h.conn.in, rd...)
				if err := h.dec.decode(h.s, h.conn); err != nil {
					t.Fatalf("decode after %q: %v", rd, err)
				}
			}
			if h.conn.out.Len() != 0 {
				t.Errorf("after three more lines: got written %q, want nothing", h.conn.out.Bytes())
			}
		})
	}
}

func TestTelnetDecodeBytesIn(t *testing.T) {
	h := newTelnetHarness(t, 64)
	steps := []struct {
		in       string
		bytesIn  uint64
		buffered int
	}{
		{"ab\r", 0, 3},
		{"\n" + telnetCtrlC, 9, 0},
		{"cd", 9, 2},
		{"\xff\xfd", 9, 4},
		{"\x01\n\xff\xff", 15, 2},
		{"\n", 18, 0},
	}
	for _, st := range steps {
		h.conn.in = append(h.conn.in, st.in...)
		if err := h.dec.decode(h.s, h.conn); err != nil {
			t.Fatalf("decode after %q: %v", st.in, err)
		}
		if h.s.bytesIn != st.bytesIn || h.conn.InboundBuffered() != st.buffered {
			t.Errorf("after %q: got %d bytes consumed and %d buffered, want %d and %d",
				st.in, h.s.bytesIn, h.conn.InboundBuffered(), st.bytesIn, st.buffered)
		}
	}
	if got, want := h.room.room, []string{"ab", "cd", "\ufffd"}; !slices.Equal(got, want) {
		t.Errorf("got room lines %q, want %q", got, want)
	}
	if got, want := h.conn.out.String(), telnetWillTM+"\xff\xfc\x01"; got != want {
		t.Errorf("got written %q, want %q", got, want)
	}
}

func TestTelnetDecodeLineTooLong(t *testing.T) {
	const maxLine = 8
	const msg = "line too long (max 8 bytes)"
	full := strings.Repeat("a", maxLine)
	tests := []struct {
		name    string
		in      string
		room    []string
		wantErr bool
	}{
		{"max with LF", full + "\n", []string{full}, false},
		{"max with CRLF", full + "\r\n", []string{full}, false},
		{"max, LF not yet", full, nil, false},
		{"max and CR, LF not yet", full + "\r", nil, false},
		{"max with IAC IAC", strings.Repeat("\xff\xff", maxLine) + "\n", []string{strings.Repeat("\ufffd", maxLine)}, false},
		{"max with commands", "abcd\xff\xf1efgh\xff\xf1\r\n", []string{"abcdefgh"}, false},
		{"max after SB", "\xff\xfa\x18" + strings.Repeat("x", 2*maxLine) + "\xff\xf0" + full + "\n", []string{full}, false},
		{"max+1 with LF", full + "b\n", nil, true},
		{"max+1 with CRLF", full + "b\r\n", nil, true},
		{"max+1, LF not yet", full + "b", nil, true},
		{"max+2, LF not yet", full + "bc", nil, true},
		{"max+1 after a line", "ok\n" + full + "b\n", []string{"ok"}, true},
		{"max+1 with IAC IAC", strings.Repeat("\xff\xff", maxLine+1) + "\n", nil, true},
		{"chinese max+1", "一二三x\n", nil, true},
		{"unterminated SB", "\xff\xfa\x18" + strings.Repeat("x", 64*maxLine), nil, true},
		{"NOP flood", "ab" + strings.Repeat("\xff\xf1", 32*maxLine), nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := []byte(tt.in)
			want := ""
			if tt.wantErr {
				want = msg
			}
			check := func(r telnetResult) string {
				if r.err != want || !slices.Equal(r.room, tt.room) {
					return fmt.Sprintf("got error %q and room lines %q, want %q and %q", r.err, r.room, want, tt.room)
				}
				return ""
			}
			if d := check(decodeTelnet(t, maxLine, in)); d != "" {
				t.Errorf("decode(%s) whole: %s", shortQuote(in), d)
			}
			if d := check(decodeTelnet(t, maxLine, bytewise(in)...)); d != "" {
				t.Errorf("decode(%s) a byte at a time: %s", shortQuote(in), d)
			}
			var failed []int
			for i := 0; i <= len(in); i++ {
				if d := check(decodeTelnet(t, maxLine, in[:i], in[i:])); d != "" {
					if len(failed) == 0 {
						t.Errorf("decode(%s) split at %d: %s", shortQuote(in), i, d)
					}
					failed = append(failed, i)
				}
			}
			if len(failed) > 1 {
				t.Errorf("decode(%s): also fails when split at %v", shortQuote(in), failed[1:])
			}
		})
	}
}

// TestTelnetDecodeSplitIndependent checks that where reads split inputs
// near the line limit makes no difference to anything the decoder does.
func TestTelnetDecodeSplitIndependent(t *testing.T) {
	const maxLine = 8
	long := strings.Repeat("x", 32*maxLine)
	tests := []struct{ name, in string }{
		{"long SB first", "\xff\xfa\x18" + long + "\xff\xf0ok\n"},
		{"long SB mid line", "a\xff\xfa\x18" + long + "\xff\xf0b\n"},
		{"long SB after a line", "ok\n\xff\xfa\x18" + long + "\xff\xf0ok\n"},
		{"NOPs first", strings.Repeat("\xff\xf1", 16*maxLine) + "ok\n"},
		{"NOPs mid line", "a" + strings.Repeat("\xff\xf1", 16*maxLine) + "b\n"},
		{"max with IAC IAC", strings.Repeat("\xff\xff", maxLine) + "\r\n"},
		{"max+1 with IAC IAC", strings.Repeat("\xff\xff", maxLine+1) + "\r\n"},
		{"max then CR CR LF", strings.Repeat("a", maxLine) + "\r\r\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := []byte(tt.in)
			whole := decodeTelnet(t, maxLine, in)
			sameTelnetResult(t, "byte at a time vs whole", decodeTelnet(t, maxLine, bytewise(in)...), whole)
			sameTelnetAtEverySplit(t, maxLine, in, whole)
		})
	}
}

// telnetModel is the telnet line grammar read a byte at a time, written
// apart from scanTelnet and iacLen to check them against.
type telnetModel struct {
	lines    [][]byte // without CR LF or IAC sequences
	out      []byte   // replies the decoder writes
	consumed int      // bytes the decoder has discarded
	firstLF  int      // index of the LF ending the first line, or -1
}

func modelTelnet(in []byte) telnetModel {
	const (
		data  = iota
		cmd   // after IAC
		opt   // after IAC WILL/WONT/DO/DONT
		sb    // in IAC SB ...
		sbIAC // after IAC in a subnegotiation
	)
	m := telnetModel{firstLF: -1}
	var line, reply []byte
	// TRANSMIT-BINARY, offered and asked for at connect: each direction
	// is answered only when a request turns it on or off.
	var binUs, binThem bool
	binOffered, binAsked := true, true
	started := false // the line has data: replies wait for its LF
	state, verb := data, byte(0)
	done := func(i int, r ...byte) {
		state = data
		if started {
			reply = append(reply, r...)
			return
		}
		m.out = append(m.out, r...)
		m.consumed = i + 1
	}
	for i, b := range in {
		switch state {
		case data:
			switch b {
			case telnetIAC:
				state = cmd
			case '\n':
				if m.firstLF < 0 {
					m.firstLF = i
				}
				m.lines = append(m.lines, bytes.TrimSuffix(line, []byte{'\r'}))
				m.out = append(m.out, reply...)
				line, reply, started = nil, nil, false
				m.consumed = i + 1
			default:
				line, started = append(line, b), true
			}
		case cmd:
			switch b {
			case telnetIAC:
				line, started, state = append(line, b), true, data
			case telnetWILL, telnetWONT, telnetDO, telnetDONT:
				verb, state = b, opt
			case telnetSB:
				state = sb
			default:
				done(i)
			}
		case opt:
			switch {
			case b == telnetOptBinary && verb == telnetDO:
				ans := !binUs && !binOffered
				binUs, binOffered = true, false
				if ans {
					done(i, telnetIAC, telnetWILL, b)
				} else {
					done(i)
				}
			case b == telnetOptBinary && verb == telnetDONT:
				ans := binUs
				binUs, binOffered = false, false
				if ans {
					done(i, telnetIAC, telnetWONT, b)
				} else {
					done(i)
				}
			case b == telnetOptBinary && verb == telnetWILL:
				ans := !binThem && !binAsked
				binThem, binAsked = true, false
				if ans {
					done(i, telnetIAC, telnetDO, b)
				} else {
					done(i)
				}
			case b == telnetOptBinary && verb == telnetWONT:
				ans := binThem
				binThem, binAsked = false, false
				if ans {
					done(i, telnetIAC, telnetDONT, b)
				} else {
					done(i)
				}
			case verb == telnetDO && b == telnetOptTimingMark:
				done(i, telnetIAC, telnetWILL, b)
			case verb == telnetDO:
				done(i, telnetIAC, telnetWONT, b)
			case verb == telnetWILL:
				done(i, telnetIAC, telnetDONT, b)
			default:
				done(i)
			}
		case sb:
			if b == telnetIAC {
				state = sbIAC
			}
		case sbIAC:
			if b == telnetSE {
				done(i)
			} else {
				state = sb // IAC IAC, or IAC and anything but SE
			}
		}
	}
	return m
}

// modelResult is what decoding in should do by the model, with no line
// limit in play: the model's lines handed to a session of a new room.
func modelResult(tb testing.TB, in []byte) telnetResult {
	tb.Helper()
	m := modelTelnet(in)
	h := newTelnetHarness(tb, len(in)+2)
	for _, l := range m.lines {
		h.s.line(l)
	}
	r := h.result()
	r.out = string(m.out)
	r.bytesIn = uint64(m.consumed)
	r.buffered = len(in) - m.consumed
	return r
}

// telnetSeeds are inputs worth fuzzing from, beyond the decode table.
var telnetSeeds = []string{
	telnetCtrlC,
	"hi\r\n" + telnetCtrlC + "there\r\n",
	"a" + telnetSBWithLF + "b\n" + telnetSBWithIAC + "\xff\xff\r\n",
	"\xff\xfd\x06\xff\xfb\x01\xff\xfc\x02\xff\xfe\x03x\n",
	"你好\xff\xf1世界\r\n/nick 小明\n$1:私信\n",
	"0123456789abcdef\n0123456789abcdefg\n",
	"\xff\xfa\x18" + strings.Repeat("x", 20) + "\xff\xf0ok\n",
	strings.Repeat("\xff\xff", 10) + "\n",
	"\xff\n\xff\r\n\r\xff\xf4\n",
	"caf\xe9\n\x80\n\uFFFD\n",
	"\xff\xfa\x18" + strings.Repeat("x", 120) + "\xff\xf0ok\n",
}

// telnetFuzzMaxLine is small so that fuzzed inputs reach the limit.
const telnetFuzzMaxLine = 16

// FuzzTelnetDecode checks that how the input is split into reads makes no
// difference, that the decoder reads the grammar as the model does, and that
// no room line holds a LF or a 255 byte the client did not escape.
func FuzzTelnetDecode(f *testing.F) {
	for _, tt := range telnetDecodeTests {
		f.Add([]byte(tt.in), len(tt.in)/2)
	}
	for _, s := range telnetSeeds {
		for i := 0; i <= len(s); i++ {
			f.Add([]byte(s), i)
		}
	}
	f.Fuzz(func(t *testing.T, in []byte, at int) {
		split := int(uint(at) % uint(len(in)+1))
		whole := decodeTelnet(t, telnetFuzzMaxLine, in)
		parts := decodeTelnet(t, telnetFuzzMaxLine, in[:split], in[split:])
		sameTelnetResult(t, "limit "+strconv.Itoa(telnetFuzzMaxLine)+", split at "+strconv.Itoa(split)+" vs whole", parts, whole)
		for _, l := range whole.room {
			// The room replaces each byte that is not UTF-8 with U+FFFD,
			// so the bound is one rune per byte read.
			if n := utf8.RuneCountInString(l); n > telnetFuzzMaxLine {
				t.Errorf("room line %q: got %d runes, want at most %d", l, n, telnetFuzzMaxLine)
			}
		}

		got := decodeTelnet(t, len(in)+2, in[:split], in[split:])
		sameTelnetResult(t, "split at "+strconv.Itoa(split)+" vs model", got, modelResult(t, in))

		escaped := bytes.Count(in, []byte{telnetIAC, telnetIAC})
		n255 := 0
		for _, text := range got.texts {
			if strings.IndexByte(text, '\n') >= 0 {
				t.Errorf("room text %q holds a LF", text)
			}
			n255 += strings.Count(text, "\xff")
		}
		if n255 > escaped {
			t.Errorf("room texts %q hold %d 255 bytes, want at most %d (the IAC IAC pairs)", got.texts, n255, escaped)
		}
	})
}

// FuzzScanTelnet checks scanTelnet's results against the model, from any
// start, and that a scan resumed after a partial read finds the same line.
func FuzzScanTelnet(f *testing.F) {
	for _, tt := range telnetDecodeTests {
		f.Add([]byte(tt.in), 0, len(tt.in)/2)
	}
	for _, s := range telnetSeeds {
		for i := 0; i <= len(s); i++ {
			f.Add([]byte(s), i, i)
		}
	}
	f.Fuzz(func(t *testing.T, buf []byte, from, cut int) {
		from = int(uint(from) % uint(len(buf)+1))
		end, next, _ := scanTelnet(buf, from)
		switch {
		case end < 0 && (next < from || next > len(buf)):
			t.Errorf("scanTelnet(%q, %d) = %d, %d, want from <= next <= len(buf)", buf, from, end, next)
		case end >= 0 && (end < from || buf[end] != '\n' || next != end+1):
			t.Errorf("scanTelnet(%q, %d) = %d, %d, want the index of a LF and the byte after", buf, from, end, next)
		}

		end, _, iac := scanTelnet(buf, 0)
		if want := modelTelnet(buf).firstLF; end != want {
			t.Errorf("scanTelnet(%q, 0) end = %d, want %d", buf, end, want)
		}
		cut = int(uint(cut) % uint(len(buf)+1))
		e1, n1, iac1 := scanTelnet(buf[:cut], 0)
		if e1 >= 0 {
			if e1 != end {
				t.Errorf("scanTelnet(%q, 0) end = %d, but %d for the whole %q", buf[:cut], e1, end, buf)
			}
			return
		}
		e2, _, iac2 := scanTelnet(buf, n1)
		if e2 != end || (iac1 || iac2) != iac {
			t.Errorf("scanTelnet(%q) resumed at %d after a cut at %d = %d, %v, want %d, %v",
				buf, n1, cut, e2, iac1 || iac2, end, iac)
		}
	})
}
