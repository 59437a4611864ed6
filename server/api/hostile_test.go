package api

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/fastws/fastws/chat"
)

const hostileKey = "0123456789abcdef"

// serve runs s's handler on one request and returns its code and JSON.
func serve(t *testing.T, s *Server, method, path, key, body string) (int, map[string]any) {
	t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	w := httptest.NewRecorder()
	s.Handler().ServeHTTP(w, req)
	var m map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &m); err != nil {
		t.Fatalf("%s %s: answer %q is not JSON: %v", method, path, w.Body.String(), err)
	}
	return w.Code, m
}

func testServer(key string) *Server {
	s := &Server{hub: chat.NewHub(chat.Options{}), maxText: func() int { return 64 }, requests: map[RequestKey]uint64{}}
	s.SetKey(key)
	return s
}

// TestHostileFields: every field a request names is checked before the
// room sees it, and the answer names the field.
func TestHostileFields(t *testing.T) {
	s := testServer(hostileKey)
	cases := []struct{ path, body, field string }{
		{"/api/v1/send", `{"text": "a", "uid": 0}`, "uid"},
		{"/api/v1/send", `{"text": "a", "uid": -7}`, "uid"},
		{"/api/v1/send", `{"text": "a", "uid": 18446744073709551616}`, "uid"},
		{"/api/v1/send", `{"text": "a", "uid": 1.5}`, "uid"},
		{"/api/v1/send", `{"text": "a", "user": ""}`, "user"},
		{"/api/v1/send", `{"text": "a", "user": "` + strings.Repeat("u", 65) + `"}`, "user"},
		{"/api/v1/send", `{"text": "a", "user": "u\u001b[2J"}`, "user"},
		{"/api/v1/send", `{"text": "a", "user": " u1"}`, "user"},
		{"/api/v1/send", `{"text": "a", "room": "#"}`, "room"},
		{"/api/v1/send", `{"text": "a", "room": "a b"}`, "room"},
		{"/api/v1/send", `{"text": "` + strings.Repeat("x", 65) + `"}`, "text"},
		{"/api/v1/send", `{"text": " \t "}`, "text"},
		{"/api/v1/join", `{"room": "games", "user": "u\n1"}`, "user"},
		{"/api/v1/disconnect", `{"user": "u\u202e1"}`, "user"},
		{"/api/v1/disconnect", `{"uid": 1, "reason": "` + strings.Repeat("r", maxReason+1) + `"}`, "reason"},
	}
	for _, c := range cases {
		code, m := serve(t, s, "POST", c.path, hostileKey, c.body)
		if code != 400 || m["field"] != c.field {
			t.Errorf("POST %s %.80s: got %d %v, want 400 naming %q", c.path, c.body, code, m, c.field)
		}
	}
	if code, m := serve(t, s, "POST", "/api/v1/send", hostileKey, `{"text": "a", "user": "`+strings.Repeat("é", 32)+`"}`); code != 200 {
		t.Errorf("a user id of 64 bytes: got %d %v, want 200", code, m)
	}
}

// TestEmptyKeyNeverAuthorizes: a server without a key (config refuses
// that, but a bug there must not open the API) refuses an empty bearer.
func TestEmptyKeyNeverAuthorizes(t *testing.T) {
	s := testServer("")
	for _, h := range []string{"Bearer ", "Bearer    ", "Bearer"} {
		req := httptest.NewRequest("GET", "/api/v1/online", nil)
		req.Header.Set("Authorization", h)
		w := httptest.NewRecorder()
		s.Handler().ServeHTTP(w, req)
		if w.Code != 401 {
			t.Errorf("Authorization %q with no key set: got %d, want 401", h, w.Code)
		}
	}
}

// TestBodyLimitOnTheWire: a body over MaxBody is refused with 413 however
// it comes: chunked, or with a Content-Length that says more than is
// sent (the answer does not wait for the rest).
func TestBodyLimitOnTheWire(t *testing.T) {
	s, err := Listen("127.0.0.1:0", Options{Hub: chat.NewHub(chat.Options{}), Key: hostileKey})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = s.Close(ctx)
	})
	body := `{"text": "` + strings.Repeat("x", 2<<20) + `"}`
	t.Run("chunked", func(t *testing.T) {
		var b bytes.Buffer
		fmt.Fprintf(&b, "POST /api/v1/send HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nTransfer-Encoding: chunked\r\n\r\n", hostileKey)
		for rest := body; rest != ""; {
			n := min(len(rest), 64<<10)
			fmt.Fprintf(&b, "%x\r\n%s\r\n", n, rest[:n])
			rest = rest[n:]
		}
		b.WriteString("0\r\n\r\n")
		if code := rawCall(t, s.Addr(), b.Bytes()); code != 413 {
			t.Errorf("2 MiB chunked: got %d, want 413", code)
		}
	})
	t.Run("Content-Length says more than sent", func(t *testing.T) {
		req := fmt.Sprintf("POST /api/v1/send HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Length: %d\r\n\r\n", hostileKey, 3<<20)
		if code := rawCall(t, s.Addr(), append([]byte(req), body[:MaxBody+10]...)); code != 413 {
			t.Errorf("Content-Length 3 MiB, 1 MiB sent: got %d, want 413", code)
		}
	})
	t.Run("without the key", func(t *testing.T) {
		req := fmt.Sprintf("POST /api/v1/send HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n", len(body))
		if code := rawCall(t, s.Addr(), append([]byte(req), body...)); code != 401 {
			t.Errorf("2 MiB without a key: got %d, want 401", code)
		}
	})
}

// rawCall writes req on a new connection (without waiting for the write
// to finish: the server may answer before it reads everything) and
// returns the status code of the answer.
func rawCall(t *testing.T, addr string, req []byte) int {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second)) // under readTimeout: the answer must not wait for it
	go func() { _, _ = c.Write(req) }()
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("reading the answer: %v", err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("content type %q, want JSON", ct)
	}
	return resp.StatusCode
}

// nopSession is a member's session that drops what it is sent.
type nopSession struct{}

func (nopSession) Send(*chat.Event)       {}
func (nopSession) Reply(*chat.Event)      {}
func (nopSession) Close(chat.CloseReason) {}

// TestMembersBounded: /members of a huge room lists maxMembers, in uid
// order, and says the list was cut; a smaller room says it was not.
func TestMembersBounded(t *testing.T) {
	s := testServer(hostileKey)
	for range maxMembers + 5 {
		s.hub.Join(nopSession{}, chat.JoinOptions{Protocol: "telnet"})
	}
	req := httptest.NewRequest("GET", "/api/v1/members?room=lobby", nil)
	req.Header.Set("Authorization", "Bearer "+hostileKey)
	w := httptest.NewRecorder()
	s.Handler().ServeHTTP(w, req)
	var got struct {
		Members   []memberJSON `json:"members"`
		Truncated bool         `json:"truncated"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil || w.Code != 200 {
		t.Fatalf("got %d %.200s: %v", w.Code, w.Body.String(), err)
	}
	if len(got.Members) != maxMembers || !got.Truncated {
		t.Fatalf("a lobby of %d: got %d members, truncated %v; want %d, true", maxMembers+5, len(got.Members), got.Truncated, maxMembers)
	}
	for i := 1; i < len(got.Members); i++ {
		if got.Members[i].UID <= got.Members[i-1].UID {
			t.Fatalf("members not in uid order at %d: %d after %d", i, got.Members[i].UID, got.Members[i-1].UID)
		}
	}
	small := testServer(hostileKey)
	small.hub.Join(nopSession{}, chat.JoinOptions{Protocol: "telnet"})
	if code, m := serve(t, small, "GET", "/api/v1/members?room=lobby", hostileKey, ""); code != 200 || m["truncated"] != false || len(m["members"].([]any)) != 1 {
		t.Errorf("a lobby of 1: got %d %v, want one member, truncated false", code, m)
	}
}

// TestBearerScheme: the scheme is case-insensitive; anything else about
// the header must be right.
func TestBearerScheme(t *testing.T) {
	s := testServer(hostileKey)
	for h, code := range map[string]int{
		"Bearer " + hostileKey:              200,
		"bearer " + hostileKey:              200,
		"BEARER  " + hostileKey + " ":       200,
		"Basic " + hostileKey:               401,
		"Bearer" + hostileKey:               401,
		"Bearer " + hostileKey + "x":        401,
		"Bearer " + hostileKey[:15]:         401,
		hostileKey:                          401,
		"Token " + hostileKey:               401,
		"Bearer " + strings.Repeat("a", 16): 401,
	} {
		req := httptest.NewRequest("GET", "/api/v1/online", nil)
		req.Header.Set("Authorization", h)
		w := httptest.NewRecorder()
		s.Handler().ServeHTTP(w, req)
		if w.Code != code {
			t.Errorf("Authorization %q: got %d, want %d", h, w.Code, code)
		}
	}
}
