package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/fastws/fastws/server"
	"github.com/fastws/fastws/server/config"
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
  fastws [-c FILE] start          run in the foreground (Ctrl-C stops gracefully)
  fastws [-c FILE] check          validate the config file and exit
  fastws version                  print the version
  fastws help                     print this text

Options:
  -c FILE   config file (default ./config.ini)

Exit codes: 0 ok, 1 runtime failure, 2 usage or config error.
`

// env is what a verb runs with.
type env struct {
	ctx     context.Context
	stdout  io.Writer
	stderr  io.Writer
	signals <-chan os.Signal
	config  string
}

// run parses args and runs one verb. It returns the process exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, sigs <-chan os.Signal) int {
	fs := flag.NewFlagSet("fastws", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	cfgPath := fs.String("c", "config.ini", "config file")
	if err := fs.Parse(args); err != nil {
		fmt.Fprintf(stderr, "fastws: %v\n\n%s", err, usage)
		return exitUsage
	}
	e := &env{ctx: ctx, stdout: stdout, stderr: stderr, signals: sigs, config: *cfgPath}
	verb, rest := "help", []string(nil)
	if fs.NArg() > 0 {
		verb, rest = fs.Arg(0), fs.Args()[1:]
	}
	var code int
	var err error
	switch verb {
	case "start":
		code, err = e.start(rest)
	case "check":
		code, err = e.check(rest)
	case "version":
		fmt.Fprintf(stdout, "fastws %s %s %s/%s\n", version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
	default:
		code, err = exitUsage, fmt.Errorf("unknown command %q; run 'fastws help' for the list", verb)
	}
	if err != nil {
		fmt.Fprintf(stderr, "fastws: %v\n", err)
	}
	return code
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
		var errs config.Errors
		if errors.As(err, &errs) {
			return nil, fmt.Errorf("%d error(s) in %s:\n%s", len(errs), e.config, indent(errs.Error()))
		}
		return nil, err
	}
	return cfg, nil
}

func indent(s string) string { return "  " + strings.ReplaceAll(s, "\n", "\n  ") }

func (e *env) check(args []string) (int, error) {
	if err := noArgs("check", args); err != nil {
		return exitUsage, err
	}
	cfg, err := e.load()
	if err != nil {
		return exitUsage, err
	}
	fmt.Fprintf(e.stdout, "%s: ok, %d instance(s)\n", cfg.Path, len(cfg.Instances))
	return exitOK, nil
}

func (e *env) start(args []string) (int, error) {
	if err := noArgs("start", args); err != nil {
		return exitUsage, err
	}
	cfg, err := e.load()
	if err != nil {
		return exitUsage, err
	}
	log := slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	srv := server.New(log)
	if err := srv.Start(cfg); err != nil {
		return exitFailure, fmt.Errorf("%w; is another fastws or program using that port? Stop it or change the port in %s", err, cfg.Path)
	}
	e.banner(cfg, srv)

	select {
	case <-e.signals:
	case <-e.ctx.Done():
	}
	fmt.Fprintf(e.stdout, "stopping (up to %s; Ctrl-C again to force)\n", cfg.StopTimeout)
	ctx, cancel := context.WithTimeout(context.Background(), cfg.StopTimeout)
	defer cancel()
	stopped := make(chan error, 1)
	go func() { stopped <- srv.Stop(ctx) }()
	select {
	case err := <-stopped:
		if err != nil {
			return exitFailure, fmt.Errorf("graceful stop did not finish within stopTimeout %s; remaining connections were closed", cfg.StopTimeout)
		}
		fmt.Fprintln(e.stdout, "stopped")
		return exitOK, nil
	case <-e.signals:
		return exitFailure, errors.New("forced exit on second signal")
	}
}

// banner prints the start screen, FastWS style.
func (e *env) banner(cfg *config.Config, srv *server.Server) {
	addrs := srv.Addrs()
	fmt.Fprintf(e.stdout, "fastws %s  pid %d  %s  started %s\n", version, os.Getpid(), runtime.Version(), time.Now().Format(time.DateTime))
	fmt.Fprintf(e.stdout, "config %s\n", cfg.Path)
	tw := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "INSTANCE\tLISTEN\tREACTORS")
	for _, i := range cfg.Instances {
		fmt.Fprintf(tw, "%s\t%s://%s\t%d\n", i.Name, i.Protocol, addrs[i.Name], i.ChildProcessCount)
	}
	_ = tw.Flush()
	fmt.Fprintln(e.stdout, "Press Ctrl-C to stop.")
}
