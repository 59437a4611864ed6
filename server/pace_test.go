package server

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/fastws/fastws/chat"
)

// pacedServer starts one telnet reactor with fanoutDelay delay, connects
// a sender and two receivers, who have read every join notice, and then
// makes the reactor pace every fan-out, each wait between bursts hold (at
// most delay); the next flush is a burst.
func pacedServer(t *testing.T, delay, hold time.Duration) (s *Server, snd, a, b *client) {
	t.Helper()
	ic := telnetInstance("paced", 1)
	ic.Limits.FanoutDelay = delay
	ic.Limits.MessagesPerSecond = 0
	s = startServer(t, ic)
	addr := s.Addrs()["paced"]
	snd = dial(t, addr)
	a = dial(t, addr)
	snd.expect(fmt.Sprintf("* uid %d joined", a.uid))
	b = dial(t, addr)
	snd.expect(fmt.Sprintf("* uid %d joined", b.uid))
	a.expect(fmt.Sprintf("* uid %d joined", b.uid))
	r := pacedReactor(t, s)
	onLoop(t, r, func() { r.pace.rate, r.pace.min, r.pace.next = 0, hold, 0 })
	return s, snd, a, b
}

// say sends text to the lobby from snd and, once the server has handled
// it (snd.sync), returns.
func say(snd *client, text string) {
	snd.tb.Helper()
	snd.send(text + "\n")
	snd.sync()
}

// pacedReactor returns the one reactor of s's one instance.
func pacedReactor(t *testing.T, s *Server) *reactor {
	t.Helper()
	s.mu.Lock()
	rs := s.instances[0].reactorList()
	s.mu.Unlock()
	if len(rs) != 1 {
		t.Fatalf("%d reactors, want 1", len(rs))
	}
	return rs[0]
}

// onLoop runs fn on r's loop and waits for it: it sees every flush that
// ended before, counters included.
func onLoop(t *testing.T, r *reactor, fn func()) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	if err := r.onLoop(ctx, fn); err != nil {
		t.Fatalf("on the loop: %v", err)
	}
}

// written returns the messages and writes r has made so far.
func written(t *testing.T, r *reactor) (msgs, writes uint64) {
	t.Helper()
	onLoop(t, r, func() { msgs, writes = r.counters.msgsOut.Load(), r.counters.writes.Load() })
	return msgs, writes
}

// TestPacing checks a paced fan-out: room lines wait for the burst, which
// a timer brings without further input, and then go out in one write per
// receiver; a private message takes what waits with it, in order, at once.
func TestPacing(t *testing.T) {
	const hold = 2 * time.Second
	s, snd, a, b := pacedServer(t, hold, hold)
	r := pacedReactor(t, s)
	t0 := time.Now()
	say(snd, "one") // the first flush is a burst: out at once
	a.expect(fmt.Sprintf("uid %d: one", snd.uid))
	b.expect(fmt.Sprintf("uid %d: one", snd.uid))

	say(snd, "two")
	say(snd, "three")
	onLoop(t, r, func() {
		if p := &r.pace; len(p.list) == 0 || p.timer == nil || p.armedAt != p.next {
			t.Errorf("after a paced flush: %d batches wait, timer %v set for %d, want it set for the burst at %d",
				len(p.list), p.timer != nil, p.armedAt, p.next)
		}
	})
	msgs0, writes0 := written(t, r)
	// The next burst is hold after the first: until then, b has nothing.
	if left := time.Until(t0.Add(hold)) - 100*time.Millisecond; left > 50*time.Millisecond {
		_ = b.conn.SetReadDeadline(time.Now().Add(min(left, 300*time.Millisecond)))
		if n, err := b.r.Peek(1); err == nil {
			t.Fatalf("uid %d: got %q before the burst, want the lines held", b.uid, n)
		}
	} else {
		t.Logf("the machine took %v: too slow to see lines held", time.Since(t0))
	}

	// A private message goes at once, after the lines a holds.
	snd.send(fmt.Sprintf("$%d:psst\n", a.uid))
	a.expect(fmt.Sprintf("uid %d: two", snd.uid))
	a.expect(fmt.Sprintf("uid %d: three", snd.uid))
	a.expect(fmt.Sprintf("uid %d (private): psst", snd.uid))
	snd.expect(fmt.Sprintf("(to uid %d): psst", a.uid))
	msgs1, writes1 := written(t, r)

	// b's lines go out at the burst, without more input, in one write.
	b.expect(fmt.Sprintf("uid %d: two", snd.uid))
	b.expect(fmt.Sprintf("uid %d: three", snd.uid))
	msgs2, writes2 := written(t, r)
	if msgs1-msgs0 != 4 {
		// The burst came before the private message: b's lines went with
		// a's, and this run cannot tell more.
		t.Logf("the machine took %v: too slow to count the writes", time.Since(t0))
		return
	}
	if w := writes1 - writes0; w != 2 {
		t.Errorf("a's 2 lines and private message, and the sender's copy: %d writes, want 2", w)
	}
	if m, w := msgs2-msgs1, writes2-writes1; m != 2 || w != 1 {
		t.Errorf("the burst: %d messages in %d writes, want b's 2 in 1", m, w)
	}
}

// TestPacingOff checks that fanoutDelay = 0 holds nothing, even where
// every fan-out would pace and a burst wait for an hour.
func TestPacingOff(t *testing.T) {
	_, snd, a, b := pacedServer(t, 0, time.Hour)
	for _, text := range []string{"one", "two", "three"} {
		say(snd, text)
		a.expect(fmt.Sprintf("uid %d: %s", snd.uid, text))
		b.expect(fmt.Sprintf("uid %d: %s", snd.uid, text))
	}
}

// TestPacingClose checks that a receiver closed while lines wait for a
// burst an hour away gets them, then the close; and that the shutdown
// notice follows what waits, for everyone.
func TestPacingClose(t *testing.T) {
	s, snd, a, b := pacedServer(t, time.Hour, time.Hour)
	say(snd, "one") // the first burst
	a.expect(fmt.Sprintf("uid %d: one", snd.uid))
	b.expect(fmt.Sprintf("uid %d: one", snd.uid))
	say(snd, "two") // waits for the next burst, an hour away

	// A close that writes nothing of its own, as for a websocket client
	// that stopped answering pings: b's lines go first.
	r := pacedReactor(t, s)
	onLoop(t, r, func() {
		for _, ss := range r.sessions {
			if ss.m.UID() == b.uid {
				ss.startClose(chat.ReasonPingTimeout)
			}
		}
		r.flush()
	})
	b.expect(fmt.Sprintf("uid %d: two", snd.uid))
	b.expectEOF()

	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	stopped := make(chan error, 1)
	go func() { stopped <- s.Stop(ctx) }()
	a.expect(fmt.Sprintf("uid %d: two", snd.uid))
	a.skipUntil("* server is shutting down")
	a.expectEOF()
	if err := <-stopped; err != nil {
		t.Fatalf("stop: %v", err)
	}
}
