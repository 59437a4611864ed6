package status

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"net"
	"strings"
	"testing"
	"time"
)

// streamHandler emits one batch, waits for the test to see it arrive at
// the client, then emits a second.
type streamHandler struct {
	fakeHandler
	seen chan struct{}
}

func (h *streamHandler) Connections(ctx context.Context, emit func([]Connection) error) error {
	if err := emit([]Connection{{UID: 7, Nick: "first"}}); err != nil {
		return err
	}
	select {
	case <-h.seen:
	case <-ctx.Done():
		return errors.New("the first batch never reached the client: the listing is not streamed")
	}
	return emit([]Connection{{UID: 3, Nick: "second"}})
}

// TestConnectionsStreamed checks that the daemon writes a connections
// listing as the Handler yields it: the client reads the first batch while
// the Handler still holds back the second. A server that builds the whole
// reply first would wait forever here, and hold every row of every
// listing at once (16 concurrent listings of 15,000 connections took a
// daemon from 64 to 194 MB).
func TestConnectionsStreamed(t *testing.T) {
	h := &streamHandler{seen: make(chan struct{})}
	_, path := startServer(t, h, nil)
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write([]byte(`{"cmd":"connections"}` + "\n")); err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(c)
	var got strings.Builder
	for !strings.Contains(got.String(), `"nick":"first"`) {
		b, err := r.ReadByte()
		if err != nil {
			t.Fatalf("read: %v; got %q before the second batch was emitted", err, got.String())
		}
		got.WriteByte(b)
	}
	close(h.seen)
	rest, err := r.ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	var resp response
	if err := json.Unmarshal([]byte(got.String()+rest), &resp); err != nil {
		t.Fatalf("reply %q: %v", got.String()+rest, err)
	}
	if !resp.OK || resp.Connections == nil || len(resp.Connections.Connections) != 2 {
		t.Fatalf("got %+v, want ok and 2 rows", resp)
	}
	// QueryConnections sorts what arrives in any order.
	h2 := &streamHandler{seen: make(chan struct{})}
	close(h2.seen)
	_, path2 := startServer(t, h2, nil)
	cs, err := QueryConnections(testCtx(t), path2)
	if err != nil || len(cs) != 2 || cs[0].UID != 3 || cs[1].UID != 7 {
		t.Fatalf("QueryConnections: got %+v, %v; want uids 3, 7", cs, err)
	}
}

// failingHandler fails part way through a listing.
type failingHandler struct{ fakeHandler }

func (h *failingHandler) Connections(ctx context.Context, emit func([]Connection) error) error {
	_ = emit([]Connection{{UID: 1}})
	return errors.New("event loop 3 did not answer")
}

// TestConnectionsFailurePartWay checks that a listing that fails after
// rows went out is reported as a failure, not as a short listing.
func TestConnectionsFailurePartWay(t *testing.T) {
	_, path := startServer(t, &failingHandler{}, nil)
	_, err := QueryConnections(testCtx(t), path)
	var re *RemoteError
	if !errors.As(err, &re) || !strings.Contains(re.Message, "event loop 3 did not answer") {
		t.Fatalf("got %v, want the daemon's error", err)
	}
}

// TestExpiredRequestDropped checks that the daemon does not act on a
// request whose deadline passed before it got to it: a reload the CLI
// reported as failed must not happen afterwards.
func TestExpiredRequestDropped(t *testing.T) {
	h := &fakeHandler{snap: testSnapshot()}
	_, path := startServer(t, h, nil)
	for _, cmd := range []string{"reload", "stop", "status", "connections"} {
		c, err := net.Dial("unix", path)
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(10 * time.Second))
		past := time.Now().Add(-time.Millisecond).UTC().Format(time.RFC3339Nano)
		if _, err := c.Write([]byte(`{"cmd":"` + cmd + `","deadline":"` + past + `"}` + "\n")); err != nil {
			t.Fatal(err)
		}
		line, err := bufio.NewReader(c).ReadString('\n')
		c.Close()
		if err != nil || !strings.Contains(line, "request expired") {
			t.Errorf("%s past its deadline: got %q, %v; want request expired", cmd, line, err)
		}
	}
	h.mu.Lock()
	stops := len(h.stops)
	h.mu.Unlock()
	if n := h.reloads.Load(); n != 0 || stops != 0 {
		t.Errorf("expired requests ran %d reloads and %d stops, want none", n, stops)
	}
	// A deadline ahead is honoured, and the client sends its context's.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := Reload(ctx, path); err != nil || h.reloads.Load() != 1 {
		t.Errorf("Reload with a deadline ahead: %v, %d reloads; want it done once", err, h.reloads.Load())
	}
}
