package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// natsBinary returns the nats-server binary that scripts/test.sh builds
// (FASTWS_NATS_SERVER), or skips the test.
func natsBinary(t *testing.T) string {
	t.Helper()
	bin := os.Getenv("FASTWS_NATS_SERVER")
	if bin == "" {
		t.Skip("FASTWS_NATS_SERVER is not set (scripts/test.sh builds nats-server and sets it)")
	}
	return bin
}

// natsProc is a nats-server process.
type natsProc struct {
	cmd        *exec.Cmd
	url        string
	monitor    int
	killedOnce bool
}

// startNATSProc runs nats-server with JetStream; args add cluster flags.
func startNATSProc(t *testing.T, bin string, args ...string) *natsProc {
	t.Helper()
	port, mon := freePort(t), freePort(t)
	all := append([]string{"-a", "127.0.0.1", "-p", strconv.Itoa(port), "-m", strconv.Itoa(mon), "-js", "-sd", t.TempDir()}, args...)
	cmd := exec.Command(bin, all...)
	log, err := os.Create(filepath.Join(t.TempDir(), "nats.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &natsProc{cmd: cmd, url: fmt.Sprintf("nats://127.0.0.1:%d", port), monitor: mon}
	t.Cleanup(p.kill)
	return p
}

func (p *natsProc) kill() {
	if !p.killedOnce {
		p.killedOnce = true
		_ = p.cmd.Process.Kill()
		_ = p.cmd.Wait()
	}
}

// waitHealthy polls the server's /healthz (JetStream included) until 200.
func (p *natsProc) waitHealthy(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/healthz", p.monitor))
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("nats-server %s not healthy within 30s", p.url)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// startNodes starts n fastws daemons (start -d, the built binary) on nats
// and returns their configs and telnet ports.
func startNodes(t *testing.T, nats string, n int, extra string) (cfgs []string, ports []int, pids []int) {
	t.Helper()
	for i := range n {
		port := freePort(t)
		cfg := writeConfig(t, fmt.Sprintf("\n[cluster]\nnats = %s\nname = node-%d\n%s", nats, i+1, extra), port)
		pids = append(pids, startDaemon(t, cfg))
		cfgs, ports = append(cfgs, cfg), append(ports, port)
	}
	return cfgs, ports, pids
}

// waitNodes waits until status --json of cfg lists want nodes.
func waitNodes(t *testing.T, cfg string, want int) {
	t.Helper()
	waitCluster(t, cfg, fmt.Sprintf("%d nodes", want), func(nodes []any) bool { return len(nodes) == want })
}

// waitCluster polls status --json of cfg until ok holds for its cluster's
// nodes, and fails the test, saying it wanted what, at testTimeout.
func waitCluster(t *testing.T, cfg, what string, ok func(nodes []any) bool) {
	t.Helper()
	deadline := time.Now().Add(testTimeout)
	for {
		c, _ := statusJSON(t, cfg)["cluster"].(map[string]any)
		nodes, _ := c["nodes"].([]any)
		if ok(nodes) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: status shows cluster %v, want %s", cfg, c, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestClusterThreeDaemons runs three daemons on one nats-server: lines,
// rooms and $uid: cross them; kill -9 of one makes its member leave on the
// others within 3 heartbeats; a stop, at once.
func TestClusterThreeDaemons(t *testing.T) {
	t.Parallel()
	ns := startNATSProc(t, natsBinary(t))
	ns.waitHealthy(t)
	cfgs, ports, pids := startNodes(t, ns.url, 3, "")
	for _, cfg := range cfgs {
		waitNodes(t, cfg, 3)
	}
	var cs []*chatClient
	for _, p := range ports {
		cs = append(cs, connect(t, p))
	}
	for _, cfg := range cfgs {
		waitMembers(t, cfg, 3)
	}
	cs[0].say("hello from node 1")
	cs[1].waitFor("uid " + cs[0].uid + ": hello from node 1")
	cs[2].waitFor("uid " + cs[0].uid + ": hello from node 1")
	cs[2].say("$" + cs[0].uid + ":psst")
	cs[0].waitFor("uid " + cs[2].uid + " (private): psst")

	start := time.Now()
	if err := syscall.Kill(pids[2], syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cs[0].waitFor("* uid " + cs[2].uid + " left")
	cs[1].waitFor("* uid " + cs[2].uid + " left")
	if took := time.Since(start); took > 4500*time.Millisecond {
		t.Errorf("kill -9: members left after %s, want within 3 heartbeats (3 s, plus a margin)", took)
	}
	start = time.Now()
	stop := exec.Command(binary, "-c", cfgs[1], "stop")
	if err := stop.Start(); err != nil {
		t.Fatal(err)
	}
	cs[1].waitEOF() // its client closes when told the server is shutting down, as a real one does
	cs[0].waitFor("* uid " + cs[1].uid + " left")
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("stop: members left after %s, want at once", took)
	}
	if err := stop.Wait(); err != nil {
		t.Errorf("stop: %v", err)
	}
	waitNodes(t, cfgs[0], 1)
}

// waitMembers waits until every node's view in status adds up to want.
func waitMembers(t *testing.T, cfg string, want int) {
	t.Helper()
	waitCluster(t, cfg, fmt.Sprintf("%d members in all", want), func(nodes []any) bool {
		sum := 0
		for _, n := range nodes {
			m, _ := n.(map[string]any)
			f, _ := m["members"].(float64)
			sum += int(f)
		}
		return sum == want
	})
}

// TestClusterNATSServerKilled runs three nats-servers as a NATS cluster
// (routes, JetStream replicated) and two daemons listing all three; one
// NATS server is killed, and the clients go on chatting after at most the
// NATS client's reconnect.
func TestClusterNATSServerKilled(t *testing.T) {
	t.Parallel()
	bin := natsBinary(t)
	routes := []int{freePort(t), freePort(t), freePort(t)}
	var routeURLs []string
	for _, r := range routes {
		routeURLs = append(routeURLs, fmt.Sprintf("nats://127.0.0.1:%d", r))
	}
	var servers []*natsProc
	for i, r := range routes {
		servers = append(servers, startNATSProc(t, bin, "--server_name", fmt.Sprintf("s%d", i+1), "--cluster_name", "fastws-test",
			"--cluster", fmt.Sprintf("nats://127.0.0.1:%d", r), "--routes", strings.Join(routeURLs, ",")))
	}
	var urls []string
	for _, s := range servers {
		s.waitHealthy(t)
		urls = append(urls, s.url)
	}
	waitJetStream(t, urls)
	// A NATS cluster that loses a server elects new leaders for the
	// key-value bucket, which can take longer than the default 2s: a nick
	// claim meanwhile waits up to timeout, then is checked locally only.
	cfgs, ports, _ := startNodes(t, strings.Join(urls, ","), 2, "timeout = 10s\n")
	for _, cfg := range cfgs {
		waitNodes(t, cfg, 2)
	}
	a, b := connect(t, ports[0]), connect(t, ports[1])
	waitMembers(t, cfgs[0], 2)
	waitMembers(t, cfgs[1], 2)
	a.say("before")
	b.waitFor("uid " + a.uid + ": before")

	// Kill the server node 1 is connected to.
	st, _ := statusJSON(t, cfgs[0])["cluster"].(map[string]any)
	var victim *natsProc
	for _, s := range servers {
		if st["nats"] == s.url {
			victim = s
		}
	}
	if victim == nil {
		t.Fatalf("node 1 is connected to %v, none of %v", st["nats"], urls)
	}
	killed := time.Now()
	victim.kill()
	// Lines until one crosses: the NATS client reconnects to another
	// server within its reconnect wait.
	for i := 0; ; i++ {
		line := "after " + strconv.Itoa(i)
		a.say(line)
		_ = b.conn.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
		got := false
		for {
			s, err := b.r.ReadString('\n')
			if err != nil {
				break
			}
			if strings.TrimRight(s, "\r\n") == "uid "+a.uid+": "+line {
				got = true
				break
			}
		}
		if got {
			break
		}
		b.r.Reset(b.conn) // a timed-out read may have left part of a line: resynchronise on the next
		if time.Since(killed) > 10*time.Second {
			t.Fatalf("no line crossed within 10 s of killing a NATS server")
		}
	}
	t.Logf("lines crossed again %s after a NATS server was killed", time.Since(killed).Round(time.Millisecond))
	// And chat goes on as before: every line crosses.
	for i := range 20 {
		a.say("steady " + strconv.Itoa(i))
	}
	for i := range 20 {
		b.waitFor("uid " + a.uid + ": steady " + strconv.Itoa(i))
	}
	// The nick registry (JetStream, replicated) still answers.
	a.say("/nick alice")
	a.waitFor("* uid " + a.uid + " is now alice")
	b.say("/nick alice")
	b.waitFor("! nick alice is taken")
}

// waitJetStream waits until a NATS cluster just started has elected its
// JetStream leaders, by creating the daemons' key-value bucket (three
// copies) itself: on two busy cores the election can outlast a daemon's
// start timeout, and a daemon that cannot open the bucket refuses to
// start, as it should.
func waitJetStream(t *testing.T, urls []string) {
	t.Helper()
	nc, err := nats.Connect(strings.Join(urls, ","))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for {
		try, stop := context.WithTimeout(ctx, 5*time.Second)
		_, err := js.CreateOrUpdateKeyValue(try, jetstream.KeyValueConfig{Bucket: "fastws_cluster", History: 1, Replicas: 3})
		stop()
		if err == nil {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("JetStream of the NATS cluster not ready within a minute: %v", err)
		case <-time.After(100 * time.Millisecond): // poll interval
		}
	}
}
