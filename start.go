package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/fastws/fastws/pidfile"
	"github.com/fastws/fastws/server/config"
	"github.com/fastws/fastws/server/daemon"
	godaemon "github.com/sevlyar/go-daemon"
	"golang.org/x/sys/unix"
)

// readyEnv names the unix socket on which a detached daemon reports to the
// `start -d` that launched it.
const readyEnv = "FASTWS_READY"

// readyTimeout bounds how long `start -d` waits for the daemon to listen.
const readyTimeout = 60 * time.Second

func (e *env) start(args []string) (int, error) {
	fs := flag.NewFlagSet("start", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	detach := fs.Bool("d", false, "run as a daemon")
	if err := fs.Parse(args); err != nil {
		return exitUsage, fmt.Errorf("start: %w; usage: fastws [-c FILE] start [-d]", err)
	}
	if err := noArgs("start", fs.Args()); err != nil {
		return exitUsage, err
	}
	if godaemon.WasReborn() || !*detach {
		e.catchSignals() // early, so that a SIGHUP while starting is not fatal
	} else {
		var stop context.CancelFunc
		e.ctx, stop = interruptible(e.ctx)
		defer stop()
	}
	cfg, err := e.load()
	if err != nil {
		return exitUsage, err
	}
	if err := e.checkCertificates(cfg, false); err != nil {
		return exitUsage, err
	}
	switch {
	case godaemon.WasReborn():
		return e.runDetached(cfg)
	case *detach:
		return e.launch(cfg)
	}
	log := slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	err = daemon.Run(e.ctx, cfg, daemon.Options{
		Log: log, Version: version, Signals: e.signals, Stdout: e.stdout,
		Notify: func(msg string) {
			switch {
			case msg == "ready":
				e.banner(cfg)
			default:
				fmt.Fprintln(e.stderr, msg)
			}
		},
	})
	if err != nil {
		return exitFailure, err
	}
	return exitOK, nil
}

// launch is `start -d` in the parent: it re-executes the binary detached
// and returns once the daemon reports that every instance listens (exit 0)
// or fails (its own error, exit 1).
func (e *env) launch(cfg *config.Config) (int, error) {
	if pid, err := pidfile.Read(daemon.PidPath(cfg)); err == nil {
		return exitFailure, &pidfile.RunningError{PID: pid, Path: daemon.PidPath(cfg)}
	}
	if err := daemon.MakeRunDir(cfg.RunDir); err != nil {
		return exitFailure, err
	}
	readyPath := filepath.Join(cfg.RunDir, fmt.Sprintf("start-%d.sock", os.Getpid()))
	_ = os.Remove(readyPath)
	ln, err := net.Listen("unix", readyPath)
	if err != nil {
		return exitFailure, fmt.Errorf("readiness socket: %w", err)
	}
	defer os.Remove(readyPath)
	defer ln.Close()

	// The log is opened here, not by go-daemon: its LogFileName would
	// follow a symbolic link planted at that path.
	logf, err := daemon.OpenLog(cfg.LogFile)
	if err != nil {
		return exitFailure, err
	}
	defer logf.Close()
	var logStart int64
	if st, err := logf.Stat(); err == nil {
		logStart = st.Size()
	}
	exe, err := os.Executable()
	if err != nil {
		return exitFailure, err
	}
	dctx := &godaemon.Context{
		WorkDir: "/", // every path in cfg is absolute already
		Args:    []string{exe, "-c", cfg.Path, "start", "-d"},
		Env:     append(os.Environ(), readyEnv+"="+readyPath),
		Umask:   0o027,
	}
	dctx.SetLogFile(logf) // the child's stdout and stderr
	child, err := dctx.Reborn()
	if err != nil {
		return exitFailure, fmt.Errorf("start daemon: %w", err)
	}

	exited := make(chan struct{})
	go func() { _, _ = child.Wait(); close(exited) }()
	msgs := make(chan string, 16)
	go readReady(ln, msgs)
	deadline := time.After(readyTimeout)
	for {
		select {
		case msg := <-msgs:
			switch {
			case msg == "ready":
				fmt.Fprintf(e.stdout, "fastws started as a daemon (pid %d); log %s\n", child.Pid, cfg.LogFile)
				e.printInstances(cfg)
				return exitOK, nil
			case strings.HasPrefix(msg, "error: "):
				<-exited
				return exitFailure, errors.New(strings.TrimPrefix(msg, "error: "))
			default:
				fmt.Fprintln(e.stderr, msg)
			}
		case <-exited:
			return exitFailure, fmt.Errorf("the daemon exited during startup; its log says:\n%s", indent(logTail(cfg.LogFile, logStart)))
		case <-deadline:
			_ = child.Kill()
			<-exited
			return exitFailure, fmt.Errorf("the daemon did not listen within %s and was killed; see %s", readyTimeout, cfg.LogFile)
		case <-e.ctx.Done():
			return exitFailure, fmt.Errorf("interrupted: the daemon (pid %d) is still starting and is left to finish; 'fastws status' shows whether it listens, 'fastws stop' stops it; its log is %s", child.Pid, cfg.LogFile)
		}
	}
}

// readReady relays the lines the daemon writes on the readiness socket.
func readReady(ln net.Listener, msgs chan<- string) {
	conn, err := ln.Accept()
	if err != nil {
		return
	}
	defer conn.Close()
	sc := bufio.NewScanner(conn)
	for sc.Scan() {
		msgs <- sc.Text()
	}
}

// logTail returns what the log file gained since offset.
func logTail(path string, offset int64) string {
	f, err := os.OpenFile(path, os.O_RDONLY|unix.O_NOFOLLOW, 0)
	if err != nil {
		return "(no log: " + err.Error() + ")"
	}
	defer f.Close()
	_, _ = f.Seek(offset, io.SeekStart)
	b, _ := io.ReadAll(io.LimitReader(f, 64<<10))
	return strings.TrimSpace(string(b))
}

// runDetached is the daemon process after re-execution.
func (e *env) runDetached(cfg *config.Config) (int, error) {
	if _, err := (&godaemon.Context{}).Reborn(); err != nil {
		return exitFailure, fmt.Errorf("daemon init: %w", err)
	}
	var ready net.Conn
	if path := os.Getenv(readyEnv); path != "" {
		ready, _ = net.Dial("unix", path)
		os.Unsetenv(readyEnv)
	}
	tell := func(msg string) {
		if ready != nil {
			_, _ = io.WriteString(ready, msg+"\n")
		}
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	e.stdout, e.stderr = io.Discard, os.Stderr
	err := daemon.Run(e.ctx, cfg, daemon.Options{
		Log: log, LogFile: cfg.LogFile, Version: version, Signals: e.signals,
		Notify: func(msg string) {
			tell(msg)
			if msg == "ready" && ready != nil {
				ready.Close()
				ready = nil
			}
		},
	})
	if err != nil {
		// Reported here, to the log and to start -d, not again by run.
		log.Error("exit", "err", err)
		tell("error: " + err.Error())
		return exitFailure, nil
	}
	return exitOK, nil
}
