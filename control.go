package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/user"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/fastws/fastws/pidfile"
	"github.com/fastws/fastws/server/config"
	"github.com/fastws/fastws/server/daemon"
	"github.com/fastws/fastws/status"
)

// queryTimeout is how long status and connections wait for the daemon by
// default (--timeout), and bounds stop's request over the status socket.
const queryTimeout = 5 * time.Second

// exitGrace is how long stop waits, past its --timeout, for the daemon
// to exit once it has cut what was left.
const exitGrace = 2 * time.Second

// running returns the pid of the daemon of cfg, or an error that says
// nothing runs and what to do.
func running(cfg *config.Config) (int, error) {
	pid, err := pidfile.Read(daemon.PidPath(cfg))
	if errors.Is(err, fs.ErrPermission) {
		return 0, notYours(cfg)
	}
	if err != nil {
		// err ends in ": not running" (pidfile.ErrNotRunning), which the
		// message says already.
		why := strings.TrimSuffix(err.Error(), ": "+pidfile.ErrNotRunning.Error())
		return 0, &notRunningError{fmt.Sprintf("fastws is not running (%s); start it with 'fastws -c %s start -d'", why, cfg.Path), err}
	}
	return pid, nil
}

// notRunningError is running's error: its text for the user, and what
// pidfile.Read said (pidfile.ErrNotRunning, or why it could not tell).
type notRunningError struct {
	msg string
	err error
}

func (e *notRunningError) Error() string { return e.msg }
func (e *notRunningError) Unwrap() error { return e.err }

// notYours explains a permission denied on cfg's runDir: it is another
// user's, whose daemon this user can neither see nor act on.
func notYours(cfg *config.Config) error {
	fi, err := os.Stat(cfg.RunDir)
	if err != nil {
		return fmt.Errorf("permission denied: the daemon's runDir %s: %w", cfg.RunDir, err)
	}
	uid := daemon.Owner(fi)
	who := strconv.Itoa(uid)
	if u, err := user.LookupId(who); err == nil {
		who = u.Username
	}
	return fmt.Errorf("permission denied: the daemon's runDir %s belongs to uid %d (%s), and you are uid %d; run fastws as that user (sudo -u %s fastws -c %s ...)",
		cfg.RunDir, uid, who, os.Geteuid(), who, cfg.Path)
}

// showFlags parses the flags of status and connections: --json and
// --timeout.
func showFlags(verb string, args []string) (asJSON bool, timeout time.Duration, err error) {
	fs := flag.NewFlagSet(verb, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	j := fs.Bool("json", false, "print JSON")
	t := fs.Duration("timeout", queryTimeout, "how long to wait for the daemon")
	if err := fs.Parse(args); err != nil {
		return false, 0, fmt.Errorf("%s: %w; usage: fastws [-c FILE] %s [--json] [--timeout 5s]", verb, err, verb)
	}
	if *t <= 0 {
		return false, 0, fmt.Errorf("%s: --timeout must be positive", verb)
	}
	return *j, *t, noArgs(verb, fs.Args())
}

// procState returns the state letter of pid in /proc/PID/stat (R, S, T,
// Z, ...), or 0 if it cannot be read.
func procState(pid int) byte {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	// pid (comm) state ...: comm may hold spaces and parentheses.
	i := bytes.LastIndexByte(b, ')')
	if i > 0 && i+2 < len(b) {
		return b[i+2]
	}
	return 0
}

// unanswered explains why the daemon pid did not answer err's request: a
// stopped process is named as such, for it answers nothing and no timeout
// would help. The request itself carried its deadline, so the daemon
// drops it when it gets to it late.
func unanswered(pid int, err error) error {
	if st := procState(pid); st == 'T' || st == 't' {
		return fmt.Errorf("pid %d is stopped (SIGSTOP, Ctrl-Z or a debugger) and answers nothing; 'kill -CONT %d' resumes it; the request was not carried out, and will not be", pid, pid)
	}
	return err
}

func (e *env) status(args []string) (int, error) {
	return e.show("status", args, func(ctx context.Context, sock string) (any, func(io.Writer), error) {
		snap, err := status.Query(ctx, sock)
		return snap, func(w io.Writer) { status.RenderStatus(w, snap) }, err
	})
}

func (e *env) connections(args []string) (int, error) {
	return e.show("connections", args, func(ctx context.Context, sock string) (any, func(io.Writer), error) {
		cs, err := status.QueryConnections(ctx, sock)
		return status.Connections{Connections: cs}, func(w io.Writer) { status.RenderConnections(w, cs) }, err
	})
}

// show runs a read-only verb: it asks the running daemon with query, then
// prints the answer as a table, or as JSON with --json.
func (e *env) show(verb string, args []string, query func(ctx context.Context, sock string) (any, func(io.Writer), error)) (int, error) {
	asJSON, timeout, err := showFlags(verb, args)
	if err != nil {
		return exitUsage, err
	}
	cfg, pid, code, err := e.loadRunning()
	if err != nil {
		return code, err
	}
	ctx, cancel := context.WithTimeout(e.ctx, timeout)
	defer cancel()
	v, render, err := query(ctx, status.SocketPath(cfg.RunDir))
	if err != nil {
		return exitFailure, unanswered(pid, err)
	}
	if asJSON {
		return exitOK, status.WriteJSON(e.stdout, v)
	}
	render(e.stdout)
	return exitOK, nil
}

// loadRunning loads the config and finds its running daemon; on failure
// it returns the exit code to use.
func (e *env) loadRunning() (*config.Config, int, int, error) {
	cfg, err := e.load()
	if err != nil {
		return nil, 0, exitUsage, err
	}
	pid, err := running(cfg)
	if err != nil {
		return nil, 0, exitFailure, err
	}
	return cfg, pid, exitOK, nil
}

func (e *env) reload(args []string) (int, error) {
	fs := flag.NewFlagSet("reload", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	timeout := fs.Duration("timeout", 0, "how long to wait for the reload")
	if err := fs.Parse(args); err != nil {
		return exitUsage, fmt.Errorf("reload: %w; usage: fastws [-c FILE] reload [--timeout 15s]", err)
	}
	if err := noArgs("reload", fs.Args()); err != nil {
		return exitUsage, err
	}
	if *timeout < 0 {
		return exitUsage, errors.New("reload: --timeout must be positive")
	}
	cfg, pid, code, err := e.loadRunning()
	if err != nil {
		if code == exitUsage {
			err = fmt.Errorf("%w\nthe running daemon keeps its config", err)
		}
		return code, err
	}
	if err := e.checkCertificates(cfg, false); err != nil {
		return exitUsage, fmt.Errorf("%w\nthe running daemon keeps its certificates", err)
	}
	if *timeout == 0 {
		// A reload may wait stopTimeout for the clients of the instances
		// it replaces.
		*timeout = queryTimeout + cfg.StopTimeout
	}
	ctx, cancel := context.WithTimeout(e.ctx, *timeout)
	defer cancel()
	if err := status.Reload(ctx, status.SocketPath(cfg.RunDir)); err != nil {
		return exitFailure, unanswered(pid, err)
	}
	fmt.Fprintf(e.stdout, "reloaded %s\n", cfg.Path)
	return exitOK, nil
}

// stopFlags parses stop's --timeout.
func stopFlags(args []string, def time.Duration) (time.Duration, error) {
	fs := flag.NewFlagSet("stop", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	timeout := fs.Duration("timeout", def, "graceful stop deadline")
	if err := fs.Parse(args); err != nil {
		return 0, fmt.Errorf("stop: %w; usage: fastws [-c FILE] stop [--timeout 10s]", err)
	}
	if *timeout <= 0 {
		return 0, errors.New("stop: --timeout must be positive")
	}
	return *timeout, noArgs("stop", fs.Args())
}

func (e *env) stop(args []string) (int, error) {
	cfg, pid, code, err := e.loadRunning()
	if err != nil {
		return code, err
	}
	timeout, err := stopFlags(args, cfg.StopTimeout)
	if err != nil {
		return exitUsage, err
	}
	if err := e.stopPID(cfg, pid, timeout); err != nil {
		return exitFailure, err
	}
	fmt.Fprintf(e.stdout, "fastws stopped (pid %d)\n", pid)
	return exitOK, nil
}

// stopPID asks the daemon to stop gracefully (over the status socket, or
// with SIGTERM if nothing answers there) and waits until it is gone: all
// within timeout, the daemon's deadline for the stop, and exitGrace. A
// stopped process (SIGSTOP) is not sent SIGTERM, which it would act on
// when resumed, long after this gave up.
func (e *env) stopPID(cfg *config.Config, pid int, timeout time.Duration) error {
	interrupted := func() error {
		return fmt.Errorf("interrupted: pid %d was asked to stop and may still be stopping; 'fastws status' shows whether it runs, 'fastws kill' ends it at once", pid)
	}
	total := timeout + exitGrace
	ctx, cancel := context.WithTimeout(e.ctx, total)
	defer cancel()
	rctx, rcancel := context.WithTimeout(ctx, min(queryTimeout, timeout))
	err := status.Stop(rctx, status.SocketPath(cfg.RunDir), timeout)
	rcancel()
	if err != nil {
		if e.ctx.Err() != nil {
			return interrupted()
		}
		if uerr := unanswered(pid, err); uerr != err {
			return uerr
		}
		if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
			return fmt.Errorf("stop pid %d: %w", pid, err)
		}
	}
	if !waitGone(ctx, pid, daemon.PidPath(cfg), total) {
		if e.ctx.Err() != nil {
			return interrupted()
		}
		return unanswered(pid, fmt.Errorf("pid %d did not exit within %s; 'fastws kill' ends it at once", pid, total))
	}
	return nil
}

// waitGone polls until the daemon pid is gone, or d passes, or ctx ends.
// Gone means no such process, or an exited one nobody has reaped yet (a
// zombie) whose pidfile lock the kernel has released: the thread group
// leader shows Z while other threads still exit with the files open.
func waitGone(ctx context.Context, pid int, pidPath string, d time.Duration) bool {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		if syscall.Kill(pid, 0) == syscall.ESRCH {
			return true
		}
		if exited(pid) {
			if _, err := pidfile.Read(pidPath); err != nil {
				return true
			}
		}
		select {
		case <-ctx.Done():
			return false
		case <-tick.C:
		}
	}
}

// exited reports whether pid is a zombie: exited, not yet reaped.
func exited(pid int) bool {
	st := procState(pid)
	return st == 'Z' || st == 'X'
}

func (e *env) kill(args []string) (int, error) {
	if err := noArgs("kill", args); err != nil {
		return exitUsage, err
	}
	cfg, pid, code, err := e.loadRunning()
	if err != nil {
		return code, err
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil && err != syscall.ESRCH {
		return exitFailure, fmt.Errorf("kill pid %d: %w", pid, err)
	}
	if !waitGone(e.ctx, pid, daemon.PidPath(cfg), 10*time.Second) {
		if e.ctx.Err() != nil {
			return exitFailure, fmt.Errorf("interrupted: pid %d was sent SIGKILL; its pidfile and status socket are left", pid)
		}
		return exitFailure, fmt.Errorf("pid %d survived SIGKILL for 10s", pid)
	}
	if err := removeStale(daemon.PidPath(cfg)); err != nil {
		return exitFailure, err
	}
	if err := os.Remove(status.SocketPath(cfg.RunDir)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return exitFailure, err
	}
	fmt.Fprintf(e.stdout, "fastws killed (pid %d); removed its pidfile and status socket\n", pid)
	return exitOK, nil
}

func (e *env) restart(args []string) (int, error) {
	cfg, err := e.loadFor("restart", args)
	if err != nil {
		return exitUsage, err
	}
	pid, err := running(cfg)
	switch {
	case err == nil:
		if err := e.mayRestart(cfg, pid); err != nil {
			return exitFailure, err
		}
		if err := e.stopPID(cfg, pid, cfg.StopTimeout); err != nil {
			return exitFailure, err
		}
		fmt.Fprintf(e.stdout, "fastws stopped (pid %d)\n", pid)
	case errors.Is(err, pidfile.ErrNotRunning):
		fmt.Fprintln(e.stdout, "fastws was not running; starting it")
	default: // it may run; we cannot tell (permission denied, ...)
		return exitFailure, err
	}
	return e.launch(cfg)
}

// mayRestart refuses to restart a daemon that restart would replace with a
// different kind: one of another user (the new one would be this user's,
// and its pidfile, socket and log this user's too, which the service
// could not open at its next start), or one that restart did not start
// (systemd or another supervisor watches it, and would see it die, or
// start a second one).
func (e *env) mayRestart(cfg *config.Config, pid int) error {
	if fi, err := os.Stat("/proc/" + strconv.Itoa(pid)); err == nil {
		if uid, me := daemon.Owner(fi), os.Geteuid(); uid != me {
			name := strconv.Itoa(uid)
			if u, err := user.LookupId(name); err == nil {
				name = u.Username
			}
			return fmt.Errorf("fastws (pid %d) runs as uid %d (%s), not as you (uid %d): a restart would start its replacement as uid %d, with files its user cannot open; restart it as that user (sudo -u %s fastws -c %s restart) or with whatever manages it (systemctl restart fastws)",
				pid, uid, name, me, me, name, cfg.Path)
		}
	}
	ctx, cancel := context.WithTimeout(e.ctx, queryTimeout)
	defer cancel()
	snap, err := status.Query(ctx, status.SocketPath(cfg.RunDir))
	if err != nil {
		return fmt.Errorf("cannot tell how fastws (pid %d) was started, so it is not restarted: %w", pid, unanswered(pid, err))
	}
	switch by := snap.Daemon.StartedBy; by {
	case "start -d", "": // "": a fastws from before startedBy, which only start -d restarts
		return nil
	case "systemd":
		unit := snap.Daemon.ServiceUnit
		if unit == "" {
			unit = "fastws"
		}
		return fmt.Errorf("fastws (pid %d) runs under systemd (%s), not from 'start -d'; restart it with 'systemctl restart %s', which keeps it supervised", pid, unit, unit)
	default:
		return fmt.Errorf("fastws (pid %d) runs in the foreground ('fastws start', not 'start -d'), in a terminal or under a service manager; restart it the way it was started (under systemd: 'systemctl restart fastws'), or 'fastws stop' it and 'fastws start -d'", pid)
	}
}

// removeStale removes the pidfile of a killed daemon once the kernel has
// released its lock.
func removeStale(path string) error {
	deadline := time.Now().Add(5 * time.Second)
	for {
		removed, err := pidfile.RemoveStale(path)
		if err != nil || removed {
			return err
		}
		if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
			return nil
		}
		if time.Now().After(deadline) {
			pid, _ := pidfile.Read(path)
			return fmt.Errorf("pidfile %s is still locked (by pid %d); remove it by hand once that process is gone", path, pid)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
