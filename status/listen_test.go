package status

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestSocketPath(t *testing.T) {
	if got, want := SocketPath("/srv/fastws/run"), "/srv/fastws/run/fastws.sock"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestSocketMode(t *testing.T) {
	for _, umask := range []int{0, 0o022, 0o077} {
		t.Run(fmt.Sprintf("umask %03o", umask), func(t *testing.T) {
			old := syscall.Umask(umask)
			t.Cleanup(func() { syscall.Umask(old) })
			_, path := startServer(t, &fakeHandler{}, nil)
			fi, err := os.Lstat(path)
			if err != nil {
				t.Fatal(err)
			}
			if got, want := fi.Mode().Type(), os.ModeSocket; got != want {
				t.Errorf("got type %v, want %v", got, want)
			}
			if got, want := fi.Mode().Perm(), os.FileMode(0o600); got != want {
				t.Errorf("got mode %v, want %v", got, want)
			}
		})
	}
}

func TestListenReplacesStaleSocket(t *testing.T) {
	path := socketPath(t)
	// A listener that closes without unlinking leaves what kill -9 leaves.
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	ln.SetUnlinkOnClose(false)
	ln.Close()
	if _, err := os.Lstat(path); err != nil {
		t.Fatalf("stale socket: %v", err)
	}

	h := &fakeHandler{snap: testSnapshot()}
	s, err := Listen(path, h)
	if err != nil {
		t.Fatalf("Listen over a stale socket: %v", err)
	}
	defer s.Close()
	mustQuery(t, path, h.snap)
}

func TestListenRefusesLiveSocket(t *testing.T) {
	first := &fakeHandler{snap: testSnapshot()}
	_, path := startServer(t, first, nil)

	s, err := Listen(path, &fakeHandler{})
	if err == nil {
		s.Close()
		t.Fatal("second Listen on a live socket: got no error")
	}
	if want := "is in use by another fastws"; !strings.Contains(err.Error(), want) {
		t.Errorf("got error %q, want it to contain %q", err, want)
	}
	mustQuery(t, path, first.snap) // the first server keeps its socket
}

func TestListenRefusesNonSocket(t *testing.T) {
	path := socketPath(t)
	if err := os.WriteFile(path, []byte("precious"), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := Listen(path, &fakeHandler{})
	if err == nil {
		s.Close()
		t.Fatal("Listen over a regular file: got no error")
	}
	if b, _ := os.ReadFile(path); string(b) != "precious" {
		t.Errorf("got file content %q, want it untouched", b)
	}
}

func TestListenRefusesLongPath(t *testing.T) {
	path := filepath.Join(t.TempDir(), strings.Repeat("x", 120), SocketName)
	_, err := Listen(path, &fakeHandler{})
	if err == nil || !strings.Contains(err.Error(), "use a shorter runDir") {
		t.Errorf("got %v, want an error that says to use a shorter runDir", err)
	}
}

func TestClose(t *testing.T) {
	path := socketPath(t)
	s, err := Listen(path, &fakeHandler{})
	if err != nil {
		t.Fatal(err)
	}
	if got := s.Path(); got != path {
		t.Errorf("Path: got %q, want %q", got, path)
	}
	for i := range 2 {
		if err := s.Close(); err != nil {
			t.Errorf("Close #%d: %v", i+1, err)
		}
	}
	if _, err := os.Lstat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket file after Close: got %v, want it gone", err)
	}
	if _, err := Query(testCtx(t), path); !errors.Is(err, ErrNoDaemon) {
		t.Errorf("Query after Close: got %v, want ErrNoDaemon", err)
	}
}

func TestCloseLeavesAReplacedFile(t *testing.T) {
	path := socketPath(t)
	s, err := Listen(path, &fakeHandler{})
	if err != nil {
		t.Fatal(err)
	}
	// Someone removed the socket and put something else in its place.
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if _, err := os.Lstat(path); err != nil {
		t.Errorf("Close removed a file it did not create: %v", err)
	}
}

func TestListenInMissingFolder(t *testing.T) {
	path := SocketPath(filepath.Join(t.TempDir(), "missing"))
	_, err := Listen(path, &fakeHandler{})
	if err == nil {
		t.Fatal("got no error")
	}
	if want := "status socket " + path + ": bind: no such file or directory"; err.Error() != want {
		t.Errorf("got %q, want %q", err, want)
	}
	if !errors.Is(err, syscall.ENOENT) {
		t.Errorf("got %v, want it to wrap ENOENT", err)
	}
}

func TestCloseCancelsConnections(t *testing.T) {
	h := &fakeHandler{entered: make(chan struct{}, 1), block: make(chan struct{})}
	t.Cleanup(func() { close(h.block) })
	path := socketPath(t)
	s, err := Listen(path, h)
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() {
		_, err := QueryConnections(testCtx(t), path)
		errc <- err
	}()
	receive(t, h.entered, "the listing to begin")
	if err := s.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	err = receive(t, errc, "QueryConnections to return")
	var re *RemoteError
	if !errors.As(err, &re) || !strings.Contains(err.Error(), "context canceled") {
		t.Errorf("got %v, want a *RemoteError saying the listing was cancelled", err)
	}
}

func TestCloseIsBounded(t *testing.T) {
	h := &fakeHandler{entered: make(chan struct{}, 1), block: make(chan struct{})}
	t.Cleanup(func() { close(h.block) }) // the stuck Reload ends with the test
	opt := defaultOptions()
	opt.closeWait = 20 * time.Millisecond
	path := socketPath(t)
	s, err := listen(path, h, opt)
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() { errc <- Reload(testCtx(t), path) }()
	receive(t, h.entered, "the reload to begin")

	done := make(chan error, 1)
	go func() { done <- s.Close() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Close: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not return while a Reload was stuck")
	}
	if err := receive(t, errc, "Reload to return"); err == nil || !strings.Contains(err.Error(), "hung up without replying") {
		t.Errorf("Reload cut by Close: got %v, want a hang-up error", err)
	}
	if _, err := os.Lstat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket file after Close: got %v, want it gone", err)
	}
}

// TestListenRefusesSymlink checks that a symbolic link at the socket's path
// is refused, not followed: neither the stale socket nor the file it names
// is removed.
func TestListenRefusesSymlink(t *testing.T) {
	for _, kind := range []string{"stale socket", "regular file"} {
		t.Run(kind, func(t *testing.T) {
			path := socketPath(t)
			target := filepath.Join(t.TempDir(), "target")
			if kind == "stale socket" {
				ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: target, Net: "unix"})
				if err != nil {
					t.Fatal(err)
				}
				ln.SetUnlinkOnClose(false)
				ln.Close()
			} else if err := os.WriteFile(target, []byte("precious"), 0o600); err != nil {
				t.Fatal(err)
			}
			before, err := os.Lstat(target)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(target, path); err != nil {
				t.Fatal(err)
			}
			s, err := Listen(path, &fakeHandler{})
			if err == nil {
				s.Close()
				t.Fatal("Listen over a symbolic link: got no error")
			}
			if want := "is not a socket"; !strings.Contains(err.Error(), want) {
				t.Errorf("got error %q, want it to contain %q", err, want)
			}
			if after, err := os.Lstat(target); err != nil || !os.SameFile(before, after) || after.Mode() != before.Mode() {
				t.Errorf("target after Listen: %v, %v; want it untouched", after, err)
			}
			if fi, err := os.Lstat(path); err != nil || fi.Mode().Type() != os.ModeSymlink {
				t.Errorf("link after Listen: %v, %v; want it left", fi, err)
			}
		})
	}
}
