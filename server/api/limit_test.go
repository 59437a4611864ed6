package api

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/fastws/fastws/chat"
)

// limitServer runs the API on 127.0.0.1 with at most n connections.
func limitServer(t *testing.T, n int) *Server {
	t.Helper()
	s, err := Listen("127.0.0.1:0", Options{Hub: chat.NewHub(chat.Options{}), Key: hostileKey, MaxConns: n})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = s.Close(ctx)
	})
	return s
}

// rawGet sends GET /api/v1/online on c (with the key if key) and reads
// the answer; the connection stays open unless the server closes it.
func rawGet(c net.Conn, r *bufio.Reader, key bool) (*http.Response, error) {
	auth := ""
	if key {
		auth = "Authorization: Bearer " + hostileKey + "\r\n"
	}
	if _, err := fmt.Fprintf(c, "GET /api/v1/online HTTP/1.1\r\nHost: x\r\n%s\r\n", auth); err != nil {
		return nil, err
	}
	resp, err := http.ReadResponse(r, nil)
	if err != nil {
		return nil, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp, nil
}

func dialAPI(t *testing.T, s *Server) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.DialTimeout("tcp", s.Addr(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	return c, bufio.NewReader(c)
}

// TestConnectionsBounded: the API holds at most [api] maxConnections
// connections; one more waits, unserved, until another closes, then is
// served. Before, a client could open connections without end (no key is
// needed to connect), each a goroutine and a descriptor the chat needs.
func TestConnectionsBounded(t *testing.T) {
	const limit = 32
	s := limitServer(t, limit)
	var held []net.Conn
	for i := range limit {
		c, r := dialAPI(t, s)
		held = append(held, c)
		if resp, err := rawGet(c, r, true); err != nil || resp.StatusCode != 200 {
			t.Fatalf("connection %d: %v %v, want 200 (kept alive)", i, resp, err)
		}
	}
	extra, r := dialAPI(t, s) // the kernel completes it: it waits in the accept queue
	answered := make(chan error, 1)
	go func() {
		resp, err := rawGet(extra, r, true)
		if err == nil && resp.StatusCode != 200 {
			err = fmt.Errorf("status %d", resp.StatusCode)
		}
		answered <- err
	}()
	// A negative check needs a wait: 300 ms is ample for a loopback answer.
	select {
	case err := <-answered:
		t.Fatalf("connection %d was served (err %v) while %d were held", limit+1, err, limit)
	case <-time.After(300 * time.Millisecond):
	}
	held[0].Close()
	if err := <-answered; err != nil {
		t.Fatalf("once a slot was free: %v", err)
	}
}

// TestKeylessClientsKeepNoSlot: a request without the key is answered
// with "Connection: close" and the connection closed, so clients without
// the key cannot hold the API's connections between requests and lock
// the application's backend out.
func TestKeylessClientsKeepNoSlot(t *testing.T) {
	const limit = 4
	s := limitServer(t, limit)
	for i := range 3 * limit {
		c, r := dialAPI(t, s)
		resp, err := rawGet(c, r, false)
		if err != nil || resp.StatusCode != 401 || !resp.Close {
			t.Fatalf("keyless request %d: %v %v, want 401 and Connection: close", i, resp, err)
		}
		if _, err := r.ReadByte(); err != io.EOF {
			t.Fatalf("keyless connection %d: read after the 401: %v, want EOF (closed by the server)", i, err)
		}
	}
	c, r := dialAPI(t, s)
	if resp, err := rawGet(c, r, true); err != nil || resp.StatusCode != 200 {
		t.Fatalf("with the key, after %d keyless clients: %v %v, want 200", 3*limit, resp, err)
	}
}
