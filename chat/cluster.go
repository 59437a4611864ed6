package chat

import (
	"cmp"
	"slices"
	"time"
)

// Cluster is what a [Hub] needs from the other nodes of a cluster: uids and
// nicks unique across them, the members they hold, and the rooms this node
// wants to hear. A Hub without one (Options.Cluster nil, the default) is a
// single node and pays nothing for any of it. The implementation lives in
// a package of its own (server/cluster); chat knows no network.
//
// Room-wide events travel through the Hub's [Broker], which a cluster also
// implements: Publish delivers to this node's fanouts and sends the event
// once to every other node that holds members of its room.
//
// Its methods are safe for concurrent use. The member and room methods
// report this node's changes and must not block. NextUID may wait for the
// cluster, at most its timeout, and is called with no Hub lock held.
type Cluster interface {
	// Name returns this node's name.
	Name() string
	// NextUID returns a uid no node of the cluster has handed out.
	NextUID() uint64
	// ClaimNick claims the nick whose key is key (see checkNick) for uid
	// across the cluster, without blocking: it calls done later, on a
	// goroutine of the cluster's, with true if uid holds the nick now,
	// false if a member of another node does. It returns false, and does
	// not call done, when the cluster has too many claims under way.
	ClaimNick(uid uint64, key string, done func(held bool)) bool
	// ReleaseNick gives up uid's claim on key.
	ReleaseNick(uid uint64, key string)

	// Joined, Left, Renamed, Entered and Exited report the members of
	// this node to the others: a member is in the lobby when it joins.
	Joined(uid uint64, protocol string)
	Left(uid uint64)
	Renamed(uid uint64, nick, key string)
	Entered(uid uint64, r *Room)
	Exited(uid uint64, r *Room)

	// RoomOpened is called when r gets its first member on this node,
	// RoomClosed when it loses its last: the node hears a room's events
	// only between the two. The Hub calls them under its room table's
	// lock, so they must be quick.
	RoomOpened(r *Room)
	RoomClosed(r *Room)
	// Subscribed calls done, later, on a goroutine of the cluster's, once
	// the other nodes' events in r reach this node, and returns true, if
	// the subscription RoomOpened made for r is not confirmed yet: that
	// takes a round trip to the cluster (at most its timeout), and every
	// member joining r until then waits for it. Otherwise it returns false
	// and does not call done. It does not block.
	Subscribed(r *Room, done func()) bool

	// Private sends ev, a private message to ev.To, to the node that
	// holds ev.To, and reports whether one does.
	Private(ev *Event) bool

	// Remote returns a member of another node.
	Remote(uid uint64) (MemberInfo, bool)
	// RemoteMembers calls fn for every member of the room with key
	// (LobbyName: every member) held by other nodes, in no order.
	RemoteMembers(key string, fn func(MemberInfo))
	// RemoteCount returns how many members of other nodes are in the room
	// with key (LobbyName: in the lobby).
	RemoteCount(key string) int
	// RemoteOnline returns how many members other nodes hold.
	RemoteOnline() int
	// RemoteRooms calls fn for every room, the lobby aside, with members
	// on other nodes: its name, key and their number.
	RemoteRooms(fn func(name, key string, n int))

	// Authenticated reports that uid, a member of this node, is now the
	// member of user (a valid user id, see [ValidUser]).
	Authenticated(uid uint64, user string)
	// RemoteDetail returns what the API's members shows of uid, a member
	// of another node, beyond [MemberInfo]: its user id ("" if anonymous
	// or unknown), its instance and since when it is connected.
	RemoteDetail(uid uint64) (user, instance string, since time.Time)
	// RemoteUsers calls fn once for every user id with members on other
	// nodes, in no order.
	RemoteUsers(fn func(user string))
	// UserNodes calls fn for every other node that holds members of user,
	// with how many it holds.
	UserNodes(user string, fn func(node string, n int))
	// Forward sends f to node, which runs it with [Hub.RunForwarded], and
	// reports whether it could be sent.
	Forward(node string, f Forwarded) bool
}

// nextUID returns a fresh uid: the cluster's, or the next of this process.
func (h *Hub) nextUID() uint64 {
	if h.cluster == nil {
		return h.lastUID.Add(1)
	}
	uid := h.cluster.NextUID()
	h.joined.Add(1)
	// lastUID is the highest uid handed out here: the member table frees
	// a page once no uid of it can come back. A cluster hands out
	// increasing blocks, so the highest is also the last.
	for {
		last := h.lastUID.Load()
		if uid <= last || h.lastUID.CompareAndSwap(last, uid) {
			return uid
		}
	}
}

// ClusterRoom returns the room with key (LobbyName: the lobby) if it has
// members on this node, else nil: an event of another node for a room
// with none here has nobody to reach. It is safe for concurrent use.
func (h *Hub) ClusterRoom(key string) *Room {
	if key == LobbyName {
		return h.lobby
	}
	h.roomsMu.Lock()
	defer h.roomsMu.Unlock()
	return h.rooms[key]
}

// DeliverPrivate hands a private message from another node to its
// recipient here, if it is still online. It is safe for concurrent use.
func (h *Hub) DeliverPrivate(ev *Event) {
	if dst := h.members.load(ev.To); dst != nil {
		dst.session.Send(ev)
	}
}

// RemoteGone tells this node's members that uid, a member of a node that
// is gone without a word (crashed, or cut off), left the lobby and the
// rooms with keys: joins and leaves are announced as for a local member,
// so the lobby's is not for a member still anonymous (never authenticated)
// while requireAuth holds. It is safe for concurrent use.
func (h *Hub) RemoteGone(uid uint64, nick string, anonymous bool, keys []string, deliver func(*Event)) {
	now := h.now()
	for _, key := range keys {
		r := h.ClusterRoom(key)
		if r == nil || r.lobby && anonymous && h.AuthRequired() {
			continue
		}
		if h.announced(int64(h.roomCount(r)) + 1) {
			deliver(&Event{Kind: KindLeave, UID: uid, Nick: nick, Except: uid, Room: r, Time: now})
		}
	}
}

// roomCount returns the members of r across the cluster.
func (h *Hub) roomCount(r *Room) int {
	n := int(r.count.Load())
	if r.lobby {
		n = h.lobbyCount()
	}
	if h.cluster != nil {
		n += h.cluster.RemoteCount(r.key)
	}
	return n
}

// online returns the members online across the cluster.
func (h *Hub) online() int {
	n := int(h.members.online.Load())
	if h.cluster != nil {
		n += h.cluster.RemoteOnline()
	}
	return n
}

// clusterWho is [Hub.who] and [Hub.roomWho] across the cluster: page of
// the members of r (the lobby: everyone), in uid order. It costs a pass
// over the room's members on every node, which the asker pays for in rate
// tokens as on one node.
func (h *Hub) clusterWho(m *Member, r *Room, page int, now time.Time) *Event {
	var ms []MemberInfo
	node := h.cluster.Name()
	if r.lobby {
		h.members.each(func(x *Member) {
			ms = append(ms, MemberInfo{UID: x.uid, Nick: x.Nick(), Protocol: x.home.protocol, Node: node})
		})
	} else {
		r.mu.Lock()
		for _, x := range r.members {
			ms = append(ms, MemberInfo{UID: x.uid, Nick: x.Nick(), Protocol: x.home.protocol, Node: node})
		}
		r.mu.Unlock()
	}
	h.cluster.RemoteMembers(r.key, func(mi MemberInfo) { ms = append(ms, mi) })
	slices.SortFunc(ms, func(a, b MemberInfo) int { return cmp.Compare(a.UID, b.UID) })
	ms = slices.CompactFunc(ms, func(a, b MemberInfo) bool { return a.UID == b.UID })
	page = max(page, 1)
	online := len(ms)
	skip := min((page-1)*WhoMax, online)
	end := min(skip+WhoMax, online)
	return &Event{Kind: KindWho, UID: m.uid, Members: slices.Clone(ms[skip:end]), Online: online, Page: page, More: online - end, Room: r, Time: now}
}

// remoteRoom returns a stand-in for a room that has members on other nodes
// only, for a /who of it; nil if none has.
func (h *Hub) remoteRoom(key string) *Room {
	var found *Room
	h.cluster.RemoteRooms(func(name, k string, _ int) {
		if k == key && found == nil {
			found = &Room{name: name, key: key}
		}
	})
	return found
}

// Key returns the room's key: its name folded as names are compared. It is
// safe for concurrent use.
func (r *Room) Key() string { return r.key }

// RoomsCluster returns the lobby's members on this node and the number of
// members and of rooms across the cluster.
func (h *Hub) clusterRooms(add func(RoomInfo)) int {
	seen := map[string]int{}
	h.roomsMu.Lock()
	for _, r := range h.rooms {
		seen[r.key] = int(r.count.Load())
	}
	names := make(map[string]string, len(h.rooms))
	for _, r := range h.rooms {
		names[r.key] = r.name
	}
	h.roomsMu.Unlock()
	h.cluster.RemoteRooms(func(name, key string, n int) {
		if _, ok := names[key]; !ok {
			names[key] = name
		}
		seen[key] += n
	})
	for key, n := range seen {
		add(RoomInfo{Name: names[key], Members: n})
	}
	return len(seen) + 1
}

// sayRemote sends text from m to uid to on another node, and echoes it to
// m; false if no node holds to.
func (h *Hub) sayRemote(m *Member, now time.Time, to uint64, nick, text string) bool {
	info, ok := h.cluster.Remote(to)
	if !ok {
		return false
	}
	ev := &Event{Kind: KindMessage, UID: m.uid, Nick: nick, To: to, ToNick: info.Nick, Private: true, Text: text, Time: now}
	if !h.cluster.Private(ev) {
		return false
	}
	m.session.Reply(privateMessage(m.uid, nick, to, info.Nick, text, now, true))
	return true
}

// claimNick claims nick (key) for m across the cluster, refusing m if
// another node's member holds it.
//
// The claim is a round trip to the cluster: on the member's own goroutine
// (its event loop) it would stall every member that goroutine serves for
// as long, and a member repeating /nick would stall them at will. So for a
// session that is a [Runner] the cluster answers on a goroutine of its
// own, one claim at a time per member (a /nick meanwhile is refused), and
// the rename is finished on the member's goroutine: lines the member
// sends meanwhile still carry its old name. A claim whose member left
// meanwhile is given back.
func (h *Hub) claimNick(m *Member, nick, key string) {
	r, async := m.session.(Runner)
	if !async {
		held := make(chan bool, 1)
		if !h.cluster.ClaimNick(m.uid, key, func(ok bool) { held <- ok }) {
			h.Refuse(m, busyNick)
			return
		}
		h.claimed(m, nick, key, <-held)
		return
	}
	if m.claiming {
		h.Refuse(m, "a nick change is under way; try again")
		return
	}
	m.claiming = true
	ok := h.cluster.ClaimNick(m.uid, key, func(held bool) {
		if held && h.members.load(m.uid) != m {
			h.cluster.ReleaseNick(m.uid, key) // gone: its goroutine runs nothing more
			return
		}
		r.Run(func() {
			m.claiming = false
			h.claimed(m, nick, key, held)
		})
	})
	if !ok {
		m.claiming = false
		h.Refuse(m, busyNick)
	}
}

// busyNick is the answer to a /nick while the cluster has too many nick
// claims under way.
const busyNick = "too many nick changes under way; try again"

// claimed finishes the rename of m to nick once the cluster answered its
// claim: ok if m holds it now.
func (h *Hub) claimed(m *Member, nick, key string, ok bool) {
	if !ok {
		h.Refuse(m, "nick "+nick+" is taken")
		return
	}
	h.mu.Lock()
	if owner, taken := h.nicks[key]; h.members.load(m.uid) != m || taken && owner != m.uid && !h.sharesNickLocked(m, owner) {
		h.mu.Unlock()
		h.cluster.ReleaseNick(m.uid, key)
		return
	}
	if m.Nick() == nick {
		h.mu.Unlock() // an earlier claim got there first
		return
	}
	h.renameLocked(m, nick, key)
}

// SendTo hands ev, an event for one member, to uid on whichever node holds
// it, and reports whether one does: on this node with its session's Send,
// on another through the cluster (ev must then be a private message, the
// one kind that crosses to a single member). It is for facilities that
// address a member by uid without being one (an API), so that they reach
// every node. It is safe for concurrent use and does not block.
func (h *Hub) SendTo(uid uint64, ev *Event) bool {
	if dst := h.members.load(uid); dst != nil {
		dst.session.Send(ev)
		return true
	}
	if h.cluster == nil || !ev.Private || ev.To != uid || ev.UID == 0 {
		return false
	}
	return h.cluster.Private(ev)
}

// MemberInfo returns what /who shows of uid, on this node or another, and
// whether it is online. It is safe for concurrent use.
func (h *Hub) MemberInfo(uid uint64) (MemberInfo, bool) {
	if m := h.members.load(uid); m != nil {
		mi := MemberInfo{UID: uid, Nick: m.Nick(), Protocol: m.home.protocol}
		if h.cluster != nil {
			mi.Node = h.cluster.Name()
		}
		return mi, true
	}
	if h.cluster != nil {
		return h.cluster.Remote(uid)
	}
	return MemberInfo{}, false
}
