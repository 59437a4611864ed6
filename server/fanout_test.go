package server

import (
	"bytes"
	"runtime"
	"testing"

	"github.com/fastws/fastws/chat"
)

// TestFanOutRun checks a run of room-wide events fanned out in one walk:
// each session gets the events for it in order, each stretch of them as
// one buffer, and the next run's lines continue that buffer.
func TestFanOutRun(t *testing.T) {
	h := chat.NewHub(chat.Options{AnnounceLimit: 1})
	r := benchReactor(t, h, 3, 0)
	a, b, c := r.sessions[0], r.sessions[1], r.sessions[2]
	r.st.current = b
	h.Handle(&b.m, []byte("/join games"))
	h.Handle(&b.m, []byte("/leave lobby"))
	r.st.current = nil
	if b.m.InLobby() {
		t.Fatal("/leave lobby: still in the lobby")
	}
	resetBatches(r)
	for f := range r.wire {
		// As after a first burst: runs do not outgrow the buffer, which
		// would start a new one.
		r.wire[f] = make([]byte, 0, 4096)
	}

	lobby := h.Lobby()
	evs := []*chat.Event{
		{Kind: chat.KindMessage, UID: a.m.UID(), Text: "one", Room: lobby},
		{Kind: chat.KindJoin, UID: a.m.UID(), Except: a.m.UID(), Room: lobby},
		{Kind: chat.KindNick, UID: b.m.UID(), Nick: "bee"}, // to everyone
		{Kind: chat.KindMessage, UID: c.m.UID(), Text: "two", Room: lobby, Except: c.m.UID()},
		{Kind: chat.KindMessage, UID: a.m.UID(), Text: "three", Room: lobby},                   // the second run
		{Kind: chat.KindMessage, UID: a.m.UID(), Text: "four", Room: lobby, Except: a.m.UID()}, // the third
		{Kind: chat.KindNick, UID: c.m.UID(), Nick: "sea"},
	}
	run := make([]delivery, 4)
	for i := range run {
		run[i].ev = evs[i]
		if i > 0 && !sameRun(&run[i], evs[0]) {
			t.Fatalf("event %d: not in the run of event 0", i)
		}
	}
	r.fanOut(run)
	check := func(step string, want map[*session][]int, bufs map[*session]int) {
		t.Helper()
		for s, idx := range want {
			var wb []byte
			for _, i := range idx {
				wb = append(wb, s.encoded(evs[i])...)
			}
			got := s.bufs()
			if j := bytes.Join(got, nil); !bytes.Equal(j, wb) {
				t.Errorf("%s: uid %d: got %q, want %q", step, s.m.UID(), j, wb)
			}
			if len(got) != bufs[s] {
				t.Errorf("%s: uid %d: got %d buffers, want %d", step, s.m.UID(), len(got), bufs[s])
			}
			if int(s.pending) != len(idx) {
				t.Errorf("%s: uid %d: got %d messages pending, want %d", step, s.m.UID(), s.pending, len(idx))
			}
		}
	}
	check("first run",
		map[*session][]int{a: {0, 2, 3}, b: {2}, c: {0, 1, 2}},
		map[*session]int{a: 2, b: 1, c: 1})

	r.fanOut([]delivery{{ev: evs[4]}})
	check("second run",
		map[*session][]int{a: {0, 2, 3, 4}, b: {2}, c: {0, 1, 2, 4}},
		map[*session]int{a: 2, b: 1, c: 2}) // c did not get event 3, between 2 and 4

	r.fanOut([]delivery{{ev: evs[5]}, {ev: evs[6]}}) // every event skips a
	check("third run",
		map[*session][]int{a: {0, 2, 3, 4, 6}, b: {2, 6}, c: {0, 1, 2, 4, 5, 6}},
		map[*session]int{a: 3, b: 2, c: 2})
	if got, want := r.counters.broadcasts.Load(), uint64(6); got != want {
		t.Errorf("got %d message deliveries counted, want %d", got, want)
	}

	for _, tc := range []struct {
		name string
		d    delivery
		ev   *chat.Event
	}{
		{"shutdown", delivery{ev: &chat.Event{Kind: chat.KindShutdown}}, evs[0]},
		{"after a shutdown", delivery{ev: evs[0]}, &chat.Event{Kind: chat.KindShutdown}},
		{"another room", delivery{ev: &chat.Event{Kind: chat.KindMessage, Room: roomOf(t, h, "games")}}, evs[0]},
		{"to one session", delivery{s: a, ev: evs[0]}, evs[0]},
	} {
		if sameRun(&tc.d, tc.ev) {
			t.Errorf("%s: in the run, want a run of its own", tc.name)
		}
	}
}

// bufs returns the buffers s has pending.
func (s *session) bufs() [][]byte {
	if s.batch != nil {
		return s.batch.bufs
	}
	return [][]byte{s.first}
}

// resetBatches forgets what r's sessions have pending, as a flush would.
func resetBatches(r *reactor) {
	for _, s := range r.dirty {
		s.first, s.batch, s.pending = nil, nil, 0
	}
	r.dirty = r.dirty[:0]
	r.scratch = r.scratch[:0]
}

// maxFanOutAllocs is the allocation budget of a fan-out per delivery:
// what a line costs (its event, its encoding) spread over its receivers.
// Per receiver, a run of lines is one buffer of the reactor's and one
// write, which allocate nothing.
const maxFanOutAllocs = 0.025

// TestFanOutAllocs counts the allocations of lines fanned out to 500
// receivers over real sockets, in writes of 50 lines as a busy sender
// makes them: a regression here costs CPU per delivery, in garbage
// collection too (scripts/bench measures it).
func TestFanOutAllocs(t *testing.T) {
	const n, wave = 500, 50
	rig := newFanOutRig(t, n)
	rig.run(t, 4*wave, wave) // warm up: buffers grow to their steady size
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	rig.run(t, 20*wave, wave)
	runtime.ReadMemStats(&m1)
	allocs := float64(m1.Mallocs-m0.Mallocs) / (20 * wave * n)
	if allocs > maxFanOutAllocs {
		t.Errorf("a fan-out costs %.4f allocations per delivery, want at most %.3f", allocs, maxFanOutAllocs)
	}
	t.Logf("%.4f allocations per delivery", allocs)
}
