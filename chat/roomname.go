package chat

import (
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/secure/precis"
)

// maxRoomName is the longest room name, in characters.
const maxRoomName = 32

// LobbyName is the name of the room every member is in from the start.
const LobbyName = "lobby"

// checkRoom decides whether name, without its optional "#", may name a
// room. It returns the name as shown and the key two names clash on, or
// ok false.
//
// A room name is 1 to maxRoomName characters: letters of any script,
// digits, '_', '-' and '.'. Room names are read as people read nicks, so
// they go through the nick's machinery: PRECIS's Nickname profile (NFKC:
// fullwidth ｇａｍｅｓ is games), letters of one script (UTS 39's highly
// restrictive level: a Cyrillic а in "gаmes" is refused, not a second
// room beside games), and as key the case-folded form through the
// confusable skeleton, so that Games, GAMES and ɡames are one room (and so
// are room1 and rooml: the skeleton reads 1 as l and 0 as o).
// Pure ASCII names, the usual case, skip PRECIS: for them it is a
// lower-casing.
func checkRoom(name string) (shown, key string, ok bool) {
	if name == "" || len(name) > 4*maxRoomName*utf8.UTFMax || !utf8.ValidString(name) {
		return "", "", false
	}
	if asciiRoom(name) {
		if len(name) > maxRoomName {
			return "", "", false
		}
		return name, skeleton(asciiLower([]byte(name))), true
	}
	shown, err := precis.Nickname.String(name)
	if err != nil || shown == "" || utf8.RuneCountInString(shown) > maxRoomName {
		return "", "", false
	}
	for _, r := range shown {
		switch {
		case r >= '0' && r <= '9', r == '_', r == '-', r == '.':
		case invisible(r):
			return "", "", false
		case unicode.IsLetter(r) || unicode.IsDigit(r):
		default:
			return "", "", false
		}
	}
	if !oneScript(shown) {
		return "", "", false
	}
	folded, err := precis.Nickname.CompareKey(shown)
	if err != nil {
		return "", "", false
	}
	return shown, skeleton(folded), true
}

// asciiRoom reports whether name is made only of ASCII letters, digits,
// '_', '-' and '.'.
func asciiRoom(name string) bool {
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}

// roomArg reads a room name as typed, with its optional "#".
func roomArg(arg []byte) (shown, key string, ok bool) {
	if len(arg) > 0 && arg[0] == '#' {
		arg = arg[1:]
	}
	return checkRoom(string(arg))
}
