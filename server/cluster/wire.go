package cluster

import (
	"encoding/binary"
	"errors"
	"time"

	"github.com/fastws/fastws/chat"
)

// The wire encoding of what nodes tell each other over NATS. It is not a
// protocol of its own: NATS carries, routes and frames every message, and
// the subject says what it is and from whom (see subjects.go). The payload
// is one type byte, then fields in a fixed order per type: integers as
// unsigned varints (time as a signed one), strings as a varint length and
// the bytes.
//
//	event    'e' kind flags uid to except time nick oldNick toNick text roomKey roomName
//	         flags: 1 private, 2 echo; roomKey "" = no room (a nick change,
//	         or the application's message to everyone); uid 0 = from the
//	         server (nick "server", a public message)
//	joined   'j' uid protocol instance since   (since: unix nanoseconds)
//	left     'l' uid
//	renamed  'n' uid nick nickKey
//	entered  'i' uid roomKey roomName          (the lobby: key "lobby")
//	exited   'x' uid roomKey
//	bye      'b'                               (a graceful stop: all its members left)
//	beat     'h' id members                    (id: random per process, see node)
//	user     'u' uid user                      (the member authenticated as user)
//	forward  'a' op uid user arg               (an API action for node N's members:
//	                                            uid or user, see chat.Forwarded)
//	dump     'd' name id first count {uid nick nickKey protocol user instance since nrooms {roomKey roomName}}
//	         first: 1 in the first part of a dump, which replaces what was known
//
// Decoding never trusts a length: every count and string is checked
// against what is left of the payload, and a string is at most maxString
// bytes (FuzzDecode).
const (
	msgEvent   = 'e'
	msgJoined  = 'j'
	msgLeft    = 'l'
	msgRenamed = 'n'
	msgEntered = 'i'
	msgExited  = 'x'
	msgBye     = 'b'
	msgBeat    = 'h'
	msgDump    = 'd'
	msgUser    = 'u'
	msgForward = 'a'
)

// maxString bounds a string field: a line of text is the longest.
const maxString = 1 << 16

var errMalformed = errors.New("malformed cluster message")

// wireEvent is an event as it crosses NATS: its room by key and name.
type wireEvent struct {
	ev       *chat.Event
	roomKey  string
	roomName string
}

// dumpMember is one member in a dump.
type dumpMember struct {
	uid           uint64
	nick, nickKey string
	protocol      string
	user          string // "" = anonymous
	instance      string
	since         int64 // unix nanoseconds
	rooms         []roomRef
}

type roomRef struct{ key, name string }

func appendUint(b []byte, v uint64) []byte { return binary.AppendUvarint(b, v) }

func appendString(b []byte, s string) []byte {
	return append(binary.AppendUvarint(b, uint64(len(s))), s...)
}

// encodeEvent returns ev as an 'e' message.
func encodeEvent(ev *chat.Event) []byte {
	b := make([]byte, 0, 32+len(ev.Nick)+len(ev.Text))
	var flags byte
	if ev.Private {
		flags |= 1
	}
	if ev.Echo {
		flags |= 2
	}
	b = append(b, msgEvent, byte(ev.Kind), flags)
	b = appendUint(b, ev.UID)
	b = appendUint(b, ev.To)
	b = appendUint(b, ev.Except)
	b = binary.AppendVarint(b, ev.Time.UnixNano())
	b = appendString(b, ev.Nick)
	b = appendString(b, ev.OldNick)
	b = appendString(b, ev.ToNick)
	b = appendString(b, ev.Text)
	var key, name string
	if r := ev.Room; r != nil {
		key, name = r.Key(), r.Name()
	}
	b = appendString(b, key)
	return appendString(b, name)
}

// reader decodes fields; the first error sticks.
type reader struct {
	b   []byte
	err error
}

func (r *reader) byte() byte {
	if r.err != nil || len(r.b) == 0 {
		r.err = errMalformed
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

func (r *reader) uint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.err = errMalformed
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) int() int64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.err = errMalformed
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) string() string {
	n := r.uint()
	if r.err != nil || n > maxString || n > uint64(len(r.b)) {
		r.err = errMalformed
		return ""
	}
	s := string(r.b[:n])
	r.b = r.b[n:]
	return s
}

// count reads a count of items, each at least min bytes long.
func (r *reader) count(minLen int) int {
	n := r.uint()
	if r.err != nil || n > uint64(len(r.b)/minLen) {
		r.err = errMalformed
		return 0
	}
	return int(n)
}

// decodeEvent decodes the body of an 'e' message (after its type byte).
func decodeEvent(r *reader) (wireEvent, error) {
	var w wireEvent
	kind := chat.Kind(r.byte())
	flags := r.byte()
	w.ev = &chat.Event{Kind: kind, Private: flags&1 != 0, Echo: flags&2 != 0}
	w.ev.UID = r.uint()
	w.ev.To = r.uint()
	w.ev.Except = r.uint()
	w.ev.Time = time.Unix(0, r.int())
	w.ev.Nick = r.string()
	w.ev.OldNick = r.string()
	w.ev.ToNick = r.string()
	w.ev.Text = r.string()
	w.roomKey = r.string()
	w.roomName = r.string()
	if r.err != nil {
		return w, r.err
	}
	// Only what a node publishes crosses: a line, a join, a leave, a nick.
	switch kind {
	case chat.KindMessage, chat.KindJoin, chat.KindLeave, chat.KindNick:
	default:
		return w, errMalformed
	}
	if w.ev.Private && w.ev.To == 0 {
		return w, errMalformed
	}
	// Only the server (an application, through the API) speaks without a
	// uid, and only in public messages.
	if w.ev.UID == 0 && (kind != chat.KindMessage || w.ev.Private || w.ev.Nick != chat.ServerNick) {
		return w, errMalformed
	}
	return w, nil
}

func encodeDump(name, id string, first bool, ms []dumpMember) []byte {
	b := appendString(appendString([]byte{msgDump}, name), id)
	f := byte(0)
	if first {
		f = 1
	}
	b = appendUint(append(b, f), uint64(len(ms)))
	for _, m := range ms {
		b = appendUint(b, m.uid)
		b = appendString(b, m.nick)
		b = appendString(b, m.nickKey)
		b = appendString(b, m.protocol)
		b = appendString(b, m.user)
		b = appendString(b, m.instance)
		b = binary.AppendVarint(b, m.since)
		b = appendUint(b, uint64(len(m.rooms)))
		for _, rr := range m.rooms {
			b = appendString(appendString(b, rr.key), rr.name)
		}
	}
	return b
}

// decodeDump decodes the body of a 'd' message after its name.
func decodeDump(r *reader) (id string, first bool, ms []dumpMember, err error) {
	id = r.string()
	first = r.byte() == 1
	n := r.count(8)
	ms = make([]dumpMember, 0, n)
	for range n {
		m := dumpMember{uid: r.uint(), nick: r.string(), nickKey: r.string(), protocol: r.string(), user: r.string(), instance: r.string(), since: r.int()}
		k := r.count(2)
		for range k {
			m.rooms = append(m.rooms, roomRef{key: r.string(), name: r.string()})
		}
		if r.err != nil {
			return "", false, nil, r.err
		}
		if m.uid == 0 || m.user != "" && !chat.ValidUser(m.user) || !validInstance(m.instance) {
			return "", false, nil, errMalformed
		}
		ms = append(ms, m)
	}
	return id, first, ms, r.err
}

// encodeUser returns a 'u' message: uid is now user's.
func encodeUser(uid uint64, user string) []byte {
	return appendString(appendUint([]byte{msgUser}, uid), user)
}

// decodeUser decodes the body of a 'u' message: a uid and a valid user id.
func decodeUser(r *reader) (uint64, string, error) {
	uid, user := r.uint(), r.string()
	if r.err != nil {
		return 0, "", r.err
	}
	if uid == 0 || !chat.ValidUser(user) {
		return 0, "", errMalformed
	}
	return uid, user, nil
}

// encodeForward returns f as an 'a' message.
func encodeForward(f chat.Forwarded) []byte {
	b := appendUint([]byte{msgForward, byte(f.Op)}, f.Target.UID)
	b = appendString(b, f.Target.User)
	return appendString(b, f.Arg)
}

// decodeForward decodes the body of an 'a' message. What it checks is the
// form (a known action, exactly one target); the receiving Hub checks the
// content as it checks API input (chat.Hub.RunForwarded).
func decodeForward(r *reader) (chat.Forwarded, error) {
	f := chat.Forwarded{Op: chat.ForwardOp(r.byte())}
	f.Target.UID = r.uint()
	f.Target.User = r.string()
	f.Arg = r.string()
	if r.err != nil {
		return chat.Forwarded{}, r.err
	}
	if f.Op < chat.ForwardSend || f.Op > chat.ForwardDisconnect || (f.Target.UID != 0) == (f.Target.User != "") || len(r.b) != 0 {
		return chat.Forwarded{}, errMalformed
	}
	return f, nil
}

// encodeJoined returns a 'j' message.
func encodeJoined(uid uint64, protocol, instance string, since int64) []byte {
	b := appendString(appendUint([]byte{msgJoined}, uid), protocol)
	return binary.AppendVarint(appendString(b, instance), since)
}

// validInstance reports whether s may be an instance's name as another
// node reports it: "" or up to 64 bytes of clean text (it reaches the
// API's members as is).
func validInstance(s string) bool {
	return len(s) <= 64 && chat.CleanLine(s) == s
}
