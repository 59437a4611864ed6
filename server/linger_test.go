package server

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestErrorLineSurvivesUnreadInput sends a line too long followed by much
// more input, and reads: the error line must arrive, then the close. A
// server that closes with the client's input unread makes the kernel
// reset the connection, and a reset discards what the client had not
// read yet: the error line.
func TestErrorLineSurvivesUnreadInput(t *testing.T) {
	const maxLine = 1024
	tc := telnetInstance("t", 1)
	tc.Limits.MaxPackageSize = maxLine
	tc.Limits.BytesPerSecond = 0
	tc.Limits.MessagesPerSecond = 0
	s := startServer(t, tc)
	addr := s.Addrs()["t"]
	for range 20 {
		c := dial(t, addr)
		wait := writeAsync(c.conn, []byte(strings.Repeat("x", 256<<10)+"\n"))
		c.skipUntil("! line too long (max 1024 bytes)") // past the last round's leave notice
		c.expectEOF()
		wait()
		c.conn.Close()
	}
}

// TestLingerIsBounded checks that a peer which never closes its side does
// not keep a half-closed connection: the server closes it after
// lingerTimeout (plus a tick), counted with its reason.
func TestLingerIsBounded(t *testing.T) {
	t.Parallel() // waits on timers; overlaps with the others
	tc := telnetInstance("t", 1)
	tc.Limits.MaxPackageSize = 64
	s := startServer(t, tc)
	c := dial(t, s.Addrs()["t"])
	start := time.Now()
	c.send(strings.Repeat("x", 100) + "\n")
	c.expect("! line too long (max 64 bytes)")
	// The server's end; the client keeps its own open.
	_ = c.conn.SetReadDeadline(time.Now().Add(testTimeout))
	if n, err := c.r.Read(make([]byte, 1)); n != 0 || err == nil {
		t.Fatalf("after the error line: read %d bytes, %v; want the server's end", n, err)
	}
	waitFor(t, "the half-closed connection to close", func() bool { return openConns(s) == 0 })
	if took := time.Since(start); took < lingerTimeout {
		t.Errorf("closed %v after the error, want it to linger %v for the peer", took, lingerTimeout)
	}
	if got := s.Stats().Instances[0].ClosedByReason["protocol_error"]; got != 1 {
		t.Errorf("got %d closed as protocol_error, want 1", got)
	}
}

// TestNothingTakenAfterQuit sends /quit and another line in one write:
// the line after /quit must reach no one, as the connection is closing.
func TestNothingTakenAfterQuit(t *testing.T) {
	s := startServer(t, telnetInstance("t", 1))
	other := dial(t, s.Addrs()["t"])
	q := dial(t, s.Addrs()["t"])
	other.expect(fmt.Sprintf("* uid %d joined", q.uid))
	q.send("/quit\r\nafter quit\r\n")
	q.expect("* bye")
	q.expectEOF()
	for {
		l := other.line()
		if l == fmt.Sprintf("uid %d: after quit", q.uid) {
			t.Fatalf("got %q from a member that had quit", l)
		}
		if l == fmt.Sprintf("* uid %d left", q.uid) {
			break
		}
	}
}
