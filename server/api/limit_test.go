package api

import (
	"bufio"
	"context"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/fastws/fastws/chat"
)

// TestConnectionsBounded: the API holds at most maxConns connections; one
// more waits, unserved, until another closes, then is served. Before, a
// client could open connections without end (no key is needed to
// connect), each a goroutine and a descriptor the chat needs.
func TestConnectionsBounded(t *testing.T) {
	s, err := Listen("127.0.0.1:0", Options{Hub: chat.NewHub(chat.Options{}), Key: hostileKey})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = s.Close(ctx)
	})
	// call sends a request without the key on c and reads the answer:
	// the connection is then held, idle, kept alive.
	call := func(c net.Conn, r *bufio.Reader) (int, error) {
		if _, err := c.Write([]byte("GET /api/v1/online HTTP/1.1\r\nHost: x\r\n\r\n")); err != nil {
			return 0, err
		}
		resp, err := http.ReadResponse(r, nil)
		if err != nil {
			return 0, err
		}
		resp.Body.Close()
		return resp.StatusCode, nil
	}
	var held []net.Conn
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	for i := range maxConns {
		c, err := net.DialTimeout("tcp", s.Addr(), 5*time.Second)
		if err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
		held = append(held, c)
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		if code, err := call(c, bufio.NewReader(c)); err != nil || code != 401 {
			t.Fatalf("connection %d: %d %v, want 401", i, code, err)
		}
	}
	extra, err := net.DialTimeout("tcp", s.Addr(), 5*time.Second) // the kernel completes it: it waits in the accept queue
	if err != nil {
		t.Fatal(err)
	}
	defer extra.Close()
	_ = extra.SetDeadline(time.Now().Add(10 * time.Second))
	answered := make(chan error, 1)
	go func() {
		code, err := call(extra, bufio.NewReader(extra))
		if err == nil && code != 401 {
			err = http.ErrNotSupported
		}
		answered <- err
	}()
	// A negative check needs a wait: 300 ms is ample for a loopback answer.
	select {
	case err := <-answered:
		t.Fatalf("connection %d was served (err %v) while %d were held", maxConns+1, err, maxConns)
	case <-time.After(300 * time.Millisecond):
	}
	held[0].Close()
	if err := <-answered; err != nil {
		t.Fatalf("once a slot was free: %v", err)
	}
}
