package daemon

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"github.com/fastws/fastws/chat"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fastws/fastws/server"
	"github.com/fastws/fastws/server/config"
	"github.com/fastws/fastws/status"
	"github.com/prometheus/client_golang/prometheus"
)

// meteredClient is a raw telnet chat client that counts what it sends and
// receives, so that the test knows what the daemon's counters must say.
type meteredClient struct {
	t    *testing.T
	inst string // instanceName of the instance it connected to
	conn net.Conn
	r    *bufio.Reader
	uid  string

	linesIn, bytesIn   uint64 // lines and bytes received
	broadcastsIn       uint64 // of which room-wide chat messages ("uid 7: text")
	linesOut, bytesOut uint64 // lines sent that the daemon handles, and their bytes
}

var broadcastLine = regexp.MustCompile(`^uid \d+: `)

func connectMetered(t *testing.T, inst string, port int) *meteredClient {
	t.Helper()
	conn, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(port), testTimeout)
	if err != nil {
		t.Fatalf("dial port %d: %v", port, err)
	}
	t.Cleanup(func() { conn.Close() })
	c := &meteredClient{t: t, inst: inst, conn: conn, r: bufio.NewReader(conn)}
	l, _ := c.line()
	m := welcome.FindStringSubmatch(l)
	if m == nil {
		t.Fatalf("port %d: got %q, want the welcome", port, l)
	}
	c.uid = m[1]
	return c
}

// line reads one line and counts it; at EOF it returns "", false.
func (c *meteredClient) line() (string, bool) {
	c.t.Helper()
	_ = c.conn.SetReadDeadline(time.Now().Add(testTimeout))
	s, err := c.r.ReadString('\n')
	c.bytesIn += uint64(len(s))
	if err == io.EOF && s == "" {
		return "", false
	}
	if err != nil {
		c.t.Fatalf("uid %s: read: %v (got %q)", c.uid, err, s)
	}
	c.linesIn++
	l := strings.TrimRight(ungreet(s), "\r\n")
	if broadcastLine.MatchString(l) {
		c.broadcastsIn++
	}
	return l, true
}

// waitFor reads lines until want.
func (c *meteredClient) waitFor(want string) {
	c.t.Helper()
	for {
		l, ok := c.line()
		if !ok {
			c.t.Fatalf("uid %s: connection closed before %q", c.uid, want)
		}
		if l == want {
			return
		}
	}
}

// waitEOF reads lines until the daemon closes the connection and returns
// them.
func (c *meteredClient) waitEOF() []string {
	c.t.Helper()
	var got []string
	for {
		l, ok := c.line()
		if !ok {
			c.conn.Close() // as a real client does: the daemon, lingering for it, is done at once
			return got
		}
		got = append(got, l)
	}
}

// say sends a line the daemon handles.
func (c *meteredClient) say(s string) {
	c.t.Helper()
	c.send(s)
	c.linesOut++
	c.bytesOut += uint64(len(s) + 1)
}

// send writes a line the daemon does not count (a protocol error).
func (c *meteredClient) send(s string) {
	c.t.Helper()
	if _, err := c.conn.Write([]byte(s + "\n")); err != nil {
		c.t.Fatalf("uid %s: write: %v", c.uid, err)
	}
}

// scrape fetches url and returns the body; it fails unless the status is 200.
func scrape(t *testing.T, url string) string {
	t.Helper()
	c := http.Client{Timeout: testTimeout}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: got %s, want 200\n%s", url, resp.Status, b)
	}
	return string(b)
}

// samples returns the samples of a text-format scrape by series, as
// `name{label="value",...}` exactly as exposed.
func samples(t *testing.T, scrape string) map[string]float64 {
	t.Helper()
	out := map[string]float64{}
	for line := range strings.Lines(scrape) {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if i < 0 || err != nil {
			t.Fatalf("scrape: bad sample line %q", line)
		}
		out[line[:i]] = v
	}
	return out
}

// TestMetricsAfterChatSession runs a scripted chat session on two telnet
// instances of the real daemon and checks that /metrics says exactly what
// the clients sent and received, that promtool accepts the scrape, and
// that /healthz is 200.
func TestMetricsAfterChatSession(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatal("promtool not found: install Debian's prometheus package (scripts/test.sh does)")
	}
	t.Parallel()
	cfg := loadConfig(t, "maxPackageSize = 1K", 0, 0)
	cfg.MetricsListen = "127.0.0.1:0"
	d := startDaemon(t, cfg, Options{})
	pa, pb := d.port(t, "Telnet-0"), d.port(t, "Telnet-1")
	base := "http://" + d.MetricsAddr()

	// Start returns once every instance listens.
	if body := scrape(t, base+"/healthz"); body != "ok\n" {
		t.Errorf("/healthz: got %q, want \"ok\\n\"", body)
	}

	// Five members: three on Telnet-0, two on Telnet-1. Each reads every
	// line up to the last join, so that nothing sent is left unread.
	var cs []*meteredClient
	for k := range 5 {
		inst, port := "Telnet-0", pa
		if k >= 3 {
			inst, port = "Telnet-1", pb
		}
		cs = append(cs, connectMetered(t, inst, port))
	}
	for k, c := range cs {
		for _, later := range cs[k+1:] {
			c.waitFor("* uid " + later.uid + " joined")
		}
	}

	// M broadcasts, each from another member, reach all N members.
	const m = 3
	for k := range m {
		from := cs[k%len(cs)]
		text := "hello " + strconv.Itoa(k)
		from.say(text)
		for _, c := range cs {
			c.waitFor("uid " + from.uid + ": " + text)
		}
	}

	// One private message, Telnet-0 to Telnet-1.
	cs[0].say("$" + cs[3].uid + ":psst")
	cs[3].waitFor("uid " + cs[0].uid + " (private): psst")
	cs[0].waitFor("(to uid " + cs[3].uid + "): psst")

	// A line over maxPackageSize on Telnet-1: an error line, then closed.
	cs[4].send(strings.Repeat("x", 1100))
	if got := cs[4].waitEOF(); !slices.Contains(got, "! line too long (max 1024 bytes)") {
		t.Errorf("after a long line: got %q, want the line-too-long error", got)
	}
	for _, c := range cs[:4] {
		c.waitFor("* uid " + cs[4].uid + " left")
	}

	// /quit on Telnet-0.
	cs[2].say("/quit")
	cs[2].waitEOF()
	for _, c := range []*meteredClient{cs[0], cs[1], cs[3]} {
		c.waitFor("* uid " + cs[2].uid + " left")
	}

	// A last broadcast to the three still here, read by each: after it,
	// every byte the daemon wrote has been read.
	cs[1].say("done")
	for _, c := range []*meteredClient{cs[0], cs[1], cs[3]} {
		c.waitFor("uid " + cs[1].uid + ": done")
	}

	// What the counters must say, from what the clients counted.
	want := map[string]float64{
		"fastws_room_members":                                                          3,
		`fastws_instance_up{instance="Telnet-0"}`:                                      1,
		`fastws_instance_up{instance="Telnet-1"}`:                                      1,
		`fastws_connections{instance="Telnet-0"}`:                                      2,
		`fastws_connections{instance="Telnet-1"}`:                                      1,
		`fastws_connections_accepted_total{instance="Telnet-0"}`:                       3,
		`fastws_connections_accepted_total{instance="Telnet-1"}`:                       2,
		`fastws_private_messages_total{instance="Telnet-0"}`:                           0,
		`fastws_private_messages_total{instance="Telnet-1"}`:                           1,
		`fastws_protocol_errors_total{instance="Telnet-0",kind="line_too_long"}`:       0,
		`fastws_protocol_errors_total{instance="Telnet-1",kind="line_too_long"}`:       1,
		`fastws_slow_consumer_disconnects_total{instance="Telnet-0"}`:                  0,
		`fastws_slow_consumer_disconnects_total{instance="Telnet-1"}`:                  0,
		`fastws_connections_closed_total{instance="Telnet-0",reason="client_quit"}`:    1,
		`fastws_connections_closed_total{instance="Telnet-1",reason="protocol_error"}`: 1,
		`fastws_connections_closed_total{instance="Telnet-0",reason="protocol_error"}`: 0,
		`fastws_connections_closed_total{instance="Telnet-1",reason="client_quit"}`:    0,
		`fastws_connections_closed_total{instance="Telnet-0",reason="slow_consumer"}`:  0,
		`fastws_connections_closed_total{instance="Telnet-1",reason="shutdown"}`:       0,
		`fastws_connections_closed_total{instance="Telnet-0",reason="client_closed"}`:  0,
		`fastws_connections_closed_total{instance="Telnet-1",reason="error"}`:          0,
		`fastws_connections_closed_total{instance="Telnet-0",reason="idle"}`:           0,
		`fastws_connections_closed_total{instance="Telnet-0",reason="flood"}`:          0,
		`fastws_connections_closed_total{instance="Telnet-0",reason="refused"}`:        0,
	}
	var broadcasts float64
	for _, c := range cs {
		for name, v := range map[string]uint64{
			"fastws_messages_received_total":    c.linesOut,
			"fastws_received_bytes_total":       c.bytesOut,
			"fastws_messages_sent_total":        c.linesIn,
			"fastws_sent_bytes_total":           c.bytesIn,
			"fastws_broadcast_deliveries_total": c.broadcastsIn,
		} {
			want[name+`{instance="`+c.inst+`"}`] += float64(v)
		}
		broadcasts += float64(c.broadcastsIn)
	}
	if n := float64(len(cs)); broadcasts != m*n+n-2 {
		t.Fatalf("the clients counted %v broadcast lines, want M×N + N-2 = %v", broadcasts, m*n+n-2)
	}

	// The last counters are added just after the bytes leave, so poll.
	var body string
	var diff []string
	deadline := time.Now().Add(testTimeout)
	for {
		body = scrape(t, base+"/metrics")
		got := samples(t, body)
		diff = diff[:0]
		for _, name := range slices.Sorted(maps.Keys(want)) {
			if v, ok := got[name]; !ok || v != want[name] {
				diff = append(diff, fmt.Sprintf("%s: got %v (present %v), want %v", name, v, ok, want[name]))
			}
		}
		if len(diff) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond) // poll interval, not synchronisation
	}
	for _, d := range diff {
		t.Error(d)
	}
	for _, want := range []string{"fastws_build_info{", "go_goroutines ", "process_resident_memory_bytes "} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics has no %q", want)
		}
	}

	check := exec.Command(promtool, "check", "metrics")
	check.Stdin = strings.NewReader(body)
	if out, err := check.CombinedOutput(); err != nil {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	}
}

// TestHealthy checks what /healthz answers before, while and after the
// instances listen.
func TestHealthy(t *testing.T) {
	t.Parallel()
	cfg, err := config.Load(writeConfig(t, "", freePort(t), freePort(t)))
	if err != nil {
		t.Fatal(err)
	}
	d := &Daemon{srv: server.New(slog.New(slog.DiscardHandler), chat.Options{}), cfg: cfg}
	if err := d.healthy(); err == nil || !strings.Contains(err.Error(), "Telnet-0 is not listening") {
		t.Errorf("before Start: got %v, want Telnet-0 not listening", err)
	}
	if err := d.srv.Start(cfg); err != nil {
		t.Fatal(err)
	}
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			_ = d.srv.Stop(context.Background())
		}
	})
	if err := d.healthy(); err != nil {
		t.Errorf("after Start: got %v, want healthy", err)
	}
	// A config that lists an instance the server does not run.
	more := *cfg
	more.Instances = append(slices.Clone(cfg.Instances), cfg.Instances[0])
	more.Instances[2].Name = "Telnet-2"
	d.cfg = &more
	if err := d.healthy(); err == nil || !strings.Contains(err.Error(), "Telnet-2 is not listening") {
		t.Errorf("with an instance not started: got %v, want Telnet-2 not listening", err)
	}
	d.cfg = cfg

	// A reload whose addresses are taken: Telnet-1 cannot move, an added
	// instance cannot start.
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	port := taken.Addr().(*net.TCPAddr).Port
	bad := *cfg
	bad.Instances = slices.Clone(cfg.Instances)
	bad.Instances[1].Port = port
	if _, err := d.srv.Reload(&bad); err == nil {
		t.Fatal("reload onto a taken port succeeded")
	}
	d.cfg = &bad
	if err := d.healthy(); err == nil || !strings.Contains(err.Error(), "Telnet-1 runs its previous settings: instance Telnet-1: listen") {
		t.Errorf("with a change not applied: got %v, want Telnet-1 runs its previous settings", err)
	}
	added := bad
	added.Instances = []config.Instance{bad.Instances[1]}
	added.Instances[0].Section, added.Instances[0].Name = "instance.added", "Added"
	if _, err := d.srv.Reload(&added); err == nil {
		t.Fatal("reload onto a taken port succeeded")
	}
	d.cfg = &added
	if err := d.healthy(); err == nil || !strings.Contains(err.Error(), "Added is down: instance Added: listen") {
		t.Errorf("with an instance down: got %v, want Added is down", err)
	}
	taken.Close()
	if _, err := d.srv.Reload(cfg); err != nil {
		t.Fatal(err)
	}
	d.cfg = cfg
	if err := d.healthy(); err != nil {
		t.Errorf("after a reload that applies: got %v, want healthy", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	stopped = true
	if err := d.srv.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if err := d.healthy(); err == nil {
		t.Error("after Stop: got healthy, want an error")
	}
}

// TestMetricsDocumented keeps README's metric table and SCHEMA.md's close
// reasons in step with the code.
func TestMetricsDocumented(t *testing.T) {
	t.Parallel()
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	schema, err := os.ReadFile("../../status/SCHEMA.md")
	if err != nil {
		t.Fatal(err)
	}
	row := func(doc []byte, prefix string) string {
		for l := range strings.Lines(string(doc)) {
			if strings.HasPrefix(l, prefix) {
				return l
			}
		}
		t.Fatalf("no line starting with %q", prefix)
		return ""
	}
	closedRow := row(readme, "| `fastws_connections_closed_total{reason}` |")
	schemaRow := row(schema, "| `closedByReason` |")
	for _, r := range closeReasons() {
		if !strings.Contains(closedRow, "`"+r+"`") {
			t.Errorf("README's fastws_connections_closed_total row does not list reason %s", r)
		}
		if !strings.Contains(schemaRow, "`"+r+"`") {
			t.Errorf("status/SCHEMA.md's closedByReason row does not list reason %s", r)
		}
	}
	ch := make(chan *prometheus.Desc, 64)
	status.NewCollector(func() status.Snapshot { return status.Snapshot{} }, nil).Describe(ch)
	close(ch)
	fq := regexp.MustCompile(`fqName: "([^"]+)"`)
	for d := range ch {
		name := fq.FindStringSubmatch(d.String())[1]
		if !bytes.Contains(readme, []byte("`"+name)) {
			t.Errorf("README's Metrics section does not list %s", name)
		}
	}
}
