package chat

import (
	"cmp"
	"slices"
	"strings"
	"time"
)

// This file makes the Application API's Hub methods (see user.go)
// cluster-wide: what they do to a member of another node is forwarded to
// that node as a [Forwarded] action and run there by the same local code.
// A single node (no Cluster) never reaches any of it.

// ForwardOp is what a [Forwarded] action does.
type ForwardOp uint8

// The actions one node asks another to run on its members.
const (
	ForwardSend       ForwardOp = iota + 1 // SendServer; Arg is the text
	ForwardJoin                            // JoinFor; Arg is the room
	ForwardLeave                           // LeaveFor; Arg is the room
	ForwardDisconnect                      // Disconnect; Arg is the reason
)

// Forwarded is an application's action (the API's send, join, leave or
// disconnect) for the members of Target.UID or Target.User that a node
// holds, sent to it by the node the application asked.
type Forwarded struct {
	Op     ForwardOp
	Target Target // UID or User, exactly one
	Arg    string
}

// maxReason is the longest disconnect reason a forwarded action carries,
// as the API accepts.
const maxReason = 256

// RunForwarded runs f, an action another node forwarded, on this node's
// members only (it is never forwarded again), and returns the members it
// was for, or -1 if f is not one the API could have sent: it is checked
// as API input is (one target, a valid user id, a valid room, a short
// reason, text cleaned). It is safe for concurrent use and does not
// block.
func (h *Hub) RunForwarded(f Forwarded) int {
	t := f.Target
	if t.Room != "" || (t.UID != 0) == (t.User != "") || t.User != "" && !ValidUser(t.User) {
		return -1
	}
	switch f.Op {
	case ForwardSend:
		text := CleanLine(f.Arg)
		if strings.TrimSpace(text) == "" {
			return -1
		}
		return h.sendLocal(t, &Event{Kind: KindMessage, Nick: ServerNick, Text: text, Time: h.now()})
	case ForwardJoin, ForwardLeave:
		shown, key, ok := roomArg([]byte(f.Arg))
		if !ok {
			return -1
		}
		return h.roomForLocal(t, shown, key, f.Op == ForwardJoin)
	case ForwardDisconnect:
		if len(f.Arg) > maxReason {
			return -1
		}
		return h.disconnectLocal(t, disconnectText(f.Arg))
	}
	return -1
}

// forward sends f to the nodes that hold members of f.Target, and returns
// how many members the directory says they hold there: eventually
// consistent (a member that left a moment ago is counted).
func (h *Hub) forward(f Forwarded) int {
	if f.Target.UID != 0 {
		if h.members.load(f.Target.UID) != nil {
			return 0 // here: the local code had it
		}
		info, ok := h.cluster.Remote(f.Target.UID)
		if ok && h.cluster.Forward(info.Node, f) {
			return 1
		}
		return 0
	}
	type nodeCount struct {
		node string
		n    int
	}
	var nodes []nodeCount
	h.cluster.UserNodes(f.Target.User, func(node string, n int) { nodes = append(nodes, nodeCount{node, n}) })
	total := 0
	for _, nc := range nodes {
		if h.cluster.Forward(nc.node, f) {
			total += nc.n
		}
	}
	return total
}

// clusterOnline is [Hub.Online] across the cluster.
func (h *Hub) clusterOnline() Online {
	users := map[string]struct{}{}
	h.ids.mu.RLock()
	for u := range h.ids.byUser {
		users[u] = struct{}{}
	}
	h.ids.mu.RUnlock()
	h.cluster.RemoteUsers(func(u string) { users[u] = struct{}{} })
	return Online{Members: h.online(), Users: len(users), Rooms: h.clusterRooms(func(RoomInfo) {})}
}

// clusterRoomList is [Hub.RoomList] across the cluster.
func (h *Hub) clusterRoomList() []RoomInfo {
	var rs []RoomInfo
	h.clusterRooms(func(ri RoomInfo) { rs = append(rs, ri) })
	slices.SortFunc(rs, func(a, b RoomInfo) int { return strings.Compare(a.Name, b.Name) })
	return append([]RoomInfo{{Name: LobbyName, Members: h.roomCount(h.lobby)}}, rs...)
}

// clusterMembers is [Hub.MembersOf] across the cluster: ps, this node's
// first limit members of the room with key (nil if it has none here),
// merged with every other node's, in uid order, cut to limit.
func (h *Hub) clusterMembers(ps []Presence, local bool, key string, limit int) ([]Presence, bool) {
	node := h.cluster.Name()
	for i := range ps {
		ps[i].Node = node
	}
	remote := false
	h.cluster.RemoteMembers(key, func(mi MemberInfo) {
		remote = true
		ps = append(ps, Presence{UID: mi.UID, Nick: mi.Nick, Protocol: mi.Protocol, Node: mi.Node})
	})
	if !local && !remote {
		return nil, false
	}
	slices.SortFunc(ps, func(a, b Presence) int { return cmp.Compare(a.UID, b.UID) })
	ps = slices.CompactFunc(ps, func(a, b Presence) bool { return a.UID == b.UID })
	ps = ps[:min(len(ps), limit)]
	for i := range ps {
		if ps[i].Node != node {
			ps[i].User, ps[i].Instance, ps[i].Since = h.cluster.RemoteDetail(ps[i].UID)
		}
	}
	return ps, true
}

// Describe returns the instance of member uid of this node and since when
// it is connected, if its session is a [Describer]; ok is false if uid is
// not a member here. A cluster tells the other nodes. It is safe for
// concurrent use.
func (h *Hub) Describe(uid uint64) (instance string, since time.Time, ok bool) {
	m := h.members.load(uid)
	if m == nil {
		return "", time.Time{}, false
	}
	if d, is := m.session.(Describer); is {
		instance, since = d.Describe()
	}
	return instance, since, true
}

// clusterAuthed tells the cluster whose member m is now.
func (h *Hub) clusterAuthed(m *Member) {
	if u := h.User(m.uid); u != "" {
		h.cluster.Authenticated(m.uid, u)
	}
}
