package chat

import (
	"bytes"
	"strconv"
	"unicode"
	"unicode/utf8"
)

// Op is what a client line asks for.
type Op uint8

// Ops of the text protocol.
const (
	OpNone      Op = iota // an empty line: ignored
	OpBroadcast           // text
	OpPrivate             // $<uid>:text
	OpHelp                // /help
	OpNick                // /nick NAME
	OpWho                 // /who
	OpQuit                // /quit
	OpUnknown             // /anything-else
)

// Command is a parsed client line.
type Command struct {
	Op     Op
	To     uint64 // OpPrivate: the recipient; 0 if Target is not a valid uid
	Target string // OpPrivate: the digits as typed
	Text   string // OpBroadcast, OpPrivate: the message; OpNick: the name; OpUnknown: the command word
}

// Parse reads one client line of the text protocol, without its line ending:
//
//	line    = "/" command [ " " arg ] | "$" uid ":" text | text
//	uid     = 1*DIGIT
//
// "$" not followed by digits and ":" is ordinary text ("$5 is cheap" is a
// broadcast). Surrounding spaces are kept in messages and trimmed from
// commands. Parse never fails; it does not validate nicks.
func Parse(line []byte) Command {
	if len(bytes.TrimSpace(line)) == 0 {
		return Command{Op: OpNone}
	}
	switch line[0] {
	case '/':
		word, arg, _ := bytes.Cut(bytes.TrimSpace(line), []byte{' '})
		switch string(word) {
		case "/help":
			return Command{Op: OpHelp}
		case "/who":
			return Command{Op: OpWho}
		case "/quit":
			return Command{Op: OpQuit}
		case "/nick":
			return Command{Op: OpNick, Text: string(bytes.TrimSpace(arg))}
		}
		return Command{Op: OpUnknown, Text: string(word)}
	case '$':
		i := 1
		for i < len(line) && line[i] >= '0' && line[i] <= '9' {
			i++
		}
		if i == 1 || i == len(line) || line[i] != ':' {
			break
		}
		target := string(line[1:i])
		to, err := strconv.ParseUint(target, 10, 64)
		if err != nil {
			to = 0
		}
		return Command{Op: OpPrivate, To: to, Target: target, Text: string(line[i+1:])}
	}
	return Command{Op: OpBroadcast, Text: string(line)}
}

// MaxNick is the longest nick, in bytes.
const MaxNick = 24

// validNick reports whether name may be a nick: 1 to MaxNick bytes of
// letters (any script), digits, '_', '-' and '.', not all digits.
func validNick(name string) bool {
	if name == "" || len(name) > MaxNick || !utf8.ValidString(name) {
		return false
	}
	digits := true
	for _, r := range name {
		switch {
		case r >= '0' && r <= '9':
		case unicode.IsLetter(r) || r == '_' || r == '-' || r == '.':
			digits = false
		default:
			return false
		}
	}
	return !digits
}
