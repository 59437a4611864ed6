package cluster

import (
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/fastws/fastws/chat"
)

// nullSession drops what it is sent.
type nullSession struct{}

func (nullSession) Send(*chat.Event)       {}
func (nullSession) Reply(*chat.Event)      {}
func (nullSession) Close(chat.CloseReason) {}

// TestUIDsUniqueAcrossNodes admits 2,000 members on each of three nodes at
// once (Hub-level joins, no sockets: 6,000 sockets would measure the
// machine, not the allocator) and checks the 6,000 uids are distinct and
// small.
func TestUIDsUniqueAcrossNodes(t *testing.T) {
	ns := startNATS(t, 0, "")
	var nodes []*testNode
	for i := range 3 {
		nodes = append(nodes, startNode(t, ns.ClientURL(), fmt.Sprintf("u%d", i)))
	}
	const each = 2000
	uids := make([][]uint64, len(nodes))
	var wg sync.WaitGroup
	for i, tn := range nodes {
		uids[i] = make([]uint64, each)
		for j := range each {
			wg.Go(func() {
				uids[i][j] = tn.srv.Hub().Join(nullSession{}, chat.JoinOptions{Protocol: "test"}).UID()
			})
		}
	}
	wg.Wait()
	seen := map[uint64]bool{}
	var top uint64
	for _, us := range uids {
		for _, u := range us {
			if u == 0 || seen[u] {
				t.Fatalf("uid %d handed out twice (or 0)", u)
			}
			seen[u] = true
			top = max(top, u)
		}
	}
	if len(seen) != 3*each {
		t.Fatalf("%d distinct uids, want %d", len(seen), 3*each)
	}
	// Blocks of uidBlock, at most two partly used per node (the current
	// one and the one taken ahead).
	if limit := uint64(3*each + 2*3*uidBlock); top > limit {
		t.Errorf("largest uid %d, want at most %d", top, limit)
	}
	agree(t, nodes, each, each, each)
	for _, tn := range nodes {
		if got := tn.srv.Hub().Online().Members; got != 3*each {
			t.Errorf("%s: Online() = %d, want %d", tn.node.Name(), got, 3*each)
		}
	}
}

// TestNodeKilled: a node that drops out without a word (its NATS
// connection closed, no goodbye) is noticed by heartbeats, and its members
// leave on the others within deadBeats heartbeats.
func TestNodeKilled(t *testing.T) {
	ns := startNATS(t, 0, "")
	n1 := startNode(t, ns.ClientURL(), "k1")
	n2 := startNode(t, ns.ClientURL(), "k2")
	a := dial(t, n1.addr)
	b := dial(t, n2.addr)
	agree(t, []*testNode{n1, n2}, 1, 1)
	n2.node.Kill()
	took := a.skipUntil(fmt.Sprintf("* uid %d left", b.uid))
	// deadBeats heartbeats after the last one, which was up to one period
	// before the kill; a margin for a loaded machine.
	if limit := deadBeats*time.Second + time.Second; took > limit {
		t.Errorf("members of a killed node left after %s, want within %s", took, limit)
	}
	if got := n1.srv.Hub().Online().Members; got != 1 {
		t.Errorf("n1 counts %d online, want 1", got)
	}
	a.send(fmt.Sprintf("$%d:are you there", b.uid))
	a.skipUntil(fmt.Sprintf("! uid %d is not online", b.uid))
}

// TestNodeStopped: a graceful stop tells the others at once.
func TestNodeStopped(t *testing.T) {
	ns := startNATS(t, 0, "")
	n1 := startNode(t, ns.ClientURL(), "s1")
	n2 := startNode(t, ns.ClientURL(), "s2")
	n3 := startNode(t, ns.ClientURL(), "s3")
	a := dial(t, n1.addr)
	b := dial(t, n2.addr)
	c := dial(t, n3.addr)
	agree(t, []*testNode{n1, n2, n3}, 1, 1, 1)
	start := time.Now()
	n2.stop()
	a.skipUntil(fmt.Sprintf("* uid %d left", b.uid))
	c.skipUntil(fmt.Sprintf("* uid %d left", b.uid))
	// At once: well before a heartbeat could be missed.
	if took := time.Since(start); took > time.Second {
		t.Errorf("members of a stopped node left after %s, want at once", took)
	}
	agree(t, []*testNode{n1, n3}, 1, 1)
}

// TestNATSLostAndBack: with NATS gone, each node serves its own clients
// and says why it is unhealthy; with NATS back, delivery across nodes
// resumes within 5 s, without a restart; no goroutine is left behind.
func TestNATSLostAndBack(t *testing.T) {
	before := runtime.NumGoroutine()
	func() {
		ns := startNATS(t, 0, "")
		n1 := startNode(t, ns.ClientURL(), "r1")
		n2 := startNode(t, ns.ClientURL(), "r2")
		defer n1.stop()
		defer n2.stop()
		a := dial(t, n1.addr)
		a2 := dial(t, n1.addr)
		b := dial(t, n2.addr)
		agree(t, []*testNode{n1, n2}, 2, 1)

		ns.Shutdown()
		ns.WaitForShutdown()
		waitFor(t, "n1 unhealthy", testTimeout, func() bool { return n1.node.Healthy() != nil })
		if st := n1.node.Stats(); st.Connected || st.Error == "" {
			t.Errorf("n1 stats while NATS is down: %+v", st)
		}
		a.send("local still")
		a2.skipUntil(fmt.Sprintf("uid %d: local still", a.uid))
		// The other node's member leaves after its heartbeats stop.
		a.skipUntil(fmt.Sprintf("* uid %d left", b.uid))
		// uids go on being handed out.
		c := dial(t, n1.addr)
		if c.uid == 0 {
			t.Fatal("no uid while NATS is down")
		}

		ns2 := startNATS(t, ns.port, ns.store)
		defer ns2.Shutdown()
		back := time.Now()
		deadline := back.Add(5 * time.Second)
		// Delivery resumes: lines sent until one arrives.
		got := make(chan struct{})
		go func() {
			defer close(got)
			b.skipUntil(fmt.Sprintf("uid %d: are you back", a.uid))
		}()
	send:
		for {
			a.send("are you back")
			select {
			case <-got:
				break send
			case <-time.After(200 * time.Millisecond):
			}
			if time.Now().After(deadline) {
				t.Fatalf("no delivery across nodes within 5 s of NATS coming back")
			}
		}
		if err := n1.node.Healthy(); err != nil {
			t.Errorf("n1 after NATS is back: %v", err)
		}
		agree(t, []*testNode{n1, n2}, 3, 1)
	}()
	waitFor(t, "goroutines back to where they were", testTimeout, func() bool { return runtime.NumGoroutine() <= before+2 })
}

// TestStartNATSDown: an unreachable NATS fails the start, naming the URL
// without its password.
func TestStartNATSDown(t *testing.T) {
	ln := startNATS(t, 0, "")
	url := fmt.Sprintf("nats://user:s3cret@127.0.0.1:%d", ln.port)
	ln.Shutdown()
	ln.WaitForShutdown()
	_, err := Connect(Config{NATS: url, Name: "x", Timeout: 500 * time.Millisecond}, nil)
	if err == nil {
		t.Fatal("connected to a NATS that is not there")
	}
	msg := err.Error()
	if want := fmt.Sprintf("127.0.0.1:%d", ln.port); !strings.Contains(msg, want) || strings.Contains(msg, "s3cret") {
		t.Errorf("error %q: want the URL %s, without the password", msg, want)
	}
}

// TestNameInUse: a second node with a running node's name is refused at
// start, and a heartbeat under a node's name from elsewhere is reported and
// ignored.
func TestNameInUse(t *testing.T) {
	ns := startNATS(t, 0, "")
	n1 := startNode(t, ns.ClientURL(), "same")
	n2 := startNode(t, ns.ClientURL(), "other")
	if _, err := Connect(Config{NATS: ns.ClientURL(), Name: "same"}, nil); err == nil || !strings.Contains(err.Error(), `"same" is in use`) {
		t.Fatalf("second node named same: %v", err)
	}
	a := dial(t, n1.addr)
	agree(t, []*testNode{n1, n2}, 1, 0)
	// An impostor beats under both names.
	nc, err := nats.Connect(ns.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	for range 3 {
		for _, name := range []string{"same", "other"} {
			_ = nc.Publish("fastws.hb."+name, appendUint(appendString([]byte{msgBeat}, "impostor"), 0))
		}
		_ = nc.Publish("fastws.sync.same", nil)
		_ = nc.Flush()
	}
	waitFor(t, "n1 reports the name conflict", testTimeout, func() bool { return n1.node.Healthy() != nil })
	// n2 still knows the real n1 and its member.
	if _, ok := n2.node.Remote(a.uid); !ok {
		t.Error("n2 lost n1's member to an impostor's heartbeat")
	}
}

// TestHostileMessages publishes malformed messages on every subject the
// nodes hear: they are dropped and counted, and the cluster goes on.
func TestHostileMessages(t *testing.T) {
	ns := startNATS(t, 0, "")
	n1 := startNode(t, ns.ClientURL(), "h1")
	n2 := startNode(t, ns.ClientURL(), "h2")
	a := dial(t, n1.addr)
	b := dial(t, n2.addr)
	agree(t, []*testNode{n1, n2}, 1, 1)
	nc, err := nats.Connect(ns.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	bad := [][]byte{
		nil, {0}, {msgEvent}, {msgEvent, byte(chat.KindMessage), 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff},
		{msgDump, 0xff, 0xff, 0xff, 0xff, 0x0f}, {msgJoined}, {msgEntered, 5, 0x7f},
		encodeEvent(&chat.Event{Kind: chat.KindShutdown, UID: 1}),
		encodeEvent(&chat.Event{Kind: chat.KindMessage, UID: 0, Text: "no sender"}),
		encodeEvent(&chat.Event{Kind: chat.KindMessage, UID: 5, Private: true, To: 0}),
	}
	for _, subj := range []string{"fastws.lobby", "fastws.node.h1", "fastws.dir.h2", "fastws.dir.h1.x", "fastws.dir.h1", "fastws.hb.h2", "fastws.dump.h1", "fastws.room.games"} {
		for _, data := range bad {
			if err := nc.Publish(subj, data); err != nil {
				t.Fatal(err)
			}
		}
	}
	_ = nc.Flush()
	waitFor(t, "malformed messages counted", testTimeout, func() bool { return n1.node.Stats().Dropped > 10 })
	a.send("still here")
	b.skipUntil(fmt.Sprintf("uid %d: still here", a.uid))
	agree(t, []*testNode{n1, n2}, 1, 1)
}

// TestNodeKilledAnonymous: with requireAuth, a killed node's members
// leave the others' lobby with a notice only if they were announced, that
// is authenticated: an anonymous connection never was.
func TestNodeKilledAnonymous(t *testing.T) {
	ns := startNATS(t, 0, "")
	n1 := startNode(t, ns.ClientURL(), "h1")
	n2 := startNode(t, ns.ClientURL(), "h2")
	for _, tn := range []*testNode{n1, n2} {
		tn.srv.Hub().SetAuth(chat.AuthOptions{Require: true, Verify: func(tok string) (chat.Identity, error) { return chat.Identity{User: tok}, nil }})
	}
	a := dial(t, n1.addr)
	a.send("/auth ua")
	a.skipUntil(fmt.Sprintf("* authenticated as uid %d (user ua)", a.uid))
	anon := dial(t, n2.addr)
	c := dial(t, n2.addr)
	c.send("/auth uc")
	a.skipUntil(fmt.Sprintf("* uid %d joined", c.uid))
	agree(t, []*testNode{n1, n2}, 1, 2)
	waitFor(t, "n1 knows the user of c", testTimeout, func() bool { u, _, _ := n1.node.RemoteDetail(c.uid); return u == "uc" })
	n2.node.Kill()
	for _, l := range a.lines(fmt.Sprintf("* uid %d left", c.uid)) {
		if strings.Contains(l, fmt.Sprintf("uid %d ", anon.uid)) {
			t.Errorf("read %q about a connection that never authenticated", l)
		}
	}
}
