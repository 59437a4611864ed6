package server

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/fastws/fastws/chat"
)

// coderClient is a github.com/coder/websocket client: an independent
// implementation talking to ours.
type coderClient struct {
	tb   testing.TB
	ctx  context.Context
	conn *websocket.Conn
	uid  uint64
	json bool
}

// dialCoder upgrades to addr, offering fastws.v1.json if json, and reads
// the welcome.
func dialCoder(tb testing.TB, ctx context.Context, addr string, jsonMode bool) *coderClient {
	tb.Helper()
	opts := &websocket.DialOptions{}
	if jsonMode {
		opts.Subprotocols = []string{"chat.example", wsProtocolJSON}
	}
	conn, _, err := websocket.Dial(ctx, "ws://"+addr+"/", opts)
	if err != nil {
		tb.Fatalf("dial ws://%s/: %v", addr, err)
	}
	tb.Cleanup(func() { conn.CloseNow() })
	c := &coderClient{tb: tb, ctx: ctx, conn: conn, json: jsonMode}
	want := ""
	if jsonMode {
		want = wsProtocolJSON
	}
	if got := conn.Subprotocol(); got != want {
		tb.Fatalf("got subprotocol %q, want %q", got, want)
	}
	first := c.read()
	if jsonMode {
		var w wsJSONWelcome
		if err := json.Unmarshal([]byte(first), &w); err != nil || w.Type != "welcome" || w.UID == 0 {
			tb.Fatalf("first message %s, want the JSON welcome", first)
		}
		c.uid = w.UID
	} else {
		m := welcomeRE.FindStringSubmatch(first)
		if m == nil {
			tb.Fatalf("first message %q, want the welcome", first)
		}
		c.uid, _ = strconv.ParseUint(m[1], 10, 64)
	}
	return c
}

// read reads one text message; in JSON mode its "time" is checked and
// replaced by "T" so that the rest can be compared exactly.
func (c *coderClient) read() string {
	c.tb.Helper()
	typ, b, err := c.conn.Read(c.ctx)
	if err != nil {
		c.tb.Fatalf("uid %d: read: %v", c.uid, err)
	}
	if typ != websocket.MessageText {
		c.tb.Fatalf("uid %d: got a %v message, want text", c.uid, typ)
	}
	if !c.json {
		return string(b)
	}
	return timeRE.ReplaceAllStringFunc(string(b), func(m string) string {
		ts := timeRE.FindStringSubmatch(m)[1]
		if _, err := time.Parse(time.RFC3339Nano, ts); err != nil || !strings.HasSuffix(ts, "Z") {
			c.tb.Errorf("uid %d: time %q is not RFC 3339 in UTC: %v", c.uid, ts, err)
		}
		return `"time":"T"`
	})
}

var timeRE = regexp.MustCompile(`"time":"([^"]*)"`)

func (c *coderClient) expect(want string) {
	c.tb.Helper()
	if got := c.read(); got != want {
		c.tb.Fatalf("uid %d: got %s, want %s", c.uid, got, want)
	}
}

// expectPast reads past leave notices until a message, which must be want:
// during a stop, members on other reactors may leave before this one's
// reactor sends the shutdown notice.
func (c *coderClient) expectPast(want string) {
	c.tb.Helper()
	for {
		got := c.read()
		if leaveRE.MatchString(got) {
			continue
		}
		if got != want {
			c.tb.Fatalf("uid %d: got %s, want %s", c.uid, got, want)
		}
		return
	}
}

var leaveRE = regexp.MustCompile(`^(\* .* left|\{"type":"leave",.*)$`)

func (c *coderClient) send(s string) {
	c.tb.Helper()
	if err := c.conn.Write(c.ctx, websocket.MessageText, []byte(s)); err != nil {
		c.tb.Fatalf("uid %d: write: %v", c.uid, err)
	}
}

// expectClose reads until the close and checks its code.
func (c *coderClient) expectClose(code websocket.StatusCode) {
	c.tb.Helper()
	_, b, err := c.conn.Read(c.ctx)
	if got := websocket.CloseStatus(err); got != code {
		c.tb.Fatalf("uid %d: got message %q, error %v (close status %d), want close %d", c.uid, b, err, got, code)
	}
}

func TestWSInterop(t *testing.T) {
	s := startServer(t, wsInstance("ws", 2), telnetInstance("tel", 1))
	addrs := s.Addrs()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()

	js := dialCoder(t, ctx, addrs["ws"], true)
	tx := dialCoder(t, ctx, addrs["ws"], false)
	js.expect(fmt.Sprintf(`{"type":"join","room":"lobby","uid":%d,"nick":"","time":"T"}`, tx.uid))
	tel := dial(t, addrs["tel"])
	js.expect(fmt.Sprintf(`{"type":"join","room":"lobby","uid":%d,"nick":"","time":"T"}`, tel.uid))
	tx.expect(fmt.Sprintf("* uid %d joined", tel.uid))
	J, T, L := js.uid, tx.uid, tel.uid
	// step runs a subtest whose clients fail the subtest, not the test.
	step := func(name string, f func(t *testing.T, js, tx *coderClient, tel *client)) {
		t.Run(name, func(t *testing.T) {
			jsT, txT, telT := *js, *tx, *tel
			jsT.tb, txT.tb, telT.tb = t, t, t
			f(t, &jsT, &txT, &telT)
		})
	}

	step("broadcast_from_telnet", func(t *testing.T, js, tx *coderClient, tel *client) {
		tel.send("你好 <b>&amp;</b>\r\n")
		tel.expect(fmt.Sprintf("uid %d: 你好 <b>&amp;</b>", L))
		tx.expect(fmt.Sprintf("uid %d: 你好 <b>&amp;</b>", L))
		js.expect(fmt.Sprintf(`{"type":"message","room":"lobby","from":%d,"nick":"","to":0,"toNick":"","private":false,"text":"你好 <b>&amp;</b>","time":"T"}`, L))
	})
	step("broadcast_from_text", func(t *testing.T, js, tx *coderClient, tel *client) {
		tx.send("from text\n")
		tel.expect(fmt.Sprintf("uid %d: from text", T))
		tx.expect(fmt.Sprintf("uid %d: from text", T))
		js.expect(fmt.Sprintf(`{"type":"message","room":"lobby","from":%d,"nick":"","to":0,"toNick":"","private":false,"text":"from text","time":"T"}`, T))
	})
	step("broadcast_from_json", func(t *testing.T, js, tx *coderClient, tel *client) {
		js.send(`{"text":"from \"json\""}`)
		tel.expect(fmt.Sprintf(`uid %d: from "json"`, J))
		tx.expect(fmt.Sprintf(`uid %d: from "json"`, J))
		js.expect(fmt.Sprintf(`{"type":"message","room":"lobby","from":%d,"nick":"","to":0,"toNick":"","private":false,"text":"from \"json\"","time":"T"}`, J))
	})
	step("nick_from_json", func(t *testing.T, js, tx *coderClient, tel *client) {
		js.send(`{"text":"/nick alice"}`)
		js.expect(fmt.Sprintf(`{"type":"nick","uid":%d,"nick":"alice","oldNick":"","time":"T"}`, J))
		tx.expect(fmt.Sprintf("* uid %d is now alice", J))
		tel.expect(fmt.Sprintf("* uid %d is now alice", J))
	})
	step("private_json_to_telnet", func(t *testing.T, js, tx *coderClient, tel *client) {
		js.send(fmt.Sprintf(`{"to":%d,"text":"psst"}`, L))
		tel.expect(fmt.Sprintf("alice(%d) (private): psst", J))
		js.expect(fmt.Sprintf(`{"type":"message","from":%d,"nick":"alice","to":%d,"toNick":"","private":true,"text":"psst","time":"T"}`, J, L))
	})
	step("private_text_to_json", func(t *testing.T, js, tx *coderClient, tel *client) {
		tx.send(fmt.Sprintf("$%d:back", J))
		js.expect(fmt.Sprintf(`{"type":"message","from":%d,"nick":"","to":%d,"toNick":"alice","private":true,"text":"back","time":"T"}`, T, J))
		tx.expect(fmt.Sprintf("(to alice(%d)): back", J))
	})
	step("nobody_else_got_the_privates", func(t *testing.T, js, tx *coderClient, tel *client) {
		tel.send("next\n")
		tel.expect(fmt.Sprintf("uid %d: next", L))
		tx.expect(fmt.Sprintf("uid %d: next", L))
		js.expect(fmt.Sprintf(`{"type":"message","room":"lobby","from":%d,"nick":"","to":0,"toNick":"","private":false,"text":"next","time":"T"}`, L))
	})
	step("json_errors", func(t *testing.T, js, tx *coderClient, tel *client) {
		js.send(`{"to":999,"text":"anyone?"}`)
		js.expect(`{"type":"error","text":"uid 999 is not online","time":"T"}`)
		js.send(`{nope`)
		if got := js.read(); !strings.HasPrefix(got, `{"type":"error","text":"invalid JSON: `) {
			t.Fatalf("got %s, want an invalid JSON error", got)
		}
		js.send(`{"to":3}`)
		js.expect(`{"type":"error","text":"invalid JSON: want {\"text\": \"...\"} or {\"to\": uid, \"text\": \"...\"}","time":"T"}`)
	})
	step("who", func(t *testing.T, js, tx *coderClient, tel *client) {
		tx.send("/who")
		who := &chat.Event{Kind: chat.KindWho, Online: 3, Members: []chat.MemberInfo{
			{UID: J, Nick: "alice", Protocol: "websocket"}, {UID: T, Protocol: "websocket"}, {UID: L, Protocol: "telnet"}}}
		for _, l := range who.Lines() {
			tx.expect(l)
		}
		js.send(`{"text":"/who"}`)
		js.expect(fmt.Sprintf(`{"type":"who","room":"lobby","members":[{"uid":%d,"nick":"alice","protocol":"websocket"},`+
			`{"uid":%d,"nick":"","protocol":"websocket"},{"uid":%d,"nick":"","protocol":"telnet"}],"online":3,"page":1,"more":0,"time":"T"}`, J, T, L))
	})
	step("help", func(t *testing.T, js, tx *coderClient, tel *client) {
		js.send(`{"text":"/help"}`)
		got := js.read()
		if !strings.HasPrefix(got, `{"type":"info","lines":["* commands:",`) || !strings.HasSuffix(got, `],"time":"T"}`) {
			t.Fatalf("got %s, want the help as an info object", got)
		}
	})
	step("graceful_stop", func(t *testing.T, js, tx *coderClient, tel *client) {
		done := make(chan error, 1)
		go func() { done <- s.Stop(ctx) }()
		tx.expectPast("* server is shutting down")
		tx.expectClose(websocket.StatusGoingAway)
		js.expectPast(`{"type":"shutdown","text":"server is shutting down","time":"T"}`)
		js.expectClose(websocket.StatusGoingAway)
		tel.skipUntil("* server is shutting down")
		tel.expectEOF()
		if err := <-done; err != nil {
			t.Fatalf("stop: %v", err)
		}
	})
}
