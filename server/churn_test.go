package server

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"golang.org/x/sys/unix"
)

// TestChurnReturnsToBaseline opens and closes 20,000 connections, in every
// way a client can, across a telnet and a websocket instance, and checks
// that nothing stays behind: goroutines, file descriptors, connections and
// room members all return to where they were.
func TestChurnReturnsToBaseline(t *testing.T) {
	const (
		cycles  = 20_000
		workers = 8
		budget  = 180 * time.Second // about 8s alone; CI may share the cores
		settle  = 30 * time.Second  // polled: the usual case takes none of it
	)
	s := startServer(t, telnetInstance("t", 2), wsInstance("ws", 2))
	addrs := s.Addrs()
	d := churnDialer()

	// Warm up, so that what is made once (reactors, pools) is in the
	// baseline.
	for k := range 2 * churnKinds {
		if err := churnOnce(d, addrs, k); err != nil {
			t.Fatalf("warm-up: %v", err)
		}
	}
	waitFor(t, "the warm-up connections to close", func() bool { return openConns(s) == 0 })
	runtime.GC()
	baseG, baseFDs := liveGoroutines(), openFDs(t)
	var baseMem runtime.MemStats
	runtime.ReadMemStats(&baseMem)
	before := s.Stats()

	start := time.Now()
	deadline := start.Add(budget)
	var done atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Go(func() {
			for k := w; k < cycles; k += workers {
				if time.Now().After(deadline) {
					errs <- fmt.Errorf("worker %d: out of time after %d cycles", w, (k-w)/workers)
					return
				}
				if err := churnOnce(d, addrs, k); err != nil {
					errs <- fmt.Errorf("cycle %d: %v", k, err)
					return
				}
				done.Add(1)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	took := time.Since(start)
	t.Logf("%d connect/close cycles in %v (%.0f/s)", done.Load(), took.Round(time.Millisecond), float64(done.Load())/took.Seconds())
	if t.Failed() {
		t.FailNow()
	}

	// The server has seen every connection and every close. A client
	// that closed before the server said anything is done on its side
	// while the server may not have accepted it yet: wait for the
	// accepts too, not only for no connection to be open.
	waitFor(t, "every connection to be accepted and closed", func() bool {
		st := s.Stats()
		var accepted uint64
		for k, in := range st.Instances {
			accepted += in.ConnectionsTotal - before.Instances[k].ConnectionsTotal
		}
		return accepted == cycles && openConns(s) == 0 && st.Room.Members == 0
	})
	after := s.Stats()
	var total, closed, byReason uint64
	for k, in := range after.Instances {
		total += in.ConnectionsTotal - before.Instances[k].ConnectionsTotal
		closed += in.Closed() - before.Instances[k].Closed()
		for r, n := range in.ClosedByReason {
			byReason += n - before.Instances[k].ClosedByReason[r]
		}
		t.Logf("%s: closed by %v", in.Name, in.ClosedByReason)
	}
	if total != cycles || closed != cycles || byReason != cycles {
		t.Errorf("got %d accepted, %d closed, %d closes with a reason; want %d of each", total, closed, byReason, cycles)
	}
	if joined := after.Room.JoinedTotal - before.Room.JoinedTotal; joined != cycles {
		t.Errorf("got %d members joined, want %d (every cycle joins)", joined, cycles)
	}

	// Nothing is left behind.
	end := time.Now().Add(settle)
	var g, fds int
	for {
		runtime.GC()
		g, fds = liveGoroutines(), openFDs(t)
		if (g <= baseG && fds <= baseFDs) || time.Now().After(end) {
			break
		}
		time.Sleep(50 * time.Millisecond) // poll interval
	}
	if g > baseG || fds > baseFDs {
		t.Errorf("after %v: got %d goroutines and %d open files, want at most the baseline %d and %d",
			settle, g, fds, baseG, baseFDs)
		if g > baseG {
			buf := make([]byte, 1<<20)
			t.Logf("goroutines:\n%s", buf[:runtime.Stack(buf, true)])
		}
	}
	var mem runtime.MemStats
	runtime.ReadMemStats(&mem)
	t.Logf("baseline %d goroutines, %d files, heap %d KiB; after churn %d, %d, heap %d KiB",
		baseG, baseFDs, baseMem.HeapInuse>>10, g, fds, mem.HeapInuse>>10)
	if grown := int64(mem.HeapInuse) - int64(baseMem.HeapInuse); grown > 16<<20 {
		t.Errorf("heap in use grew by %d MiB over the churn, want it back near the baseline", grown>>20)
	}
}

// liveGoroutines counts this process's goroutines but the idle workers of
// gnet's goroutine pool (ants), which register connections with the event
// loops and linger 10 to 20 seconds after their last task. A worker that
// is stuck in a task has gnet in its stack and is counted.
func liveGoroutines() int {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	live := 0
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "ants/v2.(*goWorker).run") && !strings.Contains(g, "gnet/v2.") {
			continue
		}
		live++
	}
	return live
}

// churnKinds is the number of ways churnOnce connects and leaves.
const churnKinds = 5

// churnOnce connects to one of the instances and leaves in the k-th of
// churnKinds ways: telnet, after the welcome, at once, or by /quit;
// websocket, dropping the connection after the welcome or with the close
// handshake.
func churnOnce(d *net.Dialer, addrs map[string]string, k int) error {
	addr := addrs["t"]
	if kind := k % churnKinds; kind >= 3 {
		addr = addrs["ws"]
	}
	conn, err := d.Dial("tcp", addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(testTimeout))
	r := bufio.NewReaderSize(conn, 512)
	switch k % churnKinds {
	case 0: // telnet, gone after the welcome
		return readWelcome(r)
	case 1: // telnet, gone before the server has said anything
		return nil
	case 2: // telnet, /quit
		if err := readWelcome(r); err != nil {
			return err
		}
		if _, err := conn.Write([]byte("/quit\n")); err != nil {
			return err
		}
		return readToEOF(r)
	case 3: // websocket, gone after the welcome
		return wsHello(conn, r)
	default: // websocket, close handshake
		if err := wsHello(conn, r); err != nil {
			return err
		}
		if _, err := conn.Write(clientFrame(true, 0, ws.OpClose, closePayload(1000, ""))); err != nil {
			return err
		}
		for { // others' join and leave notices, then the close echo
			h, err := ws.ReadHeader(r)
			if err != nil || (h.OpCode != ws.OpClose && h.OpCode != ws.OpText) {
				return fmt.Errorf("want the close echo, got %v %v", h.OpCode, err)
			}
			if _, err := io.CopyN(io.Discard, r, h.Length); err != nil {
				return err
			}
			if h.OpCode == ws.OpClose {
				return readToEOF(r)
			}
		}
	}
}

func readWelcome(r *bufio.Reader) error {
	line, err := r.ReadString('\n')
	if err != nil {
		return fmt.Errorf("read welcome: %v", err)
	}
	line = ungreet(line)
	if !welcomeRE.MatchString(line) {
		return fmt.Errorf("got %q, want the welcome", line)
	}
	return nil
}

// wsHello upgrades conn and reads the welcome frame.
func wsHello(conn net.Conn, r *bufio.Reader) error {
	if _, err := conn.Write([]byte(wsUpgradeRequest(""))); err != nil {
		return err
	}
	resp, err := http.ReadResponse(r, nil)
	if err != nil {
		return fmt.Errorf("read response: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSwitchingProtocols {
		return fmt.Errorf("got status %d, want 101", resp.StatusCode)
	}
	h, err := ws.ReadHeader(r)
	if err != nil {
		return fmt.Errorf("read welcome: %v", err)
	}
	p := make([]byte, h.Length)
	if _, err := io.ReadFull(r, p); err != nil {
		return fmt.Errorf("read welcome: %v", err)
	}
	if h.OpCode != ws.OpText || !welcomeRE.Match(p) {
		return fmt.Errorf("got %v %q, want the welcome", h.OpCode, p)
	}
	return nil
}

// readToEOF reads until the server closes the connection.
func readToEOF(r *bufio.Reader) error {
	if _, err := io.Copy(io.Discard, r); err != nil && !errors.Is(err, syscall.ECONNRESET) {
		return fmt.Errorf("want the server to close: %v", err)
	}
	return nil
}

// churnDialer dials from 127.0.0.3 and lets connect pick the port, so that
// thousands of connections in TIME_WAIT neither run out of ports nor take
// one that a test in another package has just found free on 127.0.0.1.
func churnDialer() *net.Dialer {
	return &net.Dialer{
		Timeout:   testTimeout,
		LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 3)},
		Control: func(_, _ string, rc syscall.RawConn) error {
			var serr error
			err := rc.Control(func(fd uintptr) {
				serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_BIND_ADDRESS_NO_PORT, 1)
			})
			return errors.Join(err, serr)
		},
	}
}

// openFDs counts the file descriptors this process has open.
func openFDs(tb testing.TB) int {
	tb.Helper()
	f, err := os.Open("/proc/self/fd")
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	names, err := f.Readdirnames(-1)
	if err != nil {
		tb.Fatal(err)
	}
	return len(names) - 1 // the one reading the folder
}
