package chat

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// CleanLine returns s as it may enter the room. A line from one member is
// printed by every other member's terminal, so nothing in it may be an
// instruction to a terminal or a renderer: an ESC sequence can erase the
// sender's name and print a forged server line, OSC 52 writes the reader's
// clipboard, a bidi override reorders what follows it. The room cleans a
// line once, for every transport, where it enters (Hub.Handle, Hub.Say);
// what CleanLine returns carries
//
//   - no C0 control but TAB (CR and LF become a space: a message is one
//     line, and a websocket frame or JSON text holding line breaks must not
//     forge lines for telnet readers; every other C0 byte becomes U+FFFD),
//   - no DEL, no C1 control (U+0080-U+009F), no invalid UTF-8 (each bad byte
//     becomes U+FFFD: a terminal in 8-bit mode reads a raw 0x9B as CSI),
//   - no bidi control (U+061C, U+200E, U+200F, U+202A-U+202E,
//     U+2066-U+2069), no line or paragraph separator (U+2028, U+2029),
//   - no invisible format character: U+180E, U+200B, U+2060-U+2064,
//     U+206A-U+206F, U+FEFF, U+FFF9-U+FFFB; and ZWNJ (U+200C) and ZWJ
//     (U+200D) only between two visible characters (see joined).
//
// Each such character becomes U+FFFD (or the space above) rather than a
// visible escape: it is one rune whatever the input, so it can not be used
// to lengthen a line, and it reads as "something was here". Every other
// rune, Chinese and emoji included, is kept byte for byte.
//
// A line with nothing to replace, which is nearly every line, is returned
// as it is, with no allocation. It is safe for concurrent use.
func CleanLine(s string) string {
	i := firstUnclean(s)
	if i < 0 {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 2*(len(s)-i)) // a bad byte (1) may become U+FFFD (3)
	b.WriteString(s[:i])
	for i < len(s) {
		n, a := classify(s, i)
		switch a {
		case keep:
			b.WriteString(s[i : i+n])
		case toSpace:
			b.WriteByte(' ')
		default:
			b.WriteString(replacement)
		}
		i += n
	}
	return b.String()
}

// replacement is U+FFFD REPLACEMENT CHARACTER, what a forbidden character
// becomes.
const replacement = "\uFFFD"

// firstUnclean returns the index of the first byte of s that CleanLine
// changes, or -1 if there is none.
func firstUnclean(s string) int {
	// Printable ASCII, nearly every line, is clean: one pass, eight bytes
	// at a time, and no UTF-8 validation. Anything else is scanned again
	// from the first byte that is not.
	i := 0
	for i+8 <= len(s) && printableASCII8(s[i:i+8]) {
		i += 8
	}
	for i < len(s) && s[i] >= ' ' && s[i] < 0x7f {
		i++
	}
	if i == len(s) {
		return -1
	}
	if !utf8.ValidString(s[i:]) { // fast: eight ASCII bytes at a time
		return firstUncleanRunes(s, i)
	}
	// In valid UTF-8, every rune CleanLine changes starts with a byte
	// marked in suspect, so the scan needs no decoding: a rune whose lead
	// byte is not marked is stepped over by the length its lead byte
	// gives (a CJK or emoji line is one table look-up a rune).
	for i < len(s) {
		c := s[i]
		switch {
		case c < utf8.RuneSelf && i+8 <= len(s) && printableASCII8(s[i:i+8]):
			i += 8
		case suspect[c]:
			n, a := classify(s, i)
			if a != keep {
				return i
			}
			i += n
		case c < 0xE0:
			i += 1 + int(c>>7) // ASCII, or the lead byte of two
		case c < 0xF0:
			i += 3
		default:
			i += 4
		}
	}
	return -1
}

// printableASCII8 reports whether the 8 bytes of s are all printable
// ASCII (0x20-0x7E), testing them at once: most lines are mostly that.
func printableASCII8(s string) bool {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	x := uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24 |
		uint64(s[4])<<32 | uint64(s[5])<<40 | uint64(s[6])<<48 | uint64(s[7])<<56
	if x&highs != 0 {
		return false // non-ASCII
	}
	del := x ^ 0x7f*ones
	// With no high bit set, (v - n*ones) &^ v & highs is non-zero exactly
	// when some byte of v is below n.
	return ((x-0x20*ones)&^x|(del-ones)&^del)&highs == 0
}

// firstUncleanRunes is firstUnclean for any s, valid UTF-8 or not, from
// s[i], the start of a rune.
func firstUncleanRunes(s string, i int) int {
	for i < len(s) {
		n, a := classify(s, i)
		if a != keep {
			return i
		}
		i += n
	}
	return -1
}

// suspect marks the bytes that may start a rune CleanLine changes: C0 but
// TAB, DEL, and the lead bytes of U+0080-U+00BF (C1), U+0600-U+063F
// (U+061C), U+1000-U+1FFF (U+180E), U+2000-U+2FFF and U+F000-U+FFFF.
var suspect = func() (t [256]bool) {
	for c := range utf8.RuneSelf {
		t[c] = (c < ' ' && c != '\t') || c == 0x7f
	}
	for _, c := range []byte{0xC2, 0xD8, 0xE1, 0xE2, 0xEF} {
		t[c] = true
	}
	return t
}()

// action is what CleanLine does with one rune.
type action uint8

const (
	keep    action = iota
	toSpace        // CR, LF
	toFFFD
)

// classify returns the length of the rune at s[i] and what CleanLine does
// with it. It depends on s[i]'s neighbours only as they are in s, not as
// CleanLine rewrites them, so firstUnclean and CleanLine agree.
func classify(s string, i int) (int, action) {
	c := s[i]
	if c < utf8.RuneSelf {
		switch {
		case c == '\r' || c == '\n':
			return 1, toSpace
		case suspect[c]: // C0 but TAB, DEL
			return 1, toFFFD
		}
		return 1, keep
	}
	r, n := utf8.DecodeRuneInString(s[i:])
	switch {
	case r == utf8.RuneError && n == 1:
		return 1, toFFFD // invalid UTF-8; a literal U+FFFD (n = 3) is kept
	case r < 0xA0:
		return n, toFFFD // C1
	case r < 0x061C, r > 0x206F && r < 0xFEFF, r > 0xFFFB:
		return n, keep // nearly all text, CJK and emoji included
	case r == 0x200C || r == 0x200D:
		if joined(s, i, n) {
			return n, keep
		}
		return n, toFFFD
	case r == 0x061C, r == 0x180E, r == 0x200B,
		r >= 0x200E && r <= 0x200F,
		r >= 0x2028 && r <= 0x202E,
		r >= 0x2060 && r <= 0x2064,
		r >= 0x2066 && r <= 0x206F,
		r == 0xFEFF, r >= 0xFFF9 && r <= 0xFFFB:
		return n, toFFFD
	}
	return n, keep
}

// joined reports whether the joiner s[i:i+n] (ZWNJ or ZWJ) stands between
// two visible characters. There it shapes what it joins, as in emoji
// sequences (👩‍💻, 🏳️‍🌈), Persian and Indic scripts;
// anywhere else (at an end, beside a space, a control or another joiner)
// it only hides something, and is replaced.
func joined(s string, i, n int) bool {
	return visible(utf8.DecodeLastRuneInString(s[:i])) && visible(utf8.DecodeRuneInString(s[i+n:]))
}

// visible reports whether the rune r, n bytes long, draws something: a
// letter, mark (a variation selector, as in 🏳️‍🌈), number or symbol.
func visible(r rune, n int) bool {
	if n == 0 || (r == utf8.RuneError && n == 1) {
		return false
	}
	return unicode.In(r, unicode.S, unicode.L, unicode.M, unicode.N) // emoji first
}

// blank reports whether s is empty or white space only, as
// strings.TrimSpace(s) == "" does; a line that starts with a visible
// ASCII character, nearly every line, costs one byte's look.
func blank(s string) bool {
	if s != "" && visibleASCII(s[0]) {
		return false
	}
	return strings.TrimSpace(s) == ""
}

// visibleASCII reports whether c is ASCII and neither a space nor a
// control character: no line starting with it is blank.
func visibleASCII(c byte) bool { return c > ' ' && c < 0x7f }
