package chat

import (
	"bytes"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// countSession is a [Session] that only counts what it is sent.
type countSession struct{ n atomic.Int64 }

func (s *countSession) Send(*Event)       { s.n.Add(1) }
func (s *countSession) Reply(*Event)      { s.n.Add(1) }
func (s *countSession) Close(CloseReason) {}

// loopFanout is a reactor as the server has it: Broadcast queues an event
// from any goroutine, and the loop's own goroutine drains the queue and
// walks the room's list for it there.
type loopFanout struct {
	mu    sync.Mutex
	inbox []*Event
}

func (f *loopFanout) Broadcast(ev *Event) {
	f.mu.Lock()
	f.inbox = append(f.inbox, ev)
	f.mu.Unlock()
}

func (f *loopFanout) take() []*Event {
	f.mu.Lock()
	defer f.mu.Unlock()
	q := f.inbox
	f.inbox = nil
	return q
}

// TestRoomChurn: 10,000 members on 4 loops join, leave and talk in 200
// rooms at random for a while. Every delivery goes to a member of the
// room, on its own loop; an anchor that stays in its room gets every
// message of the room exactly once; the room lists agree with the
// members' rooms; and once everyone is gone, no room and no member is
// left.
func TestRoomChurn(t *testing.T) {
	const (
		loops   = 4
		members = 10000
		rooms   = 200
	)
	run := 2 * time.Second
	if testing.Short() {
		run = 300 * time.Millisecond
	}
	h := NewHub(Options{AnnounceLimit: 50, MaxRoomsPerMember: 8})
	fs := make([]*loopFanout, loops)
	own := make([][]*Member, loops)
	for i := range fs {
		fs[i] = &loopFanout{}
		h.AddFanout(fs[i])
	}
	for i := range members {
		l := i % loops
		own[l] = append(own[l], h.Join(&countSession{}, JoinOptions{Protocol: "telnet", Fanout: fs[l]}))
	}
	// Room k's anchor is a member of loop k%loops that never leaves it.
	anchor := make(map[*Member]string)
	for k := range rooms {
		m := own[k%loops][k/loops]
		h.Handle(m, []byte("/join r"+strconv.Itoa(k)))
		anchor[m] = "r" + strconv.Itoa(k)
	}
	var sent [rooms]atomic.Int64
	got := make([]map[*Event]int, rooms) // anchor deliveries, written by the anchor's loop
	for k := range got {
		got[k] = make(map[*Event]int)
	}
	var bad atomic.Value

	drain := func(l int) {
		for _, ev := range fs[l].take() {
			r := ev.Room
			if r == nil || r.IsLobby() {
				continue
			}
			for _, m := range r.Local(fs[l]) {
				if m.home.fanout != fs[l] {
					bad.Store("a member of another loop in this loop's list")
				}
				if m.rooms == nil || m.rooms.find(r.key) < 0 {
					bad.Store("a delivery to " + strconv.FormatUint(m.uid, 10) + ", not in #" + r.name)
				}
				if ev.Kind == KindMessage && anchor[m] == r.name {
					k, _ := strconv.Atoi(r.name[1:])
					got[k][ev]++
				}
			}
		}
	}

	deadline := time.Now().Add(run)
	var wg sync.WaitGroup
	for l := range loops {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(l), 1))
			for n := 0; time.Now().Before(deadline); n++ {
				m := own[l][rng.IntN(len(own[l]))]
				k := rng.IntN(rooms)
				name := "r" + strconv.Itoa(k)
				switch a := rng.IntN(10); {
				case a < 3:
					h.Handle(m, []byte("/join "+name))
				case a < 5:
					if anchor[m] == "" {
						h.Handle(m, []byte("/leave "+name))
					}
				case a == 5 && anchor[m] == "":
					h.Handle(m, []byte("/leave lobby"))
				case a == 6:
					h.Handle(m, []byte("/join lobby"))
				default:
					if m.rooms == nil || len(m.rooms.in) == 0 {
						break
					}
					r := m.rooms.in[rng.IntN(len(m.rooms.in))].room
					if !r.IsLobby() {
						k, _ := strconv.Atoi(r.name[1:])
						sent[k].Add(1)
						h.Handle(m, []byte("#"+r.name+" hi"))
					}
				}
				if n%8 == 0 {
					drain(l)
				}
			}
			drain(l)
		})
	}
	wg.Wait()
	for l := range loops {
		drain(l) // what other loops published after this one's last drain
	}
	if v := bad.Load(); v != nil {
		t.Fatal(v)
	}
	for k := range rooms {
		n := 0
		for ev, c := range got[k] {
			if c != 1 {
				t.Fatalf("#r%d's anchor got a message %d times: %q", k, c, ev.Line())
			}
			n++
		}
		if int64(n) != sent[k].Load() {
			t.Errorf("#r%d: %d messages sent, its anchor got %d", k, sent[k].Load(), n)
		}
	}
	checkRoomLists(t, h, fs)
	st := h.Stats()
	var total int64
	for k := range sent {
		total += sent[k].Load()
	}
	t.Logf("%d rooms left, %d room messages checked", st.Rooms, total)
	for l := range loops {
		for _, m := range own[l] {
			h.Leave(m)
		}
	}
	if st := h.Stats(); st.Rooms != 0 || st.Members != 0 || len(h.rooms) != 0 || h.outOfLobby.Load() != 0 {
		t.Errorf("after everyone left: %d rooms, %d members, %d in the table, %d out of the lobby; want none",
			st.Rooms, st.Members, len(h.rooms), h.outOfLobby.Load())
	}
}

// checkRoomLists checks that each room's uid list, its fanouts' lists and
// its members' own rooms agree. No loop may run meanwhile.
func checkRoomLists(t *testing.T, h *Hub, fs []*loopFanout) {
	t.Helper()
	for key, r := range h.rooms {
		if r.count.Load() == 0 {
			t.Errorf("#%s: empty, but still in the table", key)
		}
		n := 0
		for _, f := range fs {
			for i, m := range r.Local(f) {
				j := m.rooms.find(key)
				if j < 0 || m.rooms.in[j].idx != i {
					t.Fatalf("#%s: uid %d at %d of its loop's list, its own record says %v", key, m.uid, i, j)
				}
				n++
			}
		}
		if n != len(r.members) {
			t.Errorf("#%s: %d in the loops' lists, %d in the room", key, n, len(r.members))
		}
	}
}

// FuzzRooms feeds room commands and text from three members on one
// fanout and checks that every line renders clean, that a room's message
// carries its room's name and its sender's, and that no room outlives its
// members.
func FuzzRooms(f *testing.F) {
	f.Add([]byte("/join games\nhi\n/join b\n#games x\n/leave\n/rooms\n/who games\n/leave lobby\nx\n/join lobby"))
	f.Add([]byte("/join Ｇames\n#gAmes yo\n/who #games +2\n/leave #games"))
	f.Fuzz(func(t *testing.T, data []byte) {
		h := newRoomHub(t, Options{MaxRooms: 5, MaxRoomsPerMember: 3})
		h.join(t, 3)
		for i, line := range bytes.Split(data, []byte("\n")) {
			h.Handle(h.members[uint64(i%3)+1], line)
		}
		for uid, s := range h.sessions {
			for _, ev := range s.Events() {
				for _, l := range ev.Lines() {
					if i := firstUnclean(l); i >= 0 {
						t.Fatalf("uid %d: %v line %q holds %q", uid, ev.Kind, l, l[i:])
					}
				}
				if ev.Kind == KindMessage && ev.Room != nil && !ev.Room.IsLobby() {
					prefix := "[#" + ev.Room.Name() + "] " + string(appendName(nil, ev.UID, ev.Nick)) + ": "
					if !strings.HasPrefix(ev.Line(), prefix) {
						t.Fatalf("uid %d: room message %q does not start with %q", uid, ev.Line(), prefix)
					}
				}
			}
		}
		for uid := range h.members {
			h.leave(uid)
		}
		if st := h.Stats(); st.Rooms != 0 || st.Members != 0 {
			t.Fatalf("after everyone left: %d rooms, %d members", st.Rooms, st.Members)
		}
	})
}
