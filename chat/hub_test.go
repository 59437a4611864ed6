package chat

import (
	"fmt"
	"os"
	"os/exec"
	"runtime/debug"
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

// fakeGroup is a [Group] of fake sessions: on Broadcast it forwards the
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

// sessionLines renders every event s received so far.
func sessionLines(tb testing.TB, s *fakeSession) []string {
	tb.Helper()
	return renderLines(tb, s.Events())
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
	r.hub.AddGroup(r.group)
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
	if got := r.hub.Lookup(2); got != nil {
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

// TestWireLines drives the room with client lines from uid 7 in a room of
// uids 1 to 7 and checks every line each member receives.
func TestWireLines(t *testing.T) {
	everyone := func(lines ...string) map[uint64][]string {
		w := make(map[uint64][]string)
		for uid := uint64(1); uid <= 7; uid++ {
			w[uid] = lines
		}
		return w
	}
	without := func(w map[uint64][]string, uids ...uint64) map[uint64][]string {
		for _, uid := range uids {
			delete(w, uid)
		}
		return w
	}
	who := []string{
		"* uid 1 nick - via telnet",
		"* uid 2 nick - via websocket",
		"* uid 3 nick - via telnet",
		"* uid 4 nick - via websocket",
		"* uid 5 nick - via telnet",
		"* uid 6 nick - via websocket",
		"* uid 7 nick - via telnet",
		"* 7 online",
	}
	invalidNick := func(nick string) string {
		return "! invalid nick " + strconv.Quote(nick) + " (1-24 letters, digits, _ - ., not only digits)"
	}

	tests := []struct {
		name      string
		setup     func(tb testing.TB, r *testRoom) // runs before lines; its events are drained
		lines     []string                         // from uid 7
		want      map[uint64][]string              // lines each member gets; absent = none
		wantClose []CloseReason                    // Close calls on uid 7's session
	}{
		{
			name:  "broadcast reaches everyone including the sender",
			lines: []string{"hello"},
			want:  everyone("uid 7: hello"),
		},
		{
			name:  "broadcast keeps surrounding spaces",
			lines: []string{"  hello  "},
			want:  everyone("uid 7:   hello  "),
		},
		{
			name:  "dollar without colon is a broadcast",
			lines: []string{"$5 is cheap"},
			want:  everyone("uid 7: $5 is cheap"),
		},
		{
			name:  "dollar colon without digits is a broadcast",
			lines: []string{"$:x"},
			want:  everyone("uid 7: $:x"),
		},
		{
			name:  "dollar digits without colon is a broadcast",
			lines: []string{"$3"},
			want:  everyone("uid 7: $3"),
		},
		{
			name:  "slash after a space is a broadcast",
			lines: []string{" /help"},
			want:  everyone("uid 7:  /help"),
		},
		{
			name:  "utf-8 text arrives byte-identical",
			lines: []string{"你好，世界 — привет"},
			want:  everyone("uid 7: 你好，世界 — привет"),
		},
		{
			name:  "invalid utf-8 passes through unchanged",
			lines: []string{"a\xff\xfeb\xc3"},
			want:  everyone("uid 7: a\xff\xfeb\xc3"),
		},
		{
			name:  "private to the recipient and a copy to the sender",
			lines: []string{"$3:hi"},
			want:  map[uint64][]string{3: {"uid 7 (private): hi"}, 7: {"(to uid 3): hi"}},
		},
		{
			name:  "private keeps spaces",
			lines: []string{"$3: hi there "},
			want:  map[uint64][]string{3: {"uid 7 (private):  hi there "}, 7: {"(to uid 3):  hi there "}},
		},
		{
			name:  "private with leading zeros",
			lines: []string{"$003:hi"},
			want:  map[uint64][]string{3: {"uid 7 (private): hi"}, 7: {"(to uid 3): hi"}},
		},
		{
			name:  "private text with a colon",
			lines: []string{"$3:a:b"},
			want:  map[uint64][]string{3: {"uid 7 (private): a:b"}, 7: {"(to uid 3): a:b"}},
		},
		{
			name:  "private to oneself is one line",
			lines: []string{"$7:note to self"},
			want:  map[uint64][]string{7: {"uid 7 (private): note to self"}},
		},
		{
			name:  "private to a nicked recipient",
			setup: func(tb testing.TB, r *testRoom) { r.send(tb, 3, "/nick bob") },
			lines: []string{"$3:hi"},
			want:  map[uint64][]string{3: {"uid 7 (private): hi"}, 7: {"(to bob(3)): hi"}},
		},
		{
			name:  "private to a member who left",
			setup: func(tb testing.TB, r *testRoom) { r.leave(tb, 3) },
			lines: []string{"$3:hi"},
			want:  map[uint64][]string{7: {"! uid 3 is not online"}},
		},
		{
			name:  "private to a uid never handed out",
			lines: []string{"$8:hi"},
			want:  map[uint64][]string{7: {"! uid 8 is not online"}},
		},
		{
			name:  "private to uid 0",
			lines: []string{"$0:x"},
			want:  map[uint64][]string{7: {"! uid 0 is not online"}},
		},
		{
			name:  "private to an overflowing uid",
			lines: []string{"$99999999999999999999999:x"},
			want:  map[uint64][]string{7: {"! uid 99999999999999999999999 is not online"}},
		},
		{
			name:  "private to the largest uid",
			lines: []string{"$18446744073709551615:x"},
			want:  map[uint64][]string{7: {"! uid 18446744073709551615 is not online"}},
		},
		{
			name:  "private with empty text",
			lines: []string{"$3:"},
			want:  map[uint64][]string{7: {"! empty message"}},
		},
		{
			name:  "nick is announced to everyone",
			lines: []string{"/nick alice"},
			want:  everyone("* uid 7 is now alice"),
		},
		{
			name:  "nick then broadcast",
			lines: []string{"/nick alice", "hello"},
			want:  everyone("* uid 7 is now alice", "alice(7): hello"),
		},
		{
			name:  "nick changed twice",
			lines: []string{"/nick alice", "/nick bob"},
			want:  everyone("* uid 7 is now alice", "* alice(7) is now bob"),
		},
		{
			name:  "own nick in another case",
			lines: []string{"/nick alice", "/nick Alice"},
			want:  everyone("* uid 7 is now alice", "* alice(7) is now Alice"),
		},
		{
			name:  "nick with surrounding spaces",
			lines: []string{"/nick  bob "},
			want:  everyone("* uid 7 is now bob"),
		},
		{
			name:  "nick in another script",
			lines: []string{"/nick 小明", "hi"},
			want:  everyone("* uid 7 is now 小明", "小明(7): hi"),
		},
		{
			name:  "nick of 24 bytes",
			lines: []string{"/nick " + strings.Repeat("a", 24)},
			want:  everyone("* uid 7 is now " + strings.Repeat("a", 24)),
		},
		{
			name:  "nick with digits and punctuation",
			lines: []string{"/nick a_b-c.9"},
			want:  everyone("* uid 7 is now a_b-c.9"),
		},
		{
			name:  "nick taken",
			setup: func(tb testing.TB, r *testRoom) { r.send(tb, 3, "/nick alice") },
			lines: []string{"/nick alice"},
			want:  map[uint64][]string{7: {"! nick alice is taken"}},
		},
		{
			name:  "nick taken in another case",
			setup: func(tb testing.TB, r *testRoom) { r.send(tb, 3, "/nick alice") },
			lines: []string{"/nick ALICE"},
			want:  map[uint64][]string{7: {"! nick ALICE is taken"}},
		},
		{
			name:  "nick freed by a rename",
			setup: func(tb testing.TB, r *testRoom) { r.send(tb, 3, "/nick alice", "/nick carol") },
			lines: []string{"/nick alice"},
			want:  everyone("* uid 7 is now alice"),
		},
		{
			name:  "nick freed by leaving",
			setup: func(tb testing.TB, r *testRoom) { r.send(tb, 3, "/nick alice"); r.leave(tb, 3) },
			lines: []string{"/nick alice"},
			want:  without(everyone("* uid 7 is now alice"), 3),
		},
		{
			name:  "nick only digits",
			lines: []string{"/nick 123"},
			want:  map[uint64][]string{7: {invalidNick("123")}},
		},
		{
			name:  "nick with a space inside",
			lines: []string{"/nick al ice"},
			want:  map[uint64][]string{7: {invalidNick("al ice")}},
		},
		{
			name:  "nick with parentheses",
			lines: []string{"/nick al(3)"},
			want:  map[uint64][]string{7: {invalidNick("al(3)")}},
		},
		{
			name:  "nick of 25 bytes",
			lines: []string{"/nick " + strings.Repeat("a", 25)},
			want:  map[uint64][]string{7: {invalidNick(strings.Repeat("a", 25))}},
		},
		{
			name:  "nick with invalid utf-8",
			lines: []string{"/nick a\xffb"},
			want:  map[uint64][]string{7: {invalidNick("a\xffb")}},
		},
		{
			name:  "nick without a name",
			lines: []string{"/nick"},
			want:  map[uint64][]string{7: {"! usage: /nick NAME"}},
		},
		{
			name:  "nick with only spaces",
			lines: []string{"/nick   "},
			want:  map[uint64][]string{7: {"! usage: /nick NAME"}},
		},
		{
			name:  "who lists members by uid then the count",
			lines: []string{"/who"},
			want:  map[uint64][]string{7: who},
		},
		{
			name:  "who with an argument",
			lines: []string{"/who all"},
			want:  map[uint64][]string{7: who},
		},
		{
			name: "who shows nicks and leaves out who left",
			setup: func(tb testing.TB, r *testRoom) {
				r.send(tb, 2, "/nick bob")
				r.send(tb, 7, "/nick alice")
				r.leave(tb, 5)
			},
			lines: []string{"/who"},
			want: map[uint64][]string{7: {
				"* uid 1 nick - via telnet",
				"* uid 2 nick bob via websocket",
				"* uid 3 nick - via telnet",
				"* uid 4 nick - via websocket",
				"* uid 6 nick - via websocket",
				"* uid 7 nick alice via telnet",
				"* 6 online",
			}},
		},
		{
			name:      "quit closes the session",
			lines:     []string{"/quit"},
			wantClose: []CloseReason{ReasonClientQuit},
		},
		{
			name:      "quit with a message",
			lines:     []string{"/quit bye all"},
			wantClose: []CloseReason{ReasonClientQuit},
		},
		{
			name:  "unknown command",
			lines: []string{"/foo"},
			want:  map[uint64][]string{7: {"! unknown command /foo (try /help)"}},
		},
		{
			name:  "unknown command with an argument",
			lines: []string{"/foo bar baz"},
			want:  map[uint64][]string{7: {"! unknown command /foo (try /help)"}},
		},
		{
			name:  "commands are case-sensitive",
			lines: []string{"/NICK bob"},
			want:  map[uint64][]string{7: {"! unknown command /NICK (try /help)"}},
		},
		{
			name:  "a lone slash",
			lines: []string{"/"},
			want:  map[uint64][]string{7: {"! unknown command / (try /help)"}},
		},
		{
			name:  "empty line is ignored",
			lines: []string{""},
		},
		{
			name:  "blank line is ignored",
			lines: []string{" \t  "},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newPopulatedRoom(t, 7, JoinOptions{})
			if tt.setup != nil {
				tt.setup(t, r)
				r.drainAll()
			}
			r.send(t, 7, tt.lines...)
			for _, uid := range r.uids() {
				if got := drainLines(t, r.sessions[uid]); !slices.Equal(got, tt.want[uid]) {
					t.Errorf("uid %d: got %q, want %q", uid, got, tt.want[uid])
				}
			}
			for uid, s := range r.sessions {
				want := []CloseReason(nil)
				if uid == 7 {
					want = tt.wantClose
				}
				if got := s.Closes(); !slices.Equal(got, want) {
					t.Errorf("uid %d closes: got %v, want %v", uid, got, want)
				}
			}
		})
	}
}

// TestNickThenPrivate covers what the table can not say with one want per
// member: the nick notice reaches everyone and the private line only two.
func TestNickThenPrivate(t *testing.T) {
	r := newPopulatedRoom(t, 7, JoinOptions{})
	r.send(t, 7, "/nick alice", "$3:hi")
	want := map[uint64][]string{
		3: {"* uid 7 is now alice", "alice(7) (private): hi"},
		7: {"* uid 7 is now alice", "(to uid 3): hi"},
	}
	for _, uid := range r.uids() {
		w, ok := want[uid]
		if !ok {
			w = []string{"* uid 7 is now alice"}
		}
		if got := drainLines(t, r.sessions[uid]); !slices.Equal(got, w) {
			t.Errorf("uid %d: got %q, want %q", uid, got, w)
		}
	}
}

func TestHelp(t *testing.T) {
	tests := []struct {
		name string
		line string
	}{
		{"bare", "/help"},
		{"with an argument", "/help nick"},
		{"with surrounding spaces", "/help  "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newPopulatedRoom(t, 2, JoinOptions{})
			r.send(t, 1, tt.line)
			if got := drainLines(t, r.sessions[2]); got != nil {
				t.Errorf("other member: got %q, want nothing", got)
			}
			evs := r.sessions[1].Drain()
			if len(evs) != 1 || evs[0].Kind != KindInfo {
				t.Fatalf("asker: got %q, want one info event", renderLines(t, evs))
			}
			lines := evs[0].Lines()
			if len(lines) < 2 {
				t.Fatalf("help: got %q, want several lines", lines)
			}
			for _, l := range lines {
				if !strings.HasPrefix(l, "* ") {
					t.Errorf("help line %q: want a \"* \" prefix", l)
				}
			}
			text := strings.Join(lines, "\n")
			for _, cmd := range []string{"$uid:text", "/nick NAME", "/who", "/help", "/quit"} {
				if !strings.Contains(text, cmd) {
					t.Errorf("help: got %q, want it to mention %s", lines, cmd)
				}
			}
			if got := evs[0].Line(); got != text {
				t.Errorf("help Line(): got %q, want the lines joined by \\n: %q", got, text)
			}
		})
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

func TestShutdownComesAfterEarlierEvents(t *testing.T) {
	r := newPopulatedRoom(t, 3, JoinOptions{})
	r.send(t, 1, "hello", "/nick alice", "bye")
	r.hub.Shutdown()
	want := []string{"uid 1: hello", "* uid 1 is now alice", "alice(1): bye", "* server is shutting down"}
	for _, uid := range r.uids() {
		if got := drainLines(t, r.sessions[uid]); !slices.Equal(got, want) {
			t.Errorf("uid %d: got %q, want %q", uid, got, want)
		}
	}
}

func TestSayAndRefuse(t *testing.T) {
	tests := []struct {
		name string
		to   uint64
		text string
		want map[uint64][]string
	}{
		{"to everyone", 0, "hi", map[uint64][]string{1: {"uid 1: hi"}, 2: {"uid 1: hi"}, 3: {"uid 1: hi"}}},
		{"to one", 3, "hi", map[uint64][]string{1: {"(to uid 3): hi"}, 3: {"uid 1 (private): hi"}}},
		{"to oneself", 1, "hi", map[uint64][]string{1: {"uid 1 (private): hi"}}},
		{"to nobody", 99, "hi", map[uint64][]string{1: {"! uid 99 is not online"}}},
		{"empty", 0, "", map[uint64][]string{1: {"! empty message"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newPopulatedRoom(t, 3, JoinOptions{})
			r.hub.Say(r.members[1], tt.to, tt.text)
			for _, uid := range r.uids() {
				if got := drainLines(t, r.sessions[uid]); !slices.Equal(got, tt.want[uid]) {
					t.Errorf("uid %d: got %q, want %q", uid, got, tt.want[uid])
				}
			}
		})
	}

	t.Run("refuse", func(t *testing.T) {
		r := newPopulatedRoom(t, 2, JoinOptions{})
		r.hub.Refuse(r.members[1], "line too long (max 65536 bytes)")
		if got, want := drainLines(t, r.sessions[1]), []string{"! line too long (max 65536 bytes)"}; !slices.Equal(got, want) {
			t.Errorf("refused member: got %q, want %q", got, want)
		}
		if got := drainLines(t, r.sessions[2]); got != nil {
			t.Errorf("other member: got %q, want nothing", got)
		}
	})
}

func TestStats(t *testing.T) {
	r := newPopulatedRoom(t, 3, JoinOptions{Rate: 2, Burst: 3})
	if got, want := r.hub.Stats(), (Stats{Members: 3, JoinedTotal: 3}); got != want {
		t.Errorf("after 3 joins: got %+v, want %+v", got, want)
	}
	r.send(t, 1,
		"hello", // broadcast
		"$2:hi", // private, delivered
		"$9:hi", // private, nobody there; takes the last token
		"",      // ignored, still a line
		"/who",  // command
		"again", // slow down: not a broadcast
		"more",  // slow down
	)
	r.hub.Say(r.members[2], 0, "via json")
	r.hub.Say(r.members[2], 1, "private via json")
	r.leave(t, 3)
	want := Stats{Members: 2, JoinedTotal: 3, LinesIn: 9, Broadcasts: 2, Privates: 2}
	if got := r.hub.Stats(); got != want {
		t.Errorf("after a session of lines: got %+v, want %+v", got, want)
	}
}

func TestLookupAndNick(t *testing.T) {
	r := newPopulatedRoom(t, 2, JoinOptions{})
	if got := r.hub.Lookup(2); got != r.members[2] {
		t.Errorf("Lookup(2): got %p, want %p", got, r.members[2])
	}
	if got := r.hub.Lookup(3); got != nil {
		t.Errorf("Lookup(3): got %p, want nil", got)
	}
	if got := r.hub.Nick(r.members[2]); got != "" {
		t.Errorf("Nick before /nick: got %q, want \"\"", got)
	}
	r.send(t, 2, "/nick bob")
	if got, want := r.hub.Nick(r.members[2]), "bob"; got != want {
		t.Errorf("Nick after /nick bob: got %q, want %q", got, want)
	}
}

func TestRemoveGroup(t *testing.T) {
	r := newPopulatedRoom(t, 2, JoinOptions{})
	other := &fakeGroup{}
	r.hub.AddGroup(other)
	r.send(t, 1, "one")
	r.hub.RemoveGroup(r.group)
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
	h.AddGroup(g)
	s1, s2 := &fakeSession{}, &fakeSession{}
	g.add(s1)
	g.add(s2)
	m1 := h.Join(s1, JoinOptions{})
	m2 := h.Join(s2, JoinOptions{})
	for _, l := range []string{"hello", "$2:private", "/nick alice", "/who", "/help", "/nope"} {
		h.Handle(m1, []byte(l))
	}
	h.Leave(m2)
	h.Shutdown()
	want := []Kind{KindJoin, KindJoin, KindMessage, KindNick, KindLeave, KindShutdown}
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
	h.AddGroup(g)

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
	if !slices.IsSortedFunc(ev.Members, func(a, b MemberInfo) int { return compareUint(a.UID, b.UID) }) {
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

func TestEncoded(t *testing.T) {
	ev := &Event{Kind: KindMessage, UID: 7, Text: "hello"}
	var calls [MaxFormats]atomic.Int32
	encoder := func(f int) func(*Event) []byte {
		return func(ev *Event) []byte {
			calls[f].Add(1)
			return []byte(strconv.Itoa(f) + ":" + ev.Line())
		}
	}
	for f := range MaxFormats {
		first := ev.Encoded(f, encoder(f))
		again := ev.Encoded(f, encoder(f))
		want := strconv.Itoa(f) + ":uid 7: hello"
		if string(first) != want || string(again) != want {
			t.Errorf("format %d: got %q then %q, want %q", f, first, again, want)
		}
		if &first[0] != &again[0] {
			t.Errorf("format %d: second call returned a new slice, want the cached one", f)
		}
		if got := calls[f].Load(); got != 1 {
			t.Errorf("format %d: encoder calls got %d, want 1", f, got)
		}
	}
}

func TestEncodedConcurrent(t *testing.T) {
	const goroutines = 64
	ev := &Event{Kind: KindMessage, UID: 7, Text: "hello"}
	var calls atomic.Int32
	enc := func(ev *Event) []byte {
		calls.Add(1)
		return []byte(ev.Line())
	}
	results := make([][]byte, goroutines)
	var start, wg sync.WaitGroup
	start.Add(1)
	for i := range goroutines {
		wg.Go(func() {
			start.Wait()
			results[i] = ev.Encoded(1, enc)
		})
	}
	start.Done()
	wg.Wait()

	if got := calls.Load(); got < 1 || got > goroutines {
		t.Errorf("encoder calls: got %d, want 1 to %d", got, goroutines)
	}
	for i, b := range results {
		if string(b) != "uid 7: hello" {
			t.Errorf("goroutine %d: got %q, want %q", i, b, "uid 7: hello")
		}
		if &b[0] != &results[0][0] {
			t.Errorf("goroutine %d: got its own slice, want the one shared by every caller", i)
		}
	}
	before := calls.Load()
	for range 10 {
		ev.Encoded(1, enc)
	}
	if got := calls.Load(); got != before {
		t.Errorf("encoder calls once cached: got %d, want %d", got, before)
	}
}

func TestCloseReasonString(t *testing.T) {
	tests := []struct {
		r    CloseReason
		want string
	}{
		{ReasonClientClosed, "client_closed"},
		{ReasonClientQuit, "client_quit"},
		{ReasonIdle, "idle"},
		{ReasonSlowConsumer, "slow_consumer"},
		{ReasonProtocolError, "protocol_error"},
		{ReasonFlood, "flood"},
		{ReasonRefused, "refused"},
		{ReasonShutdown, "shutdown"},
		{ReasonError, "error"},
		{numReasons, "unknown"},
		{CloseReason(255), "unknown"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			if got := tt.r.String(); got != tt.want {
				t.Errorf("CloseReason(%d).String(): got %q, want %q", tt.r, got, tt.want)
			}
		})
	}

	rs := Reasons()
	if got, want := len(rs), int(numReasons); got != want {
		t.Fatalf("len(Reasons()): got %d, want %d", got, want)
	}
	for i, r := range rs {
		if r != CloseReason(i) {
			t.Errorf("Reasons()[%d]: got %v, want %v", i, r, CloseReason(i))
		}
	}
}

func TestKindString(t *testing.T) {
	tests := []struct {
		k    Kind
		want string
	}{
		{KindWelcome, "welcome"},
		{KindJoin, "join"},
		{KindLeave, "leave"},
		{KindMessage, "message"},
		{KindNick, "nick"},
		{KindWho, "who"},
		{KindInfo, "info"},
		{KindError, "error"},
		{KindShutdown, "shutdown"},
		{numKinds, "unknown"},
		{Kind(255), "unknown"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			if got := tt.k.String(); got != tt.want {
				t.Errorf("Kind(%d).String(): got %q, want %q", tt.k, got, tt.want)
			}
		})
	}
}

func TestEventLines(t *testing.T) {
	tests := []struct {
		name string
		ev   *Event
		want []string
	}{
		{"welcome", &Event{Kind: KindWelcome, UID: 7}, []string{"Welcome to fastws! You are uid 7. Type to talk to everyone, $uid:text to talk to one user, /help for commands."}},
		{"join", &Event{Kind: KindJoin, UID: 7}, []string{"* uid 7 joined"}},
		{"leave with a nick", &Event{Kind: KindLeave, UID: 7, Nick: "alice"}, []string{"* alice(7) left"}},
		{"message", &Event{Kind: KindMessage, UID: 7, Text: "hello"}, []string{"uid 7: hello"}},
		{"private", &Event{Kind: KindMessage, UID: 7, To: 3, Private: true, Text: "hi"}, []string{"uid 7 (private): hi"}},
		{"private echo", &Event{Kind: KindMessage, UID: 7, To: 3, ToNick: "bob", Private: true, Echo: true, Text: "hi"}, []string{"(to bob(3)): hi"}},
		{"first nick", &Event{Kind: KindNick, UID: 7, Nick: "alice"}, []string{"* uid 7 is now alice"}},
		{"new nick", &Event{Kind: KindNick, UID: 7, OldNick: "alice", Nick: "bob"}, []string{"* alice(7) is now bob"}},
		{"error", &Event{Kind: KindError, Text: "uid 3 is not online"}, []string{"! uid 3 is not online"}},
		{"shutdown", &Event{Kind: KindShutdown}, []string{"* server is shutting down"}},
		{"who, empty", &Event{Kind: KindWho}, []string{"* 0 online"}},
		{"who", &Event{Kind: KindWho, Online: 2, Members: []MemberInfo{{1, "", "telnet"}, {2, "bob", "websocket"}}},
			[]string{"* uid 1 nick - via telnet", "* uid 2 nick bob via websocket", "* 2 online"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.ev.Lines(); !slices.Equal(got, tt.want) {
				t.Errorf("Lines(): got %q, want %q", got, tt.want)
			}
			if got, want := tt.ev.Line(), strings.Join(tt.want, "\n"); got != want {
				t.Errorf("Line(): got %q, want %q", got, want)
			}
		})
	}
}

func TestDisplayName(t *testing.T) {
	tests := []struct {
		name string
		uid  uint64
		nick string
		want string
	}{
		{"no nick", 7, "", "uid 7"},
		{"nick", 7, "alice", "alice(7)"},
		{"largest uid", 18446744073709551615, "", "uid 18446744073709551615"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := DisplayName(tt.uid, tt.nick); got != tt.want {
				t.Errorf("DisplayName(%d, %q): got %q, want %q", tt.uid, tt.nick, got, tt.want)
			}
		})
	}
}

// TestLineOfUnknownKind renders an event of a kind this build does not know
// (Kind.String allows for them; a broker may carry events from a newer
// daemon). It runs in a child process because the failure is unbounded
// recursion, a fatal stack overflow that would end the whole test binary.
func TestLineOfUnknownKind(t *testing.T) {
	if os.Getenv("CHAT_TEST_UNKNOWN_KIND") == "1" {
		debug.SetMaxStack(8 << 20)
		ev := &Event{Kind: numKinds, UID: 7}
		fmt.Printf("lines=%q line=%q\n", ev.Lines(), ev.Line())
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestLineOfUnknownKind$", "-test.count=1")
	cmd.Env = append(os.Environ(), "CHAT_TEST_UNKNOWN_KIND=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		first, _, _ := strings.Cut(string(out), "\n")
		t.Errorf("Lines()/Line() of Event{Kind: %d}: got a crash (%v: %s), want a line", numKinds, err, first)
	}
}
