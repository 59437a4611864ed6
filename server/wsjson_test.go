package server

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/fastws/fastws/chat"
	"github.com/fastws/fastws/server/config"
	"github.com/gobwas/ws"
)

// serverFrames splits encoded server output into its frames.
func serverFrames(tb testing.TB, b []byte) []ws.Frame {
	tb.Helper()
	r := bufio.NewReader(bytes.NewReader(b))
	var fs []ws.Frame
	for {
		h, err := ws.ReadHeader(r)
		if err == io.EOF {
			return fs
		}
		if err != nil {
			tb.Fatalf("read header: %v", err)
		}
		if h.Masked || !h.Fin || h.Rsv != 0 {
			tb.Fatalf("got header %+v, want an unmasked final frame", h)
		}
		p := make([]byte, h.Length)
		if _, err := io.ReadFull(r, p); err != nil {
			tb.Fatalf("read payload: %v", err)
		}
		fs = append(fs, ws.Frame{Header: h, Payload: p})
	}
}

func TestEncodeWSJSON(t *testing.T) {
	at := time.Date(2025, 1, 2, 3, 4, 5, 123456789, time.FixedZone("CET", 3600))
	const ts = `"time":"2025-01-02T02:04:05.123456789Z"`
	tests := []struct {
		name string
		ev   *chat.Event
		want string
	}{
		{"welcome", &chat.Event{Kind: chat.KindWelcome, UID: 7}, `{"type":"welcome","uid":7,` + ts + `}`},
		{"join", &chat.Event{Kind: chat.KindJoin, UID: 7}, `{"type":"join","uid":7,"nick":"",` + ts + `}`},
		{"leave", &chat.Event{Kind: chat.KindLeave, UID: 7, Nick: "alice"}, `{"type":"leave","uid":7,"nick":"alice",` + ts + `}`},
		{"broadcast", &chat.Event{Kind: chat.KindMessage, UID: 7, Nick: "alice", Text: "hi <all> & \"you\""},
			`{"type":"message","from":7,"nick":"alice","to":0,"toNick":"","private":false,"text":"hi <all> & \"you\"",` + ts + `}`},
		{"private", &chat.Event{Kind: chat.KindMessage, UID: 7, Nick: "alice", To: 3, ToNick: "bob", Private: true, Text: "hi"},
			`{"type":"message","from":7,"nick":"alice","to":3,"toNick":"bob","private":true,"text":"hi",` + ts + `}`},
		{"private_echo", &chat.Event{Kind: chat.KindMessage, UID: 7, To: 3, Private: true, Echo: true, Text: "hi"},
			`{"type":"message","from":7,"nick":"","to":3,"toNick":"","private":true,"text":"hi",` + ts + `}`},
		{"invalid_utf8_from_telnet", &chat.Event{Kind: chat.KindMessage, UID: 7, Text: "caf\xe9"},
			`{"type":"message","from":7,"nick":"","to":0,"toNick":"","private":false,"text":"caf\ufffd",` + ts + `}`},
		{"nick", &chat.Event{Kind: chat.KindNick, UID: 7, Nick: "alice"}, `{"type":"nick","uid":7,"nick":"alice","oldNick":"",` + ts + `}`},
		{"renick", &chat.Event{Kind: chat.KindNick, UID: 7, Nick: "bob", OldNick: "alice"}, `{"type":"nick","uid":7,"nick":"bob","oldNick":"alice",` + ts + `}`},
		{"who", &chat.Event{Kind: chat.KindWho, UID: 2, Online: 2, Members: []chat.MemberInfo{{UID: 1, Protocol: "telnet"}, {UID: 2, Nick: "bob", Protocol: "websocket"}}},
			`{"type":"who","members":[{"uid":1,"nick":"","protocol":"telnet"},{"uid":2,"nick":"bob","protocol":"websocket"}],"online":2,"page":1,"more":0,` + ts + `}`},
		{"who_nobody", &chat.Event{Kind: chat.KindWho}, `{"type":"who","members":[],"online":0,"page":1,"more":0,` + ts + `}`},
		{"who_page", &chat.Event{Kind: chat.KindWho, Online: 250, Page: 2, More: 149, Members: []chat.MemberInfo{{UID: 101, Protocol: "telnet"}}},
			`{"type":"who","members":[{"uid":101,"nick":"","protocol":"telnet"}],"online":250,"page":2,"more":149,` + ts + `}`},
		{"error", &chat.Event{Kind: chat.KindError, UID: 7, Text: "uid 3 is not online"}, `{"type":"error","text":"uid 3 is not online",` + ts + `}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.ev.Time = at
			fs := serverFrames(t, appendWSJSON(nil, tc.ev))
			if len(fs) != 1 || fs[0].Header.OpCode != ws.OpText {
				t.Fatalf("got %d frames, want one text frame", len(fs))
			}
			if got := string(fs[0].Payload); got != tc.want {
				t.Errorf("got  %s\nwant %s", got, tc.want)
			}
		})
	}
}

func TestEncodeWSJSONInfo(t *testing.T) {
	ev := &chat.Event{Kind: chat.KindInfo, UID: 7, Time: time.Unix(0, 0)}
	want := []byte(`{"type":"info","lines":[`)
	for i, l := range ev.Lines() {
		if i > 0 {
			want = append(want, ',')
		}
		want = append(want, '"')
		want = append(want, l...) // the help text has nothing to escape
		want = append(want, '"')
	}
	want = append(want, `],"time":"1970-01-01T00:00:00Z"}`...)
	fs := serverFrames(t, appendWSJSON(nil, ev))
	if len(fs) != 1 {
		t.Fatalf("got %d frames, want one", len(fs))
	}
	if string(fs[0].Payload) != string(want) {
		t.Errorf("got  %s\nwant %s", fs[0].Payload, want)
	}
}

func TestEncodeWSShutdown(t *testing.T) {
	ev := &chat.Event{Kind: chat.KindShutdown, Time: time.Unix(1, 0)}
	for _, tc := range []struct {
		name   string
		encode func([]byte, *chat.Event) []byte
		first  string
	}{
		{"text", appendWSText, "* server is shutting down"},
		{"json", appendWSJSON, `{"type":"shutdown","text":"server is shutting down","time":"1970-01-01T00:00:01Z"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fs := serverFrames(t, tc.encode([]byte("kept"), ev)[len("kept"):])
			if len(fs) != 2 {
				t.Fatalf("got %d frames, want the notice and a close", len(fs))
			}
			if fs[0].Header.OpCode != ws.OpText || string(fs[0].Payload) != tc.first {
				t.Errorf("got first frame %v %q, want text %q", fs[0].Header.OpCode, fs[0].Payload, tc.first)
			}
			if fs[1].Header.OpCode != ws.OpClose || binary.BigEndian.Uint16(fs[1].Payload) != 1001 {
				t.Errorf("got second frame %v %q, want close 1001", fs[1].Header.OpCode, fs[1].Payload)
			}
		})
	}
}

func TestEncodeWSText(t *testing.T) {
	who := &chat.Event{Kind: chat.KindWho, Online: 2, Members: []chat.MemberInfo{{UID: 1, Protocol: "telnet"}, {UID: 2, Nick: "bob", Protocol: "websocket"}}}
	tests := []struct {
		name string
		ev   *chat.Event
		want []string
	}{
		{"broadcast", &chat.Event{Kind: chat.KindMessage, UID: 7, Text: "hello"}, []string{"uid 7: hello"}},
		{"who_is_a_frame_per_line", who, who.Lines()},
		{"help", &chat.Event{Kind: chat.KindInfo}, (&chat.Event{Kind: chat.KindInfo}).Lines()},
		{"invalid_utf8_from_telnet", &chat.Event{Kind: chat.KindMessage, UID: 7, Text: "caf\xe9 \xff!"}, []string{"uid 7: caf\ufffd \ufffd!"}},
		{"big", &chat.Event{Kind: chat.KindMessage, UID: 7, Text: string(repeat("b", 70000))}, []string{"uid 7: " + string(repeat("b", 70000))}},
	}
	// Payloads at the edges of the 7-bit, 16-bit and 64-bit length forms.
	for _, n := range []int{125, 126, 0xffff, 0x10000} {
		text := string(repeat("x", n-len("uid 7: ")))
		tests = append(tests, struct {
			name string
			ev   *chat.Event
			want []string
		}{"payload_" + strconv.Itoa(n), &chat.Event{Kind: chat.KindMessage, UID: 7, Text: text}, []string{"uid 7: " + text}})
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// Appended after other output, which must stay as it was.
			b := appendWSText([]byte("kept"), tc.ev)
			if string(b[:4]) != "kept" {
				t.Fatalf("the bytes before the frames changed: %q", b[:4])
			}
			fs := serverFrames(t, b[4:])
			if len(fs) != len(tc.want) {
				t.Fatalf("got %d frames, want %d", len(fs), len(tc.want))
			}
			for i, f := range fs {
				if f.Header.OpCode != ws.OpText || string(f.Payload) != tc.want[i] {
					t.Errorf("frame %d: got %v %q, want text %q", i, f.Header.OpCode, clip(f.Payload), clip([]byte(tc.want[i])))
				}
			}
		})
	}
}

func TestUTF8Prefix(t *testing.T) {
	tests := []struct {
		in   string
		n    int
		ok   bool
		name string
	}{
		{"", 0, true, "empty"},
		{"abc", 3, true, "ascii"},
		{"κό", 4, true, "whole"},
		{"ab\xce", 2, true, "two of three"},
		{"ab\xf0\x9f", 2, true, "half an emoji"},
		{"ab\xf0\x9f\x98", 2, true, "three quarters of an emoji"},
		{"\xf0", 0, true, "lead byte only"},
		{"ab\xf0\x9fA", 0, false, "broken continuation"},
		{"ab\xf0\x9f\x98A", 0, false, "broken last continuation"},
		{"ab\xed\xa0", 0, false, "surrogate start"},
		{"ab\xf4\x90", 0, false, "past U+10FFFF"},
		{"ab\xe0\x80", 0, false, "overlong start"},
		{"\xff", 0, false, "never valid"},
		{"\x80ab", 0, false, "leading continuation"},
		{"\xc0\xafok\xce", 0, false, "invalid before an incomplete end"},
		{"\x80\x80\x80", 0, false, "continuations only"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n, ok := utf8Prefix([]byte(tc.in))
			if n != tc.n || ok != tc.ok {
				t.Errorf("utf8Prefix(%q): got %d, %v, want %d, %v", tc.in, n, ok, tc.n, tc.ok)
			}
		})
	}
}

func TestValidCloseCode(t *testing.T) {
	valid := []uint16{1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 3500, 3999, 4000, 4999}
	invalid := []uint16{0, 1, 999, 1004, 1005, 1006, 1012, 1013, 1014, 1015, 1016, 1100, 2000, 2999, 5000, 65535}
	for _, code := range valid {
		if !validCloseCode(code) {
			t.Errorf("validCloseCode(%d): got false, want true", code)
		}
	}
	for _, code := range invalid {
		if validCloseCode(code) {
			t.Errorf("validCloseCode(%d): got true, want false", code)
		}
	}
}

// TestBadJSONIsRateLimited sends 1000 JSON objects of the wrong shape at
// once: each used to get its error frame, forever. They draw on the rate
// limit like lines, so the client is refused, then closed for flooding.
func TestBadJSONIsRateLimited(t *testing.T) {
	ic := wsInstance("ws", 1)
	ic.Limits.MessagesPerSecond = 50 // the default; a burst of 100
	// The room's clock stands still: a token drips into the bucket every
	// 20ms of real time, and each one that a refused frame finds resets
	// the flood count, so on a loaded machine (-race, -count) more frames
	// were answered before the close. Without time passing the count is
	// exact: the burst (100 errors), then 2*burst "slow down", then the
	// close.
	s := New(discardLogger(), chat.Options{Now: func() time.Time { return time.Unix(1e9, 0) }})
	cfg := &config.Config{StopTimeout: 5 * time.Second, Defaults: config.DefaultLimits(), Instances: []config.Instance{ic}}
	if err := s.Start(cfg); err != nil {
		t.Fatalf("start: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		defer cancel()
		_ = s.Stop(ctx)
	})
	c := wsRequest(dialRaw(t, s.Addrs()["ws"]), wsUpgradeRequest("Sec-WebSocket-Protocol: fastws.v1.json\r\n"))
	if resp := c.response(); resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("handshake: got status %d, want 101", resp.StatusCode)
	}
	c.readFrame() // the welcome
	bad := clientFrame(true, 0, ws.OpText, []byte(`{"join":"a","leave":"b"}`))
	wait := writeAsync(c.conn, bytes.Repeat(bad, 1000))
	defer wait()
	errs := 0
	for {
		h, p, err := c.tryReadFrame()
		if err != nil {
			t.Fatalf("after %d error frames: %v, want a close 1008", errs, err)
		}
		if h.OpCode == ws.OpClose {
			if code := binary.BigEndian.Uint16(p); code != 1008 {
				t.Fatalf("got close %d, want 1008 (flood)", code)
			}
			break
		}
		errs++
	}
	if errs != 300 {
		t.Errorf("got %d error frames for 1000 bad objects, want the flood limit to stop them at 300 (burst 100 + 200 slow down)", errs)
	}
}
