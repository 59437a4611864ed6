package server

import (
	"strconv"
	"testing"

	"github.com/fastws/fastws/chat"
)

// benchReactor returns a reactor (no event loop: nothing is written) with
// n telnet sessions joined to h, and its first `inRoom` sessions in the
// room games.
func benchReactor(b testing.TB, h *chat.Hub, n, inRoom int) *reactor {
	b.Helper()
	r := &reactor{hub: h}
	tc := telnetCodec{maxLine: 1 << 16}
	for i := range n {
		s := &session{r: r, dec: tc.newDecoder(), welcomed: true}
		// As in a traffic pass: the answers go straight into s's batch.
		r.st.current = s
		h.JoinMember(&s.m, s, chat.JoinOptions{Protocol: "telnet", Fanout: r})
		if i < inRoom {
			h.Handle(&s.m, []byte("/join games"))
		} else if inRoom > 0 {
			h.Handle(&s.m, []byte("/join other"+strconv.Itoa(i%9)))
		}
		r.st.current = nil
		r.sessions = append(r.sessions, s)
		for _, s := range r.dirty {
			s.first, s.batch, s.pending = nil, nil, 0
		}
		r.dirty, r.scratch = r.dirty[:0], r.scratch[:0]
	}
	return r
}

// fanOutOnce is one fan-out of ev and the reset of the batches it filled.
func fanOutOnce(r *reactor, ev *chat.Event) {
	r.fanOut([]delivery{{ev: ev}})
	for _, s := range r.dirty {
		s.first, s.pending = nil, 0
	}
	r.dirty = r.dirty[:0]
	for f := range r.wire {
		r.wire[f] = r.wire[f][:0]
	}
}

// BenchmarkFanOut compares the reactor's fan-out of one line to 1000
// recipients: the lobby of 1000 sessions, and a room of 1000 among
// 10,000 sessions whose other 9,000 are in other rooms (the lobby
// walks every session; a room walks only its members on the reactor).
func BenchmarkFanOut(b *testing.B) {
	for _, bc := range []struct {
		name      string
		n, inRoom int
		room      func(h *chat.Hub) *chat.Room
	}{
		{"lobby/1000", 1000, 0, (*chat.Hub).Lobby},
		{"lobby/10000", 10000, 0, (*chat.Hub).Lobby},
		{"room/1000-of-10000", 10000, 1000, nil},
	} {
		b.Run(bc.name, func(b *testing.B) {
			h := chat.NewHub(chat.Options{AnnounceLimit: 1, MaxRoomsPerMember: 0})
			r := benchReactor(b, h, bc.n, bc.inRoom)
			ev := &chat.Event{Kind: chat.KindMessage, UID: 1, Text: "hello world"}
			if bc.room != nil {
				ev.Room = bc.room(h)
			} else {
				ev.Room = roomOf(b, h, "games")
			}
			r.fanOut([]delivery{{ev: ev}})
			if got, want := len(r.dirty), 1000; bc.name != "lobby/10000" && got != want {
				b.Fatalf("%s: %d recipients, want %d", bc.name, got, want)
			}
			fanOutOnce(r, ev)
			b.ResetTimer()
			for range b.N {
				fanOutOnce(r, ev)
			}
		})
	}
}

// roomOf returns the room name, from the answer to a /who of it.
func roomOf(b testing.TB, h *chat.Hub, name string) *chat.Room {
	b.Helper()
	c := &captureSession{}
	m := new(chat.Member)
	h.JoinMember(m, c, chat.JoinOptions{})
	h.Handle(m, []byte("/who "+name))
	if c.ev == nil || c.ev.Room == nil {
		b.Fatalf("/who %s: got %v, want a listing", name, c.ev)
	}
	return c.ev.Room
}

type captureSession struct{ ev *chat.Event }

func (c *captureSession) Send(ev *chat.Event)  { c.ev = ev }
func (c *captureSession) Reply(ev *chat.Event) { c.ev = ev }
func (*captureSession) Close(chat.CloseReason) {}
