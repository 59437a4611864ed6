// Package pidfile is the single-instance guard of fastws: a pidfile that is
// held under an exclusive flock(2) for as long as the daemon runs.
//
// The lock, not the file's existence or the pid written in it, is what says
// a daemon is running. gnet silently removes an existing unix socket before
// binding and SO_REUSEPORT lets two processes share a port, so nothing else
// stops a second daemon. A pidfile that exists but that nobody has locked is
// stale: its process died without cleaning up (kill -9, a crash during
// startup), and the pid in it may since have been reused by an unrelated
// process. Such a file is taken over by Acquire and ignored by Read.
//
// flock locks belong to an open file description, so a second open of the
// same path conflicts with the first even inside one process, and a lock
// disappears when its holder dies. Descriptors are opened close-on-exec, so
// a re-exec'd daemon child or any command the daemon runs does not inherit
// the lock.
//
// A symbolic link at the pidfile's path is never followed: a daemon running
// as root would otherwise truncate whatever file the link names. Every open
// uses O_NOFOLLOW and such a path is refused with an error.
//
// The package imports nothing of fastws; it is used by "fastws start" and by
// "fastws status", "stop" and "kill".
package pidfile

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// ErrNotRunning is returned, wrapped with the pidfile's path, by Read when no
// process holds the pidfile's lock: the file is missing or stale.
var ErrNotRunning = errors.New("not running")

// RunningError is returned by Acquire when another process holds the lock.
type RunningError struct {
	PID  int    // pid written in the pidfile; 0 if it could not be read
	Path string // the pidfile
}

// Error tells the user which process runs and how to stop it.
func (e *RunningError) Error() string {
	if e.PID <= 0 {
		return fmt.Sprintf("fastws is already running (pidfile %s); stop it with 'fastws stop' or 'fastws kill'", e.Path)
	}
	return fmt.Sprintf("fastws is already running (pid %d, pidfile %s); stop it with 'fastws stop' or 'fastws kill'", e.PID, e.Path)
}

const (
	// settleTimeout bounds how long Acquire, Read and RemoveStale wait for
	// another process to finish a transient step: writing its pid right after
	// locking, probing the lock, or unlinking a pidfile it is releasing.
	settleTimeout = time.Second
	// minPause and maxPause bound the pause between two looks while waiting
	// to settle; it doubles after each look. Most transient states last
	// microseconds, so the first looks come quickly.
	minPause = 50 * time.Microsecond
	maxPause = 10 * time.Millisecond
	// maxContent caps how much of a pidfile is read; a pid and "\n" fit.
	maxContent = 32
)

// testHookOpened, if set, runs after a pidfile has been opened and before it
// is locked, so tests can recreate races with other processes.
var testHookOpened func(path string)

// File is a held, locked pidfile, returned by Acquire. Its methods are safe
// for concurrent use.
type File struct {
	path  string
	stale int

	mu sync.Mutex
	f  *os.File // nil once released
}

// Acquire creates or opens path (mode 0644, creating its parent directory
// with mode 0700), takes an exclusive lock on it and writes the calling
// process's pid followed by "\n".
//
// If another process holds the lock, Acquire returns a *RunningError naming
// the pid written in the file. A pidfile nobody holds is stale: Acquire takes
// it over and reports the pid it found in it through File.Stale.
//
// Acquire is safe for concurrent use, also with Read and RemoveStale in this
// or other processes. It does not wait for the lock, but may block for up to
// about a second while another process is in the middle of acquiring,
// probing or releasing the same pidfile.
func Acquire(path string) (*File, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("create pidfile directory: %w", err)
	}
	w := newWaiter()
	for {
		pf, retry, err := tryAcquire(path)
		if retry == nil {
			return pf, err
		}
		if w.expired() {
			return nil, retry
		}
		w.pause()
	}
}

// tryAcquire makes one attempt at Acquire. When it meets a transient state
// worth another look it returns a non-nil retry, the error to report if the
// state does not settle.
func tryAcquire(path string) (pf *File, retry, err error) {
	f, err := open(path, os.O_RDWR|os.O_CREATE)
	if err != nil {
		return nil, nil, err
	}
	if testHookOpened != nil {
		testHookOpened(path)
	}
	err = flock(f, unix.LOCK_EX|unix.LOCK_NB)
	if errors.Is(err, unix.EWOULDBLOCK) {
		defer f.Close()
		st, pid, err := holder(f, path)
		switch {
		case err != nil:
			return nil, nil, err
		case st == held:
			return nil, nil, &RunningError{PID: pid, Path: path}
		default:
			return nil, &RunningError{PID: pid, Path: path}, nil
		}
	}
	if err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("lock pidfile %s: %w", path, err)
	}

	// Between our open and our lock the holder may have released the file:
	// it unlinked it, then unlocked. We would then hold a lock on an inode
	// no longer reachable through path, and a second Acquire would succeed.
	if same, err := sameFile(f, path); err != nil || !same {
		f.Close()
		if err != nil {
			return nil, nil, err
		}
		return nil, fmt.Errorf("pidfile %s was replaced while being locked", path), nil
	}

	stale := readPID(f)
	if stale == os.Getpid() {
		// Left by an earlier process that had our pid (a container's daemon
		// often gets the same one every boot): no stale daemon to report.
		stale = 0
	}
	if err := writePID(f, os.Getpid()); err != nil {
		// The file is ours (it was new or stale): do not leave it garbled.
		os.Remove(path)
		f.Close()
		return nil, nil, fmt.Errorf("write pidfile: %w", err)
	}
	return &File{path: path, stale: stale, f: f}, nil, nil
}

// Stale returns the pid found in the stale pidfile that Acquire replaced, or
// 0 if the pidfile was new, empty or unreadable, or named the calling process
// itself. It is safe for concurrent use and does not block.
func (pf *File) Stale() int { return pf.stale }

// Path returns the pidfile's path as given to Acquire. It is safe for
// concurrent use and does not block.
func (pf *File) Path() string { return pf.path }

// Release removes the pidfile, then unlocks and closes it. It removes the
// file first so that no other process can find it unlocked while it still
// names this one. It leaves path alone if it no longer refers to the locked
// file (someone deleted it and another daemon created a new one).
//
// Release is idempotent: calls after the first return nil. It is safe for
// concurrent use and does not block on other processes.
func (pf *File) Release() error {
	pf.mu.Lock()
	defer pf.mu.Unlock()
	if pf.f == nil {
		return nil
	}
	var errs []error
	if same, err := sameFile(pf.f, pf.path); err != nil {
		errs = append(errs, err)
	} else if same {
		if err := os.Remove(pf.path); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, fmt.Errorf("remove pidfile: %w", err))
		}
	}
	// Closing drops the lock; unlock explicitly anyway so that an error is
	// reported rather than silently ignored.
	if err := flock(pf.f, unix.LOCK_UN); err != nil {
		errs = append(errs, fmt.Errorf("unlock pidfile %s: %w", pf.path, err))
	}
	if err := pf.f.Close(); err != nil {
		errs = append(errs, fmt.Errorf("close pidfile: %w", err))
	}
	pf.f = nil
	return errors.Join(errs...)
}

// Read returns the pid of the process holding path's lock: the running
// daemon. If path does not exist, or exists but nobody holds its lock, Read
// returns an error wrapping ErrNotRunning that names the path and, for a
// stale pidfile, the pid found in it.
//
// Read never creates, modifies or removes the file. To test the lock it takes
// a shared lock on its own descriptor and drops it at once; Acquire treats
// such a probe as transient, so a concurrent Read cannot make a starting
// daemon fail.
//
// Read is safe for concurrent use. It may block for up to about a second
// while another process is in the middle of acquiring or releasing path.
func Read(path string) (pid int, err error) {
	w := newWaiter()
	for {
		st, pid, err := readOnce(path)
		if err != nil {
			return 0, err
		}
		switch st {
		case missing:
			return 0, fmt.Errorf("pidfile %s does not exist: %w", path, ErrNotRunning)
		case free:
			if pid == 0 {
				return 0, fmt.Errorf("pidfile %s is stale (no valid pid): %w", path, ErrNotRunning)
			}
			return 0, fmt.Errorf("pidfile %s is stale (pid %d): %w", path, pid, ErrNotRunning)
		case held:
			return pid, nil
		}
		if w.expired() {
			// The lock is held, which is what matters; the holder just
			// does not look like a local live process (another pid
			// namespace, a pid rewritten by hand).
			if pid == 0 {
				return 0, fmt.Errorf("pidfile %s is locked but holds no valid pid", path)
			}
			return pid, nil
		}
		w.pause()
	}
}

func readOnce(path string) (state, int, error) {
	f, err := open(path, os.O_RDONLY)
	if errors.Is(err, os.ErrNotExist) {
		return missing, 0, nil
	}
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	if testHookOpened != nil {
		testHookOpened(path)
	}
	return holder(f, path)
}

// RemoveStale removes path if it exists and nobody holds its lock, and
// reports whether it removed it. It holds the lock while removing, so it
// never removes a pidfile that a daemon holds or is taking over.
//
// RemoveStale is safe for concurrent use. It may block for up to about a
// second while another process is in the middle of acquiring, probing or
// releasing path.
func RemoveStale(path string) (bool, error) {
	w := newWaiter()
	for {
		removed, retry, err := removeStaleOnce(path)
		if !retry || w.expired() {
			return removed, err
		}
		w.pause()
	}
}

func removeStaleOnce(path string) (removed, retry bool, err error) {
	f, err := open(path, os.O_RDONLY)
	if errors.Is(err, os.ErrNotExist) {
		return false, false, nil
	}
	if err != nil {
		return false, false, err
	}
	defer f.Close()
	if testHookOpened != nil {
		testHookOpened(path)
	}
	err = flock(f, unix.LOCK_EX|unix.LOCK_NB)
	if errors.Is(err, unix.EWOULDBLOCK) {
		// Free here means only Read's shared probes hold the lock.
		st, _, err := holder(f, path)
		return false, err == nil && (st == busy || st == free), err
	}
	if err != nil {
		return false, false, fmt.Errorf("lock pidfile %s: %w", path, err)
	}
	if same, err := sameFile(f, path); err != nil || !same {
		return false, err == nil, err
	}
	if err := os.Remove(path); err != nil {
		return false, false, fmt.Errorf("remove stale pidfile: %w", err)
	}
	return true, false, nil
}

// state is what holder found out about a pidfile's lock.
type state int

const (
	busy    state = iota // in transition; look again shortly
	missing              // path does not exist
	free                 // nobody holds the lock exclusively: stale
	held                 // a live process holds the lock exclusively
)

// holder reports who holds the lock of f, a descriptor of ours opened on
// path that failed to lock it exclusively or has not tried, along with the
// pid written in the file. It tests the lock with a shared lock, dropped at
// once.
//
// The pidfile is free if nobody holds it exclusively. It is held by a
// running daemon if locked exclusively with a live pid in the file. Any
// other state is transient, and busy: f is no longer what path names (a
// daemon released it), or an exclusive holder has not written its pid yet
// (Acquire) or is about to remove the stale file (RemoveStale).
func holder(f *os.File, path string) (state, int, error) {
	// Read the pid before the test, not under the shared lock: any time that
	// lock is held is time in which a starting daemon cannot lock the file.
	// A pidfile found free is stale, and nobody writes a stale pidfile.
	pid := readPID(f)
	err := flock(f, unix.LOCK_SH|unix.LOCK_NB)
	locked := err == nil
	if locked {
		err = flock(f, unix.LOCK_UN)
	} else if errors.Is(err, unix.EWOULDBLOCK) {
		err = nil
	}
	if err != nil {
		return 0, 0, fmt.Errorf("lock pidfile %s: %w", path, err)
	}
	same, err := sameFile(f, path)
	switch {
	case err != nil:
		return 0, 0, err
	case !same:
		return busy, pid, nil
	case locked:
		return free, pid, nil
	case pid > 0 && alive(pid):
		return held, pid, nil
	}
	return busy, pid, nil
}

// waiter paces the looks at a pidfile in transition.
type waiter struct {
	deadline time.Time
	next     time.Duration
}

func newWaiter() *waiter {
	return &waiter{deadline: time.Now().Add(settleTimeout), next: minPause}
}

func (w *waiter) expired() bool { return time.Now().After(w.deadline) }

func (w *waiter) pause() {
	time.Sleep(w.next)
	w.next = min(2*w.next, maxPause)
}

// ErrSymlink is returned, wrapped with the pidfile's path, when that path is
// a symbolic link, which is refused rather than followed.
var ErrSymlink = errors.New("is a symbolic link, which fastws does not follow")

// open opens path with flag, O_NOFOLLOW and O_CLOEXEC (which os adds),
// creating it with mode 0644 if flag says so. The error names the path.
func open(path string, flag int) (*os.File, error) {
	f, err := os.OpenFile(path, flag|unix.O_NOFOLLOW, 0o644)
	if err == nil {
		return f, nil
	}
	if errors.Is(err, unix.ELOOP) {
		// ELOOP also means too many links in the folders above; say
		// symlink only when the pidfile itself is one.
		if fi, lerr := os.Lstat(path); lerr == nil && fi.Mode().Type() == os.ModeSymlink {
			return nil, fmt.Errorf("pidfile %s %w: remove it, find out who put it there, and keep runDir writable by its owner only", path, ErrSymlink)
		}
	}
	return nil, fmt.Errorf("open pidfile: %w", err)
}

// flock calls flock(2) on f, retrying when interrupted by a signal.
func flock(f *os.File, how int) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var ferr error
	if err := rc.Control(func(fd uintptr) {
		for {
			ferr = unix.Flock(int(fd), how)
			if ferr != unix.EINTR {
				return
			}
		}
	}); err != nil {
		return err
	}
	return ferr
}

// sameFile reports whether path still names the file open as f, itself
// and not through a symbolic link.
func sameFile(f *os.File, path string) (bool, error) {
	fi, err := f.Stat()
	if err != nil {
		return false, fmt.Errorf("stat pidfile: %w", err)
	}
	pi, err := os.Lstat(path)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("stat pidfile: %w", err)
	}
	return os.SameFile(fi, pi), nil
}

// readPID returns the pid written in f: decimal digits on the first line.
// Anything else, including an empty file left by a daemon that died during
// startup, yields 0.
func readPID(f *os.File) int {
	buf := make([]byte, maxContent+1)
	n, err := f.ReadAt(buf, 0)
	if err != nil && err != io.EOF || n > maxContent {
		return 0
	}
	// Only the first line counts: right after a shorter pid overwrote a
	// longer one, the file briefly holds "99\n456\n".
	line, _, _ := bytes.Cut(buf[:n], []byte("\n"))
	line = bytes.TrimSpace(line)
	pid, err := strconv.Atoi(string(line))
	if err != nil || pid <= 0 || line[0] == '+' {
		return 0
	}
	return pid
}

// writePID writes pid and "\n" over f's content. It writes before it
// truncates so that a reader never sees an empty file, only the old content,
// the new pid followed by leftovers of the old (see readPID), or the new pid
// alone.
func writePID(f *os.File, pid int) error {
	b := strconv.AppendInt(nil, int64(pid), 10)
	b = append(b, '\n')
	if _, err := f.WriteAt(b, 0); err != nil {
		return err
	}
	return f.Truncate(int64(len(b)))
}

// alive reports whether a process with the given pid exists. pid must be
// positive: kill(2) with 0 or a negative pid signals process groups.
func alive(pid int) bool {
	err := unix.Kill(pid, 0)
	return err == nil || errors.Is(err, unix.EPERM)
}
