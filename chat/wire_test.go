package chat

import (
	"slices"
	"strconv"
	"strings"
	"testing"
)

// TestWireLines checks the server lines of SPEC section 4 exactly: it drives
// a room of uids 1 to 7 (fake sessions, hub_test.go) with client lines from
// uid 7 and compares every line each member receives.
func TestWireLines(t *testing.T) {
	everyone := func(lines ...string) map[uint64][]string {
		w := make(map[uint64][]string)
		for uid := uint64(1); uid <= 7; uid++ {
			w[uid] = lines
		}
		return w
	}
	without := func(w map[uint64][]string, uids ...uint64) map[uint64][]string {
		for _, uid := range uids {
			delete(w, uid)
		}
		return w
	}
	who := []string{
		"* uid 1 (telnet)",
		"* uid 2 (websocket)",
		"* uid 3 (telnet)",
		"* uid 4 (websocket)",
		"* uid 5 (telnet)",
		"* uid 6 (websocket)",
		"* uid 7 (telnet)",
		"* 7 online",
	}
	invalidNick := func(nick string) string {
		return "! invalid nick " + strconv.Quote(nick) + " (1-24 letters, digits, _ - ., not only digits)"
	}

	tests := []struct {
		name      string
		setup     func(tb testing.TB, r *testRoom) // runs before lines; its events are drained
		lines     []string                         // from uid 7
		want      map[uint64][]string              // lines each member gets; absent = none
		wantClose []CloseReason                    // Close calls on uid 7's session
	}{
		{
			name:  "broadcast reaches everyone including the sender",
			lines: []string{"hello"},
			want:  everyone("uid 7: hello"),
		},
		{
			name:  "broadcast keeps surrounding spaces",
			lines: []string{"  hello  "},
			want:  everyone("uid 7:   hello  "),
		},
		{
			name:  "dollar without colon is a broadcast",
			lines: []string{"$5 is cheap"},
			want:  everyone("uid 7: $5 is cheap"),
		},
		{
			name:  "dollar colon without digits is a broadcast",
			lines: []string{"$:x"},
			want:  everyone("uid 7: $:x"),
		},
		{
			name:  "dollar digits without colon is a broadcast",
			lines: []string{"$3"},
			want:  everyone("uid 7: $3"),
		},
		{
			name:  "slash after a space is a broadcast",
			lines: []string{" /help"},
			want:  everyone("uid 7:  /help"),
		},
		{
			name:  "utf-8 text arrives byte-identical",
			lines: []string{"你好，世界 — привет"},
			want:  everyone("uid 7: 你好，世界 — привет"),
		},
		{
			name:  "invalid utf-8 becomes U+FFFD",
			lines: []string{"a\xff\xfeb\xc3"},
			want:  everyone("uid 7: a\ufffd\ufffdb\ufffd"),
		},
		{
			name:  "a forged server line keeps the sender's name and loses its escapes",
			lines: []string{"\x1b[2K\x1b[1G* uid 1 left"},
			want:  everyone("uid 7: \ufffd[2K\ufffd[1G* uid 1 left"),
		},
		{
			name:  "OSC 52 in a private message",
			lines: []string{"$3:\x1b]52;c;cm0gLXJmIH4=\x07"},
			want: map[uint64][]string{
				3: {"uid 7 (private): \ufffd]52;c;cm0gLXJmIH4=\ufffd"},
				7: {"(to uid 3): \ufffd]52;c;cm0gLXJmIH4=\ufffd"},
			},
		},
		{
			name:  "bidi override and 8-bit CSI",
			lines: []string{"\u202egnp.exe \x9b2J"},
			want:  everyone("uid 7: \ufffdgnp.exe \ufffd2J"),
		},
		{
			name:  "only controls is not empty",
			lines: []string{"\x07"},
			want:  everyone("uid 7: \ufffd"),
		},
		{
			name:  "an unknown command is quoted clean",
			lines: []string{"/\x1b]0;title\x07"},
			want:  map[uint64][]string{7: {"! unknown command /\ufffd]0;title\ufffd"}},
		},
		{
			name:  "private to the recipient and a copy to the sender",
			lines: []string{"$3:hi"},
			want:  map[uint64][]string{3: {"uid 7 (private): hi"}, 7: {"(to uid 3): hi"}},
		},
		{
			name:  "private keeps spaces",
			lines: []string{"$3: hi there "},
			want:  map[uint64][]string{3: {"uid 7 (private):  hi there "}, 7: {"(to uid 3):  hi there "}},
		},
		{
			name:  "private with leading zeros",
			lines: []string{"$003:hi"},
			want:  map[uint64][]string{3: {"uid 7 (private): hi"}, 7: {"(to uid 3): hi"}},
		},
		{
			name:  "private text with a colon",
			lines: []string{"$3:a:b"},
			want:  map[uint64][]string{3: {"uid 7 (private): a:b"}, 7: {"(to uid 3): a:b"}},
		},
		{
			name:  "private to oneself is one line",
			lines: []string{"$7:note to self"},
			want:  map[uint64][]string{7: {"uid 7 (private): note to self"}},
		},
		{
			name:  "private to a nicked recipient",
			setup: func(tb testing.TB, r *testRoom) { r.send(tb, 3, "/nick bob") },
			lines: []string{"$3:hi"},
			want:  map[uint64][]string{3: {"uid 7 (private): hi"}, 7: {"(to bob(3)): hi"}},
		},
		{
			name:  "private to a member who left",
			setup: func(tb testing.TB, r *testRoom) { r.leave(tb, 3) },
			lines: []string{"$3:hi"},
			want:  map[uint64][]string{7: {"! uid 3 is not online"}},
		},
		{
			name:  "private to a uid never handed out",
			lines: []string{"$8:hi"},
			want:  map[uint64][]string{7: {"! uid 8 is not online"}},
		},
		{
			name:  "private to uid 0",
			lines: []string{"$0:x"},
			want:  map[uint64][]string{7: {"! uid 0 is not online"}},
		},
		{
			name:  "private to an overflowing uid",
			lines: []string{"$99999999999999999999999:x"},
			want:  map[uint64][]string{7: {"! uid 99999999999999999999999 is not online"}},
		},
		{
			name:  "private to the largest uid",
			lines: []string{"$18446744073709551615:x"},
			want:  map[uint64][]string{7: {"! uid 18446744073709551615 is not online"}},
		},
		{
			name:  "private with empty text",
			lines: []string{"$3:"},
			want:  map[uint64][]string{7: {"! empty message"}},
		},
		{
			name:  "nick is announced to everyone",
			lines: []string{"/nick alice"},
			want:  everyone("* uid 7 is now alice"),
		},
		{
			name:  "nick then broadcast",
			lines: []string{"/nick alice", "hello"},
			want:  everyone("* uid 7 is now alice", "alice(7): hello"),
		},
		{
			name:  "nick changed twice",
			lines: []string{"/nick alice", "/nick bob"},
			want:  everyone("* uid 7 is now alice", "* alice(7) is now bob"),
		},
		{
			name:  "own nick in another case",
			lines: []string{"/nick alice", "/nick Alice"},
			want:  everyone("* uid 7 is now alice", "* alice(7) is now Alice"),
		},
		{
			name:  "nick with surrounding spaces",
			lines: []string{"/nick  bob "},
			want:  everyone("* uid 7 is now bob"),
		},
		{
			name:  "nick in another script",
			lines: []string{"/nick 小明", "hi"},
			want:  everyone("* uid 7 is now 小明", "小明(7): hi"),
		},
		{
			name:  "nick of 24 bytes",
			lines: []string{"/nick " + strings.Repeat("a", 24)},
			want:  everyone("* uid 7 is now " + strings.Repeat("a", 24)),
		},
		{
			name:  "nick with digits and punctuation",
			lines: []string{"/nick a_b-c.9"},
			want:  everyone("* uid 7 is now a_b-c.9"),
		},
		{
			name:  "nick taken",
			setup: func(tb testing.TB, r *testRoom) { r.send(tb, 3, "/nick alice") },
			lines: []string{"/nick alice"},
			want:  map[uint64][]string{7: {"! nick alice is taken"}},
		},
		{
			name:  "nick taken in another case",
			setup: func(tb testing.TB, r *testRoom) { r.send(tb, 3, "/nick alice") },
			lines: []string{"/nick ALICE"},
			want:  map[uint64][]string{7: {"! nick ALICE is taken"}},
		},
		{
			name:  "nick freed by a rename",
			setup: func(tb testing.TB, r *testRoom) { r.send(tb, 3, "/nick alice", "/nick carol") },
			lines: []string{"/nick alice"},
			want:  everyone("* uid 7 is now alice"),
		},
		{
			name:  "nick freed by leaving",
			setup: func(tb testing.TB, r *testRoom) { r.send(tb, 3, "/nick alice"); r.leave(tb, 3) },
			lines: []string{"/nick alice"},
			want:  without(everyone("* uid 7 is now alice"), 3),
		},
		{
			name:  "nick only digits",
			lines: []string{"/nick 123"},
			want:  map[uint64][]string{7: {invalidNick("123")}},
		},
		{
			name:  "nick with a space inside",
			lines: []string{"/nick al ice"},
			want:  map[uint64][]string{7: {invalidNick("al ice")}},
		},
		{
			name:  "nick with parentheses",
			lines: []string{"/nick al(3)"},
			want:  map[uint64][]string{7: {invalidNick("al(3)")}},
		},
		{
			name:  "nick of 25 bytes",
			lines: []string{"/nick " + strings.Repeat("a", 25)},
			want:  map[uint64][]string{7: {invalidNick(strings.Repeat("a", 25))}},
		},
		{
			name:  "nick with invalid utf-8",
			lines: []string{"/nick a\xffb"},
			want:  map[uint64][]string{7: {invalidNick("a\xffb")}},
		},
		{
			name:  "nick without a name",
			lines: []string{"/nick"},
			want:  map[uint64][]string{7: {"! usage: /nick NAME"}},
		},
		{
			name:  "nick with only spaces",
			lines: []string{"/nick   "},
			want:  map[uint64][]string{7: {"! usage: /nick NAME"}},
		},
		{
			name:  "who lists members by uid then the count",
			lines: []string{"/who"},
			want:  map[uint64][]string{7: who},
		},
		{
			name:  "who with an argument",
			lines: []string{"/who all"},
			want:  map[uint64][]string{7: who},
		},
		{
			name: "who shows nicks and leaves out who left",
			setup: func(tb testing.TB, r *testRoom) {
				r.send(tb, 2, "/nick bob")
				r.send(tb, 7, "/nick alice")
				r.leave(tb, 5)
			},
			lines: []string{"/who"},
			want: map[uint64][]string{7: {
				"* uid 1 (telnet)",
				"* uid 2 bob (websocket)",
				"* uid 3 (telnet)",
				"* uid 4 (websocket)",
				"* uid 6 (websocket)",
				"* uid 7 alice (telnet)",
				"* 6 online",
			}},
		},
		{
			name:      "quit says bye and closes the session",
			lines:     []string{"/quit"},
			want:      map[uint64][]string{7: {"* bye"}},
			wantClose: []CloseReason{ReasonClientQuit},
		},
		{
			name:      "quit with a message",
			lines:     []string{"/quit bye all"},
			want:      map[uint64][]string{7: {"* bye"}},
			wantClose: []CloseReason{ReasonClientQuit},
		},
		{
			name:      "quit in upper case",
			lines:     []string{"/QUIT"},
			want:      map[uint64][]string{7: {"* bye"}},
			wantClose: []CloseReason{ReasonClientQuit},
		},
		{
			name:  "unknown command",
			lines: []string{"/foo"},
			want:  map[uint64][]string{7: {"! unknown command /foo"}},
		},
		{
			name:  "unknown command with an argument",
			lines: []string{"/foo bar baz"},
			want:  map[uint64][]string{7: {"! unknown command /foo"}},
		},
		{
			name:  "commands are case-insensitive",
			lines: []string{"/NICK bob"},
			want: map[uint64][]string{
				1: {"* uid 7 is now bob"}, 2: {"* uid 7 is now bob"}, 3: {"* uid 7 is now bob"},
				4: {"* uid 7 is now bob"}, 5: {"* uid 7 is now bob"}, 6: {"* uid 7 is now bob"},
				7: {"* uid 7 is now bob"},
			},
		},
		{
			name:  "a lone slash",
			lines: []string{"/"},
			want:  map[uint64][]string{7: {"! unknown command /"}},
		},
		{
			name:  "empty line is ignored",
			lines: []string{""},
		},
		{
			name:  "blank line is ignored",
			lines: []string{" \t  "},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newPopulatedRoom(t, 7, JoinOptions{})
			if tt.setup != nil {
				tt.setup(t, r)
				r.drainAll()
			}
			r.send(t, 7, tt.lines...)
			for _, uid := range r.uids() {
				if got := drainLines(t, r.sessions[uid]); !slices.Equal(got, tt.want[uid]) {
					t.Errorf("uid %d: got %q, want %q", uid, got, tt.want[uid])
				}
			}
			for uid, s := range r.sessions {
				want := []CloseReason(nil)
				if uid == 7 {
					want = tt.wantClose
				}
				if got := s.Closes(); !slices.Equal(got, want) {
					t.Errorf("uid %d closes: got %v, want %v", uid, got, want)
				}
			}
		})
	}
}

// TestNickThenPrivate covers what the table can not say with one want per
// member: the nick notice reaches everyone and the private line only two.
func TestNickThenPrivate(t *testing.T) {
	r := newPopulatedRoom(t, 7, JoinOptions{})
	r.send(t, 7, "/nick alice", "$3:hi")
	want := map[uint64][]string{
		3: {"* uid 7 is now alice", "alice(7) (private): hi"},
		7: {"* uid 7 is now alice", "(to uid 3): hi"},
	}
	for _, uid := range r.uids() {
		w, ok := want[uid]
		if !ok {
			w = []string{"* uid 7 is now alice"}
		}
		if got := drainLines(t, r.sessions[uid]); !slices.Equal(got, w) {
			t.Errorf("uid %d: got %q, want %q", uid, got, w)
		}
	}
}

func TestHelp(t *testing.T) {
	tests := []struct {
		name string
		line string
	}{
		{"bare", "/help"},
		{"with an argument", "/help nick"},
		{"with surrounding spaces", "/help  "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newPopulatedRoom(t, 2, JoinOptions{})
			r.send(t, 1, tt.line)
			if got := drainLines(t, r.sessions[2]); got != nil {
				t.Errorf("other member: got %q, want nothing", got)
			}
			evs := r.sessions[1].Drain()
			if len(evs) != 1 || evs[0].Kind != KindInfo {
				t.Fatalf("asker: got %q, want one info event", renderLines(t, evs))
			}
			lines := evs[0].Lines()
			if len(lines) < 2 {
				t.Fatalf("help: got %q, want several lines", lines)
			}
			for _, l := range lines {
				if !strings.HasPrefix(l, "* ") {
					t.Errorf("help line %q: want a \"* \" prefix", l)
				}
			}
			text := strings.Join(lines, "\n")
			for _, cmd := range []string{"$uid:text", "/nick NAME", "/who", "/help", "/quit"} {
				if !strings.Contains(text, cmd) {
					t.Errorf("help: got %q, want it to mention %s", lines, cmd)
				}
			}
			if got := evs[0].Line(); got != text {
				t.Errorf("help Line(): got %q, want the lines joined by \\n: %q", got, text)
			}
		})
	}
}

func TestSayAndRefuse(t *testing.T) {
	tests := []struct {
		name string
		to   uint64
		text string
		want map[uint64][]string
	}{
		{"to everyone", 0, "hi", map[uint64][]string{1: {"uid 1: hi"}, 2: {"uid 1: hi"}, 3: {"uid 1: hi"}}},
		{"to one", 3, "hi", map[uint64][]string{1: {"(to uid 3): hi"}, 3: {"uid 1 (private): hi"}}},
		{"to oneself", 1, "hi", map[uint64][]string{1: {"uid 1 (private): hi"}}},
		{"to nobody", 99, "hi", map[uint64][]string{1: {"! uid 99 is not online"}}},
		{"empty", 0, "", map[uint64][]string{1: {"! empty message"}}},
		{"escapes to everyone", 0, "\x1b[2K\x1b[1G* uid 9 left", map[uint64][]string{
			1: {"uid 1: \ufffd[2K\ufffd[1G* uid 9 left"}, 2: {"uid 1: \ufffd[2K\ufffd[1G* uid 9 left"}, 3: {"uid 1: \ufffd[2K\ufffd[1G* uid 9 left"}}},
		{"line breaks to one", 3, "hi\r\n* uid 1 left\u2028x", map[uint64][]string{
			1: {"(to uid 3): hi  * uid 1 left\ufffdx"}, 3: {"uid 1 (private): hi  * uid 1 left\ufffdx"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newPopulatedRoom(t, 3, JoinOptions{})
			r.hub.Say(r.members[1], tt.to, tt.text)
			for _, uid := range r.uids() {
				if got := drainLines(t, r.sessions[uid]); !slices.Equal(got, tt.want[uid]) {
					t.Errorf("uid %d: got %q, want %q", uid, got, tt.want[uid])
				}
			}
		})
	}

	t.Run("refuse", func(t *testing.T) {
		r := newPopulatedRoom(t, 2, JoinOptions{})
		r.hub.Refuse(r.members[1], "line too long (max 65536 bytes)")
		if got, want := drainLines(t, r.sessions[1]), []string{"! line too long (max 65536 bytes)"}; !slices.Equal(got, want) {
			t.Errorf("refused member: got %q, want %q", got, want)
		}
		if got := drainLines(t, r.sessions[2]); got != nil {
			t.Errorf("other member: got %q, want nothing", got)
		}
	})
}
