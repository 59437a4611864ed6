package chat

import (
	"bytes"
	"maps"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Hub is the room. Every session of every instance, reactor and protocol
// joins the one Hub of the daemon. Its methods are safe for concurrent use
// and never block on I/O.
type Hub struct {
	broker   Broker
	cluster  Cluster // nil: a single node
	now      func() time.Time
	announce atomic.Int64 // AnnounceLimit; 0 = always

	lastUID atomic.Uint64
	joined  atomic.Uint64 // members joined, with a cluster (else lastUID)

	// members maps uid to *Member. A message looks up its recipient with
	// no lock taken, so event loops never contend on the room to talk.
	members memberTable

	mu      sync.RWMutex
	nicks   map[string]uint64 // guarded by mu: nick's key (see checkNick) -> uid of a holder; one user's others in ids.shared
	fanouts []Fanout          // guarded by mu
	homes   map[home]*home    // guarded by mu: one per protocol and fanout, shared by their members

	lobby        *Room
	roomsMu      sync.Mutex       // taken before any Room.mu
	rooms        map[string]*Room // guarded by roomsMu: key (see checkRoom) -> room; not the lobby
	numRooms     atomic.Int64     // len(rooms)
	outOfLobby   atomic.Int64     // members who left the lobby
	maxRooms     atomic.Int64     // 0 = unlimited
	maxPerMember atomic.Int64     // 0 = unlimited

	ids identities // users and authentication: see user.go
}

// home is what members of one protocol on one fanout share: kept once,
// so that a member stays small enough for a transport to embed.
type home struct {
	protocol string
	fanout   Fanout
}

// Options configures a [Hub]. The zero value is valid.
type Options struct {
	Broker Broker           // room-wide fan-out; default: a MemoryBroker
	Now    func() time.Time // clock; default time.Now
	// AnnounceLimit is the largest room in which joins and leaves are
	// announced to everyone; 0 = any size. Each announcement goes to every
	// member, so without a limit N clients joining cost N² lines.
	AnnounceLimit int
	// MaxRooms is the most rooms, the lobby aside, that may exist at once;
	// MaxRoomsPerMember the most one member may be in, the lobby aside.
	// 0 = unlimited.
	MaxRooms          int
	MaxRoomsPerMember int

	// Cluster shares uids, nicks, members and rooms with other nodes, and
	// is the Broker too if it is one and Broker is nil; nil (the default)
	// is a single node.
	Cluster Cluster
}

// NewHub returns an empty room.
func NewHub(o Options) *Hub {
	h := &Hub{
		broker: o.Broker,
		now:    o.Now,
		nicks:  make(map[string]uint64),
		homes:  make(map[home]*home),
		rooms:  make(map[string]*Room),
		lobby:  &Room{name: LobbyName, key: LobbyName, lobby: true},
	}
	h.cluster = o.Cluster
	if b, ok := o.Cluster.(Broker); ok && h.broker == nil {
		h.broker = b
	}
	if h.broker == nil {
		h.broker = NewMemoryBroker()
	}
	if h.now == nil {
		h.now = time.Now
	}
	h.members.init()
	h.announce.Store(int64(o.AnnounceLimit))
	h.SetRoomLimits(o.MaxRooms, o.MaxRoomsPerMember)
	h.broker.Subscribe(h.deliver)
	return h
}

// AddFanout registers g to receive room-wide events. It is safe for
// concurrent use.
func (h *Hub) AddFanout(g Fanout) {
	h.mu.Lock()
	h.fanouts = append(h.fanouts, g)
	h.mu.Unlock()
}

// RemoveFanout stops room-wide events to g. It is safe for concurrent use.
func (h *Hub) RemoveFanout(g Fanout) {
	h.mu.Lock()
	h.fanouts = slices.DeleteFunc(h.fanouts, func(x Fanout) bool { return x == g })
	maps.DeleteFunc(h.homes, func(k home, _ *home) bool { return k.fanout == g })
	h.mu.Unlock()
}

// deliver hands a published event to every local fanout: for a room other
// than the lobby, to those that hold its members.
func (h *Hub) deliver(ev *Event) {
	if r := ev.Room; r != nil && !r.lobby {
		if p := r.locals.Load(); p != nil {
			for _, l := range *p {
				if l.fanout != nil {
					l.fanout.Broadcast(ev)
				}
			}
		}
		return
	}
	h.mu.RLock()
	for _, g := range h.fanouts {
		g.Broadcast(ev)
	}
	h.mu.RUnlock()
}

// JoinOptions describes a newcomer.
type JoinOptions struct {
	Protocol string  // shown by /who: "telnet", "websocket"
	Rate     float64 // lines per second allowed; 0 = unlimited
	Burst    int     // lines allowed at once above Rate; at least 1 when Rate > 0
	// BytesRate and BytesBurst limit bytes as Rate and Burst limit lines:
	// bytes per second, and bytes allowed at once above it. Either 0 =
	// unlimited. A line longer than BytesBurst passes on a full bucket.
	BytesRate  float64
	BytesBurst int
	// Fanout is the fanout that delivers room-wide events to the session
	// (its reactor): room events go to the fanouts of the room's members.
	// A member without one is in rooms but hears nothing of them.
	Fanout Fanout
}

// Join admits s as a new member with a fresh uid: s gets the welcome and
// everyone else the join notice, which waits, with requireAuth, until the
// member authenticates (an anonymous connection is no one to announce). The transport must make s's fanout deliver
// to it before calling Join. It is safe for concurrent use.
func (h *Hub) Join(s Session, o JoinOptions) *Member {
	return h.JoinMember(new(Member), s, o)
}

// JoinMember is Join into a Member the caller provides, which must be
// zero and never copied: a transport may keep it inside its own
// per-connection state, so that a connection is one allocation and a
// message touches fewer cache lines.
func (h *Hub) JoinMember(m *Member, s Session, o JoinOptions) *Member {
	m.uid = h.nextUID()
	m.session = s
	m.home = h.home(o.Protocol, o.Fanout)
	m.rate = float32(o.Rate)
	m.burst = float32(max(o.Burst, 1))
	m.tokens = float64(m.burst)
	if o.BytesRate > 0 && o.BytesBurst > 0 {
		m.byteRate, m.byteBurst = float32(o.BytesRate), float32(o.BytesBurst)
		m.byteTokens = float64(m.byteBurst)
	}
	now := h.now()
	m.last = now.UnixNano()
	// The welcome goes first: it is how a client learns its uid, and once
	// m is in the table others can reach it.
	s.Reply(&Event{Kind: KindWelcome, UID: m.uid, Time: now})
	n := h.members.add(m)
	if h.cluster != nil {
		h.cluster.Joined(m.uid, o.Protocol)
		n += int64(h.cluster.RemoteCount(LobbyName))
	}
	switch {
	case h.AuthRequired():
		m.hidden = true // until it authenticates: see Authenticate
	case h.announced(n):
		h.broker.Publish(&Event{Kind: KindJoin, UID: m.uid, Except: m.uid, Room: h.lobby, Time: now})
	}
	return m
}

// home returns the shared home of protocol and f.
func (h *Hub) home(protocol string, f Fanout) *home {
	k := home{protocol: protocol, fanout: f}
	h.mu.RLock()
	p := h.homes[k]
	h.mu.RUnlock()
	if p != nil {
		return p
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if p = h.homes[k]; p == nil {
		p = &k
		h.homes[k] = p
	}
	return p
}

// Leave removes m from every room and tells their members. It is
// idempotent. A member that joined or left a room, or authenticated,
// must be left on the goroutine that handles its lines (in the server,
// its event loop, in OnClose); one that did none of these may be left
// from any goroutine.
func (h *Hub) Leave(m *Member) {
	// Under mu, so that a nick set meanwhile is not left behind in nicks.
	h.mu.Lock()
	in, n := h.members.remove(m, h.lastUID.Load()) // n: the room it left
	if !in {
		h.mu.Unlock()
		return
	}
	nick := m.Nick()
	h.releaseNickLocked(m)
	h.mu.Unlock()
	h.forgetUser(m)
	now := h.now()
	inLobby := h.leaveAll(m, now)
	if h.cluster != nil {
		h.cluster.Left(m.uid)
		if nick != "" {
			h.cluster.ReleaseNick(m.uid, m.nick.Load().key)
		}
		n += int64(h.cluster.RemoteCount(LobbyName))
	}
	if !inLobby || m.hidden {
		return // out of the lobby, or never announced in it: nothing to tell
	}
	if n -= h.outOfLobby.Load(); h.announced(n) {
		h.broker.Publish(&Event{Kind: KindLeave, UID: m.uid, Nick: nick, Except: m.uid, Room: h.lobby, Time: now})
	}
}

// SetRoomLimits changes Options.MaxRooms and Options.MaxRoomsPerMember
// (on reload); rooms and memberships past a new limit stay. It is safe
// for concurrent use.
func (h *Hub) SetRoomLimits(maxRooms, perMember int) {
	h.maxRooms.Store(int64(maxRooms))
	h.maxPerMember.Store(int64(perMember))
}

// SetAnnounceLimit changes Options.AnnounceLimit (on reload). It is safe
// for concurrent use.
func (h *Hub) SetAnnounceLimit(n int) { h.announce.Store(int64(n)) }

// announced reports whether joins and leaves are announced in a room of n
// members.
func (h *Hub) announced(n int64) bool {
	limit := h.announce.Load()
	return limit == 0 || n <= limit
}

// Handle carries out one line of the text protocol from m (see parse).
// It is safe for concurrent use; lines from one member must be handled in
// order, which the member's reader does.
func (h *Hub) Handle(m *Member, line []byte) {
	if m.closed {
		return
	}
	cmd, target := parse(line)
	now := h.now() // one clock read per line, for the rate limit and the event
	cost := 1
	switch cmd.Op {
	case OpWho:
		cost = h.whoCost(m, cmd)
	case OpRooms:
		cost = h.roomsCost(m)
	}
	if cmd.Op == OpNone || (cmd.Op != OpQuit && !h.allow(m, now, cost, len(line))) {
		return
	}
	if m.opening() {
		// After the rate limit, which so bounds what waits, and before
		// anything else, the authentication gate included (a /auth held
		// before it may open it): a line waits for the room its member
		// opens.
		held := bytes.Clone(line)
		quit := cmd.Op == OpQuit
		h.hold(m, len(held), quit, func() {
			if cmd, target := parse(held); h.authGate(m, cmd.Op) {
				h.handle(m, cmd, target, h.now())
			}
		})
		m.rooms.quitting = m.rooms.quitting || quit
		return
	}
	if h.authGate(m, cmd.Op) {
		h.handle(m, cmd, target, now)
	}
}

// handle carries out cmd, a line of m's that passed the rate limit and
// the authentication gate (target is parse's).
func (h *Hub) handle(m *Member, cmd Command, target []byte, now time.Time) {
	switch cmd.Op {
	case OpBroadcast:
		r := h.current(m)
		if r == nil {
			h.Refuse(m, "you are in no room: /join NAME")
			return
		}
		h.say(m, now, 0, nil, cmd.Text, r)
	case OpRoomSay:
		h.sayRoom(m, cmd.Room, cmd.RoomKey, cmd.Text, now)
	case OpJoin:
		switch {
		case cmd.Room == "":
			h.Refuse(m, "usage: /join NAME")
		case cmd.RoomKey == "":
			h.Refuse(m, "bad room name")
		default:
			h.joinRoom(m, cmd.Room, cmd.RoomKey, now)
		}
	case OpLeave:
		if cmd.Room != "" && cmd.RoomKey == "" {
			h.Refuse(m, "bad room name")
			return
		}
		h.leaveRoom(m, cmd.Room, cmd.RoomKey, now)
	case OpRooms:
		m.session.Reply(h.roomList(m, now))
	case OpPrivate:
		if cmd.To == 0 {
			h.Refuse(m, "uid "+string(target)+" is not online")
			return
		}
		h.say(m, now, cmd.To, target, cmd.Text, nil)
	case OpHelp:
		m.session.Reply(&Event{Kind: KindInfo, UID: m.uid, Time: now})
	case OpNick:
		h.setNick(m, cmd.Text)
	case OpWho:
		h.whoCommand(m, cmd, now)
	case OpQuit:
		m.session.Reply(&Event{Kind: KindBye, UID: m.uid, Text: "bye", Time: now})
		m.closed = true
		m.session.Close(ReasonClientQuit)
	case OpAuth:
		if cmd.Text == "" {
			h.Refuse(m, "usage: /auth TOKEN")
			return
		}
		h.Auth(m, cmd.Text)
	case OpUnknown:
		h.Refuse(m, "unknown command "+cmd.Text)
	}
}

// Say sends text from m to everyone (to = 0) or to uid to: the structured
// form of a text line, used by the JSON subprotocol. It is safe for
// concurrent use.
func (h *Hub) Say(m *Member, to uint64, text string) {
	now := h.now()
	if !h.allow(m, now, 1, len(text)) {
		return
	}
	if m.opening() {
		h.hold(m, len(text), false, func() { h.sayGated(m, to, text, h.now()) })
		return
	}
	h.sayGated(m, to, text, now)
}

// sayGated is Say past the rate limit: the authentication gate, then the
// say.
func (h *Hub) sayGated(m *Member, to uint64, text string, now time.Time) {
	if !h.authGate(m, OpBroadcast) {
		return
	}
	var r *Room
	if to == 0 {
		if r = h.current(m); r == nil {
			h.Refuse(m, "you are in no room: /join NAME")
			return
		}
	}
	h.say(m, now, to, nil, text, r)
}

// SayRoom sends text from m to the room named room ("#" in front
// optional), which m must be in: the structured form of "#room text".
// Like Handle, it is called on the goroutine that handles m's lines.
func (h *Hub) SayRoom(m *Member, room, text string) {
	now := h.now()
	if !h.allow(m, now, 1, len(text)) {
		return
	}
	if m.opening() {
		h.hold(m, len(text), false, func() { h.sayRoomGated(m, room, text, h.now()) })
		return
	}
	h.sayRoomGated(m, room, text, now)
}

// sayRoomGated is SayRoom past the rate limit.
func (h *Hub) sayRoomGated(m *Member, room, text string, now time.Time) {
	if !h.authGate(m, OpRoomSay) {
		return
	}
	shown, key, ok := roomArg([]byte(room))
	if !ok {
		h.Refuse(m, "bad room name")
		return
	}
	h.sayRoom(m, shown, key, text, now)
}

// JoinRoom is "/join room" from m; LeaveRoom is "/leave room" (room ""
// = the current one). Like Handle, they are called on the goroutine that
// handles m's lines.
func (h *Hub) JoinRoom(m *Member, room string) { h.roomInput(m, room, (*Hub).joinGated) }

// roomInput is JoinRoom and LeaveRoom: past the rate limit, gated (the
// rest of them) runs now, or once the room m opens is entered.
func (h *Hub) roomInput(m *Member, room string, gated func(*Hub, *Member, string, time.Time)) {
	now := h.now()
	if !h.allow(m, now, 1, len(room)) {
		return
	}
	if m.opening() {
		h.hold(m, len(room), false, func() { gated(h, m, room, h.now()) })
		return
	}
	gated(h, m, room, now)
}

// joinGated is JoinRoom past the rate limit.
func (h *Hub) joinGated(m *Member, room string, now time.Time) {
	if !h.authGate(m, OpJoin) {
		return
	}
	shown, key, ok := roomArg([]byte(room))
	if !ok {
		h.Refuse(m, "bad room name")
		return
	}
	h.joinRoom(m, shown, key, now)
}

// LeaveRoom: see [Hub.JoinRoom].
func (h *Hub) LeaveRoom(m *Member, room string) { h.roomInput(m, room, (*Hub).leaveGated) }

// leaveGated is LeaveRoom past the rate limit.
func (h *Hub) leaveGated(m *Member, room string, now time.Time) {
	if !h.authGate(m, OpLeave) {
		return
	}
	var shown, key string
	if room != "" {
		var ok bool
		if shown, key, ok = roomArg([]byte(room)); !ok {
			h.Refuse(m, "bad room name")
			return
		}
	}
	h.leaveRoom(m, shown, key, now)
}

// RefuseInput refuses input of size bytes that the transport could not
// make a line of (a JSON object of the wrong shape) with "! " + text. It
// draws on m's rate limits like a line, so bad input is limited, and its
// flood closes the member, as lines are. Like Handle, it is called on the
// goroutine that handles m's lines.
func (h *Hub) RefuseInput(m *Member, text string, size int) {
	if h.allow(m, h.now(), 1, size) {
		h.Refuse(m, text)
	}
}

// allow applies m's rate limits to one line of size bytes that costs
// cost line tokens: past either the line is refused with "! slow down",
// and persistent flooding closes the session.
func (h *Hub) allow(m *Member, now time.Time, cost, size int) bool {
	if m.closed {
		return false
	}
	if m.allow(now, cost, size) {
		m.refused = 0
		return true
	}
	if m.refused++; m.refused > int32(m.burst)*2 {
		m.closed = true
		m.session.Close(ReasonFlood)
		return false
	}
	h.Refuse(m, "slow down")
	return false
}

// say sends text from m to room r (to = 0) or to uid to; target is the
// uid as the member typed it, for the error line (nil = format to).
func (h *Hub) say(m *Member, now time.Time, to uint64, target []byte, text string, r *Room) {
	// Here, where a line enters the room from every transport, and once:
	// nothing downstream prints it with any more care.
	text = CleanLine(text)
	if blank(text) {
		h.Refuse(m, "empty message")
		return
	}
	nick := m.Nick()
	if to == 0 {
		h.broker.Publish(&Event{Kind: KindMessage, UID: m.uid, Nick: nick, Text: text, Room: r, Time: now})
		return
	}
	dst := h.members.load(to)
	if dst == nil && h.cluster != nil && h.sayRemote(m, now, to, nick, text) {
		return
	}
	if dst == nil {
		if target == nil {
			target = strconv.AppendUint(nil, to, 10)
		}
		h.Refuse(m, "uid "+string(target)+" is not online")
		return
	}
	toNick := dst.Nick()
	if dst == m {
		m.session.Reply(privateMessage(m.uid, nick, to, toNick, text, now, false))
		return
	}
	dst.session.Send(privateMessage(m.uid, nick, to, toNick, text, now, false))
	m.session.Reply(privateMessage(m.uid, nick, to, toNick, text, now, true))
}

// privateMessage returns text from uid to uid to, or the sender's echo of
// it, as an event for one session, which may release it (see [Event]).
func privateMessage(uid uint64, nick string, to uint64, toNick, text string, now time.Time, echo bool) *Event {
	ev := pool.Get().(*Event)
	*ev = Event{Kind: KindMessage, UID: uid, Nick: nick, To: to, ToNick: toNick, Private: true, Echo: echo, Text: text, Time: now, pooled: true}
	return ev
}

func (h *Hub) setNick(m *Member, nick string) {
	if nick == "" {
		h.Refuse(m, "usage: /nick NAME")
		return
	}
	typed := nick
	nick, key, err := checkNick(typed)
	if err != nil {
		h.Refuse(m, "invalid nick "+strconv.Quote(typed)+" ("+err.Error()+")")
		return
	}
	h.mu.Lock()
	if h.members.load(m.uid) != m || m.Nick() == nick { // gone, or no change
		h.mu.Unlock()
		return
	}
	if owner, taken := h.nicks[key]; taken && owner != m.uid && !h.sharesNickLocked(m, owner) {
		h.mu.Unlock()
		h.Refuse(m, "nick "+nick+" is taken")
		return
	}
	if h.cluster != nil {
		// The claim waits for the cluster: not under mu.
		h.mu.Unlock()
		h.claimNick(m, nick, key)
		return
	}
	h.renameLocked(m, nick, key)
}

// renameLocked gives m the nick nick (key key), which h.mu (held, and
// unlocked on return) says is free for it, and tells the room.
func (h *Hub) renameLocked(m *Member, nick, key string) {
	old, oldKey := m.Nick(), ""
	if old != "" {
		oldKey = m.nick.Load().key
	}
	h.releaseNickLocked(m) // see user.go: one user's connections share a nick
	h.holdNickLocked(m, key)
	m.nick.Store(&nickName{shown: nick, key: key})
	h.mu.Unlock()
	if h.cluster != nil {
		h.cluster.Renamed(m.uid, nick, key)
		if oldKey != "" && oldKey != key {
			h.cluster.ReleaseNick(m.uid, oldKey)
		}
	}
	h.broker.Publish(&Event{Kind: KindNick, UID: m.uid, Nick: nick, OldNick: old, Time: h.now()})
}

// WhoMax is the most members one /who lists; "/who +N" lists page N of
// the room in uid order. One line of a 12,000-member listing cost the
// asker's event loop as much as 1,000 broadcasts, so a page is what one
// command may cost.
const WhoMax = 100

// whoLinesPerToken is how many listed members cost one rate-limit token.
const whoLinesPerToken = 10

// whoCost returns the rate-limit tokens a /who costs m: one per
// whoLinesPerToken members it would list, at least 1, and at most m's
// burst, so that a page is never out of reach.
func (h *Hub) whoCost(m *Member, cmd Command) int {
	n := h.online()
	if r := h.whoRoom(m, cmd); r != nil && !r.lobby {
		n = h.roomCount(r)
	}
	return roomWhoCost(m, n, cmd.Page)
}

// whoRoom returns the room a /who lists, if it exists (nil if not).
func (h *Hub) whoRoom(m *Member, cmd Command) *Room {
	switch {
	case cmd.RoomKey == LobbyName:
		return h.lobby
	case cmd.RoomKey != "":
		h.roomsMu.Lock()
		defer h.roomsMu.Unlock()
		return h.rooms[cmd.RoomKey]
	}
	return h.current(m)
}

// whoCommand carries out /who [NAME] [+PAGE].
func (h *Hub) whoCommand(m *Member, cmd Command, now time.Time) {
	switch {
	case cmd.Page < 0:
		h.Refuse(m, "usage: /who [+PAGE]")
		return
	case cmd.Room != "" && cmd.RoomKey == "":
		h.Refuse(m, "bad room name")
		return
	}
	key := cmd.RoomKey
	if key == "" {
		r := h.current(m)
		if r == nil {
			h.Refuse(m, "you are in no room: /join NAME")
			return
		}
		key = r.key
	}
	if key == LobbyName {
		m.session.Reply(h.who(m, cmd.Page, now))
		return
	}
	ev := h.roomWho(m, key, cmd.Page, now)
	if ev == nil {
		h.Refuse(m, "no room #"+cmd.Room)
		return
	}
	m.session.Reply(ev)
}

// who returns page (0 or 1 = the first) of the member list, at most
// WhoMax members in uid order, with the count online and the number of
// members on later pages. It costs O(WhoMax) allocation whatever the
// room's size.
func (h *Hub) who(m *Member, page int, now time.Time) *Event {
	if h.cluster != nil {
		return h.clusterWho(m, h.lobby, page, now)
	}
	page = max(page, 1)
	online := int(h.members.online.Load())
	skip := min((page-1)*WhoMax, online)
	ms := make([]MemberInfo, 0, min(WhoMax, online-skip))
	h.members.ranked(skip, WhoMax, func(x *Member) {
		ms = append(ms, MemberInfo{UID: x.uid, Nick: x.Nick(), Protocol: x.home.protocol})
	})
	// online is read once, before the walk: members may join or leave
	// meanwhile, and the count and the rest add up to what was online.
	more := max(online-skip-len(ms), 0)
	return &Event{Kind: KindWho, UID: m.uid, Members: ms, Online: online, Page: page, More: more, Room: h.lobby, Time: now}
}

// Refuse sends m an error line ("! " + text). Transports use it for their
// own refusals (a line too long) so they read like the room's. Like
// Handle, it is called on the goroutine that reads m's lines.
func (h *Hub) Refuse(m *Member, text string) {
	// Cleaned too: a refusal may quote what the member typed (an unknown
	// command), and the member's own terminal deserves the same care.
	m.session.Reply(&Event{Kind: KindError, UID: m.uid, Text: CleanLine(text), Time: h.now()})
}

// Member is one session's place in the room, returned by [Hub.Join].
//
// What a message reads comes first: uid, session, nick and rate.
type Member struct {
	uid     uint64
	session Session
	nick    atomic.Pointer[nickName] // nil if none; set under Hub.mu
	// rooms is read by the lobby's fan-out for every recipient: next to
	// uid, in the cache line it reads anyway.
	rooms *memberRooms // nil until the first /join or /leave; owned by the member's goroutine

	// Rate limiting: touched only by the member's reader goroutine. Two
	// token buckets, refilled together: lines and bytes (byteRate 0 = no
	// byte limit). The limits are float32 so that a transport embedding a
	// Member keeps a connection in one 256-byte allocation.
	tokens, byteTokens float64
	last               int64 // unix nanoseconds of the last line
	rate, burst        float32
	byteRate           float32
	byteBurst          float32
	refused            int32
	// closed is set when the room closes the member (/quit, a flood):
	// what it sent after, even in the same read, is not taken.
	closed bool
	// authed is set once the member proved a user identity (see user.go,
	// which keeps the identity itself in the Hub: Member has no room for
	// more). Owned by the member's goroutine.
	authed bool
	// claiming is set while the cluster answers the member's nick claim
	// (see claimNick). Owned by the member's goroutine.
	claiming bool
	// hidden is set for a member that joined while requireAuth held and
	// has not authenticated since: its join was not announced, and its
	// leave will not be. Owned by the member's goroutine.
	hidden bool

	home *home // protocol and fanout
}

// nickName is a member's nick as shown and its key in Hub.nicks (see
// checkNick).
type nickName struct {
	shown, key string
}

// UID returns the member's uid. It is safe for concurrent use.
func (m *Member) UID() uint64 { return m.uid }

// Nick returns the member's nick ("" if none). It is safe for concurrent use.
func (m *Member) Nick() string {
	if p := m.nick.Load(); p != nil {
		return p.shown
	}
	return ""
}

// allow takes cost tokens from m's line bucket, refilled at m.rate per
// second, and size from its byte bucket, refilled at m.byteRate; a line
// either refuses takes nothing from the other.
func (m *Member) allow(now time.Time, cost, size int) bool {
	if m.rate <= 0 && m.byteRate <= 0 {
		return true
	}
	n := now.UnixNano()
	// A wall clock set back (by an operator, or NTP stepping it) makes
	// the time since the last line negative: it refills nothing, rather
	// than draining the bucket and silencing the member for as long.
	dt := float64(max(n-m.last, 0)) / float64(time.Second)
	m.last = n
	m.tokens = min(float64(m.burst), m.tokens+dt*float64(m.rate))
	m.byteTokens = min(float64(m.byteBurst), m.byteTokens+dt*float64(m.byteRate))
	// A line longer than the byte burst (config forbids it; a transport
	// may frame a little more than it counts) costs a full bucket, not
	// a bucket that can never fill.
	bytes := min(float64(size), float64(m.byteBurst))
	if m.rate > 0 && m.tokens < float64(cost) || m.byteRate > 0 && m.byteTokens < bytes {
		return false
	}
	if m.rate > 0 {
		m.tokens -= float64(cost)
	}
	m.byteTokens -= bytes
	return true
}

// Stats is a snapshot of the room. Message counts are kept by the
// transports, per event loop, where counting costs no shared cache line.
type Stats struct {
	Members     int    // online now
	JoinedTotal uint64 // members ever joined
	Rooms       int    // rooms that exist now, the lobby aside
}

// Stats returns a snapshot of the room's counters. It is safe for
// concurrent use.
func (h *Hub) Stats() Stats {
	// Every uid handed out is a member that joined.
	joined := h.lastUID.Load()
	if h.cluster != nil {
		joined = h.joined.Load()
	}
	return Stats{Members: int(h.members.online.Load()), JoinedTotal: joined, Rooms: int(h.numRooms.Load())}
}
