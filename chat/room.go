package chat

import (
	"cmp"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Room is a named set of members that hear each other's lines: the lobby,
// which every member is in from the start, or one created by /join and
// gone, its memory with it, when its last member leaves.
//
// A room other than the lobby keeps its members twice: all of them in uid
// order, under mu, for /who and the count; and, for fan-out, the members
// of each Fanout in a list that only that fanout's goroutine reads and
// writes (a member joins, leaves and closes on the goroutine that handles
// its lines, which in the server is the one event loop that also drains
// its fanout). Publishing a room event hands it to the fanouts that hold
// members of the room, and each walks its own list: no lock, no
// allocation and nothing at all for a fanout that holds none. The lobby
// has no lists: its fan-out walks every session, as before rooms.
type Room struct {
	name  string // as first written
	key   string // see checkRoom
	lobby bool

	mu      sync.Mutex
	members []*Member // guarded by mu; sorted by uid; nil for the lobby
	count   atomic.Int64
	// locals is replaced whole, under mu, when a fanout gets its first
	// member of the room or loses its last: publishers read it without a
	// lock.
	locals atomic.Pointer[[]*local]
}

// local is the members of one room that one fanout holds.
type local struct {
	fanout  Fanout
	members []*Member // owned by fanout's goroutine
}

// Name returns the room's name as first written. It is safe for
// concurrent use.
func (r *Room) Name() string { return r.name }

// IsLobby reports whether r is the lobby. It is safe for concurrent use.
func (r *Room) IsLobby() bool { return r.lobby }

// Local returns the members of r that f holds, for f to deliver a room
// event of r to: every member of the room on f, in no particular order.
// It must be called on f's goroutine (the one that handles its members'
// lines), and the slice is valid until that goroutine next changes a
// membership; it must not be modified. The lobby's members are not listed
// (nil): every member of f not out of the lobby is in it (see
// [Member.InLobby]).
func (r *Room) Local(f Fanout) []*Member {
	if l := r.local(f); l != nil {
		return l.members
	}
	return nil
}

// local returns r's list for f, or nil.
func (r *Room) local(f Fanout) *local {
	if p := r.locals.Load(); p != nil {
		for _, l := range *p {
			if l.fanout == f {
				return l
			}
		}
	}
	return nil
}

// addLocked enters m, of fanout f, in r's uid-ordered list and returns
// f's list, created if new. r.mu is held.
func (r *Room) addLocked(m *Member, f Fanout) *local {
	i, _ := slices.BinarySearchFunc(r.members, m.uid, func(x *Member, uid uint64) int { return cmp.Compare(x.uid, uid) })
	r.members = slices.Insert(r.members, i, m)
	r.count.Store(int64(len(r.members)))
	return r.localLocked(f)
}

// localLocked returns r's list for f, created if new. r.mu is held.
func (r *Room) localLocked(f Fanout) *local {
	if l := r.local(f); l != nil {
		return l
	}
	l := &local{fanout: f}
	var next []*local
	if p := r.locals.Load(); p != nil {
		next = slices.Clone(*p)
	}
	next = append(next, l)
	r.locals.Store(&next)
	return l
}

// removeLocked takes m out of r's uid-ordered list, and drops l, f's list
// (nil: none), if it is empty. It returns the members left. r.mu is held.
func (r *Room) removeLocked(m *Member, l *local) int {
	if i, found := slices.BinarySearchFunc(r.members, m.uid, func(x *Member, uid uint64) int { return cmp.Compare(x.uid, uid) }); found {
		r.members = slices.Delete(r.members, i, i+1)
	}
	if len(r.members) == 0 {
		r.members = nil // an empty room keeps no array
	}
	r.count.Store(int64(len(r.members)))
	if l != nil && len(l.members) == 0 {
		if p := r.locals.Load(); p != nil {
			next := slices.DeleteFunc(slices.Clone(*p), func(x *local) bool { return x == l })
			r.locals.Store(&next)
		}
	}
	return len(r.members)
}

// memberRooms is a member's rooms beyond the start (the lobby alone, and
// current): allocated when it first joins or leaves a room. It is owned
// by the goroutine that handles the member's lines.
type memberRooms struct {
	in         []roomRef // in join order, the lobby among them unless out of it
	current    *Room     // nil: in no room
	outOfLobby bool

	// opening is set while a room the member opened on this node waits
	// for the cluster (see joinRoom); its input meanwhile waits in held,
	// in order, with heldSize bytes of text.
	opening  bool
	held     []heldInput
	heldSize int
	front    int  // where hold puts input: the end, or while resuming, the front
	resuming bool // resume is running held input
	quitting bool // a /quit waits: what comes after it is dropped
}

// heldInput is a member's input that waits for the room it opens: fn
// carries it out, and it counts size bytes against MaxHeld.
type heldInput struct {
	fn   func()
	size int
}

// opening reports whether a room m opened waits for the cluster: its
// input waits too (see hold). m's goroutine only.
func (m *Member) opening() bool { return m.rooms != nil && m.rooms.opening }

// roomRef is one room of a member and its place in the room's list for
// the member's fanout (unused for the lobby).
type roomRef struct {
	room    *Room
	idx     int
	pending bool // joined, not yet entered (see awaitRoom): not in the fanout's list
}

// find returns the index of the room with key in st.in, or -1.
func (st *memberRooms) find(key string) int {
	for i, ref := range st.in {
		if ref.room.key == key {
			return i
		}
	}
	return -1
}

// Session returns m's session. It is safe for concurrent use.
func (m *Member) Session() Session { return m.session }

// InLobby reports whether m is in the lobby. It must be called on the
// goroutine that handles m's lines (in the server, its event loop, where
// the lobby's fan-out reads it).
func (m *Member) InLobby() bool { return m.rooms == nil || !m.rooms.outOfLobby }

// Rooms returns the names of m's rooms in the order it joined them, the
// lobby first unless it left it. It must be called on the goroutine that
// handles m's lines (in the server, its event loop, as the connections
// listing does).
func (m *Member) Rooms() []string {
	if m.rooms == nil {
		return []string{LobbyName}
	}
	names := make([]string, len(m.rooms.in))
	for i, ref := range m.rooms.in {
		names[i] = ref.room.name
	}
	return names
}

// Lobby returns the lobby. It is safe for concurrent use.
func (h *Hub) Lobby() *Room { return h.lobby }

// roomState returns m's rooms, allocating them at the first change.
func (h *Hub) roomState(m *Member) *memberRooms {
	if m.rooms == nil {
		m.rooms = &memberRooms{in: []roomRef{{room: h.lobby}}, current: h.lobby}
	}
	return m.rooms
}

// current returns m's current room, nil if it is in none.
func (h *Hub) current(m *Member) *Room {
	if m.rooms == nil {
		return h.lobby
	}
	return m.rooms.current
}

// lobbyCount returns the members in the lobby.
func (h *Hub) lobbyCount() int {
	return int(h.members.online.Load() - h.outOfLobby.Load())
}

// joinRoom makes m a member of the room key (shown as shown if it is
// new) and its current room. m's goroutine only.
func (h *Hub) joinRoom(m *Member, shown, key string, now time.Time) {
	if h.members.load(m.uid) != m {
		return // gone: a room joined now would keep it for good
	}
	if m.opening() && h.hold(m, len(shown), false, func() { h.joinRoom(m, shown, key, h.now()) }) {
		return
	}
	if key == LobbyName {
		h.joinLobby(m, now)
		return
	}
	st := h.roomState(m)
	if i := st.find(key); i >= 0 {
		r := st.in[i].room
		st.current = r
		m.session.Reply(&Event{Kind: KindEntered, UID: m.uid, Room: r, Online: h.roomCount(r), Time: now})
		return
	}
	if limit := int(h.maxPerMember.Load()); limit > 0 && len(st.in)-lobbyIn(st) >= limit {
		h.Refuse(m, "too many rooms (maxRoomsPerMember "+strconv.Itoa(limit)+")")
		return
	}
	f := m.home.fanout
	h.roomsMu.Lock()
	r := h.rooms[key]
	if r == nil {
		if limit := int(h.maxRooms.Load()); limit > 0 && len(h.rooms) >= limit {
			h.roomsMu.Unlock()
			h.Refuse(m, "too many rooms (maxRooms "+strconv.Itoa(limit)+")")
			return
		}
		r = &Room{name: shown, key: key}
		h.rooms[key] = r
		h.numRooms.Store(int64(len(h.rooms)))
		if h.cluster != nil {
			h.cluster.RoomOpened(r)
		}
	}
	r.mu.Lock()
	r.addLocked(m, f)
	r.mu.Unlock()
	h.roomsMu.Unlock()
	// In the room, which so stays open, but not in its fanout's list: it
	// hears the room once it is told it is in.
	st.in = append(st.in, roomRef{room: r, pending: true})
	if h.cluster != nil && h.awaitRoom(m, r) {
		return // entered once the cluster has r's subscription
	}
	h.entered(m, r, now)
}

// awaitRoom waits, if the join of m made this node subscribe to r, until
// the cluster has the subscription, so that m hears what the other nodes
// say in r once it is told it is in. For a session that is a [Runner] it
// does not wait: that is a round trip to NATS (up to the cluster's
// timeout), and on the member's goroutine (its event loop) it would stall
// every member that goroutine serves, at will for a member opening rooms
// again and again. The member is then in r, but not told, nor is its
// room changed, until the answer comes: entered runs on its goroutine
// then, and until it has, the member's input waits (see hold). It
// reports whether m is to be told later.
func (h *Hub) awaitRoom(m *Member, r *Room) bool {
	run, async := m.session.(Runner)
	if !async {
		done := make(chan struct{})
		if h.cluster.Subscribed(r, func() { close(done) }) {
			<-done
		}
		return false
	}
	st := m.rooms
	st.opening = true // before: a Runner may run the answer at once
	if !h.cluster.Subscribed(r, func() {
		run.Run(func() {
			st.opening = false
			h.entered(m, r, h.now())
			h.resume(m)
		})
	}) {
		st.opening = false
		return false
	}
	return true
}

// entered tells m, which joined r, that it is in, makes r its room and
// tells r's members, unless m left r (or the room) meanwhile.
func (h *Hub) entered(m *Member, r *Room, now time.Time) {
	st := m.rooms
	i := st.find(r.key)
	if h.members.load(m.uid) != m || i < 0 || !st.in[i].pending {
		return
	}
	// Its fanout's list may have gone meanwhile, with its other members.
	r.mu.Lock()
	l := r.localLocked(m.home.fanout)
	r.mu.Unlock()
	st.in[i] = roomRef{room: r, idx: len(l.members)}
	l.members = append(l.members, m)
	if h.cluster != nil {
		h.cluster.Entered(m.uid, r)
	}
	n := h.roomCount(r)
	st.current = r
	m.session.Reply(&Event{Kind: KindEntered, UID: m.uid, Room: r, Online: n, Time: now})
	if h.announced(int64(n)) {
		h.broker.Publish(&Event{Kind: KindJoin, UID: m.uid, Nick: m.Nick(), Except: m.uid, Room: r, Time: now})
	}
}

// MaxHeld bounds the bytes of input a member's opening room holds back
// (see hold), counting a line's text and HeldCost for each: 1024 empty
// lines. The rate limits bound it already; this is for an instance
// without them.
const (
	MaxHeld  = 64 << 10
	HeldCost = 64
)

// hold keeps fn, a member's input of size bytes of text, to run once the
// room it opens is entered (see awaitRoom), and reports whether it did:
// not if no room opens. Past MaxHeld the input is refused with
// "! slow down", as a flood is, unless it must not be: a /quit (the
// first: what comes after one is dropped, as it would never run), or a
// token's rooms (as many as the token lists, which the application
// signed). Input that what resume runs holds goes before what still
// waits: it came from that (a token's rooms, after the /auth). A member's
// lines and structured input pass the rate limit when they come, and the
// authentication gate and all else when they run: a /auth held before
// them may open the gate. Callers check m.opening first, so that fn is
// made only then. m's goroutine only.
func (h *Hub) hold(m *Member, size int, must bool, fn func()) bool {
	st := m.rooms
	if st == nil || !st.opening {
		return false
	}
	if st.quitting {
		return true
	}
	size += HeldCost
	if st.heldSize+size > MaxHeld && !must {
		h.Refuse(m, "slow down")
		return true
	}
	st.held = slices.Insert(st.held, st.front, heldInput{fn: fn, size: size})
	if st.resuming {
		st.front++
	} else {
		st.front = len(st.held)
	}
	st.heldSize += size
	return true
}

// resume runs the input that m's opening room held, in order, until one
// opens another room or closes m. m's goroutine only.
func (h *Hub) resume(m *Member) {
	st := m.rooms
	st.resuming = true
	for len(st.held) > 0 && !st.opening && !m.closed {
		in := st.held[0]
		st.held[0] = heldInput{}
		st.held = st.held[1:]
		st.heldSize -= in.size
		st.front = 0
		in.fn()
	}
	st.resuming = false
	st.front = len(st.held)
	if len(st.held) == 0 {
		st.held = nil // the array, which may have grown large, goes
	}
}

// lobbyIn returns 1 if st holds the lobby, else 0: the lobby does not
// count against maxRoomsPerMember, so a member can always go back to it.
func lobbyIn(st *memberRooms) int {
	if st.outOfLobby {
		return 0
	}
	return 1
}

// joinLobby takes m back into the lobby, or makes it current.
func (h *Hub) joinLobby(m *Member, now time.Time) {
	st := h.roomState(m)
	if !st.outOfLobby {
		st.current = h.lobby
		m.session.Reply(&Event{Kind: KindEntered, UID: m.uid, Room: h.lobby, Online: h.lobbyCount(), Time: now})
		return
	}
	st.outOfLobby = false
	st.in = append(st.in, roomRef{room: h.lobby})
	st.current = h.lobby
	n := h.outOfLobby.Add(-1)
	online := h.members.online.Load()
	if h.cluster != nil {
		h.cluster.Entered(m.uid, h.lobby)
		online += int64(h.cluster.RemoteCount(LobbyName))
	}
	m.session.Reply(&Event{Kind: KindEntered, UID: m.uid, Room: h.lobby, Online: int(online - n), Time: now})
	if !m.hidden && h.announced(online-n) { // a hidden member is announced when it authenticates
		h.broker.Publish(&Event{Kind: KindJoin, UID: m.uid, Nick: m.Nick(), Except: m.uid, Room: h.lobby, Time: now})
	}
}

// leaveRoom takes m out of the room key ("" = its current room) and tells
// it and the room's members. m's goroutine only.
func (h *Hub) leaveRoom(m *Member, shown, key string, now time.Time) {
	if h.members.load(m.uid) != m {
		return
	}
	if m.opening() && h.hold(m, len(shown), false, func() { h.leaveRoom(m, shown, key, h.now()) }) {
		return
	}
	st := h.roomState(m)
	i := -1
	switch {
	case key != "":
		i = st.find(key)
	case st.current != nil:
		i = st.find(st.current.key)
	}
	if i < 0 {
		if key == "" {
			h.Refuse(m, "you are in no room")
			return
		}
		h.refuseRoom(m, shown, key)
		return
	}
	r := st.in[i].room
	ev := &Event{Kind: KindLeave, UID: m.uid, Nick: m.Nick(), Except: m.uid, Room: r, Time: now}
	// The leaver hears it too (as IRC echoes a PART): it is the answer to
	// its /leave, and a JSON client learns which tab to close.
	m.session.Reply(ev)
	if n := h.dropRoom(m, st, i); h.announced(int64(n)+1) && !(r.lobby && m.hidden) {
		h.broker.Publish(ev)
	}
}

// refuseRoom tells m it is not in the room key: "you are not in #x" if
// the room exists, "no room #x" if not.
func (h *Hub) refuseRoom(m *Member, shown, key string) {
	h.roomsMu.Lock()
	r := h.rooms[key]
	h.roomsMu.Unlock()
	switch {
	case key == LobbyName:
		h.Refuse(m, "you are not in #"+LobbyName)
	case r != nil:
		h.Refuse(m, "you are not in #"+r.name)
	default:
		h.Refuse(m, "no room #"+shown)
	}
}

// dropRoom takes m out of st.in[i]'s room and returns the members left in
// it. The room goes once empty. m's goroutine only.
func (h *Hub) dropRoom(m *Member, st *memberRooms, i int) int {
	ref := st.in[i]
	st.in = slices.Delete(st.in, i, i+1)
	r := ref.room
	if st.current == r {
		st.current = nil
		for j := len(st.in) - 1; j >= 0 && st.current == nil; j-- {
			if !st.in[j].pending {
				st.current = st.in[j].room
			}
		}
	}
	if h.cluster != nil && !ref.pending { // a pending room was not reported
		h.cluster.Exited(m.uid, r)
	}
	if r.lobby {
		st.outOfLobby = true
		n := int(h.members.online.Load() - h.outOfLobby.Add(1))
		if h.cluster != nil {
			n += h.cluster.RemoteCount(LobbyName)
		}
		return n
	}
	// Out of its fanout's list: the last member takes its place, and its
	// own reference learns where (it is on the same goroutine). A pending
	// member is in none.
	l := r.local(m.home.fanout)
	if !ref.pending {
		last := len(l.members) - 1
		moved := l.members[last]
		l.members[ref.idx] = moved
		l.members[last] = nil
		l.members = l.members[:last]
		if moved != m {
			ms := moved.rooms
			ms.in[ms.find(r.key)].idx = ref.idx
		}
	}
	h.roomsMu.Lock()
	r.mu.Lock()
	n := r.removeLocked(m, l)
	r.mu.Unlock()
	if n == 0 && h.rooms[r.key] == r {
		delete(h.rooms, r.key)
		h.numRooms.Store(int64(len(h.rooms)))
		if h.cluster != nil {
			h.cluster.RoomClosed(r)
		}
	}
	h.roomsMu.Unlock()
	if h.cluster != nil {
		n += h.cluster.RemoteCount(r.key)
	}
	return n
}

// leaveAll takes a closing member out of every room but the lobby,
// announcing it in each, and reports whether it was in the lobby.
func (h *Hub) leaveAll(m *Member, now time.Time) bool {
	st := m.rooms
	if st == nil {
		return true
	}
	for i := len(st.in) - 1; i >= 0; i-- {
		r, pending := st.in[i].room, st.in[i].pending
		if r.lobby {
			continue
		}
		if n := h.dropRoom(m, st, i); !pending && h.announced(int64(n)+1) {
			h.broker.Publish(&Event{Kind: KindLeave, UID: m.uid, Nick: m.Nick(), Except: m.uid, Room: r, Time: now})
		}
	}
	if st.outOfLobby {
		h.outOfLobby.Add(-1)
		return false
	}
	return true
}

// sayRoom sends text from m to the room key, which m must be in.
func (h *Hub) sayRoom(m *Member, shown, key, text string, now time.Time) {
	r := h.lobby
	if m.rooms != nil {
		i := m.rooms.find(key)
		if i < 0 {
			h.refuseRoom(m, shown, key)
			return
		}
		r = m.rooms.in[i].room
	} else if key != LobbyName {
		h.refuseRoom(m, shown, key)
		return
	}
	h.say(m, now, 0, nil, text, r)
}

// RoomsMax is the most rooms one /rooms lists, the busiest first.
const RoomsMax = 50

// roomsPerToken is how many rooms /rooms walks for one rate-limit token,
// beside one per whoLinesPerToken lines it prints.
const roomsPerToken = 1000

// roomsCost returns the rate-limit tokens a /rooms costs m: in proportion
// to what it prints and to the rooms it walks, at most m's burst.
func (h *Hub) roomsCost(m *Member) int {
	n := int(h.numRooms.Load()) + 1
	c := 1 + min(n, RoomsMax)/whoLinesPerToken + n/roomsPerToken
	return min(c, max(int(m.burst), 1))
}

// roomList returns the RoomsMax busiest rooms, the lobby among them,
// busiest first (then by name), and the number of rooms. It costs one
// pass over the rooms (at most maxRooms) and O(RoomsMax) memory.
func (h *Hub) roomList(m *Member, now time.Time) *Event {
	top := make([]RoomInfo, 0, RoomsMax)
	busier := func(a, b RoomInfo) int {
		if c := cmp.Compare(b.Members, a.Members); c != 0 {
			return c
		}
		return cmp.Compare(a.Name, b.Name)
	}
	add := func(ri RoomInfo) {
		if len(top) == RoomsMax && busier(ri, top[RoomsMax-1]) >= 0 {
			return
		}
		i, _ := slices.BinarySearchFunc(top, ri, busier)
		if len(top) == RoomsMax {
			top = top[:RoomsMax-1]
		}
		top = slices.Insert(top, i, ri)
	}
	if h.cluster != nil {
		add(RoomInfo{Name: LobbyName, Members: h.roomCount(h.lobby)})
		n := h.clusterRooms(add)
		return &Event{Kind: KindRooms, UID: m.uid, Rooms: top, Online: n, Time: now}
	}
	add(RoomInfo{Name: LobbyName, Members: h.lobbyCount()})
	h.roomsMu.Lock()
	n := len(h.rooms) + 1
	for _, r := range h.rooms {
		add(RoomInfo{Name: r.name, Members: int(r.count.Load())})
	}
	h.roomsMu.Unlock()
	return &Event{Kind: KindRooms, UID: m.uid, Rooms: top, Online: n, Time: now}
}

// roomWho returns page (0 or 1 = the first) of room key's member list, at
// most WhoMax members in uid order, or nil if there is no such room.
func (h *Hub) roomWho(m *Member, key string, page int, now time.Time) *Event {
	h.roomsMu.Lock()
	r := h.rooms[key]
	h.roomsMu.Unlock()
	if h.cluster != nil {
		if r == nil {
			r = h.remoteRoom(key)
		}
		if r == nil {
			return nil
		}
		return h.clusterWho(m, r, page, now)
	}
	if r == nil {
		return nil
	}
	page = max(page, 1)
	r.mu.Lock()
	online := len(r.members)
	skip := min((page-1)*WhoMax, online)
	end := min(skip+WhoMax, online)
	ms := make([]MemberInfo, 0, end-skip)
	for _, x := range r.members[skip:end] {
		ms = append(ms, MemberInfo{UID: x.uid, Nick: x.Nick(), Protocol: x.home.protocol})
	}
	r.mu.Unlock()
	return &Event{Kind: KindWho, UID: m.uid, Members: ms, Online: online, Page: page, More: online - end, Room: r, Time: now}
}

// roomWhoCost is whoCost for a room of n members.
func roomWhoCost(m *Member, n, page int) int {
	n -= max(page-1, 0) * WhoMax
	n = min(max(n, 0), WhoMax)
	return min(max(1, (n+whoLinesPerToken-1)/whoLinesPerToken), max(int(m.burst), 1))
}
