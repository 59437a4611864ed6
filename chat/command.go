package chat

import (
	"bytes"
	"math"
	"strconv"
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
	OpWho                 // /who [+PAGE]
	OpQuit                // /quit
	OpUnknown             // /anything-else
	OpJoin                // /join NAME
	OpLeave               // /leave [NAME]
	OpRooms               // /rooms
	OpRoomSay             // #NAME text
	OpAuth                // /auth TOKEN
)

// Command is a parsed client line.
type Command struct {
	Op   Op
	To   uint64 // OpPrivate: the recipient; 0 if the digits typed are not a valid uid
	Text string // OpBroadcast, OpPrivate: the message; OpNick: the name; OpUnknown: the command word
	Page int    // OpWho: the page asked for with +PAGE; 0 = the first; -1 = not a page number
	// Room is the room named by OpJoin, OpLeave, OpWho and OpRoomSay, as
	// shown ("" = none named: the current room); RoomKey is its key (see
	// checkRoom). A name that is not a valid room name is kept in Room as
	// typed, with RoomKey "": the room answers "! bad room name".
	Room, RoomKey string
}

// parse reads one client line of the text protocol, without its line
// ending:
//
//	line     = "/" command [ " " arg ] | "$" uid ":" text | "#" room " " text | text
//	uid      = 1*DIGIT
//	room     = 1*32( letter / digit / "_" / "-" / "." )  ; see checkRoom
//	join-arg = [ "#" ] room                ; /join, /leave
//	who-arg  = [ [ "#" ] room ] [ " " page ] | "all" [ " " page ]
//	page     = "+" 1*DIGIT                 ; a page of /who (a room name can not start with "+")
//
// "$" not followed by digits and ":" is ordinary text ("$5 is cheap" is a
// broadcast), and so is "#" not followed by a valid room name and a space
// ("# notes", "#!" and "#games" alone are text). "/who all" lists the
// lobby (everyone online), as before rooms; "/who #all" is the room all. Surrounding spaces are kept in messages and trimmed from
// commands. parse never fails; it does not validate nicks. It validates
// room names: a name enters the room only through here (or checkRoom).
//
// For OpPrivate it also returns the uid's digits as typed, as a part of
// line: the room needs them only for an error line, so a private message
// costs no copy of them.
func parse(line []byte) (cmd Command, target []byte) {
	if (len(line) == 0 || !visibleASCII(line[0])) && len(bytes.TrimSpace(line)) == 0 {
		return Command{Op: OpNone}, nil
	}
	switch line[0] {
	case '/':
		word, arg, _ := bytes.Cut(bytes.TrimSpace(line), []byte{' '})
		// Commands are case-insensitive (/NICK, /Who); ASCII only, so
		// that no other script's case folds into a command.
		var lower [16]byte // longer than any command: no allocation per line
		switch string(appendASCIILower(lower[:0], word)) {
		case "/help":
			return Command{Op: OpHelp}, nil
		case "/who":
			return whoCommand(bytes.TrimSpace(arg)), nil
		case "/quit":
			return Command{Op: OpQuit}, nil
		case "/nick":
			return Command{Op: OpNick, Text: string(bytes.TrimSpace(arg))}, nil
		case "/join":
			return roomCommand(OpJoin, bytes.TrimSpace(arg)), nil
		case "/leave":
			return roomCommand(OpLeave, bytes.TrimSpace(arg)), nil
		case "/rooms":
			return Command{Op: OpRooms}, nil
		case "/auth":
			return Command{Op: OpAuth, Text: string(bytes.TrimSpace(arg))}, nil
		}
		return Command{Op: OpUnknown, Text: string(word)}, nil
	case '$':
		// The uid is read as its digits are scanned; one past
		// MaxUint64 is 0, as a uid no one has.
		i, to, over := 1, uint64(0), false
		for ; i < len(line) && line[i] >= '0' && line[i] <= '9'; i++ {
			d := uint64(line[i] - '0')
			over = over || to > (math.MaxUint64-d)/10
			to = to*10 + d
		}
		if i == 1 || i == len(line) || line[i] != ':' {
			break
		}
		if over {
			to = 0
		}
		return Command{Op: OpPrivate, To: to, Text: string(line[i+1:])}, line[1:i]
	case '#':
		name, text, found := bytes.Cut(line[1:], []byte{' '})
		if !found {
			break
		}
		if shown, key, ok := checkRoom(string(name)); ok {
			return Command{Op: OpRoomSay, Text: string(text), Room: shown, RoomKey: key}, nil
		}
	}
	return Command{Op: OpBroadcast, Text: string(line)}, nil
}

// roomCommand returns op for the room named by arg ("" = none named).
func roomCommand(op Op, arg []byte) Command {
	if len(arg) == 0 {
		return Command{Op: op}
	}
	shown, key, ok := roomArg(arg)
	if !ok {
		return Command{Op: op, Room: string(arg)}
	}
	return Command{Op: op, Room: shown, RoomKey: key}
}

// whoCommand reads the arguments of /who: a room name, a page, both (in
// either order) or neither. "all" is the lobby, where everyone online is
// listed, as before rooms.
func whoCommand(arg []byte) Command {
	cmd := Command{Op: OpWho}
	named, paged := false, false
	for f := range bytes.FieldsSeq(arg) {
		switch {
		case f[0] == '+' && !paged:
			cmd.Page, paged = whoPage(f), true
		case f[0] == '+' || named:
			return Command{Op: OpWho, Page: -1}
		case string(f) == "all":
			named = true
			cmd.Room, cmd.RoomKey = LobbyName, LobbyName
		default:
			named = true
			rc := roomCommand(OpWho, f)
			cmd.Room, cmd.RoomKey = rc.Room, rc.RoomKey
		}
	}
	return cmd
}

// whoPage reads the argument of /who: "+N" is page N; any other argument
// is ignored (page 0, the first), as before pages existed.
func whoPage(arg []byte) int {
	if len(arg) == 0 || arg[0] != '+' {
		return 0
	}
	n, err := strconv.Atoi(string(arg[1:]))
	if err != nil || n < 1 || arg[1] == '+' || arg[1] == '-' {
		return -1
	}
	return min(n, maxWhoPage)
}

// maxWhoPage is past the last page of any room (100 million members), and
// small enough that (page-1)*WhoMax never overflows.
const maxWhoPage = 1 << 20

// asciiLower returns b with its ASCII letters in lower case, as a string.
func asciiLower(b []byte) string { return string(appendASCIILower(nil, b)) }

// appendASCIILower appends b to dst with its ASCII letters in lower case.
func appendASCIILower(dst, b []byte) []byte {
	for _, c := range b {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		dst = append(dst, c)
	}
	return dst
}
