package server

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/gobwas/ws"
)

// wsFuzzMax is the message limit of the fuzzed reader: small, so that the
// fuzzer reaches it.
const wsFuzzMax = 300

// wsTrace runs a frame reader over chunks, each arriving as one read, and
// records what it reports: one line per frame, the error that ended it, or
// how many bytes are left waiting. It checks the reader's promises as it
// goes.
func wsTrace(tb testing.TB, chunks ...[]byte) string {
	tb.Helper()
	f := wsFrames{max: wsFuzzMax}
	in := &fakeConn{}
	var out strings.Builder
	for _, ch := range chunks {
		in.in = append(in.in, ch...)
		for {
			before := len(in.in)
			fr, n, err := f.read(in)
			if got := before - len(in.in); got != n {
				tb.Fatalf("read reported %d bytes consumed, consumed %d", n, got)
			}
			if err != nil {
				pe, ok := asProtocolError(err)
				if !ok || pe.Kind == "" || len(pe.Frame) < 4 || ws.OpCode(pe.Frame[0]&0x0f) != ws.OpClose {
					tb.Fatalf("got error %v, want a protocol error with a close frame", err)
				}
				fmt.Fprintf(&out, "error %s %q\n", pe.Kind, pe.Frame)
				return out.String()
			}
			if n == 0 {
				f.trim()
				break
			}
			checkWSFrame(tb, fr)
			fmt.Fprintf(&out, "op %d %q %q\n", fr.op, fr.data, fr.reply)
			if fr.op == wsClose {
				return out.String()
			}
		}
	}
	fmt.Fprintf(&out, "waiting with %d bytes", len(in.in))
	return out.String()
}

func checkWSFrame(tb testing.TB, fr wsFrame) {
	tb.Helper()
	switch fr.op {
	case wsText:
		if len(fr.data) > wsFuzzMax || !utf8.Valid(fr.data) {
			tb.Fatalf("got a message of %d bytes, valid UTF-8 %v; want at most %d valid bytes", len(fr.data), utf8.Valid(fr.data), wsFuzzMax)
		}
	case wsPing:
		if want := appendFrame(nil, ws.OpPong, fr.data); !bytes.Equal(fr.reply, want) {
			tb.Fatalf("got pong %q for ping %q, want %q", fr.reply, fr.data, want)
		}
	}
}

// wsSeeds are frame sequences, valid and not, for the fuzzer and the split
// tests.
func wsSeeds() [][]byte {
	j := func(fs ...[]byte) []byte { return bytes.Join(fs, nil) }
	return [][]byte{
		j(text("hello"), text("")),
		j(textB(repeat("x", 126)), ping([]byte("p")), clientFrame(true, 0, ws.OpPong, nil)),
		j(frag(ws.OpText, "Hel"), ping([]byte("mid")), frag(ws.OpContinuation, "lo \xf0\x9f"), cont("\x98\x80")),
		j(text("κόσμε"), closeF(closePayload(1000, "bye"))),
		j(closeF(nil)),
		j(textB(repeat("y", wsFuzzMax))),
		j(textB(repeat("y", wsFuzzMax+1))),
		j(frag(ws.OpText, string(repeat("z", 200))), cont(string(repeat("z", 101)))),
		j(text("ok"), text("\xed\xa0\x80")),
		j(frag(ws.OpText, "\xce"), cont("A")),
		j(cont("orphan")),
		j(clientFrame(true, 4, ws.OpText, []byte("rsv"))),
		j(clientFrame(true, 0, 5, nil)),
		j(clientFrame(true, 0, ws.OpBinary, []byte("bin"))),
		j(clientFrameMask(true, 0, ws.OpText, []byte("unmasked"), false)),
		j(ping(repeat("p", 126))),
		j(closeF([]byte{3})),
		j(closeF(closePayload(1005, ""))),
		j(closeF(closePayload(1000, "\xff"))),
		{0x81, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 1, 1, 2, 3, 4},
	}
}

func TestWSFramesSplitEverywhere(t *testing.T) {
	for i, in := range wsSeeds() {
		whole := wsTrace(t, in)
		for k := range len(in) + 1 {
			if got := wsTrace(t, in[:k], in[k:]); got != whole {
				t.Fatalf("seed %d split at %d:\n%s\nwant, as whole:\n%s", i, k, got, whole)
			}
		}
		if got := wsTrace(t, bytewise(in)...); got != whole {
			t.Fatalf("seed %d byte by byte:\n%s\nwant, as whole:\n%s", i, got, whole)
		}
	}
}

func TestWSFramesTrace(t *testing.T) {
	tests := []struct {
		name string
		in   []byte
		want string
	}{
		{"text", text("hi"), "op 1 \"hi\" \"\"\nwaiting with 0 bytes"},
		{"partial", text("hi")[:5], "waiting with 5 bytes"},
		{"ping", ping([]byte("p")), "op 2 \"p\" \"\\x8a\\x01p\"\nwaiting with 0 bytes"},
		{"too_big", textB(repeat("y", wsFuzzMax+1))[:8], "error ws_too_big \"\\x88!\\x03\\xf1message too big (max 300 bytes)\"\n"},
		{"binary", clientFrame(true, 0, ws.OpBinary, nil), "error ws_unsupported \"\\x88#\\x03\\xebbinary messages are not supported\"\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := wsTrace(t, tc.in); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

// FuzzWSDecode feeds arbitrary bytes to the frame reader, whole and split
// in two at a fuzzed position: both must give the same result, and neither
// may panic or break the reader's promises.
func FuzzWSDecode(f *testing.F) {
	for _, in := range wsSeeds() {
		for k := range len(in) + 1 {
			f.Add(in, uint(k))
		}
	}
	f.Fuzz(func(t *testing.T, in []byte, split uint) {
		k := int(split % uint(len(in)+1))
		whole := wsTrace(t, in)
		if got := wsTrace(t, in[:k], in[k:]); got != whole {
			t.Fatalf("split at %d:\n%s\nwant, as whole:\n%s", k, got, whole)
		}
	})
}

// FuzzWSHandshake feeds arbitrary request heads to the handshake: it must
// answer every one with a 101 or a complete HTTP response, and never
// panic.
func FuzzWSHandshake(f *testing.F) {
	for _, s := range []string{
		wsUpgradeRequest(""),
		wsUpgradeRequest("Origin: https://evil.example\r\nSec-WebSocket-Protocol: fastws.v1.json\r\n"),
		"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
		"POST /x HTTP/1.0\r\n\r\n",
		"GET\r\n\r\n",
	} {
		f.Add([]byte(s))
	}
	wc := &wsCodec{maxMsg: 1 << 10, origins: []string{"https://chat.example.com"}}
	f.Fuzz(func(t *testing.T, req []byte) {
		if i := bytes.Index(req, crlfcrlf); i < 0 || i+4 != len(req) {
			req = append(bytes.ReplaceAll(req, crlfcrlf, nil), crlfcrlf...)
		}
		resp, proto, pe := wc.respond(req)
		switch {
		case pe == nil && !bytes.HasPrefix(resp, []byte("HTTP/1.1 101 ")):
			t.Fatalf("got %q and no error, want a 101", resp)
		case pe == nil && proto != "" && proto != wsProtocolJSON:
			t.Fatalf("got subprotocol %q", proto)
		case pe != nil && !bytes.HasPrefix(pe.Frame, []byte("HTTP/1.1 ")):
			t.Fatalf("got refusal %q, want an HTTP response", pe.Frame)
		}
	})
}

// TestWSShortTextHeader checks the chat line's header path against the
// general one: for every first two bytes, open message or not, and
// message limit, a header shortText takes is one anyHeader reads the
// same way and accepts.
func TestWSShortTextHeader(t *testing.T) {
	taken := 0
	for _, max := range []int{10, 125, 1 << 16} {
		for _, open := range []bool{false, true} {
			for b0 := range 256 {
				for b1 := range 256 {
					b := []byte{byte(b0), byte(b1), 0x37, 0xfa, 0x21, 0x3d, 'x', 'y'}
					f := &wsFrames{max: max, open: open}
					h, ok := f.shortText(b)
					if !ok {
						continue
					}
					taken++
					want, n, err := f.anyHeader(b)
					if err != nil || n != wsShortHeader || h != want {
						t.Fatalf("% x (max %d, open %v): shortText read %+v, anyHeader %+v, %d bytes, %v", b[:2], max, open, h, want, n, err)
					}
				}
			}
		}
	}
	if taken == 0 {
		t.Fatal("shortText took no header")
	}

	// A chat line as clients send it takes the short path: the general
	// parse's reader is never loaded.
	f := &wsFrames{max: 1 << 16}
	in := &fakeConn{in: clientFrame(true, 0, ws.OpText, []byte("$7:hello world"))}
	fr, n, err := f.read(in)
	if err != nil || fr.op != wsText || string(fr.data) != "$7:hello world" || len(in.in) != 0 {
		t.Fatalf("read %d bytes: %v %q, %v; %d bytes left", n, fr.op, fr.data, err, len(in.in))
	}
	if f.rd.Size() != 0 {
		t.Error("a chat line's header went through the general parse")
	}
}
