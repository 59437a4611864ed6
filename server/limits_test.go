package server

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gobwas/ws"
)

// These tests drive the per-connection and per-instance limits of
// config.Limits through real sockets: maxSendBuffer, idleTimeout, the
// websocket keepalive, maxConnections, maxConnectionsPerIP and
// messagesPerSecond/messageBurst.

// openConns returns the connections s has open, over every instance.
func openConns(s *Server) int64 {
	var n int64
	for _, st := range s.Stats().Instances {
		n += st.Connections
	}
	return n
}

// isClosedErr reports whether err from a read means the peer closed the
// connection: a FIN, or an RST when it closed with our bytes unread.
func isClosedErr(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET)
}

// joinedRE matches a join notice.
var joinedRE = regexp.MustCompile(`^\* uid (\d+) joined$`)

func TestSlowConsumerIsDisconnected(t *testing.T) {
	const (
		lines     = 300
		lineSize  = 16 << 10
		sendBuf   = 256 << 10
		heapBound = 64 << 20 // HeapInuse of this whole test process, clients included
		// The sender keeps at most window lines ahead of the slowest
		// reader, well under sendBuf: a reader the scheduler leaves
		// waiting is never taken for a slow consumer, whatever the load.
		window = 4
	)
	ic := telnetInstance("a", 2)
	ic.Limits.MaxSendBuffer = sendBuf
	ic.Limits.MessagesPerSecond = 0
	ic.Limits.BytesPerSecond = 0
	s := startServer(t, ic)
	addr := s.Addrs()["a"]

	// Three readers and the sender, which reads its own broadcasts too.
	var all []*client
	for k := 0; k < 4; k++ {
		c := dial(t, addr)
		for _, old := range all {
			old.expect(fmt.Sprintf("* uid %d joined", c.uid))
		}
		all = append(all, c)
	}
	sender := all[3]

	// The slow consumer never reads, and its receive buffer is small, so
	// what the server writes to it piles up in the daemon.
	slow := dialWith(t, smallRcvBuf(), addr)
	var slowUID uint64
	for _, c := range all {
		m := joinedRE.FindStringSubmatch(c.line())
		if m == nil {
			t.Fatalf("uid %d: want the slow consumer's join notice", c.uid)
		}
		slowUID, _ = strconv.ParseUint(m[1], 10, 64)
	}

	body := func(k int) string {
		head := fmt.Sprintf("burst %03d ", k)
		return head + strings.Repeat(string(rune('a'+k%26)), lineSize-len(head))
	}
	runtime.GC()
	var base runtime.MemStats
	runtime.ReadMemStats(&base)

	// Sample the heap while the burst is on.
	stop := make(chan struct{})
	var peak uint64
	var samples int
	var wg sync.WaitGroup
	wg.Go(func() {
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			peak = max(peak, ms.HeapInuse)
			samples++
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	})

	errs := make(chan error, len(all)+1)
	prog := newProgress(len(all))
	for r, c := range all {
		wg.Go(func() {
			errs <- readBurst(c, sender.uid, lines, body, slowUID, func(k int) { prog.set(r, k) })
			prog.set(r, lines) // done, or failed: the sender waits no more for it
		})
	}
	wg.Go(func() {
		var b []byte
		for k := 0; k < lines; k++ {
			prog.waitAll(k - window)
			b = append(append(b[:0], body(k)...), '\n')
			if _, err := sender.conn.Write(b); err != nil {
				errs <- fmt.Errorf("sender: write line %d: %v", k, err)
				return
			}
		}
	})
	done := make(chan struct{})
	go func() {
		for range all {
			if err := <-errs; err != nil {
				t.Error(err)
			}
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(3 * testTimeout):
		t.Error("readers still reading after 30s")
		for _, c := range append(all, slow) {
			c.conn.Close()
		}
		<-done
	}
	close(stop)
	wg.Wait()
	select {
	case err := <-errs:
		t.Error(err)
	default:
	}
	if t.Failed() {
		t.FailNow()
	}

	t.Logf("heap in use: %d KiB before the burst, peak %d KiB over %d samples", base.HeapInuse>>10, peak>>10, samples)
	if peak > heapBound {
		t.Errorf("heap in use peaked at %d MiB during the burst, want under %d MiB", peak>>20, heapBound>>20)
	}
	st := s.Stats().Instances[0]
	if st.SlowConsumers != 1 || st.ClosedByReason["slow_consumer"] != 1 {
		t.Errorf("got %d slow consumers, %d closed as slow_consumer; want 1 and 1", st.SlowConsumers, st.ClosedByReason["slow_consumer"])
	}
	if st.Connections != int64(len(all)) {
		t.Errorf("got %d connections open, want %d", st.Connections, len(all))
	}

	// The slow consumer got far less than the burst, then the close.
	_ = slow.conn.SetReadDeadline(time.Now().Add(testTimeout))
	n, err := io.Copy(io.Discard, slow.r)
	if err != nil && !isClosedErr(err) {
		t.Errorf("slow consumer: after %d bytes: %v, want the connection closed", n, err)
	}
	if n >= lines*lineSize {
		t.Errorf("slow consumer read %d bytes, the whole burst: it was not slow", n)
	}

	// The room is unaffected.
	all[0].send("after the burst\n")
	for _, c := range all {
		c.expect(fmt.Sprintf("uid %d: after the burst", all[0].uid))
	}
}

// progress counts the burst lines each reader has read, for the sender
// to wait on.
type progress struct {
	mu   sync.Mutex
	cond *sync.Cond
	read []int
}

func newProgress(readers int) *progress {
	p := &progress{read: make([]int, readers)}
	p.cond = sync.NewCond(&p.mu)
	return p
}

// set records that reader r has read k lines.
func (p *progress) set(r, k int) {
	p.mu.Lock()
	p.read[r] = k
	p.mu.Unlock()
	p.cond.Broadcast()
}

// waitAll waits until every reader has read at least k lines.
func (p *progress) waitAll(k int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for slices.Min(p.read) < k {
		p.cond.Wait()
	}
}

// readBurst reads c's lines until it has the n burst lines of uid from in
// order, and the leave notice of gone, anywhere among them; read(k) is
// told of each burst line. It returns the first line that is neither, or
// the read error. It runs on its own goroutine and so does not use c's
// helpers, which fail the test.
func readBurst(c *client, from uint64, n int, body func(int) string, gone uint64, read func(int)) error {
	left := fmt.Sprintf("* uid %d left", gone)
	prefix := fmt.Sprintf("uid %d: ", from)
	sawLeft := false
	_ = c.conn.SetReadDeadline(time.Now().Add(3 * testTimeout))
	for k := 0; k < n || !sawLeft; {
		s, err := c.r.ReadString('\n')
		if err != nil {
			return fmt.Errorf("uid %d: after %d of %d lines (leave notice seen: %v): %v", c.uid, k, n, sawLeft, err)
		}
		s = strings.TrimSuffix(s, "\r\n")
		switch {
		case s == left && !sawLeft:
			sawLeft = true
		case k < n && s == prefix+body(k):
			k++
			read(k)
			if k == n {
				// The close comes with the burst, not long after it.
				_ = c.conn.SetReadDeadline(time.Now().Add(testTimeout))
			}
		default:
			return fmt.Errorf("uid %d: got %q, want line %d of the burst or %q", c.uid, clip([]byte(s)), k, left)
		}
	}
	return nil
}

func TestIdleTimeoutClosesIdleTelnet(t *testing.T) {
	t.Parallel() // waits on timers; overlaps with the others
	// The active client talks every idle/4: it stays unless a loaded
	// machine holds it back for three quarters of a second.
	const idle = time.Second
	ic := telnetInstance("a", 2)
	ic.Limits.IdleTimeout = idle
	ic.Limits.MessagesPerSecond = 0
	ic.Limits.BytesPerSecond = 0
	s := startServer(t, ic)
	addr := s.Addrs()["a"]

	active := dial(t, addr)
	start := time.Now()
	quiet := dial(t, addr)
	active.expect(fmt.Sprintf("* uid %d joined", quiet.uid))

	// The quiet client's lines and close, read on their own goroutine
	// while the active one talks.
	type outcome struct {
		lines []string
		err   error
		after time.Duration
	}
	res := make(chan outcome, 1)
	go func() {
		var o outcome
		_ = quiet.conn.SetReadDeadline(time.Now().Add(testTimeout))
		for {
			l, err := quiet.r.ReadString('\n')
			if err != nil {
				o.err, o.after = err, time.Since(start)
				res <- o
				return
			}
			o.lines = append(o.lines, l)
		}
	}()

	// Talk every idle/4 for two idle periods.
	tick := time.NewTicker(idle / 4)
	defer tick.Stop()
	sawLeft := false
	for k := 0; time.Since(start) < 2*idle; k++ {
		<-tick.C
		msg := fmt.Sprintf("tick %d", k)
		active.send(msg + "\n")
		for {
			l := active.line()
			if l == fmt.Sprintf("* uid %d left", quiet.uid) && !sawLeft {
				sawLeft = true
				continue
			}
			if l != fmt.Sprintf("uid %d: %s", active.uid, msg) {
				t.Fatalf("active: got %q, want its own %q", l, msg)
			}
			break
		}
	}

	// The quiet client heard the active one, then was told why it closes.
	o := <-res
	const notice = "! idle for 1s, closing\r\n"
	ok := len(o.lines) > 0 && o.lines[len(o.lines)-1] == notice && errors.Is(o.err, io.EOF)
	for k, l := range o.lines[:max(len(o.lines)-1, 0)] {
		ok = ok && l == fmt.Sprintf("uid %d: tick %d\r\n", active.uid, k)
	}
	if !ok {
		t.Errorf("idle client: got lines %q then %v, want the active client's ticks, %q, then EOF", o.lines, o.err, notice)
	}
	if o.after < idle || o.after > idle+2*time.Second {
		t.Errorf("idle client closed %v after connecting, want %v (plus a tick)", o.after, idle)
	}
	if !sawLeft {
		active.expect(fmt.Sprintf("* uid %d left", quiet.uid))
	}
	active.sync()
	st := s.Stats().Instances[0]
	if st.ClosedByReason["idle"] != 1 || st.Connections != 1 {
		t.Errorf("got %d closed as idle and %d open, want 1 and 1 (the active client)", st.ClosedByReason["idle"], st.Connections)
	}
}

// wsKeep reads c's frames, answering each ping with a pong, until a text
// frame equal to want arrives (want != "") or a ping arrives after until
// (want == ""). Join and leave notices are skipped; anything else is an
// error. It returns how many pings it answered. It does not fail the test,
// so that it can run on its own goroutine.
func wsKeep(c *wsRaw, until time.Time, want string) (int, error) {
	pings := 0
	for {
		_ = c.conn.SetReadDeadline(time.Now().Add(testTimeout))
		h, err := ws.ReadHeader(c.r)
		if err != nil {
			return pings, fmt.Errorf("uid %d: read header: %v", c.uid, err)
		}
		p := make([]byte, h.Length)
		if _, err := io.ReadFull(c.r, p); err != nil {
			return pings, fmt.Errorf("uid %d: read payload: %v", c.uid, err)
		}
		switch {
		case h.OpCode == ws.OpPing:
			pings++
			_ = c.conn.SetWriteDeadline(time.Now().Add(testTimeout))
			if _, err := c.conn.Write(clientFrame(true, 0, ws.OpPong, p)); err != nil {
				return pings, fmt.Errorf("uid %d: write pong: %v", c.uid, err)
			}
			if want == "" && time.Now().After(until) {
				return pings, nil
			}
		case h.OpCode == ws.OpText && presenceRE.Match(p):
		case h.OpCode == ws.OpText && want != "" && string(p) == want:
			return pings, nil
		default:
			return pings, fmt.Errorf("uid %d: got frame %v %q, want a ping or %q", c.uid, h.OpCode, clip(p), want)
		}
	}
}

func TestWSKeepalive(t *testing.T) {
	t.Parallel() // waits on timers; overlaps with the others
	// The live client must answer each ping within timeout: a second
	// leaves room for a loaded machine to schedule it late.
	const interval, timeout = 200 * time.Millisecond, time.Second
	ic := wsInstance("ws", 2)
	ic.Limits.PingInterval = interval
	ic.Limits.PongTimeout = timeout
	s := startServer(t, ic)
	addr := s.Addrs()["ws"]

	alive := wsDial(t, addr)
	type result struct {
		pings int
		err   error
	}
	res := make(chan result, 1)
	until := time.Now().Add(5*interval + timeout)
	go func() {
		n, err := wsKeep(alive, until, "")
		res <- result{n, err}
	}()

	// A client that reads but never answers: a ping, then 1001, then EOF.
	start := time.Now()
	mute := wsDial(t, addr)
	h, p := mute.readFrame()
	pingAt := time.Since(start)
	if h.OpCode != ws.OpPing || len(p) != 0 {
		t.Fatalf("mute: got frame %v %q, want an empty ping", h.OpCode, p)
	}
	if pingAt < interval {
		t.Errorf("mute: ping %v after connecting, want no sooner than pingInterval %v", pingAt, interval)
	}
	h, p = mute.readFrame()
	closeAt := time.Since(start)
	if h.OpCode != ws.OpClose || len(p) < 2 || binary.BigEndian.Uint16(p) != uint16(ws.StatusGoingAway) || string(p[2:]) != "ping timeout" {
		t.Fatalf("mute: got frame %v %q, want close 1001 \"ping timeout\"", h.OpCode, p)
	}
	// The server sent the ping a moment before the client read it.
	if wait := closeAt - pingAt; wait < timeout-50*time.Millisecond {
		t.Errorf("mute: closed %v after its ping, want pongTimeout %v", wait, timeout)
	}
	mute.expectEOF()

	r := <-res
	if r.err != nil {
		t.Fatalf("alive: %v", r.err)
	}
	// One ping per interval of silence: at least one a second.
	if r.pings < 3 {
		t.Errorf("alive: answered %d pings in %v, want at least 3", r.pings, time.Since(start))
	}
	tag := "still here"
	alive.write(clientFrame(true, 0, ws.OpText, []byte(tag)))
	if _, err := wsKeep(alive, time.Time{}, fmt.Sprintf("uid %d: %s", alive.uid, tag)); err != nil {
		t.Fatalf("alive after %v: %v", time.Since(start), err)
	}
	st := s.Stats().Instances[0]
	if st.ClosedByReason["ping_timeout"] != 1 || st.Connections != 1 {
		t.Errorf("got %d closed as ping_timeout, %d open; want 1 and 1", st.ClosedByReason["ping_timeout"], st.Connections)
	}
}

// dialWelcomed connects to addr until a connection is welcomed rather than
// refused with refusal: the server frees a slot when it has handled a
// close, a moment after the client's.
func dialWelcomed(tb testing.TB, d *net.Dialer, addr, refusal string) *client {
	tb.Helper()
	deadline := time.Now().Add(testTimeout)
	for {
		c := dialWith(tb, d, addr)
		line := c.line()
		if m := welcomeRE.FindStringSubmatch(line); m != nil {
			c.uid, _ = strconv.ParseUint(m[1], 10, 64)
			return c
		}
		if line != refusal {
			tb.Fatalf("got %q, want the welcome or %q", line, refusal)
		}
		c.expectEOF()
		c.conn.Close()
		if time.Now().After(deadline) {
			tb.Fatalf("still refused %v after a slot freed", testTimeout)
		}
		time.Sleep(5 * time.Millisecond) // poll interval
	}
}

func TestMaxConnections(t *testing.T) {
	ic := telnetInstance("a", 2)
	ic.Limits.MaxConnections = 3
	s := startServer(t, ic)
	addr := s.Addrs()["a"]
	const full = "! server full (maxConnections 3), try again later"

	var cs []*client
	for k := 0; k < 3; k++ {
		cs = append(cs, dial(t, addr))
	}
	for k := 0; k < 2; k++ { // refused every time, not once
		c := dialRaw(t, addr)
		c.expect(full)
		c.expectEOF()
	}
	cs[0].conn.Close()
	cs[1].skipUntil(fmt.Sprintf("* uid %d left", cs[0].uid))
	c := dialWelcomed(t, &net.Dialer{Timeout: testTimeout}, addr, full)
	cs[1].skipUntil(fmt.Sprintf("* uid %d joined", c.uid))
	c.sync()

	// A refusal is counted once its connection is closed, which may come
	// after the client read EOF (the close lingers): wait for the count.
	waitFor(t, "3 open and at least 2 refusals counted", func() bool {
		st := s.Stats().Instances[0]
		return st.Connections == 3 && st.ProtocolErrors["refused"] >= 2 && int64(st.ConnectionsTotal-st.Closed()) == 3
	})
	st := s.Stats().Instances[0]
	if st.ClosedByReason["client_closed"] != 1 {
		t.Errorf("got closed by reason %v, want one client_closed", st.ClosedByReason)
	}
}

func TestMaxConnectionsPerIP(t *testing.T) {
	ic := telnetInstance("a", 2)
	ic.Limits.MaxConnectionsPerIP = 2
	s := startServer(t, ic)
	addr := s.Addrs()["a"]
	const tooMany = "! too many connections from 127.0.0.1 (maxConnectionsPerIP 2)"

	a := dial(t, addr)
	b := dial(t, addr)
	c := dialRaw(t, addr)
	c.expect(tooMany)
	c.expectEOF()

	// Another address has its own count.
	from2 := &net.Dialer{Timeout: testTimeout, LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}}
	other := dialWith(t, from2, addr).welcomed()
	other2 := dialWith(t, from2, addr).welcomed()
	dialWith(t, from2, addr).expect("! too many connections from 127.0.0.2 (maxConnectionsPerIP 2)")

	// A slot of 127.0.0.1 frees when one of its connections closes.
	a.conn.Close()
	other.skipUntil(fmt.Sprintf("* uid %d left", a.uid))
	again := dialWelcomed(t, &net.Dialer{Timeout: testTimeout}, addr, tooMany)
	b.skipUntil(fmt.Sprintf("* uid %d joined", again.uid))
	other2.sync()

	st := s.Stats().Instances[0]
	if st.ProtocolErrors["refused"] < 2 || st.Connections != 4 {
		t.Errorf("got %d refused, %d open; want at least 2 and 4", st.ProtocolErrors["refused"], st.Connections)
	}
	// A refusal is a close with its reason, as the metric and status say.
	if got, want := st.ClosedByReason["refused"], st.ProtocolErrors["refused"]; got != want {
		t.Errorf("got %d closed as refused, want %d (every refusal)", got, want)
	}
	if open := int64(st.ConnectionsTotal - st.Closed()); open != st.Connections {
		t.Errorf("got %d accepted less %d closed = %d, want the %d open", st.ConnectionsTotal, st.Closed(), open, st.Connections)
	}
}

func TestWSConnectionLimits(t *testing.T) {
	tests := []struct {
		name       string
		max, perIP int
		body       string
	}{
		{"maxConnections", 1, 0, "server full (maxConnections 1), try again later\n"},
		{"maxConnectionsPerIP", 0, 1, "too many connections from 127.0.0.1 (maxConnectionsPerIP 1)\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ic := wsInstance("ws", 1)
			ic.Limits.MaxConnections = tt.max
			ic.Limits.MaxConnectionsPerIP = tt.perIP
			s := startServer(t, ic)
			addr := s.Addrs()["ws"]
			first := wsDial(t, addr)

			c := wsDialRaw(t, addr, wsUpgradeRequest(""))
			resp := c.response()
			body, err := io.ReadAll(resp.Body)
			if err != nil || resp.StatusCode != http.StatusServiceUnavailable || string(body) != tt.body {
				t.Fatalf("got %d %q (%v), want 503 %q", resp.StatusCode, body, err, tt.body)
			}
			c.expectEOF()

			// The slot frees once the first client has gone.
			first.write(clientFrame(true, 0, ws.OpClose, closePayload(1000, "")))
			first.expectClose(1000)
			waitFor(t, "the closed connection to free its slot", func() bool { return openConns(s) == 0 })
			second := wsDial(t, addr)
			second.sync()
		})
	}
}

func TestMessageRateLimit(t *testing.T) {
	ic := telnetInstance("a", 2)
	ic.Limits.MessagesPerSecond = 5
	ic.Limits.MessageBurst = 5
	s := startServer(t, ic)
	addr := s.Addrs()["a"]

	other := dial(t, addr)
	marker := dial(t, addr)
	other.expect(fmt.Sprintf("* uid %d joined", marker.uid))
	sender := dial(t, addr)
	other.expect(fmt.Sprintf("* uid %d joined", sender.uid))
	marker.expect(fmt.Sprintf("* uid %d joined", sender.uid))

	// Ten lines at once: the burst of five goes out, the rest are refused.
	sender.send(numbered("m", 10))
	sender.expectNumbered(sender.uid, "m", 5)
	for k := 5; k < 10; k++ {
		sender.expect("! slow down")
	}
	// Everything the sender sent is handled; a line from someone else
	// comes after it.
	marker.send("marker\n")
	other.expectNumbered(sender.uid, "m", 5)
	other.expect(fmt.Sprintf("uid %d: marker", marker.uid))

	// Persistent flooding: the burst, ten refusals, then the close.
	flooder := dial(t, addr)
	other.expect(fmt.Sprintf("* uid %d joined", flooder.uid))
	flooder.send(numbered("f", 300))
	flooder.expectNumbered(flooder.uid, "f", 5)
	for k := 0; k < 10; k++ {
		flooder.expect("! slow down")
	}
	flooder.expectEOF()
	other.expectNumbered(flooder.uid, "f", 5)
	other.expect(fmt.Sprintf("* uid %d left", flooder.uid))

	other.send("unaffected\n")
	other.expect(fmt.Sprintf("uid %d: unaffected", other.uid))
	for _, c := range []*client{marker, sender} { // they have not read the flood
		c.skipUntil(fmt.Sprintf("uid %d: unaffected", other.uid))
	}
	st := s.Stats().Instances[0]
	if st.ClosedByReason["flood"] != 1 || st.Connections != 3 {
		t.Errorf("got %d closed as flood, %d open; want 1 and 3", st.ClosedByReason["flood"], st.Connections)
	}
}

// numbered returns n lines: prefix0, prefix1, and so on.
func numbered(prefix string, n int) string {
	var b strings.Builder
	for k := range n {
		fmt.Fprintf(&b, "%s%d\n", prefix, k)
	}
	return b.String()
}

// expectNumbered reads the first n lines of numbered(prefix, ...) as said
// by uid from.
func (c *client) expectNumbered(from uint64, prefix string, n int) {
	c.tb.Helper()
	for k := range n {
		c.expect(fmt.Sprintf("uid %d: %s%d", from, prefix, k))
	}
}

// Several sessions of one event loop that time out in the same tick are
// all told and closed: closing each one runs OnClose, and its leave
// notice, inside the tick's own pass over the closing sessions.
func TestIdleTimeoutClosesManyInOneTick(t *testing.T) {
	const idle = 200 * time.Millisecond
	ic := telnetInstance("a", 1)
	ic.Limits.IdleTimeout = idle
	s := startServer(t, ic)
	cs := make([]*client, 5)
	for k := range cs {
		cs[k] = dial(t, s.Addrs()["a"])
	}
	for k, c := range cs {
		// The join notices of those who came later, then the reason.
		for _, later := range cs[k+1:] {
			c.expect(fmt.Sprintf("* uid %d joined", later.uid))
		}
		// Those that timed out in an earlier tick, if any, left first.
		for {
			l := c.line()
			if l == "! idle for 200ms, closing" {
				break
			}
			if !strings.HasSuffix(l, " left") {
				t.Fatalf("uid %d: got %q, want leave notices, then the idle notice", c.uid, l)
			}
		}
		c.expectEOF()
	}
	// The loop is still serving: a newcomer talks.
	c := dial(t, s.Addrs()["a"])
	c.send("still here\n")
	c.expect(fmt.Sprintf("uid %d: still here", c.uid))
	if st := s.Stats().Instances[0]; st.ClosedByReason["idle"] != uint64(len(cs)) {
		t.Errorf("got %d closed as idle, want %d", st.ClosedByReason["idle"], len(cs))
	}
}

// TestAdmitTakesTheLastSlotOnce admits from many goroutines at once, as
// the event loops do: exactly maxConnections are admitted.
func TestAdmitTakesTheLastSlotOnce(t *testing.T) {
	for round := 0; round < 200; round++ {
		i := &instance{perIP: make(map[string]int), files: &files{reserveFrom: 1 << 62}}
		i.limits.MaxConnections = 3
		var admitted atomic.Int64
		var wg sync.WaitGroup
		start := make(chan struct{})
		for k := 0; k < 64; k++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				if i.admit(fmt.Sprintf("10.0.0.%d", k)) == "" {
					admitted.Add(1)
				}
			}()
		}
		close(start)
		wg.Wait()
		if got := admitted.Load(); got != 3 {
			t.Fatalf("round %d: admitted %d, want 3 (maxConnections)", round, got)
		}
	}
}
