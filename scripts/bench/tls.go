package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fastws/fastws/server/tlstest"
)

// The TLS cases compare a telnet instance with TLS against a plain one,
// in the same run, each against a fresh daemon, in every run (not with
// -src, whose daemon may predate TLS). Their clients are goroutines of
// this process (TLS in workers would need the worker protocol taught
// TLS), so client CPU shares the machine with the daemon: server CPU per
// operation is the figure to compare, rates are what the machine gave
// both.
//
//	tls/idle/N       RSS per idle connection, plain and TLS
//	tls/fanout/N     deliveries/s and server CPU per delivery to N receivers
//	tls/handshake    connections (TCP + TLS handshake + welcome) per second
var tlsCaseNames = []string{"tls/idle/10000", "tls/fanout/1000", "tls/handshake"}

const tlsConfigText = `; written by scripts/bench (TLS cases)
[fastws]
runDir = %s
logFile = fastws.log
metricsListen =
messagesPerSecond = 0
bytesPerSecond = 0
maxConnectionsPerIP = 0
maxConnections = 0
idleTimeout = 0
announceLimit = 1

[instance.plain]
instanceName = bench-plain
protocol = telnet
host = 127.0.0.1
port = %d
childProcessCount = %d

[instance.tls]
instanceName = bench-tls
protocol = telnet
host = 127.0.0.1
port = %d
childProcessCount = %d
tlsCert = cert.pem
tlsKey = key.pem
`

// startFastwsTLS runs the daemon with a plain and a TLS telnet instance,
// and returns it with the TLS instance's address (the plain one is its
// telnet address).
func startFastwsTLS(ctx context.Context, bin *binaries, seq, loops int) (*server, string, error) {
	var ports [2]int
	for i := range ports {
		p, err := freePort()
		if err != nil {
			return nil, "", err
		}
		ports[i] = p
	}
	dir := filepath.Join(bin.dir, "fastws-tls-"+strconv.Itoa(seq))
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, "", err
	}
	if err := writeBenchCert(dir); err != nil {
		return nil, "", err
	}
	cfg := filepath.Join(dir, "config.ini")
	text := fmt.Sprintf(tlsConfigText, filepath.Join(dir, "run"), ports[0], loops, ports[1], loops)
	if err := os.WriteFile(cfg, []byte(text), 0o600); err != nil {
		return nil, "", err
	}
	s := &server{kind: kindFastws, config: cfg, fastws: bin.fastws,
		telnet: "127.0.0.1:" + strconv.Itoa(ports[0]), log: filepath.Join(dir, "stderr.log")}
	return s, "127.0.0.1:" + strconv.Itoa(ports[1]), s.start(ctx, "Press Ctrl-C to stop.", bin.fastws, "-c", cfg, "start")
}

// writeBenchCert writes a self-signed ECDSA P-256 certificate, what a
// modern site serves, to dir/cert.pem and dir/key.pem.
func writeBenchCert(dir string) error {
	var selfSigned *tlstest.CA
	der, key, err := selfSigned.Issue(tlstest.Leaf{Serial: 1, DNSNames: []string{"localhost"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour)})
	if err != nil {
		return err
	}
	keyPEM, err := tlstest.PEMKey(key)
	if err != nil {
		return err
	}
	return errors.Join(
		os.WriteFile(filepath.Join(dir, "cert.pem"), tlstest.PEMCert(der), 0o600),
		os.WriteFile(filepath.Join(dir, "key.pem"), keyPEM, 0o600))
}

// tlsClient is one connection of a TLS case.
type tlsClient struct {
	c net.Conn
	r *bufio.Reader
}

// benchClientTLS skips verification: the bench measures the server, and
// its certificate is its own throwaway one.
var benchClientTLS = &tls.Config{InsecureSkipVerify: true, ClientSessionCache: nil}

// dialChat connects to addr, over TLS if secure, and reads the welcome.
func dialChat(ctx context.Context, addr string, secure bool, bufSize int) (*tlsClient, error) {
	d := net.Dialer{Timeout: 10 * time.Second}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	if secure {
		tc := tls.Client(c, benchClientTLS)
		if err := tc.HandshakeContext(ctx); err != nil {
			c.Close()
			return nil, err
		}
		c = tc
	}
	cl := &tlsClient{c: c, r: bufio.NewReaderSize(c, bufSize)}
	line, err := cl.r.ReadString('\n')
	if err != nil || !strings.Contains(line, "Welcome") {
		c.Close()
		return nil, fmt.Errorf("welcome: %q, %v", line, err)
	}
	_ = c.SetDeadline(time.Time{})
	return cl, nil
}

// dialMany opens n connections, conc at a time.
func dialMany(ctx context.Context, addr string, secure bool, n, conc, bufSize int) ([]*tlsClient, error) {
	out := make([]*tlsClient, n)
	var fails failures
	sem := make(chan struct{}, conc)
	var wg sync.WaitGroup
	for i := range out {
		if ctx.Err() != nil || fails.n.Load() > 0 {
			break
		}
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			cl, err := dialChat(ctx, addr, secure, bufSize)
			if err != nil {
				fails.add(err)
				return
			}
			out[i] = cl
		})
	}
	wg.Wait()
	if fails.n.Load() > 0 {
		closeAll(out)
		return nil, fmt.Errorf("%d connections failed, last: %v", fails.n.Load(), fails.last)
	}
	return out, ctx.Err()
}

func closeAll(cls []*tlsClient) {
	for _, cl := range cls {
		if cl != nil {
			cl.c.Close()
		}
	}
}

// runTLSCases runs the TLS cases only matches, plain then TLS for each,
// and returns their runs.
func (b *bench) runTLSCases(ctx context.Context, only *regexp.Regexp) []*Run {
	var runs []*Run
	for _, name := range tlsCaseNames {
		if only != nil && !only.MatchString(name) || b.opt.src != "" {
			continue // a daemon built with -src may predate TLS
		}
		var pair [2]*Run
		for k, secure := range []bool{false, true} {
			if ctx.Err() != nil {
				return runs
			}
			kind := map[bool]string{false: "fastws-plain", true: "fastws-tls"}[secure]
			b.progressf("%s: %s", name, kind)
			r := &Run{Case: name, Server: kind, Round: 1, Metrics: map[string]float64{}}
			b.seq++
			s, tlsAddr, err := startFastwsTLS(ctx, b.bin, b.seq, b.opt.loops)
			if err != nil {
				r.failf("start: %v", err)
				runs = append(runs, r)
				continue
			}
			addr := s.telnet
			if secure {
				addr = tlsAddr
			}
			n, _ := strconv.Atoi(name[strings.LastIndexByte(name, '/')+1:])
			switch {
			case strings.HasPrefix(name, "tls/idle/"):
				b.tlsIdle(ctx, s, addr, secure, b.scaled(n), r)
			case strings.HasPrefix(name, "tls/fanout/"):
				b.tlsFanout(ctx, s, addr, secure, b.scaled(n), r)
			default:
				b.tlsHandshakes(ctx, s, addr, secure, r)
			}
			s.stop()
			if out := s.tail(); strings.Contains(out, "level=ERROR") || strings.Contains(out, "panic") {
				r.notef("daemon stderr: %s", lastLines(out, 5))
			}
			pair[k] = r
			runs = append(runs, r)
		}
		b.tlsCompare(name, pair)
	}
	return runs
}

// scaled is n, or a tenth of it (at least 10) in smoke mode.
func (b *bench) scaled(n int) int {
	if b.opt.smoke {
		return max(n/100, 10)
	}
	return n
}

// tlsCompare prints TLS against plain for one case.
func (b *bench) tlsCompare(name string, pair [2]*Run) {
	if pair[0] == nil || pair[1] == nil {
		return
	}
	p, t := pair[0].Metrics, pair[1].Metrics
	switch {
	case strings.HasPrefix(name, "tls/idle/"):
		b.progressf("  %s: plain %.2f KiB/conn, TLS %.2f KiB/conn (TLS adds %.2f KiB)", name,
			p["rss_kib_per_conn"], t["rss_kib_per_conn"], t["rss_kib_per_conn"]-p["rss_kib_per_conn"])
	case strings.HasPrefix(name, "tls/fanout/"):
		b.progressf("  %s: plain %.0f deliveries/s, %.3f µs server CPU each; TLS %.0f/s (%.2fx), %.3f µs (%.2fx)", name,
			p["deliveries_per_s"], p["server_us_per_delivery"], t["deliveries_per_s"], t["deliveries_per_s"]/p["deliveries_per_s"],
			t["server_us_per_delivery"], t["server_us_per_delivery"]/p["server_us_per_delivery"])
	default:
		b.progressf("  %s: plain %.0f connections/s, %.1f µs server CPU each; TLS %.0f/s, %.1f µs", name,
			p["conns_per_s"], p["server_us_per_conn"], t["conns_per_s"], t["server_us_per_conn"])
	}
}

// tlsIdle measures the daemon's RSS per idle connection.
func (b *bench) tlsIdle(ctx context.Context, s *server, addr string, secure bool, n int, r *Run) {
	time.Sleep(b.opt.settle)
	rss0, err := procRSS(s.pid())
	if err != nil {
		r.failf("rss: %v", err)
		return
	}
	t0 := time.Now()
	cls, err := dialMany(ctx, addr, secure, n, 64, 256)
	if err != nil {
		r.failf("connect: %v", err)
		return
	}
	defer closeAll(cls)
	took := time.Since(t0)
	time.Sleep(b.opt.settle)
	rss1, err := procRSS(s.pid())
	if err != nil {
		r.failf("rss: %v", err)
		return
	}
	r.set("connections", float64(n))
	r.set("connect_s", took.Seconds())
	r.set("rss_before_mib", float64(rss0)/(1<<20))
	r.set("rss_after_mib", float64(rss1)/(1<<20))
	r.set("rss_kib_per_conn", float64(rss1-rss0)/1024/float64(n))
	b.progressf("  %d idle connections, RSS %.1f -> %.1f MiB, %.2f KiB/connection", n,
		r.Metrics["rss_before_mib"], r.Metrics["rss_after_mib"], r.Metrics["rss_kib_per_conn"])
}

// tlsFanout has one sender broadcast lines to n receivers, at most
// window lines ahead of the slowest, and measures deliveries.
func (b *bench) tlsFanout(ctx context.Context, s *server, addr string, secure bool, n int, r *Run) {
	const ahead = 20 // lines the sender may be ahead of the slowest receiver
	msgs := 2000
	if b.opt.smoke {
		msgs = 20
	}
	cls, err := dialMany(ctx, addr, secure, n, 32, 64<<10)
	if err != nil {
		r.failf("connect: %v", err)
		return
	}
	defer closeAll(cls)
	sender, err := dialChat(ctx, addr, secure, 64<<10)
	if err != nil {
		r.failf("sender: %v", err)
		return
	}
	defer sender.c.Close()
	go func() { _, _ = sender.r.WriteTo(discard{}) }() // its own echoes
	counts := make([]atomic.Int64, n)
	var fails failures
	var wg sync.WaitGroup
	for i, cl := range cls {
		wg.Go(func() {
			for counts[i].Load() < int64(msgs) {
				_ = cl.c.SetReadDeadline(time.Now().Add(30 * time.Second))
				line, err := cl.r.ReadSlice('\n')
				if err != nil {
					fails.add(err)
					return
				}
				if strings.Contains(string(line), ": fan ") {
					counts[i].Add(1)
				}
			}
		})
	}
	slowest := func() int64 {
		m := int64(msgs)
		for i := range counts {
			m = min(m, counts[i].Load())
		}
		return m
	}
	w := b.begin(s)
	line := []byte("fan " + strings.Repeat("x", 60) + "\n")
	for k := 0; k < msgs && fails.n.Load() == 0 && ctx.Err() == nil; k++ {
		for int64(k)-slowest() >= ahead && fails.n.Load() == 0 && ctx.Err() == nil {
			time.Sleep(200 * time.Microsecond)
		}
		if _, err := sender.c.Write(line); err != nil {
			fails.add(err)
			break
		}
	}
	wg.Wait()
	b.end(s, &w)
	var got int64
	for i := range counts {
		got += counts[i].Load()
	}
	if e := fails.n.Load(); e > 0 {
		r.failf("%d receivers failed, last: %v", e, fails.last)
	}
	r.set("receivers", float64(n))
	r.set("deliveries", float64(got))
	r.set("deliveries_per_s", float64(got)/w.Wall.Seconds())
	r.set("server_us_per_delivery", float64(w.Srv.Nanoseconds())/1e3/float64(max(got, 1)))
	r.set("server_cpus", w.Srv.Seconds()/w.Wall.Seconds())
	r.set("tool_cpus", w.Own.Seconds()/w.Wall.Seconds())
	r.other("", w)
	b.progressf("  %d receivers: %.0f deliveries/s, server %.3f µs CPU/delivery (%.2f CPUs), this tool %.2f CPUs", n,
		r.Metrics["deliveries_per_s"], r.Metrics["server_us_per_delivery"], r.Metrics["server_cpus"], r.Metrics["tool_cpus"])
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

// tlsHandshakes has 4 clients connect, read the welcome and close, over
// and over, for case1Dur.
func (b *bench) tlsHandshakes(ctx context.Context, s *server, addr string, secure bool, r *Run) {
	const workers = 4
	deadline := time.Now().Add(b.opt.case1Dur)
	var conns atomic.Int64
	var fails failures
	w := b.begin(s)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for time.Now().Before(deadline) && ctx.Err() == nil && fails.n.Load() < 10 {
				cl, err := dialChat(ctx, addr, secure, 4096)
				if err != nil {
					fails.add(err)
					continue
				}
				cl.c.Close()
				conns.Add(1)
			}
		})
	}
	wg.Wait()
	b.end(s, &w)
	if e := fails.n.Load(); e > 0 {
		r.failf("%d connections failed, last: %v", e, fails.last)
	}
	n := conns.Load()
	r.set("connections", float64(n))
	r.set("conns_per_s", float64(n)/w.Wall.Seconds())
	r.set("server_us_per_conn", perOp(w.Srv, n))
	r.set("tool_us_per_conn", perOp(w.Own, n))
	r.other("", w)
	b.progressf("  %.0f connections/s, server %.1f µs CPU each, this tool %.1f µs", r.Metrics["conns_per_s"], r.Metrics["server_us_per_conn"], r.Metrics["tool_us_per_conn"])
}
