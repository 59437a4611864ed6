package chat

import (
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Identity is what a verified user token says about its holder: the
// application's user id, the nick it wants (optional) and the rooms to
// join (optional). The server verifies tokens (chat knows no JWT) and
// hands the Hub an Identity.
type Identity struct {
	User  string   // the application's user id, 1-64 bytes
	Name  string   // becomes the nick; "" = keep the nick
	Rooms []string // joined on authentication
	// Expires is when the token stops being good (its exp plus the clock
	// skew allowed); zero = never. A session that is an [Expirer] is told.
	Expires time.Time
}

// Expirer is implemented by sessions that close their member when its
// token expires (reason ReasonTokenExpired), as Centrifugo's connection
// expiry: a token's exp bounds the connection, not only the /auth.
type Expirer interface {
	// Expire sets when the session is to be closed: at (zero = never),
	// replacing what an earlier authentication set. It is called on the
	// goroutine that handles the member's lines and must not block.
	Expire(at time.Time)
}

// Verifier checks a user token and returns its identity, or an error
// whose text is the short reason the member reads after "! bad token: "
// ("expired", "bad signature"): never a secret. It must be safe for
// concurrent use and must not block.
type Verifier func(token string) (Identity, error)

// AuthOptions configures identity on a [Hub]; see [Hub.SetAuth].
type AuthOptions struct {
	Verify Verifier // nil: /auth is refused ("! authentication is off")
	// Require makes unauthenticated members unable to do anything but
	// /auth, /help and /quit; the transport closes them with
	// ReasonAuthTimeout once Timeout has passed (see [Hub.AuthDeadline]).
	Require bool
	Timeout time.Duration
	// OnAuth, if set, is called with "" for each success and with the
	// reason for each refusal, for metrics. It must not block.
	OnAuth func(reason string)
	// MaxPerUser is the most connections one user id may hold at once
	// (0 = unlimited): one more authentication is refused and its member
	// stays as it was. It bounds what the API's per-user join, leave,
	// send and disconnect cost.
	MaxPerUser int
}

// ReasonTooMany is the OnAuth reason of an authentication refused by
// AuthOptions.MaxPerUser.
const ReasonTooMany = "too many connections"

// identities is the Hub's part for users: who holds which uid, and the
// settings of SetAuth. Kept out of Member (see Member's size budget):
// a member only carries a bool, its authenticated flag.
type identities struct {
	opts     atomic.Pointer[AuthOptions]
	required atomic.Int64 // unix nanoseconds when Require was last turned on

	mu     sync.RWMutex
	byUID  map[uint64]string    // guarded by mu: uid -> user id
	byUser map[string][]*Member // guarded by mu: user id -> its members, in uid order

	// shared holds, for a nick that several connections of one user
	// hold, the uids holding it besides the one in Hub.nicks. Guarded by
	// Hub.mu, not mu: it is part of the nick registry (see holdNickLocked).
	shared map[string][]uint64
}

// SetAuth sets how members authenticate (at start and on reload). It is
// safe for concurrent use; members already authenticated stay so.
//
// Turning Require on (at a reload) gives the members already online
// Timeout from then, not from their connect: see [Hub.AuthDeadline].
func (h *Hub) SetAuth(o AuthOptions) {
	if prev := h.ids.opts.Swap(&o); o.Require && (prev == nil || !prev.Require) {
		h.ids.required.Store(h.now().UnixNano())
	}
}

func (h *Hub) authOptions() *AuthOptions {
	if p := h.ids.opts.Load(); p != nil {
		return p
	}
	return &AuthOptions{}
}

// AuthRequired reports whether members must authenticate (requireAuth):
// until they do, they read nothing said in the rooms. It is safe for
// concurrent use.
func (h *Hub) AuthRequired() bool { return h.authOptions().Require }

// AuthDeadline returns how long an unauthenticated member may stay, from
// its connect or from since (when requireAuth was turned on), whichever
// is later, and whether there is such a limit (requireAuth). It is safe
// for concurrent use.
func (h *Hub) AuthDeadline() (timeout time.Duration, since int64, on bool) {
	o := h.authOptions()
	return o.Timeout, h.ids.required.Load(), o.Require && o.Timeout > 0
}

// Authenticated reports whether m proved a user identity. It must be
// called on the goroutine that handles m's lines.
func (m *Member) Authenticated() bool { return m.authed }

// User returns the user id of member uid, "" if anonymous or gone. It is
// safe for concurrent use.
func (h *Hub) User(uid uint64) string {
	h.ids.mu.RLock()
	defer h.ids.mu.RUnlock()
	return h.ids.byUID[uid]
}

// Auth verifies token for m with the configured Verifier and, if it is
// good, authenticates m: the transports' "/auth TOKEN", "?token=" and
// {"auth": TOKEN} all end here. A bad token is answered
// "! bad token: REASON" and leaves m as it was. It is called on the
// goroutine that handles m's lines.
func (h *Hub) Auth(m *Member, token string) {
	o := h.authOptions()
	if o.Verify == nil {
		h.Refuse(m, "authentication is off")
		return
	}
	id, err := o.Verify(token)
	if err != nil {
		if o.OnAuth != nil {
			o.OnAuth(err.Error())
		}
		h.Refuse(m, "bad token: "+err.Error())
		return
	}
	ok := h.Authenticate(m, id)
	if o.OnAuth != nil {
		if ok {
			o.OnAuth("")
		} else if h.members.load(m.uid) == m {
			o.OnAuth(ReasonTooMany)
		}
	}
	if ok && h.cluster != nil {
		h.clusterAuthed(m)
	}
}

// Authenticate makes m the member of user id.User: id.Name becomes its
// nick (taken over from whoever holds it: the user's name wins; the
// user's other connections share it), and it joins id.Rooms. m reads
// "* authenticated as NAME (user ID)". A second authentication replaces
// the first. Past AuthOptions.MaxPerUser connections of the user it is
// refused ("! too many connections for user ID (maxConnectionsPerUser
// N)") and m stays as it was. It returns whether m is now the user's.
// It is called on the goroutine that handles m's lines.
func (h *Hub) Authenticate(m *Member, id Identity) bool {
	if h.members.load(m.uid) != m {
		return false // gone
	}
	now := h.now()
	limit := h.authOptions().MaxPerUser
	h.ids.mu.Lock()
	if h.ids.byUID == nil {
		h.ids.byUID = make(map[uint64]string)
		h.ids.byUser = make(map[string][]*Member)
	}
	old, had := h.ids.byUID[m.uid]
	if limit > 0 && (!had || old != id.User) && len(h.ids.byUser[id.User]) >= limit {
		h.ids.mu.Unlock()
		h.Refuse(m, "too many connections for user "+id.User+" (maxConnectionsPerUser "+strconv.Itoa(limit)+")")
		return false
	}
	if had {
		h.dropUserLocked(m, old)
	}
	h.ids.byUID[m.uid] = id.User
	ms := h.ids.byUser[id.User]
	i, _ := slices.BinarySearchFunc(ms, m.uid, func(x *Member, uid uint64) int { return cmpUID(x.uid, uid) })
	h.ids.byUser[id.User] = slices.Insert(ms, i, m)
	h.ids.mu.Unlock()
	m.authed = true
	if e, ok := m.session.(Expirer); ok {
		e.Expire(id.Expires)
	}
	// The answer first, then the nick change everyone sees: the member
	// learns who it is before it reads its new name.
	shown := m.Nick()
	nick, key, err := checkNick(id.Name)
	if id.Name != "" && err == nil {
		shown = nick
	}
	if shown == "" {
		shown = "uid " + strconv.FormatUint(m.uid, 10)
	}
	m.session.Reply(&Event{Kind: KindAuth, UID: m.uid, Nick: shown, Text: "authenticated as " + shown + " (user " + id.User + ")", Time: now})
	if m.hidden { // joined anonymous under requireAuth: announced now
		m.hidden = false
		h.announceLobbyJoin(m, now)
	}
	switch {
	case id.Name == "":
	case err != nil:
		h.Refuse(m, "token name "+strconv.Quote(id.Name)+" is not a valid nick ("+err.Error()+")")
	default:
		h.takeNick(m, nick, key, now)
	}
	h.joinTokenRooms(m, id.Rooms, now)
	return true
}

// joinTokenRooms makes m join rooms, a token's. Once one of them opens
// (see awaitRoom), the rest wait for it, together, and are not refused
// however much waits (see hold). m's goroutine only.
func (h *Hub) joinTokenRooms(m *Member, rooms []string, now time.Time) {
	for i, room := range rooms {
		if m.opening() {
			rest := rooms[i:]
			h.hold(m, 0, true, func() { h.joinTokenRooms(m, rest, h.now()) })
			return
		}
		if s, key, ok := roomArg([]byte(room)); ok {
			h.joinRoom(m, s, key, now)
		}
	}
}

// announceLobbyJoin tells the lobby that m joined, if m is in it and the
// lobby is not past the announce limit.
func (h *Hub) announceLobbyJoin(m *Member, now time.Time) {
	if !m.InLobby() {
		return
	}
	if h.announced(int64(h.roomCount(h.lobby))) {
		h.broker.Publish(&Event{Kind: KindJoin, UID: m.uid, Nick: m.Nick(), Except: m.uid, Room: h.lobby, Time: now})
	}
}

func cmpUID(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// dropUserLocked takes m out of user's list. h.ids.mu is held.
func (h *Hub) dropUserLocked(m *Member, user string) {
	ms := slices.DeleteFunc(h.ids.byUser[user], func(x *Member) bool { return x == m })
	if len(ms) == 0 {
		delete(h.ids.byUser, user)
	} else {
		h.ids.byUser[user] = ms
	}
	delete(h.ids.byUID, m.uid)
}

// forgetUser takes m out of the user index as it leaves.
func (h *Hub) forgetUser(m *Member) {
	if !m.authed {
		return
	}
	h.ids.mu.Lock()
	if user, ok := h.ids.byUID[m.uid]; ok {
		h.dropUserLocked(m, user)
	}
	h.ids.mu.Unlock()
}

// takeNick gives m the nick (checked: see checkNick, which gave key),
// taking it from its holders if need be: a name a user token vouches for
// wins over one anyone could type. Connections of one user share it.
func (h *Hub) takeNick(m *Member, nick, key string, now time.Time) {
	h.mu.Lock()
	if h.members.load(m.uid) != m || m.Nick() == nick {
		h.mu.Unlock()
		return
	}
	var losers []*Member
	if owner, taken := h.nicks[key]; taken && owner != m.uid && !h.sharesNickLocked(m, owner) {
		for _, uid := range append([]uint64{owner}, h.ids.shared[key]...) {
			if l := h.members.load(uid); l != nil && l != m {
				l.nick.Store(nil)
				losers = append(losers, l)
			}
		}
		delete(h.nicks, key)
		delete(h.ids.shared, key)
	}
	old := m.Nick()
	h.releaseNickLocked(m)
	h.holdNickLocked(m, key)
	m.nick.Store(&nickName{shown: nick, key: key})
	h.mu.Unlock()
	for _, l := range losers {
		l.session.Send(&Event{Kind: KindError, UID: l.uid, Text: "your nick " + nick + " was taken by its user", Time: now})
	}
	h.broker.Publish(&Event{Kind: KindNick, UID: m.uid, Nick: nick, OldNick: old, Time: now})
}

// sharesNickLocked reports whether m may share the nick owner holds: both
// are connections of one user (a phone and a laptop). h.mu is held; it
// is called on m's goroutine.
func (h *Hub) sharesNickLocked(m *Member, owner uint64) bool {
	if !m.authed {
		return false
	}
	h.ids.mu.RLock()
	defer h.ids.mu.RUnlock()
	user, ok := h.ids.byUID[m.uid]
	return ok && h.ids.byUID[owner] == user
}

// holdNickLocked records m as a holder of key: the one in Hub.nicks if
// it is free, else one more in shared (the caller checked that m may
// share it). h.mu is held.
func (h *Hub) holdNickLocked(m *Member, key string) {
	if _, taken := h.nicks[key]; !taken {
		h.nicks[key] = m.uid
		return
	}
	if h.ids.shared == nil {
		h.ids.shared = make(map[string][]uint64)
	}
	h.ids.shared[key] = append(h.ids.shared[key], m.uid)
}

// releaseNickLocked lets go of m's nick, if any: the key stays taken
// while another holder has it, and is free once the last one lets go.
// It leaves m.nick as it is. h.mu is held.
func (h *Hub) releaseNickLocked(m *Member) {
	p := m.nick.Load()
	if p == nil {
		return
	}
	key := p.key
	rest := h.ids.shared[key]
	if owner, ok := h.nicks[key]; ok && owner == m.uid {
		if len(rest) == 0 {
			delete(h.nicks, key)
			return
		}
		h.nicks[key], rest = rest[0], rest[1:]
	} else {
		rest = slices.DeleteFunc(rest, func(uid uint64) bool { return uid == m.uid })
	}
	if len(rest) == 0 {
		delete(h.ids.shared, key)
	} else {
		h.ids.shared[key] = rest
	}
}

// authGate reports whether m may run op: with requireAuth, an
// unauthenticated member may only /auth, /help and /quit; anything else
// is refused with "! authenticate first: /auth TOKEN".
func (h *Hub) authGate(m *Member, op Op) bool {
	if m.authed || op == OpAuth || op == OpHelp || op == OpQuit || op == OpNone {
		return true
	}
	if !h.authOptions().Require {
		return true
	}
	h.Refuse(m, "authenticate first: /auth TOKEN")
	return false
}

// Target says whom an application's message or action is for: exactly
// one of Room, UID or User, or none of them for everyone.
type Target struct {
	Room string // a room name ("#" optional)
	UID  uint64
	User string
}

// SendServer sends text from the server (an application, through the
// HTTP API) to t: everyone, a room, a uid or every connection of a user.
// Telnet members read "server: text" ("[#games] server: text" from
// another room); JSON members a "message" from 0 with nick "server". It
// returns the members it is for: those online, in the room, with the uid
// or of the user. A room or everyone costs one publish (one append per
// reactor), as a chat line does. It is safe for concurrent use and does
// not block. The text is cleaned as a member's line is.
func (h *Hub) SendServer(t Target, text string) int {
	text = CleanLine(text)
	now := h.now()
	ev := &Event{Kind: KindMessage, Nick: ServerNick, Text: text, Time: now}
	switch {
	case t.Room != "":
		r := h.findRoom(t.Room)
		if r == nil && h.cluster != nil {
			// A room with members on other nodes only: its publish
			// reaches them, and nobody here.
			_, key, _ := roomArg([]byte(t.Room))
			r = h.remoteRoom(key)
		}
		if r == nil {
			return 0
		}
		ev.Room = r
		n := h.roomCount(r)
		if n > 0 {
			h.broker.Publish(ev)
		}
		return n
	case t.UID != 0, t.User != "":
		n := h.sendLocal(t, ev)
		if h.cluster != nil {
			n += h.forward(Forwarded{Op: ForwardSend, Target: t, Arg: text})
		}
		return n
	}
	n := h.online()
	if n > 0 {
		h.broker.Publish(ev)
	}
	return n
}

// sendLocal sends ev to the members of t.UID or t.User on this node.
func (h *Hub) sendLocal(t Target, ev *Event) int {
	ms := h.targets(t)
	for _, m := range ms {
		m.session.Send(ev)
	}
	return len(ms)
}

// ServerNick is the nick of what the server (an application) sends.
const ServerNick = "server"

// UserMembers returns the members of user id, in uid order. It is safe
// for concurrent use.
func (h *Hub) UserMembers(user string) []*Member {
	h.ids.mu.RLock()
	defer h.ids.mu.RUnlock()
	return slices.Clone(h.ids.byUser[user])
}

// targets returns the members of uid or user (one of them set).
func (h *Hub) targets(t Target) []*Member {
	if t.UID != 0 {
		if m := h.members.load(t.UID); m != nil {
			return []*Member{m}
		}
		return nil
	}
	return h.UserMembers(t.User)
}

// Runner is implemented by sessions that can run a function on the
// goroutine that handles their member's lines (in the server, its event
// loop): what changes a member's rooms must run there.
type Runner interface {
	// Run queues fn to run on the member's goroutine, in order with the
	// session's other events. It must not block; it is safe for
	// concurrent use.
	Run(fn func())
}

// JoinFor makes the members of t.UID or t.User join room (the API's
// join), as if each had typed "/join room", rate limits aside. It
// returns the members it is for (those whose session is a [Runner]), or
// -1 if room is not a valid room name. The join runs on each member's own goroutine, so it may not be
// done when JoinFor returns. It is safe for concurrent use and does not
// block.
func (h *Hub) JoinFor(t Target, room string) int { return h.roomFor(t, room, true) }

// LeaveFor is JoinFor for "/leave room".
func (h *Hub) LeaveFor(t Target, room string) int { return h.roomFor(t, room, false) }

func (h *Hub) roomFor(t Target, room string, join bool) int {
	shown, key, ok := roomArg([]byte(room))
	if !ok {
		return -1
	}
	n := h.roomForLocal(t, shown, key, join)
	if h.cluster != nil {
		op := ForwardLeave
		if join {
			op = ForwardJoin
		}
		n += h.forward(Forwarded{Op: op, Target: t, Arg: room})
	}
	return n
}

// roomForLocal is roomFor for this node's members.
func (h *Hub) roomForLocal(t Target, shown, key string, join bool) int {
	n := 0
	for _, m := range h.targets(t) {
		r, ok := m.session.(Runner)
		if !ok {
			continue // nothing to run the change on
		}
		n++
		r.Run(func() {
			if m.opening() { // after what m sent before, as if typed
				h.hold(m, len(shown), false, func() { h.roomForMember(m, shown, key, join) })
				return
			}
			h.roomForMember(m, shown, key, join)
		})
	}
	return n
}

// roomForMember is roomForLocal for one member, on its goroutine: a leave
// of a room it is not in does nothing.
func (h *Hub) roomForMember(m *Member, shown, key string, join bool) {
	if join {
		h.joinRoom(m, shown, key, h.now())
	} else if m.rooms != nil && m.rooms.find(key) >= 0 || m.rooms == nil && key == LobbyName {
		h.leaveRoom(m, shown, key, h.now())
	}
}

// Disconnect closes the connections of t.UID or t.User with
// ReasonDisconnected, after telling each "server: disconnected: REASON"
// (reason "" = none given). It returns the members closed. It is safe
// for concurrent use and does not block.
func (h *Hub) Disconnect(t Target, reason string) int {
	n := h.disconnectLocal(t, disconnectText(reason))
	if h.cluster != nil {
		n += h.forward(Forwarded{Op: ForwardDisconnect, Target: t, Arg: reason})
	}
	return n
}

// disconnectText is what a member disconnected for reason reads.
func disconnectText(reason string) string {
	text := "disconnected"
	if reason = strings.TrimSpace(CleanLine(reason)); reason != "" {
		text += ": " + reason
	}
	return text
}

// disconnectLocal is Disconnect for this node's members.
func (h *Hub) disconnectLocal(t Target, text string) int {
	ms := h.targets(t)
	now := h.now()
	for _, m := range ms {
		m.session.Send(&Event{Kind: KindMessage, Nick: ServerNick, Text: text, Time: now})
		m.session.Close(ReasonDisconnected)
	}
	return len(ms)
}

// Online is a count of who is connected, for the API's /online.
type Online struct {
	Members int // connections that joined
	Users   int // distinct authenticated users
	Rooms   int // rooms, the lobby among them
}

// Online returns the counts of members, users and rooms. It is safe for
// concurrent use.
func (h *Hub) Online() Online {
	if h.cluster != nil {
		return h.clusterOnline()
	}
	h.ids.mu.RLock()
	users := len(h.ids.byUser)
	h.ids.mu.RUnlock()
	return Online{Members: h.online(), Users: users, Rooms: int(h.numRooms.Load()) + 1}
}

// RoomList returns every room, the lobby first, then by name, with its
// member count. It is safe for concurrent use.
func (h *Hub) RoomList() []RoomInfo {
	if h.cluster != nil {
		return h.clusterRoomList()
	}
	h.roomsMu.Lock()
	rs := make([]RoomInfo, 0, len(h.rooms)+1)
	for _, r := range h.rooms {
		rs = append(rs, RoomInfo{Name: r.name, Members: int(r.count.Load())})
	}
	h.roomsMu.Unlock()
	slices.SortFunc(rs, func(a, b RoomInfo) int { return strings.Compare(a.Name, b.Name) })
	return append([]RoomInfo{{Name: LobbyName, Members: h.lobbyCount()}}, rs...)
}

// Presence describes one member for the API's /members.
type Presence struct {
	UID      uint64
	Nick     string
	User     string // "" if anonymous
	Protocol string
	Node     string    // the node that holds it ("" on a single daemon; set by a cluster broker)
	Instance string    // from the session's Describer, if it is one
	Since    time.Time // idem
}

// Describer is implemented by sessions that can say where and since when
// they are connected. Its methods are safe for concurrent use.
type Describer interface {
	Describe() (instance string, since time.Time)
}

// MembersOf returns the members of room (at most limit, in uid order;
// limit <= 0 = all), and false if there is no such room. It is safe for
// concurrent use; it costs O(members listed).
func (h *Hub) MembersOf(room string, limit int) ([]Presence, bool) {
	_, key, ok := roomArg([]byte(room))
	if !ok {
		return nil, false
	}
	if limit <= 0 {
		limit = int(^uint(0) >> 1)
	}
	var ms []*Member
	if key == LobbyName {
		// The lobby has no member list: every member but those out of
		// it, which only their own goroutines know; list everyone.
		h.members.ranked(0, limit, func(m *Member) { ms = append(ms, m) })
	} else {
		r := h.findRoom(room)
		if r == nil && h.cluster == nil {
			return nil, false
		}
		if r != nil {
			r.mu.Lock()
			ms = slices.Clone(r.members[:min(limit, len(r.members))])
			r.mu.Unlock()
		}
	}
	out := make([]Presence, len(ms))
	h.ids.mu.RLock()
	for i, m := range ms {
		out[i] = Presence{UID: m.uid, Nick: m.Nick(), User: h.ids.byUID[m.uid], Protocol: m.home.protocol}
	}
	h.ids.mu.RUnlock()
	for i, m := range ms {
		if d, ok := m.session.(Describer); ok {
			out[i].Instance, out[i].Since = d.Describe()
		}
	}
	if h.cluster != nil {
		return h.clusterMembers(out, key == LobbyName || len(ms) > 0, key, limit)
	}
	return out, true
}

// findRoom returns the room named name, nil if none.
func (h *Hub) findRoom(name string) *Room {
	_, key, ok := roomArg([]byte(name))
	if !ok {
		return nil
	}
	if key == LobbyName {
		return h.lobby
	}
	h.roomsMu.Lock()
	defer h.roomsMu.Unlock()
	return h.rooms[key]
}

// ValidRoom reports whether name ("#" in front optional) is a valid room
// name. It is safe for concurrent use.
func ValidRoom(name string) bool {
	_, _, ok := roomArg([]byte(name))
	return ok
}

// MaxUser is the longest user id, in bytes.
const MaxUser = 64

// ValidUser reports whether id may be a user id: 1-64 bytes of clean
// text (valid UTF-8 without control or format characters: see
// [CleanLine]) with no space at either end. A user id is printed to
// members ("* authenticated as alice (user u123)"), so a token the
// application signed carelessly must not carry a terminal escape. It is
// safe for concurrent use.
func ValidUser(id string) bool {
	return id != "" && len(id) <= MaxUser && CleanLine(id) == id && strings.TrimSpace(id) == id
}
