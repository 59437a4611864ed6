package daemon

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/fastws/fastws/server/auth"
	"github.com/fastws/fastws/server/config"
	"github.com/golang-jwt/jwt/v5"
)

const (
	testAPIKey = "test-api-key-0123456789"
	testSecret = "test-token-secret-0123456789abcdef"
)

// apiDaemon starts a daemon with a telnet and a websocket instance and
// [api] on loopback ports; apiExtra goes into [api].
func apiDaemon(t testing.TB, fastwsExtra, apiExtra string) (*testDaemon, *config.Config) {
	t.Helper()
	text := fmt.Sprintf(`[fastws]
runDir = ./run
metricsListen = 127.0.0.1:%d
messagesPerSecond = 0
maxPackageSize = 1K
maxSendBuffer = 64K
%s
[api]
listen = 127.0.0.1:%d
key = %s
tokenSecret = %s
%s
[instance.t]
instanceName = Telnet
protocol = telnet
host = 127.0.0.1
port = %d
childProcessCount = 2

[instance.w]
instanceName = WS
protocol = websocket
host = 127.0.0.1
port = %d
childProcessCount = 2
`, freePort(t), fastwsExtra, freePort(t), testAPIKey, testSecret, apiExtra, freePort(t), freePort(t))
	path := filepath.Join(t.TempDir(), "config.ini")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return startDaemon(t, cfg, Options{}), cfg
}

// token signs a user token with the test secret.
func token(t testing.TB, user, name string, rooms ...string) string {
	t.Helper()
	tok, err := auth.Sign([]byte(testSecret), user, name, rooms, time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// tclient is a telnet client of the daemon.
type tclient struct {
	t    testing.TB
	conn net.Conn
	r    *bufio.Reader
	uid  uint64
}

func dialTelnet(t testing.TB, addr string) *tclient {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, testTimeout)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	c := &tclient{t: t, conn: conn, r: bufio.NewReader(conn)}
	m := welcome.FindStringSubmatch(c.line())
	if m == nil {
		t.Fatal("no welcome")
	}
	c.uid, _ = strconv.ParseUint(m[1], 10, 64)
	return c
}

func (c *tclient) send(s string) {
	c.t.Helper()
	if _, err := c.conn.Write([]byte(s + "\r\n")); err != nil {
		c.t.Fatal(err)
	}
}

func (c *tclient) line() string {
	c.t.Helper()
	_ = c.conn.SetReadDeadline(time.Now().Add(testTimeout))
	s, err := c.r.ReadString('\n')
	if err != nil {
		c.t.Fatalf("uid %d: read: %v (got %q)", c.uid, err, s)
	}
	return strings.TrimSuffix(ungreet(s), "\r\n")
}

// expect reads lines until want, failing on the deadline.
func (c *tclient) expect(want string) {
	c.t.Helper()
	for {
		if got := c.line(); got == want {
			return
		}
	}
}

// expectPrefix reads lines until one starts with prefix.
func (c *tclient) expectPrefix(prefix string) {
	c.t.Helper()
	for !strings.HasPrefix(c.line(), prefix) {
	}
}

// expectNext reads one line and wants it to be want.
func (c *tclient) expectNext(want string) {
	c.t.Helper()
	if got := c.line(); got != want {
		c.t.Fatalf("uid %d: got %q, want %q", c.uid, got, want)
	}
}

// authAs sends "/auth tok" and expects to be told it is now user's.
func (c *tclient) authAs(tok, user string) {
	c.t.Helper()
	c.send("/auth " + tok)
	c.expectNext(fmt.Sprintf("* authenticated as uid %d (user %s)", c.uid, user))
}

// expectClosed reads until the server closes the connection.
func (c *tclient) expectClosed() {
	c.t.Helper()
	_ = c.conn.SetReadDeadline(time.Now().Add(testTimeout))
	if _, err := io.ReadAll(c.r); err != nil {
		c.t.Fatalf("uid %d: waiting for close: %v", c.uid, err)
	}
}

// sync waits until c's earlier lines are handled (a private message to
// itself), so that the connection is known to be usable.
func (c *tclient) sync() {
	c.t.Helper()
	tag := "sync-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	c.send("$" + strconv.FormatUint(c.uid, 10) + ":" + tag)
	for !strings.HasSuffix(c.line(), " (private): "+tag) {
	}
}

// wsclient is a fastws.v1.json websocket client.
type wsclient struct {
	t    testing.TB
	conn *websocket.Conn
}

func dialWS(t testing.TB, addr, query string) *wsclient {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	conn, _, err := websocket.Dial(ctx, "ws://"+addr+"/"+query, &websocket.DialOptions{Subprotocols: []string{"fastws.v1.json"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.CloseNow() })
	return &wsclient{t: t, conn: conn}
}

func (c *wsclient) next() map[string]any {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	_, b, err := c.conn.Read(ctx)
	if err != nil {
		c.t.Fatalf("websocket read: %v", err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		c.t.Fatal(err)
	}
	return m
}

// expect reads objects until one has every key/value of want.
func (c *wsclient) expect(want map[string]any) map[string]any {
	c.t.Helper()
	for {
		m := c.next()
		ok := true
		for k, v := range want {
			if fmt.Sprint(m[k]) != fmt.Sprint(v) {
				ok = false
			}
		}
		if ok {
			return m
		}
	}
}

func (c *wsclient) write(v string) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	if err := c.conn.Write(ctx, websocket.MessageText, []byte(v)); err != nil {
		c.t.Fatal(err)
	}
}

// call makes one API request and returns its status and decoded body.
func call(t testing.TB, addr, method, path, key, body string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, "http://"+addr+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var m map[string]any
	b, _ := io.ReadAll(res.Body)
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("%s %s: %d, body %q is not JSON: %v", method, path, res.StatusCode, b, err)
	}
	return res.StatusCode, m
}

// want checks one API call's status and the listed fields of its body.
func want(t testing.TB, addr, method, path, body string, code int, fields map[string]any) map[string]any {
	t.Helper()
	got, m := call(t, addr, method, path, testAPIKey, body)
	if got != code {
		t.Fatalf("%s %s %s: got %d %v, want %d", method, path, body, got, m, code)
	}
	for k, v := range fields {
		if fmt.Sprint(m[k]) != fmt.Sprint(v) {
			t.Fatalf("%s %s %s: got %s = %v (%v), want %v", method, path, body, k, m[k], m, v)
		}
	}
	return m
}

func TestAPIEndpoints(t *testing.T) {
	d, _ := apiDaemon(t, "", "")
	api := d.APIAddr()
	alice := dialTelnet(t, d.Addrs()["Telnet"])
	alice.send("/auth " + token(t, "u123", "alice"))
	alice.expectNext("* authenticated as alice (user u123)")
	phone := dialWS(t, d.Addrs()["WS"], "?token="+token(t, "u123", ""))
	phone.expect(map[string]any{"type": "auth"})
	anon := dialTelnet(t, d.Addrs()["Telnet"])
	anon.sync()

	t.Log("key") // steps share the clients: no subtests
	func() {
		for _, key := range []string{"", "wrong", testAPIKey + "x", strings.ToUpper(testAPIKey)} {
			code, m := call(t, api, "GET", "/api/v1/online", key, "")
			if code != 401 || m["error"] == nil {
				t.Errorf("key %q: got %d %v, want 401 with an error", key, code, m)
			}
		}
		req, _ := http.NewRequest("GET", "http://"+api+"/api/v1/online", nil)
		req.Header.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte("x:"+testAPIKey)))
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != 401 {
			t.Errorf("basic auth: got %d, want 401", res.StatusCode)
		}
	}()

	t.Log("send to a user on two connections") // steps share the clients: no subtests
	func() {
		want(t, api, "POST", "/api/v1/send", `{"text": "for you", "user": "u123"}`, 200, map[string]any{"delivered": 2})
		alice.expect("server: for you")
		phone.expect(map[string]any{"type": "message", "from": 0, "nick": "server", "text": "for you"})
	}()
	t.Log("send to everyone") // steps share the clients: no subtests
	func() {
		want(t, api, "POST", "/api/v1/send", `{"text": "to all"}`, 200, map[string]any{"delivered": 3})
		alice.expectNext("server: to all")
		anon.expectNext("server: to all")
		phone.expect(map[string]any{"type": "message", "text": "to all"})
	}()
	t.Log("send to a uid") // steps share the clients: no subtests
	func() {
		want(t, api, "POST", "/api/v1/send", fmt.Sprintf(`{"text": "just you", "uid": %d}`, anon.uid), 200, map[string]any{"delivered": 1})
		anon.expectNext("server: just you")
		want(t, api, "POST", "/api/v1/send", `{"text": "nobody", "uid": 999999}`, 200, map[string]any{"delivered": 0})
	}()
	t.Log("join, send to a room, members, leave") // steps share the clients: no subtests
	func() {
		want(t, api, "POST", "/api/v1/join", `{"room": "games", "user": "u123"}`, 200, map[string]any{"members": 2})
		alice.expectPrefix("* you are now in #games (") // 1 or 2 members: phone may join first
		phone.expect(map[string]any{"type": "entered", "room": "games"})
		want(t, api, "POST", "/api/v1/send", `{"text": "gg", "room": "games"}`, 200, map[string]any{"delivered": 2})
		alice.expect("[#games] server: gg")
		phone.expect(map[string]any{"type": "message", "room": "games", "nick": "server", "text": "gg"})
		m := want(t, api, "GET", "/api/v1/members?room=games", "", 200, map[string]any{"room": "games"})
		ms, _ := m["members"].([]any)
		if len(ms) != 2 {
			t.Fatalf("members: got %v, want 2", m)
		}
		protocols := map[string]bool{}
		for _, x := range ms {
			p := x.(map[string]any)
			for _, k := range []string{"uid", "nick", "user", "protocol", "instance", "node", "since"} {
				if _, ok := p[k]; !ok {
					t.Errorf("member %v has no %q", p, k)
				}
			}
			if p["user"] != "u123" {
				t.Errorf("member %v: want user u123", p)
			}
			since, err := time.Parse(time.RFC3339, fmt.Sprint(p["since"]))
			if err != nil || time.Since(since) > time.Minute || time.Since(since) < -time.Minute {
				t.Errorf("member %v: since %v is not about now", p, p["since"])
			}
			protocols[fmt.Sprint(p["protocol"])+"/"+fmt.Sprint(p["instance"])] = true
		}
		if !protocols["telnet/Telnet"] || !protocols["websocket/WS"] {
			t.Errorf("members: got protocols/instances %v, want telnet/Telnet and websocket/WS", protocols)
		}
		want(t, api, "GET", "/api/v1/online", "", 200, map[string]any{"members": 3, "users": 1, "rooms": 2})
		m = want(t, api, "GET", "/api/v1/rooms", "", 200, nil)
		if fmt.Sprint(m["rooms"]) != "[map[members:3 room:lobby] map[members:2 room:games]]" {
			t.Errorf("rooms: got %v", m["rooms"])
		}
		want(t, api, "POST", "/api/v1/leave", fmt.Sprintf(`{"room": "games", "uid": %d}`, alice.uid), 200, map[string]any{"members": 1})
		alice.expect(fmt.Sprintf("* alice(%d) left #games", alice.uid))
		want(t, api, "GET", "/api/v1/members?room=nosuch", "", 404, map[string]any{"field": "room"})
		want(t, api, "GET", "/api/v1/members", "", 400, map[string]any{"field": "room"})
	}()
	t.Log("bad requests") // steps share the clients: no subtests
	func() {
		cases := []struct{ path, body, field string }{
			{"/api/v1/send", `{"text": `, ""},
			{"/api/v1/send", `not json`, ""},
			{"/api/v1/send", ``, ""},
			{"/api/v1/send", `{"text": "a"} {"text": "b"}`, ""},
			{"/api/v1/send", `{"text": "a", "colour": "red"}`, "colour"},
			{"/api/v1/send", `{"text": ""}`, "text"},
			{"/api/v1/send", `{"text": "   "}`, "text"},
			{"/api/v1/send", `{"room": "games"}`, "text"},
			{"/api/v1/send", `{"text": 5}`, "text"},
			{"/api/v1/send", `{"text": "` + strings.Repeat("x", 1025) + `"}`, "text"},
			{"/api/v1/send", `{"text": "a", "uid": 1, "user": "u"}`, "room"},
			{"/api/v1/send", `{"text": "a", "room": "bad room!"}`, "room"},
			{"/api/v1/send", `{"text": "a", "uid": -1}`, "uid"},
			{"/api/v1/join", `{"uid": 1}`, "room"},
			{"/api/v1/join", `{"room": "games"}`, "uid"},
			{"/api/v1/leave", `{"room": "games", "user": ""}`, "user"},
			{"/api/v1/disconnect", `{"reason": "x"}`, "uid"},
			{"/api/v1/disconnect", `{"uid": 1, "reason": "` + strings.Repeat("r", 300) + `"}`, "reason"},
		}
		for _, c := range cases {
			code, m := call(t, api, "POST", c.path, testAPIKey, c.body)
			if code != 400 || m["error"] == nil || c.field != "" && m["field"] != c.field {
				t.Errorf("POST %s %.60q: got %d %v, want 400 naming field %q", c.path, c.body, code, m, c.field)
			}
		}
		code, m := call(t, api, "POST", "/api/v1/send", testAPIKey, `{"text": "`+strings.Repeat("x", 2<<20)+`"}`)
		if code != 413 {
			t.Errorf("2 MiB body: got %d %v, want 413", code, m)
		}
		code, _ = call(t, api, "GET", "/api/v1/nothing", testAPIKey, "")
		if code != 404 {
			t.Errorf("unknown endpoint: got %d, want 404", code)
		}
		if code, m := call(t, api, "GET", "/api/v1/send", testAPIKey, ""); code != 405 || m["error"] == nil {
			t.Errorf("GET /api/v1/send: got %d %v, want a JSON 405", code, m)
		}
		anon.sync() // nothing reached the members
	}()
	t.Log("disconnect a user") // steps share the clients: no subtests
	func() {
		want(t, api, "POST", "/api/v1/disconnect", `{"user": "u123", "reason": "account closed"}`, 200, map[string]any{"disconnected": 2})
		alice.expect("server: disconnected: account closed")
		alice.expectClosed()
		phone.expect(map[string]any{"type": "message", "text": "disconnected: account closed"})
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		defer cancel()
		for {
			if _, _, err := phone.conn.Read(ctx); err != nil {
				if websocket.CloseStatus(err) != websocket.StatusNormalClosure {
					t.Fatalf("websocket: got %v, want a normal closure", err)
				}
				break
			}
		}
		waitFor(t, func() bool { return d.Status().Daemon.Members == 1 })
		want(t, api, "GET", "/api/v1/online", "", 200, map[string]any{"members": 1, "users": 0})
		// Counted as the connections close, a moment after they leave.
		waitFor(t, func() bool { return closedBy(d, "disconnected") == 2 })
	}()
	t.Log("metrics") // steps share the clients: no subtests
	func() {
		body := scrape(t, "http://"+d.MetricsAddr()+"/metrics")
		for _, line := range []string{
			`fastws_api_requests_total{code="401",endpoint="online"} 5`,
			`fastws_api_requests_total{code="413",endpoint="send"} 1`,
			`fastws_api_requests_total{code="200",endpoint="send"} 5`,
			`fastws_auth_successes_total 2`,
			`fastws_auth_failures_total{reason="expired"} 0`,
			`fastws_connections_closed_total{instance="Telnet",reason="auth_timeout"} 0`,
		} {
			if !strings.Contains(body, line+"\n") {
				t.Errorf("/metrics has no line %q", line)
			}
		}
	}()
}

// closedBy returns the connections closed for reason, all instances.
func closedBy(d *testDaemon, reason string) uint64 {
	var n uint64
	for _, i := range d.Status().Instances {
		n += i.ClosedByReason[reason]
	}
	return n
}

// waitFor polls cond until it holds or the test times out.
func waitFor(t testing.TB, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(testTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in time")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// badTokens are tokens refused for each reason.
func badTokens(t testing.TB) map[string]string {
	exp := time.Now().Add(time.Hour).Unix()
	sign := func(m jwt.SigningMethod, key string, c jwt.MapClaims) string {
		s, err := jwt.NewWithClaims(m, c).SignedString([]byte(key))
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	none := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"JWT"}`)) + "." +
		base64.RawURLEncoding.EncodeToString([]byte(`{"sub":"u1","exp":`+strconv.FormatInt(exp, 10)+`}`)) + "."
	return map[string]string{
		"expired":       sign(jwt.SigningMethodHS256, testSecret, jwt.MapClaims{"sub": "u1", "exp": time.Now().Add(-time.Hour).Unix()}),
		"bad signature": sign(jwt.SigningMethodHS256, "another-secret-of-some-length", jwt.MapClaims{"sub": "u1", "exp": exp}),
		"bad algorithm": none,
		"missing exp":   sign(jwt.SigningMethodHS256, testSecret, jwt.MapClaims{"sub": "u1"}),
		"malformed":     "garbage.garbage.garbage",
	}
}

func TestTokens(t *testing.T) {
	d, _ := apiDaemon(t, "", "")
	bad := badTokens(t)
	bad["bad algorithm (HS512)"] = func() string {
		s, _ := jwt.NewWithClaims(jwt.SigningMethodHS512, jwt.MapClaims{"sub": "u1", "exp": time.Now().Add(time.Hour).Unix()}).SignedString([]byte(testSecret))
		return s
	}()
	reason := func(k string) string { return strings.TrimSuffix(k, " (HS512)") }

	t.Run("telnet", func(t *testing.T) {
		c := dialTelnet(t, d.Addrs()["Telnet"])
		for k, tok := range bad {
			c.send("/auth " + tok)
			c.expectNext("! bad token: " + reason(k))
			c.sync() // still usable
		}
		c.send("/auth")
		c.expectNext("! usage: /auth TOKEN")
		c.send("/auth " + token(t, "u7", "bob", "games"))
		c.expectNext("* authenticated as bob (user u7)")
		c.expect("* you are now in #games (1 member)")
	})
	t.Run("websocket query", func(t *testing.T) {
		for k, tok := range bad {
			c := dialWS(t, d.Addrs()["WS"], "?token="+tok)
			c.expect(map[string]any{"type": "error", "text": "bad token: " + reason(k)})
			c.write(`{"text": "still here"}`)
			c.expect(map[string]any{"type": "message", "text": "still here"})
		}
	})
	t.Run("websocket frame", func(t *testing.T) {
		c := dialWS(t, d.Addrs()["WS"], "")
		for k, tok := range bad {
			c.write(`{"auth": "` + tok + `"}`)
			c.expect(map[string]any{"type": "error", "text": "bad token: " + reason(k)})
		}
		c.write(`{"auth": "x", "text": "y"}`)
		c.expect(map[string]any{"type": "error"})
		c.write(`{"auth": "` + token(t, "u8", "carol") + `"}`)
		c.expect(map[string]any{"type": "auth", "text": "authenticated as carol (user u8)"})
		c.write(`{"text": "hi"}`)
		c.expect(map[string]any{"type": "message", "nick": "carol", "text": "hi"})
	})
	t.Run("name takes the nick over", func(t *testing.T) {
		squatter := dialTelnet(t, d.Addrs()["Telnet"])
		squatter.send("/nick dave")
		squatter.expect(fmt.Sprintf("* uid %d is now dave", squatter.uid))
		owner := dialTelnet(t, d.Addrs()["Telnet"])
		owner.send("/auth " + token(t, "u9", "dave"))
		owner.expect("* authenticated as dave (user u9)")
		squatter.expect("! your nick dave was taken by its user")
		squatter.send("/nick dave")
		squatter.expect("! nick dave is taken")
	})
	t.Run("metrics", func(t *testing.T) {
		body := scrape(t, "http://"+d.MetricsAddr()+"/metrics")
		for _, line := range []string{
			`fastws_auth_failures_total{reason="expired"} 3`,
			`fastws_auth_failures_total{reason="bad algorithm"} 6`,
		} {
			if !strings.Contains(body, line+"\n") {
				t.Errorf("/metrics has no line %q", line)
			}
		}
	})
}

func TestRequireAuth(t *testing.T) {
	d, _ := apiDaemon(t, "", "requireAuth = true\nauthTimeout = 1s")
	member := dialTelnet(t, d.Addrs()["Telnet"])
	member.authAs(token(t, "u1", ""), "u1")
	anon := dialTelnet(t, d.Addrs()["Telnet"])
	anon.send("hello")
	anon.expectNext("! authenticate first: /auth TOKEN")
	anon.send("/join games")
	anon.expectNext("! authenticate first: /auth TOKEN")
	anon.send("/help")
	anon.expectNext("* commands:")
	ws := dialWS(t, d.Addrs()["WS"], "")
	ws.write(`{"join": "games"}`)
	ws.expect(map[string]any{"type": "error", "text": "authenticate first: /auth TOKEN"})
	ws.write(`{"text": "hi"}`)
	ws.expect(map[string]any{"type": "error", "text": "authenticate first: /auth TOKEN"})

	anon.expect("! not authenticated in time, closing")
	anon.expectClosed()
	waitFor(t, func() bool { return closedBy(d, "auth_timeout") == 2 })
	member.sync() // authenticated: stays
}

// TestRequireAuthHidesTheRooms: with requireAuth, a connection that has
// not authenticated reads nothing said in the rooms (a member's line, the
// server's to everyone, a nick change), only what is for it alone, until
// it authenticates.
func TestRequireAuthHidesTheRooms(t *testing.T) {
	d, _ := apiDaemon(t, "", "requireAuth = true\nauthTimeout = 1h")
	member := dialTelnet(t, d.Addrs()["Telnet"])
	member.authAs(token(t, "u1", ""), "u1")
	anon := dialTelnet(t, d.Addrs()["Telnet"])
	ws := dialWS(t, d.Addrs()["WS"], "")
	ws.expect(map[string]any{"type": "welcome"})

	member.send("secret words")
	want(t, d.APIAddr(), "POST", "/api/v1/send", `{"text": "server news"}`, 200, nil)
	member.send("/nick bob")
	member.expect(fmt.Sprintf("* uid %d is now bob", member.uid))
	// The first line each reads is the one for it alone.
	member.send(fmt.Sprintf("$%d:just for you", anon.uid))
	anon.expectNext(fmt.Sprintf("bob(%d) (private): just for you", member.uid))
	ws.write(`{"auth": "` + token(t, "u2", "") + `"}`)
	if m := ws.next(); m["type"] != "auth" {
		t.Fatalf("websocket: got %v before its auth answer, want nothing", m)
	}

	anon.authAs(token(t, "u3", ""), "u3")
	member.send("now you see it")
	anon.expect(fmt.Sprintf("bob(%d): now you see it", member.uid))
	ws.expect(map[string]any{"type": "message", "text": "now you see it"})
}

// TestRequireAuthAnnouncesOnlyMembers: with requireAuth, a connection
// that comes and goes without authenticating is announced to no one; one
// that authenticates is announced then.
func TestRequireAuthAnnouncesOnlyMembers(t *testing.T) {
	d, _ := apiDaemon(t, "", "requireAuth = true\nauthTimeout = 1h")
	member := dialTelnet(t, d.Addrs()["Telnet"])
	member.authAs(token(t, "u1", ""), "u1")
	anon := dialTelnet(t, d.Addrs()["Telnet"])
	anon.send("/quit")
	anon.expectClosed()
	later := dialTelnet(t, d.Addrs()["Telnet"])
	later.authAs(token(t, "u2", ""), "u2")
	for {
		l := member.line()
		if strings.Contains(l, fmt.Sprintf("uid %d ", anon.uid)) {
			t.Errorf("uid %d read %q about a connection that never authenticated", member.uid, l)
		}
		if l == fmt.Sprintf("* uid %d joined", later.uid) {
			break
		}
	}
}

func TestAPIConfig(t *testing.T) {
	t.Run("short key", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "config.ini")
		secret := "short-key-123"
		text := "[api]\nlisten = 127.0.0.1:0\nkey = " + secret + "\n[instance.t]\ninstanceName = T\nprotocol = telnet\nport = 1\n"
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := config.Load(path)
		if err == nil || !strings.Contains(err.Error(), "[api] key: too short") || strings.Contains(err.Error(), secret) {
			t.Fatalf("got %v, want a short-key error without the key", err)
		}
		t.Setenv(config.EnvAPIKey, "a-long-enough-key-from-env")
		if _, err := config.Load(path); err != nil {
			t.Fatalf("with %s: %v", config.EnvAPIKey, err)
		}
	})
	t.Run("port in use", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		cfg := loadConfig(t, "", 0)
		cfg.API = config.API{Listen: ln.Addr().String(), Key: testAPIKey}
		_, err = Start(t.Context(), cfg, Options{})
		if err == nil || !strings.Contains(err.Error(), "[api] listen") || !regexp.MustCompile(`address already in use`).MatchString(err.Error()) {
			t.Fatalf("got %v, want an [api] listen bind error", err)
		}
	})
}

// TestAPIReload: a reload applies requireAuth (anonymous members are
// then refused) and refuses a new listen or maxConnections, keeping the
// running config.
func TestAPIReload(t *testing.T) {
	d, cfg := apiDaemon(t, "", "")
	anon := dialTelnet(t, d.Addrs()["Telnet"])
	anon.sync()
	data, err := os.ReadFile(cfg.Path)
	if err != nil {
		t.Fatal(err)
	}
	text := strings.Replace(string(data), "[api]\n", "[api]\nrequireAuth = true\nauthTimeout = 1h\n", 1)
	if err := os.WriteFile(cfg.Path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := d.Reload(); err != nil {
		t.Fatalf("reload: %v", err)
	}
	anon.send("hello")
	anon.expectNext("! authenticate first: /auth TOKEN")
	anon.authAs(token(t, "u1", ""), "u1")

	moved := strings.Replace(text, "listen = "+cfg.API.Listen, "listen = 127.0.0.1:1", 1)
	if err := os.WriteFile(cfg.Path, []byte(moved), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := d.Reload(); err == nil || !strings.Contains(err.Error(), "[api] listen changed") {
		t.Fatalf("reload with a new listen: got %v, want it refused", err)
	}
	narrowed := strings.Replace(text, "[api]\n", "[api]\nmaxConnections = 8\n", 1)
	if err := os.WriteFile(cfg.Path, []byte(narrowed), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := d.Reload(); err == nil || !strings.Contains(err.Error(), "[api] maxConnections changed (1024 -> 8); that needs 'fastws restart'") {
		t.Fatalf("reload with a new maxConnections: got %v, want it refused", err)
	}
	want(t, d.APIAddr(), "GET", "/api/v1/online", "", 200, map[string]any{"users": 1})
}
