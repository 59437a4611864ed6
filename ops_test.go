package main

import (
	"bufio"
	"io"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// opsDaemon is a `fastws start` in the foreground whose stdout and
// stderr (its log) are both read line by line, so that a test can wait
// for what the daemon says rather than sleep.
type opsDaemon struct {
	cmd    *exec.Cmd
	stdout <-chan string
	log    <-chan string
	exited chan struct{}
}

func startOps(t *testing.T, cfg string) *opsDaemon {
	t.Helper()
	cmd := exec.Command(binary, "-c", cfg, "start")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	errp, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	d := &opsDaemon{cmd: cmd, stdout: lines(out), log: lines(errp), exited: make(chan struct{})}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = cmd.Wait(); close(d.exited) }()
	t.Cleanup(func() {
		select {
		case <-d.exited:
		default:
			_ = syscall.Kill(cmd.Process.Pid, syscall.SIGCONT)
			_ = cmd.Process.Kill()
			<-d.exited
		}
	})
	waitLine(t, "daemon", d.stdout, regexp.MustCompile(`^Press Ctrl-C to stop\.$`))
	return d
}

func (d *opsDaemon) pid() int { return d.cmd.Process.Pid }

// smallReceiver returns a dialer whose connections have a 4 KiB receive
// buffer: loopback autotuning (tcp_rmem up to 32 MiB on some kernels)
// would otherwise let a client that never reads take megabytes.
func smallReceiver() *net.Dialer {
	return &net.Dialer{Timeout: testTimeout, Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096)
		})
		if err != nil {
			return err
		}
		return serr
	}}
}

// stuckClient connects a client that never reads, then has another
// client say n bytes of lines, so that the daemon holds about n bytes
// queued for the stuck one (maxSendBuffer must allow it). It returns
// once a third client has received the last line, that is once the
// broadcast has been queued for everyone.
func stuckClient(t *testing.T, port, n int) net.Conn {
	t.Helper()
	stuck, err := smallReceiver().Dial("tcp", "127.0.0.1:"+strconv.Itoa(port))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stuck.Close() })
	_ = stuck.SetReadDeadline(time.Now().Add(testTimeout))
	if _, err := bufio.NewReader(stuck).ReadString('\n'); err != nil { // the welcome; then never again
		t.Fatalf("stuck client: %v", err)
	}

	observer := connect(t, port)
	writer := connect(t, port)
	go func() { _, _ = io.Copy(io.Discard, writer.conn) }() // the writer reads what it is sent
	line := strings.Repeat("x", 32<<10) + "\n"
	var b strings.Builder
	for b.Len() < n {
		b.WriteString(line)
	}
	b.WriteString("done\n")
	_ = writer.conn.SetWriteDeadline(time.Now().Add(testTimeout))
	if _, err := io.WriteString(writer.conn, b.String()); err != nil {
		t.Fatalf("writer: %v", err)
	}
	observer.waitFor("uid " + writer.uid + ": done")
	return stuck
}

// setReactors rewrites cfg with childProcessCount = n, a change a reload
// applies by replacing the instance.
func setReactors(t *testing.T, cfg string, n int) {
	t.Helper()
	b, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	s := regexp.MustCompile(`childProcessCount = \d+`).ReplaceAllString(string(b), "childProcessCount = "+strconv.Itoa(n))
	if err := os.WriteFile(cfg, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestLogReopenMovesStdoutToo checks that after logrotate's rename and
// SIGUSR1 neither stdout nor stderr of the daemon is left on the old file,
// which would then stay on the disk, deleted, as long as the daemon runs.
func TestLogReopenMovesStdoutToo(t *testing.T) {
	t.Parallel()
	cfg := writeConfig(t, "", freePort(t))
	pid := startDaemon(t, cfg)
	logPath := runDir(cfg) + "/fastws.log"
	if err := os.Rename(logPath, logPath+".1"); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(pid, syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(testTimeout)
	for {
		b, _ := os.ReadFile(logPath)
		if strings.Contains(string(b), "log reopened") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no new log with 'log reopened' after SIGUSR1; got %q", b)
		}
		time.Sleep(10 * time.Millisecond) // polling a file; nothing to wait on
	}
	for _, fd := range []string{"1", "2"} {
		got, err := os.Readlink("/proc/" + strconv.Itoa(pid) + "/fd/" + fd)
		if err != nil {
			t.Fatal(err)
		}
		if got != logPath {
			t.Errorf("fd %s is %s after SIGUSR1, want %s", fd, got, logPath)
		}
	}
	if _, _, code := runCLI(t, "-c", cfg, "stop"); code != 0 {
		t.Errorf("stop: exit %d", code)
	}
}

// TestStoppedDaemon sends kill -STOP: each verb returns within
// its timeout and names the stopped process, and after kill -CONT the
// reload and stop the CLI gave up on are not carried out.
func TestStoppedDaemon(t *testing.T) {
	t.Parallel()
	port := freePort(t)
	cfg := writeConfig(t, "", port)
	d := startOps(t, cfg)
	if err := syscall.Kill(d.pid(), syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	resumed := false
	t.Cleanup(func() {
		if !resumed {
			_ = syscall.Kill(d.pid(), syscall.SIGCONT)
		}
	})
	// The kernel says T once the stop has been delivered.
	deadline := time.Now().Add(testTimeout)
	for procState(d.pid()) != 'T' {
		if time.Now().After(deadline) {
			t.Fatalf("pid %d is not stopped: state %c", d.pid(), procState(d.pid()))
		}
		time.Sleep(time.Millisecond) // polling /proc; nothing to wait on
	}
	setReactors(t, cfg, 3) // what the reload would apply
	want := "pid " + strconv.Itoa(d.pid()) + " is stopped (SIGSTOP"
	// The verbs run at once: each waits out its own timeout.
	var wg sync.WaitGroup
	for _, tt := range []struct {
		args  []string
		limit time.Duration // what the verb is given, plus start-up slack
	}{
		{[]string{"status", "--timeout", "1s"}, 1 * time.Second},
		{[]string{"connections", "--timeout", "1s"}, 1 * time.Second},
		{[]string{"status"}, queryTimeout},
		{[]string{"reload", "--timeout", "1s"}, 1 * time.Second},
		{[]string{"stop", "--timeout", "2s"}, 2*time.Second + exitGrace},
	} {
		wg.Go(func() {
			began := time.Now()
			out, stderr, code := runCLI(t, append([]string{"-c", cfg}, tt.args...)...)
			took := time.Since(began)
			if code != exitFailure || !strings.Contains(stderr, want) {
				t.Errorf("%v: exit %d, stdout %q, stderr %q; want exit 1 and %q", tt.args, code, out, stderr, want)
			}
			if took > tt.limit+3*time.Second {
				t.Errorf("%v took %s, want about %s", tt.args, took.Round(time.Millisecond), tt.limit)
			}
			t.Logf("%v: %s", tt.args, took.Round(time.Millisecond))
		})
	}
	wg.Wait()
	if err := syscall.Kill(d.pid(), syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	resumed = true
	// The daemon now reads the requests queued on its socket, each past
	// its deadline, and logs each one it drops.
	var logged []string
	dropped := map[string]bool{}
	for timeout := time.After(testTimeout); !dropped["reload"] || !dropped["stop"]; {
		select {
		case l, ok := <-d.log:
			if !ok {
				t.Fatalf("log ended; it said:\n%s", strings.Join(logged, "\n"))
			}
			logged = append(logged, l)
			if m := regexp.MustCompile(`msg="request dropped" cmd=(\w+)`).FindStringSubmatch(l); m != nil {
				dropped[m[1]] = true
			}
		case <-timeout:
			t.Fatalf("after kill -CONT the daemon did not log dropping the reload and the stop; it said:\n%s", strings.Join(logged, "\n"))
		}
	}
	snap := statusSnapshot(t, cfg)
	if r := snap.Instances[0].Reactors; r != 2 {
		t.Errorf("after kill -CONT the instance has %d reactors, want 2: the reload the CLI gave up on was applied", r)
	}
	select {
	case <-d.exited:
		t.Fatal("after kill -CONT the daemon stopped: the stop the CLI gave up on was carried out")
	default:
	}
	for _, l := range logged {
		if regexp.MustCompile(`msg=(reloaded|"reload (refused|incomplete)")|requested="status socket"`).MatchString(l) {
			t.Errorf("the daemon acted on an expired request: %s", l)
		}
	}
	if _, _, code := runCLI(t, "-c", cfg, "stop"); code != 0 {
		t.Errorf("stop after kill -CONT: exit %d", code)
	}
}

// asNobody returns a command running the binary as user nobody, or skips
// the test where that cannot be done (not root, no such user).
func asNobody(t *testing.T, args ...string) *exec.Cmd {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root, to run the binary as nobody")
	}
	u, err := user.Lookup("nobody")
	if err != nil {
		t.Skip("no user nobody")
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	// nobody must reach the binary, which TestMain built in a private folder.
	if err := os.Chmod(filepath.Dir(binary), 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(binary, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
	cmd.Dir = "/"
	return cmd
}

// publicDir returns a temporary folder that every user can enter, owned
// by uid (-1: the caller).
func publicDir(t *testing.T, uid int) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "fastws-public")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if uid >= 0 {
		if err := os.Chown(dir, uid, uid); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func runCmd(t *testing.T, cmd *exec.Cmd) (stdout, stderr string, code int) {
	t.Helper()
	var o, e strings.Builder
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		return o.String(), e.String(), ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run %v: %v", cmd.Args, err)
	}
	return o.String(), e.String(), 0
}

// TestPrivilegedPortMessage: binding a port below 1024 without the
// privilege says so, not "is another program using that port?".
func TestPrivilegedPortMessage(t *testing.T) {
	t.Parallel()
	asNobody(t) // skips unless it can
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_unprivileged_port_start")
	if err != nil {
		t.Skip("no ip_unprivileged_port_start")
	}
	start, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	if start <= 1 {
		t.Skipf("ip_unprivileged_port_start is %d: every user may bind every port here", start)
	}
	u, _ := user.Lookup("nobody")
	uid, _ := strconv.Atoi(u.Uid)
	dir := publicDir(t, uid)
	cfg := filepath.Join(dir, "config.ini")
	conf := "[fastws]\nrunDir = ./run\nmetricsListen =\n\n[instance.t]\ninstanceName = Low\nprotocol = telnet\nhost = 127.0.0.1\nport = " + strconv.Itoa(start-1) + "\n"
	if err := os.WriteFile(cfg, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	_, stderr, code := runCmd(t, asNobody(t, "-c", cfg, "start"))
	if code != exitFailure || !strings.Contains(stderr, "ports below 1024 need privileges") || !strings.Contains(stderr, "CAP_NET_BIND_SERVICE") || strings.Contains(stderr, "another program") {
		t.Errorf("start as nobody on port %d: exit %d, stderr %q; want the privilege named", start-1, code, stderr)
	}
	t.Logf("%s", stderr)
}

// TestAnotherUsersRunDir: a user who cannot read the daemon's runDir is
// told whose it is, by status and by restart, which must not report the
// daemon "not running" and start a second one.
func TestAnotherUsersRunDir(t *testing.T) {
	t.Parallel()
	asNobody(t) // skips unless it can
	dir := publicDir(t, -1)
	cfg := filepath.Join(dir, "config.ini")
	if err := os.WriteFile(cfg, []byte("[fastws]\nrunDir = ./run\nmetricsListen =\n\n[instance.t]\ninstanceName = T\nprotocol = telnet\nhost = 127.0.0.1\nport = "+strconv.Itoa(freePort(t))+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "run"), 0o700); err != nil {
		t.Fatal(err)
	}
	want := "permission denied: the daemon's runDir " + filepath.Join(dir, "run") + " belongs to uid 0"
	for _, verb := range []string{"status", "restart", "stop", "reload"} {
		out, stderr, code := runCmd(t, asNobody(t, "-c", cfg, verb))
		if code != exitFailure || !strings.Contains(stderr, want) || strings.Contains(out+stderr, "not running") {
			t.Errorf("%s as nobody: exit %d, stdout %q, stderr %q; want exit 1 and %q", verb, code, out, stderr, want)
		}
		t.Logf("%s: %s", verb, stderr)
	}
}

// TestRestartRefusesAnotherUsersDaemon covers a root restart of the
// service user's daemon: it would stop it and start a root one, with
// root's pidfile, socket and log that the service could not open again.
func TestRestartRefusesAnotherUsersDaemon(t *testing.T) {
	t.Parallel()
	asNobody(t) // skips unless it can
	u, _ := user.Lookup("nobody")
	uid, _ := strconv.Atoi(u.Uid)
	dir := publicDir(t, uid)
	port := freePort(t)
	cfg := filepath.Join(dir, "config.ini")
	if err := os.WriteFile(cfg, []byte("[fastws]\nrunDir = ./run\nmetricsListen =\n\n[instance.t]\ninstanceName = T\nprotocol = telnet\nhost = 127.0.0.1\nport = "+strconv.Itoa(port)+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, stderr, code := runCmd(t, asNobody(t, "-c", cfg, "start", "-d"))
	pid := daemonPIDIn(out)
	if pid != 0 {
		t.Cleanup(func() { killPID(t, pid) })
	}
	if code != 0 || pid == 0 {
		t.Fatalf("start -d as nobody: exit %d, %q, %q", code, out, stderr)
	}
	out, stderr, code = runCLI(t, "-c", cfg, "restart") // as root
	want := "runs as uid " + u.Uid + " (nobody), not as you (uid 0)"
	if code != exitFailure || !strings.Contains(stderr, want) {
		t.Errorf("root's restart of nobody's daemon: exit %d, stdout %q, stderr %q; want exit 1 and %q", code, out, stderr, want)
	}
	if syscall.Kill(pid, 0) != nil {
		t.Fatal("restart stopped nobody's daemon")
	}
	connect(t, port)
	if _, stderr, code := runCmd(t, asNobody(t, "-c", cfg, "stop")); code != 0 {
		t.Errorf("stop as nobody: exit %d: %s", code, stderr)
	}
}
