package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Server kinds: the daemon under test, the raw gnet baseline (the
// strongest simple server: per read, one write per connection) and the
// same baseline naive (one AsyncWrite per line per connection). In cases
// 1 and 2 both baselines are the same line echo: only kindBaseline runs.
const (
	kindFastws   = "fastws"
	kindBaseline = "baseline"
	kindNaive    = "naive"
)

// binaries are the programs the bench builds once per invocation.
type binaries struct {
	dir      string // temporary folder, removed at the end
	fastws   string
	baseline string
}

// build compiles the daemon from the module at src and the baseline from
// the one at root.
func build(ctx context.Context, src, root string) (*binaries, error) {
	dir, err := os.MkdirTemp("", "fastws-bench-")
	if err != nil {
		return nil, err
	}
	b := &binaries{dir: dir, fastws: filepath.Join(dir, "fastws"), baseline: filepath.Join(dir, "baseline")}
	for _, x := range []struct{ out, pkg, dir string }{{b.fastws, ".", src}, {b.baseline, "./scripts/bench/baseline", root}} {
		cmd := exec.CommandContext(ctx, "go", "build", "-o", x.out, x.pkg)
		cmd.Dir = x.dir
		if out, err := cmd.CombinedOutput(); err != nil {
			os.RemoveAll(dir)
			return nil, fmt.Errorf("go build %s: %w\n%s", x.pkg, err, out)
		}
	}
	return b, nil
}

// freePort returns a loopback port nothing listens on right now.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// server is one running server process.
type server struct {
	kind    string
	cmd     *exec.Cmd
	telnet  string // listen address of the telnet (line) protocol
	ws      string // listen address of the websocket protocol
	metrics string // fastws only
	config  string // fastws only
	fastws  string // fastws only: the binary, for "status"
	pprof   string // fastws only: FASTWS_PPROF, or ""
	api     string // fastws only: the HTTP API's address, "" if off (see api.go)
	log     string // stderr of the process
	done    chan struct{}
	waitErr error
}

func (s *server) pid() int { return s.cmd.Process.Pid }

// target returns the address speaking websocket (ws) or telnet lines,
// and how the server talks there.
func (s *server) target(ws bool) target {
	if ws {
		return target{Addr: s.ws, WS: true, Welcome: s.kind == kindFastws}
	}
	return target{Addr: s.telnet, Welcome: s.kind == kindFastws}
}

// daemonConfig is the bench's fastws config: no rate limit, no idle
// timeout, send buffers large enough for the fan-out backlog, two
// reactors per instance.
const daemonConfig = `; written by scripts/bench
[fastws]
runDir = %s
logFile = fastws.log
metricsListen = %s
stopTimeout = 5s
maxPackageSize = 64K
maxSendBuffer = %s
idleTimeout = 0
maxConnections = 10000000
maxConnectionsPerIP = 0
messagesPerSecond = 0
bytesPerSecond = 0
messageBurst = 100

[instance.telnet]
instanceName = bench-telnet
protocol = telnet
host = 127.0.0.1
port = %d
childProcessCount = %d

[instance.websocket]
instanceName = bench-websocket
protocol = websocket
host = 127.0.0.1
port = %d
childProcessCount = %d
`

// startFastws writes a fresh config and runs "fastws -c CONFIG start" in
// the foreground; it returns once the start screen says every instance
// listens.
func startFastws(ctx context.Context, bin *binaries, seq, loops int, sendBuf, pprof string, api bool) (*server, error) {
	return startFastwsWith(ctx, bin, seq, loops, sendBuf, pprof, api, "")
}

// startFastwsWith is startFastws with extra appended to the config.
func startFastwsWith(ctx context.Context, bin *binaries, seq, loops int, sendBuf, pprof string, api bool, extra string) (*server, error) {
	var ports [4]int
	for i := range ports {
		p, err := freePort()
		if err != nil {
			return nil, err
		}
		ports[i] = p
	}
	dir := filepath.Join(bin.dir, "fastws-"+strconv.Itoa(seq))
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	metrics := "127.0.0.1:" + strconv.Itoa(ports[0])
	cfg := filepath.Join(dir, "config.ini")
	text := fmt.Sprintf(daemonConfig, filepath.Join(dir, "run"), metrics, sendBuf, ports[1], loops, ports[2], loops)
	if api { // only for the api case: a daemon built with -src may have no [api]
		text += apiSection(ports[3])
	}
	text += extra
	if err := os.WriteFile(cfg, []byte(text), 0o600); err != nil {
		return nil, err
	}
	s := &server{
		kind: kindFastws, metrics: metrics, config: cfg, fastws: bin.fastws,
		telnet: "127.0.0.1:" + strconv.Itoa(ports[1]), ws: "127.0.0.1:" + strconv.Itoa(ports[2]),
		log: filepath.Join(dir, "stderr.log"), pprof: pprof,
	}
	if api {
		s.api = "127.0.0.1:" + strconv.Itoa(ports[3])
	}
	return s, s.start(ctx, "Press Ctrl-C to stop.", bin.fastws, "-c", cfg, "start")
}

// memStats returns the Go allocation counters of a daemon that serves
// net/http/pprof at addr.
func memStats(addr string) (mallocs, bytes uint64, err error) {
	resp, err := http.Get("http://" + addr + "/debug/pprof/heap?debug=1")
	if err != nil {
		return 0, 0, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "# Mallocs = "); ok {
			mallocs, _ = strconv.ParseUint(v, 10, 64)
		}
		if v, ok := strings.CutPrefix(sc.Text(), "# TotalAlloc = "); ok {
			bytes, _ = strconv.ParseUint(v, 10, 64)
		}
	}
	if mallocs == 0 {
		return 0, 0, fmt.Errorf("no MemStats at %s", addr)
	}
	return mallocs, bytes, sc.Err()
}

// startBaseline runs the raw gnet baseline in mode (echo, batch or
// naive) as server kind.
func startBaseline(ctx context.Context, bin *binaries, seq, loops int, kind, mode string, ws bool, accept string) (*server, error) {
	p, err := freePort()
	if err != nil {
		return nil, err
	}
	addr := "127.0.0.1:" + strconv.Itoa(p)
	s := &server{kind: kind, telnet: addr, ws: addr, log: filepath.Join(bin.dir, fmt.Sprintf("baseline-%d.log", seq))}
	return s, s.start(ctx, "ready", bin.baseline, "-addr", addr, "-mode", mode, "-ws="+strconv.FormatBool(ws), "-loops", strconv.Itoa(loops), "-accept", accept)
}

// start runs the process and waits for ready on its stdout.
func (s *server) start(ctx context.Context, ready string, name string, args ...string) error {
	logf, err := os.Create(s.log)
	if err != nil {
		return err
	}
	s.cmd = exec.Command(name, args...)
	s.cmd.Stderr = logf
	if s.pprof != "" {
		s.cmd.Env = append(os.Environ(), "FASTWS_PPROF="+s.pprof)
	}
	// The server dies with the bench, whatever way the bench ends.
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	out, err := s.cmd.StdoutPipe()
	if err != nil {
		logf.Close()
		return err
	}
	if err := s.cmd.Start(); err != nil {
		logf.Close()
		return err
	}
	s.done = make(chan struct{})
	readyc := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(out)
		signalled := false
		for sc.Scan() {
			if !signalled && strings.TrimSpace(sc.Text()) == ready {
				close(readyc)
				signalled = true
			}
		}
		s.waitErr = s.cmd.Wait()
		logf.Close()
		close(s.done)
	}()
	t := time.NewTimer(15 * time.Second)
	defer t.Stop()
	select {
	case <-readyc:
		return nil
	case <-s.done:
		return fmt.Errorf("%s exited before it was ready (%v): %s", s.kind, s.waitErr, s.tail())
	case <-t.C:
	case <-ctx.Done():
	}
	s.stop()
	return fmt.Errorf("%s not ready within 15s: %s", s.kind, s.tail())
}

// stop ends the server gracefully (SIGTERM: fastws tells its clients and
// flushes), and kills it if it has not exited within 10s. It is
// idempotent.
func (s *server) stop() {
	select {
	case <-s.done:
		return
	default:
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
		return
	case <-time.After(10 * time.Second):
	}
	_ = s.cmd.Process.Kill()
	<-s.done
}

// tail returns the end of the server's stderr.
func (s *server) tail() string {
	b, _ := os.ReadFile(s.log)
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return strings.TrimSpace(string(b))
}

// cpu is the server's CPU time so far.
func (s *server) cpu() time.Duration {
	d, _ := procCPU(s.pid())
	return d
}

// statusReport is the part of "fastws status --json" the bench checks.
type statusReport struct {
	Daemon struct {
		Members   int `json:"members"`
		OpenFiles int `json:"openFiles"`
	} `json:"daemon"`
	Instances []struct {
		Name          string `json:"name"`
		Connections   int64  `json:"connections"`
		MessagesOut   uint64 `json:"messagesOut"`
		Writes        uint64 `json:"writes"`
		Errors        uint64 `json:"errors"`
		SlowConsumers uint64 `json:"slowConsumers"`
	} `json:"instances"`
}

// written returns the messages the daemon has written and the writes
// that carried them, over its instances ("writes" is 0 from a daemon
// that does not count them).
func (s *server) written(ctx context.Context) (msgs, writes uint64) {
	st, _, err := s.status(ctx)
	if err != nil {
		return 0, 0
	}
	for _, in := range st.Instances {
		msgs += in.MessagesOut
		writes += in.Writes
	}
	return msgs, writes
}

// status runs "fastws -c CONFIG status --json", the way a user asks.
func (s *server) status(ctx context.Context) (*statusReport, time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	start := time.Now()
	cmd := exec.CommandContext(ctx, s.fastws, "-c", s.config, "status", "--json")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	took := time.Since(start)
	if err != nil {
		return nil, took, fmt.Errorf("fastws status: %w: %s", err, strings.TrimSpace(stderr.String()))
	}
	var st statusReport
	if err := json.Unmarshal(out, &st); err != nil {
		return nil, took, fmt.Errorf("fastws status --json: %w", err)
	}
	return &st, took, nil
}

// errNoMetrics says the daemon does not serve /metrics (yet).
var errNoMetrics = errors.New("/metrics not served")

// scrape fetches /metrics and returns its size.
func (s *server) scrape(ctx context.Context) (int, time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	start := time.Now()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+s.metrics+"/metrics", nil)
	if err != nil {
		return 0, 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		var op *net.OpError
		if errors.As(err, &op) && op.Op == "dial" {
			return 0, 0, fmt.Errorf("%w: %v", errNoMetrics, err)
		}
		return 0, time.Since(start), err
	}
	defer resp.Body.Close()
	n, err := io.Copy(io.Discard, resp.Body)
	took := time.Since(start)
	if resp.StatusCode == http.StatusNotFound {
		return 0, took, fmt.Errorf("%w: %s", errNoMetrics, resp.Status)
	}
	if resp.StatusCode != http.StatusOK {
		return 0, took, fmt.Errorf("GET /metrics: %s", resp.Status)
	}
	return int(n), took, err
}

// procs tracks the load tool's own processes (itself and its workers)
// for CPU accounting.
type procs struct {
	mu   sync.Mutex
	pids []int
}

func (p *procs) add(pid int) {
	p.mu.Lock()
	p.pids = append(p.pids, pid)
	p.mu.Unlock()
}

// cpu returns the CPU time of this process and of the live workers.
func (p *procs) cpu() time.Duration {
	d, _ := procCPU(0)
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, pid := range p.pids {
		if w, err := procCPU(pid); err == nil {
			d += w
		}
	}
	return d
}
