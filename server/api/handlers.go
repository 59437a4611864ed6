package api

import (
	"net/http"
	"strings"
	"time"

	"github.com/fastws/fastws/chat"
)

// sendRequest is the body of POST /api/v1/send.
type sendRequest struct {
	Text *string `json:"text"`
	Room *string `json:"room"`
	UID  *uint64 `json:"uid"`
	User *string `json:"user"`
}

// roomRequest is the body of POST /api/v1/join and /api/v1/leave.
type roomRequest struct {
	Room *string `json:"room"`
	UID  *uint64 `json:"uid"`
	User *string `json:"user"`
}

// disconnectRequest is the body of POST /api/v1/disconnect.
type disconnectRequest struct {
	UID    *uint64 `json:"uid"`
	User   *string `json:"user"`
	Reason string  `json:"reason"`
}

// maxReason is the longest disconnect reason, in bytes.
const maxReason = 256

// who checks a uid-or-user pair: exactly one, and well-formed.
func who(uid *uint64, user *string) (chat.Target, *requestError) {
	switch {
	case uid != nil && user != nil:
		return chat.Target{}, badField("uid", `give "uid" or "user", not both`)
	case uid != nil:
		if *uid == 0 {
			return chat.Target{}, badField("uid", "uid must be positive")
		}
		return chat.Target{UID: *uid}, nil
	case user != nil:
		if !chat.ValidUser(*user) {
			// As a token's sub: no user could hold any other id.
			return chat.Target{}, badField("user", "user must be 1-64 bytes of text, without control characters or spaces at its ends")
		}
		return chat.Target{User: *user}, nil
	}
	return chat.Target{}, badField("uid", `"uid" or "user" is required`)
}

// send: POST /api/v1/send {"text": "...", "room" | "uid" | "user": ...}
// -> {"delivered": N}, N the members it is for.
func (s *Server) send(w http.ResponseWriter, r *http.Request) {
	var req sendRequest
	if e := decode(r, w, &req); e != nil {
		writeError(w, e.code, e.msg, e.field)
		return
	}
	t, e := s.sendTarget(&req)
	if e != nil {
		writeError(w, e.code, e.msg, e.field)
		return
	}
	writeJSON(w, http.StatusOK, map[string]int{"delivered": s.hub.SendServer(t, *req.Text)})
}

// sendTarget validates a send request and returns whom it is for.
func (s *Server) sendTarget(req *sendRequest) (chat.Target, *requestError) {
	switch {
	case req.Text == nil:
		return chat.Target{}, badField("text", `"text" is required`)
	case strings.TrimSpace(*req.Text) == "":
		return chat.Target{}, badField("text", "text is empty")
	case len(*req.Text) > s.maxText():
		return chat.Target{}, badField("text", "text is over maxPackageSize ("+itoa(s.maxText())+" bytes)")
	}
	n := 0
	for _, set := range []bool{req.Room != nil, req.UID != nil, req.User != nil} {
		if set {
			n++
		}
	}
	if n > 1 {
		return chat.Target{}, badField("room", `give at most one of "room", "uid", "user"`)
	}
	switch {
	case req.Room != nil:
		if !chat.ValidRoom(*req.Room) {
			return chat.Target{}, badField("room", "bad room name")
		}
		return chat.Target{Room: *req.Room}, nil
	case req.UID != nil, req.User != nil:
		return who(req.UID, req.User)
	}
	return chat.Target{}, nil
}

// join: POST /api/v1/join {"room": "...", "uid" | "user": ...} ->
// {"members": N}, the connections told to join.
func (s *Server) join(w http.ResponseWriter, r *http.Request) { s.roomAction(w, r, true) }

// leave: POST /api/v1/leave, as join.
func (s *Server) leave(w http.ResponseWriter, r *http.Request) { s.roomAction(w, r, false) }

func (s *Server) roomAction(w http.ResponseWriter, r *http.Request, join bool) {
	var req roomRequest
	if e := decode(r, w, &req); e != nil {
		writeError(w, e.code, e.msg, e.field)
		return
	}
	if req.Room == nil {
		writeError(w, http.StatusBadRequest, `"room" is required`, "room")
		return
	}
	if !chat.ValidRoom(*req.Room) {
		writeError(w, http.StatusBadRequest, "bad room name", "room")
		return
	}
	t, e := who(req.UID, req.User)
	if e != nil {
		writeError(w, e.code, e.msg, e.field)
		return
	}
	var n int
	if join {
		n = s.hub.JoinFor(t, *req.Room)
	} else {
		n = s.hub.LeaveFor(t, *req.Room)
	}
	writeJSON(w, http.StatusOK, map[string]int{"members": n})
}

// disconnect: POST /api/v1/disconnect {"uid" | "user": ..., "reason":
// "..."} -> {"disconnected": N}.
func (s *Server) disconnect(w http.ResponseWriter, r *http.Request) {
	var req disconnectRequest
	if e := decode(r, w, &req); e != nil {
		writeError(w, e.code, e.msg, e.field)
		return
	}
	if len(req.Reason) > maxReason {
		writeError(w, http.StatusBadRequest, "reason is over "+itoa(maxReason)+" bytes", "reason")
		return
	}
	t, e := who(req.UID, req.User)
	if e != nil {
		writeError(w, e.code, e.msg, e.field)
		return
	}
	writeJSON(w, http.StatusOK, map[string]int{"disconnected": s.hub.Disconnect(t, req.Reason)})
}

// online: GET /api/v1/online -> {"members": N, "users": N, "rooms": N}.
func (s *Server) online(w http.ResponseWriter, _ *http.Request) {
	o := s.hub.Online()
	writeJSON(w, http.StatusOK, map[string]int{"members": o.Members, "users": o.Users, "rooms": o.Rooms})
}

type roomJSON struct {
	Room    string `json:"room"`
	Members int    `json:"members"`
}

// rooms: GET /api/v1/rooms -> {"rooms": [{"room": "lobby", "members": N}, ...]}.
func (s *Server) rooms(w http.ResponseWriter, _ *http.Request) {
	rs := s.hub.RoomList()
	out := make([]roomJSON, len(rs))
	for i, r := range rs {
		out[i] = roomJSON{Room: r.Name, Members: r.Members}
	}
	writeJSON(w, http.StatusOK, map[string]any{"rooms": out})
}

type memberJSON struct {
	UID      uint64 `json:"uid"`
	Nick     string `json:"nick"`
	User     string `json:"user"`
	Protocol string `json:"protocol"`
	Instance string `json:"instance"`
	Node     string `json:"node"`
	Since    string `json:"since"` // RFC 3339, UTC
}

// maxMembers is the most members one /members answer lists.
const maxMembers = 10000

// members: GET /api/v1/members?room=NAME -> {"room": NAME, "members":
// [{"uid", "nick", "user", "protocol", "instance", "node", "since"}],
// "truncated": bool}, at most maxMembers, in uid order.
func (s *Server) members(w http.ResponseWriter, r *http.Request) {
	room := r.URL.Query().Get("room")
	if room == "" {
		writeError(w, http.StatusBadRequest, `query parameter "room" is required`, "room")
		return
	}
	if !chat.ValidRoom(room) {
		writeError(w, http.StatusBadRequest, "bad room name", "room")
		return
	}
	ps, ok := s.hub.MembersOf(room, maxMembers+1) // one more: to know the list is cut
	if !ok {
		writeError(w, http.StatusNotFound, "no room #"+strings.TrimPrefix(room, "#"), "room")
		return
	}
	truncated := len(ps) > maxMembers
	ps = ps[:min(len(ps), maxMembers)]
	out := make([]memberJSON, len(ps))
	for i, p := range ps {
		out[i] = memberJSON{UID: p.UID, Nick: p.Nick, User: p.User, Protocol: p.Protocol, Instance: p.Instance,
			Node: p.Node, Since: p.Since.UTC().Format(time.RFC3339)}
	}
	// truncated tells an application that a room of more than maxMembers
	// was cut, rather than letting it take the first page for the room.
	writeJSON(w, http.StatusOK, map[string]any{"room": room, "members": out, "truncated": truncated})
}
