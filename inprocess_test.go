package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fastws/fastws/server/config"
	"github.com/fastws/fastws/server/daemon"
	"github.com/fastws/fastws/status"
)

// These helpers run the daemon and the verbs in the test process: what a
// verb prints and returns against a daemon started as `fastws start`
// starts it, without building, starting and waiting for processes. The
// tests of what only a process shows (start -d, signals, pidfiles of dead
// processes, file limits, another user) run the binary.

// inProc is a daemon started in-process as a foreground `fastws start`
// starts it, with its signals, stdout and log in the test's hands.
type inProc struct {
	*daemon.Daemon
	signals chan os.Signal
	stdout  <-chan string // its "stopping" and "stopped" lines
	log     <-chan string // its log, line by line
	exited  chan struct{}
	err     error // Wait's, once exited is closed
}

// startInProc starts the daemon of the config file cfg in-process, and
// stops it when the test ends if it still runs.
func startInProc(t *testing.T, cfg string) *inProc {
	t.Helper()
	c, err := config.Load(cfg)
	if err != nil {
		t.Fatal(err)
	}
	outR, outW := io.Pipe()
	logR, logW := io.Pipe()
	p := &inProc{signals: make(chan os.Signal, 32), stdout: lines(outR), log: lines(logR), exited: make(chan struct{})}
	log := slog.New(slog.NewTextHandler(logW, &slog.HandlerOptions{Level: slog.LevelInfo}))
	p.Daemon, err = daemon.Start(t.Context(), c, daemon.Options{Log: log, Version: version, Signals: p.signals, Stdout: outW})
	if err != nil {
		outW.Close()
		logW.Close()
		t.Fatalf("start: %v", err)
	}
	go func() {
		p.err = p.Wait()
		outW.Close()
		logW.Close()
		close(p.exited)
	}()
	t.Cleanup(func() {
		p.Stop(0)
		<-p.exited
	})
	return p
}

// runIn runs the command line args in-process, as the binary would.
func runIn(t testing.TB, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var o, e bytes.Buffer
	code = run(t.Context(), args, &o, &e)
	return o.String(), e.String(), code
}

// statusSnapshotIn runs `status --json` in-process and decodes it.
func statusSnapshotIn(t *testing.T, cfg string) status.Snapshot {
	return statusAs[status.Snapshot](t, runIn, cfg)
}

// statusJSONIn runs `status --json` in-process and decodes it.
func statusJSONIn(t *testing.T, cfg string) map[string]any {
	return statusAs[map[string]any](t, runIn, cfg)
}

// TestReload: the reload verb against an in-process daemon.
func TestReload(t *testing.T) {
	t.Parallel()
	pa, pb := freePort(t), freePort(t)
	cfg := writeConfig(t, "", pa)
	startInProc(t, cfg)
	old := connect(t, pa)

	// Add an instance.
	added := writeConfig(t, "", pa, pb)
	copyFile(t, added, cfg)
	out, stderr, code := runIn(t, "-c", cfg, "reload")
	if code != 0 {
		t.Fatalf("reload: exit %d, %s%s", code, out, stderr)
	}
	fresh := connect(t, pb)
	old.waitFor("* uid " + fresh.uid + " joined")
	old.say("still here")
	old.waitFor("uid " + old.uid + ": still here")
	fresh.waitFor("uid " + old.uid + ": still here")

	// A broken config is refused; the daemon keeps running as it was.
	if err := os.WriteFile(cfg, []byte("[fastws]\nport = 1\n[instance.x]\nprotocol = udp\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, stderr, code = runIn(t, "-c", cfg, "reload")
	if code != 2 || !strings.Contains(stderr, "unknown key") || !strings.Contains(stderr, "keeps its config") {
		t.Errorf("reload of a broken config: got exit %d, stderr %q; want 2 with the errors", code, stderr)
	}
	copyFile(t, added, cfg)
	doc := statusJSONIn(t, cfg)
	if n := len(doc["instances"].([]any)); n != 2 {
		t.Errorf("after a refused reload: got %d instances, want 2", n)
	}
	fresh.say("after")
	old.waitFor("uid " + fresh.uid + ": after")
}

// TestReloadFailureIsHonest drives the binary through a reload whose
// addresses are taken: a changed instance that would move to a taken port
// keeps serving its old one, an added instance on a taken port is down;
// `fastws reload` fails naming both and their addresses, the log has no
// "reloaded", and status (table and JSON) shows each with its error until
// a reload after the ports are freed starts them.
func TestReloadFailureIsHonest(t *testing.T) {
	t.Parallel()
	var taken [2]net.Listener
	var ports [2]int
	for k := range taken {
		ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(freePort(t)))
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		taken[k], ports[k] = ln, ln.Addr().(*net.TCPAddr).Port
	}
	first := freePort(t)
	cfg := writeConfig(t, "", first)
	d := startInProc(t, cfg)
	stay := dialTelnet(t, first)
	defer stay.Close()

	orig, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	moved := strings.Replace(string(orig), "port = "+strconv.Itoa(first), "port = "+strconv.Itoa(ports[0]), 1) +
		fmt.Sprintf("[instance.added]\ninstanceName = Added\nprotocol = telnet\nhost = 127.0.0.1\nport = %d\n", ports[1])
	if err := os.WriteFile(cfg, []byte(moved), 0o644); err != nil {
		t.Fatal(err)
	}
	out, stderr, code := runIn(t, "-c", cfg, "reload")
	if code != 1 {
		t.Fatalf("reload onto taken ports: got exit %d, output %q %q; want 1", code, out, stderr)
	}
	for _, want := range []string{
		fmt.Sprintf("instance Telnet-0: listen 127.0.0.1:%d: bind: address already in use; it keeps serving 127.0.0.1:%d with its previous settings", ports[0], first),
		fmt.Sprintf("instance Added: listen 127.0.0.1:%d: bind: address already in use", ports[1]),
	} {
		if !strings.Contains(stderr, want) {
			t.Errorf("reload said %q, want %q in it", stderr, want)
		}
	}
	if strings.Contains(out, "reloaded") {
		t.Errorf("reload printed %q on failure", out)
	}

	table, _, code := runIn(t, "-c", cfg, "status")
	if code != 0 {
		t.Fatalf("status: exit %d", code)
	}
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(fmt.Sprintf(`(?m)^Telnet-0\s+telnet\s+127\.0\.0\.1:%d\s.*\sstale$`, first)),
		regexp.MustCompile(fmt.Sprintf(`(?m)^Added\s+telnet\s+127\.0\.0\.1:%d\s.*\sdown$`, ports[1])),
		regexp.MustCompile(regexp.QuoteMeta(fmt.Sprintf("Telnet-0 stale: instance Telnet-0: listen 127.0.0.1:%d: bind: address already in use", ports[0]))),
		regexp.MustCompile(regexp.QuoteMeta(fmt.Sprintf("Added down: instance Added: listen 127.0.0.1:%d: bind: address already in use", ports[1]))),
	} {
		if !want.MatchString(table) {
			t.Errorf("status:\n%s\nwant a line with %q", table, want)
		}
	}
	snap := statusSnapshotIn(t, cfg)
	if len(snap.Instances) != 2 {
		t.Fatalf("status --json lists %d instances, want 2", len(snap.Instances))
	}
	if in := snap.Instances[0]; !in.Listening || !strings.Contains(in.Error, "keeps serving") {
		t.Errorf("status --json: Telnet-0 listening %v, error %q; want listening with the error", in.Listening, in.Error)
	}
	if in := snap.Instances[1]; in.Listening || !strings.Contains(in.Error, "address already in use") {
		t.Errorf("status --json: Added listening %v, error %q; want down with the error", in.Listening, in.Error)
	}

	for _, ln := range taken {
		ln.Close()
	}
	if out, stderr, code := runIn(t, "-c", cfg, "reload"); code != 0 {
		t.Fatalf("reload once the ports are free: exit %d, %q %q", code, out, stderr)
	}
	for k, in := range statusSnapshotIn(t, cfg).Instances {
		if !in.Listening || in.Error != "" || in.Listen != "127.0.0.1:"+strconv.Itoa(ports[k]) {
			t.Errorf("after the second reload %s: listening %v on %s, error %q; want listening on port %d, no error",
				in.Name, in.Listening, in.Listen, in.Error, ports[k])
		}
	}

	d.signals <- syscall.SIGINT
	var log []string
	for l := range d.log {
		log = append(log, l)
	}
	<-d.exited
	if d.err != nil {
		t.Fatalf("exit after SIGINT: %v", d.err)
	}
	var reloads []string
	for _, l := range log {
		if strings.Contains(l, "msg=reload") || strings.Contains(l, `msg="reload`) {
			reloads = append(reloads, l)
		}
	}
	if len(reloads) != 2 || !strings.Contains(reloads[0], `msg="reload incomplete"`) || !strings.Contains(reloads[1], "msg=reloaded") {
		t.Errorf("log has reload lines %q, want one incomplete, then one reloaded", reloads)
	}
}

// TestSignalsDuringSlowReload reproduces a lost signal: a reload that
// waits stopTimeout for a client that does not read, seven SIGHUPs, then
// a SIGTERM. The daemon exits at once, not after stopTimeout, and the
// HUPs coalesce into at most one more reload.
func TestSignalsDuringSlowReload(t *testing.T) {
	t.Parallel()
	port := freePort(t)
	cfg := writeConfig(t, "maxSendBuffer = 64M\nbytesPerSecond = 0\nstopTimeout = 60s\n", port)
	d := startInProc(t, cfg)
	stuckClient(t, port, 14<<20)

	setReactors(t, cfg, 3)
	d.signals <- syscall.SIGHUP
	// The replacement listens: the reload now waits for the stuck client.
	var logged []string
	collect := func(re *regexp.Regexp) {
		t.Helper()
		deadline := time.After(testTimeout)
		for {
			select {
			case l, ok := <-d.log:
				if !ok {
					t.Fatalf("log ended before %q; it said:\n%s", re, strings.Join(logged, "\n"))
				}
				logged = append(logged, l)
				if re.MatchString(l) {
					return
				}
			case <-deadline:
				t.Fatalf("no log line %q within %s; it said:\n%s", re, testTimeout, strings.Join(logged, "\n"))
			}
		}
	}
	collect(regexp.MustCompile(`msg=listening .*reactors=3`))
	for range 6 {
		d.signals <- syscall.SIGHUP
	}
	sent := time.Now()
	d.signals <- syscall.SIGTERM
	select {
	case <-d.exited:
	case <-time.After(10 * time.Second):
		t.Fatalf("the daemon still runs %s after SIGTERM (stopTimeout 60s): the TERM waited behind the reload or was lost", time.Since(sent).Round(time.Millisecond))
	}
	took := time.Since(sent)
	for l := range d.log {
		logged = append(logged, l)
	}
	if d.err != nil {
		t.Errorf("exit: %v, want a graceful one; log:\n%s", d.err, strings.Join(logged, "\n"))
	}
	reloads := 0
	for _, l := range logged {
		if regexp.MustCompile(`msg=(reloaded|"reload (refused|incomplete)")`).MatchString(l) {
			reloads++
		}
	}
	if reloads > 2 {
		t.Errorf("%d reloads ran for 7 SIGHUPs during a reload, want at most 2; log:\n%s", reloads, strings.Join(logged, "\n"))
	}
	t.Logf("exited %s after SIGTERM; %d reload outcomes logged", took.Round(time.Millisecond), reloads)
}

// TestReloadWhileStoppingRefused checks that a reload sent while the
// daemon stops gracefully (here waiting for a client that does not read)
// fails and says why, rather than starting listeners in an exiting process
// and printing "reloaded".
func TestReloadWhileStoppingRefused(t *testing.T) {
	t.Parallel()
	port := freePort(t)
	cfg := writeConfig(t, "maxSendBuffer = 64M\nbytesPerSecond = 0\nstopTimeout = 60s\n", port)
	d := startInProc(t, cfg)
	stuckClient(t, port, 4<<20)
	d.signals <- syscall.SIGTERM
	waitLine(t, "daemon", d.stdout, regexp.MustCompile(`^stopping \(up to 1m0s`))
	// The stop closes the listener first: wait for that, so that the
	// check below sees what the reload did, not the stop still starting.
	deadline := time.Now().Add(testTimeout)
	for {
		c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(port), time.Second)
		if err != nil {
			break
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatalf("port %d still accepts connections %v after the stop began", port, testTimeout)
		}
		time.Sleep(10 * time.Millisecond) // poll interval
	}
	out, stderr, code := runIn(t, "-c", cfg, "reload")
	if code != exitFailure || !strings.Contains(stderr, "stopping") || strings.Contains(out, "reloaded") {
		t.Errorf("reload while stopping: exit %d, stdout %q, stderr %q; want exit 1 and a refusal that says the daemon is stopping", code, out, stderr)
	}
	// The listener stays closed.
	if c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(port), time.Second); err == nil {
		c.Close()
		t.Errorf("port %d accepts connections after a reload during the stop", port)
	}
	d.signals <- syscall.SIGTERM // the second one forces the exit
	select {
	case <-d.exited:
	case <-time.After(testTimeout):
		t.Fatal("the daemon did not exit on a second SIGTERM")
	}
}

// TestRestartRefusesForegroundDaemon: a daemon that `start -d` did not
// start (here a foreground one; under systemd the same) is not replaced by
// restart with a detached one its supervisor knows nothing of.
func TestRestartRefusesForegroundDaemon(t *testing.T) {
	t.Parallel()
	port := freePort(t)
	cfg := writeConfig(t, "", port)
	d := startInProc(t, cfg)
	if by := statusSnapshotIn(t, cfg).Daemon.StartedBy; by != "foreground" {
		t.Errorf("status startedBy %q, want foreground", by)
	}
	out, stderr, code := runIn(t, "-c", cfg, "restart")
	if code != exitFailure || !strings.Contains(stderr, "runs in the foreground") || !strings.Contains(stderr, "systemctl restart fastws") {
		t.Errorf("restart of a foreground daemon: exit %d, stdout %q, stderr %q; want exit 1 naming systemctl restart", code, out, stderr)
	}
	select {
	case <-d.exited:
		t.Fatal("restart stopped the foreground daemon")
	default:
	}
	connect(t, port) // still serving
}

// statusAs runs `status --json` through run (runCLI: the built binary;
// runIn: in-process) and decodes it into a T.
func statusAs[T any](t *testing.T, run func(testing.TB, ...string) (string, string, int), cfg string) T {
	t.Helper()
	out, stderr, code := run(t, "-c", cfg, "status", "--json")
	if code != 0 {
		t.Fatalf("status --json: exit %d: %s", code, stderr)
	}
	var v T
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("status --json is not JSON: %v\n%s", err, out)
	}
	return v
}
