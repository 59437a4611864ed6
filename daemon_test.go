package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// chatClient is a raw TCP chat client for the daemon tests.
type chatClient struct {
	t    *testing.T
	conn net.Conn
	r    *bufio.Reader
	uid  string
}

// connect connects to port and waits for the welcome (see knock).
func connect(t *testing.T, port int) *chatClient {
	t.Helper()
	c, welcomed, _ := knock(t, port, testTimeout)
	if !welcomed {
		t.Fatalf("port %d: no welcome", port)
	}
	return c
}

func (c *chatClient) line() string {
	c.t.Helper()
	_ = c.conn.SetReadDeadline(time.Now().Add(testTimeout))
	s, err := c.r.ReadString('\n')
	if err != nil {
		c.t.Fatalf("uid %s: read: %v (got %q)", c.uid, err, s)
	}
	return strings.TrimRight(ungreet(s), "\r\n")
}

// waitFor reads lines until want.
func (c *chatClient) waitFor(want string) {
	c.t.Helper()
	for c.line() != want {
	}
}

// waitEOF reads until the server closes the connection.
func (c *chatClient) waitEOF() {
	c.t.Helper()
	_ = c.conn.SetReadDeadline(time.Now().Add(testTimeout))
	for {
		if _, err := c.r.ReadString('\n'); err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				c.t.Fatalf("uid %s: connection still open", c.uid)
			}
			c.conn.Close() // as a real client does: the daemon, lingering for it, is done at once
			return
		}
	}
}

func (c *chatClient) say(s string) {
	c.t.Helper()
	if _, err := c.conn.Write([]byte(s + "\n")); err != nil {
		c.t.Fatalf("uid %s: write: %v", c.uid, err)
	}
}

// startDaemon runs `start -d` on cfg, expects success, and makes sure the
// daemon is gone when the test ends.
func startDaemon(t *testing.T, cfg string) int {
	t.Helper()
	out, stderr, code := runCLI(t, "-c", cfg, "start", "-d")
	if code != 0 {
		t.Fatalf("start -d: exit %d\nstdout: %s\nstderr: %s", code, out, stderr)
	}
	return daemonPID(t, cfg, "start -d", out)
}

// daemonPID returns the pid of the daemon that verb (start -d or restart)
// started, from its output out, and makes sure it is gone when the test
// ends.
func daemonPID(t *testing.T, cfg, verb, out string) int {
	t.Helper()
	m := regexp.MustCompile(`started as a daemon \(pid (\d+)\)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("%s printed %q, want the pid", verb, out)
	}
	pid, _ := strconv.Atoi(m[1])
	t.Cleanup(func() {
		if syscall.Kill(pid, 0) == nil {
			_ = syscall.Kill(pid, syscall.SIGKILL)
			waitGone(context.Background(), pid, filepath.Join(runDir(cfg), "fastws.pid"), testTimeout)
		}
	})
	return pid
}

func runDir(cfg string) string { return filepath.Join(filepath.Dir(cfg), "run") }

func exists(path string) bool { _, err := os.Lstat(path); return err == nil }

// statusJSON runs `status --json` with the built binary and decodes it.
func statusJSON(t *testing.T, cfg string) map[string]any {
	return statusAs[map[string]any](t, runCLI, cfg)
}

func TestDaemonLifecycle(t *testing.T) {
	t.Parallel()
	pa, pb := freePort(t), freePort(t)
	cfg := writeConfig(t, "", pa, pb)
	pid := startDaemon(t, cfg)

	pidFile, sock := filepath.Join(runDir(cfg), "fastws.pid"), filepath.Join(runDir(cfg), "fastws.sock")
	if b, err := os.ReadFile(pidFile); err != nil || strings.TrimSpace(string(b)) != strconv.Itoa(pid) {
		t.Fatalf("pidfile: got %q (%v), want %d", b, err, pid)
	}
	if st, err := os.Stat(sock); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("status socket: got %v (%v), want mode 0600", st.Mode(), err)
	}

	var clients []*chatClient
	for k := 0; k < 3; k++ {
		clients = append(clients, connect(t, pa))
	}
	for k := 0; k < 2; k++ {
		clients = append(clients, connect(t, pb))
	}

	out, _, code := runCLI(t, "-c", cfg, "status")
	if code != 0 {
		t.Fatalf("status: exit %d", code)
	}
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`pid ` + strconv.Itoa(pid)),
		regexp.MustCompile(`(?m)^Telnet-0\s+telnet\s+127\.0\.0\.1:` + strconv.Itoa(pa) + `\s+2\s+3\s`),
		regexp.MustCompile(`(?m)^Telnet-1\s+telnet\s+127\.0\.0\.1:` + strconv.Itoa(pb) + `\s+2\s+2\s`),
	} {
		if !want.MatchString(out) {
			t.Errorf("status output does not match %q:\n%s", want, out)
		}
	}

	doc := statusJSON(t, cfg)
	d := doc["daemon"].(map[string]any)
	if int(d["pid"].(float64)) != pid {
		t.Errorf("status --json: got pid %v, want %d", d["pid"], pid)
	}
	insts := doc["instances"].([]any)
	for k, want := range []float64{3, 2} {
		if got := insts[k].(map[string]any)["connections"]; got != want {
			t.Errorf("status --json: instance %d: got %v connections, want %v", k, got, want)
		}
	}

	out, _, code = runCLI(t, "-c", cfg, "connections", "--json")
	if code != 0 {
		t.Fatalf("connections --json: exit %d", code)
	}
	var conns struct {
		Connections []struct {
			UID      uint64 `json:"uid"`
			Instance string `json:"instance"`
		} `json:"connections"`
	}
	if err := json.Unmarshal([]byte(out), &conns); err != nil {
		t.Fatalf("connections --json: %v\n%s", err, out)
	}
	if len(conns.Connections) != len(clients) {
		t.Fatalf("connections --json: got %d rows, want %d", len(conns.Connections), len(clients))
	}
	for k, c := range clients {
		if got := strconv.FormatUint(conns.Connections[k].UID, 10); got != c.uid {
			t.Errorf("connections row %d: got uid %s, want %s", k, got, c.uid)
		}
	}
	out, _, _ = runCLI(t, "-c", cfg, "connections")
	for _, c := range clients {
		if !regexp.MustCompile(`(?m)^` + c.uid + `\s`).MatchString(out) {
			t.Errorf("connections does not list uid %s:\n%s", c.uid, out)
		}
	}

	// A second start is refused, naming the pid.
	_, stderr, code := runCLI(t, "-c", cfg, "start", "-d")
	if code != 1 || !strings.Contains(stderr, fmt.Sprintf("already running (pid %d", pid)) {
		t.Errorf("second start -d: got exit %d, stderr %q; want 1 naming pid %d", code, stderr, pid)
	}

	out, stderr, code = runCLI(t, "-c", cfg, "stop")
	if code != 0 {
		t.Fatalf("stop: exit %d: %s", code, stderr)
	}
	if !strings.Contains(out, "stopped") {
		t.Errorf("stop printed %q", out)
	}
	for _, c := range clients {
		c.waitFor("* server is shutting down")
		c.waitEOF()
	}
	if syscall.Kill(pid, 0) == nil && !exited(pid) {
		t.Errorf("pid %d still runs after stop", pid)
	}
	for _, f := range []string{pidFile, sock} {
		if exists(f) {
			t.Errorf("%s still exists after stop", f)
		}
	}
}

func TestStartAfterKill9ReplacesStalePidfile(t *testing.T) {
	t.Parallel()
	port := freePort(t)
	cfg := writeConfig(t, "", port)
	pid := startDaemon(t, cfg)
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitGone(context.Background(), pid, filepath.Join(runDir(cfg), "fastws.pid"), testTimeout)

	out, stderr, code := runCLI(t, "-c", cfg, "start", "-d")
	if code != 0 {
		t.Fatalf("start -d after kill -9: exit %d: %s", code, stderr)
	}
	if !strings.Contains(stderr, "stale pidfile") || !strings.Contains(stderr, strconv.Itoa(pid)) {
		t.Errorf("start -d after kill -9: stderr %q does not note the stale pidfile of pid %d", stderr, pid)
	}
	newPID := daemonPID(t, cfg, "start -d after kill -9", out)
	connect(t, port)

	// kill: SIGKILL by pidfile, removes pidfile and socket.
	out, stderr, code = runCLI(t, "-c", cfg, "kill")
	if code != 0 || !strings.Contains(out, strconv.Itoa(newPID)) {
		t.Fatalf("kill: exit %d, out %q, stderr %q", code, out, stderr)
	}
	for _, f := range []string{"fastws.pid", "fastws.sock"} {
		if exists(filepath.Join(runDir(cfg), f)) {
			t.Errorf("%s still exists after kill", f)
		}
	}
}

func TestNotRunning(t *testing.T) {
	t.Parallel()
	cfg := writeConfig(t, "", freePort(t))
	for _, verb := range []string{"stop", "status", "connections", "kill", "reload"} {
		t.Run(verb, func(t *testing.T) {
			t.Parallel()
			_, stderr, code := runCLI(t, "-c", cfg, verb)
			if code != 1 || !strings.Contains(stderr, "fastws is not running") || !strings.Contains(stderr, "start -d") {
				t.Errorf("got exit %d, stderr %q; want 1, 'not running' and what to do", code, stderr)
			}
		})
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestRestartAndLogReopen(t *testing.T) {
	t.Parallel()
	port := freePort(t)
	cfg := writeConfig(t, "", port)
	pid := startDaemon(t, cfg)
	c := connect(t, port)

	// logrotate: move the log away, SIGUSR1, the daemon writes a new one.
	logPath := filepath.Join(runDir(cfg), "fastws.log")
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
		time.Sleep(10 * time.Millisecond)
	}

	out, stderr, code := runCLI(t, "-c", cfg, "restart")
	if code != 0 {
		t.Fatalf("restart: exit %d: %s%s", code, out, stderr)
	}
	if newPID := daemonPID(t, cfg, "restart", out); newPID == pid {
		t.Fatalf("restart printed %q, want a new pid", out)
	}
	c.waitFor("* server is shutting down")
	c.waitEOF()
	connect(t, port)
	if _, _, code := runCLI(t, "-c", cfg, "stop"); code != 0 {
		t.Errorf("stop after restart: exit %d", code)
	}
}
