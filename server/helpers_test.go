package server

import (
	"bufio"
	"context"
	"github.com/fastws/fastws/chat"
	"io"
	"log/slog"
	"net"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fastws/fastws/server/config"
)

// testTimeout bounds every wait in these tests.
const testTimeout = 10 * time.Second

// telnetInstance returns a telnet instance on 127.0.0.1:0.
func telnetInstance(name string, reactors int) config.Instance {
	return config.Instance{
		Section: "instance." + name, Name: name, Protocol: config.ProtocolTelnet,
		Host: "127.0.0.1", Port: 0, ChildProcessCount: reactors,
		Limits: config.DefaultLimits(),
	}
}

// startServer runs insts and stops them when the test ends.
func startServer(tb testing.TB, insts ...config.Instance) *Server {
	tb.Helper()
	level := slog.LevelWarn
	if testing.Verbose() {
		level = slog.LevelDebug
	}
	return startServerLog(tb, slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})), insts...)
}

// startServerLog is startServer with the server's logger.
func startServerLog(tb testing.TB, log *slog.Logger, insts ...config.Instance) *Server {
	tb.Helper()
	s := New(log, chat.Options{})
	cfg := &config.Config{StopTimeout: 5 * time.Second, Defaults: config.DefaultLimits(), Instances: insts}
	if err := s.Start(cfg); err != nil {
		tb.Fatalf("start: %v", err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		defer cancel()
		_ = s.Stop(ctx)
	})
	return s
}

// client is a test telnet client.
type client struct {
	tb   testing.TB
	conn net.Conn
	r    *bufio.Reader
	uid  uint64
}

var welcomeRE = regexp.MustCompile(`^Welcome to fastws! You are uid (\d+)\. `)

// dial connects to addr and reads the welcome line.
func dial(tb testing.TB, addr string) *client {
	tb.Helper()
	return dialRaw(tb, addr).welcomed()
}

// dialRaw connects to addr and reads nothing.
func dialRaw(tb testing.TB, addr string) *client {
	tb.Helper()
	return dialWith(tb, &net.Dialer{Timeout: testTimeout}, addr)
}

// dialWith connects to addr through d and reads nothing.
func dialWith(tb testing.TB, d *net.Dialer, addr string) *client {
	tb.Helper()
	conn, err := d.Dial("tcp", addr)
	if err != nil {
		tb.Fatalf("dial %s: %v", addr, err)
	}
	tb.Cleanup(func() { conn.Close() })
	return &client{tb: tb, conn: conn, r: bufio.NewReaderSize(conn, 1<<20)}
}

// welcomed reads c's welcome line and records its uid.
func (c *client) welcomed() *client {
	c.tb.Helper()
	line := c.line()
	m := welcomeRE.FindStringSubmatch(line)
	if m == nil {
		c.tb.Fatalf("first line %q, want the welcome", line)
	}
	c.uid, _ = strconv.ParseUint(m[1], 10, 64)
	return c
}

// send writes raw bytes.
func (c *client) send(s string) {
	c.tb.Helper()
	if _, err := c.conn.Write([]byte(s)); err != nil {
		c.tb.Fatalf("uid %d: write: %v", c.uid, err)
	}
}

// line reads one server line, without its CR LF, and checks the ending.
func (c *client) line() string {
	c.tb.Helper()
	_ = c.conn.SetReadDeadline(time.Now().Add(testTimeout))
	s, err := c.r.ReadString('\n')
	if err != nil {
		c.tb.Fatalf("uid %d: read: %v (got %q so far)", c.uid, err, s)
	}
	s = ungreet(s)
	if !strings.HasSuffix(s, "\r\n") {
		c.tb.Fatalf("uid %d: line %q does not end in CR LF", c.uid, s)
	}
	return strings.TrimSuffix(s, "\r\n")
}

// expect reads one line and compares it.
func (c *client) expect(want string) {
	c.tb.Helper()
	if got := c.line(); got != want {
		c.tb.Fatalf("uid %d: got line %q, want %q", c.uid, got, want)
	}
}

// skipUntil reads lines until want, failing on EOF or timeout.
func (c *client) skipUntil(want string) {
	c.tb.Helper()
	for {
		if c.line() == want {
			return
		}
	}
}

// expectEOF reads until the server closes, failing if a line other than
// the allowed ones arrives first.
func (c *client) expectEOF() {
	c.tb.Helper()
	_ = c.conn.SetReadDeadline(time.Now().Add(testTimeout))
	rest, err := io.ReadAll(c.r)
	if err != nil {
		c.tb.Fatalf("uid %d: waiting for close: %v", c.uid, err)
	}
	if len(rest) > 0 {
		c.tb.Fatalf("uid %d: got %q before close, want nothing", c.uid, rest)
	}
	// Closed on its side too, as a real client does at the end: the
	// server, which may linger for it, is done with it at once.
	c.conn.Close()
}

// sync makes sure every line c sent before has been handled: it sends a
// private message to itself and waits for it.
func (c *client) sync() {
	c.tb.Helper()
	tag := "sync-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	c.send("$" + strconv.FormatUint(c.uid, 10) + ":" + tag + "\n")
	for !strings.HasSuffix(c.line(), " (private): "+tag) {
	}
}

// ungreet returns a telnet line without the option negotiation in front
// of the welcome (telnetGreeting), which a real telnet client consumes.
func ungreet(line string) string { return strings.TrimPrefix(line, string(telnetGreeting)) }

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }
