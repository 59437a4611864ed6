package server

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gobwas/ws"
)

// TestMembersAreOpenConnections ends connections at every step of both
// protocols, with a FIN and with a reset, and checks that the room's
// members are exactly the open, joined connections: none is left behind
// when they have all gone, and a newcomer's /who lists itself alone.
//
// A websocket client that sent its upgrade and reset the connection at
// once used to stay in the room for good: the 101 failed to write, gnet
// closed the connection inside that write (OnClose found no member yet),
// and the member joined after it.
func TestMembersAreOpenConnections(t *testing.T) {
	const rounds = 25 // of every step and ending
	s := startServer(t, telnetInstance("t", 2), wsInstance("ws", 2))
	addrs := s.Addrs()

	type step struct {
		name, inst string
		run        func(conn net.Conn, r *bufio.Reader) error
	}
	steps := []step{
		{"telnet connected", "t", func(net.Conn, *bufio.Reader) error { return nil }},
		{"telnet welcomed", "t", func(_ net.Conn, r *bufio.Reader) error { return readWelcome(r) }},
		{"telnet half a line", "t", func(c net.Conn, r *bufio.Reader) error {
			return writeAll(c, "hel")
		}},
		{"telnet a line unread", "t", func(c net.Conn, r *bufio.Reader) error {
			return writeAll(c, "hello\n/who\n")
		}},
		{"websocket connected", "ws", func(net.Conn, *bufio.Reader) error { return nil }},
		{"websocket half a request", "ws", func(c net.Conn, _ *bufio.Reader) error {
			return writeAll(c, wsUpgradeRequest("")[:20])
		}},
		{"websocket request, 101 unread", "ws", func(c net.Conn, _ *bufio.Reader) error {
			return writeAll(c, wsUpgradeRequest(""))
		}},
		{"websocket 101 read", "ws", func(c net.Conn, r *bufio.Reader) error {
			if err := writeAll(c, wsUpgradeRequest("")); err != nil {
				return err
			}
			resp, err := http.ReadResponse(r, nil)
			if err != nil {
				return err
			}
			resp.Body.Close()
			return nil
		}},
		{"websocket half a frame", "ws", func(c net.Conn, r *bufio.Reader) error {
			if err := wsHello(c, r); err != nil {
				return err
			}
			return writeAll(c, string(clientFrame(true, 0, ws.OpText, []byte("hello"))[:4]))
		}},
		{"websocket close frame, echo unread", "ws", func(c net.Conn, r *bufio.Reader) error {
			if err := wsHello(c, r); err != nil {
				return err
			}
			return writeAll(c, string(clientFrame(true, 0, ws.OpClose, closePayload(1000, ""))))
		}},
	}
	endings := []struct {
		name  string
		reset bool
	}{{"FIN", false}, {"RST", true}}

	d := churnDialer()
	var wg sync.WaitGroup
	errs := make(chan error, len(steps)*len(endings))
	for _, st := range steps {
		for _, e := range endings {
			wg.Go(func() {
				for range rounds {
					if err := endAt(d, addrs[st.inst], e.reset, st.run); err != nil {
						errs <- fmt.Errorf("%s, then %s: %v", st.name, e.name, err)
						return
					}
				}
			})
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if t.Failed() {
		t.FailNow()
	}

	deadline := time.Now().Add(testTimeout)
	for {
		st := s.Stats()
		if openConns(s) == 0 && st.Room.Members == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("every client is gone, yet %d connections are open and the room has %d members; want 0 and 0",
				openConns(s), st.Room.Members)
		}
		time.Sleep(10 * time.Millisecond) // poll interval
	}

	// What users see agrees: a newcomer is alone.
	c := dial(t, addrs["t"])
	c.send("/who\n")
	c.expect(fmt.Sprintf("* uid %d (telnet)", c.uid))
	c.expect("* 1 online")
}

// endAt dials addr, runs step, then closes the connection: with a reset
// (SO_LINGER 0) or an ordinary FIN.
func endAt(d *net.Dialer, addr string, reset bool, step func(net.Conn, *bufio.Reader) error) error {
	conn, err := d.Dial("tcp", addr)
	if err != nil {
		return err
	}
	_ = conn.SetDeadline(time.Now().Add(testTimeout))
	err = step(conn, bufio.NewReader(conn))
	if reset {
		_ = conn.(*net.TCPConn).SetLinger(0)
	}
	_ = conn.Close()
	return err
}

// writeAll writes s to c, treating a reset by the server as written: the
// steps end the connection anyway.
func writeAll(c net.Conn, s string) error {
	if _, err := io.WriteString(c, s); err != nil && !strings.Contains(err.Error(), "reset") {
		return err
	}
	return nil
}
