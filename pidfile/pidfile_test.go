package pidfile

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// TestMain turns the test binary into the helper process of the
// cross-process tests when PIDFILE_HELPER=1.
func TestMain(m *testing.M) {
	if os.Getenv("PIDFILE_HELPER") == "1" {
		os.Exit(helperMain())
	}
	os.Exit(m.Run())
}

// helperMain acquires the pidfile named by PIDFILE_PATH (none if empty),
// prints "ready" and holds it until stdin is closed, then releases it.
func helperMain() int {
	var pf *File
	if path := os.Getenv("PIDFILE_PATH"); path != "" {
		var err error
		if pf, err = Acquire(path); err != nil {
			fmt.Fprintln(os.Stderr, "helper:", err)
			return 1
		}
	}
	fmt.Println("ready")
	io.Copy(io.Discard, os.Stdin)
	if pf != nil {
		if err := pf.Release(); err != nil {
			fmt.Fprintln(os.Stderr, "helper:", err)
			return 1
		}
	}
	return 0
}

// helper is a running helper process.
type helper struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	pid   int
}

// startHelper starts a helper process holding path (nothing if path is
// empty) and returns once it is ready. It is killed at cleanup.
func startHelper(t testing.TB, path string) *helper {
	t.Helper()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), "PIDFILE_HELPER=1", "PIDFILE_PATH="+path,
		// Under -race a helper exiting 0 would otherwise linger for 1s.
		"GORACE="+os.Getenv("GORACE")+" atexit_sleep_ms=0")
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	h := &helper{cmd: cmd, stdin: stdin, pid: cmd.Process.Pid}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || line != "ready\n" {
		t.Fatalf("helper said %q, %v; want %q", line, err, "ready\n")
	}
	return h
}

// kill ends the helper with SIGKILL, leaving its pidfile behind.
func (h *helper) kill(t testing.TB) {
	t.Helper()
	if err := h.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	err := h.cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("helper ended with %v, want killed by SIGKILL", err)
	}
}

// stop ends the helper gracefully: it releases its pidfile.
func (h *helper) stop(t testing.TB) {
	t.Helper()
	h.stdin.Close()
	if err := h.cmd.Wait(); err != nil {
		t.Fatalf("helper ended with %v, want success", err)
	}
}

// deadPID returns the pid of a process that has exited and been reaped.
func deadPID(t testing.TB) int {
	t.Helper()
	cmd := exec.Command("sleep", "0")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	return cmd.Process.Pid
}

func testPath(t testing.TB) string {
	t.Helper()
	return filepath.Join(t.TempDir(), "run", "fastws.pid")
}

func writeFile(t testing.TB, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func readFile(t testing.TB, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func mustAcquire(t testing.TB, path string) *File {
	t.Helper()
	pf, err := Acquire(path)
	if err != nil {
		t.Fatalf("Acquire: %v", err)
	}
	t.Cleanup(func() { pf.Release() })
	return pf
}

func wantRunning(t testing.TB, err error, pid int, path string) {
	t.Helper()
	var re *RunningError
	if !errors.As(err, &re) {
		t.Fatalf("got error %v, want *RunningError", err)
	}
	if got, want := *re, (RunningError{PID: pid, Path: path}); got != want {
		t.Fatalf("got %+v, want %+v", got, want)
	}
}

func wantNotExist(t testing.TB, path string) {
	t.Helper()
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("stat %s: got %v, want not exist", path, err)
	}
}

var ourPID = strconv.Itoa(os.Getpid()) + "\n"

// TestFlockConflictsWithinProcess checks the kernel behaviour the in-process
// tests rely on: flock locks belong to open file descriptions, so two opens
// of one file conflict even in the same process.
func TestFlockConflictsWithinProcess(t *testing.T) {
	path := filepath.Join(t.TempDir(), "lock")
	var fds [2]*os.File
	for i := range fds {
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		fds[i] = f
	}
	if err := flock(fds[0], unix.LOCK_EX|unix.LOCK_NB); err != nil {
		t.Fatalf("first flock: %v", err)
	}
	if err := flock(fds[1], unix.LOCK_EX|unix.LOCK_NB); !errors.Is(err, unix.EWOULDBLOCK) {
		t.Fatalf("second flock: got %v, want EWOULDBLOCK", err)
	}
}

func TestAcquireRelease(t *testing.T) {
	umask := unix.Umask(0)
	unix.Umask(umask)

	path := testPath(t)
	pf, err := Acquire(path)
	if err != nil {
		t.Fatalf("Acquire: %v", err)
	}
	if got := pf.Path(); got != path {
		t.Errorf("Path() = %q, want %q", got, path)
	}
	if got := pf.Stale(); got != 0 {
		t.Errorf("Stale() = %d, want 0", got)
	}
	if got := readFile(t, path); got != ourPID {
		t.Errorf("content %q, want %q", got, ourPID)
	}
	for name, want := range map[string]os.FileMode{path: 0o644, filepath.Dir(path): 0o700 | os.ModeDir} {
		fi, err := os.Stat(name)
		if err != nil {
			t.Fatal(err)
		}
		if want &^= os.FileMode(umask); fi.Mode() != want {
			t.Errorf("mode of %s: got %v, want %v", name, fi.Mode(), want)
		}
	}
	if got, err := Read(path); err != nil || got != os.Getpid() {
		t.Errorf("Read: got %d, %v, want %d, nil", got, err, os.Getpid())
	}

	if err := pf.Release(); err != nil {
		t.Fatalf("Release: %v", err)
	}
	wantNotExist(t, path)
	if err := pf.Release(); err != nil {
		t.Errorf("second Release: got %v, want nil", err)
	}

	pf2 := mustAcquire(t, path)
	if got := pf2.Stale(); got != 0 {
		t.Errorf("re-acquired Stale() = %d, want 0", got)
	}
	if got := readFile(t, path); got != ourPID {
		t.Errorf("re-acquired content %q, want %q", got, ourPID)
	}
}

func TestAcquireHeld(t *testing.T) {
	path := testPath(t)
	pf := mustAcquire(t, path)

	_, err := Acquire(path)
	wantRunning(t, err, os.Getpid(), path)
	want := fmt.Sprintf("fastws is already running (pid %d, pidfile %s); stop it with 'fastws stop' or 'fastws kill'", os.Getpid(), path)
	if got := err.Error(); got != want {
		t.Errorf("got message %q, want %q", got, want)
	}
	if got := readFile(t, path); got != ourPID {
		t.Errorf("content after refused Acquire %q, want %q", got, ourPID)
	}

	if err := pf.Release(); err != nil {
		t.Fatal(err)
	}
	mustAcquire(t, path)
}

func TestRunningErrorWithoutPID(t *testing.T) {
	err := &RunningError{Path: "/x/run/fastws.pid"}
	want := "fastws is already running (pidfile /x/run/fastws.pid); stop it with 'fastws stop' or 'fastws kill'"
	if got := err.Error(); got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestAcquireStale(t *testing.T) {
	dead := deadPID(t)
	live := startHelper(t, "").pid
	tests := []struct {
		name      string
		content   string
		wantStale int
	}{
		{"dead pid", fmt.Sprintf("%d\n", dead), dead},
		{"dead pid without newline", strconv.Itoa(dead), dead},
		{"unrelated parent", fmt.Sprintf("%d\n", os.Getppid()), os.Getppid()},
		{"unrelated child", fmt.Sprintf("%d\n", live), live},
		{"our own pid", ourPID, 0},
		{"empty", "", 0},
		{"garbage", "not a pid\n", 0},
		{"zero", "0\n", 0},
		{"negative", "-1\n", 0},
		{"plus sign", "+123\n", 0},
		{"too long", strings.Repeat("9", 40) + "\n", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := testPath(t)
			writeFile(t, path, tt.content)
			pf, err := Acquire(path)
			if err != nil {
				t.Fatalf("Acquire: %v", err)
			}
			defer pf.Release()
			if got := pf.Stale(); got != tt.wantStale {
				t.Errorf("Stale() = %d, want %d", got, tt.wantStale)
			}
			if got := readFile(t, path); got != ourPID {
				t.Errorf("content %q, want %q", got, ourPID)
			}
		})
	}
}

func TestRead(t *testing.T) {
	dead := deadPID(t)
	tests := []struct {
		name    string
		setup   func(t *testing.T, path string)
		wantPID int
		wantErr []string // substrings of an error wrapping ErrNotRunning
	}{
		{
			name:    "missing",
			setup:   func(*testing.T, string) {},
			wantErr: []string{"does not exist"},
		},
		{
			name:    "stale dead pid",
			setup:   func(t *testing.T, path string) { writeFile(t, path, fmt.Sprintf("%d\n", dead)) },
			wantErr: []string{"stale", strconv.Itoa(dead)},
		},
		{
			name:    "stale unrelated live pid",
			setup:   func(t *testing.T, path string) { writeFile(t, path, fmt.Sprintf("%d\n", os.Getppid())) },
			wantErr: []string{"stale", strconv.Itoa(os.Getppid())},
		},
		{
			name:    "empty",
			setup:   func(t *testing.T, path string) { writeFile(t, path, "") },
			wantErr: []string{"stale", "no valid pid"},
		},
		{
			name:    "garbage",
			setup:   func(t *testing.T, path string) { writeFile(t, path, "\x00\x01garbage") },
			wantErr: []string{"stale", "no valid pid"},
		},
		{
			name:    "held",
			setup:   func(t *testing.T, path string) { mustAcquire(t, path) },
			wantPID: os.Getpid(),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := testPath(t)
			tt.setup(t, path)
			before, _ := os.ReadFile(path)

			got, err := Read(path)
			if tt.wantErr == nil {
				if err != nil || got != tt.wantPID {
					t.Fatalf("got %d, %v, want %d, nil", got, err, tt.wantPID)
				}
			} else {
				if !errors.Is(err, ErrNotRunning) || got != 0 {
					t.Fatalf("got %d, %v, want 0, ErrNotRunning", got, err)
				}
				for _, s := range append(tt.wantErr, path) {
					if !strings.Contains(err.Error(), s) {
						t.Errorf("got error %q, want it to contain %q", err, s)
					}
				}
			}

			// Read must neither change nor remove the file, nor keep a lock.
			after, _ := os.ReadFile(path)
			if string(after) != string(before) {
				t.Errorf("content after Read %q, want %q", after, before)
			}
			if tt.wantErr != nil {
				mustAcquire(t, path)
			} else {
				_, err := Acquire(path)
				wantRunning(t, err, tt.wantPID, path)
			}
		})
	}
}

func TestRemoveStale(t *testing.T) {
	tests := []struct {
		name        string
		setup       func(t *testing.T, path string)
		wantRemoved bool
	}{
		{"missing", func(*testing.T, string) {}, false},
		{"stale", func(t *testing.T, path string) { writeFile(t, path, fmt.Sprintf("%d\n", deadPID(t))) }, true},
		{"empty", func(t *testing.T, path string) { writeFile(t, path, "") }, true},
		{"held", func(t *testing.T, path string) { mustAcquire(t, path) }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := testPath(t)
			tt.setup(t, path)
			before, beforeErr := os.ReadFile(path)

			removed, err := RemoveStale(path)
			if err != nil || removed != tt.wantRemoved {
				t.Fatalf("got %v, %v, want %v, nil", removed, err, tt.wantRemoved)
			}
			after, afterErr := os.ReadFile(path)
			if removed || beforeErr != nil {
				wantNotExist(t, path)
			} else if afterErr != nil || string(after) != string(before) {
				t.Errorf("after RemoveStale: got %q, %v, want %q", after, afterErr, before)
			}
		})
	}
}

// TestReleaseKeepsForeignFile checks that Release leaves alone a pidfile
// that another daemon created after ours was deleted by hand.
func TestReleaseKeepsForeignFile(t *testing.T) {
	path := testPath(t)
	first := mustAcquire(t, path)
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	mustAcquire(t, path)
	if err := first.Release(); err != nil {
		t.Fatalf("Release: %v", err)
	}
	if got, err := Read(path); err != nil || got != os.Getpid() {
		t.Errorf("Read: got %d, %v, want %d, nil", got, err, os.Getpid())
	}
}

func TestReleaseConcurrent(t *testing.T) {
	path := testPath(t)
	pf := mustAcquire(t, path)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			if err := pf.Release(); err != nil {
				t.Errorf("Release: %v", err)
			}
		})
	}
	wg.Wait()
	wantNotExist(t, path)
	mustAcquire(t, path)
}

// setHook installs testHookOpened for one call and removes it at cleanup.
func setHook(t *testing.T, fn func(path string)) {
	t.Helper()
	testHookOpened = func(path string) {
		testHookOpened = nil
		fn(path)
	}
	t.Cleanup(func() { testHookOpened = nil })
}

// TestAcquireRelockAfterUnlink recreates the race where another daemon
// releases (unlinks, then unlocks) the pidfile between Acquire's open and
// its lock: Acquire must not settle for a lock on the unlinked file.
func TestAcquireRelockAfterUnlink(t *testing.T) {
	path := testPath(t)
	writeFile(t, path, fmt.Sprintf("%d\n", deadPID(t)))
	setHook(t, func(path string) {
		if err := os.Remove(path); err != nil {
			t.Error(err)
		}
	})
	mustAcquire(t, path)
	if got, err := Read(path); err != nil || got != os.Getpid() {
		t.Fatalf("Read: got %d, %v, want %d, nil", got, err, os.Getpid())
	}
	_, err := Acquire(path)
	wantRunning(t, err, os.Getpid(), path)
}

// TestRemoveStaleAfterReplace recreates the race where, between
// RemoveStale's open of a stale pidfile and its lock, the file is replaced
// by a new daemon's: RemoveStale must not remove the new one.
func TestRemoveStaleAfterReplace(t *testing.T) {
	path := testPath(t)
	writeFile(t, path, fmt.Sprintf("%d\n", deadPID(t)))
	setHook(t, func(path string) {
		if err := os.Remove(path); err != nil {
			t.Error(err)
		}
		mustAcquire(t, path)
	})
	removed, err := RemoveStale(path)
	if err != nil || removed {
		t.Fatalf("got %v, %v, want false, nil", removed, err)
	}
	if got, err := Read(path); err != nil || got != os.Getpid() {
		t.Fatalf("Read: got %d, %v, want %d, nil", got, err, os.Getpid())
	}
}

// TestReadAfterRelease recreates Read opening a pidfile just before its
// daemon releases it: Read must report the daemon gone, not the file stale.
func TestReadAfterRelease(t *testing.T) {
	path := testPath(t)
	pf := mustAcquire(t, path)
	setHook(t, func(string) {
		if err := pf.Release(); err != nil {
			t.Error(err)
		}
	})
	_, err := Read(path)
	if !errors.Is(err, ErrNotRunning) || !strings.Contains(err.Error(), "does not exist") {
		t.Fatalf("got %v, want ErrNotRunning for a missing pidfile", err)
	}
}

func TestAcquireConcurrent(t *testing.T) {
	path := testPath(t)
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		winners []*File
		losers  []error
	)
	for range 16 {
		wg.Go(func() {
			pf, err := Acquire(path)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				losers = append(losers, err)
			} else {
				winners = append(winners, pf)
			}
		})
	}
	wg.Wait()
	if len(winners) != 1 {
		t.Fatalf("got %d successful Acquires, want 1", len(winners))
	}
	for _, err := range losers {
		wantRunning(t, err, os.Getpid(), path)
	}
	if err := winners[0].Release(); err != nil {
		t.Fatal(err)
	}
}

// TestAcquireDuringReads checks that the lock probes of concurrent Reads
// never make Acquire refuse a stale pidfile, even one naming a live process.
func TestAcquireDuringReads(t *testing.T) {
	path := testPath(t)
	stale := fmt.Sprintf("%d\n", os.Getppid())
	done := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-done:
					return
				default:
				}
				if _, err := Read(path); err != nil && !errors.Is(err, ErrNotRunning) {
					t.Errorf("Read: %v", err)
				}
			}
		})
	}
	for range 200 {
		writeFile(t, path, stale)
		pf, err := Acquire(path)
		if err != nil {
			t.Errorf("Acquire: %v", err)
			break
		}
		if got := pf.Stale(); got != os.Getppid() {
			t.Errorf("Stale() = %d, want %d", got, os.Getppid())
		}
		if err := pf.Release(); err != nil {
			t.Fatal(err)
		}
	}
	close(done)
	wg.Wait()
}

// TestLockNotInherited checks that a process started while the pidfile is
// held does not inherit the lock: once our descriptor closes (as when we
// crash), the pidfile is free even though the child lives on.
func TestLockNotInherited(t *testing.T) {
	path := testPath(t)
	pf := mustAcquire(t, path)
	startHelper(t, "")
	pf.mu.Lock()
	pf.f.Close()
	pf.f = nil
	pf.mu.Unlock()

	if _, err := Read(path); !errors.Is(err, ErrNotRunning) {
		t.Errorf("Read: got %v, want ErrNotRunning", err)
	}
	mustAcquire(t, path)
}

func TestCrossProcess(t *testing.T) {
	tests := []struct {
		name  string
		check func(t *testing.T, h *helper, path string)
	}{
		{"sigkill then acquire", func(t *testing.T, h *helper, path string) {
			h.kill(t)
			_, err := Read(path)
			if !errors.Is(err, ErrNotRunning) || !strings.Contains(err.Error(), strconv.Itoa(h.pid)) {
				t.Fatalf("Read: got %v, want ErrNotRunning naming pid %d", err, h.pid)
			}
			pf := mustAcquire(t, path)
			if got := pf.Stale(); got != h.pid {
				t.Errorf("Stale() = %d, want %d", got, h.pid)
			}
		}},
		{"sigkill then remove stale", func(t *testing.T, h *helper, path string) {
			h.kill(t)
			if removed, err := RemoveStale(path); err != nil || !removed {
				t.Fatalf("RemoveStale: got %v, %v, want true, nil", removed, err)
			}
			wantNotExist(t, path)
		}},
		{"graceful release", func(t *testing.T, h *helper, path string) {
			h.stop(t)
			wantNotExist(t, path)
			if _, err := Read(path); !errors.Is(err, ErrNotRunning) {
				t.Fatalf("Read: got %v, want ErrNotRunning", err)
			}
			if pf := mustAcquire(t, path); pf.Stale() != 0 {
				t.Errorf("Stale() = %d, want 0", pf.Stale())
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := testPath(t)
			h := startHelper(t, path)

			_, err := Acquire(path)
			wantRunning(t, err, h.pid, path)
			if got, err := Read(path); err != nil || got != h.pid {
				t.Fatalf("Read: got %d, %v, want %d, nil", got, err, h.pid)
			}
			if removed, err := RemoveStale(path); err != nil || removed {
				t.Fatalf("RemoveStale: got %v, %v, want false, nil", removed, err)
			}
			tt.check(t, h, path)
		})
	}
}

// TestSymlinkRefused checks that a symbolic link planted at the pidfile's
// path is refused by every entry point and that the file it names is left
// as it was, even when that file is a stale pidfile or names a live process.
func TestSymlinkRefused(t *testing.T) {
	tests := []struct {
		name    string
		content string
	}{
		{"victim", "root:x:0:0:root:/root:/bin/bash\n"},
		{"stale pid", fmt.Sprintf("%d\n", deadPID(t))},
		{"live pid", ourPID},
		{"empty", ""},
	}
	calls := []struct {
		name string
		call func(path string) error
	}{
		{"Acquire", func(path string) error {
			pf, err := Acquire(path)
			if err == nil {
				pf.Release()
			}
			return err
		}},
		{"Read", func(path string) error { _, err := Read(path); return err }},
		{"RemoveStale", func(path string) error {
			removed, err := RemoveStale(path)
			if removed {
				return errors.New("removed")
			}
			return err
		}},
	}
	for _, tt := range tests {
		for _, c := range calls {
			t.Run(tt.name+"/"+c.name, func(t *testing.T) {
				dir := t.TempDir()
				target := filepath.Join(dir, "target")
				writeFile(t, target, tt.content)
				path := filepath.Join(dir, "run", "fastws.pid")
				if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
					t.Fatal(err)
				}
				if err := os.Symlink(target, path); err != nil {
					t.Fatal(err)
				}

				err := c.call(path)
				if !errors.Is(err, ErrSymlink) {
					t.Fatalf("got %v, want an error wrapping ErrSymlink", err)
				}
				if !strings.Contains(err.Error(), path) {
					t.Errorf("error %q does not name %s", err, path)
				}
				if got := readFile(t, target); got != tt.content {
					t.Errorf("target: got %q, want %q untouched", got, tt.content)
				}
				if fi, err := os.Lstat(path); err != nil || fi.Mode().Type() != os.ModeSymlink {
					t.Errorf("the link was not left in place: %v, %v", fi, err)
				}
			})
		}
	}
}
