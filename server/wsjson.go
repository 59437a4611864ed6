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
//	{"type":"join","uid":7,"nick":"","time":"..."}
//	{"type":"leave","uid":7,"nick":"alice","time":"..."}
//	{"type":"message","from":7,"nick":"alice","to":3,"toNick":"bob","private":true,"text":"hi","time":"..."}
//	{"type":"nick","uid":7,"nick":"alice","oldNick":"","time":"..."}
//	{"type":"who","members":[{"uid":1,"nick":"","protocol":"telnet"}],"online":2,"page":1,"more":0,"time":"..."}
//	{"type":"info","lines":["* commands:","..."],"time":"..."}
//	{"type":"error","text":"uid 3 is not online","time":"..."}
//	{"type":"shutdown","text":"server is shutting down","time":"..."}
//
// A who object lists one page of at most chat.WhoMax members in uid order;
// "online" counts every member, "more" those on later pages ({"text":
// "/who +2"} asks for page 2).
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
//	{"to":3,"text":"hi"}       a message to uid 3 only ("to":0: to everyone),
//	                           taken as it is, never as a command
//
// A frame that is not such an object gets an error object back ("invalid
// JSON: ..."); the connection stays open.

type wsJSONWelcome struct {
	Type string `json:"type"`
	UID  uint64 `json:"uid"`
	Time string `json:"time"`
}

type wsJSONPresence struct { // join, leave
	Type string `json:"type"`
	UID  uint64 `json:"uid"`
	Nick string `json:"nick"`
	Time string `json:"time"`
}

type wsJSONMessage struct {
	Type    string `json:"type"`
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
	Members []wsJSONMember `json:"members"`
	Online  int            `json:"online"`
	Page    int            `json:"page"`
	More    int            `json:"more"`
	Time    string         `json:"time"`
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
	To   *uint64 `json:"to"`
	Text *string `json:"text"`
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
		return wsJSONPresence{Type: typ, UID: ev.UID, Nick: ev.Nick, Time: t}
	case chat.KindMessage:
		return wsJSONMessage{Type: typ, From: ev.UID, Nick: ev.Nick, To: ev.To, ToNick: ev.ToNick,
			Private: ev.Private, Text: ev.Text, Time: t}
	case chat.KindNick:
		return wsJSONNick{Type: typ, UID: ev.UID, Nick: ev.Nick, OldNick: ev.OldNick, Time: t}
	case chat.KindWho:
		ms := make([]wsJSONMember, len(ev.Members))
		for i, m := range ev.Members {
			ms[i] = wsJSONMember{UID: m.UID, Nick: m.Nick, Protocol: m.Protocol}
		}
		return wsJSONWho{Type: typ, Members: ms, Online: ev.Online, Page: max(ev.Page, 1), More: ev.More, Time: t}
	case chat.KindInfo:
		return wsJSONInfo{Type: typ, Lines: ev.Lines(), Time: t}
	case chat.KindShutdown:
		return wsJSONText{Type: typ, Text: "server is shutting down", Time: t}
	}
	return wsJSONText{Type: typ, Text: ev.Text, Time: t}
}

// jsonMessage carries out one client object of fastws.v1.json.
func jsonMessage(s *session, b []byte) {
	if !s.listening() {
		return
	}
	var in wsJSONInput
	if err := json.Unmarshal(b, &in); err != nil {
		s.r.hub.Refuse(s.member(), "invalid JSON: "+err.Error())
		return
	}
	if in.Text == nil {
		s.r.hub.Refuse(s.member(), `invalid JSON: want {"text": "..."} or {"to": uid, "text": "..."}`)
		return
	}
	if in.To == nil {
		s.line([]byte(*in.Text))
		return
	}
	s.say(*in.To, *in.Text)
}
