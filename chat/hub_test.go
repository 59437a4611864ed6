package chat

import (
	"cmp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeSession is a [Session] that records what the room does to it. It
// learns its uid from the welcome, which the room sends before anything
// else, and only then takes room-wide events from its group, as a server
// session does once its member has joined. It is safe for concurrent use.
type fakeSession struct {
	mu     sync.Mutex
	uid    uint64 // from the welcome; 0 until then
	joined bool
	events []*Event
	closes []CloseReason
}

func (s *fakeSession) Send(ev *Event) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ev.Kind == KindWelcome && !s.joined {
		s.joined, s.uid = true, ev.UID
	}
	s.events = append(s.events, ev)
}

// Reply is Send: the fake has no goroutine of its own to spare a lock.
func (s *fakeSession) Reply(ev *Event) { s.Send(ev) }

func (s *fakeSession) Close(r CloseReason) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closes = append(s.closes, r)
}

// broadcast is the group's half of Send: it drops ev unless the session's
// member has joined and is not ev.Except.
func (s *fakeSession) broadcast(ev *Event) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.joined || (ev.Except != 0 && ev.Except == s.uid) {
		return
	}
	s.events = append(s.events, ev)
}

// Events returns a copy of the events received so far.
func (s *fakeSession) Events() []*Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.events)
}

// Drain returns the events received so far and forgets them.
func (s *fakeSession) Drain() []*Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	evs := s.events
	s.events = nil
	return evs
}

// Closes returns the reasons Close was called with, in order.
func (s *fakeSession) Closes() []CloseReason {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.closes)
}

// fakeGroup is a [Fanout] of fake sessions: on Broadcast it forwards the
// event to every session whose member has joined, except ev.Except. It is
// safe for concurrent use.
type fakeGroup struct {
	mu         sync.Mutex
	sessions   []*fakeSession
	broadcasts int
}

func (g *fakeGroup) Broadcast(ev *Event) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.broadcasts++
	for _, s := range g.sessions {
		s.broadcast(ev)
	}
}

func (g *fakeGroup) add(s *fakeSession) {
	g.mu.Lock()
	g.sessions = append(g.sessions, s)
	g.mu.Unlock()
}

func (g *fakeGroup) remove(s *fakeSession) {
	g.mu.Lock()
	g.sessions = slices.DeleteFunc(g.sessions, func(x *fakeSession) bool { return x == s })
	g.mu.Unlock()
}

func (g *fakeGroup) Broadcasts() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.broadcasts
}

// fakeClock is an Options.Now that moves only when told.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// renderLines renders events as the text protocol does, one string a line.
func renderLines(tb testing.TB, evs []*Event) []string {
	tb.Helper()
	var lines []string
	for _, ev := range evs {
		lines = append(lines, ev.Lines()...)
	}
	return lines
}

// drainLines renders the events s received since the last drain.
func drainLines(tb testing.TB, s *fakeSession) []string {
	tb.Helper()
	return renderLines(tb, s.Drain())
}

// testRoom is a Hub with one fake group and a fake clock, and the members
// that joined it, by uid. It is used from the test goroutine only.
type testRoom struct {
	hub      *Hub
	clock    *fakeClock
	group    *fakeGroup
	members  map[uint64]*Member
	sessions map[uint64]*fakeSession
}

func newTestRoom(tb testing.TB) *testRoom {
	tb.Helper()
	r := &testRoom{
		clock:    newFakeClock(),
		group:    &fakeGroup{},
		members:  make(map[uint64]*Member),
		sessions: make(map[uint64]*fakeSession),
	}
	r.hub = NewHub(Options{Now: r.clock.Now})
	r.hub.AddFanout(r.group)
	return r
}

// newPopulatedRoom returns a room with members uid 1 to n, odd uids on
// telnet and even ones on websocket, their events drained.
func newPopulatedRoom(tb testing.TB, n int, o JoinOptions) *testRoom {
	tb.Helper()
	r := newTestRoom(tb)
	for i := 1; i <= n; i++ {
		o := o
		o.Protocol = "telnet"
		if i%2 == 0 {
			o.Protocol = "websocket"
		}
		m, _ := r.join(tb, o)
		if m.UID() != uint64(i) {
			tb.Fatalf("join #%d: got uid %d, want %d", i, m.UID(), i)
		}
	}
	r.drainAll()
	return r
}

// join adds a session to the group, as the transport must, then joins it.
func (r *testRoom) join(tb testing.TB, o JoinOptions) (*Member, *fakeSession) {
	tb.Helper()
	s := &fakeSession{}
	r.group.add(s)
	m := r.hub.Join(s, o)
	if _, dup := r.members[m.UID()]; dup {
		tb.Fatalf("join: uid %d handed out twice", m.UID())
	}
	r.members[m.UID()] = m
	r.sessions[m.UID()] = s
	return m, s
}

// leave does what the transport does when a connection is gone.
func (r *testRoom) leave(tb testing.TB, uid uint64) {
	tb.Helper()
	m, ok := r.members[uid]
	if !ok {
		tb.Fatalf("leave: no member uid %d", uid)
	}
	r.hub.Leave(m)
	r.group.remove(r.sessions[uid])
	delete(r.members, uid)
	delete(r.sessions, uid)
}

// send hands lines from member uid to the hub, one Handle call each.
func (r *testRoom) send(tb testing.TB, uid uint64, lines ...string) {
	tb.Helper()
	m, ok := r.members[uid]
	if !ok {
		tb.Fatalf("send: no member uid %d", uid)
	}
	for _, l := range lines {
		r.hub.Handle(m, []byte(l))
	}
}

func (r *testRoom) drainAll() {
	for _, s := range r.sessions {
		s.Drain()
	}
}

// uids returns the uids of the members present, in order.
func (r *testRoom) uids() []uint64 {
	uids := make([]uint64, 0, len(r.members))
	for uid := range r.members {
		uids = append(uids, uid)
	}
	slices.Sort(uids)
	return uids
}

func TestJoinAndLeaveNotices(t *testing.T) {
	r := newPopulatedRoom(t, 6, JoinOptions{})
	m, s := r.join(t, JoinOptions{Protocol: "telnet"})
	if got, want := m.UID(), uint64(7); got != want {
		t.Fatalf("uid of the 7th member: got %d, want %d", got, want)
	}

	wantWelcome := []string{"Welcome to fastws! You are uid 7. Type to talk to everyone, $uid:text to talk to one user, /help for commands."}
	if got := drainLines(t, s); !slices.Equal(got, wantWelcome) {
		t.Errorf("newcomer: got %q, want %q", got, wantWelcome)
	}
	for uid := uint64(1); uid <= 6; uid++ {
		if got, want := drainLines(t, r.sessions[uid]), []string{"* uid 7 joined"}; !slices.Equal(got, want) {
			t.Errorf("uid %d on join: got %q, want %q", uid, got, want)
		}
	}

	r.leave(t, 7)
	if got := drainLines(t, s); got != nil {
		t.Errorf("leaver on leave: got %q, want nothing", got)
	}
	for uid := uint64(1); uid <= 6; uid++ {
		if got, want := drainLines(t, r.sessions[uid]), []string{"* uid 7 left"}; !slices.Equal(got, want) {
			t.Errorf("uid %d on leave: got %q, want %q", uid, got, want)
		}
	}

	// A member with a nick leaves under that nick.
	r.send(t, 3, "/nick bob")
	r.drainAll()
	r.leave(t, 3)
	for _, uid := range r.uids() {
		if got, want := drainLines(t, r.sessions[uid]), []string{"* bob(3) left"}; !slices.Equal(got, want) {
			t.Errorf("uid %d on leave of a nicked member: got %q, want %q", uid, got, want)
		}
	}
}

func TestWelcomeIsTheFirstEvent(t *testing.T) {
	r := newPopulatedRoom(t, 2, JoinOptions{})
	_, s := r.join(t, JoinOptions{})
	r.send(t, 1, "hello")
	evs := s.Events()
	if len(evs) == 0 || evs[0].Kind != KindWelcome {
		t.Fatalf("newcomer's events: got %q, want the welcome first", renderLines(t, evs))
	}
	if got, want := renderLines(t, evs[1:]), []string{"uid 1: hello"}; !slices.Equal(got, want) {
		t.Errorf("newcomer after the welcome: got %q, want %q", got, want)
	}
}

// TestWelcomeBeforeRacingPrivate: the newcomer's uid is easy to guess
// (uids are sequential), so another member can message it while it joins.
// The welcome, which tells the client its uid, must still come first. The
// race is timing-dependent: a correct Hub always passes, a broken one fails
// on most runs.
func TestWelcomeBeforeRacingPrivate(t *testing.T) {
	deadline := time.Now().Add(time.Second)
	for iter := 0; iter < 5000 && time.Now().Before(deadline); iter++ {
		h := NewHub(Options{})
		sender := h.Join(&fakeSession{}, JoinOptions{})
		line := []byte("$2:are you there?")
		started, stop := make(chan struct{}), make(chan struct{})
		var wg sync.WaitGroup
		wg.Go(func() {
			close(started)
			for {
				select {
				case <-stop:
					return
				default:
					h.Handle(sender, line)
				}
			}
		})
		<-started
		s := &fakeSession{}
		h.Join(s, JoinOptions{})
		close(stop)
		wg.Wait()
		if evs := s.Events(); evs[0].Kind != KindWelcome {
			t.Fatalf("iteration %d: newcomer's first line: got %q, want the welcome", iter, evs[0].Line())
		}
	}
}

func TestLeaveIsIdempotent(t *testing.T) {
	r := newPopulatedRoom(t, 3, JoinOptions{})
	m := r.members[2]
	r.hub.Leave(m)
	r.hub.Leave(m)
	r.hub.Leave(m)
	for _, uid := range []uint64{1, 3} {
		if got, want := drainLines(t, r.sessions[uid]), []string{"* uid 2 left"}; !slices.Equal(got, want) {
			t.Errorf("uid %d after three Leave calls: got %q, want %q", uid, got, want)
		}
	}
	if got, want := r.hub.Stats().Members, 2; got != want {
		t.Errorf("Stats().Members after three Leave calls: got %d, want %d", got, want)
	}
	if got := r.hub.members.load(2); got != nil {
		t.Errorf("Lookup(2) after Leave: got member uid %d, want nil", got.UID())
	}
}

func TestUIDsAreNeverReused(t *testing.T) {
	r := newPopulatedRoom(t, 3, JoinOptions{})
	r.leave(t, 3)
	r.leave(t, 2)
	m, _ := r.join(t, JoinOptions{})
	if got, want := m.UID(), uint64(4); got != want {
		t.Errorf("uid after uids 2 and 3 left: got %d, want %d", got, want)
	}
}

func TestRateLimit(t *testing.T) {
	r := newPopulatedRoom(t, 2, JoinOptions{Rate: 2, Burst: 3})
	flooder, other := r.sessions[1], r.sessions[2]

	r.send(t, 1, "a", "b", "c", "d")
	if got, want := drainLines(t, other), []string{"uid 1: a", "uid 1: b", "uid 1: c"}; !slices.Equal(got, want) {
		t.Errorf("other after 4 lines at once: got %q, want %q", got, want)
	}
	if got, want := drainLines(t, flooder), []string{"uid 1: a", "uid 1: b", "uid 1: c", "! slow down"}; !slices.Equal(got, want) {
		t.Errorf("flooder after 4 lines at once: got %q, want %q", got, want)
	}
	if got := flooder.Closes(); got != nil {
		t.Errorf("flooder closes after one line too many: got %v, want none", got)
	}

	// Half a second at 2 lines a second refills one token.
	r.clock.Advance(500 * time.Millisecond)
	r.send(t, 1, "e", "f")
	if got, want := drainLines(t, other), []string{"uid 1: e"}; !slices.Equal(got, want) {
		t.Errorf("other after 0.5s: got %q, want %q", got, want)
	}
	if got, want := drainLines(t, flooder), []string{"uid 1: e", "! slow down"}; !slices.Equal(got, want) {
		t.Errorf("flooder after 0.5s: got %q, want %q", got, want)
	}

	// A long pause refills the bucket up to the burst, not beyond.
	r.clock.Advance(time.Minute)
	r.send(t, 1, "g", "h", "i", "j")
	if got, want := drainLines(t, other), []string{"uid 1: g", "uid 1: h", "uid 1: i"}; !slices.Equal(got, want) {
		t.Errorf("other after a minute: got %q, want %q", got, want)
	}

	// Private messages count against the same bucket.
	r.clock.Advance(time.Minute)
	r.send(t, 1, "$2:p1", "$2:p2", "$2:p3", "$2:p4")
	if got, want := drainLines(t, other), []string{"uid 1 (private): p1", "uid 1 (private): p2", "uid 1 (private): p3"}; !slices.Equal(got, want) {
		t.Errorf("recipient of 4 private lines at once: got %q, want %q", got, want)
	}
	if got := drainLines(t, flooder); len(got) == 0 || got[len(got)-1] != "! slow down" {
		t.Errorf("sender of 4 private lines at once: got %q, want the last to be %q", got, "! slow down")
	}

	// A member without a rate is not limited.
	m, s := r.join(t, JoinOptions{})
	r.drainAll()
	for i := range 100 {
		r.hub.Handle(m, []byte("x"+strconv.Itoa(i)))
	}
	if got, want := len(drainLines(t, s)), 100; got != want {
		t.Errorf("unlimited member's own lines back: got %d, want %d", got, want)
	}
}

// TestRateLimitSurvivesAClockSetBack: the wall clock going back an hour
// between two lines must not leave the member an hour of refusals.
func TestRateLimitSurvivesAClockSetBack(t *testing.T) {
	r := newPopulatedRoom(t, 2, JoinOptions{Rate: 2, Burst: 3})
	r.send(t, 1, "a")
	r.clock.Advance(-time.Hour)
	r.send(t, 1, "b", "c")
	r.clock.Advance(time.Second) // two more tokens, as on any clock
	r.send(t, 1, "d", "e")
	if got, want := drainLines(t, r.sessions[2]), []string{"uid 1: a", "uid 1: b", "uid 1: c", "uid 1: d", "uid 1: e"}; !slices.Equal(got, want) {
		t.Errorf("lines around a clock set back an hour: got %q, want %q", got, want)
	}
}

func TestFloodCloses(t *testing.T) {
	r := newPopulatedRoom(t, 2, JoinOptions{Rate: 2, Burst: 3})
	flooder, other := r.sessions[1], r.sessions[2]
	for i := range 100 {
		r.send(t, 1, "spam"+strconv.Itoa(i))
	}
	closes := flooder.Closes()
	if len(closes) == 0 {
		t.Fatalf("flooder closes after 100 lines at once: got none, want %v", ReasonFlood)
	}
	for _, c := range closes {
		if c != ReasonFlood {
			t.Errorf("flooder close reason: got %v, want %v", c, ReasonFlood)
		}
	}
	if got, want := len(drainLines(t, other)), 3; got != want {
		t.Errorf("lines the others got from the flood: got %d, want %d", got, want)
	}
	if got := other.Closes(); got != nil {
		t.Errorf("other member closes: got %v, want none", got)
	}
}

// TestBurstyMemberIsNotClosed checks that going over the rate now and then
// earns "slow down" but not a disconnect: only persistent flooding does.
func TestBurstyMemberIsNotClosed(t *testing.T) {
	r := newPopulatedRoom(t, 1, JoinOptions{Rate: 2, Burst: 3})
	for round := range 50 {
		r.clock.Advance(1500 * time.Millisecond)
		r.send(t, 1, "a", "b", "c", "d")
		if got := r.sessions[1].Closes(); got != nil {
			t.Fatalf("closes after round %d: got %v, want none", round, got)
		}
	}
}

// TestNickChangesAreRateLimited: a /nick line is fanned out to every member,
// so it must count against the sender's rate like a message does; otherwise
// one client floods the whole room with nick notices.
func TestNickChangesAreRateLimited(t *testing.T) {
	r := newPopulatedRoom(t, 2, JoinOptions{Rate: 2, Burst: 3})
	for i := range 20 {
		r.send(t, 1, "/nick n"+strconv.Itoa(i))
	}
	if got, max := len(drainLines(t, r.sessions[2])), 3; got > max {
		t.Errorf("nick notices the other member got from 20 /nick lines at once: got %d, want at most %d (Burst)", got, max)
	}
}

func TestStats(t *testing.T) {
	r := newPopulatedRoom(t, 3, JoinOptions{})
	if got, want := r.hub.Stats(), (Stats{Members: 3, JoinedTotal: 3}); got != want {
		t.Errorf("after 3 joins: got %+v, want %+v", got, want)
	}
	m := r.members[3]
	r.leave(t, 3)
	r.hub.Leave(m) // Leave is idempotent
	if got, want := r.hub.Stats(), (Stats{Members: 2, JoinedTotal: 3}); got != want {
		t.Errorf("after a leave: got %+v, want %+v", got, want)
	}
}

func TestLookupAndNick(t *testing.T) {
	r := newPopulatedRoom(t, 2, JoinOptions{})
	if got := r.hub.members.load(2); got != r.members[2] {
		t.Errorf("Lookup(2): got %p, want %p", got, r.members[2])
	}
	if got := r.hub.members.load(3); got != nil {
		t.Errorf("Lookup(3): got %p, want nil", got)
	}
	if got := r.members[2].Nick(); got != "" {
		t.Errorf("Nick before /nick: got %q, want \"\"", got)
	}
	r.send(t, 2, "/nick bob")
	if got, want := r.members[2].Nick(), "bob"; got != want {
		t.Errorf("Nick after /nick bob: got %q, want %q", got, want)
	}
}

func TestRemoveFanout(t *testing.T) {
	r := newPopulatedRoom(t, 2, JoinOptions{})
	other := &fakeGroup{}
	r.hub.AddFanout(other)
	r.send(t, 1, "one")
	r.hub.RemoveFanout(r.group)
	r.send(t, 1, "two")
	if got, want := drainLines(t, r.sessions[2]), []string{"uid 1: one"}; !slices.Equal(got, want) {
		t.Errorf("member of the removed group: got %q, want %q", got, want)
	}
	if got, want := other.Broadcasts(), 2; got != want {
		t.Errorf("broadcasts to the group still registered: got %d, want %d", got, want)
	}
}

// recordingBroker is a [Broker] that counts what it publishes.
type recordingBroker struct {
	MemoryBroker
	mu    sync.Mutex
	kinds []Kind
}

func (b *recordingBroker) Publish(ev *Event) {
	b.mu.Lock()
	b.kinds = append(b.kinds, ev.Kind)
	b.mu.Unlock()
	b.MemoryBroker.Publish(ev)
}

func TestRoomWideEventsGoThroughTheBroker(t *testing.T) {
	b := &recordingBroker{}
	h := NewHub(Options{Broker: b})
	g := &fakeGroup{}
	h.AddFanout(g)
	s1, s2 := &fakeSession{}, &fakeSession{}
	g.add(s1)
	g.add(s2)
	m1 := h.Join(s1, JoinOptions{})
	m2 := h.Join(s2, JoinOptions{})
	for _, l := range []string{"hello", "$2:private", "/nick alice", "/who", "/help", "/nope"} {
		h.Handle(m1, []byte(l))
	}
	h.Leave(m2)
	want := []Kind{KindJoin, KindJoin, KindMessage, KindNick, KindLeave}
	b.mu.Lock()
	got := slices.Clone(b.kinds)
	b.mu.Unlock()
	if !slices.Equal(got, want) {
		t.Errorf("published kinds: got %v, want %v", got, want)
	}
}

// TestBroadcastEventIsShared checks that every recipient gets the same
// *Event, so a transport encodes a broadcast once.
func TestBroadcastEventIsShared(t *testing.T) {
	r := newPopulatedRoom(t, 5, JoinOptions{})
	r.send(t, 1, "hello")
	var first *Event
	for _, uid := range r.uids() {
		evs := r.sessions[uid].Drain()
		if len(evs) != 1 {
			t.Fatalf("uid %d: got %d events, want 1", uid, len(evs))
		}
		if first == nil {
			first = evs[0]
		} else if evs[0] != first {
			t.Errorf("uid %d: got event %p, want the shared %p", uid, evs[0], first)
		}
	}
	var calls atomic.Int32
	enc := func(ev *Event) []byte { calls.Add(1); return []byte(ev.Line() + "\r\n") }
	for range r.uids() {
		first.Encoded(0, enc)
	}
	if got := calls.Load(); got != 1 {
		t.Errorf("encoder calls for 5 recipients: got %d, want 1", got)
	}
}

func TestConcurrentJoins(t *testing.T) {
	const (
		goroutines = 32
		joinsEach  = 20
		total      = goroutines * joinsEach
	)
	h := NewHub(Options{})
	g := &fakeGroup{}
	h.AddFanout(g)

	uids := make([][]uint64, goroutines)
	sessions := make([][]*fakeSession, goroutines)
	var start, wg sync.WaitGroup
	start.Add(1)
	for i := range goroutines {
		wg.Go(func() {
			start.Wait()
			for j := range joinsEach {
				s := &fakeSession{}
				g.add(s)
				m := h.Join(s, JoinOptions{Protocol: "telnet"})
				uids[i] = append(uids[i], m.UID())
				sessions[i] = append(sessions[i], s)
				h.Handle(m, []byte("hi"))
				if j%2 == 0 {
					h.Handle(m, []byte("/nick n"+strconv.FormatUint(m.UID(), 10)))
					h.Handle(m, []byte("/who"))
				}
				if j%3 == 0 {
					h.Leave(m)
					g.remove(s)
				}
			}
		})
	}
	start.Done()
	wg.Wait()

	seen := make(map[uint64]bool, total)
	for i, us := range uids {
		for j, uid := range us {
			if seen[uid] {
				t.Errorf("uid %d handed out twice", uid)
			}
			seen[uid] = true
			if j > 0 && uid <= us[j-1] {
				t.Errorf("goroutine %d: uid %d after %d, want increasing", i, uid, us[j-1])
			}
			evs := sessions[i][j].Events()
			if len(evs) == 0 || evs[0].Kind != KindWelcome || evs[0].UID != uid {
				t.Errorf("uid %d: first event got %q, want its welcome", uid, renderLines(t, evs[:min(1, len(evs))]))
			}
		}
	}
	for uid := uint64(1); uid <= total; uid++ {
		if !seen[uid] {
			t.Errorf("uid %d never handed out; want uids 1 to %d", uid, total)
		}
	}
	st := h.Stats()
	if got, want := st.JoinedTotal, uint64(total); got != want {
		t.Errorf("Stats().JoinedTotal: got %d, want %d", got, want)
	}
	wantMembers := total - goroutines*((joinsEach+2)/3)
	if got := st.Members; got != wantMembers {
		t.Errorf("Stats().Members: got %d, want %d", got, wantMembers)
	}

	// /who from a fresh member lists the rest in uid order.
	s := &fakeSession{}
	m := h.Join(s, JoinOptions{})
	h.Handle(m, []byte("/who"))
	evs := s.Events()
	ev := evs[len(evs)-1]
	if ev.Kind != KindWho {
		t.Fatalf("last event after /who: got kind %v, want %v", ev.Kind, KindWho)
	}
	if got, want := ev.Online, wantMembers+1; got != want {
		t.Errorf("/who online: got %d, want %d", got, want)
	}
	if !slices.IsSortedFunc(ev.Members, func(a, b MemberInfo) int { return cmp.Compare(a.UID, b.UID) }) {
		t.Errorf("/who members: got uids out of order")
	}
}

// TestConcurrentTraffic lets members talk at once and checks that each
// receiver sees every sender's lines in the order they were sent.
func TestConcurrentTraffic(t *testing.T) {
	const (
		members = 8
		lines   = 100
	)
	r := newPopulatedRoom(t, members, JoinOptions{})
	var wg sync.WaitGroup
	for _, uid := range r.uids() {
		m := r.members[uid]
		wg.Go(func() {
			for i := range lines {
				r.hub.Handle(m, []byte(strconv.Itoa(i)))
				if i%10 == 0 {
					r.hub.Handle(m, []byte("$1:p"+strconv.Itoa(i)))
					r.hub.Handle(m, []byte("/who"))
				}
			}
		})
	}
	wg.Wait()
	for _, uid := range r.uids() {
		next := make(map[uint64]int)
		for _, ev := range r.sessions[uid].Events() {
			if ev.Kind != KindMessage || ev.Private {
				continue
			}
			if got, want := ev.Text, strconv.Itoa(next[ev.UID]); got != want {
				t.Fatalf("uid %d from uid %d: got %q, want %q", uid, ev.UID, got, want)
			}
			next[ev.UID]++
		}
		for from := uint64(1); from <= members; from++ {
			if got := next[from]; got != lines {
				t.Errorf("uid %d from uid %d: got %d lines, want %d", uid, from, got, lines)
			}
		}
	}
}

// TestHandleAfterLeaveKeepsNoNick: Leave and Handle are both safe for
// concurrent use, so a line being handled when the connection goes may be
// handled after Leave. It must not leave the nick reserved by a uid that is
// gone, or nobody can take it until the daemon restarts.
func TestHandleAfterLeaveKeepsNoNick(t *testing.T) {
	r := newPopulatedRoom(t, 2, JoinOptions{})
	gone := r.members[1]
	r.leave(t, 1)
	r.hub.Handle(gone, []byte("/nick alice"))
	r.drainAll()

	r.send(t, 2, "/nick alice")
	if got, want := drainLines(t, r.sessions[2]), []string{"* uid 2 is now alice"}; !slices.Equal(got, want) {
		t.Errorf("/nick of a name last set by a member who had left: got %q, want %q", got, want)
	}
}

func TestAnnounceLimit(t *testing.T) {
	r := newPopulatedRoom(t, 2, JoinOptions{})
	r.hub.SetAnnounceLimit(3)
	_, third := r.join(t, JoinOptions{})
	if got := drainLines(t, r.sessions[1]); !slices.Equal(got, []string{"* uid 3 joined"}) {
		t.Errorf("join into a room of 3 (limit 3): uid 1 got %q, want the join notice", got)
	}
	drainLines(t, third)
	r.join(t, JoinOptions{})
	if got := drainLines(t, r.sessions[1]); len(got) != 0 {
		t.Errorf("join into a room of 4 (limit 3): uid 1 got %q, want nothing", got)
	}
	r.leave(t, 4)
	if got := drainLines(t, r.sessions[1]); len(got) != 0 {
		t.Errorf("leave from a room of 4 (limit 3): uid 1 got %q, want nothing", got)
	}
	r.leave(t, 3)
	if got := drainLines(t, r.sessions[1]); !slices.Equal(got, []string{"* uid 3 left"}) {
		t.Errorf("leave from a room of 3 (limit 3): uid 1 got %q, want the leave notice", got)
	}
	r.hub.SetAnnounceLimit(0)
	r.join(t, JoinOptions{})
	if got := drainLines(t, r.sessions[1]); !slices.Equal(got, []string{"* uid 5 joined"}) {
		t.Errorf("limit 0: uid 1 got %q, want the join notice", got)
	}
}

// releasingSession is a fakeSession that renders each event it is sent as
// it arrives and then releases it, as the server's reactor does once it has
// encoded it. It keeps only the welcome, which tells it its uid.
type releasingSession struct {
	fakeSession
	lines []string
}

func (s *releasingSession) Send(ev *Event) {
	s.mu.Lock()
	s.lines = append(s.lines, ev.Line())
	s.mu.Unlock()
	if ev.Kind == KindWelcome {
		s.fakeSession.Send(ev)
	}
	ev.Release()
}

func (s *releasingSession) Reply(ev *Event) { s.Send(ev) }

// TestPrivateMessagesAreRecycled: a private message and its echo are made
// for one session each, which may release them; nothing else is recycled,
// and sessions that release every event at once are still told the right
// thing, message after message.
func TestPrivateMessagesAreRecycled(t *testing.T) {
	r := newTestRoom(t)
	var ss [2]*releasingSession
	for i := range ss {
		ss[i] = &releasingSession{}
		r.group.add(&ss[i].fakeSession)
		m := r.hub.Join(ss[i], JoinOptions{Protocol: "telnet"})
		r.members[m.UID()] = m
	}
	const rounds = 20
	var want [2][]string
	for i := range rounds {
		n := strconv.Itoa(i)
		r.hub.Handle(r.members[1], []byte("$2:to two "+n))
		r.hub.Handle(r.members[2], []byte("$2:to self "+n))
		want[0] = append(want[0], "(to uid 2): to two "+n)
		want[1] = append(want[1], "uid 1 (private): to two "+n, "uid 2 (private): to self "+n)
	}
	for i, s := range ss {
		var got []string
		for _, l := range s.lines {
			if !strings.HasPrefix(l, "* ") && !strings.HasPrefix(l, "Welcome") {
				got = append(got, l)
			}
		}
		if !slices.Equal(got, want[i]) {
			t.Errorf("uid %d: got %q, want %q", i+1, got, want[i])
		}
	}

	// Events that are not released keep their mark, and only private
	// messages carry it.
	r2 := newPopulatedRoom(t, 2, JoinOptions{})
	r2.send(t, 1, "$2:hi", "$1:me", "hello", "$9:nobody", "/who")
	for uid, s := range r2.sessions {
		for _, ev := range s.Events() {
			if want := ev.Kind == KindMessage && ev.Private; ev.pooled != want {
				t.Errorf("uid %d: %q may be recycled: %v, want %v", uid, ev.Line(), ev.pooled, want)
			}
		}
	}
}
