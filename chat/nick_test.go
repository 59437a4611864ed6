package chat

import (
	"slices"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestCheckNick(t *testing.T) {
	tests := []struct {
		name, in  string
		nick, key string // want; "" = refused with wantErr
		wantErr   error
	}{
		{"latin", "alice", "alice", "alice", nil},
		{"case kept, key folded", "Alice", "Alice", "alice", nil},
		{"fullwidth is folded", "ａｌｉｃｅ", "alice", "alice", nil},
		{"latin alpha looks like a", "ɑlice", "ɑlice", "alice", nil},
		{"dotless i", "alıce", "alıce", "alice", nil},
		{"digit one for l", "a1ice", "a1ice", "alice", nil},
		{"digit zero for o", "b0b", "b0b", "bob", nil},
		{"chinese", "小明", "小明", "小明", nil},
		{"japanese mixes han and kana", "山田たろう", "山田たろう", "山田たろう", nil},
		{"katakana and latin", "アリスA", "アリスA", "アリスa", nil},
		{"korean", "김철수", "김철수", "김철수", nil},
		{"all cyrillic", "алиса", "алиса", "алиса", nil},
		{"all greek", "Αλίκη", "Αλίκη", "αλίκη", nil},
		{"cyrillic with one latin letter", "алиса_2.0-x", "", "", errNickScripts},
		{"cyrillic with digits", "алиса_2.0", "алиса_2.0", "алиса_2.o", nil},
		{"ligature is folded", "ﬁx", "fix", "fix", nil},
		{"surrounding spaces trimmed", " bob ", "bob", "bob", nil},
		{"uid with letters is fine", "uidabc", "uidabc", "uidabc", nil},
		{"uidX fine", "fluid", "fluid", "fluid", nil},

		{"cyrillic a among latin", "аlice", "", "", errNickScripts},
		{"greek alpha among latin", "Αlice", "", "", errNickScripts},
		{"cyrillic o among latin", "bоb", "", "", errNickScripts},
		{"han and cyrillic", "小а", "", "", errNickScripts},
		{"hangul and kana", "김たろう", "", "", errNickScripts},

		{"uid", "uid", "", "", errNickReserved},
		{"UID", "UID", "", "", errNickReserved},
		{"uid and digits", "uid3", "", "", errNickReserved},
		{"uid_ and digits", "uid_12", "", "", errNickReserved},
		{"fullwidth uid", "ｕｉｄ７", "", "", errNickReserved},
		{"dotless uid", "uıd", "", "", errNickReserved},
		{"server", "server", "", "", errNickReserved},
		{"Server", "Server", "", "", errNickReserved},
		{"you", "you", "", "", errNickReserved},
		{"fastws", "fastws", "", "", errNickReserved},

		{"hangul filler", "\u3164", "", "", errNickInvisible},
		{"hangul fillers", "\u3164\u3164\u3164", "", "", errNickInvisible},
		{"choseong filler", "\u115f", "", "", errNickInvisible},
		{"jungseong filler", "\u1160", "", "", errNickInvisible},
		{"halfwidth filler", "\uffa0", "", "", errNickInvisible},
		{"filler after letters", "bob\u3164", "", "", errNickInvisible},
		{"zero-width space", "a\u200bb", "", "", errNickInvisible},
		{"zero-width joiner", "a\u200db", "", "", errNickInvisible},
		{"bidi override", "a\u202eb", "", "", errNickInvisible},
		{"BOM", "\ufeffbob", "", "", errNickInvisible},

		{"empty", "", "", "", errNickChars},
		{"only digits", "123", "", "", errNickChars},
		{"space inside", "a b", "", "", errNickChars},
		{"escape", "a\x1b[2K", "", "", errNickChars},
		{"too long after folding", strings.Repeat("小", 9), "", "", errNickChars},
		{"fullwidth folds to 24", strings.Repeat("ａ", maxNick), strings.Repeat("a", maxNick), strings.Repeat("a", maxNick), nil},
		{"invalid utf-8", "a\xff", "", "", errNickChars},
		{"emoji", "a🙂", "", "", errNickChars},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			nick, key, err := checkNick(tt.in)
			if nick != tt.nick || key != tt.key || err != tt.wantErr {
				t.Errorf("checkNick(%q): got %q, %q, %v; want %q, %q, %v", tt.in, nick, key, err, tt.nick, tt.key, tt.wantErr)
			}
		})
	}
}

// TestLookAlikeNicks: each look-alike of the issue is refused or taken
// beside alice, with the existing error lines. On the original main
// (commit 09416b0) every one of them was accepted.
func TestLookAlikeNicks(t *testing.T) {
	invalid := func(nick, why string) string {
		return "! invalid nick " + strconv.Quote(nick) + " (" + why + ")"
	}
	tests := []struct {
		nick string
		want string // what uid 2 reads
	}{
		{"аlice", invalid("аlice", "letters of one script only")},
		{"Αlice", invalid("Αlice", "letters of one script only")},
		{"ａｌｉｃｅ", "! nick alice is taken"},
		{"ɑlice", "! nick ɑlice is taken"},
		{"ALICE", "! nick ALICE is taken"},
		{"a1ice", "! nick a1ice is taken"},
		{"uid", invalid("uid", "reserved")},
		{"uid1", invalid("uid1", "reserved")},
		{"server", invalid("server", "reserved")},
		{"\u3164", invalid("\u3164", "no visible letter")},
		{"bob!", invalid("bob!", "1-24 letters, digits, _ - ., not only digits")},
	}
	r := newPopulatedRoom(t, 3, JoinOptions{})
	r.send(t, 1, "/nick alice")
	r.drainAll()
	for _, tt := range tests {
		r.send(t, 2, "/nick "+tt.nick)
		if got := drainLines(t, r.sessions[2]); !slices.Equal(got, []string{tt.want}) {
			t.Errorf("/nick %s beside alice: got %q, want %q", tt.nick, got, tt.want)
		}
		if got := drainLines(t, r.sessions[3]); got != nil {
			t.Errorf("/nick %s: others got %q, want nothing", tt.nick, got)
		}
	}

	// Fullwidth is shown folded; the key is freed on a change and on leave.
	r.send(t, 2, "/nick ｂｏｂ")
	if got, want := drainLines(t, r.sessions[3]), []string{"* uid 2 is now bob"}; !slices.Equal(got, want) {
		t.Errorf("/nick ｂｏｂ: got %q, want %q", got, want)
	}
	r.send(t, 1, "/nick carol")
	r.drainAll()
	r.send(t, 3, "/nick ɑlice")
	if got, want := drainLines(t, r.sessions[3]), []string{"* uid 3 is now ɑlice"}; !slices.Equal(got, want) {
		t.Errorf("/nick ɑlice once alice is free: got %q, want %q", got, want)
	}
	r.leave(t, 2)
	r.drainAll()
	r.send(t, 1, "/nick B0B")
	if got, want := drainLines(t, r.sessions[1]), []string{"* carol(1) is now B0B"}; !slices.Equal(got, want) {
		t.Errorf("/nick B0B once bob left: got %q, want %q", got, want)
	}
	// A member may change the case of its own nick.
	r.send(t, 1, "/nick b0b")
	if got, want := drainLines(t, r.sessions[1]), []string{"* B0B(1) is now b0b"}; !slices.Equal(got, want) {
		t.Errorf("/nick b0b from B0B: got %q, want %q", got, want)
	}
}

func FuzzCheckNick(f *testing.F) {
	for _, s := range []string{"alice", "ａｌｉｃｅ", "аlice", "ɑlice", "uid7", "\u3164", "小明", "山田たろう", "a b", "ﬁx", "Ⅻ", "", "123"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		nick, key, err := checkNick(in)
		if err != nil {
			if nick != "" || key != "" {
				t.Fatalf("checkNick(%q): refused (%v) but returned %q, %q", in, err, nick, key)
			}
			return
		}
		if nick == "" || len(nick) > maxNick || !utf8.ValidString(nick) || CleanLine(nick) != nick {
			t.Fatalf("checkNick(%q): nick %q is not a clean name of 1-%d bytes", in, nick, maxNick)
		}
		// The nick as shown is a nick, with the same key.
		nick2, key2, err := checkNick(nick)
		if err != nil || nick2 != nick || key2 != key {
			t.Fatalf("checkNick(%q) = %q, %q; checkNick of that = %q, %q, %v", in, nick, key, nick2, key2, err)
		}
		// The key is a fixed point where it is itself a nick.
		if _, key3, err := checkNick(key); err == nil && key3 != key {
			t.Fatalf("checkNick(%q): key %q has key %q", in, key, key3)
		}
	})
}
