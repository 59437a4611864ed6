package chat

import (
	"errors"
	"slices"
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

func TestRequireAuthGate(t *testing.T) {
	r := newTestRoom(t)
	r.hub.SetAuth(AuthOptions{Verify: stubVerifier, Require: true, Timeout: time.Second})
	a, sa := r.join(t, JoinOptions{})
	b, sb := r.join(t, JoinOptions{})
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
	if got := drainLines(t, sb); !slices.Equal(got, []string{"* uid 1 is now alice", "alice(1): now I may"}) {
		t.Errorf("after auth: b got %q, want the nick change and the line, not what a said before", got)
	}
	if _, _, on := r.hub.AuthDeadline(); !on {
		t.Errorf("AuthDeadline: requireAuth is off")
	}
	r.send(t, b.UID(), "/quit")
	if closes := sb.Closes(); !slices.Equal(closes, []CloseReason{ReasonClientQuit}) {
		t.Errorf("/quit while anonymous: got %v", closes)
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
