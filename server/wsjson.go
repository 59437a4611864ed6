package server

import (
	"bytes"
	"encoding/json"
	"time"

	"github.com/fastws/fastws/chat"
	"github.com/gobwas/ws"
)

// The fastws.v1.json subprotocol carries one JSON object per text frame.
// Its field names are a public interface: keep them.
//
// Server to client, one object per room event; "time" is when the room
// accepted the event, RFC 3339 with nanoseconds, in UTC:
//
//	{"type":"welcome","uid":7,"time":"2025-01-02T03:04:05.123456789Z"}
//	{"type":"join","room":"lobby","uid":7,"nick":"","time":"..."}
//	{"type":"leave","room":"games","uid":7,"nick":"alice","time":"..."}
//	{"type":"message","room":"games","from":7,"nick":"alice","to":0,"toNick":"","private":false,"text":"hi","time":"..."}
//	{"type":"message","from":7,"nick":"alice","to":3,"toNick":"bob","private":true,"text":"hi","time":"..."}
//	{"type":"nick","uid":7,"nick":"alice","oldNick":"","time":"..."}
//	{"type":"who","room":"lobby","members":[{"uid":1,"nick":"","protocol":"telnet"}],"online":2,"page":1,"more":0,"time":"..."}
//	{"type":"entered","room":"games","members":3,"time":"..."}
//	{"type":"rooms","rooms":[{"room":"lobby","members":9},{"room":"games","members":3}],"count":2,"time":"..."}
//	{"type":"info","lines":["* commands:","..."],"time":"..."}
//	{"type":"error","text":"uid 3 is not online","time":"..."}
//	{"type":"shutdown","text":"server is shutting down","time":"..."}
//
// Every room event carries "room", the room's name as first written
// ("lobby" included): a join, a leave, a broadcast message and a who
// listing. A private message, a nick change (which every member hears)
// and the rest carry none. A leave whose "uid" is the reader's own is the
// answer to its own leave. "entered" answers a join (or a join of a room
// one is in, which makes it current): "members" counts the room's
// members. "rooms" lists the busiest rooms, at most chat.RoomsMax,
// busiest first; "count" is the number of rooms.
//
// A who object lists one page of at most chat.WhoMax members in uid order;
// "online" counts every member of the room, "more" those on later pages
// ({"text": "/who +2"} asks for page 2).
//
// A broadcast message has "to":0, "toNick":"" and "private":false. A
// private message goes to its recipient and, with the same fields, to its
// sender (unless they are the same member): the sender's copy is the one
// whose "from" is the reader's own uid. "nick" is "" until /nick sets one.
// A shutdown object is followed by a close frame with 1001 (going away).
//
// Client to server, one object per text frame:
//
//	{"text":"hello"}           a line of the text protocol: a broadcast, or
//	                           a command such as "/nick alice", "/who", "$3:hi"
//	{"to":3,"text":"hi"}       a message to uid 3 only ("to":0: to the current
//	                           room), taken as it is, never as a command
//	{"room":"games","text":"hi"}  a message to the room games, which one must
//	                           be in, taken as it is (a "#" in front is optional)
//	{"join":"games"}           /join games
//	{"leave":"games"}          /leave games ("leave":"": the current room)
//
// "join" and "leave" go alone; "room" and "to" do not go together.
// A frame that is not such an object gets an error object back ("invalid
// JSON: ..."); the connection stays open.

type wsJSONWelcome struct {
	Type string `json:"type"`
	UID  uint64 `json:"uid"`
	Time string `json:"time"`
}

type wsJSONPresence struct { // join, leave
	Type string `json:"type"`
	Room string `json:"room,omitempty"`
	UID  uint64 `json:"uid"`
	Nick string `json:"nick"`
	Time string `json:"time"`
}

type wsJSONMessage struct {
	Type    string `json:"type"`
	Room    string `json:"room,omitempty"`
	From    uint64 `json:"from"`
	Nick    string `json:"nick"`
	To      uint64 `json:"to"`
	ToNick  string `json:"toNick"`
	Private bool   `json:"private"`
	Text    string `json:"text"`
	Time    string `json:"time"`
}

type wsJSONNick struct {
	Type    string `json:"type"`
	UID     uint64 `json:"uid"`
	Nick    string `json:"nick"`
	OldNick string `json:"oldNick"`
	Time    string `json:"time"`
}

type wsJSONMember struct {
	UID      uint64 `json:"uid"`
	Nick     string `json:"nick"`
	Protocol string `json:"protocol"`
}

type wsJSONWho struct {
	Type    string         `json:"type"`
	Room    string         `json:"room,omitempty"`
	Members []wsJSONMember `json:"members"`
	Online  int            `json:"online"`
	Page    int            `json:"page"`
	More    int            `json:"more"`
	Time    string         `json:"time"`
}

type wsJSONEntered struct {
	Type    string `json:"type"`
	Room    string `json:"room"`
	Members int    `json:"members"`
	Time    string `json:"time"`
}

type wsJSONRoom struct {
	Room    string `json:"room"`
	Members int    `json:"members"`
}

type wsJSONRooms struct {
	Type  string       `json:"type"`
	Rooms []wsJSONRoom `json:"rooms"`
	Count int          `json:"count"`
	Time  string       `json:"time"`
}

type wsJSONInfo struct {
	Type  string   `json:"type"`
	Lines []string `json:"lines"`
	Time  string   `json:"time"`
}

type wsJSONText struct { // error, shutdown
	Type string `json:"type"`
	Text string `json:"text"`
	Time string `json:"time"`
}

// wsJSONInput is a client object.
type wsJSONInput struct {
	To    *uint64 `json:"to"`
	Text  *string `json:"text"`
	Room  *string `json:"room"`
	Join  *string `json:"join"`
	Leave *string `json:"leave"`
	Auth  *string `json:"auth"` // {"auth": TOKEN}: see Hub.Auth
}

// appendWSJSON appends ev to b as one text frame holding its JSON object,
// and a close frame after the shutdown notice.
func appendWSJSON(b []byte, ev *chat.Event) []byte {
	b = appendFrame(b, ws.OpText, marshalEvent(ev))
	if ev.Kind == chat.KindShutdown {
		b = append(b, wsCloseGoingAway...)
	}
	return b
}

// marshalEvent returns ev's JSON object. Invalid UTF-8 in texts (a telnet
// member may send any bytes) becomes U+FFFD; HTML characters stay as they
// are.
func marshalEvent(ev *chat.Event) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(jsonEvent(ev)); err != nil {
		// Unreachable: every field is a string, number, bool or slice.
		return []byte(`{"type":"error","text":"internal error"}`)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte{'\n'})
}

// jsonEvent returns the value whose JSON is ev's object.
func jsonEvent(ev *chat.Event) any {
	typ := ev.Kind.String()
	t := ev.Time.UTC().Format(time.RFC3339Nano)
	switch ev.Kind {
	case chat.KindWelcome:
		return wsJSONWelcome{Type: typ, UID: ev.UID, Time: t}
	case chat.KindJoin, chat.KindLeave:
		return wsJSONPresence{Type: typ, Room: roomName(ev), UID: ev.UID, Nick: ev.Nick, Time: t}
	case chat.KindMessage:
		return wsJSONMessage{Type: typ, Room: roomName(ev), From: ev.UID, Nick: ev.Nick, To: ev.To, ToNick: ev.ToNick,
			Private: ev.Private, Text: ev.Text, Time: t}
	case chat.KindNick:
		return wsJSONNick{Type: typ, UID: ev.UID, Nick: ev.Nick, OldNick: ev.OldNick, Time: t}
	case chat.KindWho:
		ms := make([]wsJSONMember, len(ev.Members))
		for i, m := range ev.Members {
			ms[i] = wsJSONMember{UID: m.UID, Nick: m.Nick, Protocol: m.Protocol}
		}
		return wsJSONWho{Type: typ, Room: roomName(ev), Members: ms, Online: ev.Online, Page: max(ev.Page, 1), More: ev.More, Time: t}
	case chat.KindEntered:
		return wsJSONEntered{Type: typ, Room: roomName(ev), Members: ev.Online, Time: t}
	case chat.KindRooms:
		rs := make([]wsJSONRoom, len(ev.Rooms))
		for i, r := range ev.Rooms {
			rs[i] = wsJSONRoom{Room: r.Name, Members: r.Members}
		}
		return wsJSONRooms{Type: typ, Rooms: rs, Count: ev.Online, Time: t}
	case chat.KindInfo:
		return wsJSONInfo{Type: typ, Lines: ev.Lines(), Time: t}
	case chat.KindShutdown:
		return wsJSONText{Type: typ, Text: "server is shutting down", Time: t}
	}
	return wsJSONText{Type: typ, Text: ev.Text, Time: t}
}

// roomName returns the name of ev's room, "" (no "room" field) if it
// has none.
func roomName(ev *chat.Event) string {
	if ev.Room != nil {
		return ev.Room.Name()
	}
	return ""
}

// jsonMessage carries out one client object of fastws.v1.json.
func jsonMessage(s *session, b []byte) {
	if !s.listening() {
		return
	}
	var in wsJSONInput
	if err := json.Unmarshal(b, &in); err != nil {
		s.r.hub.RefuseInput(s.member(), "invalid JSON: "+err.Error(), len(b))
		return
	}
	switch {
	case in.Auth != nil:
		if in.Join != nil || in.Leave != nil || in.Text != nil || in.To != nil || in.Room != nil {
			s.r.hub.RefuseInput(s.member(), `invalid JSON: "auth" goes alone`, len(b))
			return
		}
		// As "/auth TOKEN": rate limited like any line.
		s.line([]byte("/auth " + *in.Auth))
		return
	}
	switch {
	case (in.Join != nil || in.Leave != nil) && (in.Join != nil && in.Leave != nil || in.Text != nil || in.To != nil || in.Room != nil):
		s.r.hub.RefuseInput(s.member(), `invalid JSON: "join" and "leave" go alone`, len(b))
	case in.Join != nil:
		s.msgsIn++
		s.r.hub.JoinRoom(s.member(), *in.Join)
	case in.Leave != nil:
		s.msgsIn++
		s.r.hub.LeaveRoom(s.member(), *in.Leave)
	case in.Text == nil:
		s.r.hub.RefuseInput(s.member(), `invalid JSON: want {"text": "..."} or {"to": uid, "text": "..."}`, len(b))
	case in.Room != nil && in.To != nil:
		s.r.hub.RefuseInput(s.member(), `invalid JSON: "room" and "to" do not go together`, len(b))
	case in.Room != nil:
		s.msgsIn++
		s.r.hub.SayRoom(s.member(), *in.Room, *in.Text)
	case in.To == nil:
		s.line([]byte(*in.Text))
	default:
		s.say(*in.To, *in.Text)
	}
}
