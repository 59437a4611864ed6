package main

import (
	"bufio"
	"io"
	"net"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
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

// stuckClient connects a client that never reads, then has another
// client say n bytes of lines, so that the daemon holds about n bytes
// queued for the stuck one (maxSendBuffer must allow it). It returns
// once a third client has received the last line, that is once the
// broadcast has been queued for everyone.
func stuckClient(t *testing.T, port, n int) net.Conn {
	t.Helper()
	d := net.Dialer{Timeout: testTimeout, Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096)
		})
		if err != nil {
			return err
		}
		return serr
	}}
	stuck, err := d.Dial("tcp", "127.0.0.1:"+strconv.Itoa(port))
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

// TestSignalsDuringSlowReload is issue 22's reproduction: a reload that
// waits stopTimeout for a client that does not read, seven SIGHUPs, then
// a SIGTERM. The daemon exits at once, not after stopTimeout, and the
// HUPs coalesce into at most one more reload.
func TestSignalsDuringSlowReload(t *testing.T) {
	port := freePort(t)
	cfg := writeConfig(t, "maxSendBuffer = 64M\nbytesPerSecond = 0\nstopTimeout = 60s\n", port)
	d := startOps(t, cfg)
	stuckClient(t, port, 14<<20)

	setReactors(t, cfg, 3)
	if err := syscall.Kill(d.pid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	// The replacement listens: the reload now waits for the stuck client.
	var logged []string
	collect := func(re *regexp.Regexp) {
		t.Helper()
		deadline := time.After(testTimeout)
		for {
			select {
			case l, ok := <-d.log:
				if !ok {
					t.Fatalf("log ended before %q; it said:\n%s", re, strings.Join(logged, "\n"))
				}
				logged = append(logged, l)
				if re.MatchString(l) {
					return
				}
			case <-deadline:
				t.Fatalf("no log line %q within %s; it said:\n%s", re, testTimeout, strings.Join(logged, "\n"))
			}
		}
	}
	collect(regexp.MustCompile(`msg=listening .*reactors=3`))
	for range 6 {
		if err := syscall.Kill(d.pid(), syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
	}
	sent := time.Now()
	if err := syscall.Kill(d.pid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-d.exited:
	case <-time.After(10 * time.Second):
		t.Fatalf("the daemon still runs %s after SIGTERM (stopTimeout 60s): the TERM waited behind the reload or was lost", time.Since(sent).Round(time.Millisecond))
	}
	took := time.Since(sent)
	for l := range d.log {
		logged = append(logged, l)
	}
	if code := d.cmd.ProcessState.ExitCode(); code != exitOK {
		t.Errorf("exit %d, want 0; log:\n%s", code, strings.Join(logged, "\n"))
	}
	reloads := 0
	for _, l := range logged {
		if regexp.MustCompile(`msg=(reloaded|"reload (refused|incomplete)")`).MatchString(l) {
			reloads++
		}
	}
	if reloads > 2 {
		t.Errorf("%d reloads ran for 7 SIGHUPs during a reload, want at most 2; log:\n%s", reloads, strings.Join(logged, "\n"))
	}
	t.Logf("exited %s after SIGTERM; %d reload outcomes logged", took.Round(time.Millisecond), reloads)
}

// TestReloadWhileStoppingRefused checks that a reload sent while the
// daemon stops gracefully (here waiting for a client that does not read)
// fails and says why, rather than starting listeners in an exiting process
// and printing "reloaded".
func TestReloadWhileStoppingRefused(t *testing.T) {
	port := freePort(t)
	cfg := writeConfig(t, "maxSendBuffer = 64M\nbytesPerSecond = 0\nstopTimeout = 60s\n", port)
	d := startOps(t, cfg)
	stuckClient(t, port, 4<<20)
	if err := syscall.Kill(d.pid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	waitLine(t, "daemon", d.stdout, regexp.MustCompile(`^stopping \(up to 1m0s`))
	out, stderr, code := runCLI(t, "-c", cfg, "reload")
	if code != exitFailure || !strings.Contains(stderr, "stopping") || strings.Contains(out, "reloaded") {
		t.Errorf("reload while stopping: exit %d, stdout %q, stderr %q; want exit 1 and a refusal that says the daemon is stopping", code, out, stderr)
	}
	// The listener stays closed.
	if c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(port), time.Second); err == nil {
		c.Close()
		t.Errorf("port %d accepts connections after a reload during the stop", port)
	}
	_ = syscall.Kill(d.pid(), syscall.SIGTERM) // the second one forces the exit
	select {
	case <-d.exited:
	case <-time.After(testTimeout):
		t.Fatal("the daemon did not exit on a second SIGTERM")
	}
}

// TestLogReopenMovesStdoutToo checks that after logrotate's rename and
// SIGUSR1 neither stdout nor stderr of the daemon is left on the old file,
// which would then stay on the disk, deleted, as long as the daemon runs.
func TestLogReopenMovesStdoutToo(t *testing.T) {
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
