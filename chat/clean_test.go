package chat

import (
	"strings"
	"testing"
	"unicode/utf8"
	"unsafe"
)

const fffd = "\uFFFD"

func TestCleanLine(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		// Kept byte for byte.
		{"empty", "", ""},
		{"ascii", "hello, world! ~ $3:x /who", "hello, world! ~ $3:x /who"},
		{"tab", "a\tb", "a\tb"},
		{"chinese", "你好，世界", "你好，世界"},
		{"cyrillic and dash", "привет — мир", "привет — мир"},
		{"emoji", "🙂👍🏽", "🙂👍🏽"},
		{"emoji zwj family", "👨\u200d👩\u200d👧", "👨\u200d👩\u200d👧"},
		{"emoji zwj with variation selector", "🏳\ufe0f\u200d🌈", "🏳\ufe0f\u200d🌈"},
		{"emoji tag flag", "🏴\U000E0067\U000E0062\U000E0065\U000E006E\U000E0067\U000E007F", "🏴\U000E0067\U000E0062\U000E0065\U000E006E\U000E0067\U000E007F"},
		{"persian zwnj", "می\u200cخواهم", "می\u200cخواهم"},
		{"devanagari zwj", "क्\u200dष", "क्\u200dष"},
		{"arabic letters", "مرحبا", "مرحبا"},
		{"literal U+FFFD", fffd + "x", fffd + "x"},
		{"latin-1 supplement letters", "café ñ ©", "café ñ ©"},
		{"no-break space", "a\u00a0b", "a\u00a0b"},
		{"last BMP and astral", "\uFFFC\U0010FFFD", "\uFFFC\U0010FFFD"},

		// Line breaks become spaces: a message is one line.
		{"LF", "a\nb", "a b"},
		{"CR LF", "a\r\nb", "a  b"},

		// C0, DEL: each becomes U+FFFD.
		{"ESC CSI forging a server line", "\x1b[2K\x1b[1G* uid 1 left", fffd + "[2K" + fffd + "[1G* uid 1 left"},
		{"OSC 52 clipboard", "\x1b]52;c;cm0gLXJmIH4=\x07", fffd + "]52;c;cm0gLXJmIH4=" + fffd},
		{"OSC 0 title", "\x1b]0;pwned\x1b\\", fffd + "]0;pwned" + fffd + "\\"},
		{"BEL", "ding\x07", "ding" + fffd},
		{"BS", "abc\x08\x08\x08xyz", "abc" + fffd + fffd + fffd + "xyz"},
		{"VT and FF", "a\x0bb\x0cc", "a" + fffd + "b" + fffd + "c"},
		{"NUL", "a\x00b", "a" + fffd + "b"},
		{"DEL", "a\x7fb", "a" + fffd + "b"},
		{"controls deep in a long ascii line", "0123456789abc\x1bdefghi\x7fjklmnopqrstuvwxyz\x01", "0123456789abc" + fffd + "defghi" + fffd + "jklmnopqrstuvwxyz" + fffd},
		{"boundary bytes in a long ascii line", " ~ ~ ~ ~\x1f~ ~ ~ ~ ~ ~ ~", " ~ ~ ~ ~" + fffd + "~ ~ ~ ~ ~ ~ ~"},

		// C1 and invalid UTF-8.
		{"C1 CSI as a rune", "a\u009b2Jb", "a" + fffd + "2Jb"},
		{"C1 NEL", "a\u0085b", "a" + fffd + "b"},
		{"C1 first and last", "\u0080\u009f", fffd + fffd},
		{"raw 0x9B (8-bit CSI)", "a\x9b2Jb", "a" + fffd + "2Jb"},
		{"invalid bytes each replaced", "a\xff\xfeb\xc3", "a" + fffd + fffd + "b" + fffd},
		{"latin-1 byte", "caf\xe9", "caf" + fffd},
		{"overlong slash", "\xc0\xaf", fffd + fffd},
		{"surrogate", "\xed\xa0\x80", fffd + fffd + fffd},

		// Bidi controls.
		{"RLO", "abc\u202etxt.exe", "abc" + fffd + "txt.exe"},
		{"LRE RLE PDF LRO", "\u202a\u202b\u202c\u202d", fffd + fffd + fffd + fffd},
		{"isolates", "\u2066a\u2067b\u2068c\u2069", fffd + "a" + fffd + "b" + fffd + "c" + fffd},
		{"LRM RLM ALM", "a\u200eb\u200fc\u061cd", "a" + fffd + "b" + fffd + "c" + fffd + "d"},

		// Separators and invisible format characters.
		{"line and paragraph separators", "a\u2028b\u2029c", "a" + fffd + "b" + fffd + "c"},
		{"zero-width space", "a\u200bb", "a" + fffd + "b"},
		{"word joiner and invisible operators", "\u2060\u2061\u2062\u2063\u2064", strings.Repeat(fffd, 5)},
		{"deprecated format", "\u206a\u206f", fffd + fffd},
		{"BOM", "\ufeffhi", fffd + "hi"},
		{"mongolian vowel separator", "a\u180eb", "a" + fffd + "b"},
		{"interlinear annotation", "\ufff9a\ufffab\ufffb", fffd + "a" + fffd + "b" + fffd},
		{"zwj alone", "\u200d", fffd},
		{"zwj at the start", "\u200dab", fffd + "ab"},
		{"zwj at the end", "ab\u200d", "ab" + fffd},
		{"zwj beside a space", "a \u200db", "a " + fffd + "b"},
		{"two joiners", "a\u200d\u200cb", "a" + fffd + fffd + "b"},
		{"zwj after a control", "\x1b\u200da", fffd + fffd + "a"},
		{"zwj after an invalid byte", "\xff\u200da", fffd + fffd + "a"},
		{"zwnj beside a bidi control", "a\u200c\u202eb", "a" + fffd + fffd + "b"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := CleanLine(tt.in)
			if got != tt.want {
				t.Errorf("CleanLine(%q): got %q, want %q", tt.in, got, tt.want)
			}
			if again := CleanLine(got); again != got {
				t.Errorf("CleanLine(CleanLine(%q)): got %q, want it unchanged %q", tt.in, again, got)
			}
			if clean := tt.in == tt.want; clean != (firstUnclean(tt.in) < 0) {
				t.Errorf("firstUnclean(%q) = %d, want clean = %v", tt.in, firstUnclean(tt.in), clean)
			}
		})
	}
}

// TestCleanLineSharesCleanInput: a clean line is the same string, not a
// copy, and costs no allocation.
func TestCleanLineSharesCleanInput(t *testing.T) {
	for _, s := range []string{"hello world", "你好，世界 🙂", "👨\u200d👩\u200d👧"} {
		if got := CleanLine(s); got != s || unsafe.StringData(got) != unsafe.StringData(s) {
			t.Fatalf("CleanLine(%q) = %q, want the same string", s, got)
		}
		if n := testing.AllocsPerRun(100, func() { _ = CleanLine(s) }); n != 0 {
			t.Errorf("CleanLine(%q): %v allocations, want 0", s, n)
		}
	}
}

// forbidden reports whether r may never appear in a cleaned line, whatever
// its neighbours: an independent statement of CleanLine's rule.
func forbidden(r rune) bool {
	switch {
	case r < 0x20 && r != '\t', r == 0x7f, r >= 0x80 && r <= 0x9f:
		return true
	case r == 0x061c, r == 0x180e, r == 0x200b, r == 0x200e, r == 0x200f,
		r >= 0x2028 && r <= 0x202e, r >= 0x2060 && r <= 0x2064,
		r >= 0x2066 && r <= 0x206f, r == 0xfeff, r >= 0xfff9 && r <= 0xfffb:
		return true
	}
	return false
}

// hasForbidden reports whether s, as a string of runes, breaks the rule:
// invalid UTF-8, a forbidden rune, or a joiner that joins nothing.
func hasForbidden(s string) bool {
	if !utf8.ValidString(s) {
		return true
	}
	rs := []rune(s)
	for i, r := range rs {
		if forbidden(r) {
			return true
		}
		if r == 0x200c || r == 0x200d {
			if i == 0 || i == len(rs)-1 || !visible(rs[i-1], utf8.RuneLen(rs[i-1])) || !visible(rs[i+1], utf8.RuneLen(rs[i+1])) {
				return true
			}
		}
	}
	return false
}

func FuzzCleanLine(f *testing.F) {
	for _, s := range []string{
		"", "hello", "你好", "\x1b[2K\x1b[1G* uid 1 left", "\x1b]52;c;cm0gLXJmIH4=\x07",
		"a\x9bb", "\u202e", "👨\u200d👩\u200d👧", "a\u200d", "\xff\u200da", "a\r\nb", "\x7f", "\uFFFD\u200da",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		out := CleanLine(in)
		if hasForbidden(out) {
			t.Fatalf("CleanLine(%q) = %q: holds a forbidden rune or invalid UTF-8", in, out)
		}
		if strings.ContainsAny(out, "\r\n") {
			t.Fatalf("CleanLine(%q) = %q: holds a line break", in, out)
		}
		if !hasForbidden(in) && !strings.ContainsAny(in, "\r\n") && out != in {
			t.Fatalf("CleanLine(%q) = %q: changed a clean line", in, out)
		}
		if again := CleanLine(out); again != out {
			t.Fatalf("CleanLine not idempotent on %q: %q then %q", in, out, again)
		}
	})
}

var benchSink string

func BenchmarkCleanLine(b *testing.B) {
	for _, bc := range []struct{ name, line string }{
		{"ascii", "the quick brown fox jumps over the lazy dog, 1234567890 times!"},
		{"chinese", "敏捷的棕色狐狸跳过了那只懒狗，一千二百三十四次！"},
		{"emoji", "great job 👍🏽 👨\u200d👩\u200d👧 🎉🎉"},
		{"escape", "\x1b[2K\x1b[1G* uid 1 left and the quick brown fox jumps"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.SetBytes(int64(len(bc.line)))
			b.ReportAllocs()
			for b.Loop() {
				benchSink = CleanLine(bc.line)
			}
		})
	}
}
