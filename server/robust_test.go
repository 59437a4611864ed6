package server

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/fastws/fastws/chat"
	"github.com/gobwas/ws"
)

// TestGarbage sends what a hostile or broken peer might: random bytes,
// NUL and invalid UTF-8, IAC storms, a 10 MB line, absurd websocket frame
// lengths, a megabyte of handshake headers, a flood of negotiation or
// pings that it never reads the answers to. Through all of it the daemon
// stays up, only the offender is closed, with its error line or close code
// where the protocol has one, and two bystanders, one per protocol, keep
// chatting.
func TestGarbage(t *testing.T) {
	const maxLine = 1024
	tc := telnetInstance("t", 2)
	tc.Limits.MaxPackageSize = maxLine
	tc.Limits.MessagesPerSecond = 0
	tc.Limits.BytesPerSecond = 0
	s := startServer(t, tc, wsInstance("ws", 2))
	tAddr, wsAddr := s.Addrs()["t"], s.Addrs()["ws"]
	tooLong := "! line too long (max " + strconv.Itoa(maxLine) + " bytes)"

	by := dial(t, tAddr)
	wby := wsDial(t, wsAddr)
	round := 0
	// alive checks that both bystanders still chat.
	alive := func(t *testing.T) {
		t.Helper()
		round++
		msg := fmt.Sprintf("alive %d", round)
		by.send(msg + "\n")
		want := fmt.Sprintf("uid %d: %s", by.uid, msg)
		by.skipUntil(want)
		wsSkipUntil(wby, want)
	}
	alive(t)

	t.Run("telnet/nul_and_invalid_utf8", func(t *testing.T) {
		// Not an offence: every reader gets the line with each control
		// and each byte that is not UTF-8 replaced (chat.CleanLine).
		rng := rand.New(rand.NewPCG(1, 1))
		var lines []string
		var in strings.Builder
		for k := 0; k < 40; k++ {
			b := []byte{'x', 0, 0xc3, 0x28, 0xed, 0xa0, 0x80} // NUL, a bad sequence, a surrogate
			for len(b) < 1000 {
				if c := byte(rng.IntN(255)); c != '\n' && c != '\r' { // every byte but LF, CR and IAC
					b = append(b, c)
				}
			}
			lines = append(lines, string(b))
			in.Write(append(b, '\n'))
		}
		o := dial(t, tAddr)
		o.send(in.String())
		for _, l := range lines {
			want := fmt.Sprintf("uid %d: %s", o.uid, chat.CleanLine(l))
			by.skipUntil(want)
			o.skipUntil(want)
			wsSkipUntil(wby, want)
		}
		o.sync()
		alive(t)
	})

	t.Run("telnet/random_bytes", func(t *testing.T) {
		o := dial(t, tAddr)
		wait := writeAsync(o.conn, randomBytes(2, 256<<10))
		expectClosedAfter(t, o, tooLong)
		wait()
		alive(t)
	})

	t.Run("telnet/iac_nop_storm_between_lines", func(t *testing.T) {
		o := dial(t, tAddr)
		start := time.Now()
		wait := writeAsync(o.conn, append(bytes.Repeat([]byte{telnetIAC, 241}, 100_000), "after the storm\n"...))
		// Commands between lines are dropped; NOP has no answer. The last
		// subtest's client may leave meanwhile (its leave notice first).
		o.skipUntil(fmt.Sprintf("uid %d: after the storm", o.uid))
		wait()
		t.Logf("100k IAC NOP handled in %v", time.Since(start))
		alive(t)
	})

	t.Run("telnet/iac_nop_storm_in_line", func(t *testing.T) {
		o := dial(t, tAddr)
		in := append([]byte("abc"), bytes.Repeat([]byte{telnetIAC, 241}, 100_000)...)
		wait := writeAsync(o.conn, append(in, '\n'))
		expectClosedAfter(t, o, tooLong)
		wait()
		alive(t)
	})

	t.Run("telnet/10MB_line", func(t *testing.T) {
		o := dial(t, tAddr)
		wait := writeAsync(o.conn, bytes.Repeat([]byte{'a'}, 10<<20))
		expectClosedAfter(t, o, tooLong)
		wait()
		alive(t)
	})

	t.Run("telnet/negotiation_storm_unread", func(t *testing.T) {
		// Every IAC DO is answered with IAC WONT: a peer that sends them and
		// never reads makes the server queue answers as fast as it sends.
		before := s.Stats().Instances[0].SlowConsumers
		o := dialWith(t, smallRcvBuf(), tAddr)
		wait := writeAsync(o.conn, bytes.Repeat([]byte{telnetIAC, telnetDO, 1}, (16<<20)/3))
		waitFor(t, "the peer that never reads its answers to be closed as a slow consumer", func() bool {
			return s.Stats().Instances[0].SlowConsumers > before
		})
		expectDrained(t, o.conn)
		wait()
		alive(t)
	})

	t.Run("ws/length_2^63", func(t *testing.T) {
		// The most significant bit of a 64-bit length must be 0.
		o := wsDial(t, wsAddr)
		o.write(wsHeader(0x81, 1<<63))
		o.expectClose(uint16(ws.StatusProtocolError))
		alive(t)
	})

	t.Run("ws/length_2^63-1", func(t *testing.T) {
		o := wsDial(t, wsAddr)
		o.write(wsHeader(0x81, 1<<63-1))
		o.expectClose(uint16(ws.StatusMessageTooBig))
		alive(t)
	})

	t.Run("ws/invalid_utf8", func(t *testing.T) {
		o := wsDial(t, wsAddr)
		o.write(clientFrame(true, 0, ws.OpText, []byte("ok \xc3\x28 \xff")))
		o.expectClose(uint16(ws.StatusInvalidFramePayloadData))
		alive(t)
	})

	t.Run("ws/nul", func(t *testing.T) {
		// Valid UTF-8, so not an offence; the room replaces the NUL.
		o := wsDial(t, wsAddr)
		o.write(clientFrame(true, 0, ws.OpText, []byte("a\x00b")))
		want := fmt.Sprintf("uid %d: a\ufffdb", o.uid)
		o.expectText(want)
		by.skipUntil(want)
		alive(t)
	})

	t.Run("ws/random_frames", func(t *testing.T) {
		o := wsDial(t, wsAddr)
		wait := writeAsync(o.conn, randomBytes(3, 64<<10))
		h, p := o.readFrame()
		code := uint16(0)
		if len(p) >= 2 {
			code = binary.BigEndian.Uint16(p)
		}
		switch {
		case h.OpCode == ws.OpPong:
			t.Fatalf("got a pong: the random bytes made a valid ping (reseed)")
		case h.OpCode != ws.OpClose || (code != 1002 && code != 1003 && code != 1007 && code != 1009):
			t.Fatalf("got frame %v %q, want a close with 1002, 1003, 1007 or 1009", h.OpCode, clip(p))
		}
		o.expectEOF()
		wait()
		alive(t)
	})

	t.Run("ws/1MB_of_headers", func(t *testing.T) {
		o := wsDialRaw(t, wsAddr, "") // the request goes below: the server answers before it ends
		pad := "X-Pad: " + strings.Repeat("p", 1000) + "\r\n"
		wait := writeAsync(o.conn, []byte(wsUpgradeRequest(strings.Repeat(pad, (1<<20)/len(pad)))))
		resp := o.response()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
			t.Fatalf("got %d %q, want 431", resp.StatusCode, body)
		}
		o.expectEOF()
		wait()
		alive(t)
	})

	t.Run("ws/ping_flood_unread", func(t *testing.T) {
		before := s.Stats().Instances[1].SlowConsumers
		o := wsDialWith(t, smallRcvBuf(), wsAddr)
		ping := clientFrame(true, 0, ws.OpPing, nil) // the smallest pong, the most of them
		wait := writeAsync(o.conn, bytes.Repeat(ping, (16<<20)/len(ping)))
		waitFor(t, "the peer that never reads its pongs to be closed as a slow consumer", func() bool {
			return s.Stats().Instances[1].SlowConsumers > before
		})
		expectDrained(t, o.conn)
		wait()
		alive(t)
	})

	// Only the bystanders are left.
	waitFor(t, "every offender's connection to close", func() bool { return openConns(s) == 2 })
	if st := s.Stats(); st.Room.Members != 2 {
		t.Errorf("got %d members, want the 2 bystanders", st.Room.Members)
	}
}

// wsSkipUntil reads c's frames until a text frame equal to want, failing
// on a close or a text frame that is not valid UTF-8.
func wsSkipUntil(c *wsRaw, want string) {
	c.tb.Helper()
	for {
		h, p := c.readFrame()
		switch {
		case h.OpCode != ws.OpText:
			c.tb.Fatalf("uid %d: got frame %v %q while waiting for %q", c.uid, h.OpCode, clip(p), clip([]byte(want)))
		case !utf8.Valid(p):
			c.tb.Fatalf("uid %d: got a text frame that is not UTF-8: %q", c.uid, clip(p))
		case string(p) == want:
			return
		}
	}
}

// writeAsync writes b to conn on its own goroutine, which ends when the
// write does or fails (the server may close while it goes on); the
// returned func waits for it.
func writeAsync(conn net.Conn, b []byte) (wait func()) {
	var wg sync.WaitGroup
	wg.Go(func() {
		_ = conn.SetWriteDeadline(time.Now().Add(3 * testTimeout))
		_, _ = conn.Write(b)
	})
	return wg.Wait
}

// expectClosedAfter reads c's lines until the server closes the connection
// and checks that the last one was want.
func expectClosedAfter(t *testing.T, c *client, want string) {
	t.Helper()
	_ = c.conn.SetReadDeadline(time.Now().Add(testTimeout))
	last := ""
	for {
		l, err := c.r.ReadString('\n')
		if err != nil {
			if !isClosedErr(err) {
				t.Fatalf("uid %d: waiting for %q and the close: %v (last line %q)", c.uid, want, err, clip([]byte(last)))
			}
			if l != "" || last != want {
				t.Fatalf("uid %d: got last line %q then %q before the close, want %q", c.uid, clip([]byte(last)), l, want)
			}
			return
		}
		last = strings.TrimSuffix(l, "\r\n")
	}
}

// expectDrained reads whatever the server wrote to conn and checks that
// the server then closed it.
func expectDrained(t *testing.T, conn net.Conn) {
	t.Helper()
	_ = conn.SetReadDeadline(time.Now().Add(testTimeout))
	n, err := io.Copy(io.Discard, conn)
	if err != nil && !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("after reading %d bytes: %v, want the server to have closed the connection", n, err)
	}
}

// randomBytes returns n bytes from a generator seeded with seed.
func randomBytes(seed uint64, n int) []byte {
	rng := rand.New(rand.NewPCG(seed, seed))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}

// wsHeader returns a masked frame header with the first byte b0 that
// announces n payload bytes, and no payload.
func wsHeader(b0 byte, n uint64) []byte {
	h := []byte{b0, 0x80 | 127}
	h = binary.BigEndian.AppendUint64(h, n)
	return append(h, 0x37, 0xfa, 0x21, 0x3d)
}

// smallRcvBuf is a dialer whose sockets have a 4 KiB receive buffer, so
// that what a peer does not read piles up in the server.
func smallRcvBuf() *net.Dialer {
	return &net.Dialer{Timeout: testTimeout, Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4<<10)
		})
		return errors.Join(err, serr)
	}}
}
