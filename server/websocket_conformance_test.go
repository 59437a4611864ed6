package server

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/fastws/fastws/chat"
	"github.com/gobwas/ws"
)

// This suite follows the sections of the Autobahn testsuite (1 framing,
// 2 pings and pongs, 3 reserved bits, 4 opcodes, 5 fragmentation, 6 UTF-8,
// 7 close handling, 9 limits) against a real instance. Every case runs
// three times: its frames written whole, in 7-byte pieces and byte by
// byte. A case ends either with the close code the server must send, after
// which the TCP connection must close, or with the connection still open
// and answering.

// wsWant is one frame a case expects from the server.
type wsWant struct {
	op   ws.OpCode
	data []byte // text: the payload; with echo, the text after "uid N: "
	echo bool   // a broadcast from the case's own client
	code uint16 // close: the code, 0 for an empty close
}

func echoed(s string) wsWant        { return wsWant{op: ws.OpText, data: []byte(s), echo: true} }
func echoedB(b []byte) wsWant       { return wsWant{op: ws.OpText, data: b, echo: true} }
func ponged(p []byte) wsWant        { return wsWant{op: ws.OpPong, data: p} }
func closedWith(code uint16) wsWant { return wsWant{op: ws.OpClose, code: code} }

type wsCase struct {
	name   string
	frames [][]byte
	want   []wsWant
}

// Shorthands for client frames.
func text(s string) []byte               { return clientFrame(true, 0, ws.OpText, []byte(s)) }
func textB(b []byte) []byte              { return clientFrame(true, 0, ws.OpText, b) }
func frag(op ws.OpCode, s string) []byte { return clientFrame(false, 0, op, []byte(s)) }
func cont(s string) []byte               { return clientFrame(true, 0, ws.OpContinuation, []byte(s)) }
func ping(p []byte) []byte               { return clientFrame(true, 0, ws.OpPing, p) }
func closeF(p []byte) []byte             { return clientFrame(true, 0, ws.OpClose, p) }

// byteFragments is the text message s sent as one fragment per byte.
func byteFragments(s string) [][]byte {
	var fr [][]byte
	for i := range len(s) {
		op := ws.OpContinuation
		if i == 0 {
			op = ws.OpText
		}
		fr = append(fr, clientFrame(i == len(s)-1, 0, op, []byte(s[i:i+1])))
	}
	return fr
}

const (
	cNormal      = 1000
	cGoingAway   = 1001
	cProtocol    = 1002
	cUnsupported = 1003
	cBadData     = 1007
	cTooBig      = 1009
)

func TestWSConformance(t *testing.T) {
	s := startServer(t, wsInstance("ws", 2))
	addr := s.Addrs()["ws"]
	for _, sec := range []struct {
		name  string
		cases []wsCase
	}{
		{"1_framing", framingCases()},
		{"2_pings", pingCases()},
		{"3_reserved_bits", reservedBitCases()},
		{"4_opcodes", opcodeCases()},
		{"5_fragmentation", fragmentationCases()},
		{"6_utf8", utf8Cases()},
		{"7_close", closeCases()},
		{"9_limits", limitCases()},
	} {
		t.Run(sec.name, func(t *testing.T) {
			for _, tc := range sec.cases {
				for _, mode := range []wsWriteMode{wsWhole, wsPieces, wsBytewise} {
					t.Run(tc.name+"/"+mode.String(), func(t *testing.T) { runWSCase(t, addr, tc, mode) })
				}
			}
		})
	}
}

func runWSCase(t *testing.T, addr string, tc wsCase, mode wsWriteMode) {
	c := wsDial(t, addr)
	if mode == wsBytewise && len(bytes.Join(tc.frames, nil)) > 4096 {
		mode = wsPieces // a byte per write would take minutes
	}
	c.send(bytes.Join(tc.frames, nil), mode)
	for _, w := range tc.want {
		if w.op == ws.OpClose {
			c.expectClose(w.code)
			return
		}
		want := w.data
		if w.echo {
			want = append([]byte("uid "+strconv.FormatUint(c.uid, 10)+": "), w.data...)
		}
		h, p := c.readFrame()
		if h.OpCode != w.op || !bytes.Equal(p, want) {
			t.Fatalf("got frame %v %q, want %v %q", h.OpCode, clip(p), w.op, clip(want))
		}
	}
	c.sync()
}

func framingCases() []wsCase {
	var cs []wsCase
	for _, n := range []int{0, 125, 126, 127, 65535, 65536} {
		var want []wsWant
		if n > 0 { // an empty line is ignored
			want = []wsWant{echoedB(repeat("*", n))}
		}
		cs = append(cs,
			wsCase{name: "text_" + strconv.Itoa(n), frames: [][]byte{textB(repeat("*", n))}, want: want},
			wsCase{name: "binary_" + strconv.Itoa(n), frames: [][]byte{clientFrame(true, 0, ws.OpBinary, repeat("\xfe", n))},
				want: []wsWant{closedWith(cUnsupported)}},
		)
	}
	return append(cs,
		wsCase{name: "trailing_newline_stripped", frames: [][]byte{text("a\n"), text("b\r\n"), text("c\n\n")},
			want: []wsWant{echoed("a"), echoed("b"), echoed("c ")}}, // a line break inside a message becomes a space
		wsCase{name: "several_frames_at_once", frames: [][]byte{text("one"), text("two"), text("three")},
			want: []wsWant{echoed("one"), echoed("two"), echoed("three")}},
		wsCase{name: "unmasked_text", frames: [][]byte{clientFrameMask(true, 0, ws.OpText, []byte("hi"), false)},
			want: []wsWant{closedWith(cProtocol)}},
		wsCase{name: "unmasked_ping", frames: [][]byte{clientFrameMask(true, 0, ws.OpPing, nil, false)},
			want: []wsWant{closedWith(cProtocol)}},
		wsCase{name: "length_msb_set", frames: [][]byte{{0x81, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 1, 1, 2, 3, 4}},
			want: []wsWant{closedWith(cProtocol)}},
		wsCase{name: "huge_declared_length", frames: [][]byte{{0x81, 0xff, 0, 0, 0, 1, 0, 0, 0, 0, 1, 2, 3, 4}},
			want: []wsWant{closedWith(cTooBig)}},
	)
}

func pingCases() []wsCase {
	bin := make([]byte, 125)
	for i := range bin {
		bin[i] = byte(i * 7)
	}
	var tenPings [][]byte
	var tenPongs []wsWant
	for i := range 10 {
		tenPings = append(tenPings, ping([]byte{byte('0' + i)}))
		tenPongs = append(tenPongs, ponged([]byte{byte('0' + i)}))
	}
	return []wsCase{
		{name: "empty_ping", frames: [][]byte{ping(nil)}, want: []wsWant{ponged(nil)}},
		{name: "text_ping", frames: [][]byte{ping([]byte("Hello, world!"))}, want: []wsWant{ponged([]byte("Hello, world!"))}},
		{name: "binary_ping_125", frames: [][]byte{ping(bin)}, want: []wsWant{ponged(bin)}},
		{name: "ping_126", frames: [][]byte{ping(repeat("x", 126))}, want: []wsWant{closedWith(cProtocol)}},
		{name: "unsolicited_pong", frames: [][]byte{clientFrame(true, 0, ws.OpPong, []byte("unasked")), text("after")},
			want: []wsWant{echoed("after")}},
		{name: "ten_pings", frames: tenPings, want: tenPongs},
	}
}

func reservedBitCases() []wsCase {
	var cs []wsCase
	for rsv := byte(1); rsv <= 7; rsv++ {
		cs = append(cs,
			wsCase{name: fmt.Sprintf("text_rsv%d", rsv), frames: [][]byte{clientFrame(true, rsv, ws.OpText, []byte("hi"))},
				want: []wsWant{closedWith(cProtocol)}},
			wsCase{name: fmt.Sprintf("ping_rsv%d_after_text", rsv),
				frames: [][]byte{text("before"), clientFrame(true, rsv, ws.OpPing, nil)},
				want:   []wsWant{echoed("before"), closedWith(cProtocol)}},
		)
	}
	return cs
}

func opcodeCases() []wsCase {
	var cs []wsCase
	for _, op := range []ws.OpCode{3, 4, 5, 6, 7, 11, 12, 13, 14, 15} {
		cs = append(cs, wsCase{name: fmt.Sprintf("opcode_%d", op),
			frames: [][]byte{text("before"), clientFrame(true, 0, op, []byte("x"))},
			want:   []wsWant{echoed("before"), closedWith(cProtocol)}})
	}
	return cs
}

func fragmentationCases() []wsCase {
	msg := "fragmented one byte at a time"
	return []wsCase{
		{name: "two_fragments", frames: [][]byte{frag(ws.OpText, "Hello, "), cont("world")}, want: []wsWant{echoed("Hello, world")}},
		{name: "one_byte_fragments", frames: byteFragments(msg), want: []wsWant{echoed(msg)}},
		{name: "empty_fragments", frames: [][]byte{frag(ws.OpText, ""), frag(ws.OpContinuation, "x"), cont("")},
			want: []wsWant{echoed("x")}},
		{name: "ping_between_fragments", frames: [][]byte{frag(ws.OpText, "Hello, "), ping([]byte("mid")), cont("world")},
			want: []wsWant{ponged([]byte("mid")), echoed("Hello, world")}},
		{name: "pong_between_fragments", frames: [][]byte{frag(ws.OpText, "a"), clientFrame(true, 0, ws.OpPong, nil), cont("b")},
			want: []wsWant{echoed("ab")}},
		{name: "close_between_fragments", frames: [][]byte{frag(ws.OpText, "a"), closeF(closePayload(cNormal, "")), cont("b")},
			want: []wsWant{closedWith(cNormal)}},
		{name: "continuation_without_start", frames: [][]byte{cont("orphan")}, want: []wsWant{closedWith(cProtocol)}},
		{name: "unfinished_continuation_without_start", frames: [][]byte{frag(ws.OpContinuation, "orphan")},
			want: []wsWant{closedWith(cProtocol)}},
		{name: "text_while_fragmented", frames: [][]byte{frag(ws.OpText, "a"), text("b")}, want: []wsWant{closedWith(cProtocol)}},
		{name: "binary_while_fragmented", frames: [][]byte{frag(ws.OpText, "a"), clientFrame(true, 0, ws.OpBinary, nil)},
			want: []wsWant{closedWith(cProtocol)}},
		{name: "fragmented_ping", frames: [][]byte{clientFrame(false, 0, ws.OpPing, []byte("a")), clientFrame(true, 0, ws.OpContinuation, []byte("b"))},
			want: []wsWant{closedWith(cProtocol)}},
		{name: "fragmented_close", frames: [][]byte{clientFrame(false, 0, ws.OpClose, closePayload(cNormal, ""))},
			want: []wsWant{closedWith(cProtocol)}},
		{name: "fragmented_binary", frames: [][]byte{clientFrame(false, 0, ws.OpBinary, []byte("a")), cont("b")},
			want: []wsWant{closedWith(cUnsupported)}},
	}
}

func utf8Cases() []wsCase {
	valid := []string{"κόσμε", "你好，世界", "\U0001F600 emoji", "\x7f\u0080\u07ff\u0800\uffff\U00010000\U0010ffff"}
	invalid := []string{
		"\xff", "\xfe", "\xc0\xaf", "\xe0\x80\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80",
		"abc\xce", "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80edited", "\x80",
	}
	var cs []wsCase
	for i, s := range valid {
		// Valid UTF-8 is accepted; the room then replaces controls (DEL
		// and U+0080 in valid_3) with U+FFFD.
		cs = append(cs, wsCase{name: fmt.Sprintf("valid_%d", i), frames: [][]byte{text(s)}, want: []wsWant{echoed(chat.CleanLine(s))}})
		// The same text fragmented at every byte, which splits code points.
		cs = append(cs, wsCase{name: fmt.Sprintf("valid_%d_split_code_points", i), frames: byteFragments(s), want: []wsWant{echoed(chat.CleanLine(s))}})
	}
	for i, s := range invalid {
		cs = append(cs, wsCase{name: fmt.Sprintf("invalid_%d", i), frames: [][]byte{text(s)}, want: []wsWant{closedWith(cBadData)}})
	}
	return append(cs,
		wsCase{name: "invalid_across_fragments", frames: [][]byte{frag(ws.OpText, "ok \xce"), cont("A")},
			want: []wsWant{closedWith(cBadData)}},
		// Fail fast: the first fragment is already invalid; the message is
		// never finished.
		wsCase{name: "invalid_in_first_fragment", frames: [][]byte{frag(ws.OpText, "\xed\xa0\x80")},
			want: []wsWant{closedWith(cBadData)}},
		wsCase{name: "truncated_at_end", frames: [][]byte{frag(ws.OpText, "ok \xf0\x9f"), cont("")},
			want: []wsWant{closedWith(cBadData)}},
		wsCase{name: "split_code_point", frames: [][]byte{frag(ws.OpText, "\xf0\x9f"), frag(ws.OpContinuation, "\x98"), cont("\x80!")},
			want: []wsWant{echoed("\U0001F600!")}},
	)
}

func closeCases() []wsCase {
	cs := []wsCase{
		{name: "empty_close", frames: [][]byte{closeF(nil)}, want: []wsWant{closedWith(0)}},
		{name: "one_byte_close", frames: [][]byte{closeF([]byte{0x03})}, want: []wsWant{closedWith(cProtocol)}},
		{name: "close_with_reason", frames: [][]byte{closeF(closePayload(cNormal, "bye 再见"))}, want: []wsWant{closedWith(cNormal)}},
		{name: "close_with_123_byte_reason", frames: [][]byte{closeF(closePayload(cNormal, string(repeat("r", 123))))},
			want: []wsWant{closedWith(cNormal)}},
		{name: "close_with_invalid_utf8_reason", frames: [][]byte{closeF(closePayload(cNormal, "bad \xff"))},
			want: []wsWant{closedWith(cBadData)}},
		{name: "text_after_close_ignored", frames: [][]byte{closeF(closePayload(cNormal, "")), text("late")},
			want: []wsWant{closedWith(cNormal)}},
		{name: "close_after_text", frames: [][]byte{text("last words"), closeF(closePayload(cGoingAway, ""))},
			want: []wsWant{echoed("last words"), closedWith(cGoingAway)}},
	}
	for _, code := range []uint16{1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 3999, 4000, 4999} {
		cs = append(cs, wsCase{name: "valid_code_" + strconv.Itoa(int(code)), frames: [][]byte{closeF(closePayload(code, ""))},
			want: []wsWant{closedWith(code)}})
	}
	for _, code := range []uint16{0, 999, 1004, 1005, 1006, 1012, 1013, 1014, 1015, 1016, 1100, 2000, 2999, 5000, 65535} {
		cs = append(cs, wsCase{name: "invalid_code_" + strconv.Itoa(int(code)), frames: [][]byte{closeF(closePayload(code, ""))},
			want: []wsWant{closedWith(cProtocol)}})
	}
	return cs
}

func limitCases() []wsCase {
	const max = 64 << 10 // config.DefaultLimits().MaxPackageSize
	half := string(repeat("h", max/2))
	return []wsCase{
		{name: "at_max", frames: [][]byte{textB(repeat("m", max))}, want: []wsWant{echoedB(repeat("m", max))}},
		{name: "one_over_max", frames: [][]byte{textB(repeat("m", max+1))}, want: []wsWant{closedWith(cTooBig)}},
		{name: "fragmented_at_max", frames: [][]byte{frag(ws.OpText, half), cont(half)}, want: []wsWant{echoed(half + half)}},
		{name: "fragmented_one_over_max", frames: [][]byte{frag(ws.OpText, half), frag(ws.OpContinuation, half), cont("!")},
			want: []wsWant{closedWith(cTooBig)}},
	}
}

func TestWSNoPermessageDeflate(t *testing.T) {
	s := startServer(t, wsInstance("ws", 1))
	c := wsDialRaw(t, s.Addrs()["ws"], wsUpgradeRequest(
		"Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits, x-webkit-deflate-frame\r\n"))
	resp := c.response()
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("got status %d, want 101", resp.StatusCode)
	}
	if got := resp.Header.Values("Sec-WebSocket-Extensions"); len(got) != 0 {
		t.Errorf("got Sec-WebSocket-Extensions %q, want none", got)
	}
	// RSV1 marks a compressed message: without the extension it is an error.
	c.readFrame() // the welcome
	c.write(clientFrame(true, 4, ws.OpText, []byte{0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00}))
	c.expectClose(cProtocol)
}

func TestWSCloseReasonTruncated(t *testing.T) {
	long := strings.Repeat("é", 100) // 200 bytes
	b := closeFrame(cNormal, long)
	if len(b) != 2+2+122 {
		t.Fatalf("got a %d-byte close frame, want 126", len(b))
	}
	if got := binary.BigEndian.Uint16(b[2:]); got != cNormal {
		t.Errorf("got code %d, want %d", got, cNormal)
	}
	if reason := b[4:]; len(reason) != 122 || !strings.HasPrefix(long, string(reason)) {
		t.Errorf("got a reason of %d bytes %q, want the first 122 bytes (61 code points)", len(reason), reason)
	}
}
