package chat

import (
	"slices"
	"strconv"
	"testing"
)

// newQuietRoom returns a room of members uid 1 to n on telnet, with no
// join notices (a room of thousands would otherwise cost n² events), and
// the fake sessions of the first few.
func newQuietRoom(tb testing.TB, n int, o JoinOptions) (*Hub, []*Member, []*fakeSession) {
	tb.Helper()
	h := NewHub(Options{AnnounceLimit: 1})
	o.Protocol = "telnet"
	ms := make([]*Member, n+1) // by uid
	ss := make([]*fakeSession, n+1)
	for uid := 1; uid <= n; uid++ {
		ss[uid] = &fakeSession{}
		ms[uid] = h.Join(ss[uid], o)
	}
	for _, s := range ss[1:] {
		s.Drain()
	}
	return h, ms, ss
}

// whoLines returns what "* uid N (telnet)" lines for uids from to to list.
func whoLines(from, to int) []string {
	var lines []string
	for uid := from; uid <= to; uid++ {
		lines = append(lines, "* uid "+strconv.Itoa(uid)+" (telnet)")
	}
	return lines
}

// TestWhoPages: in a room of 5000, one /who lists WhoMax members in uid
// order, then how many more and how to see them, then the count online;
// "/who +N" lists page N.
func TestWhoPages(t *testing.T) {
	const n = 5000
	h, ms, ss := newQuietRoom(t, n, JoinOptions{})
	asker, s := ms[n], ss[n]
	ask := func(line string) []string {
		t.Helper()
		h.Handle(asker, []byte(line))
		return drainLines(t, s)
	}

	got := ask("/who")
	if len(got) > WhoMax+2 {
		t.Fatalf("/who in a room of %d: got %d lines, want at most %d", n, len(got), WhoMax+2)
	}
	want := append(whoLines(1, WhoMax), "* 4900 more: /who +2", "* 5000 online")
	if !slices.Equal(got, want) {
		t.Errorf("/who: got %q...%q, want %q...%q", got[:2], got[len(got)-3:], want[:2], want[len(want)-3:])
	}
	for _, tt := range []struct {
		line string
		want []string
	}{
		{"/who +1", want},
		{"/who all", want}, // an argument that is not a page is ignored, as before
		{"/who +2", append(whoLines(WhoMax+1, 2*WhoMax), "* 4800 more: /who +3", "* 5000 online")},
		{"/who  +49 ", append(whoLines(48*WhoMax+1, 49*WhoMax), "* 100 more: /who +50", "* 5000 online")},
		{"/who +50", append(whoLines(49*WhoMax+1, n), "* 5000 online")},
		{"/who +51", []string{"* 5000 online"}},
		{"/who +99999999999999999999", []string{"! usage: /who [+PAGE]"}},
		{"/who +9999999999", []string{"* 5000 online"}},
		{"/who +0", []string{"! usage: /who [+PAGE]"}},
		{"/who +-1", []string{"! usage: /who [+PAGE]"}},
		{"/who ++1", []string{"! usage: /who [+PAGE]"}},
		{"/who +x", []string{"! usage: /who [+PAGE]"}},
		{"/who +", []string{"! usage: /who [+PAGE]"}},
	} {
		if got := ask(tt.line); !slices.Equal(got, tt.want) {
			t.Errorf("%s: got %d lines %q, want %d lines %q", tt.line, len(got), clipLines(got), len(tt.want), clipLines(tt.want))
		}
	}

	// Members leave, whole pages of the table among them: pages count
	// the members online, not uids.
	for uid := 1; uid <= 150; uid++ {
		h.Leave(ms[uid])
	}
	h.Leave(ms[200])
	s.Drain()
	want = append(whoLines(151, 199), whoLines(201, 251)...)
	want = append(want, "* 4749 more: /who +2", "* 4849 online")
	if got := ask("/who"); !slices.Equal(got, want) {
		t.Errorf("/who after uids 1-150 and 200 left: got %q, want %q", clipLines(got), clipLines(want))
	}
	want = append(whoLines(252, 351), "* 4649 more: /who +3", "* 4849 online")
	if got := ask("/who +2"); !slices.Equal(got, want) {
		t.Errorf("/who +2 after uids 1-150 and 200 left: got %q, want %q", clipLines(got), clipLines(want))
	}
}

// clipLines shortens a long listing for a failure message.
func clipLines(lines []string) []string {
	if len(lines) <= 6 {
		return lines
	}
	return append(append(slices.Clone(lines[:3]), "..."), lines[len(lines)-3:]...)
}

// TestWhoIsRateLimitedByItsSize: 100 /who in a row from one member of a
// room of 3000, at the default limits (50 lines a second, a burst of 100),
// are mostly refused: a full page costs WhoMax/whoLinesPerToken tokens.
// On the original main every one was served, each listing 3000 members.
func TestWhoIsRateLimitedByItsSize(t *testing.T) {
	h, ms, ss := newQuietRoom(t, 3000, JoinOptions{Rate: 50, Burst: 100})
	for range 100 {
		h.Handle(ms[1], []byte("/who"))
	}
	served, refused, lines := 0, 0, 0
	for _, ev := range ss[1].Drain() {
		switch {
		case ev.Kind == KindWho:
			served++
			lines += len(ev.Lines())
		case ev.Kind == KindError && ev.Text == "slow down":
			refused++
		default:
			t.Fatalf("unexpected event %q", ev.Lines())
		}
	}
	if want := 100 / (WhoMax / whoLinesPerToken); served > want+1 || served < 1 {
		t.Errorf("100 /who at once: %d served, want 1 to %d", served, want+1)
	}
	if served+refused != 100 {
		t.Errorf("100 /who at once: %d served and %d refused, want 100 in all", served, refused)
	}
	if lines > served*(WhoMax+2) {
		t.Errorf("100 /who at once: %d lines for %d listings, want at most %d each", lines, served, WhoMax+2)
	}
	if got := ss[1].Closes(); got != nil {
		t.Errorf("closes: got %v, want none (refusals only)", got)
	}

	// In a small room /who costs one token, like any line.
	h, ms, ss = newQuietRoom(t, 5, JoinOptions{Rate: 1, Burst: 3})
	for range 3 {
		h.Handle(ms[1], []byte("/who"))
	}
	for _, ev := range ss[1].Drain() {
		if ev.Kind != KindWho {
			t.Errorf("3 /who in a room of 5 with a burst of 3: got %q, want three listings", ev.Lines())
		}
	}

	// A burst smaller than a page's cost still lets a member list a page.
	h, ms, ss = newQuietRoom(t, 500, JoinOptions{Rate: 1, Burst: 2})
	h.Handle(ms[1], []byte("/who"))
	if evs := ss[1].Drain(); len(evs) != 1 || evs[0].Kind != KindWho {
		t.Errorf("/who with a burst of 2 in a room of 500: got %q, want a listing", renderLines(t, evs))
	}
}

// BenchmarkWho is the cost of one /who in a room of 12,000, as the
// asker's event loop pays it: the listing and its text lines. Before
// pages (commit 09416b0) it listed all 12,000.
func BenchmarkWho(b *testing.B) {
	for _, line := range []string{"/who", "/who +119"} {
		b.Run(line, func(b *testing.B) {
			h, ms, ss := newQuietRoom(b, 12000, JoinOptions{})
			m, s := ms[1], ss[1]
			bline := []byte(line)
			b.ReportAllocs()
			for b.Loop() {
				h.Handle(m, bline)
				for _, ev := range s.Drain() {
					_ = ev.Lines()
				}
			}
		})
	}
}
