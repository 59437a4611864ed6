package chat

import (
	"bytes"
	"slices"
	"sync"
	"testing"
)

// gatedCluster is a [Cluster] of one node whose room subscriptions are
// confirmed when the test says (confirm). Only what a member joining,
// talking and leaving rooms calls is implemented.
type gatedCluster struct {
	Cluster // the rest: not called

	mu      sync.Mutex
	uid     uint64
	opened  map[string]bool // subscriptions not yet confirmed
	pending []func()
}

func (c *gatedCluster) NextUID() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.uid++
	return c.uid
}

func (c *gatedCluster) Joined(uint64, string)                  {}
func (c *gatedCluster) Left(uint64)                            {}
func (c *gatedCluster) Entered(uint64, *Room)                  {}
func (c *gatedCluster) Exited(uint64, *Room)                   {}
func (c *gatedCluster) RemoteCount(string) int                 { return 0 }
func (c *gatedCluster) RemoteMembers(string, func(MemberInfo)) {}
func (c *gatedCluster) RoomClosed(*Room)                       {}
func (c *gatedCluster) Authenticated(uint64, string)           {}

func (c *gatedCluster) RoomOpened(r *Room) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.opened[r.Key()] = true
}

func (c *gatedCluster) Subscribed(r *Room, done func()) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.opened[r.Key()] {
		return false
	}
	c.pending = append(c.pending, done)
	return true
}

// confirm confirms the subscriptions and calls the dones waiting.
func (c *gatedCluster) confirm() {
	c.mu.Lock()
	clear(c.opened)
	c.mu.Unlock()
	takeAndRun(&c.mu, &c.pending)
}

// takeAndRun empties *fns, guarded by mu, and runs what it held.
func takeAndRun(mu *sync.Mutex, fns *[]func()) {
	mu.Lock()
	taken := *fns
	*fns = nil
	mu.Unlock()
	for _, fn := range taken {
		fn()
	}
}

// runnerSession is a fakeSession that is a [Runner]: what it is asked to
// run waits for the test to run it, as on a member's goroutine.
type runnerSession struct {
	*fakeSession
	mu   sync.Mutex
	runs []func()
}

func (s *runnerSession) Run(fn func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.runs = append(s.runs, fn)
}

// runAll runs what the session was asked to run.
func (s *runnerSession) runAll() { takeAndRun(&s.mu, &s.runs) }

// gatedHub returns a Hub on a gatedCluster and a member of it whose
// session is a runnerSession.
func gatedHub() (*gatedCluster, *Hub, *runnerSession, *Member) {
	c := &gatedCluster{opened: map[string]bool{}}
	h := NewHub(Options{Cluster: c})
	g := &fakeGroup{}
	s := &runnerSession{fakeSession: &fakeSession{}}
	g.add(s.fakeSession)
	return c, h, s, h.Join(s, JoinOptions{Protocol: "test", Fanout: g})
}

// TestRoomOpenHoldsStructuredInput: while a room a member opens waits for
// the cluster, what it sends meanwhile through every input (a line, a
// say, a room say, a leave) waits, and follows the entered notice in
// order once the member's goroutine runs the answer.
func TestRoomOpenHoldsStructuredInput(t *testing.T) {
	c, h, s, m := gatedHub()
	s.Drain()

	h.JoinRoom(m, "games")
	h.Handle(m, []byte("a line"))
	h.Say(m, 0, "a say")
	h.SayRoom(m, "games", "a room say")
	h.LeaveRoom(m, "games")
	if evs := s.Drain(); len(evs) != 0 {
		t.Fatalf("before the cluster confirmed #games: %d events, the first of kind %v", len(evs), evs[0].Kind)
	}
	c.confirm()
	if evs := s.Drain(); len(evs) != 0 {
		t.Fatalf("before the member's goroutine ran the answer: %d events", len(evs))
	}
	s.runAll()
	type want struct {
		kind Kind
		text string
	}
	wants := []want{{KindEntered, ""}, {KindMessage, "a line"}, {KindMessage, "a say"}, {KindMessage, "a room say"}, {KindLeave, ""}}
	evs := s.Drain()
	if len(evs) != len(wants) {
		t.Fatalf("%d events after the answer, want %d", len(evs), len(wants))
	}
	for i, w := range wants {
		ev := evs[i]
		if ev.Kind != w.kind || ev.Text != w.text || ev.Room == nil || ev.Room.Name() != "games" {
			t.Errorf("event %d: kind %v text %q room %v, want kind %v text %q in #games", i, ev.Kind, ev.Text, ev.Room, w.kind, w.text)
		}
	}
	if m.opening() || len(m.rooms.held) != 0 || m.rooms.heldSize != 0 {
		t.Errorf("after: opening %v, %d held, %d bytes", m.opening(), len(m.rooms.held), m.rooms.heldSize)
	}
	if got := m.Rooms(); len(got) != 1 || got[0] != LobbyName {
		t.Errorf("rooms after the leave: %v, want the lobby alone", got)
	}
}

// TestRoomOpenTokenRoomsInOrder: the rooms of a token whose /auth waited
// for an opening room are joined, in the token's order, before the lines
// sent after the /auth, and are not refused when what may wait is full:
// the last line goes to the token's last room, as it does with no room
// opening.
func TestRoomOpenTokenRoomsInOrder(t *testing.T) {
	c, h, s, m := gatedHub()
	h.SetAuth(AuthOptions{Verify: func(string) (Identity, error) {
		return Identity{User: "u1", Rooms: []string{"r1", "r2"}}, nil
	}})

	h.JoinRoom(m, "a0")
	h.Handle(m, []byte("/auth token"))
	// What may wait is full once the /auth is held: the token's rooms
	// still wait, and are not refused.
	fill := bytes.Repeat([]byte("x"), MaxHeld-m.rooms.heldSize-2*HeldCost-len("hello"))
	h.Handle(m, fill)
	h.Handle(m, []byte("hello"))
	if m.rooms.heldSize != MaxHeld {
		t.Fatalf("%d bytes wait, want MaxHeld", m.rooms.heldSize)
	}
	for range 3 { // a0, r1, r2 open one after the other
		if !m.opening() {
			t.Fatal("no room opening")
		}
		c.confirm()
		s.runAll()
	}
	if m.opening() {
		t.Fatal("a fourth room opening")
	}
	var last *Event
	for _, ev := range s.Drain() {
		if ev.Kind == KindMessage {
			last = ev
		}
	}
	if last == nil || last.Text != "hello" || last.Room == nil || last.Room.Name() != "r2" {
		t.Fatal("the last line is not hello in #r2")
	}
	if got := m.Rooms(); len(got) != 4 || got[1] != "a0" || got[2] != "r1" || got[3] != "r2" {
		t.Errorf("rooms %v, want the lobby, a0, r1, r2", got)
	}
}

// TestRoomOpenQuit: a /quit that waits for an opening room is not refused
// however much waits, and what was sent after it is not carried out.
func TestRoomOpenQuit(t *testing.T) {
	c, h, s, m := gatedHub()

	h.JoinRoom(m, "games")
	long := make([]byte, MaxHeld)
	for i := range long {
		long[i] = 'x'
	}
	h.Handle(m, long[:MaxHeld-HeldCost]) // fills what may wait
	h.Handle(m, []byte("refused"))
	h.Handle(m, []byte("/quit"))
	held := len(m.rooms.held)
	for range 1000 { // what comes after a /quit is dropped: it would never run
		h.Handle(m, []byte("/quit"))
		h.Handle(m, []byte("after the quit"))
	}
	if n := len(m.rooms.held); n != held {
		t.Errorf("%d held after the /quit, want %d", n, held)
	}
	s.Drain()
	c.confirm()
	s.runAll()
	var kinds []Kind
	for _, ev := range s.Drain() {
		if ev.Kind == KindMessage && ev.Text != string(long[:MaxHeld-HeldCost]) {
			t.Errorf("carried out: %q", ev.Text)
		}
		kinds = append(kinds, ev.Kind)
	}
	if want := []Kind{KindEntered, KindMessage, KindBye}; !slices.Equal(kinds, want) {
		t.Errorf("events %v, want %v", kinds, want)
	}
	if got := s.Closes(); len(got) != 1 || got[0] != ReasonClientQuit {
		t.Errorf("closes %v, want the quit", got)
	}
}

// TestRoomOpenAPIInOrder: an API leave for a member whose room opens
// comes after what the member sent before it, as if typed: a /join that
// waits, then the API's leave of that room, leaves the member out of it.
// A second member joining the room meanwhile waits for the same
// confirmation.
func TestRoomOpenAPIInOrder(t *testing.T) {
	c, h, s, m := gatedHub()
	g2 := &fakeGroup{}
	s2 := &runnerSession{fakeSession: &fakeSession{}}
	g2.add(s2.fakeSession)
	m2 := h.Join(s2, JoinOptions{Protocol: "test", Fanout: g2})

	h.JoinRoom(m, "a")
	h.Handle(m, []byte("/join b"))
	h.LeaveFor(Target{UID: m.UID()}, "b")
	s.runAll() // the API's leave, which waits
	h.JoinRoom(m2, "a")
	if !m2.opening() {
		t.Error("a second member joining #a before its subscription is confirmed does not wait")
	}
	for m.opening() {
		c.confirm()
		s.runAll()
		s2.runAll()
	}
	if got := m.Rooms(); !slices.Equal(got, []string{LobbyName, "a"}) {
		t.Errorf("rooms %v, want the lobby and a: the API's leave of b came after the /join b", got)
	}
	if got := m2.Rooms(); !slices.Equal(got, []string{LobbyName, "a"}) {
		t.Errorf("second member's rooms %v, want the lobby and a", got)
	}
}

// TestRoomOpenAuthGateWhenRun: with requireAuth, a line that waits behind
// a /auth that waits passes the authentication gate when it runs, after
// the /auth, not when it comes.
func TestRoomOpenAuthGateWhenRun(t *testing.T) {
	c, h, s, m := gatedHub()
	h.SetAuth(AuthOptions{Require: true, Verify: func(string) (Identity, error) { return Identity{User: "u1"}, nil }})
	h.JoinFor(Target{UID: m.UID()}, "a") // an application's join opens #a
	s.runAll()
	h.Handle(m, []byte("/auth token"))
	h.Handle(m, []byte("hello"))
	c.confirm()
	s.runAll()
	var said bool
	for _, ev := range s.Drain() {
		if ev.Kind == KindError {
			t.Errorf("refused: %q", ev.Text)
		}
		said = said || ev.Kind == KindMessage && ev.Text == "hello"
	}
	if !said {
		t.Error("the line after the /auth was not said")
	}
}
