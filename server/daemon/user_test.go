package daemon

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/fastws/fastws/server/auth"
)

// TestUserDevices: one user on a telnet phone and a websocket laptop
// holds its name on both: the second connection does not take it from
// the first, /who lists both uids with it, and private messages to and
// from either show it.
func TestUserDevices(t *testing.T) {
	d, _ := apiDaemon(t, "", "")
	phone := dialTelnet(t, d.Addrs()["Telnet"])
	phone.send("/auth " + token(t, "u1", "alice"))
	phone.expectNext("* authenticated as alice (user u1)")
	phone.expectNext(fmt.Sprintf("* uid %d is now alice", phone.uid))

	laptop := dialWS(t, d.Addrs()["WS"], "?token="+token(t, "u1", "alice"))
	lid := uint64(laptop.expect(map[string]any{"type": "welcome"})["uid"].(float64))
	laptop.expect(map[string]any{"type": "auth", "text": "authenticated as alice (user u1)"})
	laptop.expect(map[string]any{"type": "nick", "uid": lid, "nick": "alice"})
	// The phone hears the laptop become alice too, and nothing taken.
	for {
		l := phone.line()
		if strings.Contains(l, "taken") {
			t.Fatalf("phone got %q: its own user's laptop took its nick", l)
		}
		if l == fmt.Sprintf("* uid %d is now alice", lid) {
			break
		}
	}

	other := dialTelnet(t, d.Addrs()["Telnet"])
	other.send("/who")
	var who []string
	for {
		l := other.line()
		who = append(who, l)
		if strings.HasSuffix(l, " online") {
			break
		}
	}
	for _, w := range []string{fmt.Sprintf("* uid %d alice (telnet)", phone.uid), fmt.Sprintf("* uid %d alice (websocket)", lid)} {
		if !strings.Contains(strings.Join(who, "\n"), w) {
			t.Errorf("/who: got %q, want a line %q", who, w)
		}
	}
	other.send("/nick alice")
	other.expectNext("! nick alice is taken")

	other.send(fmt.Sprintf("$%d:to the phone", phone.uid))
	other.expectNext(fmt.Sprintf("(to alice(%d)): to the phone", phone.uid))
	phone.expect(fmt.Sprintf("uid %d (private): to the phone", other.uid))
	other.send(fmt.Sprintf("$%d:to the laptop", lid))
	other.expectNext(fmt.Sprintf("(to alice(%d)): to the laptop", lid))
	laptop.expect(map[string]any{"type": "message", "private": true, "from": other.uid, "text": "to the laptop"})
	phone.send(fmt.Sprintf("$%d:from the phone", other.uid))
	other.expectNext(fmt.Sprintf("alice(%d) (private): from the phone", phone.uid))
	laptop.write(fmt.Sprintf(`{"to": %d, "text": "from the laptop"}`, other.uid))
	other.expectNext(fmt.Sprintf("alice(%d) (private): from the laptop", lid))
}

// TestMaxConnectionsPerUser: past [api] maxConnectionsPerUser an /auth,
// ?token= or {"auth"} is refused, the connection stays anonymous and
// usable, and a reload raises the limit.
func TestMaxConnectionsPerUser(t *testing.T) {
	d, cfg := apiDaemon(t, "", "maxConnectionsPerUser = 2")
	const refused = "too many connections for user u123 (maxConnectionsPerUser 2)"
	a := dialTelnet(t, d.Addrs()["Telnet"])
	a.authAs(token(t, "u123", ""), "u123")
	b := dialWS(t, d.Addrs()["WS"], "?token="+token(t, "u123", ""))
	b.expect(map[string]any{"type": "auth"})

	c := dialTelnet(t, d.Addrs()["Telnet"])
	c.send("/auth " + token(t, "u123", ""))
	c.expectNext("! " + refused)
	c.sync() // still usable
	ws := dialWS(t, d.Addrs()["WS"], "?token="+token(t, "u123", ""))
	ws.expect(map[string]any{"type": "error", "text": refused})
	ws.write(`{"auth": "` + token(t, "u123", "") + `"}`)
	ws.expect(map[string]any{"type": "error", "text": refused})
	ws.write(`{"text": "anonymous and usable"}`)
	ws.expect(map[string]any{"type": "message", "text": "anonymous and usable", "nick": ""})
	want(t, d.APIAddr(), "GET", "/api/v1/online", "", 200, map[string]any{"users": 1})
	body := scrape(t, "http://"+d.MetricsAddr()+"/metrics")
	if line := `fastws_auth_failures_total{reason="too many connections"} 3`; !strings.Contains(body, line+"\n") {
		t.Errorf("/metrics has no line %q", line)
	}

	data, err := os.ReadFile(cfg.Path)
	if err != nil {
		t.Fatal(err)
	}
	text := strings.Replace(string(data), "maxConnectionsPerUser = 2", "maxConnectionsPerUser = 3", 1)
	if err := os.WriteFile(cfg.Path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := d.Reload(); err != nil {
		t.Fatalf("reload: %v", err)
	}
	c.send("/auth " + token(t, "u123", ""))
	c.expect(fmt.Sprintf("* authenticated as uid %d (user u123)", c.uid))
}

// TestTokenExpired: a member whose token expires is closed (reason
// token_expired) once exp plus the leeway has passed, over telnet and
// websocket; one that authenticated again with a fresh token stays.
func TestTokenExpired(t *testing.T) {
	d, _ := apiDaemon(t, "", "")
	// exp 28 s ago: still good (30 s of leeway), gone in about 2 s.
	soon := func(user string) string {
		tok, err := auth.Sign([]byte(testSecret), user, "", nil, time.Second, time.Now().Add(-auth.Leeway+time.Second))
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	tn := dialTelnet(t, d.Addrs()["Telnet"])
	tn.authAs(soon("u1"), "u1")
	renewed := dialTelnet(t, d.Addrs()["Telnet"])
	renewed.authAs(soon("u2"), "u2")
	renewed.authAs(token(t, "u2", ""), "u2")
	ws := dialWS(t, d.Addrs()["WS"], "?token="+soon("u3"))
	ws.expect(map[string]any{"type": "auth"})

	tn.expect("! token expired, closing")
	tn.expectClosed()
	ws.expect(map[string]any{"type": "error", "text": "token expired, closing"})
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	for {
		if _, _, err := ws.conn.Read(ctx); err != nil {
			var ce websocket.CloseError
			if !errors.As(err, &ce) || ce.Code != websocket.StatusPolicyViolation || ce.Reason != "token expired" {
				t.Errorf("websocket closed with %v, want 1008 token expired", err)
			}
			break
		}
	}
	waitFor(t, func() bool { return closedBy(d, "token_expired") == 2 })
	renewed.sync() // a fresh token replaced the expiring one
	if n := closedBy(d, "token_expired"); n != 2 {
		t.Errorf("token_expired closes: %d, want 2", n)
	}
}
