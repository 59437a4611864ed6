package main

import (
	"bufio"
	"bytes"
	"errors"
	"net"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// startLimited runs `fastws start` in the foreground with RLIMIT_NOFILE set
// to nofile (soft and hard, so Go cannot raise it) by the shell that execs
// it: the daemon keeps the shell's pid.
func startLimited(t *testing.T, cfg string, nofile int) *fgDaemon {
	t.Helper()
	return startCmd(t, exec.Command("/bin/sh", "-c", `ulimit -n `+strconv.Itoa(nofile)+` && exec "$0" "$@"`, binary, "-c", cfg, "start"))
}

// cpuTicks returns the user and system time of process pid, in clock
// ticks, from /proc/PID/stat.
func cpuTicks(t *testing.T, pid int) int {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		t.Fatal(err)
	}
	// The command name, in parentheses, may hold spaces; the fields after
	// it are state (3) ... utime (14) and stime (15).
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	if len(f) < 13 {
		t.Fatalf("/proc/%d/stat: %q", pid, b)
	}
	utime, err1 := strconv.Atoi(f[11])
	stime, err2 := strconv.Atoi(f[12])
	if err1 != nil || err2 != nil {
		t.Fatalf("/proc/%d/stat: %q", pid, b)
	}
	return utime + stime
}

// clockTicks is USER_HZ, the unit of /proc/PID/stat times: 100 on every
// Linux this runs on (sysconf(_SC_CLK_TCK) needs cgo to ask).
const clockTicks = 100

// knock connects to port and waits up to wait for the welcome. It returns
// the connection, whether it was welcomed, and, if not, whether the daemon
// closed it without a word (rather than leaving it waiting).
// Each knock comes from a loopback address of its own (127.0.2.1 on), so
// that the daemon's descriptor reserve, kept for addresses that hold few
// connections, does not refuse it; knockFrom chooses the address.
func knock(t *testing.T, port int, wait time.Duration) (c *chatClient, welcomed, dropped bool) {
	t.Helper()
	k := knocks.Add(1)
	return knockFrom(t, net.IPv4(127, 0, byte(2+k/250), byte(1+k%250)), port, wait)
}

var knocks atomic.Int64

// knockFrom is knock from the address ip.
func knockFrom(t *testing.T, ip net.IP, port int, wait time.Duration) (c *chatClient, welcomed, dropped bool) {
	t.Helper()
	d := net.Dialer{Timeout: testTimeout, LocalAddr: &net.TCPAddr{IP: ip}}
	conn, err := d.Dial("tcp", "127.0.0.1:"+strconv.Itoa(port))
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { conn.Close() })
	c = &chatClient{t: t, conn: conn, r: bufio.NewReader(conn)}
	welcomed, dropped = c.welcomeWithin(wait)
	return c, welcomed, dropped
}

// welcomeWithin waits up to wait for c's welcome and records c's uid. It
// reports whether it came, and whether the daemon refused or closed the
// connection instead.
func (c *chatClient) welcomeWithin(wait time.Duration) (welcomed, dropped bool) {
	c.t.Helper()
	_ = c.conn.SetReadDeadline(time.Now().Add(wait))
	s, err := c.r.ReadString('\n')
	s = ungreet(s)
	var ne net.Error
	switch {
	case err == nil && strings.HasPrefix(s, "! "):
		c.t.Logf("refused: %s", strings.TrimSpace(s))
		return false, true
	case err == nil:
		m := welcome.FindStringSubmatch(s)
		if m == nil {
			c.t.Fatalf("got %q, want the welcome", s)
		}
		c.uid = m[1]
		return true, false
	case errors.As(err, &ne) && ne.Timeout() && s == "":
		return false, false
	case s == "":
		return false, true // EOF or reset
	}
	c.t.Fatalf("got %q, then %v; want the welcome", s, err)
	return false, false
}

var openFilesRE = regexp.MustCompile(`open files (\d+)/(\d+)`)

// statusOpenFiles runs `fastws status` and returns its open files count
// and limit.
func statusOpenFiles(t *testing.T, cfg string) (n, limit int) {
	t.Helper()
	out, stderr, code := runCLI(t, "-c", cfg, "status")
	m := openFilesRE.FindStringSubmatch(out)
	if code != 0 || m == nil {
		t.Fatalf("status: exit %d, no %q in\n%s%s", code, openFilesRE, out, stderr)
	}
	n, _ = strconv.Atoi(m[1])
	limit, _ = strconv.Atoi(m[2])
	return n, limit
}

// TestDaemonAtFileLimit runs the daemon with 64 file descriptors and
// connects past them: while at the limit it must not spin, its clients
// keep chatting, status shows the shortage, connections made meanwhile
// wait and are welcomed as soon as descriptors free up, and the shortage
// is logged once, not once per attempt.
func TestDaemonAtFileLimit(t *testing.T) {
	t.Parallel()
	const (
		nofile  = 64
		storm   = 10 // connections made while at the limit, after the first
		release = 16 // connections closed to recover: more than are waiting
	)
	port := freePort(t)
	cfg := writeConfig(t, "", port)
	d := startLimited(t, cfg, nofile)
	pid := d.cmd.Process.Pid

	// Connect until the daemon stops welcoming.
	var clients, waiting []*chatClient
	dropped := 0
	for k := 0; k < nofile && len(waiting) == 0; k++ {
		// Patient: a welcome that a loaded machine delays must not be
		// taken for the limit.
		c, ok, drop := knock(t, port, 3*time.Second)
		switch {
		case ok:
			clients = append(clients, c)
		case drop:
			dropped++
			waiting = append(waiting, c)
		default:
			waiting = append(waiting, c)
		}
	}
	if len(waiting) == 0 || len(clients) < release+1 {
		t.Fatalf("got %d clients welcomed under a limit of %d files, want the daemon to run out of them after at least %d",
			len(clients), nofile, release+1)
	}
	t.Logf("%d clients welcomed before the limit", len(clients))
	for k := 0; k < storm; k++ {
		c, ok, drop := knock(t, port, 100*time.Millisecond)
		if ok {
			t.Fatalf("a connection made at the limit was welcomed at once")
		}
		if drop {
			dropped++
		}
		waiting = append(waiting, c)
	}
	if dropped > 0 {
		t.Errorf("%d of %d connections made at the limit were closed without a word, want them to wait in the backlog until descriptors free up",
			dropped, len(waiting))
	}

	// At the limit, accepting does not spin.
	const window = 1500 * time.Millisecond
	before := cpuTicks(t, pid)
	time.Sleep(window) // the measurement itself, not a synchronisation
	used := time.Duration(cpuTicks(t, pid)-before) * time.Second / clockTicks
	t.Logf("daemon CPU at the limit: %v in %v", used, window)
	if used > window/5 {
		t.Errorf("daemon used %v of CPU in %v at the file limit, want under 20%% of a core", used, window)
	}

	// Its clients keep chatting.
	first := clients[0]
	first.say("still here")
	first.waitFor("uid " + first.uid + ": still here")

	// Status shows the shortage.
	if n, limit := statusOpenFiles(t, cfg); limit != nofile || n < nofile-8 {
		t.Errorf("status at the limit: got open files %d/%d, want about %d/%d", n, limit, nofile, nofile)
	}

	// Free some descriptors: the connections made meanwhile are welcomed,
	// then new ones.
	for _, c := range clients[len(clients)-release:] {
		c.conn.Close()
	}
	for k, c := range waiting {
		if ok, _ := c.welcomeWithin(testTimeout); !ok {
			t.Errorf("connection %d of %d made at the limit: no welcome once descriptors freed up", k+1, len(waiting))
		}
	}
	fresh, ok, _ := knock(t, port, testTimeout)
	if !ok {
		t.Fatal("a new connection after the shortage: no welcome")
	}
	fresh.say("back")
	first.waitFor("uid " + fresh.uid + ": back")
	if n, limit := statusOpenFiles(t, cfg); limit != nofile || n == 0 || n > nofile {
		t.Errorf("status after the shortage: got open files %d/%d, want n/%d with 0 < n <= %d", n, limit, nofile, nofile)
	}

	if err := d.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	if code := d.wait(t); code != 0 {
		t.Errorf("got exit code %d after SIGINT, want 0", code)
	}
	log := d.stderr.String()
	failed, again := strings.Count(log, "accept failed"), strings.Count(log, "accepting again")
	t.Logf("log: %d \"accept failed\", %d \"accepting again\"", failed, again)
	if failed < 1 || failed > 2 || again < 1 || again > 2 {
		t.Errorf("log holds %d \"accept failed\" and %d \"accepting again\", want the one shortage logged once (at most twice); log:\n%s",
			failed, again, log)
	}
}

// TestDaemonReserveAnswersOtherAddresses runs the daemon with 64 file
// descriptors and no per-address limit, and connects from one address
// until it is refused: the refusal comes as a line, before the
// descriptors run out, and a client from another address is welcomed.
// Without the reserve, one address took every descriptor and everyone
// else waited in the kernel's queue.
func TestDaemonReserveAnswersOtherAddresses(t *testing.T) {
	t.Parallel()
	const nofile = 64
	port := freePort(t)
	cfg := writeConfig(t, "maxConnectionsPerIP = 0", port)
	startLimited(t, cfg, nofile)

	hog := net.IPv4(127, 0, 3, 1)
	welcomed := 0
	for ; welcomed < nofile; welcomed++ {
		_, ok, dropped := knockFrom(t, hog, port, testTimeout)
		if ok {
			continue
		}
		if !dropped {
			t.Fatalf("connection %d from one address: neither welcomed nor refused, want a refusal line", welcomed+1)
		}
		break
	}
	if welcomed < 8 || welcomed >= nofile {
		t.Fatalf("got %d connections from one address welcomed under a limit of %d files, want the reserve to refuse it after a few", welcomed, nofile)
	}
	t.Logf("one address: %d welcomed, then refused", welcomed)

	c, ok, _ := knockFrom(t, net.IPv4(127, 0, 3, 2), port, testTimeout)
	if !ok {
		t.Fatal("a client from another address: no welcome, want one from the reserve")
	}
	c.say("still room")
	c.waitFor("uid " + c.uid + ": still room")
}
