package server

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"
)

// terminalSafe returns what in line a terminal would take as an
// instruction (a control byte or rune, invalid UTF-8, a bidi or invisible
// format character), or "" if there is none. It restates the room's cleaning rule
// independently of chat's cleaner.
func terminalSafe(line string) string {
	if !utf8.ValidString(line) {
		return "invalid UTF-8"
	}
	for _, r := range line {
		switch {
		case r < 0x20 && r != '\t', r == 0x7f, r >= 0x80 && r <= 0x9f:
			return fmt.Sprintf("control %U", r)
		case r == 0x061c, r == 0x200e, r == 0x200f, r >= 0x202a && r <= 0x202e, r >= 0x2066 && r <= 0x2069:
			return fmt.Sprintf("bidi control %U", r)
		case r == 0x200b, r == 0x2060, r == 0xfeff, r == 0x2028, r == 0x2029:
			return fmt.Sprintf("invisible %U", r)
		}
	}
	return ""
}

// hostileLines are lines a member may type, and what every other member
// must read of each after the sender's name.
var hostileLines = []struct {
	name, in, want string
}{
	{"forged server line", "\x1b[2K\x1b[1G* uid 1 left", "\ufffd[2K\ufffd[1G* uid 1 left"},
	{"OSC 52 clipboard", "\x1b]52;c;cm0gLXJmIH4=\x07", "\ufffd]52;c;cm0gLXJmIH4=\ufffd"},
	{"OSC 0 title", "\x1b]0;owned\x1b\\", "\ufffd]0;owned\ufffd\\"},
	{"BEL BS VT DEL", "ding\x07 back\x08\x08 vt\x0b del\x7f", "ding\ufffd back\ufffd\ufffd vt\ufffd del\ufffd"},
	{"C1 CSI rune", "\u009b2J", "\ufffd2J"},
	{"bidi override", "invoice\u202efdp.exe", "invoice\ufffdfdp.exe"},
	{"bidi isolates and marks", "\u2066a\u2069\u200e\u061c", "\ufffda\ufffd\ufffd\ufffd"},
	{"zero-width", "zw\u200bsp\ufeff\u2060", "zw\ufffdsp\ufffd\ufffd"},
	{"printable text untouched", "你好，世界 👨\u200d👩\u200d👧 🏳\ufe0f\u200d🌈 café\tok", "你好，世界 👨\u200d👩\u200d👧 🏳\ufe0f\u200d🌈 café\tok"},
}

// TestTerminalInjection sends hostile lines over every transport (telnet,
// websocket text, the JSON subprotocol's text and private message) and
// checks what a telnet reader's socket gets, byte for byte: U+FFFD where
// the control was, the sender's name first, and nothing a terminal obeys.
// A websocket text reader and a JSON reader get the same text.
func TestTerminalInjection(t *testing.T) {
	tel := telnetInstance("tel", 2)
	tel.Limits.MessagesPerSecond = 0
	s := startServer(t, tel, wsInstance("ws", 2))
	addrs := s.Addrs()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()

	reader := dial(t, addrs["tel"])
	wsReader := dialCoder(t, ctx, addrs["ws"], false)
	jsReader := dialCoder(t, ctx, addrs["ws"], true)
	telSender := dial(t, addrs["tel"])
	wsSender := dialCoder(t, ctx, addrs["ws"], false)
	jsSender := dialCoder(t, ctx, addrs["ws"], true)

	// readTelnet reads the reader's next line that is not a join notice
	// and checks its raw bytes.
	readTelnet := func(t *testing.T, want string) {
		t.Helper()
		for {
			got := reader.line() // fails unless the line ends in CR LF
			if strings.HasSuffix(got, " joined") && strings.HasPrefix(got, "* uid ") {
				continue
			}
			if bad := terminalSafe(got); bad != "" {
				t.Fatalf("telnet reader got %q: holds %s", got, bad)
			}
			if got != want {
				t.Fatalf("telnet reader: got %q, want %q", got, want)
			}
			return
		}
	}
	readWS := func(t *testing.T, want string) {
		t.Helper()
		for {
			got := wsReader.read()
			if strings.HasSuffix(got, " joined") {
				continue
			}
			if bad := terminalSafe(got); bad != "" || got != want {
				t.Fatalf("websocket reader: got %q (%s), want %q", got, bad, want)
			}
			return
		}
	}
	readJSON := func(t *testing.T, wantFrom uint64, wantText string) {
		t.Helper()
		for {
			var ev struct {
				Type string `json:"type"`
				From uint64 `json:"from"`
				Text string `json:"text"`
			}
			raw := jsReader.read()
			if err := json.Unmarshal([]byte(raw), &ev); err != nil {
				t.Fatalf("json reader: %s: %v", raw, err)
			}
			if ev.Type == "join" {
				continue
			}
			if bad := terminalSafe(ev.Text); bad != "" || ev.Type != "message" || ev.From != wantFrom || ev.Text != wantText {
				t.Fatalf("json reader: got %s (%s), want a message from %d with text %q", raw, bad, wantFrom, wantText)
			}
			return
		}
	}
	name := func(uid uint64) string { return "uid " + strconv.FormatUint(uid, 10) }
	jsonString := func(s string) string {
		b, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}

	for _, tt := range hostileLines {
		t.Run("telnet/"+tt.name, func(t *testing.T) {
			telSender.send(tt.in + "\r\n")
			readTelnet(t, name(telSender.uid)+": "+tt.want)
			readWS(t, name(telSender.uid)+": "+tt.want)
			readJSON(t, telSender.uid, tt.want)
		})
		t.Run("websocket/"+tt.name, func(t *testing.T) {
			wsSender.send(tt.in)
			readTelnet(t, name(wsSender.uid)+": "+tt.want)
			readWS(t, name(wsSender.uid)+": "+tt.want)
			readJSON(t, wsSender.uid, tt.want)
		})
		t.Run("json/"+tt.name, func(t *testing.T) {
			jsSender.send(`{"text":` + jsonString(tt.in) + `}`)
			readTelnet(t, name(jsSender.uid)+": "+tt.want)
			readWS(t, name(jsSender.uid)+": "+tt.want)
			readJSON(t, jsSender.uid, tt.want)
		})
		t.Run("json private/"+tt.name, func(t *testing.T) {
			jsSender.send(fmt.Sprintf(`{"to":%d,"text":%s}`, reader.uid, jsonString(tt.in)))
			readTelnet(t, name(jsSender.uid)+" (private): "+tt.want)
		})
	}

	// 8-bit input a websocket can not carry (it must be UTF-8): telnet only.
	t.Run("telnet/raw 0x9B and invalid UTF-8", func(t *testing.T) {
		telSender.send("csi \x9b2J caf\xe9 \xc3\r\n")
		want := name(telSender.uid) + ": csi \ufffd2J caf\ufffd \ufffd"
		readTelnet(t, want)
		readWS(t, want)
	})
}
