package server

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestAcceptorReserveAfterBurst connects clients in a burst, so that
// hand-overs overlap and the reserve of spare descriptors grows, and
// checks that once they are done the acceptor is back to its idle
// reserve, with nothing lent or in flight, and never stalled.
func TestAcceptorReserveAfterBurst(t *testing.T) {
	const (
		clients = 2000
		dialers = 64
	)
	s := startServer(t, telnetInstance("t", 2))
	a := s.instances[0].acc
	addr := s.Addrs()["t"]
	d := churnDialer()

	// How far the reserve grew, for the log: how much hand-overs overlap
	// depends on the machine.
	var peak int
	stop := make(chan struct{})
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		for {
			a.mu.Lock()
			peak = max(peak, a.target)
			a.mu.Unlock()
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Microsecond):
			}
		}
	}()

	var wg sync.WaitGroup
	errs := make(chan error, dialers)
	for w := range dialers {
		wg.Go(func() {
			for k := w; k < clients; k += dialers {
				if err := churnOnce(d, map[string]string{"t": addr}, 0); err != nil {
					errs <- fmt.Errorf("client %d: %v", k, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(stop)
	<-watched
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	t.Logf("the reserve grew to %d spares (at most %d)", peak, maxSpares)

	waitFor(t, "the hand-overs to end", func() bool {
		a.mu.Lock()
		defer a.mu.Unlock()
		return a.inFlight == 0
	})
	a.mu.Lock()
	held, lent, target := len(a.spares), a.inFlight, a.target
	if a.accepting {
		lent++
	}
	a.mu.Unlock()
	if held != minSpares || lent != 0 || target != minSpares {
		t.Errorf("after the burst: got %d spares held, %d lent, target %d; want %d, 0, %d",
			held, lent, target, minSpares, minSpares)
	}
	if n := a.stalls.Load(); n != 0 {
		t.Errorf("got %d accept stalls, want 0 with descriptors to spare", n)
	}
}

// limitChildEnv makes the test binary run TestAcceptorBurstAtFileLimit's
// server, in a process of its own with few descriptors.
const limitChildEnv = "FASTWS_ACCEPTOR_LIMIT_CHILD"

// TestAcceptorBurstAtFileLimit runs a server limited to 128 descriptors
// and connects three times as many clients at once, so that descriptors
// run out with hand-overs in flight. No client may be accepted and then
// dropped: those that do not fit wait in the kernel's queue, and each one
// is welcomed once others leave.
func TestAcceptorBurstAtFileLimit(t *testing.T) {
	t.Parallel() // the server runs in a child process of its own
	const (
		nofile  = 128
		clients = 3 * nofile
		patient = 2 * time.Second // for a welcome, before a client counts as waiting
	)
	if os.Getenv(limitChildEnv) != "" {
		serveLimited(t, nofile)
		return
	}

	cmd := exec.Command(os.Args[0], "-test.run=^TestAcceptorBurstAtFileLimit$")
	cmd.Env = append(os.Environ(), limitChildEnv+"=1")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := false
	t.Cleanup(func() {
		if !exited {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	addrc := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(stdout).ReadString('\n')
		addrc <- strings.TrimSpace(line)
		io.Copy(io.Discard, stdout)
	}()
	var addr string
	select {
	case addr = <-addrc:
	case <-time.After(testTimeout):
		t.Fatalf("the server did not start; stderr:\n%s", &stderr)
	}
	if addr == "" {
		t.Fatalf("the server did not start; stderr:\n%s", &stderr)
	}

	// All at once: the welcomed, the dropped and those left waiting.
	conns := make([]net.Conn, clients)
	readers := make([]*bufio.Reader, clients)
	welcomed := make([]bool, clients)
	var mu sync.Mutex
	var dropped []string
	var wg sync.WaitGroup
	for k := range clients {
		wg.Go(func() {
			// Each from an address of its own: one address holding many
			// would be refused at the descriptor reserve (see files).
			conn, err := fromAddr(k).Dial("tcp", addr)
			if err != nil {
				mu.Lock()
				dropped = append(dropped, "dial: "+err.Error())
				mu.Unlock()
				return
			}
			conns[k], readers[k] = conn, bufio.NewReader(conn)
			ok, err := welcomeWithin(conn, readers[k], patient)
			welcomed[k] = ok
			if err != nil {
				mu.Lock()
				dropped = append(dropped, err.Error())
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	defer func() {
		for _, c := range conns {
			if c != nil {
				c.Close()
			}
		}
	}()
	n := 0
	for _, ok := range welcomed {
		if ok {
			n++
		}
	}
	t.Logf("%d of %d clients welcomed at the limit", n, clients)
	if len(dropped) > 0 {
		t.Fatalf("%d clients were dropped instead of left waiting, e.g. %s", len(dropped), dropped[0])
	}
	if n == 0 || n == clients {
		t.Fatalf("got %d of %d clients welcomed, want the server to run out of descriptors after some", n, clients)
	}

	// The welcomed leave; then each waiting one is welcomed, and leaves.
	for k, ok := range welcomed {
		if ok {
			conns[k].Close()
		}
	}
	for k, ok := range welcomed {
		if ok {
			continue
		}
		wg.Go(func() {
			ok, err := welcomeWithin(conns[k], readers[k], testTimeout)
			if !ok {
				mu.Lock()
				dropped = append(dropped, fmt.Sprintf("no welcome once descriptors freed up: %v", err))
				mu.Unlock()
			}
			conns[k].Close()
		})
	}
	wg.Wait()
	if len(dropped) > 0 {
		t.Errorf("%d waiting clients: %s", len(dropped), dropped[0])
	}

	stdin.Close()
	err = cmd.Wait()
	exited = true
	log := stderr.String()
	if err != nil {
		t.Errorf("server: %v; stderr:\n%s", err, log)
	}
	if !strings.Contains(log, "accept failed") {
		t.Errorf("the server's log holds no accept stall; want the limit reached; log:\n%s", log)
	}
	if strings.Contains(log, "could not hand a connection") {
		t.Errorf("a hand-over failed at the limit; log:\n%s", log)
	}
}

// serveLimited lowers the process's descriptor limit to nofile, runs a
// server, prints its address and serves until stdin closes.
func serveLimited(t *testing.T, nofile uint64) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	lim.Cur = nofile
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	s := startServer(t, telnetInstance("t", 2))
	fmt.Println(s.Addrs()["t"])
	io.Copy(io.Discard, os.Stdin)
}

// welcomeWithin waits up to wait for the welcome on conn. It reports
// whether it came and, if the server closed conn instead, why.
func welcomeWithin(conn net.Conn, r *bufio.Reader, wait time.Duration) (bool, error) {
	_ = conn.SetReadDeadline(time.Now().Add(wait))
	line, err := r.ReadString('\n')
	line = ungreet(line)
	var ne net.Error
	switch {
	case err == nil && welcomeRE.MatchString(line):
		return true, nil
	case err == nil:
		return false, fmt.Errorf("got %q, want the welcome", line)
	case errors.As(err, &ne) && ne.Timeout() && line == "":
		return false, nil // waiting
	}
	return false, fmt.Errorf("closed before the welcome: %v", err)
}

// TestClientsConnectingTogetherGetALoopEach connects pairs of clients at
// the same moment to an instance with two event loops and checks that the
// two of every pair are served by different loops, in the first round,
// when the acceptor does not yet know the loops and the engine picks, and
// in the later ones, when the acceptor picks. (The engine's round robin
// starts at the first loop, so the first round's pair gets one each.)
// gnet's least-connections balancer, which counts only the connections
// the loops have taken, gave both to one loop when the second came before
// the first was taken.
func TestClientsConnectingTogetherGetALoopEach(t *testing.T) {
	const rounds = 20
	s := startServer(t, telnetInstance("t", 2))
	addr := s.Addrs()["t"]
	for round := range rounds {
		pair := make([]*client, 2)
		var wg sync.WaitGroup
		for k := range pair {
			wg.Go(func() { pair[k] = dialRaw(t, addr) })
		}
		wg.Wait()
		for _, c := range pair {
			c.welcomed()
		}
		conns, err := s.Connections(t.Context())
		if err != nil {
			t.Fatalf("round %d: connections: %v", round, err)
		}
		if len(conns) != 2 || conns[0].Reactor == conns[1].Reactor {
			t.Fatalf("round %d: connections %+v, want one on each of the 2 loops", round, conns)
		}
		for _, c := range pair {
			c.conn.Close()
		}
		// The acceptor counts a hand-over until it has its result, which
		// may come after the welcome: a count left over would tilt the
		// next round's choice.
		waitFor(t, "the pair to close and its hand-overs to end", func() bool {
			return openConns(s) == 0 && enrolling(s) == 0
		})
	}
}

// TestReconnectingClientsKeepALoopEach: two clients that take turns to
// close and at once connect again, as scripts/bench's case 1 workers do,
// keep a loop each. The acceptor often gets the new connection before the
// loop has seen the old one close; the loops then hold one connection each
// and tie, and the tie must go to the loop whose last connection is the
// oldest, the one most likely to be closing, not always to the first loop.
func TestReconnectingClientsKeepALoopEach(t *testing.T) {
	const rounds = 40
	s := startServer(t, telnetInstance("t", 2))
	addr := s.Addrs()["t"]
	var pair [2]*client
	for k := range pair {
		pair[k] = dial(t, addr)
		waitFor(t, "the hand-over to end", func() bool { return enrolling(s) == 0 })
	}
	for round := range rounds {
		k := round % 2
		pair[k].conn.Close()
		pair[k] = dial(t, addr)
		waitFor(t, "the old connection to close and the hand-over to end", func() bool {
			return openConns(s) == 2 && enrolling(s) == 0
		})
		conns, err := s.Connections(t.Context())
		if err != nil {
			t.Fatalf("round %d: connections: %v", round, err)
		}
		if len(conns) != 2 || conns[0].Reactor == conns[1].Reactor {
			t.Fatalf("round %d: connections %+v, want one on each of the 2 loops", round, conns)
		}
	}
}

// enrolling is the number of hand-overs the acceptors still count.
func enrolling(s *Server) int64 {
	s.mu.Lock()
	insts := append([]*instance(nil), s.instances...)
	s.mu.Unlock()
	var n int64
	for _, i := range insts {
		for _, r := range i.reactorList() {
			n += r.enrolling.Load()
		}
	}
	return n
}

// fromAddr returns a dialer from the k-th loopback address past 127.0.1.0,
// so that clients do not share an address.
func fromAddr(k int) *net.Dialer {
	ip := net.IPv4(127, 0, byte(1+k/250), byte(1+k%250))
	return &net.Dialer{Timeout: testTimeout, LocalAddr: &net.TCPAddr{IP: ip}}
}
