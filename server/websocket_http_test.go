package server

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/fastws/fastws/server/web"
)

func TestWSPage(t *testing.T) {
	s := startServer(t, wsInstance("ws", 1))
	base := "http://" + s.Addrs()["ws"]
	tests := []struct {
		name, method, path string
		status             int
		contentType        string
		body               string // "" = not checked
		header, value      string // one more header to check
	}{
		{"index", "GET", "/", 200, "text/html; charset=utf-8", string(web.Index), "Cache-Control", "no-cache"},
		{"index_with_query", "GET", "/?room=1", 200, "text/html; charset=utf-8", string(web.Index), "", ""},
		{"not_found", "GET", "/x", 404, "text/plain; charset=utf-8", "not found\n", "", ""},
		{"not_found_deep", "GET", "/static/app.js", 404, "text/plain; charset=utf-8", "", "", ""},
		{"post", "POST", "/", 405, "text/plain; charset=utf-8", "", "Allow", "GET"},
		{"put", "PUT", "/x", 405, "text/plain; charset=utf-8", "", "Allow", "GET"},
	}
	client := &http.Client{Timeout: testTimeout}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(tc.method, base+tc.path, strings.NewReader(""))
			if err != nil {
				t.Fatal(err)
			}
			resp, err := client.Do(req)
			if err != nil {
				t.Fatalf("%s %s: %v", tc.method, tc.path, err)
			}
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatalf("read body: %v", err)
			}
			if resp.StatusCode != tc.status {
				t.Errorf("got status %d, want %d", resp.StatusCode, tc.status)
			}
			if got := resp.Header.Get("Content-Type"); got != tc.contentType {
				t.Errorf("got Content-Type %q, want %q", got, tc.contentType)
			}
			if tc.body != "" && string(body) != tc.body {
				t.Errorf("got body %q, want %q", clip(body), clip([]byte(tc.body)))
			}
			if !resp.Close {
				t.Errorf("got a response without Connection: close")
			}
			if tc.header != "" && resp.Header.Get(tc.header) != tc.value {
				t.Errorf("got %s %q, want %q", tc.header, resp.Header.Get(tc.header), tc.value)
			}
		})
	}
	if st := s.Stats().Room; st.JoinedTotal != 0 {
		t.Errorf("page requests joined %d members, want 0", st.JoinedTotal)
	}
}

func TestWSHandshakeRefusals(t *testing.T) {
	ic := wsInstance("ws", 1)
	ic.AllowedOrigins = []string{"https://chat.example.com", "http://localhost:19911"}
	s := startServer(t, ic)
	addr := s.Addrs()["ws"]
	tests := []struct {
		name   string
		req    string
		status int
		kind   string // the protocol error counted, "" for none
		header string // a header the response must have, "Name: value"
	}{
		{"bad_origin", wsUpgradeRequest("Origin: https://evil.example\r\n"), 403, wsKindOrigin, "Content-Length: 18"},
		{"null_origin", wsUpgradeRequest("Origin: null\r\n"), 403, wsKindOrigin, ""},
		{"origin_with_other_port", wsUpgradeRequest("Origin: http://localhost:8080\r\n"), 403, wsKindOrigin, ""},
		{"malformed_request_line", "HELLO\r\n\r\n", 400, wsKindHandshake, ""},
		{"http2_preface", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 400, wsKindHandshake, ""},
		{"header_without_colon", "GET / HTTP/1.1\r\nHost: x\r\nnonsense\r\n\r\n", 400, wsKindHandshake, ""},
		{"old_version", strings.Replace(wsUpgradeRequest(""), "Version: 13", "Version: 8", 1), 426, wsKindHandshake, "Sec-Websocket-Version: 13"},
		{"no_key", strings.Replace(wsUpgradeRequest(""), "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n", "", 1), 400, wsKindHandshake, ""},
		{"no_connection_upgrade", strings.Replace(wsUpgradeRequest(""), "Connection: Upgrade", "Connection: keep-alive", 1), 400, wsKindHandshake, ""},
		{"post_upgrade", strings.Replace(wsUpgradeRequest(""), "GET", "POST", 1), 405, wsKindHandshake, ""},
		{"http10_upgrade", strings.Replace(wsUpgradeRequest(""), "HTTP/1.1", "HTTP/1.0", 1), 505, wsKindHandshake, ""},
		{"head_too_large", "GET / HTTP/1.1\r\nCookie: " + strings.Repeat("c", 9000), 431, wsKindHandshake, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := protoErrors(s, tc.kind)
			c := wsDialRaw(t, addr, tc.req)
			resp := c.response()
			if resp.StatusCode != tc.status {
				t.Errorf("got status %d, want %d", resp.StatusCode, tc.status)
			}
			if tc.header != "" {
				name, value, _ := strings.Cut(tc.header, ": ")
				if got := resp.Header.Get(name); got != value {
					t.Errorf("got %s %q, want %q", name, got, value)
				}
			}
			if _, err := io.ReadAll(resp.Body); err != nil {
				t.Fatalf("read body: %v", err)
			}
			c.expectEOF()
			waitFor(t, "the error count", func() bool { return protoErrors(s, tc.kind) == before+1 })
		})
	}
	if st := s.Stats().Room; st.JoinedTotal != 0 {
		t.Errorf("refused upgrades joined %d members, want 0", st.JoinedTotal)
	}

	t.Run("allowed_origins", func(t *testing.T) {
		for _, origin := range []string{"Origin: https://chat.example.com\r\n", "Origin: HTTP://LOCALHOST:19911\r\n", ""} {
			c := wsDialRaw(t, addr, wsUpgradeRequest(origin))
			if resp := c.response(); resp.StatusCode != http.StatusSwitchingProtocols {
				t.Errorf("%q: got status %d, want 101", origin, resp.StatusCode)
			}
		}
	})
}

// protoErrors returns how many protocol errors of kind s has counted.
func protoErrors(s *Server, kind string) uint64 {
	var n uint64
	for _, st := range s.Stats().Instances {
		n += st.ProtocolErrors[kind]
	}
	return n
}

// waitFor polls cond until it holds or the test times out.
func waitFor(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			tb.Fatalf("timed out waiting for %s", what)
		case <-tick.C:
		}
	}
}

func TestWSSubprotocolSelection(t *testing.T) {
	s := startServer(t, wsInstance("ws", 1))
	addr := s.Addrs()["ws"]
	tests := []struct {
		name, offer, want string
	}{
		{"json_only", "fastws.v1.json", "fastws.v1.json"},
		{"json_among_others", "chat, fastws.v1.json", "fastws.v1.json"},
		{"unknown", "chat, superchat", ""},
		{"none", "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			extra := ""
			if tc.offer != "" {
				extra = "Sec-WebSocket-Protocol: " + tc.offer + "\r\n"
			}
			c := wsDialRaw(t, addr, wsUpgradeRequest(extra))
			resp := c.response()
			if resp.StatusCode != http.StatusSwitchingProtocols {
				t.Fatalf("got status %d, want 101", resp.StatusCode)
			}
			if got := resp.Header.Get("Sec-WebSocket-Accept"); got != "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" {
				t.Errorf("got Sec-WebSocket-Accept %q, want RFC 6455's example", got)
			}
			if got := resp.Header.Get("Sec-WebSocket-Protocol"); got != tc.want {
				t.Errorf("got subprotocol %q, want %q", got, tc.want)
			}
			_, p := c.readFrame()
			if isJSON := strings.HasPrefix(string(p), `{"type":"welcome"`); isJSON != (tc.want != "") {
				t.Errorf("got welcome %q, want JSON %v", p, tc.want != "")
			}
		})
	}
}

func TestWSPipelinedFrames(t *testing.T) {
	// A client may send frames right behind its request, in one packet.
	s := startServer(t, wsInstance("ws", 1))
	c := wsDialRaw(t, s.Addrs()["ws"], wsUpgradeRequest("")+string(text("early bird")))
	if resp := c.response(); resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("got status %d, want 101", resp.StatusCode)
	}
	_, p := c.readFrame()
	m := welcomeRE.FindStringSubmatch(string(p))
	if m == nil {
		t.Fatalf("got %q, want the welcome", p)
	}
	c.expectText("uid " + m[1] + ": early bird")
}
