package chat

import (
	"errors"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// stubVerifier accepts "good:USER:NAME[:ROOM]" and refuses anything else
// with the reason "malformed": chat knows no JWT, the server's verifier
// is tested in server/auth.
func stubVerifier(tok string) (Identity, error) {
	parts := strings.Split(tok, ":")
	if len(parts) < 3 || parts[0] != "good" {
		return Identity{}, errors.New("malformed")
	}
	return Identity{User: parts[1], Name: parts[2], Rooms: parts[3:]}, nil
}

func TestAuthenticate(t *testing.T) {
	r := newTestRoom(t)
	var reasons []string
	r.hub.SetAuth(AuthOptions{Verify: stubVerifier, OnAuth: func(reason string) { reasons = append(reasons, reason) }})
	a, sa := r.join(t, JoinOptions{})
	b, sb := r.join(t, JoinOptions{})
	r.drainAll()

	r.send(t, a.UID(), "/auth nonsense")
	if got := drainLines(t, sa); !slices.Equal(got, []string{"! bad token: malformed"}) {
		t.Errorf("bad token: got %q", got)
	}
	if a.Authenticated() || r.hub.User(a.UID()) != "" {
		t.Errorf("a bad token authenticated the member")
	}
	r.send(t, a.UID(), "/auth good:u1:alice:games")
	got := drainLines(t, sa)
	if len(got) < 3 || got[0] != "* authenticated as alice (user u1)" || got[1] != "* uid 1 is now alice" || got[2] != "* you are now in #games (1 member)" {
		t.Errorf("good token: got %q", got)
	}
	r.send(t, b.UID(), "/auth good:u1:")
	if got := drainLines(t, sb); !slices.Contains(got, "* authenticated as uid 2 (user u1)") {
		t.Errorf("second connection: got %q", got)
	}
	if ms := r.hub.UserMembers("u1"); len(ms) != 2 || ms[0] != a || ms[1] != b {
		t.Errorf("user u1: got %v, want both members", ms)
	}
	if o := r.hub.Online(); o != (Online{Members: 2, Users: 1, Rooms: 2}) {
		t.Errorf("Online: got %+v", o)
	}
	if !slices.Equal(reasons, []string{"malformed", "", ""}) {
		t.Errorf("OnAuth: got %q", reasons)
	}
	// Re-authenticating as another user moves the member.
	r.send(t, b.UID(), "/auth good:u2:")
	if len(r.hub.UserMembers("u1")) != 1 || len(r.hub.UserMembers("u2")) != 1 {
		t.Errorf("after re-auth: u1 %v, u2 %v", r.hub.UserMembers("u1"), r.hub.UserMembers("u2"))
	}
	r.leave(t, a.UID())
	r.leave(t, b.UID())
	if o := r.hub.Online(); o.Users != 0 || len(r.hub.UserMembers("u1")) != 0 {
		t.Errorf("after leaving: %+v, u1 %v: the user index keeps gone members", o, r.hub.UserMembers("u1"))
	}
}

func TestAuthOff(t *testing.T) {
	r := newTestRoom(t)
	a, sa := r.join(t, JoinOptions{})
	r.drainAll()
	r.send(t, a.UID(), "/auth good:u1:x", "/auth")
	if got := drainLines(t, sa); !slices.Equal(got, []string{"! authentication is off", "! usage: /auth TOKEN"}) {
		t.Errorf("got %q", got)
	}
}

// TestRequireAuthGate: with requireAuth, an anonymous member may only
// /auth, /help and /quit, and is no one to announce: its join is told
// once it authenticates, and its leave, anonymous, not at all.
func TestRequireAuthGate(t *testing.T) {
	r := newTestRoom(t)
	r.hub.SetAuth(AuthOptions{Verify: stubVerifier, Require: true, Timeout: time.Second})
	a, sa := r.join(t, JoinOptions{})
	b, sb := r.join(t, JoinOptions{})
	if got := drainLines(t, sa); slices.ContainsFunc(got, func(l string) bool { return strings.Contains(l, "joined") }) {
		t.Errorf("an anonymous member was announced: a got %q", got)
	}
	r.drainAll()
	r.send(t, a.UID(), "hello", "/join games", "/nick x", "$2:psst", "#games hi", "/who", "/rooms")
	got := drainLines(t, sa)
	if len(got) != 7 || slices.ContainsFunc(got, func(l string) bool { return l != "! authenticate first: /auth TOKEN" }) {
		t.Errorf("anonymous lines: got %q", got)
	}
	if got := drainLines(t, sb); len(got) != 0 {
		t.Errorf("others got %q from an anonymous member", got)
	}
	r.send(t, a.UID(), "/help")
	if got := drainLines(t, sa); len(got) == 0 || got[0] != "* commands:" {
		t.Errorf("/help: got %q", got)
	}
	r.hub.Say(a, 0, "structured")
	r.send(t, a.UID(), "/auth good:u1:alice", "now I may")
	if got := drainLines(t, sb); !slices.Equal(got, []string{"* uid 1 joined", "* uid 1 is now alice", "alice(1): now I may"}) {
		t.Errorf("after auth: b got %q, want a's join, held until it authenticated, the nick change and the line, not what a said before", got)
	}
	if _, _, on := r.hub.AuthDeadline(); !on {
		t.Errorf("AuthDeadline: requireAuth is off")
	}
	r.send(t, b.UID(), "/quit")
	if closes := sb.Closes(); !slices.Equal(closes, []CloseReason{ReasonClientQuit}) {
		t.Errorf("/quit while anonymous: got %v", closes)
	}
	r.hub.Leave(b)
	if got := drainLines(t, sa); slices.ContainsFunc(got, func(l string) bool { return strings.Contains(l, "left") }) {
		t.Errorf("an anonymous member's leave was announced: a got %q", got)
	}
	_, sc := r.join(t, JoinOptions{}) // to see that a's leave, once authenticated, is announced
	r.drainAll()
	r.hub.Leave(a)
	if got := drainLines(t, sc); !slices.Equal(got, []string{"* alice(1) left"}) {
		t.Errorf("an authenticated member left: the others got %q", got)
	}
}

func TestNameTakesNickOver(t *testing.T) {
	r := newTestRoom(t)
	r.hub.SetAuth(AuthOptions{Verify: stubVerifier})
	squatter, ss := r.join(t, JoinOptions{})
	owner, so := r.join(t, JoinOptions{})
	r.send(t, squatter.UID(), "/nick Alice")
	r.drainAll()
	r.send(t, owner.UID(), "/auth good:u1:alice")
	if squatter.Nick() != "" || owner.Nick() != "alice" {
		t.Fatalf("got nicks %q and %q, want the token's name to win", squatter.Nick(), owner.Nick())
	}
	if got := drainLines(t, ss); !slices.Contains(got, "! your nick alice was taken by its user") {
		t.Errorf("squatter got %q", got)
	}
	if got := drainLines(t, so); got[0] != "* authenticated as alice (user u1)" {
		t.Errorf("owner got %q", got)
	}
	r.send(t, squatter.UID(), "/nick alice")
	if got := drainLines(t, ss); !slices.Contains(got, "! nick alice is taken") {
		t.Errorf("squatter retaking: got %q", got)
	}
	// A name that is no valid nick leaves the nick alone but authenticates.
	r.send(t, squatter.UID(), "/auth good:u2:bad name!")
	got := drainLines(t, ss)
	if len(got) != 2 || got[0] != "* authenticated as uid 1 (user u2)" || !strings.HasPrefix(got[1], `! token name "bad name!" is not a valid nick`) {
		t.Errorf("invalid name: got %q", got)
	}
}

func TestSendServer(t *testing.T) {
	r := newTestRoom(t)
	r.hub.SetAuth(AuthOptions{Verify: stubVerifier})
	a, sa := r.join(t, JoinOptions{})
	b, sb := r.join(t, JoinOptions{})
	r.send(t, a.UID(), "/auth good:u1:alice")
	r.drainAll()
	if n := r.hub.SendServer(Target{}, "to all\x1b[2J"); n != 2 {
		t.Errorf("everyone: delivered %d, want 2", n)
	}
	for _, s := range []*fakeSession{sa, sb} {
		if got := drainLines(t, s); len(got) != 1 || !strings.HasPrefix(got[0], "server: to all") || strings.Contains(got[0], "\x1b") {
			t.Errorf("everyone: got %q, want a cleaned server line", got)
		}
	}
	if n := r.hub.SendServer(Target{User: "u1"}, "yours"); n != 1 {
		t.Errorf("user: delivered %d", n)
	}
	if n := r.hub.SendServer(Target{UID: b.UID()}, "b only"); n != 1 {
		t.Errorf("uid: delivered %d", n)
	}
	if n := r.hub.SendServer(Target{User: "nobody"}, "x"); n != 0 {
		t.Errorf("unknown user: delivered %d", n)
	}
	if n := r.hub.SendServer(Target{Room: "nosuch"}, "x"); n != 0 {
		t.Errorf("unknown room: delivered %d", n)
	}
	if got := drainLines(t, sa); !slices.Equal(got, []string{"server: yours"}) {
		t.Errorf("a got %q", got)
	}
	if got := drainLines(t, sb); !slices.Equal(got, []string{"server: b only"}) {
		t.Errorf("b got %q", got)
	}
	if n := r.hub.Disconnect(Target{User: "u1"}, "bye\nnow"); n != 1 {
		t.Errorf("disconnect: %d", n)
	}
	if got := drainLines(t, sa); len(got) != 1 || !strings.HasPrefix(got[0], "server: disconnected: bye") || strings.Contains(got[0], "\n") {
		t.Errorf("disconnect notice: got %q", got)
	}
	if closes := sa.Closes(); !slices.Equal(closes, []CloseReason{ReasonDisconnected}) {
		t.Errorf("disconnect: closes %v", closes)
	}
	ps, ok := r.hub.MembersOf("lobby", 0)
	if !ok || len(ps) != 2 || ps[0].User != "u1" || ps[0].Nick != "alice" || ps[1].User != "" {
		t.Errorf("MembersOf lobby: got %+v %v", ps, ok)
	}
	if _, ok := r.hub.MembersOf("#nosuch", 0); ok {
		t.Errorf("MembersOf a missing room: ok")
	}
	if rs := r.hub.RoomList(); len(rs) != 1 || rs[0] != (RoomInfo{Name: "lobby", Members: 2}) {
		t.Errorf("RoomList: %+v", rs)
	}
	if !ValidRoom("#games") || ValidRoom("bad room") || ValidRoom("") {
		t.Errorf("ValidRoom")
	}
}

// runSession is a fake session that runs what JoinFor hands it at once,
// as the transport does later on the member's goroutine.
type runSession struct{ *fakeSession }

func (s runSession) Run(fn func()) { fn() }

func TestJoinForLeaveFor(t *testing.T) {
	r := newTestRoom(t)
	r.hub.SetAuth(AuthOptions{Verify: stubVerifier})
	s := runSession{&fakeSession{}}
	r.group.add(s.fakeSession)
	m := r.hub.Join(s, JoinOptions{})
	r.hub.Handle(m, []byte("/auth good:u1:"))
	plain, _ := r.join(t, JoinOptions{}) // not a Runner: nothing to run on
	r.hub.Handle(plain, []byte("/auth good:u1:"))
	s.Drain()
	if n := r.hub.JoinFor(Target{User: "u1"}, "#games"); n != 1 {
		t.Errorf("JoinFor: %d, want 1 (the Runner)", n)
	}
	if got := drainLines(t, s.fakeSession); !slices.Equal(got, []string{"* you are now in #games (1 member)"}) {
		t.Errorf("JoinFor: got %q", got)
	}
	if n := r.hub.JoinFor(Target{UID: m.UID()}, "bad room!"); n != -1 {
		t.Errorf("JoinFor a bad room: %d, want -1", n)
	}
	r.hub.LeaveFor(Target{UID: m.UID()}, "elsewhere") // not in it: nothing
	r.hub.LeaveFor(Target{UID: m.UID()}, "games")
	if got := drainLines(t, s.fakeSession); !slices.Equal(got, []string{"* uid 1 left #games"}) {
		t.Errorf("LeaveFor: got %q", got)
	}
	if n := r.hub.JoinFor(Target{UID: 999}, "games"); n != 0 {
		t.Errorf("JoinFor a missing uid: %d", n)
	}
}

// TestUserDevicesShareNick: one user on a phone and a laptop holds its
// name on both; the second connection does not take it from the first.
func TestUserDevicesShareNick(t *testing.T) {
	r := newTestRoom(t)
	r.hub.SetAuth(AuthOptions{Verify: stubVerifier})
	phone, sp := r.join(t, JoinOptions{})
	laptop, sl := r.join(t, JoinOptions{})
	other, so := r.join(t, JoinOptions{})
	r.send(t, phone.UID(), "/auth good:u1:alice")
	r.send(t, laptop.UID(), "/auth good:u1:alice")
	if phone.Nick() != "alice" || laptop.Nick() != "alice" {
		t.Fatalf("nicks %q and %q, want alice on both devices", phone.Nick(), laptop.Nick())
	}
	if got := drainLines(t, sp); slices.ContainsFunc(got, func(l string) bool { return strings.Contains(l, "was taken") }) {
		t.Errorf("phone got %q: its own user took its nick", got)
	}
	drainLines(t, sl)
	drainLines(t, so)
	r.send(t, other.UID(), "/who")
	who := drainLines(t, so)
	if len(who) < 2 || !strings.HasPrefix(who[0], "* uid 1 alice ") || !strings.HasPrefix(who[1], "* uid 2 alice ") {
		t.Errorf("/who: got %q, want both uids as alice", who)
	}
	r.send(t, other.UID(), "$1:to the phone", "$2:to the laptop")
	if got := drainLines(t, so); len(got) != 2 || !strings.Contains(got[0], "alice") || !strings.Contains(got[1], "alice") {
		t.Errorf("private copies: got %q, want the nick", got)
	}
	if got := drainLines(t, sp); len(got) != 1 || !strings.HasSuffix(got[0], "to the phone") {
		t.Errorf("phone: got %q", got)
	}
	r.send(t, phone.UID(), "$3:from the phone")
	if got := drainLines(t, so); len(got) != 1 || !strings.HasPrefix(got[0], "alice(1)") {
		t.Errorf("private from the phone: got %q, want the nick", got)
	}
	// An anonymous member may not have it while any device holds it.
	r.send(t, other.UID(), "/nick alice", "/nick ALICE")
	if got := drainLines(t, so); !slices.Equal(got, []string{"! nick alice is taken", "! nick ALICE is taken"}) {
		t.Errorf("anonymous /nick alice: got %q", got)
	}
	r.leave(t, phone.UID()) // the holder in Hub.nicks leaves: the laptop keeps it
	drainLines(t, so)
	r.send(t, other.UID(), "/nick alice")
	if got := drainLines(t, so); !slices.Equal(got, []string{"! nick alice is taken"}) {
		t.Errorf("after the phone left: got %q, want alice still the laptop's", got)
	}
	r.send(t, laptop.UID(), "/nick bob") // the last holder lets go
	r.send(t, other.UID(), "/nick alice")
	if other.Nick() != "alice" {
		t.Errorf("after the last device let go: nick %q, want alice free", other.Nick())
	}
}

// TestOtherUserTakesSharedNick: another user's token with the name takes
// it from every device of the user holding it.
func TestOtherUserTakesSharedNick(t *testing.T) {
	r := newTestRoom(t)
	r.hub.SetAuth(AuthOptions{Verify: stubVerifier})
	a1, s1 := r.join(t, JoinOptions{})
	a2, s2 := r.join(t, JoinOptions{})
	b, sb := r.join(t, JoinOptions{})
	r.send(t, a1.UID(), "/auth good:u1:alice")
	r.send(t, a2.UID(), "/nick x", "/auth good:u1:alice")
	r.drainAll()
	r.send(t, b.UID(), "/auth good:u2:Alice")
	if a1.Nick() != "" || a2.Nick() != "" || b.Nick() != "Alice" {
		t.Fatalf("nicks %q %q %q, want u2 to hold it alone", a1.Nick(), a2.Nick(), b.Nick())
	}
	for _, s := range []*fakeSession{s1, s2} {
		if got := drainLines(t, s); !slices.Contains(got, "! your nick Alice was taken by its user") {
			t.Errorf("u1's device got %q", got)
		}
	}
	drainLines(t, sb)
	// u1 takes it back on one device: u2 loses it, and the key is u1's alone.
	r.send(t, a1.UID(), "/nick alice")
	if got := drainLines(t, s1); !slices.Equal(got, []string{"! nick alice is taken"}) {
		t.Errorf("/nick of a name another user holds: got %q", got)
	}
	r.leave(t, b.UID())
	r.send(t, a1.UID(), "/nick alice")
	r.send(t, a2.UID(), "/nick alice") // a device of the same user shares it
	if a1.Nick() != "alice" || a2.Nick() != "alice" {
		t.Errorf("nicks %q %q, want the user's devices to share it by /nick", a1.Nick(), a2.Nick())
	}
}

func TestMaxPerUser(t *testing.T) {
	r := newTestRoom(t)
	var reasons []string
	r.hub.SetAuth(AuthOptions{Verify: stubVerifier, MaxPerUser: 2, OnAuth: func(reason string) { reasons = append(reasons, reason) }})
	a, _ := r.join(t, JoinOptions{})
	b, _ := r.join(t, JoinOptions{})
	c, sc := r.join(t, JoinOptions{})
	r.send(t, a.UID(), "/auth good:u123:alice")
	r.send(t, b.UID(), "/auth good:u123:alice")
	r.drainAll()
	r.send(t, c.UID(), "/auth good:u123:alice")
	if got := drainLines(t, sc); !slices.Equal(got, []string{"! too many connections for user u123 (maxConnectionsPerUser 2)"}) {
		t.Errorf("third connection: got %q", got)
	}
	if c.Authenticated() || r.hub.User(c.UID()) != "" || c.Nick() != "" || len(r.hub.UserMembers("u123")) != 2 {
		t.Errorf("the refused connection was authenticated: user %q nick %q", r.hub.User(c.UID()), c.Nick())
	}
	if !slices.Equal(reasons, []string{"", "", ReasonTooMany}) {
		t.Errorf("OnAuth: got %q", reasons)
	}
	// It stays anonymous and usable.
	r.send(t, c.UID(), "/nick carol", "/join games")
	if got := drainLines(t, sc); len(got) != 2 || got[0] != "* uid 3 is now carol" {
		t.Errorf("refused connection afterwards: got %q", got)
	}
	// A connection already the user's may authenticate again at the limit,
	// and another user is not counted against it.
	r.send(t, b.UID(), "/auth good:u123:")
	r.send(t, c.UID(), "/auth good:u9:")
	if len(r.hub.UserMembers("u123")) != 2 || r.hub.User(c.UID()) != "u9" {
		t.Errorf("re-auth at the limit: u123 %d members, c is %q", len(r.hub.UserMembers("u123")), r.hub.User(c.UID()))
	}
	// Reloaded limits apply to the next authentication; 0 = unlimited.
	r.leave(t, a.UID())
	r.send(t, c.UID(), "/auth good:u123:")
	if r.hub.User(c.UID()) != "u123" {
		t.Errorf("after one left: c is %q, want u123", r.hub.User(c.UID()))
	}
	r.hub.SetAuth(AuthOptions{Verify: stubVerifier})
	d, _ := r.join(t, JoinOptions{})
	r.send(t, d.UID(), "/auth good:u123:")
	if n := len(r.hub.UserMembers("u123")); n != 3 {
		t.Errorf("unlimited: %d members, want 3", n)
	}
}

// expSession is a fake session that records what Expire is told.
type expSession struct {
	*fakeSession
	at []time.Time
}

func (s *expSession) Expire(at time.Time) { s.at = append(s.at, at) }

// TestAuthExpire: a session that is an Expirer learns when the token it
// authenticated with stops being good, at each authentication; not at a
// refused one.
func TestAuthExpire(t *testing.T) {
	r := newTestRoom(t)
	exp := time.Unix(1767225600, 0)
	r.hub.SetAuth(AuthOptions{MaxPerUser: 1, Verify: func(tok string) (Identity, error) {
		id, err := stubVerifier(tok)
		id.Expires = exp
		return id, err
	}})
	s := &expSession{fakeSession: &fakeSession{}}
	r.group.add(s.fakeSession)
	m := r.hub.Join(s, JoinOptions{})
	r.hub.Handle(m, []byte("/auth nonsense"))
	r.hub.Handle(m, []byte("/auth good:u1:"))
	r.hub.Handle(m, []byte("/auth good:u1:"))
	if !slices.Equal(s.at, []time.Time{exp, exp}) {
		t.Errorf("Expire: got %v, want the token's expiry at each good /auth", s.at)
	}
	other, _ := r.join(t, JoinOptions{})
	r.hub.Handle(other, []byte("/auth good:u1:")) // refused: MaxPerUser
	s2 := &expSession{fakeSession: &fakeSession{}}
	r.group.add(s2.fakeSession)
	m2 := r.hub.Join(s2, JoinOptions{})
	r.hub.Handle(m2, []byte("/auth good:u1:"))
	if len(s2.at) != 0 {
		t.Errorf("Expire on a refused /auth: %v", s2.at)
	}
	if ReasonTokenExpired.String() != "token_expired" {
		t.Errorf("ReasonTokenExpired is %q", ReasonTokenExpired)
	}
}

// TestRequireAuthHiddenLobbyByAPI: the API taking an anonymous member out
// of the lobby and back, under requireAuth, announces neither, and its
// authentication announces its join once.
func TestRequireAuthHiddenLobbyByAPI(t *testing.T) {
	r := newTestRoom(t)
	r.hub.SetAuth(AuthOptions{Verify: stubVerifier, Require: true})
	_, so := r.join(t, JoinOptions{})
	a, _ := r.join(t, JoinOptions{})
	r.drainAll()
	r.hub.roomForMember(a, LobbyName, LobbyName, false)
	r.hub.roomForMember(a, LobbyName, LobbyName, true)
	r.send(t, a.UID(), "/auth good:u1:")
	if got := drainLines(t, so); !slices.Equal(got, []string{"* uid " + strconv.FormatUint(a.UID(), 10) + " joined"}) {
		t.Errorf("the others got %q, want one join notice, at the authentication", got)
	}
}
