package cluster

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/fastws/fastws/chat"
)

// gatedNode starts a node whose flushes, which confirm the subscription
// of a room a member opens here, wait for the returned open (a NATS far
// away or busy answers that slowly); flushing receives once the flusher
// waits at the gate. A watchdog opens after testTimeout, so that code
// that waits for the flush on the event loop fails a test instead of
// hanging it.
func gatedNode(t *testing.T) (tn *testNode, open func(), opened <-chan struct{}, flushing <-chan struct{}) {
	t.Helper()
	return gatedNodeOn(t, startNATS(t, 0, ""))
}

// gatedNodeOn is gatedNode on the NATS server ns.
func gatedNodeOn(t *testing.T, ns *natsServer) (tn *testNode, open func(), opened <-chan struct{}, flushing <-chan struct{}) {
	t.Helper()
	gate, open, done := newGate(t, testTimeout)
	at := make(chan struct{}, 16)
	tn = startNodeWith(t, Config{NATS: ns.ClientURL(), Name: "gated"}, func(n *Node) {
		n.beforeFlush = func() {
			select {
			case at <- struct{}{}:
			default:
			}
			<-gate
		}
	})
	t.Cleanup(open) // runs before the node's stop, which waits for the flusher
	return tn, open, done, at
}

// waitFlushing waits until the gated node's flusher waits at its gate.
func waitFlushing(t *testing.T, flushing <-chan struct{}) {
	t.Helper()
	select {
	case <-flushing:
	case <-time.After(testTimeout):
		t.Fatal("no flush under way")
	}
}

// TestRoomOpenDoesNotStallTheLoop: while the cluster takes its time to
// confirm the subscription of a room a member opens on this node, the
// other members of its event loop go on chatting; the member is told it
// is in once the cluster answers, and what it sent meanwhile follows, in
// order, in the new room. Before, the join waited for NATS on the event
// loop and stalled every connection it serves: a member opening rooms
// again and again could stall them at will.
func TestRoomOpenDoesNotStallTheLoop(t *testing.T) {
	tn, open, opened, flushing := gatedNode(t)
	a, b := dial(t, tn.addr), dial(t, tn.addr)
	a.skipUntil(fmt.Sprintf("* uid %d joined", b.uid))
	a.send("/join games")
	a.send("first in games")
	waitFlushing(t, flushing)
	b.send("still here")
	for _, l := range a.lines(fmt.Sprintf("uid %d: still here", b.uid)) {
		if strings.Contains(l, "#games") {
			t.Errorf("uid %d read %q before the cluster confirmed #games", a.uid, l)
		}
	}
	select {
	case <-opened:
		t.Fatal("the line of another member of the loop waited for the room's subscription")
	default:
	}
	open()
	if l := a.line(); l != "* you are now in #games (1 member)" {
		t.Fatalf("once confirmed: %q, want the entered notice", l)
	}
	if l, want := a.line(), fmt.Sprintf("[#games] uid %d: first in games", a.uid); l != want {
		t.Fatalf("after the notice: %q, want %q, the line sent meanwhile, in #games", l, want)
	}
	b.send("/join games")
	b.skipUntil("* you are now in #games (2 members)")
	a.skipUntil(fmt.Sprintf("* uid %d joined #games", b.uid))
	b.send("second in games")
	a.skipUntil(fmt.Sprintf("[#games] uid %d: second in games", b.uid))
}

// TestRoomOpenHeldInputBounded: what a member sends while its room opens
// waits for it up to chat.MaxHeld bytes; past that it is refused, as a flood
// is, and what waited goes out once the room is entered.
func TestRoomOpenHeldInputBounded(t *testing.T) {
	tn, open, _, flushing := gatedNode(t)
	a := dial(t, tn.addr)
	a.send("/join flood")
	waitFlushing(t, flushing)
	long := strings.Repeat("x", 2000)
	const sent = 50 // within the default rate limits, "done" included: 100 lines and 256 KiB at once
	for range sent {
		a.send(long)
	}
	// The refusals come at once, before the notice, and the lines that
	// wait after it; the limit leaves at least one line of each.
	maxWaiting := chat.MaxHeld / (len(long) + chat.HeldCost)
	refused := 0
	for refused < sent-maxWaiting {
		if l := a.line(); l == "! slow down" {
			refused++
		} else {
			t.Fatalf("while #flood opens: %q", l)
		}
	}
	open()
	a.send("done")
	echo := fmt.Sprintf("[#flood] uid %d: %s", a.uid, long)
	got := 0
	for _, l := range a.lines(fmt.Sprintf("uid %d: done", a.uid)) {
		switch l {
		case echo:
			got++
		case "! slow down":
			refused++
		case fmt.Sprintf("[#flood] uid %d: done", a.uid):
		case "* you are now in #flood (1 member)":
			if got > 0 {
				t.Error("a line that waited came before the entered notice")
			}
		default:
			t.Errorf("unexpected %q", l)
		}
	}
	if got != maxWaiting || refused != sent-maxWaiting {
		t.Errorf("%d lines waited and %d were refused, want %d and %d", got, refused, maxWaiting, sent-maxWaiting)
	}
}

// TestRoomOpenMemberGone: a member that leaves while its room opens
// leaves no trace: the room and its subscription go with it, and the
// cluster's answer, when it comes, changes nothing.
func TestRoomOpenMemberGone(t *testing.T) {
	tn, open, _, flushing := gatedNode(t)
	a := dial(t, tn.addr)
	a.send("/join ghosts")
	waitFlushing(t, flushing)
	a.conn.Close()
	hub := tn.srv.Hub()
	waitFor(t, "the member and its room gone", testTimeout, func() bool {
		st := hub.Stats()
		return st.Members == 0 && st.Rooms == 0
	})
	open()
	b := dial(t, tn.addr)
	b.send("/join ghosts")
	b.skipUntil("* you are now in #ghosts (1 member)")
	if st := hub.Stats(); st.Members != 1 || st.Rooms != 1 {
		t.Errorf("after a new member opened #ghosts: %+v, want 1 member and 1 room", st)
	}
	b.send("/leave ghosts")
	b.skipUntil(fmt.Sprintf("* uid %d left #ghosts", b.uid))
	waitFor(t, "unsubscribed from #ghosts", testTimeout, func() bool {
		tn.node.subMu.Lock()
		defer tn.node.subMu.Unlock()
		return tn.node.rooms["ghosts"] == nil && len(tn.node.opened) == 0
	})
}

// TestRoomOpenHearsNothingBeforeTold: a member whose room opens hears
// nothing of the room until it is told it is in, although its node hears
// the room already, and a second member joining meanwhile waits for the
// same confirmation; both hear the room from then on.
func TestRoomOpenHearsNothingBeforeTold(t *testing.T) {
	ns := startNATS(t, 0, "")
	tn, open, _, flushing := gatedNodeOn(t, ns)
	other := startNode(t, ns.ClientURL(), "other")
	c := dial(t, other.addr)
	c.send("/join games")
	c.skipUntil("* you are now in #games (1 member)")
	a, b := dial(t, tn.addr), dial(t, tn.addr)
	waitFor(t, "the gated node sees #games", testTimeout, func() bool { return tn.node.RemoteCount("games") == 1 })
	subs := ns.NumSubscriptions()
	a.send("/join games")
	waitFlushing(t, flushing)
	b.send("/join games")
	waitFor(t, "b waits for the confirmation too", testTimeout, func() bool {
		tn.node.flushMu.Lock()
		defer tn.node.flushMu.Unlock()
		return len(tn.node.flushes) == 1
	})
	// Said once NATS has the gated node's subscription, which its
	// connection sent before the flush that waits at the gate.
	waitFor(t, "NATS has the gated node's #games", testTimeout, func() bool { return ns.NumSubscriptions() > subs })
	before := tn.node.Stats().Received
	c.send("said early")
	waitFor(t, "the gated node hears #games", testTimeout, func() bool { return tn.node.Stats().Received > before })
	open()
	for _, cl := range []*client{a, b} {
		for {
			l := cl.line()
			if strings.Contains(l, "said early") {
				t.Errorf("uid %d read %q before it was told it is in #games", cl.uid, l)
			}
			if strings.HasPrefix(l, "* you are now in #games") {
				break
			}
		}
	}
	c.send("said late")
	for _, cl := range []*client{a, b} {
		for _, l := range cl.lines(fmt.Sprintf("uid %d: said late", c.uid)) {
			if strings.Contains(l, "said early") {
				t.Errorf("uid %d read %q after it was told it is in #games", cl.uid, l)
			}
		}
	}
}

// TestRoomOpenQuitEndsInput: a /quit that waits for an opening room
// closes the member once the room is entered, and what the member sent
// after it is not carried out.
func TestRoomOpenQuitEndsInput(t *testing.T) {
	tn, open, _, flushing := gatedNode(t)
	a, b := dial(t, tn.addr), dial(t, tn.addr)
	a.skipUntil(fmt.Sprintf("* uid %d joined", b.uid))
	a.send("/join x")
	waitFlushing(t, flushing)
	a.send("/quit")
	a.send(fmt.Sprintf("$%d:after the quit", b.uid))
	open()
	a.skipUntil("* you are now in #x (1 member)")
	if l := a.line(); l != "* bye" {
		t.Fatalf("after the notice: %q, want the bye", l)
	}
	a.conn.Close() // as a client does once told: the server need not linger
	for _, l := range b.lines(fmt.Sprintf("* uid %d left", a.uid)) {
		if strings.Contains(l, "after the quit") {
			t.Errorf("uid %d read %q, sent after a /quit", b.uid, l)
		}
	}
}
