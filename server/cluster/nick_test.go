package cluster

import (
	"fmt"
	"testing"
	"time"

	"github.com/fastws/fastws/chat"
	"github.com/fastws/fastws/server"
	"github.com/fastws/fastws/server/config"
)

// slowClaims is a node whose nick claims wait for gate: a cluster whose
// key-value store answers slowly (a NATS server electing a leader, say).
type slowClaims struct {
	*Node
	gate <-chan struct{}
}

func (s slowClaims) ClaimNick(uid uint64, key string) bool {
	<-s.gate
	return s.Node.ClaimNick(uid, key)
}

// TestNickClaimDoesNotStallTheLoop: while the cluster takes its time to
// answer a member's /nick, the other members of its event loop go on
// chatting, a second /nick of that member is refused, and the rename
// comes once the cluster answers. Before, the claim ran on the event loop
// and stalled every connection it serves: a member repeating /nick could
// stall them at will.
func TestNickClaimDoesNotStallTheLoop(t *testing.T) {
	ns := startNATS(t, 0, "")
	n, err := Connect(Config{NATS: ns.ClientURL(), Name: "slow"}, testLog())
	if err != nil {
		t.Fatal(err)
	}
	gate := make(chan struct{})
	opened := make(chan struct{})
	open := func() {
		select {
		case <-opened:
		default:
			close(opened)
			close(gate)
		}
	}
	// The claim waits at most 3 s, so that the old code, which waits on
	// the event loop, fails this test instead of hanging it.
	watchdog := time.AfterFunc(3*time.Second, open)
	defer watchdog.Stop()
	srv := server.New(testLog(), chat.Options{Cluster: slowClaims{Node: n, gate: gate}})
	if err := n.Start(srv.Hub()); err != nil {
		t.Fatal(err)
	}
	inst := config.Instance{
		Section: "instance.t", Name: "t", Protocol: config.ProtocolTelnet,
		Host: "127.0.0.1", Port: 0, ChildProcessCount: 1, Limits: config.DefaultLimits(), // one event loop for both
	}
	if err := srv.Start(&config.Config{StopTimeout: 5 * time.Second, Defaults: config.DefaultLimits(), Instances: []config.Instance{inst}}); err != nil {
		t.Fatal(err)
	}
	tn := &testNode{node: n, srv: srv, addr: srv.Addrs()["t"]}
	t.Cleanup(tn.stop)
	t.Cleanup(open)

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
