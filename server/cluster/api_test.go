package cluster

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/fastws/fastws/chat"
	"github.com/fastws/fastws/server/api"
)

// withAuth lets the node's members /auth with a token that is their user
// id.
func withAuth(tn *testNode) *chat.Hub {
	h := tn.srv.Hub()
	h.SetAuth(chat.AuthOptions{Verify: func(tok string) (chat.Identity, error) { return chat.Identity{User: tok}, nil }})
	return h
}

// auth authenticates c as user.
func (c *client) auth(user string) {
	c.tb.Helper()
	c.send("/auth " + user)
	c.skipContains("(user " + user + ")")
}

// skipContains reads lines until one holds part, and returns it.
func (c *client) skipContains(part string) string {
	c.tb.Helper()
	for {
		if l := c.line(); strings.Contains(l, part) {
			return l
		}
	}
}

// closed waits for the server to close c's connection.
func (c *client) closed() {
	c.tb.Helper()
	_ = c.conn.SetReadDeadline(time.Now().Add(testTimeout))
	if _, err := io.Copy(io.Discard, c.r); err != nil {
		c.tb.Fatalf("uid %d: not closed: %v", c.uid, err)
	}
}

// presence returns uid's entry in h's members of room.
func presence(h *chat.Hub, room string, uid uint64) (chat.Presence, bool) {
	ps, _ := h.MembersOf(room, 0)
	i := slices.IndexFunc(ps, func(p chat.Presence) bool { return p.UID == uid })
	if i < 0 {
		return chat.Presence{}, false
	}
	return ps[i], true
}

// TestAPIAcrossNodes: the Application API's Hub methods, called on one
// node, reach and list the members of every node.
func TestAPIAcrossNodes(t *testing.T) {
	ns := startNATS(t, 0, "")
	n1 := startNode(t, ns.ClientURL(), "x1")
	n2 := startNode(t, ns.ClientURL(), "x2")
	n3 := startNode(t, ns.ClientURL(), "x3")
	h1, h2, h3 := withAuth(n1), withAuth(n2), withAuth(n3)
	_ = h2
	a1, a2, b, c := dial(t, n1.addr), dial(t, n2.addr), dial(t, n2.addr), dial(t, n3.addr)
	a1.auth("alice")
	a2.auth("alice")
	agree(t, []*testNode{n1, n2, n3}, 1, 2, 1)
	// A user authenticated on x2 is listed with its user id on x1.
	waitFor(t, "x1 lists a2 as alice's", testTimeout, func() bool {
		p, ok := presence(h1, "lobby", a2.uid)
		return ok && p.User == "alice" && p.Node == "x2" && p.Protocol == "telnet"
	})
	if p, _ := presence(h1, "lobby", a2.uid); p.Instance != "t" || time.Since(p.Since) > time.Minute || time.Since(p.Since) < 0 {
		t.Errorf("x1's entry of a2: instance %q since %v", p.Instance, p.Since)
	}
	if p, ok := presence(h1, "#lobby", a1.uid); !ok || p.User != "alice" || p.Node != "x1" || p.Instance != "t" {
		t.Errorf("x1's own member: %+v %v", p, ok)
	}
	if o := h1.Online(); o != (chat.Online{Members: 4, Users: 1, Rooms: 1}) {
		t.Errorf("Online on x1: %+v", o)
	}

	// Everyone: one publish, once to each other node.
	r2, r3 := n2.node.Stats().Received, n3.node.Stats().Received
	if n := h1.SendServer(chat.Target{}, "to all"); n != 4 {
		t.Errorf("send to everyone: %d, want 4", n)
	}
	for _, cl := range []*client{a1, a2, b, c} {
		cl.skipUntil("server: to all")
	}
	if d2, d3 := n2.node.Stats().Received-r2, n3.node.Stats().Received-r3; d2 != 1 || d3 != 1 {
		t.Errorf("send to everyone crossed %d times to x2, %d to x3; want once each", d2, d3)
	}
	// A uid on another node.
	if n := h1.SendServer(chat.Target{UID: c.uid}, "to c"); n != 1 {
		t.Errorf("send to a uid on x3: %d, want 1", n)
	}
	c.skipUntil("server: to c")
	// A user with a connection on x1 and one on x2: both; b, on x2 too, not.
	if n := h1.SendServer(chat.Target{User: "alice"}, "to alice"); n != 2 {
		t.Errorf("send to a user on two nodes: %d, want 2", n)
	}
	a1.skipUntil("server: to alice")
	a2.skipUntil("server: to alice")
	h1.SendServer(chat.Target{UID: b.uid}, "marker")
	if l := b.line(); l != "server: marker" {
		t.Errorf("b, not alice's, read %q", l)
	}

	// Join a user on two nodes from x1.
	if n := h1.JoinFor(chat.Target{User: "alice"}, "Games"); n != 2 {
		t.Errorf("join for a user on two nodes: %d, want 2", n)
	}
	a1.skipContains("* you are now in #Games")
	a2.skipContains("* you are now in #Games")
	waitFor(t, "x3 (none of its members in #Games) lists both", testTimeout, func() bool {
		ps, ok := h3.MembersOf("games", 0)
		return ok && len(ps) == 2 && ps[0].User == "alice" && ps[1].User == "alice"
	})
	ps, _ := h3.MembersOf("games", 0)
	nodes := []string{ps[0].Node, ps[1].Node}
	slices.Sort(nodes)
	if !slices.Equal(nodes, []string{"x1", "x2"}) {
		t.Errorf("x3's members of #games: %+v", ps)
	}
	if ps, _ := h3.MembersOf("games", 1); len(ps) != 1 || ps[0].UID != min(a1.uid, a2.uid) {
		t.Errorf("x3's first member of #games: %+v", ps)
	}
	for _, h := range []*chat.Hub{h1, h3} {
		// x1 counts a2 (on x2) in #Games once x2's directory message
		// arrives: eventually, as x3 did above.
		want := []chat.RoomInfo{{Name: "lobby", Members: 4}, {Name: "Games", Members: 2}}
		waitFor(t, "RoomList counts both of alice's members in #Games", testTimeout, func() bool { return slices.Equal(h.RoomList(), want) })
		if o := h.Online(); o != (chat.Online{Members: 4, Users: 1, Rooms: 2}) {
			t.Errorf("Online: %+v", o)
		}
	}
	// A room with no member on x3, sent to from x3: x1 and x2 have it,
	// and it does not come back to x3.
	r3 = n3.node.Stats().Received
	if n := h3.SendServer(chat.Target{Room: "#games"}, "room line"); n != 2 {
		t.Errorf("send to a room of other nodes: %d, want 2", n)
	}
	a1.skipContains("server: room line")
	a2.skipContains("server: room line")
	h1.SendServer(chat.Target{UID: c.uid}, "after the room line")
	c.skipUntil("server: after the room line")
	// The node counts a message after it has delivered it: wait for the
	// uid's to be counted, then check nothing else was.
	waitFor(t, "x3 counts the uid's message", testTimeout, func() bool { return n3.node.Stats().Received-r3 >= 1 })
	if d := n3.node.Stats().Received - r3; d != 1 {
		t.Errorf("x3 received %d messages; want 1 (the uid's, not the room's)", d)
	}

	// Leave a uid of x2 from x1.
	if n := h1.LeaveFor(chat.Target{UID: a2.uid}, "games"); n != 1 {
		t.Errorf("leave for a uid on x2: %d, want 1", n)
	}
	a2.skipContains(fmt.Sprintf("uid %d left #Games", a2.uid))
	waitFor(t, "x1 sees a2 out of #games", testTimeout, func() bool {
		ps, _ := h1.MembersOf("games", 0)
		return len(ps) == 1 && ps[0].UID == a1.uid
	})

	// Disconnect a user on two nodes from x3; the reason is cleaned.
	if n := h3.Disconnect(chat.Target{User: "alice"}, "bye \x1b[2J now"); n != 2 {
		t.Errorf("disconnect a user on two nodes: %d, want 2", n)
	}
	for _, cl := range []*client{a1, a2} {
		if l := cl.skipContains("server: disconnected: "); strings.ContainsRune(l, 0x1b) || !strings.HasSuffix(l, " now") {
			t.Errorf("disconnect line %q", l)
		}
		cl.closed()
	}
	agree(t, []*testNode{n1, n2, n3}, 0, 1, 1)
	waitFor(t, "alice gone from x3", testTimeout, func() bool { return h3.Online() == chat.Online{Members: 2, Users: 0, Rooms: 1} })
	if n := h3.Disconnect(chat.Target{UID: b.uid}, ""); n != 1 {
		t.Errorf("disconnect a uid on x2: %d", n)
	}
	b.closed()
}

// apiCall calls the HTTP API at base with key.
func apiCall(t *testing.T, method, url, body string) map[string]any {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader([]byte(body)))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+testAPIKey)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != 200 {
		t.Fatalf("%s %s %s: %d %v %v", method, url, body, resp.StatusCode, out, err)
	}
	return out
}

const testAPIKey = "0123456789abcdef0123456789abcdef"

// TestHTTPAPIAcrossNodes: the real HTTP API on node 1 sends to, lists
// and moves a member of node 2.
func TestHTTPAPIAcrossNodes(t *testing.T) {
	ns := startNATS(t, 0, "")
	n1 := startNode(t, ns.ClientURL(), "w1")
	n2 := startNode(t, ns.ClientURL(), "w2")
	h1 := withAuth(n1)
	withAuth(n2)
	s, err := api.Listen("127.0.0.1:0", api.Options{Hub: h1, Key: testAPIKey})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	base := "http://" + s.Addr() + "/api/v1/"
	a, b := dial(t, n1.addr), dial(t, n2.addr)
	b.auth("bob")
	agree(t, []*testNode{n1, n2}, 1, 1)
	waitFor(t, "w1 knows bob", testTimeout, func() bool { p, _ := presence(h1, "lobby", b.uid); return p.User == "bob" })

	if out := apiCall(t, "POST", base+"send", `{"user": "bob", "text": "hi bob"}`); out["delivered"] != 1.0 {
		t.Errorf("send to bob: %v", out)
	}
	b.skipUntil("server: hi bob")
	if out := apiCall(t, "POST", base+"join", fmt.Sprintf(`{"uid": %d, "room": "ops"}`, b.uid)); out["members"] != 1.0 {
		t.Errorf("join b: %v", out)
	}
	b.skipContains("* you are now in #ops")
	waitFor(t, "w1 sees #ops", testTimeout, func() bool { return n1.node.RemoteCount("ops") == 1 })
	out := apiCall(t, "GET", base+"members?room=ops", "")
	ms, _ := out["members"].([]any)
	if len(ms) != 1 {
		t.Fatalf("members of #ops on w1: %v", out)
	}
	m := ms[0].(map[string]any)
	if m["uid"] != float64(b.uid) || m["user"] != "bob" || m["node"] != "w2" || m["protocol"] != "telnet" || m["instance"] != "t" || m["since"] == "0001-01-01T00:00:00Z" {
		t.Errorf("member of #ops: %v", m)
	}
	out = apiCall(t, "GET", base+"online", "")
	if out["members"] != 2.0 || out["users"] != 1.0 || out["rooms"] != 2.0 {
		t.Errorf("online on w1: %v", out)
	}
	out = apiCall(t, "GET", base+"rooms", "")
	if fmt.Sprint(out["rooms"]) != "[map[members:2 room:lobby] map[members:1 room:ops]]" {
		t.Errorf("rooms on w1: %v", out)
	}
	// A node started now learns bob, his user id and instance, from w2's
	// dump.
	n3 := startNode(t, ns.ClientURL(), "w3")
	h3 := withAuth(n3)
	waitFor(t, "w3 lists bob from w2's dump", testTimeout, func() bool {
		p, ok := presence(h3, "ops", b.uid)
		return ok && p.User == "bob" && p.Node == "w2" && p.Instance == "t" && !p.Since.IsZero()
	})
	if o := h3.Online(); o != (chat.Online{Members: 2, Users: 1, Rooms: 2}) {
		t.Errorf("online on w3: %+v", o)
	}
	if out := apiCall(t, "POST", base+"send", `{"room": "ops", "text": "to ops"}`); out["delivered"] != 1.0 {
		t.Errorf("send to #ops: %v", out)
	}
	b.skipContains("server: to ops")
	if out := apiCall(t, "POST", base+"disconnect", `{"user": "bob", "reason": "done"}`); out["disconnected"] != 1.0 {
		t.Errorf("disconnect bob: %v", out)
	}
	b.skipUntil("server: disconnected: done")
	b.closed()
	a.send("still here")
}

// TestForwardHostile: what arrives on a node's subject is checked as API
// input: a malformed or hostile forward is dropped, never run, never a
// panic.
func TestForwardHostile(t *testing.T) {
	ns := startNATS(t, 0, "")
	n1 := startNode(t, ns.ClientURL(), "y1")
	n2 := startNode(t, ns.ClientURL(), "y2")
	withAuth(n2)
	b := dial(t, n2.addr)
	b.auth("bob")
	agree(t, []*testNode{n1, n2}, 0, 1)
	nc, err := nats.Connect(ns.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	subj := "fastws.node.y2"
	fw := func(op chat.ForwardOp, uid uint64, user, arg string) []byte {
		return encodeForward(chat.Forwarded{Op: op, Target: chat.Target{UID: uid, User: user}, Arg: arg})
	}
	hostile := [][]byte{
		fw(chat.ForwardJoin, b.uid, "", "bad room"),
		fw(chat.ForwardJoin, b.uid, "", "#"),
		fw(chat.ForwardJoin, 0, "bob\x1b", "games"),
		fw(chat.ForwardJoin, b.uid, "bob", "games"), // two targets
		fw(chat.ForwardJoin, 0, "", "games"),        // none
		fw(chat.ForwardDisconnect, b.uid, "", strings.Repeat("x", 257)),
		fw(chat.ForwardSend, b.uid, "", "   "),
		fw(0, b.uid, "", "x"),
		fw(9, b.uid, "", "x"),
		append(fw(chat.ForwardSend, b.uid, "", "trailing"), 0),
		{msgForward},
		{msgForward, 1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff},
		encodeEvent(&chat.Event{Kind: chat.KindMessage, Nick: "mallory", To: b.uid, Private: true, Text: "no sender"}),
		encodeEvent(&chat.Event{Kind: chat.KindMessage, Nick: chat.ServerNick, To: b.uid, Private: true, Text: "server private"}),
	}
	before := n2.node.Stats().Dropped
	for _, data := range hostile {
		if err := nc.Publish(subj, data); err != nil {
			t.Fatal(err)
		}
	}
	// A user id a directory must not take.
	if err := nc.Publish("fastws.dir.y2", encodeUser(b.uid, "evil\x1b[31m")); err != nil {
		t.Fatal(err)
	}
	// One good forward after them: once b has it, every one was handled.
	if err := nc.Publish(subj, fw(chat.ForwardSend, 0, "bob", "good \x1b[31mred")); err != nil {
		t.Fatal(err)
	}
	if l := b.line(); !strings.HasPrefix(l, "server: good ") || strings.ContainsRune(l, 0x1b) {
		t.Errorf("b read %q; want the good forward only, cleaned", l)
	}
	// y2 drops the dir message too: it claims to be from y2 itself.
	if d := n2.node.Stats().Dropped - before; d != uint64(len(hostile))+1 {
		t.Errorf("dropped %d of %d hostile forwards", d, len(hostile))
	}
	waitFor(t, "y1 counts the bad user message", testTimeout, func() bool { return n1.node.Stats().Dropped == 1 })
	if u, _, _ := n1.node.RemoteDetail(b.uid); u != "bob" {
		t.Errorf("y1 has b as %q", u)
	}
	if rs := n2.srv.Hub().RoomList(); len(rs) != 1 {
		t.Errorf("a hostile join made a room: %+v", rs)
	}
	b.send("/who")
	b.skipUntil("* 1 online")
}
