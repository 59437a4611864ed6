package chat

import (
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Kind is what an [Event] announces.
type Kind uint8

// Event kinds. Their String values are the "type" of the JSON encoding.
const (
	KindWelcome  Kind = iota // to a newcomer: UID
	KindJoin                 // to everyone else: UID joined
	KindLeave                // to everyone else: UID left
	KindMessage              // a line from UID to everyone, or to To when Private
	KindNick                 // UID, formerly OldNick, is now Nick
	KindWho                  // the member list, to the asker
	KindInfo                 // lines of help text
	KindError                // a refusal; Text is the message without "! "
	KindShutdown             // the daemon is stopping
	KindBye                  // to a member who typed /quit, before the close
	KindEntered              // to a member who joined Room: Online is its member count
	KindRooms                // the room list, to the asker
	KindAuth                 // to a member who authenticated: Text is "authenticated as NAME (user ID)"
	numKinds
)

var kindNames = [numKinds]string{
	"welcome", "join", "leave", "message", "nick", "who", "info", "error", "shutdown", "bye",
	"entered", "rooms", "auth",
}

// String returns the kind's JSON type name.
func (k Kind) String() string {
	if k < numKinds {
		return kindNames[k]
	}
	return "unknown"
}

// MemberInfo describes one member in a /who listing.
type MemberInfo struct {
	UID      uint64
	Nick     string
	Protocol string
	Node     string // the cluster node that holds it; "" on a single node
}

// RoomInfo describes one room in a /rooms listing.
type RoomInfo struct {
	Name    string // as first written
	Members int
}

// Event is something the room tells one or more sessions. Events are
// immutable once sent and are shared by every recipient.
//
// A private message and its echo are an exception to the sharing: each is
// made for one session, handed to it with Send or Reply, and the hub keeps
// no reference. The transport may give such an event back with
// [Event.Release] once it has encoded it, and the hub's next private
// message reuses it: the message the published cases send round trip after
// round trip then costs no 192-byte allocation (and no garbage to collect).
type Event struct {
	Kind    Kind
	UID     uint64       // the member the event is about: sender, newcomer, leaver
	Nick    string       // UID's nick, "" if none
	OldNick string       // KindNick: the nick before ("" if none)
	To      uint64       // KindMessage: the recipient of a private message
	ToNick  string       // KindMessage: the recipient's nick
	Private bool         // KindMessage: to one member
	Echo    bool         // KindMessage: the sender's copy of a private message
	pooled  bool         // made by privateMessage, not yet released (in the padding after Echo)
	Text    string       // message, error or info text
	Time    time.Time    // when the room accepted it
	Members []MemberInfo // KindWho: one page of members, in uid order
	Online  int          // KindWho: members online
	Page    int          // KindWho: the page listed, from 1
	More    int          // KindWho: members online after this page
	Except  uint64       // Fanout.Broadcast: skip this member
	// Room is the room of a join, leave, broadcast message, /who listing
	// or KindEntered; nil for what is not about a room (a welcome, a
	// private message, a nick change, which every member sees). The
	// lobby's lines read as before rooms: only another room's carry its
	// name.
	Room  *Room
	Rooms []RoomInfo // KindRooms: the busiest rooms, busiest first; Online is the number of rooms

	enc [MaxFormats]atomic.Pointer[[]byte]
}

// pool holds released events; see [Event.Release].
var pool = sync.Pool{New: func() any { return new(Event) }}

// Release gives ev back for reuse. Only the one session a private message
// (or its echo) was sent to may call it, once it no longer needs ev or its
// fields; for any other event it does nothing, so a transport may call it
// on every event it was sent alone.
func (ev *Event) Release() {
	if !ev.pooled {
		return
	}
	ev.pooled = false // privateMessage overwrites the rest
	pool.Put(ev)
}

// MaxFormats bounds the number of wire formats an [Event] caches.
const MaxFormats = 4

// Encoded returns ev's bytes in wire format f, encoding them with enc the
// first time and sharing them afterwards. Concurrent callers may both
// encode; one result wins and both are correct. The result must not be
// modified. f must be below [MaxFormats].
func (ev *Event) Encoded(f int, enc func(*Event) []byte) []byte {
	if p := ev.enc[f].Load(); p != nil {
		return *p
	}
	b := enc(ev)
	if ev.enc[f].CompareAndSwap(nil, &b) {
		return b
	}
	return *ev.enc[f].Load()
}

// appendName appends a member's name as the text protocol writes it to b:
// "uid 7", or "alice(7)" once a nick is set.
func appendName(b []byte, uid uint64, nick string) []byte {
	if nick == "" {
		return strconv.AppendUint(append(b, "uid "...), uid, 10)
	}
	b = strconv.AppendUint(append(append(b, nick...), '('), uid, 10)
	return append(b, ')')
}

// Lines returns ev as lines of the text protocol, without line endings.
func (ev *Event) Lines() []string {
	switch ev.Kind {
	case KindRooms:
		lines := make([]string, 0, len(ev.Rooms)+1)
		for _, r := range ev.Rooms {
			lines = append(lines, "* #"+r.Name+" ("+members(r.Members)+")")
		}
		return append(lines, "* "+strconv.Itoa(ev.Online)+" rooms")
	case KindWho:
		lines := make([]string, 0, len(ev.Members)+2)
		for _, m := range ev.Members {
			line := "* uid " + strconv.FormatUint(m.UID, 10)
			if m.Nick != "" {
				line += " " + m.Nick
			}
			lines = append(lines, line+" ("+m.Protocol+")")
		}
		if r := ev.Room; r != nil && !r.lobby {
			if ev.More > 0 {
				lines = append(lines, "* "+strconv.Itoa(ev.More)+" more: /who #"+r.name+" +"+strconv.Itoa(max(ev.Page, 1)+1))
			}
			return append(lines, "* "+strconv.Itoa(ev.Online)+" in #"+r.name)
		}
		if ev.More > 0 {
			lines = append(lines, "* "+strconv.Itoa(ev.More)+" more: /who +"+strconv.Itoa(max(ev.Page, 1)+1))
		}
		return append(lines, "* "+strconv.Itoa(ev.Online)+" online")
	case KindInfo:
		return slices.Clone(helpLines)
	}
	return []string{ev.Line()}
}

// Multiline reports whether ev is several lines of the text protocol (a
// /who listing, the help text): see [Event.Lines].
func (ev *Event) Multiline() bool {
	return ev.Kind == KindWho || ev.Kind == KindInfo || ev.Kind == KindRooms
}

// members returns "1 member" or "N members".
func members(n int) string {
	if n == 1 {
		return "1 member"
	}
	return strconv.Itoa(n) + " members"
}

// appendRoom appends " #name" for a room other than the lobby.
func appendRoom(b []byte, r *Room) []byte {
	if r == nil || r.lobby {
		return b
	}
	return append(append(b, " #"...), r.name...)
}

// Line returns ev as one line of the text protocol, without a line ending.
// A /who listing or help text is several lines: use [Event.Lines].
func (ev *Event) Line() string { return string(ev.AppendLine(nil)) }

// AppendLine appends [Event.Line] to b, for a single-line event (see
// [Event.Multiline]): a transport writes it straight into its wire buffer,
// with no string built on the way.
func (ev *Event) AppendLine(b []byte) []byte {
	switch ev.Kind {
	case KindWelcome:
		b = appendName(append(b, "Welcome to fastws! You are "...), ev.UID, ev.Nick)
		return append(b, ". Type to talk to everyone, $uid:text to talk to one user, /help for commands."...)
	case KindJoin:
		return appendRoom(append(appendName(append(b, "* "...), ev.UID, ev.Nick), " joined"...), ev.Room)
	case KindLeave:
		return appendRoom(append(appendName(append(b, "* "...), ev.UID, ev.Nick), " left"...), ev.Room)
	case KindEntered:
		b = append(append(append(b, "* you are now in #"...), ev.Room.Name()...), " ("...)
		return append(append(b, members(ev.Online)...), ')')
	case KindMessage:
		switch {
		case !ev.Private:
			if r := ev.Room; r != nil && !r.lobby {
				b = append(append(append(b, "[#"...), r.name...), "] "...)
			}
			if ev.UID == 0 { // from the server (an application): see Hub.SendServer
				b = append(append(b, ev.Nick...), ": "...)
				break
			}
			b = append(appendName(b, ev.UID, ev.Nick), ": "...)
		case ev.Echo:
			b = append(appendName(append(b, "(to "...), ev.To, ev.ToNick), "): "...)
		default:
			b = append(appendName(b, ev.UID, ev.Nick), " (private): "...)
		}
		return append(b, ev.Text...)
	case KindNick:
		b = appendName(append(b, "* "...), ev.UID, ev.OldNick)
		return append(append(b, " is now "...), ev.Nick...)
	case KindError:
		return append(append(b, "! "...), ev.Text...)
	case KindShutdown:
		return append(b, "* server is shutting down"...)
	case KindAuth:
		return append(append(b, "* "...), ev.Text...)
	case KindBye:
		return append(b, "* bye"...)
	case KindWho, KindInfo, KindRooms:
		return append(b, strings.Join(ev.Lines(), "\n")...)
	}
	return append(append(append(b, "* "...), ev.Kind.String()...), " event"...)
}

var helpLines = []string{
	"* commands:",
	"*   text          talk to everyone in your current room",
	"*   $uid:text     talk to uid only, e.g. $3:hi",
	"*   #room text    talk to a room you are in, e.g. #games hi",
	"*   /join ROOM    join a room (created if new) and make it current",
	"*   /leave [ROOM] leave a room (the current one by default)",
	"*   /rooms        list the busiest rooms",
	"*   /nick NAME    set your nick (letters, digits, _ - .; up to 24)",
	"*   /who [ROOM] [+PAGE]  list a room's members, " + strconv.Itoa(WhoMax) + " a page",
	"*   /auth TOKEN   prove who you are with a token from the application",
	"*   /help         this text",
	"*   /quit         leave",
}
