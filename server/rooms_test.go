package server

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fastws/fastws/chat"
	"github.com/fastws/fastws/server/config"
	"github.com/gobwas/ws"
)

// startRoomServer runs a telnet instance "t" and a websocket instance "w",
// two reactors each, with the room limits given.
func startRoomServer(t *testing.T, maxRooms, perMember int) *Server {
	t.Helper()
	s := New(discardLogger(), chat.Options{})
	cfg := &config.Config{StopTimeout: 5 * time.Second, Defaults: config.DefaultLimits(),
		Instances: []config.Instance{telnetInstance("t", 2), wsInstance("w", 2)},
		MaxRooms:  maxRooms, MaxRoomsPerMember: perMember}
	if err := s.Start(cfg); err != nil {
		t.Fatalf("start: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		defer cancel()
		_ = s.Stop(ctx)
	})
	return s
}

// wsLine writes one text frame.
func (c *wsRaw) wsLine(s string) {
	c.tb.Helper()
	c.write(clientFrame(true, 0, ws.OpText, []byte(s)))
}

// settle reads c's lines until the private message it sends itself now:
// everything before it (join notices) is returned and dropped.
func (c *client) settle() []string {
	c.tb.Helper()
	tag := "settle-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	c.send("$" + strconv.FormatUint(c.uid, 10) + ":" + tag + "\n")
	var seen []string
	for {
		l := c.line()
		if strings.HasSuffix(l, " (private): "+tag) {
			return seen
		}
		seen = append(seen, l)
	}
}

// settle is client.settle for a websocket text client.
func (c *wsRaw) settle() []string {
	c.tb.Helper()
	tag := "settle-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	c.wsLine("$" + strconv.FormatUint(c.uid, 10) + ":" + tag)
	var seen []string
	for {
		h, p := c.readFrame()
		if h.OpCode == ws.OpText && strings.HasSuffix(string(p), " (private): "+tag) {
			return seen
		}
		seen = append(seen, string(p))
	}
}

// settle is client.settle for a JSON client.
func (c *coderClient) settle() []string {
	c.tb.Helper()
	tag := "settle-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	c.send(fmt.Sprintf(`{"to":%d,"text":%q}`, c.uid, tag))
	var seen []string
	for {
		m := c.read()
		if strings.Contains(m, `"text":"`+tag+`"`) {
			return seen
		}
		seen = append(seen, m)
	}
}

// TestRoomsOverTCP: A (telnet) and B (websocket) join games, C (telnet)
// stays in the lobby, J (websocket, fastws.v1.json) joins, talks and
// leaves with the JSON forms. games lines reach A, B and J with their
// room, never C; C cannot talk into games; /who games, /rooms and the
// leave notices; and once its last member goes, the room is gone.
func TestRoomsOverTCP(t *testing.T) {
	s := startRoomServer(t, 0, 0)
	addrs := s.Addrs()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	a := dial(t, addrs["t"])
	b := wsDial(t, addrs["w"])
	c := dial(t, addrs["t"])
	j := dialCoder(t, ctx, addrs["w"], true)
	a.settle()
	b.settle()
	c.settle()
	j.settle()
	A, B, J := a.uid, b.uid, j.uid

	a.send("/join games\n")
	a.expect("* you are now in #games (1 member)")
	b.wsLine("/JOIN #Games")
	b.expectText("* you are now in #games (2 members)")
	a.expect(fmt.Sprintf("* uid %d joined #games", B))

	a.send("hello games\n")
	want := fmt.Sprintf("[#games] uid %d: hello games", A)
	a.expect(want)
	b.expectText(want)

	c.send("#games sneaky\n")
	c.expect("! you are not in #games")
	c.send("#nowhere x\n")
	c.expect("! no room #nowhere")

	j.send(`{"join":"games"}`)
	j.expect(`{"type":"entered","room":"games","members":3,"time":"T"}`)
	a.expect(fmt.Sprintf("* uid %d joined #games", J))
	b.expectText(fmt.Sprintf("* uid %d joined #games", J))

	j.send(`{"room":"#games","text":"from json"}`)
	want = fmt.Sprintf("[#games] uid %d: from json", J)
	a.expect(want)
	b.expectText(want)
	j.expect(fmt.Sprintf(`{"type":"message","room":"games","from":%d,"nick":"","to":0,"toNick":"","private":false,"text":"from json","time":"T"}`, J))
	j.send(`{"room":"nowhere","text":"x"}`)
	j.expect(`{"type":"error","text":"no room #nowhere","time":"T"}`)
	j.send(`{"room":"bad!","text":"x"}`)
	j.expect(`{"type":"error","text":"bad room name","time":"T"}`)
	j.send(`{"join":"games","text":"x"}`)
	j.expect(`{"type":"error","text":"invalid JSON: \"join\" and \"leave\" go alone","time":"T"}`)

	// From games, "#lobby text" talks to the lobby without switching.
	b.wsLine("#lobby everyone")
	want = fmt.Sprintf("uid %d: everyone", B)
	a.expect(want)
	b.expectText(want)
	c.expect(want)
	j.expect(fmt.Sprintf(`{"type":"message","room":"lobby","from":%d,"nick":"","to":0,"toNick":"","private":false,"text":"everyone","time":"T"}`, B))

	a.send("/who games\n")
	for _, l := range []string{fmt.Sprintf("* uid %d (telnet)", A), fmt.Sprintf("* uid %d (websocket)", B),
		fmt.Sprintf("* uid %d (websocket)", J), "* 3 in #games"} {
		a.expect(l)
	}
	j.send(`{"text":"/who"}`)
	j.expect(fmt.Sprintf(`{"type":"who","room":"games","members":[{"uid":%d,"nick":"","protocol":"telnet"},`+
		`{"uid":%d,"nick":"","protocol":"websocket"},{"uid":%d,"nick":"","protocol":"websocket"}],"online":3,"page":1,"more":0,"time":"T"}`, A, B, J))
	c.send("/rooms\n")
	c.expect("* #lobby (4 members)")
	c.expect("* #games (3 members)")
	c.expect("* 2 rooms")
	j.send(`{"text":"/rooms"}`)
	j.expect(`{"type":"rooms","rooms":[{"room":"lobby","members":4},{"room":"games","members":3}],"count":2,"time":"T"}`)

	b.wsLine("/leave")
	want = fmt.Sprintf("* uid %d left #games", B)
	b.expectText(want)
	a.expect(want)
	j.expect(fmt.Sprintf(`{"type":"leave","room":"games","uid":%d,"nick":"","time":"T"}`, B))
	b.wsLine("back")
	want = fmt.Sprintf("uid %d: back", B)
	b.expectText(want)
	a.expect(want)
	c.expect(want)
	j.expect(fmt.Sprintf(`{"type":"message","room":"lobby","from":%d,"nick":"","to":0,"toNick":"","private":false,"text":"back","time":"T"}`, B))

	j.send(`{"leave":"games"}`)
	j.expect(fmt.Sprintf(`{"type":"leave","room":"games","uid":%d,"nick":"","time":"T"}`, J))
	a.expect(fmt.Sprintf("* uid %d left #games", J))
	j.send(`{"leave":"games"}`)
	j.expect(`{"type":"error","text":"you are not in #games","time":"T"}`)

	// C never saw a games line.
	for _, l := range c.settle() {
		if strings.Contains(l, "games") {
			t.Errorf("uid %d, in the lobby only, got %q", c.uid, l)
		}
	}

	// A, the last member of games, goes: the room goes with it.
	if got := s.hub.Stats().Rooms; got != 1 {
		t.Errorf("rooms with A in games: got %d, want 1", got)
	}
	a.conn.Close()
	waitFor(t, "games to go with its last member", func() bool { return s.hub.Stats().Rooms == 0 })
}

// TestRoomLimitsOverTCP: maxRoomsPerMember and maxRooms refuse a /join
// with their lines; an empty room no longer counts.
func TestRoomLimitsOverTCP(t *testing.T) {
	s := startRoomServer(t, 2, 1)
	addrs := s.Addrs()
	a := dial(t, addrs["t"])
	b := wsDial(t, addrs["w"])
	a.settle()
	b.settle()
	a.send("/join a\n")
	a.expect("* you are now in #a (1 member)")
	a.send("/join b\n")
	a.expect("! too many rooms (maxRoomsPerMember 1)")
	a.send("/join lobby\n")
	a.expect("* you are now in #lobby (2 members)")
	b.wsLine("/join b")
	b.expectText("* you are now in #b (1 member)")
	c := dial(t, addrs["t"])
	c.settle()
	c.send("/join z\n")
	c.expect("! too many rooms (maxRooms 2)")
	b.wsLine("/leave b")
	b.expectText(fmt.Sprintf("* uid %d left #b", b.uid))
	c.send("/join z\n")
	c.expect("* you are now in #z (1 member)")
}

// TestRoomChurnOverTCP: 120 clients on two instances and four reactors
// join one of 6 rooms each, each sends one line to its room, and each
// gets every line of its room exactly once and none of another; then
// they leave or just close, and no room or member is left.
func TestRoomChurnOverTCP(t *testing.T) {
	const clients, rooms = 120, 6
	s := startRoomServer(t, 0, 0)
	addrs := s.Addrs()
	type peer struct {
		send   func(string)
		next   func() string
		uid    uint64
		closer func()
	}
	peers := make([]peer, clients)
	for i := range peers {
		if i%2 == 0 {
			c := dial(t, addrs["t"])
			peers[i] = peer{func(l string) { c.send(l + "\n") }, c.line, c.uid, func() { c.conn.Close() }}
		} else {
			c := wsDial(t, addrs["w"])
			peers[i] = peer{c.wsLine, func() string { _, p := c.readFrame(); return string(p) }, c.uid, func() { c.conn.Close() }}
		}
	}
	for i, p := range peers {
		p.send("/join room" + strconv.Itoa(i%rooms))
	}
	// Each waits for its own join; once all have joined, each talks. The
	// lines in between are join notices.
	var joined, wg sync.WaitGroup
	joined.Add(clients)
	errs := make(chan error, clients)
	for i, p := range peers {
		wg.Go(func() {
			room := "#room" + strconv.Itoa(i%rooms)
			for !strings.HasPrefix(p.next(), "* you are now in "+room) {
			}
			joined.Done()
			joined.Wait()
			p.send(room + " line from " + strconv.FormatUint(p.uid, 10))
			got := map[string]int{}
			for len(got) < clients/rooms {
				l := p.next()
				if !strings.HasPrefix(l, "[#") {
					continue
				}
				if !strings.HasPrefix(l, "["+room+"] ") {
					errs <- fmt.Errorf("uid %d in %s got %q", p.uid, room, l)
					return
				}
				if got[l]++; got[l] > 1 {
					errs <- fmt.Errorf("uid %d got %q twice", p.uid, l)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if got := s.hub.Stats().Rooms; got != rooms {
		t.Errorf("rooms: got %d, want %d", got, rooms)
	}
	for i, p := range peers {
		if i%3 == 0 {
			p.send("/leave")
		}
		p.closer()
	}
	waitFor(t, "every room and member to go", func() bool {
		st := s.hub.Stats()
		return st.Rooms == 0 && st.Members == 0
	})
}

// TestStatsListRooms checks what status shows of rooms: the count of rooms
// beside the lobby, and each connection's rooms in join order.
func TestStatsListRooms(t *testing.T) {
	s := startServer(t, telnetInstance("t", 2))
	a := dial(t, s.Addrs()["t"])
	b := dial(t, s.Addrs()["t"])
	a.send("/join games\n")
	a.skipUntil("* you are now in #games (1 member)")
	if got := s.Stats().Room.Rooms; got != 1 {
		t.Errorf("got %d rooms, want 1", got)
	}
	conns, err := s.Connections(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	want := map[uint64]string{a.uid: "lobby,games", b.uid: "lobby"}
	for _, c := range conns {
		if got := strings.Join(c.Rooms, ","); got != want[c.UID] {
			t.Errorf("uid %d: rooms %q, want %q", c.UID, got, want[c.UID])
		}
	}
	a.send("/leave games\n")
	a.skipUntil(fmt.Sprintf("* uid %d left #games", a.uid))
	waitFor(t, "the empty room to go", func() bool { return s.Stats().Room.Rooms == 0 })
}
