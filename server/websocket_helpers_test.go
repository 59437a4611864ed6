package server

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fastws/fastws/server/config"
	"github.com/gobwas/ws"
)

// wsInstance returns a websocket instance on 127.0.0.1:0 with no rate
// limit, so tests may send as fast as they like.
func wsInstance(name string, reactors int) config.Instance {
	ic := telnetInstance(name, reactors)
	ic.Protocol = config.ProtocolWebSocket
	ic.Limits.MessagesPerSecond = 0
	ic.Limits.BytesPerSecond = 0
	return ic
}

// wsRaw is a test websocket client over a raw TCP socket: it writes frames
// exactly as told, valid or not.
type wsRaw struct {
	tb   testing.TB
	conn net.Conn
	r    *bufio.Reader
	uid  uint64
	resp *http.Response // the handshake response
}

// wsUpgradeRequest returns an upgrade request with extra header lines.
func wsUpgradeRequest(extra string) string {
	return "GET / HTTP/1.1\r\nHost: test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n" + extra + "\r\n"
}

// wsDialRaw connects to addr and sends req; it does not read the answer.
func wsDialRaw(tb testing.TB, addr, req string) *wsRaw {
	tb.Helper()
	return wsRequest(dialRaw(tb, addr), req)
}

// wsRequest makes c a websocket client and sends req.
func wsRequest(c *client, req string) *wsRaw {
	c.tb.Helper()
	w := &wsRaw{tb: c.tb, conn: c.conn, r: c.r}
	w.write([]byte(req))
	return w
}

// response reads the HTTP response to the request.
func (c *wsRaw) response() *http.Response {
	c.tb.Helper()
	_ = c.conn.SetReadDeadline(time.Now().Add(testTimeout))
	resp, err := http.ReadResponse(c.r, nil)
	if err != nil {
		c.tb.Fatalf("read response: %v", err)
	}
	c.resp = resp
	return resp
}

// wsDial upgrades a connection to addr in text mode and reads the welcome.
func wsDial(tb testing.TB, addr string) *wsRaw {
	tb.Helper()
	return wsDialWith(tb, &net.Dialer{Timeout: testTimeout}, addr)
}

// wsDialWith upgrades a connection made by d to addr in text mode and
// reads the welcome.
func wsDialWith(tb testing.TB, d *net.Dialer, addr string) *wsRaw {
	tb.Helper()
	c := wsRequest(dialWith(tb, d, addr), wsUpgradeRequest(""))
	if resp := c.response(); resp.StatusCode != http.StatusSwitchingProtocols {
		tb.Fatalf("handshake: got status %d, want 101", resp.StatusCode)
	}
	h, p := c.readFrame()
	m := welcomeRE.FindStringSubmatch(string(p))
	if h.OpCode != ws.OpText || m == nil {
		tb.Fatalf("first frame %v %q, want the welcome", h.OpCode, p)
	}
	c.uid, _ = strconv.ParseUint(m[1], 10, 64)
	return c
}

// wsWriteMode is how a test writes its frames to the socket.
type wsWriteMode int

const (
	wsWhole    wsWriteMode = iota // every frame in one write
	wsPieces                      // writes of 7 bytes
	wsBytewise                    // one byte per write
)

func (m wsWriteMode) String() string { return [...]string{"whole", "pieces", "bytewise"}[m] }

// clientFrame returns a masked client frame; rsv is the three RSV bits.
func clientFrame(fin bool, rsv byte, op ws.OpCode, payload []byte) []byte {
	return clientFrameMask(fin, rsv, op, payload, true)
}

// clientFrameMask is clientFrame with the mask bit chosen.
func clientFrameMask(fin bool, rsv byte, op ws.OpCode, payload []byte, masked bool) []byte {
	h := ws.Header{Fin: fin, Rsv: rsv, OpCode: op, Length: int64(len(payload))}
	p := append([]byte(nil), payload...)
	if masked {
		h.Masked, h.Mask = true, [4]byte{0x37, 0xfa, 0x21, 0x3d}
		ws.Cipher(p, h.Mask, 0)
	}
	var w bytes.Buffer
	_ = ws.WriteHeader(&w, h)
	return append(w.Bytes(), p...)
}

// closePayload is the payload of a close frame with code and reason.
func closePayload(code uint16, reason string) []byte {
	return append(binary.BigEndian.AppendUint16(nil, code), reason...)
}

// send writes b in mode. A write error is not fatal: the server may close
// while a bytewise write of a bad frame is still going on.
func (c *wsRaw) send(b []byte, mode wsWriteMode) {
	c.tb.Helper()
	step := len(b)
	switch mode {
	case wsPieces:
		step = 7
	case wsBytewise:
		step = 1
	}
	_ = c.conn.SetWriteDeadline(time.Now().Add(testTimeout))
	for len(b) > 0 {
		n := min(step, len(b))
		if _, err := c.conn.Write(b[:n]); err != nil {
			return
		}
		b = b[n:]
	}
}

// write writes b whole and fails the test if it cannot.
func (c *wsRaw) write(b []byte) {
	c.tb.Helper()
	_ = c.conn.SetWriteDeadline(time.Now().Add(testTimeout))
	if _, err := c.conn.Write(b); err != nil {
		c.tb.Fatalf("write: %v", err)
	}
}

// presenceRE matches the join and leave notices of other tests' clients.
var presenceRE = regexp.MustCompile(`^\* uid \d+ (joined|left)$`)

// readFrame reads one server frame, skipping other clients' join and
// leave notices, and checks that it is a valid unmasked final frame.
func (c *wsRaw) readFrame() (ws.Header, []byte) {
	c.tb.Helper()
	for {
		h, p, err := c.tryReadFrame()
		if err != nil {
			c.tb.Fatalf("uid %d: read frame: %v", c.uid, err)
		}
		if h.OpCode == ws.OpText && presenceRE.Match(p) {
			continue
		}
		return h, p
	}
}

func (c *wsRaw) tryReadFrame() (ws.Header, []byte, error) {
	_ = c.conn.SetReadDeadline(time.Now().Add(testTimeout))
	h, err := ws.ReadHeader(c.r)
	if err != nil {
		return h, nil, err
	}
	if h.Masked || h.Rsv != 0 || !h.Fin {
		c.tb.Fatalf("uid %d: server frame %+v: want unmasked, final, no RSV bits", c.uid, h)
	}
	p := make([]byte, h.Length)
	if _, err := io.ReadFull(c.r, p); err != nil {
		return h, nil, err
	}
	return h, p, nil
}

// expectText reads a text frame and compares it.
func (c *wsRaw) expectText(want string) {
	c.tb.Helper()
	h, p := c.readFrame()
	if h.OpCode != ws.OpText || string(p) != want {
		c.tb.Fatalf("uid %d: got frame %v %q, want text %q", c.uid, h.OpCode, clip(p), clip([]byte(want)))
	}
}

// expectClose reads a close frame and checks its code (0: an empty close),
// then that the server closes the TCP connection.
func (c *wsRaw) expectClose(code uint16) {
	c.tb.Helper()
	h, p := c.readFrame()
	if h.OpCode != ws.OpClose {
		c.tb.Fatalf("uid %d: got frame %v %q, want close %d", c.uid, h.OpCode, clip(p), code)
	}
	got := uint16(0)
	if len(p) >= 2 {
		got = binary.BigEndian.Uint16(p)
	}
	if got != code || len(p) == 1 {
		c.tb.Fatalf("uid %d: got close payload %q (code %d), want code %d", c.uid, p, got, code)
	}
	c.expectEOF()
}

// expectEOF checks that the server closes the connection with nothing
// more to read.
func (c *wsRaw) expectEOF() {
	c.tb.Helper()
	_ = c.conn.SetReadDeadline(time.Now().Add(testTimeout))
	rest, err := io.ReadAll(c.r)
	if err != nil && !errors.Is(err, syscall.ECONNRESET) {
		c.tb.Fatalf("uid %d: waiting for the server to close: %v", c.uid, err)
	}
	if len(rest) > 0 {
		c.tb.Fatalf("uid %d: got %q after the close, want nothing", c.uid, clip(rest))
	}
	c.conn.Close() // as a real client does: see client.expectEOF
}

// sync sends a broadcast and waits for its echo, so that every frame c
// sent before has been handled and answered.
func (c *wsRaw) sync() {
	c.tb.Helper()
	tag := "sync-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	c.write(clientFrame(true, 0, ws.OpText, []byte(tag)))
	c.expectText("uid " + strconv.FormatUint(c.uid, 10) + ": " + tag)
}

// clip shortens long payloads in failure messages.
func clip(b []byte) string {
	if len(b) > 80 {
		return string(b[:60]) + "...(" + strconv.Itoa(len(b)) + " bytes)"
	}
	return string(b)
}

// repeat returns n bytes of s repeated.
func repeat(s string, n int) []byte {
	return []byte(strings.Repeat(s, n/len(s)+1)[:n])
}
