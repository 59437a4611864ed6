package chat

import (
	"bytes"
	"strconv"
	"strings"
	"testing"
	"time"
)

// parsed is what parse returns, compared as one value.
type parsed struct {
	Command
	Target string // the uid's digits as typed
}

// parseLine is parse with its result as a parsed.
func parseLine(line []byte) parsed {
	cmd, target := parse(line)
	return parsed{cmd, string(target)}
}

func TestParse(t *testing.T) {
	tests := []struct {
		name string
		line string
		want parsed
	}{
		// Empty and blank lines.
		{"empty", "", parsed{Command: Command{Op: OpNone}}},
		{"spaces", "   ", parsed{Command: Command{Op: OpNone}}},
		{"tab", "\t", parsed{Command: Command{Op: OpNone}}},
		{"stray carriage return", "\r", parsed{Command: Command{Op: OpNone}}},
		{"no-break space", "\u00a0", parsed{Command: Command{Op: OpNone}}},

		// Broadcasts keep the line exactly.
		{"text", "hello", parsed{Command: Command{Op: OpBroadcast, Text: "hello"}}},
		{"text with surrounding spaces", "  hello  ", parsed{Command: Command{Op: OpBroadcast, Text: "  hello  "}}},
		{"utf-8 text", "你好，世界", parsed{Command: Command{Op: OpBroadcast, Text: "你好，世界"}}},
		{"invalid utf-8", "\xff\xfe\xc3(", parsed{Command: Command{Op: OpBroadcast, Text: "\xff\xfe\xc3("}}},
		{"nul byte", "a\x00b", parsed{Command: Command{Op: OpBroadcast, Text: "a\x00b"}}},
		{"dollar amount", "$5 is cheap", parsed{Command: Command{Op: OpBroadcast, Text: "$5 is cheap"}}},
		{"dollar then space", "$12 hi", parsed{Command: Command{Op: OpBroadcast, Text: "$12 hi"}}},
		{"dollar colon", "$:x", parsed{Command: Command{Op: OpBroadcast, Text: "$:x"}}},
		{"lone dollar", "$", parsed{Command: Command{Op: OpBroadcast, Text: "$"}}},
		{"dollar digits", "$12", parsed{Command: Command{Op: OpBroadcast, Text: "$12"}}},
		{"dollar letters", "$ab:x", parsed{Command: Command{Op: OpBroadcast, Text: "$ab:x"}}},
		{"dollar digits then letter", "$1a:x", parsed{Command: Command{Op: OpBroadcast, Text: "$1a:x"}}},
		{"dollar after a space", " $3:hi", parsed{Command: Command{Op: OpBroadcast, Text: " $3:hi"}}},
		{"dollar fullwidth digit", "$３:hi", parsed{Command: Command{Op: OpBroadcast, Text: "$３:hi"}}},
		{"slash after a space", " /help", parsed{Command: Command{Op: OpBroadcast, Text: " /help"}}},

		// Private messages.
		{"private", "$3:hi", parsed{Command{Op: OpPrivate, To: 3, Text: "hi"}, "3"}},
		{"private keeps spaces", "$12: hi there ", parsed{Command{Op: OpPrivate, To: 12, Text: " hi there "}, "12"}},
		{"private empty text", "$12:", parsed{Command{Op: OpPrivate, To: 12, Text: ""}, "12"}},
		{"private colon in text", "$3:a:b", parsed{Command{Op: OpPrivate, To: 3, Text: "a:b"}, "3"}},
		{"private leading zeros", "$007:hi", parsed{Command{Op: OpPrivate, To: 7, Text: "hi"}, "007"}},
		{"private utf-8", "$3:你好", parsed{Command{Op: OpPrivate, To: 3, Text: "你好"}, "3"}},
		{"private invalid utf-8", "$3:\xff", parsed{Command{Op: OpPrivate, To: 3, Text: "\xff"}, "3"}},
		{"private to 0", "$0:x", parsed{Command{Op: OpPrivate, To: 0, Text: "x"}, "0"}},
		{"private to the largest uid", "$18446744073709551615:x", parsed{Command{Op: OpPrivate, To: 18446744073709551615, Text: "x"}, "18446744073709551615"}},
		{"private to an overflowing uid", "$18446744073709551616:x", parsed{Command{Op: OpPrivate, To: 0, Text: "x"}, "18446744073709551616"}},
		{"private to a huge uid", "$99999999999999999999999:x", parsed{Command{Op: OpPrivate, To: 0, Text: "x"}, "99999999999999999999999"}},

		// Commands.
		{"help", "/help", parsed{Command: Command{Op: OpHelp}}},
		{"help with an argument", "/help nick", parsed{Command: Command{Op: OpHelp}}},
		{"help with trailing spaces", "/help   ", parsed{Command: Command{Op: OpHelp}}},
		{"who", "/who", parsed{Command: Command{Op: OpWho}}},
		{"who with a trailing tab", "/who\t", parsed{Command: Command{Op: OpWho}}},
		{"quit", "/quit", parsed{Command: Command{Op: OpQuit}}},
		{"quit with a message", "/quit bye all", parsed{Command: Command{Op: OpQuit}}},
		{"nick", "/nick bob", parsed{Command: Command{Op: OpNick, Text: "bob"}}},
		{"nick with extra spaces", "/nick  bob ", parsed{Command: Command{Op: OpNick, Text: "bob"}}},
		{"nick with two words", "/nick bob smith", parsed{Command: Command{Op: OpNick, Text: "bob smith"}}},
		{"nick utf-8", "/nick 小明", parsed{Command: Command{Op: OpNick, Text: "小明"}}},
		{"nick invalid utf-8 untouched", "/nick \xffb", parsed{Command: Command{Op: OpNick, Text: "\xffb"}}},
		{"nick without a name", "/nick", parsed{Command: Command{Op: OpNick, Text: ""}}},
		{"nick with only spaces", "/nick    ", parsed{Command: Command{Op: OpNick, Text: ""}}},
		{"nick in upper case", "/NICK bob", parsed{Command: Command{Op: OpNick, Text: "bob"}}},
		{"help in mixed case", "/Help", parsed{Command: Command{Op: OpHelp}}},
		{"a non-ASCII letter folds into no command", "/quİt", parsed{Command: Command{Op: OpUnknown, Text: "/quİt"}}},
		{"command prefix is unknown", "/nickname bob", parsed{Command: Command{Op: OpUnknown, Text: "/nickname"}}},
		{"unknown", "/foo", parsed{Command: Command{Op: OpUnknown, Text: "/foo"}}},
		{"unknown with an argument", "/foo bar baz", parsed{Command: Command{Op: OpUnknown, Text: "/foo"}}},
		{"unknown utf-8", "/你好 x", parsed{Command: Command{Op: OpUnknown, Text: "/你好"}}},
		{"lone slash", "/", parsed{Command: Command{Op: OpUnknown, Text: "/"}}},
		{"double slash", "//help", parsed{Command: Command{Op: OpUnknown, Text: "//help"}}},
		{"slash then space", "/ help", parsed{Command: Command{Op: OpUnknown, Text: "/"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := parseLine([]byte(tt.line)); got != tt.want {
				t.Errorf("Parse(%q): got %+v, want %+v", tt.line, got, tt.want)
			}
		})
	}
}

// TestParseDoesNotAliasInput checks that a Command outlives the read buffer
// it was parsed from, which the transport reuses.
func TestParseDoesNotAliasInput(t *testing.T) {
	tests := []struct {
		name string
		line string
	}{
		{"broadcast", "hello"},
		{"private", "$3:hello"},
		{"nick", "/nick hello"},
		{"unknown", "/hello"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			buf := []byte(tt.line)
			got, _ := parse(buf)
			for i := range buf {
				buf[i] = 'X'
			}
			if want, _ := parse([]byte(tt.line)); got != want {
				t.Errorf("Parse(%q) after its buffer was overwritten: got %+v, want %+v", tt.line, got, want)
			}
		})
	}
}

func TestValidNick(t *testing.T) {
	tests := []struct {
		name string
		nick string
		want bool
	}{
		{"letters", "alice", true},
		{"mixed", "a_b-c.9", true},
		{"other script", "小明", true},
		{"digit first", "9lives", true},
		{"24 bytes", strings.Repeat("a", maxNick), true},
		{"24 bytes of multibyte letters", strings.Repeat("小", 8), true},
		{"empty", "", false},
		{"25 bytes", strings.Repeat("a", maxNick+1), false},
		{"27 bytes of multibyte letters", strings.Repeat("小", 9), false},
		{"only digits", "123", false},
		{"space", "a b", false},
		{"parenthesis", "a(1)", false},
		{"colon", "a:b", false},
		{"dollar", "$a", false},
		{"control", "a\x01", false},
		{"invalid utf-8", "a\xff", false},
		{"emoji", "a🙂", false},
		{"escape", "a\x1b[2Kb", false},
		{"bidi override", "a\u202eb", false},
		{"zero-width space", "a\u200bb", false},
		{"C1", "a\u009bb", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, _, err := checkNick(tt.nick); (err == nil) != tt.want {
				t.Errorf("checkNick(%q): got error %v, want valid = %v", tt.nick, err, tt.want)
			}
		})
	}
}

// parseSeeds are lines worth fuzzing from; every prefix of each is added
// too, the way a line looks when a read splits it.
var parseSeeds = []string{
	"",
	" ",
	"hello",
	"  hello  ",
	"你好，世界",
	"\xff\xfe\xc3",
	"$5 is cheap",
	"$12 hi",
	"$:x",
	"$12:",
	"$3:hi",
	"$007:hi",
	"$0:x",
	"$18446744073709551616:x",
	"$99999999999999999999999:x",
	"/help",
	"/who all",
	"/quit bye",
	"/nick  bob ",
	"/nick 小明",
	"/nick\tbob",
	"/NICK bob",
	"/foo bar",
	"/",
	" /help",
	"/help\t x",
	"a\x00b",
	"\r\n",
	"\u0085/who",
	"/join games",
	"/JOIN #Games",
	"/join ｇａｍｅｓ",
	"/join gаmes",
	"/leave",
	"/leave #games",
	"/rooms",
	"/who games +2",
	"/who +2 #games",
	"/who all",
	"#games hello there",
	"#游戏 你好",
	"#bad! x",
	"# x",
}

func addSeeds(f *testing.F) {
	f.Helper()
	for _, s := range parseSeeds {
		for i := 0; i <= len(s); i++ {
			f.Add([]byte(s[:i]))
		}
	}
}

func FuzzParse(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, line []byte) {
		in := bytes.Clone(line)
		cmd := parseLine(line)
		if !bytes.Equal(line, in) {
			t.Fatalf("Parse(%q) changed its input to %q", in, line)
		}
		blank := len(bytes.TrimSpace(line)) == 0
		if got, want := cmd.Op == OpNone, blank; got != want {
			t.Fatalf("Parse(%q): got %+v, want OpNone exactly for blank lines", line, cmd)
		}
		if cmd.Op != OpPrivate && (cmd.To != 0 || cmd.Target != "") {
			t.Fatalf("Parse(%q): got %+v, want To and Target only for OpPrivate", line, cmd)
		}
		switch cmd.Op {
		case OpNone, OpHelp, OpWho, OpQuit, OpJoin, OpLeave, OpRooms:
			if cmd.Text != "" {
				t.Fatalf("Parse(%q): got %+v, want no Text", line, cmd)
			}
			checkRoomField(t, line, cmd.Command)
			if cmd.Op == OpJoin || cmd.Op == OpLeave {
				word := map[Op]string{OpJoin: "/join ", OpLeave: "/leave "}[cmd.Op]
				if cmd.RoomKey != "" {
					if again := parseLine([]byte(word + "#" + cmd.Room)); again != cmd {
						t.Fatalf("Parse(%q) = %+v rendered back parses to %+v", line, cmd, again)
					}
				}
			}
		case OpRoomSay:
			if cmd.RoomKey == "" || line[0] != '#' {
				t.Fatalf("Parse(%q): got %+v, want a valid room after \"#\"", line, cmd)
			}
			checkRoomField(t, line, cmd.Command)
			if !bytes.HasSuffix(line, []byte(" "+cmd.Text)) {
				t.Fatalf("Parse(%q): got Text %q, want the line's end", line, cmd.Text)
			}
			if again := parseLine([]byte("#" + cmd.Room + " " + cmd.Text)); again != cmd {
				t.Fatalf("Parse(%q) = %+v rendered back parses to %+v", line, cmd, again)
			}
		case OpBroadcast:
			if cmd.Text != string(line) {
				t.Fatalf("Parse(%q): got Text %q, want the line", line, cmd.Text)
			}
			if again := parseLine([]byte(cmd.Text)); again != cmd {
				t.Fatalf("Parse(Parse(%q).Text): got %+v, want %+v", line, again, cmd)
			}
		case OpPrivate:
			if cmd.Target == "" || strings.Trim(cmd.Target, "0123456789") != "" {
				t.Fatalf("Parse(%q): got Target %q, want one or more ASCII digits", line, cmd.Target)
			}
			if n, err := strconv.ParseUint(cmd.Target, 10, 64); (err == nil && n != cmd.To) || (err != nil && cmd.To != 0) {
				t.Fatalf("Parse(%q): got To %d for Target %q", line, cmd.To, cmd.Target)
			}
			rendered := "$" + cmd.Target + ":" + cmd.Text
			if rendered != string(line) {
				t.Fatalf("Parse(%q) rendered back: got %q, want the line", line, rendered)
			}
		case OpNick:
			if cmd.Text != string(bytes.TrimSpace([]byte(cmd.Text))) {
				t.Fatalf("Parse(%q): got nick %q, want it trimmed", line, cmd.Text)
			}
			rendered := "/nick " + cmd.Text
			if again := parseLine([]byte(rendered)); again != cmd {
				t.Fatalf("Parse(%q) = %+v rendered as %q parses to %+v", line, cmd, rendered, again)
			}
		case OpUnknown:
			if !strings.HasPrefix(cmd.Text, "/") || strings.Contains(cmd.Text, " ") {
				t.Fatalf("Parse(%q): got command word %q, want \"/\" and no space", line, cmd.Text)
			}
			if !bytes.HasPrefix(bytes.TrimSpace(line), []byte(cmd.Text)) {
				t.Fatalf("Parse(%q): got command word %q, want a prefix of the trimmed line", line, cmd.Text)
			}
			switch cmd.Text {
			case "/help", "/who", "/quit", "/nick", "/join", "/leave", "/rooms":
				t.Fatalf("Parse(%q): got %+v, want a known command", line, cmd)
			}
		default:
			t.Fatalf("Parse(%q): got Op %d, want a known Op", line, cmd.Op)
		}
		if !blank && line[0] == '/' && cmd.Op == OpBroadcast {
			t.Fatalf("Parse(%q): got a broadcast, want a command", line)
		}
	})
}

// checkRoomField checks a parsed room name: none, a valid one with its
// key, or an invalid one as typed without a key, never holding a space or
// a control.
func checkRoomField(t *testing.T, line []byte, cmd Command) {
	t.Helper()
	switch {
	case cmd.Op == OpRooms || cmd.Op == OpNone || cmd.Op == OpHelp || cmd.Op == OpQuit:
		if cmd.Room != "" || cmd.RoomKey != "" {
			t.Fatalf("Parse(%q): got %+v, want no room", line, cmd)
		}
	case cmd.RoomKey != "":
		shown, key, ok := checkRoom(cmd.Room)
		if !ok || shown != cmd.Room || key != cmd.RoomKey {
			t.Fatalf("Parse(%q): got room %q key %q; checkRoom says %q %q %v", line, cmd.Room, cmd.RoomKey, shown, key, ok)
		}
		if firstUnclean(cmd.Room) >= 0 || strings.ContainsAny(cmd.Room, " #") {
			t.Fatalf("Parse(%q): got room name %q", line, cmd.Room)
		}
	}
}

// FuzzHandle feeds arbitrary bytes from a member to a room of three and
// checks that nothing panics, that every event renders, and that no rendered
// line holds a line break the client did not send.
func FuzzHandle(f *testing.F) {
	addSeeds(f)
	f.Add([]byte("hi\n/nick alice\n$2:x\n/who\n/help\n/quit"))
	f.Add([]byte("/nick bob\n/nick BOB\n$1:self"))
	f.Fuzz(func(t *testing.T, data []byte) {
		r := newTestRoom(t)
		r.join(t, JoinOptions{Protocol: "telnet", Rate: 5, Burst: 4})
		r.join(t, JoinOptions{Protocol: "telnet"})
		r.join(t, JoinOptions{Protocol: "telnet"})

		// As a transport would: one Handle per line, then the raw bytes.
		for line := range bytes.SplitSeq(data, []byte("\n")) {
			r.hub.Handle(r.members[1], bytes.TrimSuffix(line, []byte("\r")))
			r.clock.Advance(100 * time.Millisecond)
		}
		r.hub.Handle(r.members[2], data)
		r.hub.Say(r.members[3], 1, string(data))
		r.hub.Say(r.members[3], 0, string(data))

		hasBreak := bytes.ContainsAny(data, "\n")
		for uid, s := range r.sessions {
			for _, ev := range s.Events() {
				if ev.Kind >= numKinds {
					t.Fatalf("uid %d: got an event of kind %d", uid, ev.Kind)
				}
				lines := ev.Lines()
				if len(lines) == 0 {
					t.Fatalf("uid %d: %v event renders to no lines", uid, ev.Kind)
				}
				for _, l := range lines {
					if strings.Contains(l, "\n") && !hasBreak {
						t.Fatalf("uid %d: %v line %q holds a line break; input %q had none", uid, ev.Kind, l, data)
					}
				}
				for _, l := range lines {
					if i := firstUnclean(strings.ReplaceAll(l, "\n", " ")); i >= 0 {
						t.Fatalf("uid %d: %v line %q holds %q at %d", uid, ev.Kind, l, l[i:], i)
					}
				}
				if ev.Kind == KindMessage {
					var prefix []byte
					switch {
					case ev.Echo:
						prefix = appendName([]byte("(to "), ev.To, ev.ToNick)
					default:
						prefix = appendName(nil, ev.UID, ev.Nick)
					}
					if !strings.HasPrefix(ev.Line(), string(prefix)) {
						t.Fatalf("uid %d: message line %q does not start with %q", uid, ev.Line(), prefix)
					}
				}
			}
		}
		if got, want := r.hub.Stats().Members, 3; got != want {
			t.Fatalf("members after handling %q: got %d, want %d", data, got, want)
		}
	})
}

// TestParseCommandAllocs keeps case-insensitive commands free: folding a
// command word costs no allocation.
func TestParseCommandAllocs(t *testing.T) {
	line := []byte("/WHO +2")
	if n := testing.AllocsPerRun(100, func() { parse(line) }); n != 0 {
		t.Errorf("parse(%q): %v allocations, want 0", line, n)
	}
}
