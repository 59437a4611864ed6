package cluster

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"

	"github.com/fastws/fastws/chat"
	"github.com/fastws/fastws/server"
)

// testTimeout bounds every wait in these tests.
const testTimeout = 10 * time.Second

// natsServer is an embedded nats-server with JetStream.
type natsServer struct {
	*natsserver.Server
	port  int
	store string
}

// startNATS runs an embedded nats-server on a random port (port 0), or on
// port (a restart), with JetStream storing in store ("" = a temp dir).
func startNATS(tb testing.TB, port int, store string) *natsServer {
	tb.Helper()
	if store == "" {
		store = tb.TempDir()
	}
	if port == 0 {
		port = -1
	}
	s, err := natsserver.NewServer(&natsserver.Options{Host: "127.0.0.1", Port: port, JetStream: true, StoreDir: store, NoLog: true, NoSigs: true})
	if err != nil {
		tb.Fatalf("nats-server: %v", err)
	}
	s.Start()
	if !s.ReadyForConnections(testTimeout) {
		tb.Fatal("nats-server not ready")
	}
	tb.Cleanup(s.Shutdown)
	return &natsServer{Server: s, port: s.Addr().(*net.TCPAddr).Port, store: store}
}

// testNode is one fastws node: a server with a telnet instance, and its
// cluster node.
type testNode struct {
	node *Node
	srv  *server.Server
	addr string
}

func testLog() *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// startNode starts node name on the NATS at url.
func startNode(tb testing.TB, url, name string) *testNode {
	tb.Helper()
	return startNodeWith(tb, Config{NATS: url, Name: name})
}

// stop stops the server, then leaves the cluster gracefully.
func (tn *testNode) stop() {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	_ = tn.srv.Stop(ctx)
	tn.node.Close(ctx)
}

// client is a telnet client.
type client struct {
	tb   testing.TB
	conn net.Conn
	r    *bufio.Reader
	uid  uint64
}

var welcomeRE = regexp.MustCompile(`Welcome to fastws! You are uid (\d+)\. `)

func dial(tb testing.TB, addr string) *client {
	tb.Helper()
	conn, err := net.DialTimeout("tcp", addr, testTimeout)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { conn.Close() })
	c := &client{tb: tb, conn: conn, r: bufio.NewReader(conn)}
	m := welcomeRE.FindStringSubmatch(c.line())
	if m == nil {
		tb.Fatal("no welcome")
	}
	c.uid, _ = strconv.ParseUint(m[1], 10, 64)
	return c
}

func (c *client) send(s string) {
	c.tb.Helper()
	if _, err := c.conn.Write([]byte(s + "\n")); err != nil {
		c.tb.Fatal(err)
	}
}

func (c *client) line() string {
	c.tb.Helper()
	_ = c.conn.SetReadDeadline(time.Now().Add(testTimeout))
	s, err := c.r.ReadString('\n')
	if err != nil {
		c.tb.Fatalf("uid %d: read: %v (got %q)", c.uid, err, s)
	}
	return strings.TrimRight(s, "\r\n")
}

// skipUntil reads lines until want and returns how long that took.
func (c *client) skipUntil(want string) time.Duration {
	c.tb.Helper()
	start := time.Now()
	for {
		if c.line() == want {
			return time.Since(start)
		}
	}
}

// lines reads lines until one ends with last, and returns them.
func (c *client) lines(last string) []string {
	c.tb.Helper()
	var ls []string
	for {
		l := c.line()
		ls = append(ls, l)
		if strings.HasSuffix(l, last) {
			return ls
		}
	}
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(tb testing.TB, what string, d time.Duration, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("not within %s: %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// knows waits until every node knows every other's members: want[i] is
// node i's member count.
func agree(tb testing.TB, nodes []*testNode, want ...int) {
	tb.Helper()
	var last []Stats
	defer func() {
		if tb.Failed() {
			tb.Logf("last stats: %+v", last)
		}
	}()
	waitFor(tb, fmt.Sprintf("nodes agree on members %v", want), testTimeout, func() bool {
		last = last[:0]
		for _, tn := range nodes {
			last = append(last, tn.node.Stats())
		}
		for _, tn := range nodes {
			st := tn.node.Stats()
			if len(st.Nodes) != len(nodes) {
				return false
			}
			for i, other := range nodes {
				for _, ns := range st.Nodes {
					if ns.Name == other.node.Name() && ns.Members != want[i] {
						return false
					}
				}
			}
		}
		return true
	})
}

func TestCrossNode(t *testing.T) {
	ns := startNATS(t, 0, "")
	n1 := startNode(t, ns.ClientURL(), "n1")
	n2 := startNode(t, ns.ClientURL(), "n2")
	a := dial(t, n1.addr)
	b := dial(t, n2.addr)
	if a.uid == b.uid {
		t.Fatalf("both uid %d", a.uid)
	}
	agree(t, []*testNode{n1, n2}, 1, 1)

	a.send("hello")
	b.skipUntil(fmt.Sprintf("uid %d: hello", a.uid))

	b.send("/join games")
	b.skipUntil("* you are now in #games (1 member)")
	// n1 learns of b's room through its directory: eventually.
	waitFor(t, "n1 sees #games", testTimeout, func() bool { return n1.node.RemoteCount("games") == 1 })
	a.send("/join Games")
	a.skipUntil("* you are now in #Games (2 members)")
	b.skipUntil(fmt.Sprintf("* uid %d joined #games", a.uid))
	a.send("/join games") // again: the count still has b's node
	a.skipUntil("* you are now in #Games (2 members)")
	a.send("#games in the room")
	b.skipUntil(fmt.Sprintf("[#games] uid %d: in the room", a.uid))

	a.send(fmt.Sprintf("$%d:psst", b.uid))
	b.skipUntil(fmt.Sprintf("uid %d (private): psst", a.uid))
	a.skipUntil(fmt.Sprintf("(to uid %d): psst", b.uid))

	a.send("/nick alice")
	a.skipUntil(fmt.Sprintf("* uid %d is now alice", a.uid))
	waitFor(t, "n2 sees alice", testTimeout, func() bool { m, _ := n2.node.Remote(a.uid); return m.Nick == "alice" })
	b.send("/nick ALICE")
	b.skipUntil("! nick ALICE is taken")

	b.send("/who lobby")
	who := b.lines(" online")
	want := []string{fmt.Sprintf("* uid %d alice (telnet)", a.uid), fmt.Sprintf("* uid %d (telnet)", b.uid), "* 2 online"}
	if a.uid > b.uid {
		want[0], want[1] = want[1], want[0]
	}
	if strings.Join(who, "\n") != strings.Join(want, "\n") {
		t.Errorf("/who on n2:\n%s\nwant\n%s", strings.Join(who, "\n"), strings.Join(want, "\n"))
	}
	a.send("/who #games")
	if got := a.lines(" in #Games"); len(got) != 3 || got[2] != "* 2 in #Games" {
		t.Errorf("/who #games on n1: %q", got)
	}
	b.send("/rooms")
	rooms := b.lines(" rooms")
	if strings.Join(rooms, "\n") != "* #games (2 members)\n* #lobby (2 members)\n* 2 rooms" {
		t.Errorf("/rooms on n2: %q", rooms)
	}

	a.send(fmt.Sprintf("$%d:x", 999999))
	a.skipUntil("! uid 999999 is not online")
	if st := n1.node.Stats(); st.Sent == 0 || st.Dropped != 0 || st.NATS == "" || !st.Connected {
		t.Errorf("n1 stats %+v", st)
	}
}

// TestRoomInterest: a room's lines go only to the nodes holding its
// members, and a node unsubscribes when its last member leaves.
func TestRoomInterest(t *testing.T) {
	ns := startNATS(t, 0, "")
	n1 := startNode(t, ns.ClientURL(), "i1")
	n2 := startNode(t, ns.ClientURL(), "i2")
	n3 := startNode(t, ns.ClientURL(), "i3")
	a, b, c := dial(t, n1.addr), dial(t, n2.addr), dial(t, n3.addr)
	agree(t, []*testNode{n1, n2, n3}, 1, 1, 1)
	a.send("/join quiet")
	a.skipUntil("* you are now in #quiet (1 member)")
	waitFor(t, "n2 sees #quiet", testTimeout, func() bool { return n2.node.RemoteCount("quiet") == 1 })
	b.send("/join quiet")
	b.skipUntil("* you are now in #quiet (2 members)")
	before := n3.node.Stats().Received
	for i := range 20 {
		a.send("#quiet line " + strconv.Itoa(i))
	}
	b.skipUntil(fmt.Sprintf("[#quiet] uid %d: line 19", a.uid))
	// A lobby line after them: once n3 has it, it would have had them.
	a.send("#lobby lobby line")
	c.skipUntil(fmt.Sprintf("uid %d: lobby line", a.uid))
	if got := n3.node.Stats().Received - before; got != 1 {
		t.Errorf("n3, with no member in #quiet, received %d events, want only the lobby line", got)
	}
	b.send("/leave quiet")
	b.skipUntil(fmt.Sprintf("* uid %d left #quiet", b.uid))
	waitFor(t, "n2 unsubscribed from #quiet", testTimeout, func() bool {
		n2.node.subMu.Lock()
		defer n2.node.subMu.Unlock()
		return n2.node.rooms["quiet"] == nil
	})
	// SendTo reaches a member of another node.
	ev := &chat.Event{Kind: chat.KindMessage, UID: a.uid, To: c.uid, Private: true, Text: "via SendTo", Time: time.Now()}
	if !n1.srv.Hub().SendTo(c.uid, ev) {
		t.Fatal("SendTo a member of another node: false")
	}
	c.skipUntil(fmt.Sprintf("uid %d (private): via SendTo", a.uid))
	if mi, ok := n1.srv.Hub().MemberInfo(c.uid); !ok || mi.Protocol != "telnet" || mi.Node != "i3" {
		t.Errorf("MemberInfo of a member of another node: %+v %v", mi, ok)
	}
	if n1.srv.Hub().SendTo(424242, ev) {
		t.Error("SendTo a uid online nowhere: true")
	}
}
