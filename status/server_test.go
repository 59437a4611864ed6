package status

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"os"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// fakeHandler is a Handler whose answers the test sets and whose calls it
// records. Connections and Reload wait on block, if set, after signalling
// entered.
type fakeHandler struct {
	snap      Snapshot
	conns     []Connection
	reloadErr error

	entered chan struct{} // if set, receives one value per Connections or Reload call
	block   chan struct{} // if set, Connections and Reload wait for it to close (Connections also for ctx)

	inFlight, maxInFlight atomic.Int32
	reloads               atomic.Int32

	mu    sync.Mutex
	stops []time.Duration
}

func (h *fakeHandler) Status() Snapshot { return h.snap }

// enter counts a call in flight until the returned func.
func (h *fakeHandler) enter() func() {
	n := h.inFlight.Add(1)
	for {
		m := h.maxInFlight.Load()
		if n <= m || h.maxInFlight.CompareAndSwap(m, n) {
			break
		}
	}
	return func() { h.inFlight.Add(-1) }
}

func (h *fakeHandler) Connections(ctx context.Context, emit func([]Connection) error) error {
	defer h.enter()()
	if h.entered != nil {
		h.entered <- struct{}{}
	}
	if h.block != nil {
		select {
		case <-h.block:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	for _, c := range h.conns { // one batch per row
		if err := emit([]Connection{c}); err != nil {
			return err
		}
	}
	return nil
}

func (h *fakeHandler) Reload() error {
	defer h.enter()()
	h.reloads.Add(1)
	if h.entered != nil {
		h.entered <- struct{}{}
	}
	if h.block != nil {
		<-h.block
	}
	return h.reloadErr
}

func (h *fakeHandler) Stop(timeout time.Duration) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.stops = append(h.stops, timeout)
}

// socketPath returns a fresh socket path in a test's temporary folder.
func socketPath(t testing.TB) string {
	t.Helper()
	return SocketPath(t.TempDir())
}

// startServer serves h on a fresh socket with the given options (the
// defaults if nil) and closes it when the test ends.
func startServer(t testing.TB, h Handler, opt *options) (*Server, string) {
	t.Helper()
	o := defaultOptions()
	if opt != nil {
		o = *opt
	}
	path := socketPath(t)
	s, err := listen(path, h, o)
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s, path
}

// testCtx returns a context that ends with the test or after 10s.
func testCtx(t testing.TB) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// exchange sends raw bytes on a new connection to path, closes the
// sending side and returns everything the server wrote back.
func exchange(t testing.TB, path string, send []byte) []byte {
	t.Helper()
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	// The server may refuse a long line and hang up before reading it all.
	if _, err := c.Write(send); err != nil && !errors.Is(err, syscall.EPIPE) && !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("write: %v", err)
	}
	c.(*net.UnixConn).CloseWrite()
	got, err := io.ReadAll(c)
	if err != nil && !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("read: %v", err)
	}
	return got
}

// decodeReply decodes one reply line, which must end in "\n".
func decodeReply(t testing.TB, b []byte) response {
	t.Helper()
	if !bytes.HasSuffix(b, []byte("\n")) || bytes.Count(b, []byte("\n")) != 1 {
		t.Fatalf("reply %q is not one line", b)
	}
	var r response
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatalf("decode reply %q: %v", b, err)
	}
	return r
}

// receive returns the next value from ch, failing the test if none comes
// within 10s, so that a broken server fails a test instead of hanging it.
func receive[T any](t testing.TB, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(10 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
	}
	var zero T
	return zero
}

// mustQuery checks that the server at path still answers.
func mustQuery(t testing.TB, path string, want Snapshot) {
	t.Helper()
	got, err := Query(testCtx(t), path)
	if err != nil {
		t.Fatalf("Query: %v", err)
	}
	if got.Daemon.PID != want.Daemon.PID {
		t.Fatalf("Query: got pid %d, want %d", got.Daemon.PID, want.Daemon.PID)
	}
}

func testSnapshot() Snapshot {
	return Snapshot{
		Daemon: Daemon{
			PID: 4242, Version: "0.1.0", GoVersion: "go1.26.8", Config: "/x/config.ini",
			Started:       time.Date(2026, 11, 21, 16, 0, 0, 0, time.FixedZone("CET", 3600)),
			UptimeSeconds: 61.5, RSSBytes: 1 << 20, HeapBytes: 1 << 19, Goroutines: 9,
			Members: 2, OpenFiles: 12, MaxOpenFiles: 20000,
		},
		Instances: []Instance{{
			Name: "FastWS-Telnet", Protocol: "telnet", Listen: "127.0.0.1:19910", Reactors: 2, Connections: 2, ConnectionsTotal: 3,
			Listening: true, BroadcastDeliveries: 4, ClosedByReason: map[string]uint64{"client_quit": 1, "idle": 0},
			ProtocolErrors: map[string]uint64{"line_too_long": 0},
		}},
	}
}

func testConnections() []Connection {
	return []Connection{
		{UID: 1, Nick: "alice", Instance: "FastWS-Telnet", Reactor: 0, Remote: "127.0.0.1:5000", Since: time.Date(2026, 11, 21, 15, 1, 0, 0, time.UTC), MessagesIn: 3},
		{UID: 2, Instance: "FastWS-Telnet", Reactor: 1, Remote: "127.0.0.1:5001", Since: time.Date(2026, 11, 21, 15, 2, 0, 0, time.UTC), BytesQueued: 10},
	}
}

func TestRoundTrip(t *testing.T) {
	h := &fakeHandler{snap: testSnapshot(), conns: testConnections()}
	_, path := startServer(t, h, nil)
	ctx := testCtx(t)

	t.Run("status", func(t *testing.T) {
		got, err := Query(ctx, path)
		if err != nil {
			t.Fatalf("Query: %v", err)
		}
		want := h.snap
		if !got.Daemon.Started.Equal(want.Daemon.Started) {
			t.Errorf("got started %v, want %v", got.Daemon.Started, want.Daemon.Started)
		}
		if got.Daemon.Started.Location() != time.UTC {
			t.Errorf("got started in %v, want UTC", got.Daemon.Started.Location())
		}
		got.Daemon.Started, want.Daemon.Started = time.Time{}, time.Time{}
		if got.Daemon != want.Daemon {
			t.Errorf("got daemon %+v, want %+v", got.Daemon, want.Daemon)
		}
		if !reflect.DeepEqual(got.Instances, want.Instances) {
			t.Errorf("got instances %+v, want %+v", got.Instances, want.Instances)
		}
	})
	t.Run("connections", func(t *testing.T) {
		got, err := QueryConnections(ctx, path)
		if err != nil {
			t.Fatalf("QueryConnections: %v", err)
		}
		want := h.conns
		if len(got) != len(want) {
			t.Fatalf("got %d connections, want %d", len(got), len(want))
		}
		for i := range want {
			if !got[i].Since.Equal(want[i].Since) {
				t.Errorf("connection %d: got since %v, want %v", i, got[i].Since, want[i].Since)
			}
			g, w := got[i], want[i]
			g.Since, w.Since = time.Time{}, time.Time{}
			if !reflect.DeepEqual(g, w) {
				t.Errorf("connection %d: got %+v, want %+v", i, g, w)
			}
		}
	})
	t.Run("reload", func(t *testing.T) {
		before := h.reloads.Load()
		if err := Reload(ctx, path); err != nil {
			t.Fatalf("Reload: %v", err)
		}
		if got, want := h.reloads.Load()-before, int32(1); got != want {
			t.Errorf("got %d reloads, want %d", got, want)
		}
	})
	t.Run("stop", func(t *testing.T) {
		for _, d := range []time.Duration{3 * time.Second, 0, 1500 * time.Millisecond} {
			if err := Stop(ctx, path, d); err != nil {
				t.Fatalf("Stop(%s): %v", d, err)
			}
		}
		h.mu.Lock()
		defer h.mu.Unlock()
		want := []time.Duration{3 * time.Second, 0, 1500 * time.Millisecond}
		if len(h.stops) != len(want) {
			t.Fatalf("got stops %v, want %v", h.stops, want)
		}
		for i := range want {
			if h.stops[i] != want[i] {
				t.Errorf("got stops %v, want %v", h.stops, want)
			}
		}
	})
}

func TestReloadErrorReachesClientVerbatim(t *testing.T) {
	msg := "/x/config.ini is invalid, the running config stays:\n  config.ini: [instance.telnet] port = \"abc\": not a port (1-65535)"
	h := &fakeHandler{snap: testSnapshot(), reloadErr: errors.New(msg)}
	_, path := startServer(t, h, nil)
	err := Reload(testCtx(t), path)
	var re *RemoteError
	if !errors.As(err, &re) {
		t.Fatalf("Reload: got %v (%T), want a *RemoteError", err, err)
	}
	if err.Error() != msg {
		t.Errorf("got error %q, want %q", err.Error(), msg)
	}
}

func TestEmptyListsAreArrays(t *testing.T) {
	h := &fakeHandler{snap: Snapshot{Daemon: Daemon{PID: 1}}}
	_, path := startServer(t, h, nil)
	tests := []struct {
		name, req, want string
	}{
		{"status", `{"cmd":"status"}`, `"instances":[]`},
		{"connections", `{"cmd":"connections"}`, `"connections":{"connections":[]}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := exchange(t, path, []byte(tt.req+"\n"))
			if !bytes.Contains(got, []byte(tt.want)) {
				t.Errorf("got %s, want it to contain %s", got, tt.want)
			}
		})
	}
	cs, err := QueryConnections(testCtx(t), path)
	if err != nil || cs == nil || len(cs) != 0 {
		t.Errorf("QueryConnections: got %#v, %v; want an empty, non-nil slice", cs, err)
	}
}

func TestBadRequests(t *testing.T) {
	h := &fakeHandler{snap: testSnapshot()}
	_, path := startServer(t, h, nil)
	pad := func(n int) string { return `{"cmd":"status"}` + strings.Repeat(" ", n-len(`{"cmd":"status"}`)) }
	tests := []struct {
		name string
		send string
		want string // in the error text
	}{
		{"garbage", "hello\n", "bad request"},
		{"binary", "\x00\xff\x1b[2J\n", "bad request"},
		{"array", `["status"]` + "\n", "bad request"},
		{"trailing data", `{"cmd":"status"} {}` + "\n", "bad request"},
		{"no cmd", "{}\n", `no "cmd" (commands: status, connections, reload, stop)`},
		{"null", "null\n", `no "cmd"`},
		{"unknown cmd", `{"cmd":"restart"}` + "\n", `unknown command "restart" (commands: status, connections, reload, stop)`},
		{"cmd of wrong type", `{"cmd":1}` + "\n", "bad request"},
		{"timeout on status", `{"cmd":"status","timeout":"1s"}` + "\n", "timeout applies to stop only"},
		{"bad timeout", `{"cmd":"stop","timeout":"soon"}` + "\n", `timeout "soon" is not a duration`},
		{"negative timeout", `{"cmd":"stop","timeout":"-1s"}` + "\n", `timeout "-1s" is not a duration`},
		{"line one byte too long", pad(maxRequest+1) + "\n", "request line too long (max 4096 bytes)"},
		{"huge line", strings.Repeat("a", 1<<20) + "\n", "request line too long"},
		{"huge line without newline", strings.Repeat("a", 1<<20), "request line too long"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := decodeReply(t, exchange(t, path, []byte(tt.send)))
			if r.OK {
				t.Fatalf("got ok:true, want ok:false")
			}
			if !strings.Contains(r.Error, tt.want) {
				t.Errorf("got error %q, want it to contain %q", r.Error, tt.want)
			}
			mustQuery(t, path, h.snap)
		})
	}
	if got := len(h.stops); got != 0 {
		t.Errorf("got %d stops from bad requests, want 0", got)
	}
}

func TestGoodRequestShapes(t *testing.T) {
	h := &fakeHandler{snap: testSnapshot()}
	_, path := startServer(t, h, nil)
	tests := []struct {
		name string
		send string
	}{
		{"longest line", strings.Repeat(" ", maxRequest-len(`{"cmd":"status"}`)) + `{"cmd":"status"}` + "\n"},
		{"crlf", `{"cmd":"status"}` + "\r\n"},
		{"no newline", `{"cmd":"status"}`},
		{"unknown field", `{"cmd":"status","client":"fastws 0.2"}` + "\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := decodeReply(t, exchange(t, path, []byte(tt.send)))
			if !r.OK || r.Status == nil || r.Status.Daemon.PID != h.snap.Daemon.PID {
				t.Errorf("got %+v, want ok:true with the status", r)
			}
		})
	}
}

func TestSilentClients(t *testing.T) {
	h := &fakeHandler{snap: testSnapshot()}
	opt := defaultOptions()
	opt.requestTimeout = 50 * time.Millisecond
	_, path := startServer(t, h, &opt)

	t.Run("hangs up at once", func(t *testing.T) {
		if got := exchange(t, path, nil); len(got) != 0 {
			t.Errorf("got reply %q, want none", got)
		}
		mustQuery(t, path, h.snap)
	})
	t.Run("sends nothing and waits", func(t *testing.T) {
		c, err := net.Dial("unix", path)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		got, err := io.ReadAll(c) // returns when the server gives up on us
		if err != nil || len(got) != 0 {
			t.Errorf("got %q, %v; want the server to hang up without a reply", got, err)
		}
		mustQuery(t, path, h.snap)
	})
}

func TestConcurrentClients(t *testing.T) {
	h := &fakeHandler{snap: testSnapshot(), conns: testConnections()}
	_, path := startServer(t, h, nil)
	ctx := testCtx(t)
	const n = 60
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			var err error
			switch i % 3 {
			case 0:
				_, err = Query(ctx, path)
			case 1:
				var cs []Connection
				cs, err = QueryConnections(ctx, path)
				if err == nil && len(cs) != len(h.conns) {
					err = errors.New("wrong connection count")
				}
			case 2:
				err = Reload(ctx, path)
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if got, want := h.reloads.Load(), int32(n/3); got != want {
		t.Errorf("got %d reloads, want %d", got, want)
	}
}

func TestAtMostMaxClients(t *testing.T) {
	h := &fakeHandler{
		snap:    testSnapshot(),
		entered: make(chan struct{}, 2*maxClients),
		block:   make(chan struct{}),
	}
	_, path := startServer(t, h, nil)
	ctx := testCtx(t)
	const n = maxClients + 4
	errs := make(chan error, n)
	for range n {
		go func() { errs <- Reload(ctx, path) }()
	}
	for i := range maxClients {
		select {
		case <-h.entered:
		case <-ctx.Done():
			t.Fatalf("%d of %d clients reached the handler", i, maxClients)
		}
	}
	// A negative can only be checked for a while: the 17th must not get in.
	select {
	case <-h.entered:
		t.Fatalf("got %d clients served at once, want at most %d", h.inFlight.Load(), maxClients)
	case <-time.After(50 * time.Millisecond):
	}
	close(h.block)
	for range n {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	if got := h.maxInFlight.Load(); got != maxClients {
		t.Errorf("got at most %d clients at once, want %d", got, maxClients)
	}
}

// TestAtMostMaxListings checks that connections listings, which hold
// rows, are made at most maxListings at a time, and the others wait for
// their turn rather than fail.
func TestAtMostMaxListings(t *testing.T) {
	h := &fakeHandler{
		snap:    testSnapshot(),
		conns:   testConnections(),
		entered: make(chan struct{}, 2*maxClients),
		block:   make(chan struct{}),
	}
	_, path := startServer(t, h, nil)
	ctx := testCtx(t)
	const n = maxListings + 3
	errs := make(chan error, n)
	for range n {
		go func() { _, err := QueryConnections(ctx, path); errs <- err }()
	}
	for i := range maxListings {
		select {
		case <-h.entered:
		case <-ctx.Done():
			t.Fatalf("%d of %d listings began", i, maxListings)
		}
	}
	select {
	case <-h.entered:
		t.Fatalf("got %d listings at once, want at most %d", h.inFlight.Load(), maxListings)
	case <-time.After(50 * time.Millisecond):
	}
	close(h.block)
	for range n {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	if got := h.maxInFlight.Load(); got != maxListings {
		t.Errorf("got at most %d listings at once, want %d", got, maxListings)
	}
}

func TestPeerCredentials(t *testing.T) {
	uids := make(chan int, 1)
	opt := defaultOptions()
	opt.allow = func(uid int) bool { uids <- uid; return false }
	h := &fakeHandler{snap: testSnapshot()}
	_, path := startServer(t, h, &opt)

	_, err := Query(testCtx(t), path)
	var re *RemoteError
	if !errors.As(err, &re) || !strings.Contains(err.Error(), "permission denied") {
		t.Errorf("got %v, want a *RemoteError saying permission denied", err)
	}
	if got, want := receive(t, uids, "the peer's uid"), os.Geteuid(); got != want {
		t.Errorf("got peer uid %d, want %d", got, want)
	}
}

func TestOwnerOrRoot(t *testing.T) {
	allow := ownerOrRoot(1000)
	tests := []struct {
		name string
		uid  int
		want bool
	}{
		{"owner", 1000, true},
		{"root", 0, true},
		{"other user", 1001, false},
		{"nobody", 65534, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := allow(tt.uid); got != tt.want {
				t.Errorf("allow(%d): got %v, want %v", tt.uid, got, tt.want)
			}
		})
	}
}
