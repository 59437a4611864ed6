package server

import (
	"bytes"
	"errors"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fastws/fastws/chat"
)

// syncBuffer is a bytes.Buffer that a logger may write from any goroutine.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// TestLogFloodIsBounded sends a TLS ClientHello's first bytes and garbage
// to a websocket instance on 2000 connections, one after another, as a
// misconfigured client or a scanner does: each used to log a line of its
// own (about 0.5 MB/s from one local client). The log must hold a handful
// of lines, every one of them counted.
func TestLogFloodIsBounded(t *testing.T) {
	const conns = 2000
	var out syncBuffer
	s := startServerLog(t, slog.New(slog.NewTextHandler(&out, nil)), wsInstance("ws", 2))
	addr := s.Addrs()["ws"]
	for k := range conns {
		c, err := net.DialTimeout("tcp", addr, testTimeout)
		if err != nil {
			t.Fatalf("connection %d: %v", k, err)
		}
		_, _ = c.Write([]byte("\x16\x03\x01garbage\r\n\r\n"))
		_ = c.SetReadDeadline(time.Now().Add(testTimeout))
		_, _ = c.Read(make([]byte, 512)) // the 400, then the close
		c.Close()
	}
	waitFor(t, "every connection to close", func() bool {
		return s.Stats().Instances[0].Closed() == conns
	})
	if got := s.Stats().Instances[0].ClosedByReason["protocol_error"]; got != conns {
		t.Fatalf("got %d closed as protocol_error, want %d", got, conns)
	}
	log := out.String()
	if n := strings.Count(log, "connection closed"); n < 1 || n > 2 {
		t.Errorf("the log holds %d lines for %d closes, want the first one of the window (at most one more if a window ended); log:\n%s", n, conns, log)
	}
	if len(log) > 4<<10 {
		t.Errorf("the log grew by %d bytes for %d closed connections, want at most 4 KiB", len(log), conns)
	}
}

// TestCloseLogSummarises checks closeLog's windows: the first close of a
// reason is logged, the rest of the window is summed up with the
// addresses that caused it once the window is over, and normal closes
// stay at the debug level.
func TestCloseLogSummarises(t *testing.T) {
	var out syncBuffer
	l := newCloseLog(slog.New(slog.NewTextHandler(&out, nil)))
	t0 := time.Unix(1000, 0)
	for k := range 100 {
		l.closed(t0.Add(time.Duration(k)*time.Millisecond), uint64(k), "10.0.0.1:1", "10.0.0.1", chat.ReasonProtocolError, nil)
	}
	l.closed(t0, 0, "10.0.0.2:1", "10.0.0.2", chat.ReasonProtocolError, nil)
	l.closed(t0, 7, "10.0.0.3:1", "10.0.0.3", chat.ReasonSlowConsumer, errors.New("x"))
	l.closed(t0, 8, "10.0.0.3:2", "10.0.0.3", chat.ReasonClientClosed, nil)
	if got := strings.Count(out.String(), "\n"); got != 2 {
		t.Fatalf("within one window: got %d lines, want 2 (the first of each reason); log:\n%s", got, out.String())
	}
	l.closed(t0.Add(closeLogWindow), 9, "10.0.0.1:2", "10.0.0.1", chat.ReasonProtocolError, nil)
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 4 {
		t.Fatalf("after the window: got %d lines, want 4; log:\n%s", len(lines), out.String())
	}
	summary := lines[2]
	for _, want := range []string{"count=100", "protocol_error=100", "from_10.0.0.1=99", "from_10.0.0.2=1"} {
		if !strings.Contains(summary, want) {
			t.Errorf("summary %q lacks %q", summary, want)
		}
	}
	if !strings.Contains(lines[3], "reason=protocol_error") {
		t.Errorf("the next window's first close %q is not logged", lines[3])
	}
	l.flush(t0.Add(2 * closeLogWindow))
	if got := len(strings.Split(strings.TrimSpace(out.String()), "\n")); got != 4 {
		t.Errorf("a flush of a window with nothing held back logged something: %d lines", got)
	}
}
