package chat

import (
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Hub is the room. Every session of every instance, reactor and protocol
// joins the one Hub of the daemon. Its methods are safe for concurrent use
// and never block on I/O.
type Hub struct {
	broker   Broker
	now      func() time.Time
	announce atomic.Int64 // AnnounceLimit; 0 = always

	lastUID atomic.Uint64

	mu      sync.RWMutex
	members map[uint64]*Member
	nicks   map[string]uint64 // lower-cased nick -> uid
	groups  []Group

	stats hubCounters
}

// Options configures a [Hub]. The zero value is valid.
type Options struct {
	Broker Broker           // room-wide fan-out; default: a MemoryBroker
	Now    func() time.Time // clock; default time.Now
	// AnnounceLimit is the largest room in which joins and leaves are
	// announced to everyone; 0 = any size. Each announcement goes to every
	// member, so without a limit N clients joining cost N² lines.
	AnnounceLimit int
}

// NewHub returns an empty room.
func NewHub(o Options) *Hub {
	h := &Hub{
		broker:  o.Broker,
		now:     o.Now,
		members: make(map[uint64]*Member),
		nicks:   make(map[string]uint64),
	}
	if h.broker == nil {
		h.broker = NewMemoryBroker()
	}
	if h.now == nil {
		h.now = time.Now
	}
	h.announce.Store(int64(o.AnnounceLimit))
	h.broker.Subscribe(h.deliver)
	return h
}

// AddGroup registers g to receive room-wide events. It is safe for
// concurrent use.
func (h *Hub) AddGroup(g Group) {
	h.mu.Lock()
	h.groups = append(h.groups, g)
	h.mu.Unlock()
}

// RemoveGroup stops room-wide events to g. It is safe for concurrent use.
func (h *Hub) RemoveGroup(g Group) {
	h.mu.Lock()
	h.groups = slices.DeleteFunc(h.groups, func(x Group) bool { return x == g })
	h.mu.Unlock()
}

// deliver hands a published event to every local group.
func (h *Hub) deliver(ev *Event) {
	h.mu.RLock()
	for _, g := range h.groups {
		g.Broadcast(ev)
	}
	h.mu.RUnlock()
}

// JoinOptions describes a newcomer.
type JoinOptions struct {
	Protocol string  // shown by /who: "telnet", "websocket"
	Rate     float64 // lines per second allowed; 0 = unlimited
	Burst    int     // lines allowed at once above Rate; at least 1 when Rate > 0
}

// Join admits s as a new member with a fresh uid: s gets the welcome and
// everyone else the join notice. The transport must make s's group deliver
// to it before calling Join. It is safe for concurrent use.
func (h *Hub) Join(s Session, o JoinOptions) *Member {
	m := &Member{
		uid:      h.lastUID.Add(1),
		session:  s,
		protocol: o.Protocol,
		rate:     o.Rate,
		burst:    float64(max(o.Burst, 1)),
	}
	m.tokens = m.burst
	m.last = h.now()
	// The welcome goes first: it is how a client learns its uid, and once
	// m is in the table others can reach it.
	s.Send(&Event{Kind: KindWelcome, UID: m.uid, Time: m.last})
	h.mu.Lock()
	h.members[m.uid] = m
	n := len(h.members)
	h.mu.Unlock()
	h.stats.joined.Add(1)
	if h.announced(n) {
		h.broker.Publish(&Event{Kind: KindJoin, UID: m.uid, Except: m.uid, Time: m.last})
	}
	return m
}

// Leave removes m and tells everyone else. It is idempotent and safe for
// concurrent use.
func (h *Hub) Leave(m *Member) {
	h.mu.Lock()
	if h.members[m.uid] != m {
		h.mu.Unlock()
		return
	}
	delete(h.members, m.uid)
	nick := m.nick
	if nick != "" {
		delete(h.nicks, strings.ToLower(nick))
	}
	n := len(h.members) + 1 // the room it left
	h.mu.Unlock()
	if h.announced(n) {
		h.broker.Publish(&Event{Kind: KindLeave, UID: m.uid, Nick: nick, Except: m.uid, Time: h.now()})
	}
}

// SetAnnounceLimit changes Options.AnnounceLimit (on reload). It is safe
// for concurrent use.
func (h *Hub) SetAnnounceLimit(n int) { h.announce.Store(int64(n)) }

// announced reports whether joins and leaves are announced in a room of n
// members.
func (h *Hub) announced(n int) bool {
	limit := h.announce.Load()
	return limit == 0 || int64(n) <= limit
}

// Handle carries out one line of the text protocol from m (see [Parse]).
// It is safe for concurrent use; lines from one member must be handled in
// order, which the member's reader does.
func (h *Hub) Handle(m *Member, line []byte) {
	h.stats.linesIn.Add(1)
	cmd := Parse(line)
	now := h.now() // one clock read per line, for the rate limit and the event
	if cmd.Op == OpNone || (cmd.Op != OpQuit && !h.allow(m, now)) {
		return
	}
	switch cmd.Op {
	case OpBroadcast:
		h.say(m, now, 0, "", cmd.Text)
	case OpPrivate:
		if cmd.To == 0 {
			h.refuse(m, "uid "+cmd.Target+" is not online")
			return
		}
		h.say(m, now, cmd.To, cmd.Target, cmd.Text)
	case OpHelp:
		m.session.Send(&Event{Kind: KindInfo, UID: m.uid, Time: now})
	case OpNick:
		h.setNick(m, cmd.Text)
	case OpWho:
		m.session.Send(h.who(m))
	case OpQuit:
		m.session.Close(ReasonClientQuit)
	case OpUnknown:
		h.refuse(m, "unknown command "+cmd.Text)
	}
}

// Say sends text from m to everyone (to = 0) or to uid to: the structured
// form of a text line, used by the JSON subprotocol. It is safe for
// concurrent use.
func (h *Hub) Say(m *Member, to uint64, text string) {
	h.stats.linesIn.Add(1)
	if now := h.now(); h.allow(m, now) {
		h.say(m, now, to, "", text)
	}
}

// allow applies m's rate limit to one line: past it the line is refused
// with "! slow down", and persistent flooding closes the session.
func (h *Hub) allow(m *Member, now time.Time) bool {
	if m.allow(now) {
		m.refused = 0
		return true
	}
	if m.refused++; m.refused > int(m.burst)*2 {
		m.session.Close(ReasonFlood)
		return false
	}
	h.refuse(m, "slow down")
	return false
}

// say sends text from m to everyone (to = 0) or to uid to; target is the
// uid as the member typed it, for the error line ("" = format to).
func (h *Hub) say(m *Member, now time.Time, to uint64, target, text string) {
	// A message is one line: a websocket frame or JSON text holding line
	// breaks must not forge extra lines for telnet readers.
	text = oneLine(text)
	if strings.TrimSpace(text) == "" {
		h.refuse(m, "empty message")
		return
	}
	h.mu.RLock()
	nick := m.nick
	var dst *Member
	if to != 0 {
		dst = h.members[to]
	}
	var toNick string
	if dst != nil {
		toNick = dst.nick
	}
	h.mu.RUnlock()
	if to == 0 {
		h.stats.broadcasts.Add(1)
		h.broker.Publish(&Event{Kind: KindMessage, UID: m.uid, Nick: nick, Text: text, Time: now})
		return
	}
	if dst == nil {
		if target == "" {
			target = strconv.FormatUint(to, 10)
		}
		h.refuse(m, "uid "+target+" is not online")
		return
	}
	h.stats.privates.Add(1)
	dst.session.Send(&Event{Kind: KindMessage, UID: m.uid, Nick: nick, To: to, ToNick: toNick, Private: true, Text: text, Time: now})
	if dst != m {
		m.session.Send(&Event{Kind: KindMessage, UID: m.uid, Nick: nick, To: to, ToNick: toNick, Private: true, Echo: true, Text: text, Time: now})
	}
}

// oneLine replaces line breaks with spaces and leaves every other byte,
// valid UTF-8 or not, as it is (strings.Map would rewrite invalid bytes).
func oneLine(s string) string {
	if !strings.ContainsAny(s, "\r\n") {
		return s
	}
	b := []byte(s)
	for i, c := range b {
		if c == '\r' || c == '\n' {
			b[i] = ' '
		}
	}
	return string(b)
}

func (h *Hub) setNick(m *Member, nick string) {
	if nick == "" {
		h.refuse(m, "usage: /nick NAME")
		return
	}
	if !validNick(nick) {
		h.refuse(m, "invalid nick "+strconv.Quote(nick)+" (1-24 letters, digits, _ - ., not only digits)")
		return
	}
	key := strings.ToLower(nick)
	h.mu.Lock()
	if h.members[m.uid] != m || m.nick == nick { // gone, or no change
		h.mu.Unlock()
		return
	}
	if owner, taken := h.nicks[key]; taken && owner != m.uid {
		h.mu.Unlock()
		h.refuse(m, "nick "+nick+" is taken")
		return
	}
	old := m.nick
	if old != "" {
		delete(h.nicks, strings.ToLower(old))
	}
	h.nicks[key] = m.uid
	m.nick = nick
	h.mu.Unlock()
	h.broker.Publish(&Event{Kind: KindNick, UID: m.uid, Nick: nick, OldNick: old, Time: h.now()})
}

func (h *Hub) who(m *Member) *Event {
	h.mu.RLock()
	ms := make([]MemberInfo, 0, len(h.members))
	for _, x := range h.members {
		ms = append(ms, MemberInfo{UID: x.uid, Nick: x.nick, Protocol: x.protocol})
	}
	h.mu.RUnlock()
	slices.SortFunc(ms, func(a, b MemberInfo) int { return compareUint(a.UID, b.UID) })
	return &Event{Kind: KindWho, UID: m.uid, Members: ms, Online: len(ms), Time: h.now()}
}

func compareUint(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// Refuse sends m an error line ("! " + text). Transports use it for their
// own refusals (a line too long) so they read like the room's.
func (h *Hub) Refuse(m *Member, text string) { h.refuse(m, text) }

func (h *Hub) refuse(m *Member, text string) {
	m.session.Send(&Event{Kind: KindError, UID: m.uid, Text: text, Time: h.now()})
}

// Shutdown tells every member that the daemon is stopping. It is queued
// after every event published before it. It is safe for concurrent use.
func (h *Hub) Shutdown() {
	h.broker.Publish(&Event{Kind: KindShutdown, Time: h.now()})
}

// Lookup returns the member with uid, or nil.
func (h *Hub) Lookup(uid uint64) *Member {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return h.members[uid]
}

// Member is one session's place in the room, returned by [Hub.Join].
type Member struct {
	uid      uint64
	session  Session
	protocol string
	nick     string // guarded by Hub.mu

	// Rate limiting: touched only by the member's reader goroutine.
	rate, burst, tokens float64
	last                time.Time
	refused             int
}

// UID returns the member's uid. It is safe for concurrent use.
func (m *Member) UID() uint64 { return m.uid }

// Nick returns the member's nick ("" if none). It is safe for concurrent use.
func (h *Hub) Nick(m *Member) string {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return m.nick
}

// allow takes one token from m's bucket, refilled at m.rate per second.
func (m *Member) allow(now time.Time) bool {
	if m.rate <= 0 {
		return true
	}
	m.tokens = min(m.burst, m.tokens+now.Sub(m.last).Seconds()*m.rate)
	m.last = now
	if m.tokens < 1 {
		return false
	}
	m.tokens--
	return true
}

type hubCounters struct {
	joined, linesIn, broadcasts, privates atomic.Uint64
}

// Stats is a snapshot of the room.
type Stats struct {
	Members     int    // online now
	JoinedTotal uint64 // members ever joined
	LinesIn     uint64 // client lines handled
	Broadcasts  uint64 // messages to everyone
	Privates    uint64 // private messages delivered
}

// Stats returns a snapshot of the room's counters. It is safe for
// concurrent use.
func (h *Hub) Stats() Stats {
	h.mu.RLock()
	n := len(h.members)
	h.mu.RUnlock()
	return Stats{
		Members:     n,
		JoinedTotal: h.stats.joined.Load(),
		LinesIn:     h.stats.linesIn.Load(),
		Broadcasts:  h.stats.broadcasts.Load(),
		Privates:    h.stats.privates.Load(),
	}
}
