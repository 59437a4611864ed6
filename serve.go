package main

import (
	"context"
	"errors"
	"fmt"
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
	"github.com/fastws/fastws/server/config"
	"github.com/fastws/fastws/status"
	"golang.org/x/sys/unix"
)

// pidPath is the daemon's pidfile in runDir, next to its status socket
// (status.SocketPath).
func pidPath(cfg *config.Config) string { return filepath.Join(cfg.RunDir, "fastws.pid") }

// daemon is a running fastws: the pidfile, the server and the status
// socket, and what the status socket asks of them.
type daemon struct {
	log     *slog.Logger
	logFile string // reopened on SIGUSR1 when running detached; "" in the foreground
	srv     *server.Server
	started time.Time

	mu  sync.Mutex
	cfg *config.Config // guarded by mu: the config in force

	startedBy   string // status.Daemon.StartedBy
	serviceUnit string // status.Daemon.ServiceUnit

	stopReq  chan time.Duration // a stop asked for over the status socket
	stopping atomic.Bool        // set once a stop has begun: reloads are refused from then on
}

// serve runs the daemon until a signal or a stop request, in the order
// STYLE.md prescribes: config (done) -> pidfile -> room -> status socket ->
// metrics endpoint -> instances. notify reports progress to whoever started
// it: "note: ...", then "ready" once every instance listens. It returns the
// exit code.
func (e *env) serve(cfg *config.Config, log *slog.Logger, logFile string, notify func(string)) (int, error) {
	if err := makeRunDir(cfg.RunDir); err != nil {
		return exitFailure, err
	}
	pf, err := pidfile.Acquire(pidPath(cfg))
	if err != nil {
		return exitFailure, err
	}
	defer pf.Release()
	if pid := pf.Stale(); pid != 0 {
		note := fmt.Sprintf("note: replaced the stale pidfile %s of pid %d, which is no longer running", pf.Path(), pid)
		log.Warn(note)
		notify(note)
	}

	d := &daemon{log: log, logFile: logFile, srv: server.New(log, chat.Options{}), started: time.Now(), cfg: cfg, stopReq: make(chan time.Duration, 1)}
	d.startedBy, d.serviceUnit = startedBy(logFile != "")
	sock, err := status.Listen(status.SocketPath(cfg.RunDir), d)
	if err != nil {
		return exitFailure, err
	}
	defer sock.Close()
	if cfg.MetricsListen != "" {
		// Before the instances, so that /healthz answers 503 until they listen.
		ms, err := status.ServeMetrics(cfg.MetricsListen, status.NewCollector(d.Status, closeReasons()), d.healthy, log)
		if err != nil {
			return exitFailure, bindHint(fmt.Errorf("metricsListen: %w", err), cfg.Path, "metricsListen")
		}
		defer func() {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			_ = ms.Close(ctx)
		}()
		log.Info("metrics listening", "addr", ms.Addr())
	}
	if err := d.srv.Start(cfg); err != nil {
		return exitFailure, bindHint(err, cfg.Path, "the port")
	}
	log.Info("started", "pid", os.Getpid(), "version", version, "config", cfg.Path)
	notify("ready")

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

	timeout := cfg.StopTimeout
wait:
	for {
		select {
		case sig := <-e.signals:
			switch sig {
			case syscall.SIGHUP:
				select {
				case reloadReq <- struct{}{}:
				default: // one is pending already
				}
			case syscall.SIGUSR1:
				d.reopenLog()
			default:
				log.Info("stopping", "signal", sig.String())
				break wait
			}
		case timeout = <-d.stopReq:
			log.Info("stopping", "requested", "status socket")
			break wait
		case <-e.ctx.Done():
			break wait
		}
	}
	// From here a reload is refused, and srv.Stop cuts short one under way.
	d.stopping.Store(true)
	fmt.Fprintf(e.stdout, "stopping (up to %s; Ctrl-C again to force)\n", timeout)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	stopped := make(chan error, 1)
	go func() { stopped <- d.srv.Stop(ctx) }()
	for {
		select {
		case err := <-stopped:
			if err != nil {
				return exitFailure, fmt.Errorf("graceful stop did not finish within %s; remaining connections were closed", timeout)
			}
			log.Info("stopped")
			fmt.Fprintln(e.stdout, "stopped")
			return exitOK, nil
		case sig := <-e.signals:
			switch sig {
			case syscall.SIGHUP:
				log.Warn("reload refused", "signal", sig.String(), "err", server.ErrStopping)
			case syscall.SIGUSR1:
				d.reopenLog()
			default:
				return exitFailure, errors.New("forced exit on second signal")
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
func (d *daemon) Status() status.Snapshot {
	st := d.srv.Stats()
	d.mu.Lock()
	path := d.cfg.Path
	d.mu.Unlock()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	snap := status.Snapshot{Daemon: status.Daemon{
		PID: os.Getpid(), Version: version, GoVersion: runtime.Version(), Config: path,
		Started: d.started, UptimeSeconds: time.Since(d.started).Seconds(),
		RSSBytes: status.ReadRSS(), HeapBytes: ms.HeapAlloc, Goroutines: runtime.NumGoroutine(),
		Members: st.Room.Members, OpenFiles: status.OpenFiles(), MaxOpenFiles: status.MaxOpenFiles(),
		StartedBy: d.startedBy, ServiceUnit: d.serviceUnit,
	}}
	for _, i := range st.Instances {
		snap.Instances = append(snap.Instances, status.Instance{
			Name: i.Name, Protocol: i.Protocol, Listen: i.Addr, Reactors: i.Reactors,
			Connections: i.Conns, ConnectionsTotal: i.ConnsTotal,
			MessagesIn: i.MsgsIn, MessagesOut: i.MsgsOut, BytesIn: i.BytesIn, BytesOut: i.BytesOut, Errors: i.Errors,
			Listening: i.Listening, Error: i.Error, BroadcastDeliveries: i.Broadcasts, PrivateMessages: i.Privates,
			SlowConsumers: i.Slow, AcceptStalls: i.AcceptStalls, ClosedByReason: i.ClosedBy, ProtocolErrors: i.ProtoErrors,
		})
	}
	return snap
}

// healthy is /healthz: nil when every configured instance listens with
// the settings in force, else which one does not and why. It is safe for
// concurrent use.
func (d *daemon) healthy() error {
	d.mu.Lock()
	want := d.cfg.Instances
	d.mu.Unlock()
	byName := make(map[string]server.InstanceStats, len(want))
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
func (d *daemon) Connections(ctx context.Context, emit func([]status.Connection) error) error {
	var out []status.Connection
	return d.srv.EachConnection(ctx, func(rows []server.ConnStats) error {
		out = out[:0]
		for _, r := range rows {
			out = append(out, status.Connection{
				UID: r.UID, Nick: r.Nick, Instance: r.Instance, Reactor: r.Reactor, Remote: r.Remote,
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
func (d *daemon) Reload() error {
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
	if cfg.MetricsListen != old.MetricsListen {
		return nil, fmt.Errorf("%s: metricsListen changed (%q -> %q); that needs 'fastws restart'", old.Path, old.MetricsListen, cfg.MetricsListen)
	}
	return cfg, nil
}

// Expired implements status.ExpiredLogger.
func (d *daemon) Expired(cmd string, deadline time.Time) {
	d.log.Warn("request dropped", "cmd", cmd, "err", fmt.Sprintf("its deadline %s passed before the daemon got to it (was it stopped?); the client has given up, so it is not carried out", deadline.Format(time.RFC3339Nano)))
}

// Stop implements status.Handler: it begins a graceful stop.
func (d *daemon) Stop(timeout time.Duration) {
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
// both were the log (see launch), and a descriptor left on the old file
// would keep it, rotated and deleted, on the disk.
func (d *daemon) reopenLog() {
	if d.logFile == "" {
		return
	}
	f, err := openLog(d.logFile)
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
