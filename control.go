package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/fastws/fastws/pidfile"
	"github.com/fastws/fastws/server/config"
	"github.com/fastws/fastws/status"
)

// queryTimeout bounds a status socket request from the CLI.
const queryTimeout = 10 * time.Second

// running returns the pid of the daemon of cfg, or an error that says
// nothing runs and what to do.
func running(cfg *config.Config) (int, error) {
	pid, err := pidfile.Read(pidPath(cfg))
	if err != nil {
		// err ends in ": not running" (pidfile.ErrNotRunning), which the
		// message says already.
		why := strings.TrimSuffix(err.Error(), ": "+pidfile.ErrNotRunning.Error())
		return 0, fmt.Errorf("fastws is not running (%s); start it with 'fastws -c %s start -d'", why, cfg.Path)
	}
	return pid, nil
}

// jsonFlag parses a verb's only flag, --json.
func jsonFlag(verb string, args []string) (bool, error) {
	fs := flag.NewFlagSet(verb, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	asJSON := fs.Bool("json", false, "print JSON")
	if err := fs.Parse(args); err != nil {
		return false, fmt.Errorf("%s: %w; usage: fastws [-c FILE] %s [--json]", verb, err, verb)
	}
	return *asJSON, noArgs(verb, fs.Args())
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
	asJSON, err := jsonFlag(verb, args)
	if err != nil {
		return exitUsage, err
	}
	cfg, _, code, err := e.loadRunning()
	if err != nil {
		return code, err
	}
	ctx, cancel := context.WithTimeout(e.ctx, queryTimeout)
	defer cancel()
	v, render, err := query(ctx, status.SocketPath(cfg.RunDir))
	if err != nil {
		return exitFailure, err
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
	if err := noArgs("reload", args); err != nil {
		return exitUsage, err
	}
	cfg, _, code, err := e.loadRunning()
	if err != nil {
		if code == exitUsage {
			err = fmt.Errorf("%w\nthe running daemon keeps its config", err)
		}
		return code, err
	}
	ctx, cancel := context.WithTimeout(e.ctx, queryTimeout+cfg.StopTimeout)
	defer cancel()
	if err := status.Reload(ctx, status.SocketPath(cfg.RunDir)); err != nil {
		return exitFailure, err
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
// with SIGTERM if the socket does not answer) and waits until it is gone.
func (e *env) stopPID(cfg *config.Config, pid int, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(e.ctx, queryTimeout)
	err := status.Stop(ctx, status.SocketPath(cfg.RunDir), timeout)
	cancel()
	if err != nil {
		if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
			return fmt.Errorf("stop pid %d: %w", pid, err)
		}
	}
	// The daemon cuts what is left at timeout; give it time to exit.
	if !waitGone(e.ctx, pid, pidPath(cfg), timeout+5*time.Second) {
		if e.ctx.Err() != nil {
			return fmt.Errorf("interrupted: pid %d was asked to stop and may still be stopping; 'fastws status' shows whether it runs, 'fastws kill' ends it at once", pid)
		}
		return fmt.Errorf("pid %d did not exit within %s; 'fastws kill' ends it at once", pid, timeout+5*time.Second)
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
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	// pid (comm) state ...: comm may hold spaces and parentheses.
	i := bytes.LastIndexByte(b, ')')
	return i > 0 && i+2 < len(b) && (b[i+2] == 'Z' || b[i+2] == 'X')
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
	if !waitGone(e.ctx, pid, pidPath(cfg), 10*time.Second) {
		if e.ctx.Err() != nil {
			return exitFailure, fmt.Errorf("interrupted: pid %d was sent SIGKILL; its pidfile and status socket are left", pid)
		}
		return exitFailure, fmt.Errorf("pid %d survived SIGKILL for 10s", pid)
	}
	if err := removeStale(pidPath(cfg)); err != nil {
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
	if pid, err := running(cfg); err == nil {
		if err := e.stopPID(cfg, pid, cfg.StopTimeout); err != nil {
			return exitFailure, err
		}
		fmt.Fprintf(e.stdout, "fastws stopped (pid %d)\n", pid)
	} else {
		fmt.Fprintln(e.stdout, "fastws was not running; starting it")
	}
	return e.launch(cfg)
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
