package server

import (
	"context"
	"fmt"
	"github.com/fastws/fastws/chat"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/fastws/fastws/server/config"
	"github.com/fastws/fastws/status"
)

// twoInstances starts two telnet instances of three reactors each and
// connects n clients to each, in order; every client has read the join
// notices of the ones after it.
func twoInstances(t *testing.T, n int) (a, b []*client) {
	t.Helper()
	s := startServer(t, telnetInstance("a", 3), telnetInstance("b", 3))
	addrs := s.Addrs()
	var all []*client
	for k := 0; k < 2*n; k++ {
		addr := addrs["a"]
		if k%2 == 1 {
			addr = addrs["b"]
		}
		c := dial(t, addr)
		for _, old := range all {
			old.expect(fmt.Sprintf("* uid %d joined", c.uid))
		}
		all = append(all, c)
		if k%2 == 0 {
			a = append(a, c)
		} else {
			b = append(b, c)
		}
	}
	return a, b
}

func TestBroadcastReachesEveryInstanceAndReactor(t *testing.T) {
	a, b := twoInstances(t, 6)
	a[0].send("hello everyone\n")
	for _, c := range append(a, b...) {
		c.expect(fmt.Sprintf("uid %d: hello everyone", a[0].uid))
	}
	b[5].send("and back\r\n")
	for _, c := range append(a, b...) {
		c.expect(fmt.Sprintf("uid %d: and back", b[5].uid))
	}
}

func TestPrivateMessageAcrossInstances(t *testing.T) {
	a, b := twoInstances(t, 3)
	from, to := a[1], b[2]
	from.send(fmt.Sprintf("$%d:psst\n", to.uid))
	to.expect(fmt.Sprintf("uid %d (private): psst", from.uid))
	from.expect(fmt.Sprintf("(to uid %d): psst", to.uid))

	// Nobody else got it: a broadcast is the next line everyone reads.
	from.send("next\n")
	for _, c := range append(a, b...) {
		c.expect(fmt.Sprintf("uid %d: next", from.uid))
	}
}

func TestOfflineUID(t *testing.T) {
	a, _ := twoInstances(t, 1)
	a[0].send("$999:anyone?\n")
	a[0].expect("! uid 999 is not online")
}

func TestChineseTextByteIdentical(t *testing.T) {
	a, b := twoInstances(t, 1)
	text := "你好，世界 — 中文消息 ✓"
	a[0].send(text + "\r\n")
	for _, c := range []*client{a[0], b[0]} {
		c.expect(fmt.Sprintf("uid %d: %s", a[0].uid, text))
	}
}

func TestIACSequencesReachNobody(t *testing.T) {
	a, b := twoInstances(t, 1)
	// inetutils telnet's Ctrl-C, alone on the wire: answered with WILL TM.
	a[0].send("\xff\xf4\xff\xfd\x06")
	if got := readN(t, a[0], 3); got != "\xff\xfb\x06" {
		t.Fatalf("reply to IAC DO TM: got %q, want IAC WILL TM", got)
	}
	// Inside a line, with a subnegotiation holding a newline.
	a[0].send("he\xff\xf4l\xff\xfa\x18\n\xff\xf0lo\xff\xff!\n")
	want := fmt.Sprintf("uid %d: hello\ufffd!", a[0].uid) // a lone 0xFF is not UTF-8
	a[0].expect(want)
	b[0].expect(want)
}

// readN reads exactly n raw bytes from c.
func readN(t *testing.T, c *client, n int) string {
	t.Helper()
	buf := make([]byte, n)
	_ = c.conn.SetReadDeadline(time.Now().Add(testTimeout))
	for i := 0; i < n; i++ {
		b, err := c.r.ReadByte()
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		buf[i] = b
	}
	return string(buf)
}

func TestOverlongLineClosesOnlyThatConnection(t *testing.T) {
	inst := telnetInstance("a", 2)
	inst.Limits.MaxPackageSize = 1024
	s := startServer(t, inst)
	addr := s.Addrs()["a"]
	good := dial(t, addr)
	bad := dial(t, addr)
	good.expect(fmt.Sprintf("* uid %d joined", bad.uid))

	// Exactly the limit is fine.
	bad.send(strings.Repeat("x", 1024) + "\r\n")
	good.expect(fmt.Sprintf("uid %d: %s", bad.uid, strings.Repeat("x", 1024)))
	bad.line()

	bad.send(strings.Repeat("y", 1025) + "\n")
	bad.expect("! line too long (max 1024 bytes)")
	bad.expectEOF()
	good.expect(fmt.Sprintf("* uid %d left", bad.uid))

	// Without a newline at all, past the limit.
	bad2 := dial(t, addr)
	good.expect(fmt.Sprintf("* uid %d joined", bad2.uid))
	bad2.send(strings.Repeat("z", 4096))
	bad2.expect("! line too long (max 1024 bytes)")
	bad2.expectEOF()
	good.expect(fmt.Sprintf("* uid %d left", bad2.uid))

	good.send("still here\n")
	good.expect(fmt.Sprintf("uid %d: still here", good.uid))
	st := s.Stats().Instances[0]
	if st.ProtocolErrors["line_too_long"] != 2 {
		t.Errorf("got %d line_too_long errors, want 2", st.ProtocolErrors["line_too_long"])
	}
}

func TestStopNotifiesFlushesAndCloses(t *testing.T) {
	s := New(discardLogger(), chat.Options{})
	cfg := &config.Config{Instances: []config.Instance{telnetInstance("a", 2), telnetInstance("b", 2)}}
	if err := s.Start(cfg); err != nil {
		t.Fatal(err)
	}
	addrs := s.Addrs()
	var cs []*client
	for k := 0; k < 8; k++ {
		c := dial(t, addrs[[]string{"a", "b"}[k%2]])
		cs = append(cs, c)
	}
	sender := cs[len(cs)-1]
	const n = 50
	for k := 0; k < n; k++ {
		sender.send(fmt.Sprintf("msg %d\n", k))
	}
	sender.sync() // every broadcast is accepted before the stop begins
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	if err := s.Stop(ctx); err != nil {
		t.Fatalf("stop: %v", err)
	}
	for _, c := range cs {
		for k := 0; k < n && c != sender; k++ { // the sender read its own in sync
			c.skipUntil(fmt.Sprintf("uid %d: msg %d", sender.uid, k))
		}
		c.skipUntil("* server is shutting down")
		c.expectEOF()
	}
	for name, addr := range addrs {
		if conn, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			conn.Close()
			t.Errorf("instance %s still accepts on %s after Stop", name, addr)
		}
	}
}

func TestBindFailureNamesInstanceAndLeavesNothing(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	taken := ln.Addr().(*net.TCPAddr).Port

	ok := telnetInstance("first", 1)
	busy := telnetInstance("busy", 1)
	busy.Port = taken
	s := New(discardLogger(), chat.Options{})
	err = s.Start(&config.Config{StopTimeout: time.Second, Instances: []config.Instance{ok, busy}})
	if err == nil {
		t.Fatal("start on a taken port: got no error")
	}
	want := fmt.Sprintf("instance busy: listen 127.0.0.1:%d: ", taken)
	if !strings.HasPrefix(err.Error(), want) || !strings.Contains(err.Error(), "address already in use") {
		t.Errorf("got error %q, want it to start with %q and say address already in use", err, want)
	}
	if got := s.Addrs(); len(got) != 0 {
		t.Errorf("got instances %v after a failed start, want none", got)
	}
}

func TestQuitAndNickAndWho(t *testing.T) {
	s := startServer(t, telnetInstance("a", 2))
	addr := s.Addrs()["a"]
	x := dial(t, addr)
	y := dial(t, addr)
	x.expect(fmt.Sprintf("* uid %d joined", y.uid))
	x.send("/nick alice\n")
	for _, c := range []*client{x, y} {
		c.expect(fmt.Sprintf("* uid %d is now alice", x.uid))
	}
	y.send("/who\n")
	y.expect(fmt.Sprintf("* uid %d alice (telnet)", x.uid))
	y.expect(fmt.Sprintf("* uid %d (telnet)", y.uid))
	y.expect("* 2 online")
	x.send("/quit\n")
	x.expect("* bye")
	x.expectEOF()
	y.expect(fmt.Sprintf("* alice(%d) left", x.uid))
}

func TestStatsCount(t *testing.T) {
	s := startServer(t, telnetInstance("a", 2))
	addr := s.Addrs()["a"]
	x := dial(t, addr)
	y := dial(t, addr)
	x.expect(fmt.Sprintf("* uid %d joined", y.uid))
	x.send("one\n")
	x.expect(fmt.Sprintf("uid %d: one", x.uid))
	y.expect(fmt.Sprintf("uid %d: one", x.uid))
	// The counters are added after the write the clients just read.
	var st Stats
	var in status.Instance
	deadline := time.Now().Add(testTimeout)
	for {
		st = s.Stats()
		in = st.Instances[0]
		if in.MessagesOut >= 5 || time.Now().After(deadline) {
			break
		}
		runtime.Gosched()
	}
	if in.Connections != 2 || in.ConnectionsTotal != 2 || in.MessagesIn != 1 {
		t.Errorf("got conns %d, total %d, msgs in %d; want 2, 2, 1", in.Connections, in.ConnectionsTotal, in.MessagesIn)
	}
	// welcome x, join(y) to x, welcome y, two copies of "one".
	if in.MessagesOut != 5 {
		t.Errorf("got %d messages out, want 5", in.MessagesOut)
	}
	if st.Room.Members != 2 || in.BroadcastDeliveries != 2 {
		t.Errorf("got room %+v and %d broadcast deliveries, want 2 members and 2", st.Room, in.BroadcastDeliveries)
	}
	rows, err := s.Connections(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 2 || rows[0].UID != x.uid || rows[1].UID != y.uid {
		t.Errorf("got connections %+v, want uids %d and %d", rows, x.uid, y.uid)
	}
}

func TestReload(t *testing.T) {
	s := startServer(t, telnetInstance("gone", 1), telnetInstance("same", 1), telnetInstance("changed", 1))
	stay := dial(t, s.Addrs()["same"])
	changed := telnetInstance("changed", 2)
	res, err := s.Reload(&config.Config{StopTimeout: testTimeout, Instances: []config.Instance{
		telnetInstance("new", 1), changed, telnetInstance("same", 1)}})
	if err != nil {
		t.Fatalf("reload: %v", err)
	}
	want := ReloadResult{Started: []string{"new"}, Stopped: []string{"gone"}, Restarted: []string{"changed"}, Unchanged: []string{"same"}}
	if fmt.Sprint(res) != fmt.Sprint(want) {
		t.Errorf("got %+v, want %+v", res, want)
	}
	var names []string
	for _, in := range s.Stats().Instances {
		names = append(names, in.Name)
	}
	if got := strings.Join(names, " "); got != "new changed same" {
		t.Errorf("got instances %q, want the new config's order %q", got, "new changed same")
	}
	stay.sync() // the unchanged instance kept its connection
}

// Join and leave notices with reactors that have no sessions: a reactor
// is not woken for room-wide events while it is empty, and it serves its
// first newcomer everything said after the welcome; the leave notice of a
// session reaches the members of its own event loop, which sent it from
// OnClose.
func TestNoticesWithEmptyReactors(t *testing.T) {
	s := startServer(t, telnetInstance("a", 1), telnetInstance("b", 1))
	x := dial(t, s.Addrs()["a"])
	y := dial(t, s.Addrs()["a"])
	x.expect(fmt.Sprintf("* uid %d joined", y.uid))
	y.conn.Close()
	x.expect(fmt.Sprintf("* uid %d left", y.uid))

	// b's one reactor was skipped by every notice so far.
	z := dial(t, s.Addrs()["b"])
	x.expect(fmt.Sprintf("* uid %d joined", z.uid))
	x.send("after you came\n")
	for _, c := range []*client{x, z} {
		c.expect(fmt.Sprintf("uid %d: after you came", x.uid))
	}
	x.conn.Close()
	z.expect(fmt.Sprintf("* uid %d left", x.uid))
}

// TestListenAddressesMeanWhatTheySay checks that host = 0.0.0.0 listens on
// IPv4 alone (Go's "tcp" network would take IPv6 connections too), that
// host = :: takes IPv6, and that the bound address reported is the one
// listened on.
func TestListenAddressesMeanWhatTheySay(t *testing.T) {
	v4 := telnetInstance("v4", 1)
	v4.Host = "0.0.0.0"
	v6 := telnetInstance("v6", 1)
	v6.Host = "::"
	s := startServer(t, v4, v6)
	addrs := s.Addrs()

	host, port, _ := net.SplitHostPort(addrs["v4"])
	if host != "0.0.0.0" {
		t.Errorf("host 0.0.0.0: bound address %s, want 0.0.0.0:PORT", addrs["v4"])
	}
	dial(t, net.JoinHostPort("127.0.0.1", port))
	if c, err := net.DialTimeout("tcp", net.JoinHostPort("::1", port), testTimeout); err == nil {
		c.Close()
		t.Errorf("host 0.0.0.0: a connection to [::1]:%s was accepted, want IPv4 only", port)
	}

	host, port, _ = net.SplitHostPort(addrs["v6"])
	if host != "::" {
		t.Errorf("host ::: bound address %s, want [::]:PORT", addrs["v6"])
	}
	dial(t, net.JoinHostPort("::1", port))
}
