// Package daemon is a running fastws: the lifecycle around the server.
// [Start] takes a validated config through the order STYLE.md prescribes
// (runDir -> pidfile -> room -> status socket -> metrics endpoint ->
// instances) and returns once every instance listens; the daemon then
// serves until a signal, a stop request over the status socket, [Daemon.Stop]
// or the end of its context, and stops gracefully. The command-line verbs
// (package main) start it in the foreground or detached; tests start it
// in-process on port 0.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/fastws/fastws/chat"
	"github.com/fastws/fastws/pidfile"
	"github.com/fastws/fastws/server"
	"github.com/fastws/fastws/server/cluster"
	"github.com/fastws/fastws/server/config"
	"github.com/fastws/fastws/status"
	"golang.org/x/sys/unix"
)

// PidPath returns the daemon's pidfile in runDir, next to its status
// socket (status.SocketPath).
func PidPath(cfg *config.Config) string { return filepath.Join(cfg.RunDir, "fastws.pid") }

// Options are what a daemon runs with besides its config. The zero value
// is a daemon that logs nothing, says nothing and reads no signals.
type Options struct {
	// Log receives the daemon's log; nil discards it.
	Log *slog.Logger
	// LogFile is the file Log writes to, reopened onto stdout and stderr
	// on SIGUSR1 (logrotate); "" when not detached. It also makes
	// Status's StartedBy "start -d".
	LogFile string
	// Version is the fastws version the status socket and /metrics report.
	Version string
	// Notify, if not nil, is told of progress while starting: "note: ..."
	// lines, then "ready" once every instance listens.
	Notify func(msg string)
	// Signals are the process signals the daemon acts on: SIGHUP reloads,
	// SIGUSR1 reopens LogFile, any other stops it gracefully, and a second
	// one while stopping forces the exit. nil: none.
	Signals <-chan os.Signal
	// Stdout receives the lines a foreground user reads when the daemon
	// stops ("stopping (up to ...)", "stopped"); nil discards them.
	Stdout io.Writer
}

// Daemon is a running fastws: the pidfile, the server, the status socket
// and the metrics endpoint, and what the status socket asks of them. Its
// methods are safe for concurrent use.
type Daemon struct {
	log     *slog.Logger
	logFile string // reopened on SIGUSR1 when running detached; "" in the foreground
	version string
	stdout  io.Writer
	signals <-chan os.Signal
	srv     *server.Server
	node    *cluster.Node // nil for a single node
	started time.Time
	metrics *status.MetricsServer // nil without metricsListen
	id      *identity             // [api]: the HTTP API and auth counts; see api.go

	mu  sync.Mutex
	cfg *config.Config // guarded by mu: the config in force

	startedBy   string // status.Daemon.StartedBy
	serviceUnit string // status.Daemon.ServiceUnit

	stopReq  chan time.Duration // a stop asked for over the status socket or by Stop
	stopping atomic.Bool        // set once a stop has begun: reloads are refused from then on

	undo []func() // what Start set up, undone in reverse once stopped
	done chan struct{}
	err  error // why it exited; read after done
}

// Run starts a daemon and serves until it stops; see [Start] and
// [Daemon.Wait]. It returns the error that made the daemon exit, if any:
// a failed start, a forced exit, or a stop that did not finish in time.
func Run(ctx context.Context, cfg *config.Config, o Options) error {
	d, err := Start(ctx, cfg, o)
	if err != nil {
		return err
	}
	return d.Wait()
}

// Start starts a daemon for cfg, validated already: runDir, pidfile, room,
// status socket, metrics endpoint, instances, in that order. It returns
// once every instance listens; on a failure it undoes what it did and
// returns the error. The daemon then serves until a stop signal, a stop
// request, [Daemon.Stop] or the end of ctx.
func Start(ctx context.Context, cfg *config.Config, o Options) (*Daemon, error) {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Notify == nil {
		o.Notify = func(string) {}
	}
	if o.Stdout == nil {
		o.Stdout = io.Discard
	}
	d := &Daemon{
		log: o.Log, logFile: o.LogFile, version: o.Version, stdout: o.Stdout, signals: o.Signals,
		started: time.Now(), cfg: cfg, id: newIdentity(),
		stopReq: make(chan time.Duration, 1), done: make(chan struct{}),
	}
	d.startedBy, d.serviceUnit = startedBy(o.LogFile != "")
	if err := d.start(cfg, o.Notify); err != nil {
		d.cleanup()
		return nil, err
	}
	go d.run(ctx)
	return d, nil
}

// start is Start's order of work; d.undo collects what to undo.
func (d *Daemon) start(cfg *config.Config, notify func(string)) error {
	if err := MakeRunDir(cfg.RunDir); err != nil {
		return err
	}
	pf, err := pidfile.Acquire(PidPath(cfg))
	if err != nil {
		return err
	}
	d.undo = append(d.undo, func() { _ = pf.Release() })
	if err := d.startRoom(cfg); err != nil {
		return err
	}
	if pid := pf.Stale(); pid != 0 {
		note := fmt.Sprintf("note: replaced the stale pidfile %s of pid %d, which is no longer running", pf.Path(), pid)
		d.log.Warn(note)
		notify(note)
	}
	sock, err := status.Listen(status.SocketPath(cfg.RunDir), d)
	if err != nil {
		return err
	}
	d.undo = append(d.undo, func() { _ = sock.Close() })
	if cfg.MetricsListen != "" {
		// Before the instances, so that /healthz answers 503 until they listen.
		c := status.NewCollector(d.Status, closeReasons())
		c.Add(d.id)
		ms, err := status.ServeMetrics(cfg.MetricsListen, c, d.healthy, d.log)
		if err != nil {
			return bindHint(fmt.Errorf("metricsListen: %w", err), cfg.Path, "metricsListen")
		}
		d.metrics = ms
		d.undo = append(d.undo, func() {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			_ = ms.Close(ctx)
		})
		d.log.Info("metrics listening", "addr", ms.Addr())
	}
	if err := d.startAPI(cfg); err != nil {
		return err
	}
	if err := d.srv.Start(cfg); err != nil {
		return bindHint(err, cfg.Path, "the port")
	}
	d.log.Info("started", "pid", os.Getpid(), "version", d.version, "config", cfg.Path)
	notify("ready")
	return nil
}

// cleanup undoes what start did, last first.
func (d *Daemon) cleanup() {
	for k := len(d.undo) - 1; k >= 0; k-- {
		d.undo[k]()
	}
	d.undo = nil
}

// Wait waits until the daemon has stopped and released its pidfile,
// status socket and metrics endpoint. It returns why it exited: nil for a
// graceful stop, else a forced exit or a stop that did not finish within
// its timeout.
func (d *Daemon) Wait() error {
	<-d.done
	return d.err
}

// Addrs returns the address each instance is bound to, by instanceName:
// with port 0 in the config, the port the kernel chose.
func (d *Daemon) Addrs() map[string]string {
	m := map[string]string{}
	for _, i := range d.srv.Stats().Instances {
		m[i.Name] = i.Listen
	}
	return m
}

// MetricsAddr returns the metrics endpoint's bound address, or "" if
// metricsListen is empty.
func (d *Daemon) MetricsAddr() string {
	if d.metrics == nil {
		return ""
	}
	return d.metrics.Addr()
}

// run serves until a stop, then stops, and records why it exited.
func (d *Daemon) run(ctx context.Context) {
	defer close(d.done)
	defer d.cleanup()
	d.err = d.serve(ctx)
}

// serve reads signals and stop requests until one says stop, then stops
// the server within the timeout.
func (d *Daemon) serve(ctx context.Context) error {
	// Reloads run on their own goroutine, so that this loop reads every
	// signal as it comes: a reload may wait stopTimeout for the clients of
	// the instances it replaces, and signal.Notify drops what its channel
	// has no room for. HUPs that come during a reload coalesce in
	// reloadReq into one more reload.
	reloadReq := make(chan struct{}, 1)
	reloaderDone := make(chan struct{})
	go func() {
		defer close(reloaderDone)
		for range reloadReq {
			_ = d.Reload() // it logs what happened
		}
	}()
	defer func() { close(reloadReq); <-reloaderDone }()

	d.mu.Lock()
	timeout := d.cfg.StopTimeout
	d.mu.Unlock()
wait:
	for {
		select {
		case sig := <-d.signals:
			switch sig {
			case syscall.SIGHUP:
				select {
				case reloadReq <- struct{}{}:
				default: // one is pending already
				}
			case syscall.SIGUSR1:
				d.reopenLog()
			default:
				d.log.Info("stopping", "signal", sig.String())
				break wait
			}
		case timeout = <-d.stopReq:
			d.log.Info("stopping", "requested", "status socket")
			break wait
		case <-ctx.Done():
			break wait
		}
	}
	// From here a reload is refused, and srv.Stop cuts short one under way.
	d.stopping.Store(true)
	fmt.Fprintf(d.stdout, "stopping (up to %s; Ctrl-C again to force)\n", timeout)
	d.stopAPI(timeout)
	sctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	stopped := make(chan error, 1)
	go func() { stopped <- d.srv.Stop(sctx) }()
	for {
		select {
		case err := <-stopped:
			if err != nil {
				return fmt.Errorf("graceful stop did not finish within %s; remaining connections were closed", timeout)
			}
			d.log.Info("stopped")
			fmt.Fprintln(d.stdout, "stopped")
			return nil
		case sig := <-d.signals:
			switch sig {
			case syscall.SIGHUP:
				d.log.Warn("reload refused", "signal", sig.String(), "err", server.ErrStopping)
			case syscall.SIGUSR1:
				d.reopenLog()
			default:
				return errors.New("forced exit on second signal")
			}
		}
	}
}

// startedBy says who runs this process, for status.Daemon.StartedBy:
// "start -d" if detached, else "systemd" (with the unit's name) or
// "foreground". restart reads it to refuse to replace a daemon that a
// service manager watches with one it does not.
func startedBy(detached bool) (by, unit string) {
	if detached {
		return "start -d", ""
	}
	// systemd sets INVOCATION_ID for every process it starts as a service,
	// and puts the service in a cgroup named after its unit.
	if os.Getenv("INVOCATION_ID") == "" {
		return "foreground", ""
	}
	b, _ := os.ReadFile("/proc/self/cgroup")
	for _, l := range strings.Split(string(b), "\n") {
		if _, path, ok := strings.Cut(l, "::"); ok {
			if u := filepath.Base(path); strings.HasSuffix(u, ".service") {
				unit = u
			}
		}
	}
	return "systemd", unit
}

// bindHint adds to a bind error what to do about it. EACCES on bind is a
// port below 1024 (net.ipv4.ip_unprivileged_port_start) without the
// privilege, not a port in use.
func bindHint(err error, path, what string) error {
	if errors.Is(err, syscall.EACCES) {
		return fmt.Errorf("%w; ports below 1024 need privileges: run as root, grant CAP_NET_BIND_SERVICE (setcap cap_net_bind_service=+ep on the binary, or AmbientCapabilities=CAP_NET_BIND_SERVICE in the systemd unit), or change %s in %s to 1024 or above", err, what, path)
	}
	return fmt.Errorf("%w; is another program using that port? Stop it or change %s in %s", err, what, path)
}

// Status implements status.Handler.
func (d *Daemon) Status() status.Snapshot {
	st := d.srv.Stats()
	d.mu.Lock()
	path := d.cfg.Path
	d.mu.Unlock()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	snap := status.Snapshot{Daemon: status.Daemon{
		PID: os.Getpid(), Version: d.version, GoVersion: runtime.Version(), Config: path,
		Started: d.started, UptimeSeconds: time.Since(d.started).Seconds(),
		RSSBytes: status.ReadRSS(), HeapBytes: ms.HeapAlloc, Goroutines: runtime.NumGoroutine(),
		Members: st.Room.Members, Rooms: st.Room.Rooms, OpenFiles: status.OpenFiles(), MaxOpenFiles: status.MaxOpenFiles(),
		StartedBy: d.startedBy, ServiceUnit: d.serviceUnit,
	}}
	snap.Instances = st.Instances
	snap.Cluster = d.clusterStatus()
	return snap
}

// healthy is /healthz: nil when every configured instance listens with
// the settings in force, else which one does not and why. It is safe for
// concurrent use.
func (d *Daemon) healthy() error {
	d.mu.Lock()
	want := d.cfg.Instances
	d.mu.Unlock()
	if d.node != nil {
		if err := d.node.Healthy(); err != nil {
			return err
		}
	}
	byName := make(map[string]status.Instance, len(want))
	for _, i := range d.srv.Stats().Instances {
		byName[i.Name] = i
	}
	for _, ic := range want {
		i := byName[ic.Name]
		switch {
		case !i.Listening && i.Error != "":
			return fmt.Errorf("instance %s is down: %s", ic.Name, i.Error)
		case !i.Listening:
			return fmt.Errorf("instance %s is not listening", ic.Name)
		case i.Error != "":
			return fmt.Errorf("instance %s runs its previous settings: %s", ic.Name, i.Error)
		}
	}
	return nil
}

// closeReasons names every chat.CloseReason, for the metric label.
func closeReasons() []string {
	var names []string
	for _, r := range chat.Reasons() {
		names = append(names, r.String())
	}
	return names
}

// Connections implements status.Handler: one event loop's rows at a time.
func (d *Daemon) Connections(ctx context.Context, emit func([]status.Connection) error) error {
	var out []status.Connection
	return d.srv.EachConnection(ctx, func(rows []server.ConnStats) error {
		out = out[:0]
		for _, r := range rows {
			out = append(out, status.Connection{
				UID: r.UID, Nick: r.Nick, User: r.User, Rooms: r.Rooms, Instance: r.Instance, Reactor: r.Reactor, Remote: r.Remote,
				Since: r.Since, MessagesIn: r.MsgsIn, MessagesOut: r.MsgsOut, BytesQueued: r.Queued,
			})
		}
		return emit(out)
	})
}

// Reload implements status.Handler and SIGHUP: it re-reads the config
// file; an invalid one is refused and the running config stays. It logs
// the outcome, once: reloaded, refused (nothing changed), or incomplete
// (some instances could not start; the others follow the new config). The
// error also goes back to whoever asked, which the log does not reach.
func (d *Daemon) Reload() error {
	if d.stopping.Load() {
		d.log.Error("reload refused", "err", server.ErrStopping)
		return server.ErrStopping
	}
	d.mu.Lock()
	old := d.cfg
	d.mu.Unlock()
	cfg, err := reloadable(old)
	if err != nil {
		d.log.Error("reload refused", "err", err)
		return err
	}
	res, err := d.srv.Reload(cfg)
	if errors.Is(err, server.ErrStopping) {
		d.log.Error("reload refused", "err", err)
		return err
	}
	d.mu.Lock()
	d.cfg = cfg
	d.mu.Unlock()
	d.reloadAPI(cfg)
	attrs := []any{"started", res.Started, "stopped", res.Stopped, "restarted", res.Restarted, "unchanged", res.Unchanged}
	if err != nil {
		d.log.Error("reload incomplete", append(attrs, "failed", res.Failed, "err", err)...)
		return err
	}
	d.log.Info("reloaded", attrs...)
	return nil
}

// reloadable reads old's config file again and returns it if a reload can
// apply it: valid, and changing nothing that needs a restart.
func reloadable(old *config.Config) (*config.Config, error) {
	cfg, err := config.Load(old.Path)
	if err != nil {
		return nil, fmt.Errorf("%s is invalid, the running config stays:\n%s", old.Path, indent(err.Error()))
	}
	if cfg.RunDir != old.RunDir {
		return nil, fmt.Errorf("%s: runDir changed (%s -> %s); that needs 'fastws restart'", old.Path, old.RunDir, cfg.RunDir)
	}
	if cfg.API.Listen != old.API.Listen {
		return nil, fmt.Errorf("%s: [api] listen changed (%q -> %q); that needs 'fastws restart'", old.Path, old.API.Listen, cfg.API.Listen)
	}
	if cfg.API.MaxConnections != old.API.MaxConnections && cfg.API.Listen != "" {
		return nil, fmt.Errorf("%s: [api] maxConnections changed (%d -> %d); that needs 'fastws restart'", old.Path, old.API.MaxConnections, cfg.API.MaxConnections)
	}
	if cfg.MetricsListen != old.MetricsListen {
		return nil, fmt.Errorf("%s: metricsListen changed (%q -> %q); that needs 'fastws restart'", old.Path, old.MetricsListen, cfg.MetricsListen)
	}
	if cfg.Cluster != old.Cluster {
		return nil, fmt.Errorf("%s: [cluster] changed; that needs 'fastws restart'", old.Path)
	}
	return cfg, nil
}

// Expired implements status.ExpiredLogger.
func (d *Daemon) Expired(cmd string, deadline time.Time) {
	d.log.Warn("request dropped", "cmd", cmd, "err", fmt.Sprintf("its deadline %s passed before the daemon got to it (was it stopped?); the client has given up, so it is not carried out", deadline.Format(time.RFC3339Nano)))
}

// Stop implements status.Handler: it begins a graceful stop that takes at
// most timeout (0: the config's stopTimeout), and returns at once. Wait
// waits for the stop.
func (d *Daemon) Stop(timeout time.Duration) {
	if timeout <= 0 {
		d.mu.Lock()
		timeout = d.cfg.StopTimeout
		d.mu.Unlock()
	}
	select {
	case d.stopReq <- timeout:
	default: // already stopping
	}
}

// reopenLog reopens the log file onto stdout and stderr, for logrotate:
// both were the log (start -d made them so), and a descriptor left on the old file
// would keep it, rotated and deleted, on the disk.
func (d *Daemon) reopenLog() {
	if d.logFile == "" {
		return
	}
	f, err := OpenLog(d.logFile)
	if err != nil {
		d.log.Error("reopen log", "err", err)
		return
	}
	defer f.Close()
	for _, fd := range []int{1, 2} {
		if err := unix.Dup2(int(f.Fd()), fd); err != nil {
			d.log.Error("reopen log", "fd", fd, "err", err)
			return
		}
	}
	d.log.Info("log reopened", "file", d.logFile)
}

func indent(s string) string { return "  " + strings.ReplaceAll(s, "\n", "\n  ") }
