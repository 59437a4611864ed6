// Command bench measures fastws against a raw gnet baseline in the same
// invocation (SPEC.md section 7): the published FastWS cases on the chat
// path, broadcast fan-out and idle connections, over telnet and
// websocket. It builds the daemon and the baseline, runs each case against
// one, then the other, each freshly started, and prints a table of
// fastws/baseline ratios against the project's targets.
//
//	go run ./scripts/bench                           the suite (under 10 minutes)
//	go run ./scripts/bench -out scripts/bench/results   and write table, JSON, chart
//	go run ./scripts/bench -smoke                    every case, tiny (a few seconds)
//
// Progress goes to stderr, the table to stdout. It exits 1 if a run had
// errors or lost messages (targets missed are reported, not failures),
// 2 on bad flags. Everything runs on loopback and stops by itself.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Exit codes.
const (
	exitOK      = 0
	exitFailure = 1 // a run failed (errors, lost messages) or the suite could not run
	exitUsage   = 2
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// options are the flags.
type options struct {
	out, only, profile        string
	smoke                     bool
	timeout                   time.Duration
	case1Dur, case2Dur        time.Duration
	satDur, rateDur, drain    time.Duration
	setupTimeout, settle      time.Duration
	hold                      time.Duration
	case2Conns, window        int
	rounds                    int
	fanoutRounds              int
	satMsgs                   int
	rate                      float64
	fanout, idle              []int
	room, roomConns           int // rooms/ROOM-of-ROOMCONNS
	busyRooms, roomSize       int // rooms/BUSYROOMSxROOMSIZE
	roomsPerSender            int
	apiConns                  int // api/send/APICONNS
	protos                    []string
	srcAddrs, dialConc, loops int
	perProc, bufSize          int
	sendBuf, src, pprof, from string
	servers                   []string
	baselineAccept            string // native | enroll
	clusterIdle               int    // cluster/idle/5xN: idle connections per node
}

// intList is a flag holding comma-separated counts.
type intList []int

func (l *intList) String() string {
	s := make([]string, len(*l))
	for i, v := range *l {
		s[i] = strconv.Itoa(v)
	}
	return strings.Join(s, ",")
}

func (l *intList) Set(v string) error {
	*l = nil
	for f := range strings.SplitSeq(v, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil || n < 1 {
			return fmt.Errorf("%q is not a positive count", f)
		}
		*l = append(*l, n)
	}
	return nil
}

func parseFlags(args []string, stderr io.Writer) (*options, error) {
	o := &options{fanout: []int{1000, 10000}, idle: []int{10000, 19000}}
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	soft, _ := fileLimit()
	perProc := 15000
	if soft > 0 && int(soft)-2000 < perProc {
		perProc = max(int(soft)-2000, 100)
	}
	protos := "telnet,websocket"
	fs.StringVar(&o.out, "out", "", "write bench.txt (the table), bench.json, summary.md and fanout.svg (the chart) to this folder")
	fs.BoolVar(&o.smoke, "smoke", false, "run every case tiny (a few seconds); exit 1 on any error or loss")
	fs.StringVar(&o.only, "only", "", "run only the cases matching this regexp (e.g. 'fanout/telnet')")
	fs.StringVar(&o.profile, "profile", "", "record perf CPU profiles (with call graphs) of the servers during the fan-out phases into this folder")
	fs.DurationVar(&o.timeout, "timeout", 10*time.Minute, "stop the whole suite after this long")
	fs.DurationVar(&o.case1Dur, "case1", 5*time.Second, "case 1 duration per server")
	fs.DurationVar(&o.case2Dur, "case2", 5*time.Second, "case 2 duration per server")
	fs.IntVar(&o.case2Conns, "case2-conns", 1000, "case 2 connections")
	fs.IntVar(&o.rounds, "rounds", 3, "cases 1 and 2: rounds, alternating the servers; the table shows the median")
	fs.IntVar(&o.fanoutRounds, "fanout-rounds", 1, "fan-out cases (and cluster/fanout): rounds, alternating the servers; the table shows the median (3 for a target missed in one run)")
	fs.DurationVar(&o.satDur, "sat", 4*time.Second, "fan-out: sending time at saturation")
	fs.IntVar(&o.satMsgs, "sat-msgs", 0, "fan-out: stop saturation after this many messages (0 = by time)")
	fs.IntVar(&o.window, "window", 100, "fan-out: messages per receiver the sender may have unread at saturation")
	fs.Float64Var(&o.rate, "rate", 100, "fan-out: messages per second of the fixed-rate phase")
	fs.DurationVar(&o.rateDur, "rate-dur", 4*time.Second, "fan-out: duration of the fixed-rate phase")
	fs.DurationVar(&o.drain, "drain", 10*time.Second, "fan-out: how long deliveries may take after the last send")
	fs.Var((*intList)(&o.fanout), "fanout", "fan-out receiver counts")
	fs.Var((*intList)(&o.idle), "idle", "idle connection counts")
	fs.IntVar(&o.clusterIdle, "cluster-idle", 19000, "cluster/idle/5xN: idle connections per node")
	fs.IntVar(&o.room, "room", 1000, "rooms/N-of-M: receivers in the room the one sender talks to (compared with the lobby fan-out at N)")
	fs.IntVar(&o.roomConns, "room-conns", 10000, "rooms/N-of-M: receiving connections, the others in idle rooms of N")
	fs.IntVar(&o.busyRooms, "busy-rooms", 1000, "rooms/RxK: rooms, every one busy")
	fs.IntVar(&o.roomSize, "room-size", 10, "rooms/RxK: receivers per room")
	fs.IntVar(&o.apiConns, "api-conns", 1000, "api/send/N: telnet members reading what POST /api/v1/send pushes to everyone")
	fs.IntVar(&o.roomsPerSender, "rooms-per-sender", 10, "rooms/RxK: rooms each sender is in and cycles through (at most the daemon's maxRoomsPerMember, 16)")
	fs.StringVar(&protos, "protos", protos, "protocols of the websocket-capable cases: telnet, websocket")
	fs.DurationVar(&o.setupTimeout, "setup-timeout", 4*time.Minute, "connecting receivers and reading their set-up traffic")
	fs.DurationVar(&o.settle, "settle", 2*time.Second, "idle: wait before reading RSS")
	fs.DurationVar(&o.hold, "hold", 0, "idle: keep the connections this long after measuring (to profile the server by hand)")
	fs.IntVar(&o.srcAddrs, "src-addrs", 8, "127.0.0.X source addresses to spread connections over")
	fs.IntVar(&o.dialConc, "dial-conc", 128, "connections being set up at once")
	fs.IntVar(&o.perProc, "per-proc", perProc, "most connections per load process; more are spread over worker processes")
	fs.IntVar(&o.bufSize, "bufsize", 4096, "read buffer per receiving connection")
	fs.IntVar(&o.loops, "loops", 2, "event loops (childProcessCount) of every instance and of the baseline")
	fs.StringVar(&o.sendBuf, "max-send-buffer", "64M", "fastws maxSendBuffer")
	fs.StringVar(&o.src, "src", "", "build the daemon from this module folder instead (a patched copy, say); the baseline always comes from this tree")
	fs.StringVar(&o.pprof, "pprof", "", "a daemon that serves net/http/pprof on $FASTWS_PPROF (a patched copy given with -src): set that address and record its allocations per delivery")
	fs.StringVar(&o.from, "from", "", "run nothing: print the table of this bench.json (and with -out, write the table and chart again)")
	fs.StringVar(&o.baselineAccept, "baseline-accept", "native", "how the baseline accepts: native (gnet's acceptor) or enroll (as fastws must: net.Listener, then the engine's Register)")
	servers := "fastws,baseline,naive"
	fs.StringVar(&servers, "servers", servers, "servers to run each case against: fastws, baseline (per read, one write per connection), naive (one AsyncWrite per line per connection; not in cases 1 and 2, where both baselines echo)")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	for p := range strings.SplitSeq(protos, ",") {
		switch p = strings.TrimSpace(p); p {
		case "telnet", "websocket":
			o.protos = append(o.protos, p)
		case "":
		default:
			return nil, fmt.Errorf("-protos: %q is not telnet or websocket", p)
		}
	}
	for k := range strings.SplitSeq(servers, ",") {
		switch k = strings.TrimSpace(k); k {
		case kindFastws, kindBaseline, kindNaive:
			o.servers = append(o.servers, k)
		case "":
		default:
			return nil, fmt.Errorf("-servers: %q is not fastws, baseline or naive", k)
		}
	}
	if o.smoke {
		set := map[string]bool{}
		fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
		smoke := map[string]string{
			"case1": "300ms", "case2": "300ms", "case2-conns": "50", "sat": "2s", "sat-msgs": "200",
			"rate-dur": "200ms", "drain": "5s", "fanout": "50", "idle": "50", "settle": "100ms",
			"setup-timeout": "20s", "timeout": "2m", "per-proc": "40", "rounds": "1",
			"room": "50", "room-conns": "150", "busy-rooms": "20", "room-size": "5", "cluster-idle": "10",
			"api-conns": "50",
		}
		for name, v := range smoke {
			if !set[name] {
				if err := fs.Set(name, v); err != nil {
					return nil, err
				}
			}
		}
	}
	if o.baselineAccept != "native" && o.baselineAccept != "enroll" {
		return nil, fmt.Errorf("-baseline-accept: %q is not native or enroll", o.baselineAccept)
	}
	if o.rate <= 0 || o.window < 1 || o.perProc < 1 || o.dialConc < 1 || o.loops < 1 || o.rounds < 1 || o.fanoutRounds < 1 {
		return nil, errors.New("-rate, -window, -per-proc, -dial-conc, -loops, -rounds and -fanout-rounds must be positive")
	}
	if o.room < 1 || o.roomConns < o.room || o.busyRooms < 1 || o.roomSize < 1 || o.roomsPerSender < 1 {
		return nil, errors.New("-room, -busy-rooms, -room-size and -rooms-per-sender must be positive, -room-conns at least -room")
	}
	return o, nil
}

// caseDef is one case of the suite, run against each server.
type caseDef struct {
	name string // "case1/telnet", "fanout/websocket/10000", "rooms/1000x10", ...
	kind string // case1, case2, fanout, idle, rooms
	ws   bool
	n    int // clients; in rooms, receiving connections
	// room is a rooms case's receivers per room; lobby, for the case
	// with one busy room, names the fan-out case (fastws in the lobby,
	// as many receivers) it is compared with.
	room  int
	lobby string
	// fastwsOnly: run against fastws alone (a lobby fan-out selected
	// only as the comparison of a rooms case).
	fastwsOnly bool
}

func (o *options) cases() []caseDef {
	var cs []caseDef
	add := func(kind string, ws bool, n int) {
		name := kind + "/" + map[bool]string{false: "telnet", true: "websocket"}[ws]
		if kind != "case1" {
			name += "/" + strconv.Itoa(n)
		}
		cs = append(cs, caseDef{name: name, kind: kind, ws: ws, n: n})
	}
	add("case1", false, 2)
	for _, p := range o.protos {
		add("case2", p == "websocket", o.case2Conns)
	}
	for _, p := range o.protos {
		for _, n := range o.fanout {
			add("fanout", p == "websocket", n)
		}
	}
	// The rooms cases, fastws alone (the baselines have no rooms), over
	// telnet: one busy room among idle ones, compared with the lobby
	// fan-out to as many receivers (added here, fastws alone, if -fanout
	// and -protos leave it out); then many small rooms, all busy.
	lobby := "fanout/telnet/" + strconv.Itoa(o.room)
	if !slices.ContainsFunc(cs, func(c caseDef) bool { return c.name == lobby }) {
		cs = append(cs, caseDef{name: lobby, kind: "fanout", n: o.room, fastwsOnly: true})
	}
	cs = append(cs,
		caseDef{name: fmt.Sprintf("rooms/%d-of-%d", o.room, o.roomConns), kind: "rooms", n: o.roomConns, room: o.room, lobby: lobby},
		caseDef{name: fmt.Sprintf("rooms/%dx%d", o.busyRooms, o.roomSize), kind: "rooms", n: o.busyRooms * o.roomSize, room: o.roomSize})
	for _, p := range o.protos {
		for _, n := range o.idle {
			add("idle", p == "websocket", n)
		}
	}
	// The Application API, fastws alone; not for a daemon built with
	// -src, which may predate it.
	if o.src == "" && o.apiConns > 0 {
		cs = append(cs, caseDef{name: "api/send/" + strconv.Itoa(o.apiConns), kind: "api", n: o.apiConns})
	}
	return append(cs, o.clusterCases(cs)...)
}

// selectCases returns the cases of all that only matches (all of them if
// only is nil), in order, and with them the lobby fan-out each selected
// rooms case is compared with: if only leaves that out, it runs against
// fastws alone.
func selectCases(all []caseDef, only *regexp.Regexp) []caseDef {
	if only == nil {
		return all
	}
	need := map[string]bool{}
	for _, c := range all {
		if c.lobby != "" && only.MatchString(c.name) {
			need[c.lobby] = true
		}
	}
	var cs []caseDef
	for _, c := range all {
		switch {
		case only.MatchString(c.name):
		case need[c.name]:
			c.fastwsOnly = true
		default:
			continue
		}
		cs = append(cs, c)
	}
	return cs
}

// bench is one invocation.
type bench struct {
	opt     *options
	root    string
	bin     *binaries
	dialer  *dialer
	procs   *procs
	workers *workers
	start   time.Time
	stderr  io.Writer
	mu      sync.Mutex
	seq     int
}

func (b *bench) progressf(format string, a ...any) {
	b.mu.Lock()
	defer b.mu.Unlock()
	fmt.Fprintf(b.stderr, "[%6.1fs] %s\n", time.Since(b.start).Seconds(), fmt.Sprintf(format, a...))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 1 && args[0] == "-worker" {
		return workerMain()
	}
	opt, err := parseFlags(args, stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		fmt.Fprintf(stderr, "bench: %v\n", err)
		return exitUsage
	}
	if opt.from != "" {
		return redraw(opt, stdout, stderr)
	}
	var only *regexp.Regexp
	if opt.only != "" {
		if only, err = regexp.Compile(opt.only); err != nil {
			fmt.Fprintf(stderr, "bench: -only: %v\n", err)
			return exitUsage
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), opt.timeout)
	defer cancel()
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()

	root, err := moduleRoot()
	if err != nil {
		fmt.Fprintf(stderr, "bench: %v\n", err)
		return exitFailure
	}
	exe, err := os.Executable()
	if err != nil {
		fmt.Fprintf(stderr, "bench: %v\n", err)
		return exitFailure
	}
	b := &bench{opt: opt, root: root, dialer: newDialer(opt.srcAddrs), procs: &procs{}, start: time.Now(), stderr: stderr}
	b.workers = &workers{exe: exe, procs: b.procs}
	src := root
	if opt.src != "" {
		src = opt.src
	}
	m := machine(src) // the commit is the daemon's
	b.progressf("machine: %s", m)
	b.progressf("building the daemon and the baseline in %s", root)
	if opt.src != "" {
		b.progressf("the daemon comes from %s", src)
	}
	b.bin, err = build(ctx, src, root)
	if err != nil {
		fmt.Fprintf(stderr, "bench: %v\n", err)
		return exitFailure
	}
	defer os.RemoveAll(b.bin.dir)

	var runs []*Run
	warmUp := !opt.smoke
	for _, c := range selectCases(opt.cases(), only) {
		rounds := 1
		switch {
		case c.kind == "case1" || c.kind == "case2":
			rounds = opt.rounds
		case c.kind == "fanout" || strings.HasPrefix(c.name, "cluster/fanout/"):
			rounds = opt.fanoutRounds
		}
		// The invocation's first run finds a machine still settling from
		// the build: in four invocations the first server measured spent
		// 4 to 15% more CPU per round trip than in its later rounds,
		// whichever server went first. So the first case runs once
		// unrecorded (round 0) before its rounds. Rounds alternate which
		// server goes first, so that what one run leaves behind (sockets
		// in TIME_WAIT, say) does not always fall on the same one.
		first := 1
		if warmUp {
			first, warmUp = 0, false
		}
		for round := first; round <= rounds; round++ {
			kinds := serversOf(c, opt.servers)
			if round%2 == 0 {
				slices.Reverse(kinds)
			}
			for _, kind := range kinds {
				if ctx.Err() != nil {
					break
				}
				var what string
				switch {
				case round == 0:
					what = ", warm-up (not recorded)"
				case rounds > 1:
					what = fmt.Sprintf(", round %d of %d", round, rounds)
				}
				b.progressf("%s: %s%s", c.name, kind, what)
				r := b.runCase(ctx, c, kind)
				r.Round = round
				if round > 0 {
					runs = append(runs, r)
				}
			}
		}
	}
	tlsRuns := b.runTLSCases(ctx, only) // opt-in: see tls.go
	rep := newReport(m, opt, args, slices.Concat(runs, tlsRuns), time.Since(b.start))
	if ctx.Err() != nil {
		rep.Notes = append(rep.Notes, "the suite was cut short: "+context.Cause(ctx).Error())
	}
	if opt.smoke {
		rep.Notes = append([]string{"smoke mode: every case tiny, to check the tool works; the numbers and targets mean nothing"}, rep.Notes...)
	}
	rep.writeTable(stdout)
	if opt.out != "" {
		if err := rep.write(opt.out); err != nil {
			fmt.Fprintf(stderr, "bench: %v\n", err)
			return exitFailure
		}
		b.progressf("wrote bench.txt, bench.json, summary.md and fanout.svg in %s", opt.out)
	}
	failed := ctx.Err() != nil
	for _, r := range slices.Concat(runs, tlsRuns) {
		for _, f := range r.Failures {
			failed = true
			b.progressf("FAIL %s %s: %s", r.Case, r.Server, f)
		}
	}
	if failed {
		return exitFailure
	}
	b.progressf("done in %.0fs", time.Since(b.start).Seconds())
	return exitOK
}

// serversOf returns the servers case c runs against: not the naive
// baseline in cases 1 and 2, where it is the same line echo as the
// baseline; fastws alone in the rooms cases (the baselines have no
// rooms) and in a lobby fan-out run only as their comparison.
func serversOf(c caseDef, servers []string) []string {
	var ks []string
	for _, k := range servers {
		switch {
		case c.kind == "rooms" || c.kind == "api" || c.kind == "cluster" || c.fastwsOnly:
			if k != kindFastws {
				continue
			}
		case k == kindNaive && (c.kind == "case1" || c.kind == "case2"):
			continue
		}
		ks = append(ks, k)
	}
	return ks
}

// redraw renders a previous run's bench.json again, its rows rebuilt
// from its runs (a file older than the per-read baseline upgraded first).
func redraw(opt *options, stdout, stderr io.Writer) int {
	b, err := os.ReadFile(opt.from)
	if err == nil {
		var rep Report
		if err = json.Unmarshal(b, &rep); err == nil {
			rep.upgrade()
			rep.Rows = buildRows(rep.Runs, casesOf(rep.Runs), rep.Machine.CPUs)
			rep.writeTable(stdout)
			if opt.out != "" {
				err = rep.write(opt.out)
			}
		}
	}
	if err != nil {
		fmt.Fprintf(stderr, "bench: %v\n", err)
		return exitFailure
	}
	return exitOK
}

// runCase starts a fresh server of kind, runs c against it and stops it.
func (b *bench) runCase(ctx context.Context, c caseDef, kind string) *Run {
	if c.kind == "cluster" {
		return b.runCluster(ctx, c)
	}
	r := &Run{Case: c.name, Server: kind, Metrics: map[string]float64{}}
	b.seq++
	var s *server
	var err error
	if kind == kindFastws {
		s, err = startFastws(ctx, b.bin, b.seq, b.opt.loops, b.opt.sendBuf, b.opt.pprof, c.kind == "api")
	} else {
		mode := map[string]string{kindBaseline: "batch", kindNaive: "naive"}[kind]
		if c.kind == "case1" || c.kind == "case2" {
			mode = "echo"
		}
		s, err = startBaseline(ctx, b.bin, b.seq, b.opt.loops, kind, mode, c.ws, b.opt.baselineAccept)
	}
	if err != nil {
		r.failf("start: %v", err)
		return r
	}
	b.progressf("  %s: pid %d, %s", s.kind, s.pid(), s.target(c.ws).Addr)
	switch c.kind {
	case "case1":
		b.case1(ctx, s, r)
	case "case2":
		b.case2(ctx, s, c.ws, c.n, r)
	case "fanout":
		b.fanout(ctx, s, c.ws, c.n, r)
	case "rooms":
		b.rooms(ctx, s, c, r)
	case "idle":
		b.idle(ctx, s, c.ws, c.n, r)
	case "api":
		b.apiSend(ctx, s, c, r)
	}
	s.stop()
	if s.kind == kindFastws {
		if out := s.tail(); strings.Contains(out, "level=ERROR") || strings.Contains(out, "panic") {
			r.notef("daemon stderr: %s", lastLines(out, 5))
		}
	}
	return r
}

func lastLines(s string, n int) string {
	lines := strings.Split(s, "\n")
	return strings.Join(lines[max(0, len(lines)-n):], " | ")
}

// moduleRoot is the folder of the go.mod the go command uses here.
func moduleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", errors.New("not inside the fastws module; run from the repo: go run ./scripts/bench")
	}
	return filepath.Dir(mod), nil
}

// profile runs fn and, with -profile, records a perf CPU profile of the
// server meanwhile.
func (b *bench) profile(s *server, name string, fn func()) {
	if b.opt.profile == "" {
		fn()
		return
	}
	if err := os.MkdirAll(b.opt.profile, 0o755); err != nil {
		b.progressf("  profile: %v", err)
		fn()
		return
	}
	out := filepath.Join(b.opt.profile, strings.ReplaceAll(name, "/", "-")+"-"+s.kind+".perf.data")
	cmd := exec.Command("perf", "record", "-F", "999", "-g", "-p", strconv.Itoa(s.pid()), "-o", out)
	cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
	if err := cmd.Start(); err != nil {
		b.progressf("  profile: perf: %v", err)
		fn()
		return
	}
	time.Sleep(300 * time.Millisecond) // perf attaches
	fn()
	_ = cmd.Process.Signal(os.Interrupt)
	_ = cmd.Wait()
	b.progressf("  profile: %s (perf report -i %s --no-children)", out, out)
}
