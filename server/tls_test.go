package server

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/fastws/fastws/server/tlstest"
)

// TestTLSTelnet chats between a telnet client over TLS and a plain one:
// one room, one write path.
func TestTLSTelnet(t *testing.T) {
	ca := newTestCA(t)
	s := startServer(t, withTLS(t, telnetInstance("tls", 2), ca), telnetInstance("plain", 1))
	addrs := s.Addrs()
	sec := dialTLS(t, addrs["tls"], ca.clientTLS()).welcomed()
	if v := sec.conn.(*tls.Conn).ConnectionState().Version; v != tls.VersionTLS13 {
		t.Errorf("negotiated %s, want TLS 1.3", tls.VersionName(v))
	}
	plain := dial(t, addrs["plain"])
	sec.expect(fmt.Sprintf("* uid %d joined", plain.uid))
	sec.send("over TLS\r\n")
	plain.expect(fmt.Sprintf("uid %d: over TLS", sec.uid))
	plain.send("in the clear\r\n")
	sec.skipUntil(fmt.Sprintf("uid %d: in the clear", plain.uid))
	// Lines split across records and records across reads.
	for _, part := range []string{"spl", "it li", "ne\r\nsecond\r", "\n"} {
		sec.send(part)
	}
	plain.skipUntil(fmt.Sprintf("uid %d: split line", sec.uid))
	plain.expect(fmt.Sprintf("uid %d: second", sec.uid))
	// A long line: several records each way.
	long := strings.Repeat("x", 40<<10)
	sec.send(long + "\r\n")
	plain.skipUntil(fmt.Sprintf("uid %d: %s", sec.uid, long))
	sec.skipUntil(fmt.Sprintf("uid %d: %s", sec.uid, long))
}

// TestTLSPolicy checks what the server's TLS allows: TLS 1.2 and up,
// ALPN http/1.1, and that a plain-text client is closed.
func TestTLSPolicy(t *testing.T) {
	ca := newTestCA(t)
	s := startServer(t, withTLS(t, telnetInstance("tls", 1), ca))
	addr := s.Addrs()["tls"]

	cfg := ca.clientTLS()
	cfg.NextProtos = []string{"h2", "http/1.1"}
	c := dialTLS(t, addr, cfg)
	if p := c.conn.(*tls.Conn).ConnectionState().NegotiatedProtocol; p != "http/1.1" {
		t.Errorf("ALPN: got %q, want http/1.1", p)
	}
	c.welcomed()

	old := ca.clientTLS()
	old.MinVersion, old.MaxVersion = tls.VersionTLS10, tls.VersionTLS11
	raw, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	tc := tls.Client(raw, old)
	_ = tc.SetDeadline(time.Now().Add(testTimeout))
	if err := tc.Handshake(); err == nil {
		t.Errorf("a TLS 1.1 client completed a handshake, want it refused")
	}

	tls12 := ca.clientTLS()
	tls12.MaxVersion = tls.VersionTLS12
	dialTLS(t, addr, tls12).welcomed()

	// Plain text to a TLS instance is not a ClientHello: closed at once.
	p := dialRaw(t, addr)
	p.send("hello\r\n")
	_ = p.conn.SetReadDeadline(time.Now().Add(testTimeout))
	b, err := io.ReadAll(p.conn)
	if err != nil || strings.Contains(string(b), "Welcome") {
		t.Errorf("plain client: got %q, %v, want an alert and the close", b, err)
	}
	waitFor(t, "the tls error counted", func() bool {
		return s.Stats().Instances[0].ProtocolErrors[kindTLS] >= 2 // the TLS 1.1 client and the plain one
	})
}

// TestTLSWebSocket opens the page over https:// and chats over wss://
// with coder/websocket, trusting the test's CA, with a plain telnet user.
func TestTLSWebSocket(t *testing.T) {
	ca := newTestCA(t)
	s := startServer(t, withTLS(t, wsInstance("wss", 2), ca), telnetInstance("tel", 1))
	addrs := s.Addrs()
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: ca.clientTLS()}, Timeout: testTimeout}
	defer hc.CloseIdleConnections()

	resp, err := hc.Get("https://" + addrs["wss"] + "/")
	if err != nil {
		t.Fatalf("GET the page over https: %v", err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(page), "<html") {
		t.Fatalf("GET https://%s/: %s, %d bytes, want the page", addrs["wss"], resp.Status, len(page))
	}

	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	chatOverWSS(t, ctx, hc, addrs["wss"], addrs["tel"], "directly", "hello wss", "hello telnet")
	// A wss client that does not trust the CA gets no connection.
	if _, _, err := websocket.Dial(ctx, "wss://"+addrs["wss"]+"/", nil); err == nil {
		t.Error("a client without the test CA connected, want a certificate error")
	}
}

// TestTLSRenewOnReload renews the certificate files in place: after
// Reload new clients get the new certificate while a client connected
// before keeps chatting; a bad new pair is refused and the last good one
// stays.
func TestTLSRenewOnReload(t *testing.T) {
	ca := newTestCA(t)
	dir := t.TempDir()
	ic := telnetInstance("tls", 2)
	ic.TLSCert, ic.TLSKey = ca.valid(t, dir, "site", 10)
	s := startServer(t, ic)
	addr := s.Addrs()["tls"]
	serial := func(c *client) int64 {
		return c.conn.(*tls.Conn).ConnectionState().PeerCertificates[0].SerialNumber.Int64()
	}
	before := dialTLS(t, addr, ca.clientTLS()).welcomed()
	if n := serial(before); n != 10 {
		t.Fatalf("serial %d, want 10", n)
	}
	ca.valid(t, dir, "site", 11) // renewed, same paths
	cfg := testConfig(ic)
	if res, err := s.Reload(cfg); err != nil || len(res.Unchanged) != 1 {
		t.Fatalf("reload: %+v, %v; want the instance unchanged and no error", res, err)
	}
	after := dialTLS(t, addr, ca.clientTLS()).welcomed()
	if n := serial(after); n != 11 {
		t.Fatalf("after reload: serial %d, want 11", n)
	}
	before.expect(fmt.Sprintf("* uid %d joined", after.uid))
	before.send("still here\r\n")
	after.expect(fmt.Sprintf("uid %d: still here", before.uid))

	// A key that does not match: refused, 11 stays.
	other := t.TempDir()
	_, wrongKey := ca.valid(t, other, "other", 12)
	ca.valid(t, dir, "site", 13)
	writeFile(t, ic.TLSKey, mustRead(t, wrongKey))
	res, err := s.Reload(cfg)
	if err == nil || len(res.Failed) != 1 || !strings.Contains(err.Error(), "does not match") || !strings.Contains(err.Error(), "keeps serving its previous certificate") {
		t.Fatalf("reload with a mismatched pair: %+v, %v; want it refused", res, err)
	}
	if e := s.Stats().Instances[0].Error; !strings.Contains(e, "does not match") {
		t.Errorf("stats error %q, want the refusal", e)
	}
	if n := serial(dialTLS(t, addr, ca.clientTLS()).welcomed()); n != 11 {
		t.Fatalf("after a refused renewal: serial %d, want 11", n)
	}
	after.send("and now\r\n")
	before.skipUntil(fmt.Sprintf("uid %d: and now", after.uid))
}

// TestTLSHandshakeTimeout: a client that connects and never finishes
// its handshake (here: half a ClientHello) is closed after
// handshakeTimeout; one that floods the handshake is closed at once.
func TestTLSHandshakeTimeout(t *testing.T) {
	t.Parallel()
	ca := newTestCA(t)
	s := startServer(t, withTLS(t, telnetInstance("tls", 1), ca))
	addr := s.Addrs()["tls"]

	// Each handshake under way holds a goroutine: they must all end with
	// their connections.
	before := runtime.NumGoroutine()
	start := time.Now()
	var stalled []*client
	for range 20 {
		stalled = append(stalled, dialRaw(t, addr))
	}
	waitFor(t, "20 handshakes under way", func() bool { return openConns(s) == 20 })
	c := dialRaw(t, addr)
	c.send("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03") // a record header promising 512 bytes, and a few
	_ = c.conn.SetReadDeadline(time.Now().Add(handshakeTimeout + testTimeout))
	if b, err := io.ReadAll(c.conn); err != nil || len(b) != 0 {
		t.Fatalf("stalled handshake: got %q, %v; want the close", b, err)
	}
	if d := time.Since(start); d < handshakeTimeout-time.Second {
		t.Errorf("closed after %v, want handshakeTimeout (%v)", d, handshakeTimeout)
	}
	waitFor(t, "no connection open", func() bool { return openConns(s) == 0 })
	for _, st := range stalled {
		st.expectEOF()
	}
	waitFor(t, "the handshake goroutines gone", func() bool { return runtime.NumGoroutine() <= before+2 })
	// A valid record header for the biggest record, repeated: more than
	// a handshake needs, never a complete message.
	f := dialRaw(t, addr)
	hdr := "\x16\x03\x01\x40\x00\x01\xff\xff\xff"
	go func() {
		for range 16 {
			if _, err := f.conn.Write([]byte(hdr + strings.Repeat("A", 16<<10))); err != nil {
				return
			}
		}
	}()
	_ = f.conn.SetReadDeadline(time.Now().Add(handshakeTimeout / 2))
	if _, err := io.ReadAll(f.conn); err != nil && !isClosedErr(err) {
		t.Fatalf("flooded handshake: %v; want it closed before handshakeTimeout", err)
	}
}

// TestTLSSlowConsumer: a TLS client that never reads is closed as a slow
// consumer once its queued ciphertext passes maxSendBuffer, as a plain
// one is; the readers keep getting everything.
func TestTLSSlowConsumer(t *testing.T) {
	ca := newTestCA(t)
	ic := withTLS(t, telnetInstance("tls", 2), ca)
	ic.Limits.MaxSendBuffer = 64 << 10
	ic.Limits.MessagesPerSecond, ic.Limits.BytesPerSecond = 0, 0
	s := startServer(t, ic)
	addr := s.Addrs()["tls"]
	sender := dialTLS(t, addr, ca.clientTLS()).welcomed()

	raw, err := smallRcvBuf().Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	slow := tls.Client(raw, ca.clientTLS())
	if err := slow.Handshake(); err != nil {
		t.Fatal(err)
	}
	m := joinedRE.FindStringSubmatch(sender.line())
	if m == nil {
		t.Fatal("want the slow client's join notice")
	}
	line := strings.Repeat("z", 16<<10)
	for k := 0; k < 1000 && s.Stats().Instances[0].SlowConsumers == 0; k++ {
		sender.send(fmt.Sprintf("%03d %s\r\n", k, line))
		sender.skipUntil(fmt.Sprintf("uid %d: %03d %s", sender.uid, k, line)) // the sender reads: never slow
	}
	waitFor(t, "the slow TLS client closed as a slow consumer", func() bool {
		st := s.Stats().Instances[0]
		return st.SlowConsumers == 1 && st.Connections == 1
	})
	sender.send("after\r\n")
	sender.skipUntil(fmt.Sprintf("uid %d: after", sender.uid))
}

// TestTLSCommandLineClients speaks to a TLS telnet instance with
// `openssl s_client` and `socat` (scripts/test.sh installs both), as an
// operator would, each chatting with a plain telnet user.
func TestTLSCommandLineClients(t *testing.T) {
	ca := newTestCA(t)
	s := startServer(t, withTLS(t, telnetInstance("tls", 1), ca), telnetInstance("plain", 1))
	addrs := s.Addrs()
	caFile := t.TempDir() + "/ca.pem"
	writeFile(t, caFile, tlstest.PEMCert(ca.cert.Raw))
	tools := []struct {
		name string
		args []string
	}{
		// -quiet implies -ign_eof: s_client is killed at the end.
		{"openssl", []string{"s_client", "-quiet", "-verify_return_error", "-CAfile", caFile, "-connect", addrs["tls"], "-servername", "localhost"}},
		{"socat", []string{"-", "OPENSSL:" + addrs["tls"] + ",cafile=" + caFile + ",commonname=localhost"}},
	}
	for _, tool := range tools {
		t.Run(tool.name, func(t *testing.T) {
			bin, err := exec.LookPath(tool.name)
			if err != nil {
				t.Skip(tool.name + " not installed (scripts/test.sh installs it)")
			}
			plain := dial(t, addrs["plain"])
			ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
			defer cancel()
			cmd := exec.CommandContext(ctx, bin, tool.args...)
			in, _ := cmd.StdinPipe()
			out, _ := cmd.StdoutPipe()
			var stderr strings.Builder
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			defer func() { cancel(); _ = cmd.Wait() }()
			c := &client{tb: t, conn: &pipeConn{r: out, w: in}}
			c.r = newReader(c.conn)
			line, err := c.r.ReadString('\n')
			m := welcomeRE.FindStringSubmatch(ungreet(line))
			if m == nil {
				t.Fatalf("%s: first line %q, %v, want the welcome; stderr %q", tool.name, line, err, stderr.String())
			}
			plain.skipUntil("* uid " + m[1] + " joined")
			if _, err := io.WriteString(in, "from "+tool.name+"\r\n"); err != nil {
				t.Fatal(err)
			}
			plain.expect("uid " + m[1] + ": from " + tool.name)
		})
	}
}

// FuzzTLSPlaintextInput checks the TLS layer's input (Peek, Discard,
// what a decode leaves kept for the next read, the reactor's buffer
// reused in between): a telnet decoder reading plaintext through it
// does exactly what it does reading the same reads from gnet's buffer.
func FuzzTLSPlaintextInput(f *testing.F) {
	f.Add([]byte("hello\r\nworld\r\n"), []byte{3, 1})
	f.Add([]byte("a partial line, then its end\r\n/nick x\r\n"), []byte{7, 7, 7})
	f.Add([]byte("\xff\xfd\x01line\r\n\xff\xf4\xff\xfd\x06"), []byte{1, 2})
	f.Add([]byte(strings.Repeat("long", 100)+"\r\n"), []byte{50, 200})
	f.Fuzz(func(t *testing.T, data, cuts []byte) {
		if len(data) > 4096 {
			return
		}
		var chunks [][]byte
		rest := data
		for _, c := range cuts {
			n := min(int(c), len(rest))
			chunks = append(chunks, rest[:n])
			rest = rest[n:]
		}
		chunks = append(chunks, rest)
		const maxLine = 64
		want := decodeTelnet(t, maxLine, chunks...)

		h := newTelnetHarness(t, maxLine)
		l := &tlsLayer{}
		for _, c := range chunks {
			l.plain, l.off = append(l.resume(h.s.r), c...), 0
			err := h.dec.decode(h.s, l)
			buffered := l.InboundBuffered()
			l.keep(h.s.r)
			h.s.r.tlsBuf = append(h.s.r.tlsBuf, "scribbled over by the next session"...) // the buffer is the reactor's
			if err != nil {
				pe, ok := asProtocolError(err)
				if !ok {
					t.Fatalf("decode returned %v", err)
				}
				got := h.result()
				got.err = pe.Msg
				if d := diffTelnetResult(got, want); len(d) > 0 {
					t.Fatalf("through TLS input: %v", d)
				}
				return
			}
			if len(l.left) != buffered {
				t.Fatalf("kept %d bytes, the decoder left %d", len(l.left), buffered)
			}
		}
		got := h.result()
		got.buffered = len(l.left)
		if d := diffTelnetResult(got, want); len(d) > 0 {
			t.Fatalf("through TLS input: %v", d)
		}
	})
}

// TestTLSConnectionLimits: maxConnectionsPerIP counts TLS connections
// from their first byte, handshakes under way included.
func TestTLSConnectionLimits(t *testing.T) {
	ca := newTestCA(t)
	ic := withTLS(t, telnetInstance("tls", 1), ca)
	ic.Limits.MaxConnectionsPerIP = 2
	s := startServer(t, ic)
	addr := s.Addrs()["tls"]
	dialTLS(t, addr, ca.clientTLS()).welcomed()
	dialRaw(t, addr) // a handshake that never starts holds the second place
	waitFor(t, "two connections open", func() bool { return openConns(s) == 2 })
	raw, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	tc := tls.Client(raw, ca.clientTLS())
	_ = tc.SetDeadline(time.Now().Add(testTimeout))
	if err := tc.Handshake(); err == nil {
		t.Fatal("a third TLS connection from one address completed its handshake, want it refused")
	}
	waitFor(t, "the refusal counted", func() bool { return s.Stats().Instances[0].ProtocolErrors[kindRefused] == 1 })
}
