package chat

import (
	"errors"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/secure/precis"
)

// maxNick is the longest nick, in bytes.
const maxNick = 24

// Why a nick is refused; the text goes in brackets after the nick on the
// error line.
var (
	errNickChars     = errors.New("1-24 letters, digits, _ - ., not only digits")
	errNickScripts   = errors.New("letters of one script only")
	errNickReserved  = errors.New("reserved")
	errNickInvisible = errors.New("no visible letter")
)

// checkNick decides whether name may be a nick. A nick is shown next to
// its uid everywhere (alice(7)), but people read the name, so names that
// look alike must not belong to two members, and a name must not read as
// a server line. It returns
//
//   - the nick as shown: name through PRECIS's Nickname profile (RFC 8266:
//     NFKC, so fullwidth ａｌｉｃｅ is shown as alice; spaces trimmed; case
//     kept), which must then be 1 to maxNick bytes of letters of any
//     script, digits, '_', '-' and '.', not all digits;
//   - the key two nicks clash on: PRECIS's comparison form (case folded)
//     through a small confusable skeleton (see skeleton), so alice, Alice,
//     ａｌｉｃｅ, ɑlice and a1ice are one nick.
//
// It refuses letters of more than one script (UTS 39's "highly
// restrictive" level: аlice with a Cyrillic а, Αlice with a Greek Alpha;
// Han may go with Hiragana and Katakana, with Hangul, or with Bopomofo,
// and any of those with Latin), the invisible Hangul fillers, and nicks
// whose key is uid, uid followed by digits, server, you or fastws, which
// read as server lines (* uid 7 is now uid3).
func checkNick(name string) (nick, key string, err error) {
	if name == "" || len(name) > 4*maxNick || !utf8.ValidString(name) {
		return "", "", errNickChars // the 4x bound: NFKC may shorten what it reads
	}
	nick, err = precis.Nickname.String(name)
	if err != nil {
		// PRECIS disallows controls, unassigned code points, and the
		// default-ignorable ones (zero-width, fillers).
		if hasInvisible(name) {
			return "", "", errNickInvisible
		}
		return "", "", errNickChars
	}
	if len(nick) > maxNick || nick == "" {
		return "", "", errNickChars
	}
	digits := true
	for _, r := range nick {
		switch {
		case r >= '0' && r <= '9':
		case invisible(r):
			return "", "", errNickInvisible
		case unicode.IsLetter(r) || r == '_' || r == '-' || r == '.':
			digits = false
		default:
			return "", "", errNickChars
		}
	}
	if digits {
		return "", "", errNickChars
	}
	if !oneScript(nick) {
		return "", "", errNickScripts
	}
	folded, err := precis.Nickname.CompareKey(nick)
	if err != nil {
		return "", "", errNickChars // unreachable: nick is PRECIS's own output
	}
	key = skeleton(folded)
	if reserved(folded) || reserved(key) {
		return "", "", errNickReserved
	}
	return nick, key, nil
}

// invisible reports whether r is a letter that draws nothing: the Hangul
// fillers, which PRECIS already refuses, checked again here so that the
// rule does not rest on one library's tables.
func invisible(r rune) bool {
	return r == 0x115F || r == 0x1160 || r == 0x3164 || r == 0xFFA0
}

// hasInvisible reports whether s holds a character that draws nothing: a
// Hangul filler or a zero-width or other format character.
func hasInvisible(s string) bool {
	for _, r := range s {
		if invisible(r) || unicode.Is(unicode.Cf, r) {
			return true
		}
	}
	return false
}

// skeletonMap maps the characters that look like another letter or digit,
// after case folding, to that one. It is a small part of UTS 39's
// confusables: the Latin look-alikes of Latin letters, and digits that
// pass for letters. Look-alikes from other scripts need no entry: the
// one-script rule refuses them (аlice), and a nick made only of Cyrillic
// letters that happens to read as Latin (а, е, о, р, с) stays allowed, as
// in UTS 39's highly restrictive level.
var skeletonMap = map[rune]rune{
	'0': 'o', '1': 'l',
	'ɑ': 'a', // U+0251 LATIN SMALL LETTER ALPHA
	'ɡ': 'g', // U+0261 LATIN SMALL LETTER SCRIPT G
	'ı': 'i', // U+0131 LATIN SMALL LETTER DOTLESS I
	'ɪ': 'i', // U+026A LATIN LETTER SMALL CAPITAL I
	'ɩ': 'i', // U+0269 LATIN SMALL LETTER IOTA
	'ȷ': 'j', // U+0237 LATIN SMALL LETTER DOTLESS J
	'ǀ': 'l', // U+01C0 LATIN LETTER DENTAL CLICK
	'ʟ': 'l', // U+029F LATIN LETTER SMALL CAPITAL L
	'ĸ': 'k', // U+0138 LATIN SMALL LETTER KRA
	'ʏ': 'y', // U+028F LATIN LETTER SMALL CAPITAL Y
	'ʋ': 'u', // U+028B LATIN SMALL LETTER V WITH HOOK
	'ɴ': 'n', // U+0274 LATIN LETTER SMALL CAPITAL N
	'ʀ': 'r', // U+0280 LATIN LETTER SMALL CAPITAL R
	'ꜱ': 's', // U+A731 LATIN LETTER SMALL CAPITAL S
	'ᴏ': 'o', // U+1D0F LATIN LETTER SMALL CAPITAL O
	'ᴄ': 'c', // U+1D04 LATIN LETTER SMALL CAPITAL C
	'ᴠ': 'v', // U+1D20 LATIN LETTER SMALL CAPITAL V
	'ᴡ': 'w', // U+1D21 LATIN LETTER SMALL CAPITAL W
	'ᴢ': 'z', // U+1D22 LATIN LETTER SMALL CAPITAL Z
}

// skeleton returns s with each look-alike in skeletonMap replaced.
func skeleton(s string) string {
	return strings.Map(func(r rune) rune {
		if to, ok := skeletonMap[r]; ok {
			return to
		}
		return r
	}, s)
}

// reserved reports whether a nick with the comparison form key reads as
// the server's own words: "uid", "uid" and digits ("uid3(7): hi" would
// pass for uid 3), "server", "you", "fastws".
func reserved(key string) bool {
	switch key {
	case "uid", "server", "you", "fastws":
		return true
	}
	rest, ok := strings.CutPrefix(key, "uid")
	rest = strings.TrimLeft(rest, "_-.")
	return ok && rest != "" && strings.Trim(rest, "0123456789") == ""
}

// scriptGroups are the sets of scripts one nick may mix (UTS 39's highly
// restrictive level); a nick of one script is always allowed.
var scriptGroups = [][]*unicode.RangeTable{
	{unicode.Latin, unicode.Han, unicode.Hiragana, unicode.Katakana},
	{unicode.Latin, unicode.Han, unicode.Bopomofo},
	{unicode.Latin, unicode.Han, unicode.Hangul},
}

// oneScript reports whether the letters of s are all of one script, or
// all within one of scriptGroups. Common and Inherited characters (digits,
// _ - ., combining marks) go with any script.
func oneScript(s string) bool {
	var first *unicode.RangeTable
	mixed := false
	for _, r := range s {
		if unicode.Is(unicode.Common, r) || unicode.Is(unicode.Inherited, r) {
			continue
		}
		sc := scriptOf(r)
		switch {
		case first == nil:
			first = sc
		case sc != first:
			mixed = true
		}
	}
	if !mixed {
		return true
	}
groups:
	for _, g := range scriptGroups {
		for _, r := range s {
			if unicode.Is(unicode.Common, r) || unicode.Is(unicode.Inherited, r) {
				continue
			}
			if !unicode.In(r, g...) {
				continue groups
			}
		}
		return true
	}
	return false
}

// commonScripts are tried first by scriptOf: most nicks are in these.
var commonScripts = []*unicode.RangeTable{
	unicode.Latin, unicode.Han, unicode.Cyrillic, unicode.Greek, unicode.Arabic,
	unicode.Hiragana, unicode.Katakana, unicode.Hangul, unicode.Hebrew,
}

// scriptOf returns the script table holding r, or nil if r is in none.
func scriptOf(r rune) *unicode.RangeTable {
	for _, t := range commonScripts {
		if unicode.Is(t, r) {
			return t
		}
	}
	for _, t := range unicode.Scripts {
		if unicode.Is(t, r) {
			return t
		}
	}
	return nil
}
