package chat

import (
	"fmt"
	"slices"
	"strconv"
	"testing"
)

// roomFanout is a [Fanout] that delivers as the server's reactor does,
// but at once, on the publisher's goroutine: a lobby event (or one for
// everyone) to each of its joined members in the lobby, a room event to
// the room's members it holds, as [Room.Local] lists them. Tests that use
// it run on one goroutine, as a reactor's members do.
type roomFanout struct {
	members []*Member
}

func (f *roomFanout) Broadcast(ev *Event) {
	deliver := func(m *Member) {
		if m.UID() != ev.Except {
			m.Session().(*fakeSession).broadcast(ev)
		}
	}
	if r := ev.Room; r != nil && !r.IsLobby() {
		for _, m := range r.Local(f) {
			deliver(m)
		}
		return
	}
	for _, m := range f.members {
		if ev.Room == nil || m.InLobby() {
			deliver(m)
		}
	}
}

// roomHub is a Hub with one roomFanout and its members by uid.
type roomHub struct {
	*Hub
	f        *roomFanout
	members  map[uint64]*Member
	sessions map[uint64]*fakeSession
}

func newRoomHub(tb testing.TB, o Options) *roomHub {
	tb.Helper()
	clock := newFakeClock()
	o.Now = clock.Now
	h := &roomHub{Hub: NewHub(o), f: &roomFanout{}, members: map[uint64]*Member{}, sessions: map[uint64]*fakeSession{}}
	h.AddFanout(h.f)
	return h
}

// join adds n members, their welcomes and join notices drained.
func (h *roomHub) join(tb testing.TB, n int) {
	tb.Helper()
	for range n {
		s := &fakeSession{}
		m := h.Join(s, JoinOptions{Protocol: "telnet", Fanout: h.f})
		h.f.members = append(h.f.members, m)
		h.members[m.UID()], h.sessions[m.UID()] = m, s
	}
	h.drain()
}

func (h *roomHub) drain() {
	for _, s := range h.sessions {
		s.Drain()
	}
}

// leave does what the transport does when member uid's connection ends.
func (h *roomHub) leave(uid uint64) {
	m := h.members[uid]
	h.Leave(m)
	h.f.members = slices.DeleteFunc(h.f.members, func(x *Member) bool { return x == m })
	delete(h.members, uid)
	delete(h.sessions, uid)
}

// step is one line from a member and what every member gets for it.
type step struct {
	uid  uint64
	line string
	want map[uint64][]string // uid -> lines; members not named get nothing
}

func (h *roomHub) run(t *testing.T, steps []step) {
	t.Helper()
	for _, st := range steps {
		h.Handle(h.members[st.uid], []byte(st.line))
		for uid, s := range h.sessions {
			got := drainLines(t, s)
			if want := st.want[uid]; !slices.Equal(got, want) {
				t.Errorf("uid %d %q: uid %d got %q, want %q", st.uid, st.line, uid, got, want)
			}
		}
	}
}

// TestRoomLines walks every line of SPEC section 8 with three members: 1
// and 2 join games, 3 stays in the lobby.
func TestRoomLines(t *testing.T) {
	h := newRoomHub(t, Options{})
	h.join(t, 3)
	all := func(line string) map[uint64][]string {
		return map[uint64][]string{1: {line}, 2: {line}, 3: {line}}
	}
	h.run(t, []step{
		{1, "/join games", map[uint64][]string{1: {"* you are now in #games (1 member)"}}},
		{2, "/JOIN #Games", map[uint64][]string{2: {"* you are now in #games (2 members)"}, 1: {"* uid 2 joined #games"}}},
		{1, "hello", map[uint64][]string{1: {"[#games] uid 1: hello"}, 2: {"[#games] uid 1: hello"}}},
		{3, "hello", all("uid 3: hello")},
		{3, "#games hi", map[uint64][]string{3: {"! you are not in #games"}}},
		{3, "#nowhere hi", map[uint64][]string{3: {"! no room #nowhere"}}},
		{3, "#lobby hi", all("uid 3: hi")},
		{1, "#lobby from games", all("uid 1: from games")},
		{1, "#GAMES shout", map[uint64][]string{1: {"[#games] uid 1: shout"}, 2: {"[#games] uid 1: shout"}}},
		{1, "# not a room", map[uint64][]string{1: {"[#games] uid 1: # not a room"}, 2: {"[#games] uid 1: # not a room"}}},
		{1, "#games", map[uint64][]string{1: {"[#games] uid 1: #games"}, 2: {"[#games] uid 1: #games"}}},
		{3, "/who games", map[uint64][]string{3: {"* uid 1 (telnet)", "* uid 2 (telnet)", "* 2 in #games"}}},
		{3, "/who", map[uint64][]string{3: {"* uid 1 (telnet)", "* uid 2 (telnet)", "* uid 3 (telnet)", "* 3 online"}}},
		{1, "/who", map[uint64][]string{1: {"* uid 1 (telnet)", "* uid 2 (telnet)", "* 2 in #games"}}},
		{1, "/who all", map[uint64][]string{1: {"* uid 1 (telnet)", "* uid 2 (telnet)", "* uid 3 (telnet)", "* 3 online"}}},
		{1, "/who lobby +1", map[uint64][]string{1: {"* uid 1 (telnet)", "* uid 2 (telnet)", "* uid 3 (telnet)", "* 3 online"}}},
		{3, "/who nowhere", map[uint64][]string{3: {"! no room #nowhere"}}},
		{3, "/who bad!name", map[uint64][]string{3: {"! bad room name"}}},
		{3, "/who games +x", map[uint64][]string{3: {"! usage: /who [+PAGE]"}}},
		{3, "/who games lobby", map[uint64][]string{3: {"! usage: /who [+PAGE]"}}},
		{3, "/rooms", map[uint64][]string{3: {"* #lobby (3 members)", "* #games (2 members)", "* 2 rooms"}}},
		{3, "/join", map[uint64][]string{3: {"! usage: /join NAME"}}},
		{3, "/join bad!name", map[uint64][]string{3: {"! bad room name"}}},
		{3, "/join " + string(make([]byte, 0)) + "a234567890123456789012345678901234", map[uint64][]string{3: {"! bad room name"}}},
		{3, "/leave bad!name", map[uint64][]string{3: {"! bad room name"}}},
		{3, "/leave games", map[uint64][]string{3: {"! you are not in #games"}}},
		{3, "/leave nowhere", map[uint64][]string{3: {"! no room #nowhere"}}},
		// Leaving the current room makes the last joined one left current.
		{2, "/leave", map[uint64][]string{1: {"* uid 2 left #games"}, 2: {"* uid 2 left #games"}}},
		{2, "back in the lobby", all("uid 2: back in the lobby")},
		{2, "/leave games", map[uint64][]string{2: {"! you are not in #games"}}},
		// Joining a room one is in makes it current.
		{1, "/join lobby", map[uint64][]string{1: {"* you are now in #lobby (3 members)"}}},
		{1, "to the lobby", all("uid 1: to the lobby")},
		{1, "/join games", map[uint64][]string{1: {"* you are now in #games (1 member)"}}},
		// Leaving the lobby: its lines no longer reach the leaver.
		{3, "/leave lobby", map[uint64][]string{1: {"* uid 3 left"}, 2: {"* uid 3 left"}, 3: {"* uid 3 left"}}},
		{2, "lobby only", map[uint64][]string{1: {"uid 2: lobby only"}, 2: {"uid 2: lobby only"}}},
		{3, "anyone?", map[uint64][]string{3: {"! you are in no room: /join NAME"}}},
		{3, "/who", map[uint64][]string{3: {"! you are in no room: /join NAME"}}},
		{3, "/leave", map[uint64][]string{3: {"! you are in no room"}}},
		{3, "#lobby hi", map[uint64][]string{3: {"! you are not in #lobby"}}},
		{3, "/join lobby", map[uint64][]string{1: {"* uid 3 joined"}, 2: {"* uid 3 joined"}, 3: {"* you are now in #lobby (3 members)"}}},
		{1, "/nick alice", all("* uid 1 is now alice")},
		{1, "named", map[uint64][]string{1: {"[#games] alice(1): named"}}},
	})
	if got := h.Stats().Rooms; got != 1 {
		t.Errorf("Stats().Rooms: got %d, want 1 (games)", got)
	}
	if got, want := h.members[1].Rooms(), []string{"lobby", "games"}; !slices.Equal(got, want) {
		t.Errorf("uid 1 Rooms(): got %q, want %q", got, want)
	}
	if got, want := h.members[3].Rooms(), []string{"lobby"}; !slices.Equal(got, want) {
		t.Errorf("uid 3 Rooms(): got %q, want %q", got, want)
	}

	// A member whose connection ends leaves every room; an empty room is
	// gone.
	h.run(t, []step{{2, "/join games", map[uint64][]string{2: {"* you are now in #games (2 members)"}, 1: {"* uid 2 joined #games"}}}})
	h.leave(2)
	if got, want := drainLines(t, h.sessions[1]), []string{"* uid 2 left #games", "* uid 2 left"}; !slices.Equal(got, want) {
		t.Errorf("uid 2 closed: uid 1 got %q, want %q", got, want)
	}
	if got, want := drainLines(t, h.sessions[3]), []string{"* uid 2 left"}; !slices.Equal(got, want) {
		t.Errorf("uid 2 closed: uid 3 got %q, want %q", got, want)
	}
	h.run(t, []step{{1, "/leave games", map[uint64][]string{1: {"* alice(1) left #games"}}}})
	if got := h.Stats().Rooms; got != 0 {
		t.Errorf("Stats().Rooms once games is empty: got %d, want 0", got)
	}
	h.run(t, []step{{3, "/who games", map[uint64][]string{3: {"! no room #games"}}}})
}

// TestRoomNames: case-insensitive, shown as first written, "#" optional,
// letters of any script, and look-alikes are one room or refused.
func TestRoomNames(t *testing.T) {
	h := newRoomHub(t, Options{})
	h.join(t, 2)
	h.run(t, []step{
		{1, "/join Games", map[uint64][]string{1: {"* you are now in #Games (1 member)"}}},
		{2, "/join games", map[uint64][]string{2: {"* you are now in #Games (2 members)"}, 1: {"* uid 2 joined #Games"}}},
		{2, "/leave #GAMES", map[uint64][]string{1: {"* uid 2 left #Games"}, 2: {"* uid 2 left #Games"}}},
		{2, "/join ｇａｍｅｓ", map[uint64][]string{2: {"* you are now in #Games (2 members)"}, 1: {"* uid 2 joined #Games"}}}, // fullwidth: NFKC
		{2, "/leave ɡames", map[uint64][]string{1: {"* uid 2 left #Games"}, 2: {"* uid 2 left #Games"}}},                  // script g: a look-alike
		{2, "/join gаmes", map[uint64][]string{2: {"! bad room name"}}},                                                   // a Cyrillic а among Latin letters
		{2, "/join 游戏", map[uint64][]string{2: {"* you are now in #游戏 (1 member)"}}},
		{2, "/join a_b-c.9", map[uint64][]string{2: {"* you are now in #a_b-c.9 (1 member)"}}},
		{2, "/join 12345678901234567890123456789012", map[uint64][]string{2: {"* you are now in #12345678901234567890123456789012 (1 member)"}}},
		{2, "/join 123456789012345678901234567890123", map[uint64][]string{2: {"! bad room name"}}},
		{2, "/join a b", map[uint64][]string{2: {"! bad room name"}}},
		{2, "/join a\u200bb", map[uint64][]string{2: {"! bad room name"}}},
		{2, "/join a\x1b[2Jb", map[uint64][]string{2: {"! bad room name"}}},
		{2, "/join \u202egames", map[uint64][]string{2: {"! bad room name"}}},
		{2, "/join #", map[uint64][]string{2: {"! bad room name"}}},
		{2, "/join ##games", map[uint64][]string{2: {"! bad room name"}}},
	})
}

// TestRoomLimits: maxRoomsPerMember and maxRooms refuse with their lines;
// the lobby counts against neither; SetRoomLimits changes them.
func TestRoomLimits(t *testing.T) {
	h := newRoomHub(t, Options{MaxRooms: 3, MaxRoomsPerMember: 2})
	h.join(t, 2)
	h.run(t, []step{
		{1, "/join a", map[uint64][]string{1: {"* you are now in #a (1 member)"}}},
		{1, "/join b", map[uint64][]string{1: {"* you are now in #b (1 member)"}}},
		{1, "/join c", map[uint64][]string{1: {"! too many rooms (maxRoomsPerMember 2)"}}},
		{1, "/join lobby", map[uint64][]string{1: {"* you are now in #lobby (2 members)"}}},
		{2, "/join c", map[uint64][]string{2: {"* you are now in #c (1 member)"}}},
		{2, "/join d", map[uint64][]string{2: {"! too many rooms (maxRooms 3)"}}},
		{2, "/join a", map[uint64][]string{2: {"* you are now in #a (2 members)"}, 1: {"* uid 2 joined #a"}}},
	})
	h.SetRoomLimits(4, 16)
	h.run(t, []step{{2, "/join d", map[uint64][]string{2: {"* you are now in #d (1 member)"}}}})
	if got := h.Stats().Rooms; got != 4 {
		t.Errorf("Stats().Rooms: got %d, want 4", got)
	}
	h.leave(1)
	h.leave(2)
	if st := h.Stats(); st.Rooms != 0 || st.Members != 0 {
		t.Errorf("after everyone left: got %d rooms, %d members, want 0, 0", st.Rooms, st.Members)
	}
}

// TestRoomsListing: /rooms lists at most RoomsMax rooms, busiest first,
// then the count of every room; its cost grows with the rooms it walks.
func TestRoomsListing(t *testing.T) {
	h := newRoomHub(t, Options{})
	h.join(t, 3)
	for i := range 70 {
		h.Handle(h.members[1], []byte("/join r"+strconv.Itoa(i)))
		if i < 2 {
			h.Handle(h.members[2], []byte("/join r"+strconv.Itoa(i)))
		}
		if i < 1 {
			h.Handle(h.members[3], []byte("/join r"+strconv.Itoa(i)))
		}
	}
	h.SetRoomLimits(0, 0)
	for i := 16; i < 70; i++ {
		h.Handle(h.members[1], []byte("/join r"+strconv.Itoa(i)))
	}
	h.drain()
	h.Handle(h.members[3], []byte("/rooms"))
	got := drainLines(t, h.sessions[3])
	if len(got) != RoomsMax+1 {
		t.Fatalf("/rooms with 71 rooms: got %d lines, want %d", len(got), RoomsMax+1)
	}
	want := []string{"* #lobby (3 members)", "* #r0 (3 members)", "* #r1 (2 members)", "* #r10 (1 member)"}
	if !slices.Equal(got[:4], want) || got[RoomsMax] != "* 71 rooms" {
		t.Errorf("/rooms: got %q ... %q, want %q ... %q", got[:4], got[RoomsMax], want, "* 71 rooms")
	}
	m := &Member{burst: 100}
	if c := h.roomsCost(m); c < 1+RoomsMax/whoLinesPerToken {
		t.Errorf("roomsCost with 71 rooms: got %d, want at least %d", c, 1+RoomsMax/whoLinesPerToken)
	}
}

// TestRoomWhoPages: /who NAME +PAGE pages a room as /who +PAGE pages the
// lobby, and costs tokens in proportion to what it lists.
func TestRoomWhoPages(t *testing.T) {
	h := newRoomHub(t, Options{})
	h.join(t, 250)
	for uid := uint64(1); uid <= 250; uid += 2 { // 125 odd uids
		h.Handle(h.members[uid], []byte("/join odd"))
	}
	h.drain()
	ask := func(line string) []string {
		h.Handle(h.members[2], []byte(line))
		return drainLines(t, h.sessions[2])
	}
	var page1, page2 []string
	for uid := 1; uid <= 199; uid += 2 {
		page1 = append(page1, fmt.Sprintf("* uid %d (telnet)", uid))
	}
	for uid := 201; uid <= 249; uid += 2 {
		page2 = append(page2, fmt.Sprintf("* uid %d (telnet)", uid))
	}
	if got, want := ask("/who odd"), append(slices.Clone(page1), "* 25 more: /who #odd +2", "* 125 in #odd"); !slices.Equal(got, want) {
		t.Errorf("/who odd: got %q, want %q", clipLines(got), clipLines(want))
	}
	if got, want := ask("/who +2 #odd"), append(slices.Clone(page2), "* 125 in #odd"); !slices.Equal(got, want) {
		t.Errorf("/who +2 #odd: got %q, want %q", clipLines(got), clipLines(want))
	}
	if got, want := ask("/who odd +3"), []string{"* 125 in #odd"}; !slices.Equal(got, want) {
		t.Errorf("/who odd +3: got %q, want %q", got, want)
	}
	m := &Member{burst: 100, home: h.members[2].home}
	if got, want := h.whoCost(m, Command{Op: OpWho, Room: "odd", RoomKey: "odd"}), WhoMax/whoLinesPerToken; got != want {
		t.Errorf("cost of /who odd: got %d, want %d", got, want)
	}
	if got, want := h.whoCost(m, Command{Op: OpWho, Room: "odd", RoomKey: "odd", Page: 2}), 3; got != want {
		t.Errorf("cost of /who odd +2: got %d, want %d", got, want)
	}
}
