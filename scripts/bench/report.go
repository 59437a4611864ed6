package main

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// Report is what one invocation found: the JSON file, and the source of
// the table and the chart.
type Report struct {
	// Schema is 2 since the baseline column holds the per-read server in
	// fan-out and idle (and the naive one has its own); 0 before, when
	// the baseline runs of fan-out and idle were the naive server.
	Schema   int      `json:"schema"`
	Machine  Machine  `json:"machine"`
	Command  string   `json:"command"`
	Seconds  float64  `json:"seconds"`
	Fastws   string   `json:"fastws"`
	Baseline string   `json:"baseline"`
	Naive    string   `json:"naive"`
	Rows     []Row    `json:"rows"`
	Runs     []*Run   `json:"runs"`
	Notes    []string `json:"notes,omitempty"`
}

// reportSchema is the Schema this code writes.
const reportSchema = 2

// Row is one line of the table: a metric of a case on each server.
type Row struct {
	Case       string   `json:"case"`
	Target     string   `json:"target,omitempty"` // e.g. "ratio <= 1.25"
	Pass       *bool    `json:"pass,omitempty"`   // nil: no target
	Metric     string   `json:"metric"`
	Key        string   `json:"key"`
	Fastws     *float64 `json:"fastws"`
	Baseline   *float64 `json:"baseline"` // the per-read server (fan-out, idle) or the line echo (cases 1, 2)
	Ratio      *float64 `json:"ratio"`    // fastws / baseline: the headline, and what targets check
	Naive      *float64 `json:"naive"`    // one AsyncWrite per line per connection (fan-out, idle)
	NaiveRatio *float64 `json:"naive_ratio"`
	// GeneratorBound names the servers whose run of this row's window
	// had the load tool use more than generatorShare of the CPU the
	// server left: their rate measures the load tool, not the server.
	GeneratorBound []string `json:"generator_bound,omitempty"`
	// Versus says what a row comparing fastws with itself (a rooms case
	// with the lobby fan-out) divides by: "÷ fanout/telnet/1000 fastws
	// 2,345,678". Its Fastws is the quotient; it has no Baseline.
	Versus string `json:"versus,omitempty"`

	bound float64 // of a ratio target (or of one against the lobby), else 0
}

// generatorShare is the share of the CPU left by the server above which
// the load tool, not the server, sets the pace.
const generatorShare = 0.8

// generatorBound reports whether a load tool that used toolCPUs of the
// machine's cpus while the server used serverCPUs was the limit: it used
// more than generatorShare of what the server left.
func generatorBound(toolCPUs, serverCPUs float64, cpus int) bool {
	left := float64(cpus) - serverCPUs
	return left > 0 && toolCPUs > generatorShare*left
}

// windowKeys are the metrics of each measured window of a run: prefix,
// the CPU seconds of server and tool, and the rows that are rates over
// that window (those a generator-bound run makes unreadable).
var windowKeys = []struct {
	pre   string
	rates []string
}{
	{"", []string{"rt_per_s", "connects_per_s"}},
	{"sat_", []string{"sat_deliveries_per_s"}},
	{"rate_", []string{"rate_deliveries_per_s"}},
}

// load adds to run, for each of its measured windows, the CPUs the server
// and the tool used (PRE server_cpus, PRE tool_cpus) and whether the tool
// was the limit (PRE generator_bound, 1 or 0). It works from the raw CPU
// seconds, so it reads bench.json files older than it.
func load(run *Run, cpus int) {
	for _, w := range windowKeys {
		srv, ok1 := run.Metrics[w.pre+"server_cpu_s"]
		tool, ok2 := run.Metrics[w.pre+"tool_cpu_s"]
		secs, ok3 := run.Metrics[w.pre+"seconds"]
		if !ok3 && w.pre == "" && run.Metrics["rt_per_s"] > 0 {
			secs, ok3 = run.Metrics["round_trips"]/run.Metrics["rt_per_s"], true
		}
		if !ok1 || !ok2 || !ok3 || secs <= 0 {
			continue
		}
		run.set(w.pre+"server_cpus", srv/secs)
		run.set(w.pre+"tool_cpus", tool/secs)
		run.set(w.pre+"generator_bound", map[bool]float64{true: 1}[generatorBound(tool/secs, srv/secs, cpus)])
	}
}

// A target compares the ratio (fastws/baseline) or fastws's own value
// with a bound.
type goal struct {
	ratio  bool // else fastws's value
	atMost bool // else at least
	bound  float64
	unit   string // of an absolute bound
}

// rowDef is a metric to show for every case of a kind.
type rowDef struct {
	key, label string
	tgt        func(c caseDef) *goal
}

func ratioAtMost(v float64) func(caseDef) *goal {
	return func(caseDef) *goal { return &goal{ratio: true, atMost: true, bound: v} }
}

func zero(caseDef) *goal { return &goal{atMost: true, bound: 0} }

// vsLobby ends the key of a rooms metric divided by fastws's own in the
// lobby fan-out (see lobbyRatios).
const vsLobby = "_vs_lobby"

// lobbyUnit is the unit of a target on such a quotient.
const lobbyUnit = "× lobby"

func lobbyAtLeast(v float64) func(caseDef) *goal {
	return func(caseDef) *goal { return &goal{bound: v, unit: lobbyUnit} }
}

func lobbyAtMost(v float64) func(caseDef) *goal {
	return func(caseDef) *goal { return &goal{atMost: true, bound: v, unit: lobbyUnit} }
}

// lobbyKeys are the rooms metrics divided by the lobby's.
var lobbyKeys = []string{"sat_deliveries_per_s", "sat_server_us_per_delivery", "rate_p99_ms"}

// vsSingle ends the key of a cluster metric divided by fastws's own on
// one node, overSingle one less it (see singleRatios).
const (
	vsSingle   = "_vs_single"
	overSingle = "_over_single"
	singleUnit = "× one node"
)

// singleRatios adds to each run of a cluster case compared with one node
// (caseDef.lobby) the quotient of its deliveries/s and the difference of
// its p99 at the fixed rate, against the median fastws run of that case.
func singleRatios(runs []*Run, cases []caseDef) {
	for _, c := range cases {
		if c.kind != "cluster" || c.lobby == "" {
			continue
		}
		var single []*Run
		for _, run := range runs {
			if run.Server == kindFastws && run.Case == c.lobby {
				single = append(single, run)
			}
		}
		l := median(single)
		if l == nil {
			continue
		}
		for _, run := range runs {
			if run.Case != c.name {
				continue
			}
			if v, lv := run.Metrics["sat_deliveries_per_s"], l.Metrics["sat_deliveries_per_s"]; lv > 0 {
				run.set("single_sat_deliveries_per_s", lv)
				run.set("sat_deliveries_per_s"+vsSingle, v/lv)
			}
			v, ok1 := run.Metrics["rate_p99_ms"]
			lv, ok2 := l.Metrics["rate_p99_ms"]
			if ok1 && ok2 {
				run.set("single_rate_p99_ms", lv)
				run.set("rate_p99_ms"+overSingle, v-lv)
			}
		}
	}
}

// vsPlain ends the key of a TLS metric divided by the plain instance's.
const (
	vsPlain   = "_vs_plain"
	plainUnit = "× plain"
)

// tlsKinds are the servers of a TLS case's runs.
const (
	kindTLS   = "fastws-tls"
	kindPlain = "fastws-plain"
)

// tlsRun returns the TLS case's median TLS run with the plain run's
// figures (plain_KEY) and the quotients (KEY_vs_plain), or nil.
func tlsRun(tls, plain []*Run) *Run {
	t, p := median(tls), median(plain)
	if t == nil {
		return nil
	}
	v := &Run{Case: t.Case, Server: kindFastws, Metrics: maps.Clone(t.Metrics)}
	if p == nil {
		return v
	}
	for k, pv := range p.Metrics {
		v.set("plain_"+k, pv)
		if tv, ok := t.Metrics[k]; ok && pv != 0 {
			v.set(k+vsPlain, tv/pv)
		}
	}
	return v
}

// lobbyRatios adds to each fastws run of a rooms case compared with the
// lobby (metric vs_lobby) the lobby's figures (lobby_KEY, from the median
// fastws run of fanout/telnet/N, N its room_receivers) and the quotients
// (KEY_vs_lobby). A run without a lobby run to compare with gets none.
func lobbyRatios(runs []*Run) {
	lobby := map[string][]*Run{}
	for _, run := range runs {
		if run.Server == kindFastws && strings.HasPrefix(run.Case, "fanout/") {
			lobby[run.Case] = append(lobby[run.Case], run)
		}
	}
	for _, run := range runs {
		if run.Server != kindFastws || run.Metrics["vs_lobby"] != 1 {
			continue
		}
		l := median(lobby["fanout/telnet/"+strconv.Itoa(int(run.Metrics["room_receivers"]))])
		if l == nil {
			continue
		}
		for _, k := range lobbyKeys {
			v, ok1 := run.Metrics[k]
			lv, ok2 := l.Metrics[k]
			if ok1 && ok2 && lv != 0 {
				run.set("lobby_"+k, lv)
				run.set(k+vsLobby, v/lv)
			}
		}
	}
}

// fanoutAtLeast and fanoutAtMost are the fan-out targets against the
// strongest simple server, at 1000 receivers (where the load tool is the
// limit) and at 10,000.
func fanoutAtLeast(at1000, at10000 float64) func(caseDef) *goal {
	return func(c caseDef) *goal {
		if c.n >= 10000 {
			return &goal{ratio: true, bound: at10000}
		}
		return &goal{ratio: true, bound: at1000}
	}
}

func fanoutAtMost(at1000, at10000 float64) func(caseDef) *goal {
	return func(c caseDef) *goal {
		g := fanoutAtLeast(at1000, at10000)(c)
		g.atMost = true
		return g
	}
}

// The targets the table checks (scripts/bench/README.md lists them).
var rowDefs = map[string][]rowDef{
	"case1": {
		{"rt_per_s", "round trips/s", nil},
		{"server_us_per_rt", "server CPU µs/round trip", ratioAtMost(1.05)},
		{"tool_us_per_rt", "load tool CPU µs/round trip", nil},
		{"connects_per_s", "connections/s", nil},
		{"allocs_per_rt", "server allocations/round trip (-pprof)", nil},
		{"errors", "errors", zero},
	},
	"case2": {
		{"rt_per_s", "round trips/s", nil},
		{"server_us_per_rt", "server CPU µs/round trip", ratioAtMost(1.05)},
		{"tool_us_per_rt", "load tool CPU µs/round trip", nil},
		{"allocs_per_rt", "server allocations/round trip (-pprof)", nil},
		{"errors", "errors", zero},
	},
	// The cluster: fastws alone. The rows "÷ one node" and "- one node"
	// compare with fastws's own fanout/telnet/1000 (one node, as many
	// receivers) of the same invocation (target: at least 0.7× its
	// deliveries/s, p99 at 100 msg/s within its p99 + 2 ms).
	"cluster": {
		{"sat_deliveries_per_s", "deliveries/s, saturation (2 nodes)", nil},
		{"sat_deliveries_per_s" + vsSingle, "deliveries/s, saturation, ÷ one node", func(caseDef) *goal { return &goal{bound: 0.7, unit: singleUnit} }},
		{"sat_server_us_per_delivery", "node 1 CPU µs/delivery, saturation", nil},
		{"sat_p99_ms", "latency p99 ms, saturation", nil},
		{"rate_p50_ms", "latency p50 ms, 100 msg/s", nil},
		{"rate_p99_ms", "latency p99 ms, 100 msg/s", nil},
		{"rate_p99_ms" + overSingle, "latency p99 ms, 100 msg/s, - one node", func(caseDef) *goal { return &goal{atMost: true, bound: 2, unit: "ms over one node"} }},
		{"rate_max_ms", "latency max ms, 100 msg/s", nil},
		{"sat_lost", "lost, saturation", zero},
		{"rate_lost", "lost, 100 msg/s", zero},
		{"online_total", "members counted across the cluster (idle)", nil},
		{"converge_s", "s until node 1 counts them all (idle)", nil},
		{"rss_kib_per_conn", "RSS KiB/connection over all nodes (idle)", nil},
		{"status_ms", "slowest fastws status ms (idle)", nil},
	},
	"fanout": {
		{"sat_deliveries_per_s", "deliveries/s, saturation", fanoutAtLeast(1.0, 1.5)},
		{"sat_server_us_per_delivery", "server CPU µs/delivery, saturation", fanoutAtMost(0.8, 0.6)},
		{"sat_tool_us_per_delivery", "load tool CPU µs/delivery, saturation", nil},
		{"sat_messages_per_write", "messages per write, saturation (fastws status)", nil},
		{"sat_p50_ms", "latency p50 ms, saturation", nil},
		{"sat_p99_ms", "latency p99 ms, saturation", nil},
		{"sat_allocs_per_delivery", "server allocations/delivery, saturation (-pprof)", nil},
		{"sat_allocs_per_message", "server allocations/message, saturation (-pprof)", nil},
		{"rate_deliveries_per_s", "deliveries/s, 100 msg/s", nil},
		{"rate_server_us_per_delivery", "server CPU µs/delivery, 100 msg/s", nil},
		{"rate_messages_per_write", "messages per write, 100 msg/s (fastws status)", nil},
		{"rate_p50_ms", "latency p50 ms, 100 msg/s", nil},
		{"rate_p99_ms", "latency p99 ms, 100 msg/s", ratioAtMost(1.5)},
		{"rate_max_ms", "latency max ms, 100 msg/s", nil},
		{"lost", "messages lost (baselines: still queued at the deadline)", zero},
		{"setup_s", "set-up s (connect + join notices)", nil},
		{"setup_server_cpu_s", "set-up server CPU s", nil},
	},
	// Rooms: fastws alone (the baselines have no rooms). The rows "÷
	// lobby" are fastws's figure over its own in the lobby fan-out to as
	// many receivers, from the same invocation (target: within 10%).
	"rooms": {
		{"sat_deliveries_per_s", "deliveries/s, saturation", nil},
		{"sat_deliveries_per_s" + vsLobby, "deliveries/s, saturation, ÷ lobby", lobbyAtLeast(0.9)},
		{"sat_server_us_per_delivery", "server CPU µs/delivery, saturation", nil},
		{"sat_server_us_per_delivery" + vsLobby, "server CPU µs/delivery, saturation, ÷ lobby", lobbyAtMost(1.1)},
		{"sat_tool_us_per_delivery", "load tool CPU µs/delivery, saturation", nil},
		{"sat_p50_ms", "latency p50 ms, saturation", nil},
		{"sat_p99_ms", "latency p99 ms, saturation", nil},
		{"sat_allocs_per_delivery", "server allocations/delivery, saturation (-pprof)", nil},
		{"rate_p50_ms", "latency p50 ms, 100 msg/s", nil},
		{"rate_p99_ms", "latency p99 ms, 100 msg/s", nil},
		{"rate_p99_ms" + vsLobby, "latency p99, 100 msg/s, ÷ lobby", nil},
		{"lost", "messages lost", zero},
		{"setup_s", "set-up s (connect, join rooms, join notices)", nil},
		{"setup_server_cpu_s", "set-up server CPU s", nil},
	},
	// The Application API: fastws alone. Its rows read against the lobby
	// fan-out's of the same invocation: an API send takes the same path.
	"api": {
		{"api_posts_per_s", "POST /api/v1/send per s (4 keep-alive clients, to everyone)", nil},
		{"api_deliveries_per_s", "deliveries/s", nil},
		{"api_server_us_per_delivery", "server CPU µs/delivery (HTTP included)", nil},
		{"lost", "deliveries lost", zero},
		{"errors", "failed requests", zero},
	},
	// TLS: fastws alone, its TLS instance beside its plain one in the same
	// invocation; the rows "÷ plain" divide the TLS figure by the plain one
	// (targets: at most 16 KiB per idle TLS connection, fan-out over TLS
	// at least 0.5× plain deliveries/s).
	"tls": {
		{"rss_kib_per_conn", "RSS KiB/connection over TLS (idle)", func(caseDef) *goal { return &goal{atMost: true, bound: 16, unit: "KiB"} }},
		{"plain_rss_kib_per_conn", "RSS KiB/connection, plain (idle)", nil},
		{"deliveries_per_s", "deliveries/s over TLS, saturation", nil},
		{"deliveries_per_s" + vsPlain, "deliveries/s, ÷ plain", func(caseDef) *goal { return &goal{bound: 0.5, unit: plainUnit} }},
		{"server_us_per_delivery", "server CPU µs/delivery over TLS", nil},
		{"server_us_per_delivery" + vsPlain, "server CPU µs/delivery, ÷ plain", nil},
		{"conns_per_s", "TLS connections/s (handshake included)", nil},
		{"conns_per_s" + vsPlain, "connections/s, ÷ plain", nil},
		{"server_us_per_conn", "server CPU µs/TLS connection", nil},
		{"server_us_per_conn" + vsPlain, "server CPU µs/connection, ÷ plain", nil},
	},
	"idle": {
		{"rss_kib_per_conn", "RSS KiB/connection", func(c caseDef) *goal {
			if c.n < 19000 {
				return nil
			}
			if c.ws {
				return &goal{atMost: true, bound: 3, unit: "KiB"}
			}
			return &goal{atMost: true, bound: 1.5, unit: "KiB"}
		}},
		{"rss_after_mib", "RSS MiB with the connections", nil},
		{"errors", "connection errors", zero},
		{"status_ok", "fastws status answers (1 = yes)", func(caseDef) *goal { return &goal{bound: 1} }},
		{"metrics_ok", "/metrics answers (1 = yes)", nil},
		{"setup_s", "set-up s (connect + join notices)", nil},
		{"setup_server_cpu_s", "set-up server CPU s", nil},
	},
}

func newReport(m Machine, o *options, args []string, runs []*Run, took time.Duration) *Report {
	accept := map[bool]string{true: "; accepting as fastws does (net.Listener, then the engine's Register), not with gnet's acceptor"}[o.baselineAccept == "enroll"]
	r := &Report{
		Schema:  reportSchema,
		Machine: m,
		Command: strings.TrimSpace("go run ./scripts/bench " + strings.Join(args, " ")),
		Seconds: math.Round(took.Seconds()),
		Baseline: "raw gnet v2 (scripts/bench/baseline), " + strconv.Itoa(o.loops) + " event loops: line echo for cases 1 and 2; " +
			"for fan-out and idle the strongest simple server: per read, one write per connection with all the read's complete lines " +
			"(its own event loop's connections written directly, the others' by one AsyncWrite each); minimal websocket framing for the websocket cases" + accept,
		Naive: "the same raw gnet server, naive: one AsyncWrite per line per connection (fan-out and idle; in cases 1 and 2 both baselines are the same line echo, run once)" + accept,
		Fastws: "childProcessCount " + strconv.Itoa(o.loops) + " on both instances, messagesPerSecond 0, bytesPerSecond 0, maxSendBuffer " + o.sendBuf +
			", started fresh for every run",
		Runs: runs,
	}
	cases := o.cases()
	for _, name := range tlsCaseNames {
		cases = append(cases, caseDef{name: name, kind: "tls"})
	}
	r.Rows = buildRows(runs, cases, m.CPUs)
	for _, run := range runs {
		who := run.Case + " " + run.Server
		rounds := o.rounds > 1 && (strings.HasPrefix(run.Case, "case1") || strings.HasPrefix(run.Case, "case2")) ||
			o.fanoutRounds > 1 && (strings.HasPrefix(run.Case, "fanout/") || strings.HasPrefix(run.Case, "cluster/fanout/"))
		if rounds && run.Round > 0 {
			who += " round " + strconv.Itoa(run.Round)
		}
		for _, n := range run.Notes {
			r.Notes = append(r.Notes, who+": "+n)
		}
		for _, f := range run.Failures {
			r.Notes = append(r.Notes, who+": FAILED: "+f)
		}
	}
	return r
}

// buildRows makes the table's rows of cases from runs: per case and
// server the median run, the ratios to both baselines, the targets
// (checked against the baseline, the headline) and the generator-bound
// marks. It adds the derived metrics to runs ("lost", load's).
func buildRows(runs []*Run, cases []caseDef, cpus int) []Row {
	for _, run := range runs {
		// "lost" sums both fan-out phases.
		if _, ok := run.Metrics["sat_lost"]; ok {
			run.Metrics["lost"] = run.Metrics["sat_lost"] + run.Metrics["rate_lost"]
		}
		load(run, cpus)
	}
	lobbyRatios(runs)
	singleRatios(runs, cases)
	var rows []Row
	for _, c := range cases {
		by := map[string][]*Run{}
		for _, run := range runs {
			if run.Case == c.name {
				by[run.Server] = append(by[run.Server], run)
			}
		}
		fw, bl, nv := median(by[kindFastws]), median(by[kindBaseline]), median(by[kindNaive])
		if c.kind == "tls" {
			fw = tlsRun(by[kindTLS], by[kindPlain])
		}
		if fw == nil && bl == nil && nv == nil {
			continue
		}
		for _, d := range rowDefs[c.kind] {
			row := Row{Case: c.name, Metric: d.label, Key: d.key, Fastws: metric(fw, d.key), Baseline: metric(bl, d.key), Naive: metric(nv, d.key)}
			if row.Fastws == nil && row.Baseline == nil && row.Naive == nil {
				continue
			}
			row.Ratio, row.NaiveRatio = quotient(row.Fastws, row.Baseline), quotient(row.Fastws, row.Naive)
			if d.tgt != nil {
				if t := d.tgt(c); t != nil {
					row.Target, row.Pass = t.check(row)
					if t.ratio || t.unit == lobbyUnit || t.unit == singleUnit || t.unit == plainUnit {
						row.bound = t.bound
					}
				}
			}
			if base, ok := strings.CutSuffix(d.key, vsLobby); ok {
				if v := metric(fw, "lobby_"+base); v != nil {
					row.Versus = "÷ fanout/telnet/" + strconv.Itoa(int(*metric(fw, "room_receivers"))) + " fastws " + num(v)
				}
			}
			for suffix, sign := range map[string]string{vsSingle: "÷ ", overSingle: "- "} {
				if base, ok := strings.CutSuffix(d.key, suffix); ok {
					if v := metric(fw, "single_"+base); v != nil {
						row.Versus = sign + c.lobby + " fastws " + num(v)
					}
				}
			}
			for _, w := range windowKeys {
				if slices.Contains(w.rates, d.key) {
					for _, s := range []struct {
						kind string
						run  *Run
					}{{kindFastws, fw}, {kindBaseline, bl}, {kindNaive, nv}} {
						if v := metric(s.run, w.pre+"generator_bound"); v != nil && *v >= 0.5 {
							row.GeneratorBound = append(row.GeneratorBound, s.kind)
						}
					}
				}
			}
			rows = append(rows, row)
		}
	}
	return rows
}

func quotient(a, b *float64) *float64 {
	if a == nil || b == nil || *b == 0 {
		return nil
	}
	v := *a / *b
	return &v
}

// casesOf lists the cases of runs in the order they first appear, for a
// bench.json read back.
func casesOf(runs []*Run) []caseDef {
	var cs []caseDef
	seen := map[string]bool{}
	for _, r := range runs {
		if seen[r.Case] {
			continue
		}
		seen[r.Case] = true
		f := strings.Split(r.Case, "/")
		c := caseDef{name: r.Case, kind: f[0], n: 2}
		if len(f) > 1 {
			c.ws = f[1] == "websocket"
		}
		if len(f) > 2 {
			c.n, _ = strconv.Atoi(f[2])
		}
		if nodes, per, ok := strings.Cut(f[len(f)-1], "x"); ok && c.kind == "cluster" && f[1] == "fanout" {
			a, _ := strconv.Atoi(nodes)
			b, _ := strconv.Atoi(per)
			c.n, c.lobby = a*b, "fanout/telnet/"+strconv.Itoa(a*b)
		}
		cs = append(cs, c)
	}
	return cs
}

// upgrade brings a bench.json of an older schema to this one: before
// schema 2 the baseline runs of fan-out and idle were the naive server,
// so they become naive runs (the per-read server was not measured).
func (r *Report) upgrade() {
	if r.Schema >= reportSchema {
		return
	}
	for _, run := range r.Runs {
		if run.Server == kindBaseline && !strings.HasPrefix(run.Case, "case") {
			run.Server = kindNaive
		}
	}
	r.Naive = r.Baseline + " (from a bench.json before the per-read baseline: its fan-out and idle baseline runs are this naive server)"
	r.Baseline = "line echo for cases 1 and 2 (as in the naive column's description); the per-read server was not measured in this file"
	r.Notes = append(r.Notes, "re-printed from a bench.json older than the per-read baseline: fan-out and idle have only the naive column, so their targets are not checked")
	r.Schema = reportSchema
}

// median returns a run whose metrics are the medians of runs' (the lower
// middle value of an even count), or the run itself if there is one.
func median(runs []*Run) *Run {
	switch len(runs) {
	case 0:
		return nil
	case 1:
		return runs[0]
	}
	m := &Run{Case: runs[0].Case, Server: runs[0].Server, Metrics: map[string]float64{}}
	for k := range runs[0].Metrics {
		var vs []float64
		for _, r := range runs {
			if v, ok := r.Metrics[k]; ok {
				vs = append(vs, v)
			}
		}
		sort.Float64s(vs)
		m.Metrics[k] = vs[(len(vs)-1)/2]
	}
	return m
}

func metric(r *Run, key string) *float64 {
	if r == nil {
		return nil
	}
	v, ok := r.Metrics[key]
	if !ok {
		return nil
	}
	return &v
}

// check returns the target's text and whether row meets it; nil when
// there is nothing to compare.
func (t *goal) check(row Row) (string, *bool) {
	op := "≥"
	if t.atMost {
		op = "≤"
	}
	var text string
	var v *float64
	switch {
	case t.ratio:
		text, v = op+strconv.FormatFloat(t.bound, 'f', 2, 64)+"×", row.Ratio
	case t.unit == lobbyUnit || t.unit == singleUnit || t.unit == plainUnit:
		text, v = op+strconv.FormatFloat(t.bound, 'f', 2, 64)+t.unit, row.Fastws
	case t.unit != "":
		text, v = op+strconv.FormatFloat(t.bound, 'f', -1, 64)+" "+t.unit, row.Fastws
	default:
		text, v = strings.Replace(op, "≤", "=", 1)+strconv.FormatFloat(t.bound, 'f', -1, 64), row.Fastws
	}
	if v == nil {
		return text, nil
	}
	ok := *v >= t.bound
	if t.atMost {
		ok = *v <= t.bound
	}
	return text, &ok
}

// writeTable prints the table with the machine in its header.
func (r *Report) writeTable(w io.Writer) {
	fmt.Fprintf(w, "fastws bench, %s\n", r.Machine.StartedUTC)
	fmt.Fprintf(w, "machine: %s\n", r.Machine)
	fmt.Fprintf(w, "command: %s (took %gs)\n", r.Command, r.Seconds)
	fmt.Fprintf(w, "fastws: commit %s, %s\n", r.Machine.Commit, r.Fastws)
	fmt.Fprintf(w, "baseline: %s\n", r.Baseline)
	fmt.Fprintf(w, "naive: %s\n", r.Naive)
	fmt.Fprintf(w, "ratio = fastws / baseline (the headline; targets check it), /naive = fastws / naive; CPU is utime+stime from /proc/PID/stat over the measured window\n")
	fmt.Fprintf(w, "generator-bound: the load tool used more than %.0f%% of the CPU the server left (%d CPUs less the server's): that run's rate measures the load tool; read server CPU per delivery (round trip) instead\n\n",
		generatorShare*100, r.Machine.CPUs)
	if slices.ContainsFunc(r.Rows, func(row Row) bool { return strings.HasPrefix(row.Case, "rooms/") }) {
		fmt.Fprintf(w, "rooms: fastws alone (the baselines have no rooms, so no ratio); a row \"÷ lobby\" is fastws's figure over its own in the lobby fan-out to as many receivers, same invocation\n\n")
	}
	if slices.ContainsFunc(r.Rows, func(row Row) bool { return strings.HasPrefix(row.Case, "tls/") }) {
		fmt.Fprintf(w, "tls: fastws alone, its TLS instance (TLS 1.3, ECDSA P-256) beside its plain one in the same invocation; a row \"÷ plain\" is the TLS figure over the plain one\n\n")
	}
	if slices.ContainsFunc(r.Rows, func(row Row) bool { return strings.HasPrefix(row.Case, "cluster/fanout/") }) {
		fmt.Fprintf(w, "cluster: fastws alone; rows \"÷ one node\" and \"- one node\" compare with fastws on one node with as many receivers (fanout/telnet/N), same invocation\n\n")
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "CASE\tTARGET\tMETRIC\tFASTWS\tBASELINE\tRATIO\tNAIVE\t/NAIVE\tNOTE\t")
	last := ""
	for _, row := range r.Rows {
		name := row.Case
		if name == last {
			name = ""
		}
		last = row.Case
		target := row.Target
		if row.Pass != nil {
			if *row.Pass {
				target += " pass"
			} else {
				target += " FAIL"
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", name, target, row.Metric, row.fastws(), num(row.Baseline), ratio(row),
			num(row.Naive), ratio(Row{Ratio: row.NaiveRatio}), row.note())
	}
	_ = tw.Flush()
	if len(r.Notes) > 0 {
		fmt.Fprintln(w, "\nnotes:")
		for _, n := range r.Notes {
			fmt.Fprintf(w, "  - %s\n", n)
		}
	}
}

// note says what a row against the lobby divides by, and which servers'
// runs were generator-bound in row's window.
func (row Row) note() string {
	var notes []string
	if row.Versus != "" {
		notes = append(notes, row.Versus)
	}
	if len(row.GeneratorBound) > 0 {
		notes = append(notes, "generator-bound: "+strings.Join(row.GeneratorBound, ", "))
	}
	return strings.Join(notes, "; ")
}

// fastws is row's fastws figure as the table prints it: a quotient
// against the lobby as a ratio is printed.
func (row Row) fastws() string {
	if strings.HasSuffix(row.Key, vsLobby) {
		return ratio(Row{Ratio: row.Fastws, bound: row.bound})
	}
	return num(row.Fastws)
}

func num(v *float64) string {
	if v == nil {
		return "-"
	}
	x := *v
	switch a := math.Abs(x); {
	case a == 0:
		return "0"
	case a >= 10000:
		return thousands(int64(math.Round(x)))
	case a >= 100:
		return strconv.FormatFloat(x, 'f', 0, 64)
	case a >= 10:
		return strconv.FormatFloat(x, 'f', 1, 64)
	case a >= 0.1:
		return strconv.FormatFloat(x, 'f', 2, 64)
	}
	return strconv.FormatFloat(x, 'g', 2, 64)
}

func thousands(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// ratio is row's ratio with two decimals, or three where two would print
// the bound of its target, which hides the verdict: 1.253 against ≤1.25×.
func ratio(row Row) string {
	if row.Ratio == nil {
		return "-"
	}
	s := strconv.FormatFloat(*row.Ratio, 'f', 2, 64)
	if row.bound != 0 && s == strconv.FormatFloat(row.bound, 'f', 2, 64) && *row.Ratio != row.bound {
		s = strconv.FormatFloat(*row.Ratio, 'f', 3, 64)
	}
	return s
}

// summaryKeys are the rows of the markdown summary besides the targets;
// roomsSummaryKeys those of the rooms cases, which have no baseline.
var (
	summaryKeys      = map[string]bool{"rt_per_s": true, "rss_kib_per_conn": true, "sat_p99_ms": true}
	roomsSummaryKeys = map[string]bool{"sat_deliveries_per_s": true, "sat_server_us_per_delivery": true}
)

// writeSummary prints the rows with a target (and a few more) as a
// markdown table, for README.md.
func (r *Report) writeSummary(w io.Writer) {
	fmt.Fprintf(w, "| case | metric | fastws | baseline | ratio | naive | /naive | target |\n|---|---|--:|--:|--:|--:|--:|---|\n")
	for _, row := range r.Rows {
		rooms := strings.HasPrefix(row.Case, "rooms/") && roomsSummaryKeys[row.Key]
		if row.Target == "" && !summaryKeys[row.Key] && !rooms || row.Key == "errors" || row.Key == "status_ok" {
			continue
		}
		target := row.Target
		if row.Pass != nil {
			target += map[bool]string{true: " pass", false: " **FAIL**"}[*row.Pass]
		}
		if n := row.note(); n != "" {
			target = strings.TrimSpace(target + " (" + n + ")")
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s | %s | %s |\n", row.Case, row.Metric, row.fastws(), num(row.Baseline), ratio(row),
			num(row.Naive), ratio(Row{Ratio: row.NaiveRatio}), target)
	}
	var failed []string
	for _, row := range r.Rows {
		if (row.Key == "errors" || row.Key == "status_ok") && row.Pass != nil && !*row.Pass {
			failed = append(failed, row.Case+" "+row.Metric)
		}
	}
	if len(failed) == 0 {
		fmt.Fprintln(w, "\nNo errors in any case; `fastws status` and /metrics answered with every idle connection open.")
	} else {
		fmt.Fprintf(w, "\nFailed: %s.\n", strings.Join(failed, "; "))
	}
}

// write stores the table, the JSON, a markdown summary and the chart in
// dir.
func (r *Report) write(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	var table strings.Builder
	r.writeTable(&table)
	if err := os.WriteFile(filepath.Join(dir, "bench.txt"), []byte(table.String()), 0o644); err != nil {
		return err
	}
	js, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "bench.json"), append(js, '\n'), 0o644); err != nil {
		return err
	}
	var sum strings.Builder
	r.writeSummary(&sum)
	if err := os.WriteFile(filepath.Join(dir, "summary.md"), []byte(sum.String()), 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "fanout.svg"), []byte(r.chart()), 0o644)
}
