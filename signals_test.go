package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// stubbornDaemon starts a process that says "term" on SIGTERM and goes on,
// and makes it the running daemon of cfg: its pid in a pidfile the test
// holds locked. The status socket is absent, so stop falls back to SIGTERM.
// It returns the pid and the process's output lines.
func stubbornDaemon(t *testing.T, cfg string) (int, <-chan string) {
	t.Helper()
	sh := exec.Command("sh", "-c", `trap 'echo term' TERM; echo ready; while :; do sleep 1; done`)
	out, err := sh.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := sh.Start(); err != nil {
		t.Fatal(err)
	}
	pid := sh.Process.Pid
	t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGKILL); _ = sh.Wait() })
	ch := lines(out)
	waitLine(t, "sh", ch, regexp.MustCompile(`^ready$`))

	dir := runDir(cfg)
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(filepath.Join(dir, "fastws.pid"), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	if _, err := f.WriteString(strconv.Itoa(pid) + "\n"); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		t.Fatal(err)
	}
	return pid, ch
}

// TestStopInterrupted checks that Ctrl-C ends a `fastws stop` that waits
// for a daemon slow to exit at once, with a message that says what state
// it leaves, rather than at the end of its --timeout.
func TestStopInterrupted(t *testing.T) {
	t.Parallel()
	cfg := writeConfig(t, "", freePort(t))
	pid, shOut := stubbornDaemon(t, cfg)

	stop := exec.Command(binary, "-c", cfg, "stop", "--timeout", "120s")
	var o, e bytes.Buffer
	stop.Stdout, stop.Stderr = &o, &e
	if err := stop.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = stop.Wait(); close(done) }()
	t.Cleanup(func() {
		select {
		case <-done:
		default:
			_ = stop.Process.Kill()
			<-done
		}
	})
	// "term": stop has sent SIGTERM and now waits for pid to go.
	waitLine(t, "sh", shOut, regexp.MustCompile(`^term$`))
	sent := time.Now()
	if err := stop.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
	case <-time.After(testTimeout):
		t.Fatalf("stop still waits %s after SIGINT; stderr %q", testTimeout, e.String())
	}
	code := stop.ProcessState.ExitCode()
	want := "interrupted: pid " + strconv.Itoa(pid) + " was asked to stop and may still be stopping"
	if code != exitFailure || !strings.Contains(e.String(), want) {
		t.Errorf("got exit %d, stderr %q; want %d and %q", code, e.String(), exitFailure, want)
	}
	t.Logf("stop exited %s after SIGINT", time.Since(sent).Round(time.Millisecond))
}
