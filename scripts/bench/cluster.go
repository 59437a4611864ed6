package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

// The cluster cases (README "Running a cluster"): fastws nodes joined by a
// nats-server, built from the module's own nats-server/v2 dependency.
//
//	cluster/fanout/2x500  one sender on node 1, 500 receivers on each of two
//	                      nodes; compared with fanout/telnet/1000 (one node,
//	                      1000 receivers) run in the same invocation
//
// The server CPU figures are node 1's alone (the sender's, which also
// delivers to its 500); the other node and nats-server are not counted.

// clusterCases returns the cluster cases, and the single-node case each is
// compared with when it is not among cs.
func (o *options) clusterCases(cs []caseDef) []caseDef {
	nodes, per := 2, 500
	if o.smoke {
		per = 25
	}
	single := "fanout/telnet/" + strconv.Itoa(nodes*per)
	var out []caseDef
	for _, c := range cs {
		if c.name == single {
			single = ""
		}
	}
	if single != "" {
		out = append(out, caseDef{name: single, kind: "fanout", n: nodes * per, fastwsOnly: true})
	}
	return append(out, caseDef{name: fmt.Sprintf("cluster/fanout/%dx%d", nodes, per), kind: "cluster", n: nodes * per, room: nodes, lobby: "fanout/telnet/" + strconv.Itoa(nodes*per)})
}

// runCluster runs a cluster case: nats-server, c.room fastws nodes, the
// receivers spread over them, the sender on node 1.
func (b *bench) runCluster(ctx context.Context, c caseDef) *Run {
	r := &Run{Case: c.name, Server: kindFastws, Metrics: map[string]float64{}}
	natsURL, stopNATS, err := b.startNATS(ctx)
	if err != nil {
		r.failf("nats-server: %v", err)
		return r
	}
	defer stopNATS()
	var nodes []*server
	defer func() {
		for _, s := range nodes {
			s.stop()
		}
	}()
	for i := range c.room {
		b.seq++
		s, err := startFastwsNode(ctx, b.bin, b.seq, b.opt.loops, b.opt.sendBuf, natsURL, "node-"+strconv.Itoa(i+1))
		if err != nil {
			r.failf("start node %d: %v", i+1, err)
			return r
		}
		nodes = append(nodes, s)
		b.progressf("  node-%d: pid %d, %s", i+1, s.pid(), s.telnet)
	}
	r.set("receivers", float64(c.n))
	r.set("nodes", float64(len(nodes)))
	p, err := b.newProbe(ctx, nodes[0].target(false))
	if err != nil {
		r.failf("sender: %v", err)
		return r
	}
	var gs groups
	for i, s := range nodes {
		spec := groupSpec{Target: s.target(false), N: c.n / len(nodes), SrcAddrs: b.opt.srcAddrs, SrcFirst: 1 + i, DialConc: b.opt.dialConc, BufSize: b.opt.bufSize}
		g, err := newGroups(ctx, b.workers, spec, b.opt.perProc)
		if err != nil {
			gs.close()
			p.close()
			r.failf("receivers on node %d: %v", i+1, err)
			return r
		}
		gs = append(gs, g...)
	}
	w := b.begin(nodes[0])
	err = gs.connect(ctx)
	if err == nil {
		// Markers go out until every receiver, on every node, has read one.
		err = b.mark(ctx, []*probe{p}, gs, c.n, 1, b.opt.setupTimeout, "")
	}
	b.end(nodes[0], &w)
	r.set("setup_s", w.Wall.Seconds())
	if err != nil {
		b.teardown(nodes[0], []*probe{p}, gs)
		r.failf("set-up: %v", err)
		return r
	}
	b.progressf("  %d receivers on %d nodes ready after %.1fs", c.n, len(nodes), w.Wall.Seconds())
	b.measure(ctx, nodes[0], gs, traffic{senders: []*probe{p}, rooms: [][]string{{""}}, per: c.n, receivers: c.n}, 2, r)
	return r
}

// startNATS builds nats-server once into the bench's folder and runs it
// with JetStream on a free port; stop ends it.
func (b *bench) startNATS(ctx context.Context) (url string, stop func(), err error) {
	bin := filepath.Join(b.bin.dir, "nats-server")
	if _, err := os.Stat(bin); err != nil {
		cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "github.com/nats-io/nats-server/v2")
		cmd.Dir = b.root
		if out, err := cmd.CombinedOutput(); err != nil {
			return "", nil, fmt.Errorf("go build nats-server: %w\n%s", err, out)
		}
	}
	port, err := freePort()
	if err != nil {
		return "", nil, err
	}
	store := filepath.Join(b.bin.dir, "nats-"+strconv.Itoa(port))
	cmd := exec.Command(bin, "-a", "127.0.0.1", "-p", strconv.Itoa(port), "-js", "-sd", store)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return "", nil, err
	}
	stop = func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
	}
	url = "nats://127.0.0.1:" + strconv.Itoa(port)
	if !waitFor(ctx, 15*time.Second, func() bool {
		c, err := b.dialer.dial(ctx, "127.0.0.1:"+strconv.Itoa(port), 0)
		if err == nil {
			c.Close()
		}
		return err == nil
	}) {
		stop()
		return "", nil, fmt.Errorf("nats-server on %s not up within 15s", url)
	}
	return url, stop, nil
}

// startFastwsNode is startFastws with a [cluster] section.
func startFastwsNode(ctx context.Context, bin *binaries, seq, loops int, sendBuf, natsURL, name string) (*server, error) {
	var ports [3]int
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
	text += "\n[cluster]\nnats = " + natsURL + "\nname = " + name + "\n"
	if err := os.WriteFile(cfg, []byte(text), 0o600); err != nil {
		return nil, err
	}
	s := &server{
		kind: kindFastws, metrics: metrics, config: cfg, fastws: bin.fastws,
		telnet: "127.0.0.1:" + strconv.Itoa(ports[1]), ws: "127.0.0.1:" + strconv.Itoa(ports[2]),
		log: filepath.Join(dir, "stderr.log"),
	}
	return s, s.start(ctx, "Press Ctrl-C to stop.", bin.fastws, "-c", cfg, "start")
}
