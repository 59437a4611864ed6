package server

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"strconv"
	"testing"
	"time"
	"unsafe"

	"github.com/gobwas/ws"
)

// maxRoundTripAllocs is the allocation budget of a private message round
// trip, client and server together: the message text. Its chat.Event is
// recycled (the reactor releases it once encoded), encoding, framing and
// writing the reply allocate nothing (the reactor's scratch buffer), and
// the room's lookup takes no lock and no allocation.
const maxRoundTripAllocs = 1.5

// TestRoundTripAllocs counts the allocations of a private message to
// oneself, over a real socket: a regression here costs CPU per message in
// every deployment (scripts/bench measures it).
func TestRoundTripAllocs(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T) (msg, want []byte, conn net.Conn, r io.Reader)
	}{{"telnet", func(t *testing.T) ([]byte, []byte, net.Conn, io.Reader) {
		ic := telnetInstance("t", 1)
		ic.Limits.MessagesPerSecond = 0 // as fast as it can go
		ic.Limits.BytesPerSecond = 0
		c := dial(t, startServer(t, ic).Addrs()["t"])
		uid := strconv.FormatUint(c.uid, 10)
		return []byte("$" + uid + ":hello world\n"), []byte("uid " + uid + " (private): hello world\r\n"), c.conn, c.r
	}}, {"websocket", func(t *testing.T) ([]byte, []byte, net.Conn, io.Reader) {
		c := wsDial(t, startServer(t, wsInstance("w", 1)).Addrs()["w"])
		uid := strconv.FormatUint(c.uid, 10)
		return clientFrame(true, 0, ws.OpText, []byte("$"+uid+":hello world")),
			appendFrame(nil, ws.OpText, []byte("uid "+uid+" (private): hello world")), c.conn, c.r
	}}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			msg, want, conn, r := tc.setup(t)
			_ = conn.SetDeadline(time.Now().Add(testTimeout))
			got := make([]byte, len(want))
			var err error
			round := func() {
				if err != nil {
					return
				}
				if _, err = conn.Write(msg); err == nil {
					_, err = io.ReadFull(r, got)
				}
				if err == nil && !bytes.Equal(got, want) {
					err = fmt.Errorf("got reply %q, want %q", got, want)
				}
			}
			for range 200 { // warm up: buffers grow to their steady size
				round()
			}
			allocs := testing.AllocsPerRun(2000, round)
			if err != nil {
				t.Fatal(err)
			}
			if allocs > maxRoundTripAllocs {
				t.Errorf("a private message round trip costs %.2f allocations, want at most %.1f", allocs, maxRoundTripAllocs)
			}
			t.Logf("%.2f allocations per round trip", allocs)
		})
	}
}

// TestSessionSize keeps a connection's state in one 256-byte allocation
// (session.go says why): a field more would cost 32 bytes per connection
// and the cache line alignment.
func TestSessionSize(t *testing.T) {
	if n := unsafe.Sizeof(session{}); n > 256 {
		t.Errorf("session is %d bytes, want at most 256", n)
	}
}
