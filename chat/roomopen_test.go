package chat

import (
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
	opened  map[string]bool
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
	delete(c.opened, r.Key())
	c.pending = append(c.pending, done)
	return true
}

// confirm calls the dones of the subscriptions waiting.
func (c *gatedCluster) confirm() {
	c.mu.Lock()
	dones := c.pending
	c.pending = nil
	c.mu.Unlock()
	for _, done := range dones {
		done()
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
func (s *runnerSession) runAll() {
	s.mu.Lock()
	runs := s.runs
	s.runs = nil
	s.mu.Unlock()
	for _, fn := range runs {
		fn()
	}
}

// TestRoomOpenHoldsStructuredInput: while a room a member opens waits for
// the cluster, what it sends meanwhile through every input (a line, a
// say, a room say, a leave) waits, and follows the entered notice in
// order once the member's goroutine runs the answer.
func TestRoomOpenHoldsStructuredInput(t *testing.T) {
	c := &gatedCluster{opened: map[string]bool{}}
	h := NewHub(Options{Cluster: c})
	g := &fakeGroup{}
	s := &runnerSession{fakeSession: &fakeSession{}}
	g.add(s.fakeSession)
	m := h.Join(s, JoinOptions{Protocol: "test", Fanout: g})
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
