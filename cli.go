package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/fastws/fastws/server/config"
	"github.com/fastws/fastws/server/daemon"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "0.1.0-dev"

// Exit codes.
const (
	exitOK      = 0 // done
	exitFailure = 1 // runtime failure: not running, bind failed, timed out
	exitUsage   = 2 // usage or config error
)

const usage = `fastws — a chat daemon in the FastWS/Workerman tradition, on gnet

Usage:
  fastws [-c FILE] start [-d]              run in the foreground (Ctrl-C stops gracefully),
                                           or as a daemon (-d) once every instance listens
  fastws [-c FILE] status [--json] [--timeout 5s]
                                           the running daemon and its instances
  fastws [-c FILE] connections [--json] [--timeout 5s]
                                           one row per connection
  fastws [-c FILE] stop [--timeout 10s]    graceful stop: notify clients, flush, close; waits
                                           at most the timeout and 2s more for the exit
  fastws [-c FILE] kill                    SIGKILL the daemon; removes its pidfile and socket
  fastws [-c FILE] restart                 stop, then start -d (only a daemon start -d started,
                                           of your own user; else systemctl restart fastws)
  fastws [-c FILE] reload [--timeout D]    re-read the config file (also SIGHUP); D defaults
                                           to stopTimeout + 5s
  fastws [-c FILE] check                   validate the config file and exit
  fastws [-c FILE] token --user ID [--name NICK] [--room ROOM] [--ttl 1h]
                                           print a user token signed with [api] tokenSecret
  fastws version | help                    also --version, and -h or --help

Options:
  -c FILE   config file (default ./config.ini)

Run with no command, fastws prints this and exits 2.

Exit codes: 0 ok, 1 runtime failure (not running, bind failed, timed out),
2 usage or config error.
`

// env is what a verb runs with.
type env struct {
	// ctx ends the verb. Every verb but a serving start runs with a ctx
	// that the first SIGINT or SIGTERM cancels (see interruptible).
	ctx     context.Context
	stdout  io.Writer
	stderr  io.Writer
	signals <-chan os.Signal // a serving start's signals (see catchSignals); nil otherwise
	config  string
	// configSet says whether -c named the config file, or it is the
	// default, config.ini in the working folder.
	configSet bool
}

// run parses args and runs one verb. It returns the process exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("fastws", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	cfgPath := fs.String("c", "config.ini", "config file")
	showVersion := fs.Bool("version", false, "print the version")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) { // -h, --help
			fmt.Fprint(stdout, usage)
			return exitOK
		}
		fmt.Fprintf(stderr, "fastws: %v\n\n%s", err, usage)
		return exitUsage
	}
	e := &env{ctx: ctx, stdout: stdout, stderr: stderr, config: *cfgPath}
	fs.Visit(func(f *flag.Flag) { e.configSet = e.configSet || f.Name == "c" })
	if *showVersion {
		printVersion(stdout)
		return exitOK
	}
	if fs.NArg() == 0 {
		// As go and nats-server do: usage on stderr, and a status that a
		// script cannot take for success.
		fmt.Fprint(stderr, usage)
		return exitUsage
	}
	verb, rest := fs.Arg(0), fs.Args()[1:]
	if verb != "start" { // start decides for itself: serving or launching
		var stop context.CancelFunc
		e.ctx, stop = interruptible(e.ctx)
		defer stop()
	}
	var code int
	var err error
	switch verb {
	case "start":
		code, err = e.start(rest)
	case "check":
		code, err = e.check(rest)
	case "status":
		code, err = e.status(rest)
	case "connections":
		code, err = e.connections(rest)
	case "stop":
		code, err = e.stop(rest)
	case "kill":
		code, err = e.kill(rest)
	case "restart":
		code, err = e.restart(rest)
	case "reload":
		code, err = e.reload(rest)
	case "token":
		code, err = e.token(rest)
	case "version":
		printVersion(stdout)
	case "help":
		fmt.Fprint(stdout, usage)
	default:
		code, err = exitUsage, fmt.Errorf("unknown command %q; run 'fastws help' for the list", verb)
	}
	if errors.Is(err, flag.ErrHelp) { // a verb's -h
		fmt.Fprint(stdout, usage)
		return exitOK
	}
	if err != nil {
		fmt.Fprintf(stderr, "fastws: %v\n", err)
	}
	return code
}

func printVersion(w io.Writer) {
	fmt.Fprintf(w, "fastws %s %s %s/%s\n", version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}

// interruptible returns a copy of ctx that the first SIGINT or SIGTERM
// cancels, for the verbs that wait on a daemon (stop, start -d, kill, ...):
// they give up at once and say what state they leave. The signals get their
// default effect back then, so a second Ctrl-C ends the process whatever it
// waits on.
func interruptible(ctx context.Context) (context.Context, context.CancelFunc) {
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	context.AfterFunc(ctx, stop)
	return ctx, stop
}

// catchSignals routes the signals a serving daemon acts on to e.signals:
// SIGINT and SIGTERM stop it (a second one forces the exit), SIGHUP
// reloads, SIGUSR1 reopens the log.
func (e *env) catchSignals() {
	// The serving loop reads it without ever waiting on a reload; the room
	// is for bursts (logrotate's USR1 with a HUP and a TERM).
	sigs := make(chan os.Signal, 32)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGUSR1)
	e.signals = sigs
}

// noArgs refuses extra arguments to a verb.
func noArgs(verb string, args []string) error {
	if len(args) > 0 {
		return fmt.Errorf("%s: unexpected argument %q; run 'fastws help'", verb, args[0])
	}
	return nil
}

// load reads and validates the config file. Config errors are printed one
// per line, all of them.
func (e *env) load() (*config.Config, error) {
	cfg, err := config.Load(e.config)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			if !e.configSet {
				dir, _ := os.Getwd()
				return nil, fmt.Errorf("config.ini not found in %s; pass -c FILE", dir)
			}
			return nil, fmt.Errorf("config file %s not found", e.config)
		}
		var errs config.Errors
		if errors.As(err, &errs) {
			return nil, fmt.Errorf("%d error(s) in %s:\n%s", len(errs), e.config, indent(errs.Error()))
		}
		return nil, err
	}
	return cfg, nil
}

func indent(s string) string { return "  " + strings.ReplaceAll(s, "\n", "\n  ") }

// loadFor loads the config for a verb that takes no arguments.
func (e *env) loadFor(verb string, args []string) (*config.Config, error) {
	if err := noArgs(verb, args); err != nil {
		return nil, err
	}
	return e.load()
}

func (e *env) check(args []string) (int, error) {
	cfg, err := e.loadFor("check", args)
	if err != nil {
		return exitUsage, err
	}
	if err := e.checkCertificates(cfg, true); err != nil {
		return exitUsage, err
	}
	// A runDir that does not exist yet is created with mode 0700 by start.
	if _, err := os.Lstat(cfg.RunDir); err == nil {
		if err := daemon.CheckRunDir(cfg.RunDir); err != nil {
			return exitFailure, err
		}
	}
	names := make([]string, len(cfg.Instances))
	for k, i := range cfg.Instances {
		names[k] = i.Name
	}
	noun := "instances"
	if len(names) == 1 {
		noun = "instance"
	}
	fmt.Fprintf(e.stdout, "config OK: %d %s (%s)\n", len(names), noun, strings.Join(names, ", "))
	return exitOK, nil
}

// banner prints the start screen, FastWS style.
func (e *env) banner(cfg *config.Config) {
	fmt.Fprintf(e.stdout, "fastws %s  pid %d  %s  started %s\n", version, os.Getpid(), runtime.Version(), time.Now().Format(time.DateTime))
	fmt.Fprintf(e.stdout, "config %s\n", cfg.Path)
	e.printInstances(cfg)
	fmt.Fprintln(e.stdout, "Press Ctrl-C to stop.")
}

// printInstances lists cfg's instances: name, address, reactors.
func (e *env) printInstances(cfg *config.Config) {
	tw := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "INSTANCE\tLISTEN\tREACTORS")
	for _, i := range cfg.Instances {
		fmt.Fprintf(tw, "%s\t%s://%s\t%d\n", i.Name, i.Protocol, i.Addr(), i.ChildProcessCount)
	}
	_ = tw.Flush()
	if cfg.API.Listen != "" { // the address only: the key is never printed
		fmt.Fprintf(e.stdout, "API: http://%s/api/v1/ (Authorization: Bearer the [api] key)\n", cfg.API.Listen)
	}
}
