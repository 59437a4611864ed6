package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// The cluster cases (README "Running a cluster"): fastws nodes joined by a
// nats-server, built from the module's own nats-server/v2 dependency.
//
//	cluster/fanout/2x500  one sender on node 1, 500 receivers on each of two
//	                      nodes; compared with fanout/telnet/1000 (one node,
//	                      1000 receivers) run in the same invocation
//	cluster/idle/5x19000  five nodes holding 19,000 idle connections each;
//	                      status on each, the cluster's member total as
//	                      node 1 sees it, RSS per connection over all nodes
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
	idleNodes, idlePer := 5, max(o.clusterIdle, 1)
	out = append(out, caseDef{name: fmt.Sprintf("cluster/idle/%dx%d", idleNodes, idlePer), kind: "cluster", n: idleNodes * idlePer, room: idleNodes})
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
	if strings.Contains(c.name, "/idle/") {
		b.clusterIdle(ctx, nodes, c, r)
		return r
	}
	r.set("receivers", float64(c.n))
	r.set("nodes", float64(len(nodes)))
	p, err := b.newProbe(ctx, nodes[0].target(false))
	if err != nil {
		r.failf("sender: %v", err)
		return r
	}
	gs, err := b.clusterGroups(ctx, nodes, c.n)
	if err != nil {
		p.close()
		r.failf("receivers: %v", err)
		return r
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
	return startFastwsWith(ctx, bin, seq, loops, sendBuf, "", false, "\n[cluster]\nnats = "+natsURL+"\nname = "+name+"\n")
}

// clusterIdle connects c.n/len(nodes) idle connections to each node, waits
// until node 1 counts them all, and measures each node's RSS, its status
// and the member total.
func (b *bench) clusterIdle(ctx context.Context, nodes []*server, c caseDef, r *Run) {
	r.set("connections", float64(c.n))
	r.set("nodes", float64(len(nodes)))
	time.Sleep(b.opt.settle)
	rss0 := make([]int64, len(nodes))
	for i, s := range nodes {
		rss, err := procRSS(s.pid())
		if err != nil {
			r.failf("rss: %v", err)
			return
		}
		rss0[i] = rss
	}
	var gs groups
	defer func() {
		gs.quiet()
		for _, s := range nodes {
			s.stop()
		}
		gs.close()
	}()
	gs, err := b.clusterGroups(ctx, nodes, c.n)
	if err != nil {
		r.failf("connections: %v", err)
		return
	}
	start := time.Now()
	if err := gs.connect(ctx); err != nil {
		r.failf("connect: %v", err)
		return
	}
	if pr := gs.progress(); pr.Connected < int64(c.n) {
		r.failf("%d of %d connected; last error: %s", pr.Connected, c.n, pr.LastError)
		return
	}
	r.set("connect_s", time.Since(start).Seconds())
	// The directories converge: node 1 counts every node's members.
	total := -1
	converged := waitFor(ctx, b.opt.setupTimeout, func() bool {
		total, _ = clusterTotal(ctx, nodes[0])
		return total == c.n
	})
	r.set("online_total", float64(total))
	r.set("converge_s", time.Since(start).Seconds())
	if !converged {
		r.failf("node 1 counts %d members across the cluster, want %d", total, c.n)
	}
	time.Sleep(b.opt.settle)
	var grown int64
	var slowest time.Duration
	for i, s := range nodes {
		rss, err := procRSS(s.pid())
		if err != nil {
			r.failf("rss: %v", err)
			return
		}
		grown += rss - rss0[i]
		st, took, err := s.status(ctx)
		if err != nil {
			r.failf("node %d status: %v", i+1, err)
			continue
		}
		slowest = max(slowest, took)
		if st.Daemon.Members != c.n/len(nodes) {
			r.failf("node %d: status counts %d members, want %d", i+1, st.Daemon.Members, c.n/len(nodes))
		}
	}
	r.set("status_ms", ms(slowest))
	r.set("rss_kib_per_conn", float64(grown)/1024/float64(c.n))
	if pr := gs.progress(); pr.Errors > 0 {
		r.failf("%d connection errors, last: %s", pr.Errors, pr.LastError)
	}
	b.progressf("  %d idle connections on %d nodes; node 1 counts %d; %.2f KiB/connection; slowest status %.0f ms",
		c.n, len(nodes), total, r.Metrics["rss_kib_per_conn"], ms(slowest))
}

// clusterTotal returns the members of every node as s's status shows them.
func clusterTotal(ctx context.Context, s *server) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, s.fastws, "-c", s.config, "status", "--json").Output()
	if err != nil {
		return 0, err
	}
	var st struct {
		Cluster struct {
			Nodes []struct {
				Members int `json:"members"`
			} `json:"nodes"`
		} `json:"cluster"`
	}
	if err := json.Unmarshal(out, &st); err != nil {
		return 0, err
	}
	n := 0
	for _, node := range st.Cluster.Nodes {
		n += node.Members
	}
	return n, nil
}

// clusterGroups spreads n connections evenly over nodes: in this process
// if n fits in one (-per-proc), else in worker processes of at most
// perProc each, whatever the node, so that no process runs out of files.
func (b *bench) clusterGroups(ctx context.Context, nodes []*server, n int) (groups, error) {
	var gs groups
	for i, s := range nodes {
		spec := groupSpec{Target: s.target(false), N: n / len(nodes), SrcAddrs: b.opt.srcAddrs, SrcFirst: 1 + i*(n/len(nodes)), DialConc: b.opt.dialConc, BufSize: b.opt.bufSize}
		if n <= b.opt.perProc {
			gs = append(gs, newLocalGroup(spec))
			continue
		}
		for _, sp := range splitGroups(spec, b.opt.perProc) {
			g, err := b.workers.start(ctx, sp)
			if err != nil {
				gs.close()
				return nil, fmt.Errorf("node %d: %w", i+1, err)
			}
			gs = append(gs, g)
		}
	}
	return gs, nil
}
