package cluster

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// newGate returns a gate that open opens, once, and a channel closed
// then; a watchdog opens it after the given time, so that code that waits
// for the gate where it must not fails a test instead of hanging it.
func newGate(t *testing.T, watchdog time.Duration) (gate <-chan struct{}, open func(), opened <-chan struct{}) {
	g, done := make(chan struct{}), make(chan struct{})
	var once sync.Once
	open = func() {
		once.Do(func() {
			close(done)
			close(g)
		})
	}
	w := time.AfterFunc(watchdog, open)
	t.Cleanup(func() { w.Stop() })
	return g, open, done
}

// slowNode starts a node whose nick claims wait for the returned open
// (a NATS cluster electing a leader answers that slowly), with at most
// claims of them under way (0: the default), and one event loop for all
// its members. A watchdog opens after 3 s, so that code that waits for a
// claim on the event loop fails a test instead of hanging it.
func slowNode(t *testing.T, claims int) (tn *testNode, open func(), opened <-chan struct{}) {
	t.Helper()
	ns := startNATS(t, 0, "")
	gate, open, done := newGate(t, 3*time.Second)
	tn = startNodeWith(t, Config{NATS: ns.ClientURL(), Name: "slow"}, func(n *Node) {
		n.beforeClaim = func() { <-gate }
		if claims > 0 {
			n.claims = make(chan struct{}, claims)
		}
	})
	t.Cleanup(open) // runs before the node's stop, which waits for the claims
	return tn, open, done
}

// TestNickClaimDoesNotStallTheLoop: while the cluster takes its time to
// answer a member's /nick, the other members of its event loop go on
// chatting, a second /nick of that member is refused, and the rename
// comes once the cluster answers. Before, the claim ran on the event loop
// and stalled every connection it serves: a member repeating /nick could
// stall them at will.
func TestNickClaimDoesNotStallTheLoop(t *testing.T) {
	tn, open, opened := slowNode(t, 0)
	a, b := dial(t, tn.addr), dial(t, tn.addr)
	a.skipUntil(fmt.Sprintf("* uid %d joined", b.uid))
	a.send("/nick alice")
	b.send("still here")
	a.skipUntil(fmt.Sprintf("uid %d: still here", b.uid))
	select {
	case <-opened:
		t.Fatal("the line of another member of the loop waited for the nick claim")
	default:
	}
	a.send("/nick bob")
	a.skipUntil("! a nick change is under way; try again")
	open()
	a.skipUntil(fmt.Sprintf("* uid %d is now alice", a.uid))
	b.skipUntil(fmt.Sprintf("* uid %d is now alice", a.uid))
	a.send("/nick bob")
	a.skipUntil(fmt.Sprintf("* alice(%d) is now bob", a.uid))
}

// TestNickClaimsBounded: a node has at most its limit of nick claims
// under way; one more /nick is refused at once, and the claims under way
// finish. Members repeating /nick so load NATS by no more than the limit.
func TestNickClaimsBounded(t *testing.T) {
	tn, open, _ := slowNode(t, 2)
	cs := []*client{dial(t, tn.addr), dial(t, tn.addr), dial(t, tn.addr)}
	cs[0].send("/nick one")
	cs[1].send("/nick two")
	waitFor(t, "two claims under way", testTimeout, func() bool { return len(tn.node.claims) == 2 })
	cs[2].send("/nick three")
	cs[2].skipUntil("! too many nick changes under way; try again")
	open()
	want := map[string]bool{fmt.Sprintf("* uid %d is now one", cs[0].uid): true, fmt.Sprintf("* uid %d is now two", cs[1].uid): true}
	for len(want) > 0 {
		delete(want, cs[2].line()) // in either order
	}
	cs[2].send("/nick three")
	cs[2].skipUntil(fmt.Sprintf("* uid %d is now three", cs[2].uid))
}

// TestNickClaimOfAMemberGone: a member that leaves while its claim is
// under way does not keep the nick: the claim is given back, and a member
// of another node takes the nick.
func TestNickClaimOfAMemberGone(t *testing.T) {
	tn, open, _ := slowNode(t, 0)
	a := dial(t, tn.addr)
	a.send("/nick ghost")
	waitFor(t, "the claim under way", testTimeout, func() bool { return len(tn.node.claims) == 1 })
	a.send("/quit")
	a.conn.Close() // as a client does once told: the server need not linger
	waitFor(t, "the member gone", testTimeout, func() bool { return tn.srv.Hub().Stats().Members == 0 })
	open()
	waitFor(t, "the claim given back", testTimeout, func() bool {
		keys, err := tn.node.kv.ListKeys(t.Context())
		if errors.Is(err, jetstream.ErrNoKeysFound) {
			return true
		} else if err != nil {
			return false
		}
		for k := range keys.Keys() {
			if strings.HasPrefix(k, "nick.") {
				return false
			}
		}
		return true
	})
}
