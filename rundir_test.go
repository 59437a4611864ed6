package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// runBounded runs the binary like runCLI, but kills it and fails the test if
// it has not exited within testTimeout: a start that should be refused and
// is not would otherwise serve forever.
func runBounded(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(binary, args...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(testTimeout):
		_ = cmd.Process.Kill()
		<-done
		t.Fatalf("%v still ran after %s; stdout %q, stderr %q", args, testTimeout, o.String(), e.String())
	}
	if pid := daemonPIDIn(o.String()); pid != 0 {
		killPID(t, pid)
	}
	return o.String(), e.String(), cmd.ProcessState.ExitCode()
}

// daemonPIDIn returns the pid a successful start -d printed, or 0.
func daemonPIDIn(out string) int {
	var pid int
	if i := strings.Index(out, "(pid "); i >= 0 {
		for _, c := range out[i+5:] {
			if c < '0' || c > '9' {
				break
			}
			pid = pid*10 + int(c-'0')
		}
	}
	return pid
}

func killPID(t *testing.T, pid int) {
	t.Helper()
	if p, err := os.FindProcess(pid); err == nil {
		_ = p.Kill()
	}
}

// TestRunDirRefused checks that start (in the foreground and with -d) and
// check refuse a runDir that others could write into, say how to fix it,
// and write nothing there.
func TestRunDirRefused(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		mode os.FileMode
		want string
	}{
		{"world-writable", 0o777, "is writable by others (mode 0777): chmod 700 "},
		{"world-writable sticky", 0o1777, "is writable by others (mode 0777): chmod 700 "},
		{"group-writable", 0o770, "is writable by its group (mode 0770): chmod 700 "},
	}
	for _, tt := range tests {
		for _, verb := range [][]string{{"start"}, {"start", "-d"}, {"check"}} {
			t.Run(tt.name+"/"+strings.Join(verb, " "), func(t *testing.T) {
				cfg := writeConfig(t, "", freePort(t))
				dir := runDir(cfg)
				if err := os.Mkdir(dir, 0o700); err != nil {
					t.Fatal(err)
				}
				if err := os.Chmod(dir, tt.mode); err != nil {
					t.Fatal(err)
				}
				_, stderr, code := runBounded(t, append([]string{"-c", cfg}, verb...)...)
				if code != exitFailure || !strings.Contains(stderr, "runDir "+dir+" "+tt.want+dir) {
					t.Errorf("got exit %d, stderr %q; want %d and %q", code, stderr, exitFailure, tt.want)
				}
				if ents, _ := os.ReadDir(dir); len(ents) != 0 {
					t.Errorf("runDir holds %v, want nothing written", ents)
				}
			})
		}
	}
}

// TestRunDirNotOwned checks that a runDir owned by another user is refused.
func TestRunDirNotOwned(t *testing.T) {
	t.Parallel()
	if os.Geteuid() != 0 {
		t.Skip("needs root to give a folder to another user")
	}
	cfg := writeConfig(t, "", freePort(t))
	dir := runDir(cfg)
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(dir, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	_, stderr, code := runBounded(t, "-c", cfg, "start")
	if want := "runDir " + dir + " is owned by uid 65534, not by uid 0 that fastws runs as: chown 0 " + dir; code != exitFailure || !strings.Contains(stderr, want) {
		t.Errorf("got exit %d, stderr %q; want %d and %q", code, stderr, exitFailure, want)
	}
}

// TestRunDirCreatedPrivate checks that the runDir fastws creates is
// writable by its owner only, and that check accepts a missing one.
func TestRunDirCreatedPrivate(t *testing.T) {
	t.Parallel()
	cfg := writeConfig(t, "", freePort(t))
	if out, stderr, code := runBounded(t, "-c", cfg, "check"); code != 0 {
		t.Fatalf("check without runDir: got exit %d, %q %q; want 0", code, out, stderr)
	}
	startDaemon(t, cfg)
	fi, err := os.Stat(runDir(cfg))
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != 0o700 {
		t.Errorf("runDir mode: got %#o, want 0700", got)
	}
	if _, stderr, code := runCLI(t, "-c", cfg, "stop"); code != 0 {
		t.Fatalf("stop: exit %d: %s", code, stderr)
	}
}

// TestRunDirSymlinksRefused checks that a symbolic link planted at the log
// file or the pidfile is refused, not followed: the file it names is left
// as it was.
func TestRunDirSymlinksRefused(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, file string
		verb       []string
		want       string
	}{
		{"log, start -d", "fastws.log", []string{"start", "-d"}, "log file %s is a symbolic link, which fastws does not follow"},
		{"pidfile, start", "fastws.pid", []string{"start"}, "pidfile %s is a symbolic link, which fastws does not follow"},
		{"pidfile, start -d", "fastws.pid", []string{"start", "-d"}, "pidfile %s is a symbolic link, which fastws does not follow"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := writeConfig(t, "", freePort(t))
			dir := runDir(cfg)
			if err := os.Mkdir(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			const content = "someone else's file\n"
			target := filepath.Join(t.TempDir(), "victim")
			if err := os.WriteFile(target, []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
			link := filepath.Join(dir, tt.file)
			if err := os.Symlink(target, link); err != nil {
				t.Fatal(err)
			}
			_, stderr, code := runBounded(t, append([]string{"-c", cfg}, tt.verb...)...)
			want := strings.Replace(tt.want, "%s", link, 1)
			if code != exitFailure || !strings.Contains(stderr, want) {
				t.Errorf("got exit %d, stderr %q; want %d and %q", code, stderr, exitFailure, want)
			}
			if b, err := os.ReadFile(target); err != nil || string(b) != content {
				t.Errorf("target: got %q, %v; want %q untouched", b, err, content)
			}
		})
	}
}
