package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestBuckets(t *testing.T) {
	prev := -1
	for _, us := range []int64{0, 1, 63, 64, 65, 127, 128, 1000, 12345, 1e6, 3.6e9} {
		d := time.Duration(us) * time.Microsecond
		i := bucketOf(d)
		if i < prev {
			t.Errorf("bucketOf(%v) = %d, below the bucket of a smaller value (%d)", d, i, prev)
		}
		prev = i
		if lo, hi := bucketValue(i), bucketValue(i+1); d < lo || (d >= hi && i < histBuckets-1) {
			t.Errorf("bucketOf(%v) = %d, which holds [%v, %v)", d, i, lo, hi)
		}
	}
}

func TestQuantile(t *testing.T) {
	var h hist
	for i := 1; i <= 1000; i++ {
		h.add(time.Duration(i) * time.Millisecond)
	}
	s := h.snap()
	for _, c := range []struct {
		q    float64
		want time.Duration
	}{{0.5, 500 * time.Millisecond}, {0.99, 990 * time.Millisecond}, {1, time.Second}} {
		got := s.quantile(c.q)
		if got < c.want || float64(got) > float64(c.want)*1.04 {
			t.Errorf("quantile(%v) = %v, want %v to 4%% above", c.q, got, c.want)
		}
	}
	if s.Max != time.Second {
		t.Errorf("max = %v, want 1s", s.Max)
	}
}

func TestParseMessage(t *testing.T) {
	for _, c := range []struct {
		in    string
		phase int
		ts    int64
		ok    bool
	}{
		{"1|42|1700000000000000000", 1, 1700000000000000000, true},
		{"0|0|5", 0, 5, true},
		{"2|0|5", 0, 0, false}, // no such phase
		{"0|5", 0, 0, false},
		{"0|1|2|3", 0, 0, false},
		{"0|x|5", 0, 0, false},
	} {
		phase, ts, ok := parseMessage([]byte(c.in))
		if ok != c.ok || ok && (phase != c.phase || ts != c.ts) {
			t.Errorf("parseMessage(%q) = %d, %d, %v; want %d, %d, %v", c.in, phase, ts, ok, c.phase, c.ts, c.ok)
		}
	}
}

func TestCountMarker(t *testing.T) {
	var marks [maxMarkers]atomic.Int64
	seen := countMarker([]byte("2"), 0, &marks) // 1 was missed: counted too
	seen = countMarker([]byte("2"), seen, &marks)
	seen = countMarker([]byte("1"), seen, &marks)
	if seen != 2 || marks[1].Load() != 1 || marks[2].Load() != 1 {
		t.Errorf("seen %d, marks 1 and 2 = %d, %d; want 2, 1, 1", seen, marks[1].Load(), marks[2].Load())
	}
}

// TestFrames checks that a masked client frame unmasks to what was sent,
// and that next reads server frames of every length encoding and answers
// a ping.
func TestFrames(t *testing.T) {
	for _, n := range []int{0, 5, 125, 126, 300, 70000} {
		p := bytes.Repeat([]byte{'a'}, n)
		cl := &client{ws: true}
		b := cl.frame(nil, 0x81, p)
		hl := map[bool]int{true: 2, false: 4}[n < 126]
		if n > 0xffff {
			hl = 10
		}
		if b[0] != 0x81 || b[1]&0x80 == 0 || len(b) != hl+4+n {
			t.Fatalf("frame of %d bytes: header % x, length %d", n, b[:2], len(b))
		}
		key := b[hl : hl+4]
		for i, c := range b[hl+4:] {
			if c^key[i&3] != 'a' {
				t.Fatalf("frame of %d bytes: byte %d unmasks to %q", n, i, c^key[i&3])
			}
		}
	}
	var in bytes.Buffer
	in.Write([]byte{0x89, 2, 'h', 'i'}) // ping
	in.Write([]byte{0x81, 126, 0, 200})
	in.WriteString(strings.Repeat("x", 200))
	in.Write([]byte{0x88, 0})
	out := &recorder{}
	cl := &client{ws: true, r: bufio.NewReader(&in), c: out}
	msg, err := cl.next()
	if err != nil || len(msg) != 200 {
		t.Fatalf("next = %d bytes, %v; want 200 bytes", len(msg), err)
	}
	if got := out.out.Bytes(); len(got) != 2+4+2 || got[0] != 0x8a {
		t.Errorf("ping answered with % x, want a masked pong of 2 bytes", got)
	}
	if _, err := cl.next(); err != errServerClosed {
		t.Errorf("after a close frame: %v, want errServerClosed", err)
	}
}

func TestNum(t *testing.T) {
	for v, want := range map[float64]string{0: "0", 1234567: "1,234,567", 123.4: "123", 12.34: "12.3", 1.234: "1.23", 0.0123: "0.012"} {
		if got := num(&v); got != want {
			t.Errorf("num(%v) = %q, want %q", v, got, want)
		}
	}
}

// recorder is a net.Conn that keeps what is written to it.
type recorder struct {
	net.Conn
	out bytes.Buffer
}

func (r *recorder) Write(p []byte) (int, error) { return r.out.Write(p) }

// TestRatioShowsTheVerdict checks that a ratio prints with a third decimal
// only where two would print its target's bound.
func TestRatioShowsTheVerdict(t *testing.T) {
	f := func(v float64) *float64 { return &v }
	for k, c := range []struct {
		row  Row
		want string
	}{
		{Row{}, "-"},
		{Row{Ratio: f(1.2527)}, "1.25"},               // no target
		{Row{Ratio: f(1.2527), bound: 1.25}, "1.253"}, // fails ≤1.25×
		{Row{Ratio: f(1.2496), bound: 1.25}, "1.250"}, // passes it
		{Row{Ratio: f(1.25), bound: 1.25}, "1.25"},
		{Row{Ratio: f(1.2349), bound: 1.25}, "1.23"},
		{Row{Ratio: f(22.153), bound: 1}, "22.15"},
	} {
		if got := ratio(c.row); got != c.want {
			t.Errorf("case %d: ratio = %q, want %q", k, got, c.want)
		}
	}
}

// TestGeneratorBound checks the rule: the load tool is the limit where it
// used more than 80% of the CPUs the server left.
func TestGeneratorBound(t *testing.T) {
	for _, c := range []struct {
		tool, srv float64
		cpus      int
		want      bool
	}{
		{0.9, 0.9, 2, true},    // 0.9 > 0.8 × 1.1
		{0.87, 0.9, 2, false},  // 0.87 < 0.88
		{0.5, 1.4, 2, true},    // the server left 0.6: 0.5 > 0.48
		{0.4, 1.4, 2, false},   // 0.4 < 0.48
		{1.0, 1.0, 4, false},   // 1.0 < 2.4
		{0.2, 2.0, 2, false},   // the server took every CPU: it is the limit
		{0.95, 0.05, 1, true},  // 0.95 > 0.76
		{0.01, 0.01, 2, false}, // idle
	} {
		if got := generatorBound(c.tool, c.srv, c.cpus); got != c.want {
			t.Errorf("generatorBound(tool %v, server %v, %d CPUs) = %v, want %v", c.tool, c.srv, c.cpus, got, c.want)
		}
	}
}

// fanoutRun is a fan-out run at saturation: deliveries/s, server CPU
// µs/delivery, and CPU seconds of server and tool over a 4 s window.
func fanoutRun(server string, perS, srvUs, srvCPU, toolCPU float64) *Run {
	return &Run{Case: "fanout/telnet/1000", Server: server, Round: 1, Metrics: map[string]float64{
		"sat_deliveries_per_s": perS, "sat_server_us_per_delivery": srvUs, "sat_seconds": 4,
		"sat_server_cpu_s": srvCPU, "sat_tool_cpu_s": toolCPU, "sat_lost": 0, "rate_lost": 0,
	}}
}

// TestRowsCarryBothBaselines checks that the baseline (per read) is the
// headline column whose ratio the targets check, that the naive server
// has a column and a ratio of its own, that only the generator-bound
// runs are named on the rate row, and that cases 1 and 2 have no naive
// column (both baselines echo there).
func TestRowsCarryBothBaselines(t *testing.T) {
	runs := []*Run{
		fanoutRun(kindFastws, 2.4e6, 0.44, 4.2, 3.4),  // tool 0.85 CPUs > 0.8 × 0.95
		fanoutRun(kindBaseline, 2.0e6, 0.5, 4.0, 3.0), // tool 0.75 CPUs < 0.8 × 1.0
		fanoutRun(kindNaive, 0.3e6, 3.3, 4.56, 2.8),   // tool 0.7 CPUs > 0.8 × 0.86
		{Case: "case1/telnet", Server: kindFastws, Round: 1, Metrics: map[string]float64{
			"rt_per_s": 1000, "round_trips": 5000, "server_us_per_rt": 14, "server_cpu_s": 1, "tool_cpu_s": 3, // no "seconds": an old file
		}},
		{Case: "case1/telnet", Server: kindBaseline, Round: 1, Metrics: map[string]float64{
			"rt_per_s": 1000, "seconds": 5, "server_us_per_rt": 10, "server_cpu_s": 1, "tool_cpu_s": 1,
		}},
	}
	rows := buildRows(runs, casesOf(runs), 2)
	find := func(c, key string) Row {
		for _, r := range rows {
			if r.Case == c && r.Key == key {
				return r
			}
		}
		t.Fatalf("no row %s %s in %+v", c, key, rows)
		return Row{}
	}
	rate := find("fanout/telnet/1000", "sat_deliveries_per_s")
	if rate.Baseline == nil || *rate.Baseline != 2.0e6 || rate.Naive == nil || *rate.Naive != 0.3e6 {
		t.Fatalf("deliveries/s row: baseline %v, naive %v; want 2e6, 3e5", num(rate.Baseline), num(rate.Naive))
	}
	if *rate.Ratio != 1.2 || *rate.NaiveRatio != 8 {
		t.Errorf("ratios %v and %v, want 1.2 (to the baseline) and 8 (to naive)", *rate.Ratio, *rate.NaiveRatio)
	}
	if got := strings.Join(rate.GeneratorBound, ","); got != "fastws,naive" {
		t.Errorf("generator-bound %q, want fastws,naive", got)
	}
	cpu := find("fanout/telnet/1000", "sat_server_us_per_delivery")
	if len(cpu.GeneratorBound) != 0 {
		t.Errorf("CPU per delivery marked generator-bound (%v): it is the ratio to read then", cpu.GeneratorBound)
	}
	// ≤0.80× against the baseline: 0.88 fails (against naive, 0.13, it
	// would pass).
	if cpu.Pass == nil || *cpu.Pass || cpu.Target != "≤0.80×" {
		t.Errorf("CPU target %q pass %v, want ≤0.80× FAIL against the baseline", cpu.Target, cpu.Pass)
	}
	rt := find("case1/telnet", "rt_per_s")
	if rt.Naive != nil || rt.NaiveRatio != nil {
		t.Errorf("case 1 has a naive column: %v", num(rt.Naive))
	}
	// fastws: 5 s from round trips over rate, tool 0.6 CPUs > 0.8 × 1.8 is
	// false; baseline: 0.2 CPUs.
	if len(rt.GeneratorBound) != 0 {
		t.Errorf("case 1 generator-bound %v, want none", rt.GeneratorBound)
	}
	runs[3].Metrics["tool_cpu_s"] = 8 // 1.6 CPUs > 0.8 × 1.8
	rows = buildRows(runs, casesOf(runs), 2)
	if rt = find("case1/telnet", "rt_per_s"); strings.Join(rt.GeneratorBound, ",") != "fastws" {
		t.Errorf("case 1 generator-bound %v, want fastws", rt.GeneratorBound)
	}
	var table strings.Builder
	(&Report{Rows: rows, Machine: Machine{CPUs: 2}}).writeTable(&table)
	for _, want := range []string{"NAIVE", "/NAIVE", "generator-bound: fastws, naive", "300,000", "8.00"} {
		if !strings.Contains(table.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, table.String())
		}
	}
	var sum strings.Builder
	(&Report{Rows: rows}).writeSummary(&sum)
	if !strings.Contains(sum.String(), "| naive | /naive |") || !strings.Contains(sum.String(), "(generator-bound: fastws, naive)") {
		t.Errorf("summary lacks the naive column or the generator-bound mark:\n%s", sum.String())
	}
	if svg := (&Report{Rows: rows}).chart(); !strings.Contains(svg, "naive (one AsyncWrite per line per connection)") || !strings.Contains(svg, barColors[2]) {
		t.Error("the chart has no naive bars")
	}
}

// TestFromOldReport checks that -from re-prints a bench.json written
// before the per-read baseline: its fan-out baseline runs were the naive
// server, so they land in the naive column and check no target, while
// case 1 keeps its baseline.
func TestFromOldReport(t *testing.T) {
	old := Report{Machine: Machine{CPUs: 2}, Baseline: "raw gnet v2, naive broadcast", Runs: []*Run{
		fanoutRun(kindFastws, 2.4e6, 0.44, 4.2, 3.4),
		fanoutRun(kindBaseline, 0.3e6, 3.3, 4.56, 2.8),
		{Case: "case1/telnet", Server: kindBaseline, Round: 1, Metrics: map[string]float64{"rt_per_s": 1000, "server_us_per_rt": 10}},
	}}
	js, err := json.Marshal(old)
	if err != nil {
		t.Fatal(err)
	}
	js = bytes.Replace(js, []byte(`"schema":0,`), nil, 1) // as old files have it: no schema
	file := filepath.Join(t.TempDir(), "bench.json")
	if err := os.WriteFile(file, js, 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "out")
	var stdout, stderr strings.Builder
	if code := run([]string{"-from", file, "-out", out}, &stdout, &stderr); code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	var rep Report
	b, err := os.ReadFile(filepath.Join(out, "bench.json"))
	if err == nil {
		err = json.Unmarshal(b, &rep)
	}
	if err != nil {
		t.Fatal(err)
	}
	if rep.Schema != reportSchema {
		t.Errorf("schema %d, want %d", rep.Schema, reportSchema)
	}
	for _, r := range rep.Rows {
		switch {
		case r.Key == "sat_deliveries_per_s":
			if r.Baseline != nil || r.Naive == nil || *r.Naive != 0.3e6 || r.Pass != nil {
				t.Errorf("old fan-out row: baseline %v, naive %v, pass %v; want -, 300,000, none", num(r.Baseline), num(r.Naive), r.Pass)
			}
		case r.Case == "case1/telnet" && r.Key == "rt_per_s":
			if r.Baseline == nil || *r.Baseline != 1000 || r.Naive != nil {
				t.Errorf("old case 1 row: baseline %v, naive %v; want 1000, -", num(r.Baseline), num(r.Naive))
			}
		}
	}
	if !strings.Contains(stdout.String(), "older than the per-read baseline") {
		t.Errorf("the table does not say the file is old:\n%s", stdout.String())
	}
}

// TestNaiveSkipsEchoCases checks that the naive baseline, the same line
// echo as the baseline there, does not run cases 1 and 2.
func TestNaiveSkipsEchoCases(t *testing.T) {
	all := []string{kindFastws, kindBaseline, kindNaive}
	for kind, want := range map[string]string{"case1": "fastws,baseline", "case2": "fastws,baseline", "fanout": "fastws,baseline,naive", "idle": "fastws,baseline,naive"} {
		if got := strings.Join(serversOf(caseDef{kind: kind}, all), ","); got != want {
			t.Errorf("%s runs against %s, want %s", kind, got, want)
		}
	}
}

func caseNames(cs []caseDef) string {
	var names []string
	for _, c := range cs {
		n := c.name
		if c.fastwsOnly {
			n += "(fastws)"
		}
		names = append(names, n)
	}
	return strings.Join(names, ",")
}

// TestSelectCasesAddsTheLobby checks that selecting the busy-room case
// also runs the lobby fan-out it is compared with (against fastws alone
// when only the rooms were asked for), and nothing else.
func TestSelectCasesAddsTheLobby(t *testing.T) {
	o, err := parseFlags(nil, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	all := o.cases()
	for _, tc := range []struct{ only, want string }{
		{"rooms", "fanout/telnet/1000(fastws),rooms/1000-of-10000,rooms/1000x10"},
		{"rooms/1000x10", "rooms/1000x10"},
		{"fanout/telnet", "fanout/telnet/1000,fanout/telnet/10000"},
		{"fanout/telnet/1000$|rooms/1000-", "fanout/telnet/1000,rooms/1000-of-10000"},
	} {
		if got := caseNames(selectCases(all, regexp.MustCompile(tc.only))); got != tc.want {
			t.Errorf("-only %s: %s, want %s", tc.only, got, tc.want)
		}
	}
	if got := caseNames(selectCases(all, nil)); !strings.Contains(got, "fanout/websocket/10000,rooms/1000-of-10000,rooms/1000x10,idle/") || strings.Contains(got, "(fastws)") {
		t.Errorf("every case: %s", got)
	}
	// A room size -fanout does not list: its lobby fan-out is a case of
	// its own, fastws alone.
	o, err = parseFlags([]string{"-fanout", "10000", "-room", "300", "-room-conns", "900"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if got := caseNames(selectCases(o.cases(), regexp.MustCompile("rooms"))); got != "fanout/telnet/300(fastws),rooms/300-of-900,rooms/1000x10" {
		t.Errorf("-room 300: %s", got)
	}
	if _, err := parseFlags([]string{"-room", "300", "-room-conns", "200"}, io.Discard); err == nil {
		t.Error("-room-conns below -room accepted")
	}
}

// TestRoomsRunOnFastwsAlone checks that the baselines, which have no
// rooms, never run a rooms case or a lobby fan-out run only to compare.
func TestRoomsRunOnFastwsAlone(t *testing.T) {
	all := []string{kindFastws, kindBaseline, kindNaive}
	for _, tc := range []struct {
		c       caseDef
		servers []string
		want    string
	}{
		{caseDef{kind: "rooms"}, all, "fastws"},
		{caseDef{kind: "api"}, all, "fastws"},
		{caseDef{kind: "fanout", fastwsOnly: true}, all, "fastws"},
		{caseDef{kind: "fanout"}, all, "fastws,baseline,naive"},
		{caseDef{kind: "rooms"}, []string{kindBaseline}, ""},
	} {
		if got := strings.Join(serversOf(tc.c, tc.servers), ","); got != tc.want {
			t.Errorf("%+v against %v: %q, want %q", tc.c, tc.servers, got, tc.want)
		}
	}
}

func TestSpreadRooms(t *testing.T) {
	got := spreadRooms(25, 10)
	if len(got) != 3 || len(got[0]) != 10 || len(got[2]) != 5 || got[0][0] != "r0" || got[1][9] != "r19" || got[2][4] != "r24" {
		t.Fatalf("spreadRooms(25, 10) = %v", got)
	}
	seen := map[string]bool{}
	for _, names := range spreadRooms(1000, 10) {
		if len(names) > 16 {
			t.Errorf("a sender in %d rooms, past maxRoomsPerMember 16", len(names))
		}
		for _, n := range names {
			if seen[n] {
				t.Errorf("room %s dealt twice", n)
			}
			seen[n] = true
		}
	}
	if len(seen) != 1000 {
		t.Errorf("%d rooms dealt, want 1000", len(seen))
	}
	if p := sayPrefixes([][]string{{"r0", "r1"}}); !slices.Equal(p[0], []string{"#r0 ", "#r1 "}) {
		t.Errorf("sayPrefixes: %q", p)
	}
}

// TestAppendMessage checks that a message said in a room comes back
// through the receivers' parser from the daemon's room line.
func TestAppendMessage(t *testing.T) {
	b := appendMessage([]byte("#r7 "), 1, 42, 1700000000123456789)
	if string(b) != "#r7 FO|1|42|1700000000123456789" {
		t.Fatalf("appendMessage: %q", b)
	}
	line := "[#r7] uid 9: " + strings.TrimPrefix(string(b), "#r7 ")
	i := strings.Index(line, tagMessage)
	ph, ts, ok := parseMessage([]byte(line[i+len(tagMessage):]))
	if !ok || ph != 1 || ts != 1700000000123456789 {
		t.Errorf("parseMessage(%q) = %d, %d, %v", line, ph, ts, ok)
	}
}

// fakeRooms is a daemon that only welcomes and answers /join (refusing
// the room named refuse), recording the rooms joined.
func fakeRooms(t *testing.T, refuse string) (addr string, joins func() []string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var got []string
	var conns []net.Conn
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
	})
	go func() {
		for uid := 1; ; uid++ {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			go func() {
				fmt.Fprintf(c, "* Welcome. You are uid %d.\r\n", uid)
				sc := bufio.NewScanner(c)
				for sc.Scan() {
					name, ok := strings.CutPrefix(sc.Text(), "/join ")
					if !ok {
						continue
					}
					mu.Lock()
					got = append(got, name)
					mu.Unlock()
					if name == refuse {
						fmt.Fprintf(c, "! too many rooms (maxRooms 1)\r\n")
					} else {
						fmt.Fprintf(c, "* you are now in #%s (1 members)\r\n", name)
					}
				}
			}()
		}
	}()
	return ln.Addr().String(), func() []string {
		mu.Lock()
		defer mu.Unlock()
		return slices.Sorted(slices.Values(got))
	}
}

// TestGroupJoinsItsRooms checks that a group's connection i joins room
// (First+i)/RoomSize once welcomed, counts the answers, and counts a
// refusal as an error.
func TestGroupJoinsItsRooms(t *testing.T) {
	addr, joins := fakeRooms(t, "r4")
	g := newLocalGroup(groupSpec{Target: target{Addr: addr, Welcome: true}, N: 5, SrcAddrs: 1, DialConc: 2, BufSize: 4096, RoomSize: 2, First: 3})
	defer g.close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := g.connect(ctx); err != nil {
		t.Fatal(err)
	}
	// Connections 3..7 of the run: rooms 1, 2, 2, 3, 3.
	done := waitFor(ctx, 10*time.Second, func() bool { p := g.progress(); return p.Joined+p.Errors >= 5 })
	p := g.progress()
	if !done || p.Joined != 5 || p.Errors != 0 {
		t.Errorf("joined %d, errors %d (%s); want 5, 0", p.Joined, p.Errors, p.LastError)
	}
	if got := strings.Join(joins(), ","); got != "r1,r2,r2,r3,r3" {
		t.Errorf("joins %s, want r1,r2,r2,r3,r3", got)
	}
	g2 := newLocalGroup(groupSpec{Target: target{Addr: addr, Welcome: true}, N: 2, SrcAddrs: 1, DialConc: 2, BufSize: 4096, RoomSize: 1, First: 4})
	defer g2.close()
	if err := g2.connect(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(ctx, 10*time.Second, func() bool { p := g2.progress(); return p.Joined+p.Errors >= 2 })
	if p := g2.progress(); p.Joined != 1 || p.Errors != 1 || !strings.Contains(p.LastError, "too many rooms") {
		t.Errorf("with r4 refused: joined %d, errors %d (%s); want 1, 1, the refusal", p.Joined, p.Errors, p.LastError)
	}
}

// TestSplitGroups checks that the groups of a run split over worker
// processes number their connections on from each other, so that a
// connection's room does not depend on the process holding it.
func TestSplitGroups(t *testing.T) {
	var got []string
	for _, s := range splitGroups(groupSpec{N: 19, SrcFirst: 1, RoomSize: 5}, 10) {
		got = append(got, fmt.Sprintf("%d@%d/%d", s.N, s.First, s.SrcFirst))
	}
	if strings.Join(got, " ") != "10@0/1 9@10/11" {
		t.Errorf("19 over per-proc 10: %v, want 10@0/1 9@10/11", got)
	}
	if s := splitGroups(groupSpec{N: 7, SrcFirst: 1}, 10); len(s) != 1 || s[0].N != 7 || s[0].First != 0 {
		t.Errorf("7 over per-proc 10: %+v", s)
	}
}

// roomRuns are a lobby fan-out and the rooms cases' runs, at saturation.
func roomRuns(roomRate, roomUs float64) []*Run {
	lobby := fanoutRun(kindFastws, 2.0e6, 0.5, 4, 2)
	busy := &Run{Case: "rooms/1000-of-10000", Server: kindFastws, Round: 1, Metrics: map[string]float64{
		"sat_deliveries_per_s": roomRate, "sat_server_us_per_delivery": roomUs, "sat_seconds": 4,
		"sat_server_cpu_s": 4, "sat_tool_cpu_s": 2, "sat_lost": 0, "rate_lost": 0, "room_receivers": 1000, "vs_lobby": 1,
	}}
	many := &Run{Case: "rooms/1000x10", Server: kindFastws, Round: 1, Metrics: map[string]float64{
		"sat_deliveries_per_s": 1.5e6, "sat_server_us_per_delivery": 0.7, "sat_seconds": 4,
		"sat_server_cpu_s": 4, "sat_tool_cpu_s": 2, "sat_lost": 0, "room_receivers": 10,
	}}
	return []*Run{lobby, busy, many}
}

// TestRoomRows checks the rooms rows: fastws alone (no baseline, ratio
// "-"), and the busy room divided by the lobby fan-out of the same
// invocation, checked against the rooms' 10%.
func TestRoomRows(t *testing.T) {
	rows := buildRows(roomRuns(1.9e6, 0.56), casesOf(roomRuns(0, 0)), 2)
	find := func(c, key string) *Row {
		for i := range rows {
			if rows[i].Case == c && rows[i].Key == key {
				return &rows[i]
			}
		}
		return nil
	}
	rate := find("rooms/1000-of-10000", "sat_deliveries_per_s"+vsLobby)
	if rate == nil || rate.Fastws == nil || *rate.Fastws != 0.95 || rate.Target != "≥0.90× lobby" || rate.Pass == nil || !*rate.Pass {
		t.Fatalf("deliveries ÷ lobby: %+v, want 0.95, ≥0.90× lobby pass", rate)
	}
	cpu := find("rooms/1000-of-10000", "sat_server_us_per_delivery"+vsLobby)
	if cpu == nil || cpu.Target != "≤1.10× lobby" || cpu.Pass == nil || *cpu.Pass {
		t.Fatalf("CPU ÷ lobby (1.12): %+v, want ≤1.10× lobby FAIL", cpu)
	}
	if r := find("rooms/1000-of-10000", "sat_deliveries_per_s"); r == nil || r.Baseline != nil || r.Ratio != nil || r.Naive != nil {
		t.Errorf("rooms deliveries row %+v: want no baseline, no ratio", r)
	}
	if find("rooms/1000x10", "sat_deliveries_per_s"+vsLobby) != nil {
		t.Error("rooms/1000x10 is compared with the lobby")
	}
	if r := find("rooms/1000x10", "sat_server_us_per_delivery"); r == nil || *r.Fastws != 0.7 {
		t.Errorf("rooms/1000x10 CPU row %+v", r)
	}
	var table strings.Builder
	(&Report{Rows: rows, Machine: Machine{CPUs: 2}}).writeTable(&table)
	for _, want := range []string{"÷ fanout/telnet/1000 fastws 2,000,000", "≤1.10× lobby FAIL", "rooms: fastws alone"} {
		if !strings.Contains(table.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, table.String())
		}
	}
	for _, line := range strings.Split(table.String(), "\n") {
		if strings.Contains(line, "deliveries/s, saturation, ÷ lobby") {
			if f := strings.Fields(line); !slices.Contains(f, "0.95") || !slices.Contains(f, "-") {
				t.Errorf("÷ lobby row %q: want 0.95 and no ratio (-)", line)
			}
		}
	}
	var sum strings.Builder
	(&Report{Rows: rows}).writeSummary(&sum)
	if !strings.Contains(sum.String(), "| rooms/1000x10 | deliveries/s, saturation | 1,500,000 | - | - |") {
		t.Errorf("summary lacks the rooms/1000x10 rate:\n%s", sum.String())
	}
	// A quotient just under the bound prints a third decimal.
	rows = buildRows(roomRuns(1.799e6, 0.5), casesOf(roomRuns(0, 0)), 2)
	if r := find("rooms/1000-of-10000", "sat_deliveries_per_s"+vsLobby); r.fastws() != "0.899" || *r.Pass {
		t.Errorf("0.8995× prints %s (pass %v), want 0.899 FAIL", r.fastws(), *r.Pass)
	}
	// Without a lobby run nothing is compared.
	rows = buildRows(roomRuns(1.9e6, 0.5)[1:], casesOf(roomRuns(0, 0)[1:]), 2)
	if find("rooms/1000-of-10000", "sat_deliveries_per_s"+vsLobby) != nil {
		t.Error("compared with a lobby run that is not there")
	}
}

// TestAPICase checks that the api case is in the suite, and left out for
// a daemon built with -src, which may have no [api].
func TestAPICase(t *testing.T) {
	o, err := parseFlags(nil, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if got := caseNames(selectCases(o.cases(), regexp.MustCompile("^api"))); got != "api/send/1000" {
		t.Errorf("-only ^api: %s, want api/send/1000", got)
	}
	o, err = parseFlags([]string{"-src", "/elsewhere"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if got := caseNames(selectCases(o.cases(), regexp.MustCompile("^api"))); got != "" {
		t.Errorf("with -src: %s, want no api case", got)
	}
}

// TestFanOutAndRoundTripTargets checks the targets of cases 1 and 2
// and of fan-out:
// against the baseline, stricter at 10,000 receivers than at 1000.
func TestFanOutAndRoundTripTargets(t *testing.T) {
	cases := []caseDef{
		{name: "case1/telnet", kind: "case1", n: 2}, {name: "case2/telnet/1000", kind: "case2", n: 1000},
		{name: "fanout/telnet/1000", kind: "fanout", n: 1000}, {name: "fanout/websocket/10000", kind: "fanout", ws: true, n: 10000},
	}
	want := map[string]string{
		"case1/telnet server_us_per_rt":                     "≤1.05×",
		"case2/telnet/1000 server_us_per_rt":                "≤1.05×",
		"fanout/telnet/1000 sat_deliveries_per_s":           "≥1.00×",
		"fanout/telnet/1000 sat_server_us_per_delivery":     "≤0.80×",
		"fanout/websocket/10000 sat_deliveries_per_s":       "≥1.50×",
		"fanout/websocket/10000 sat_server_us_per_delivery": "≤0.60×",
	}
	for _, c := range cases {
		for _, d := range rowDefs[c.kind] {
			k := c.name + " " + d.key
			w, ok := want[k]
			if !ok {
				continue
			}
			delete(want, k)
			g := d.tgt(c)
			if g == nil || !g.ratio {
				t.Errorf("%s: target %+v, want a ratio %s", k, g, w)
				continue
			}
			if got, _ := g.check(Row{}); got != w {
				t.Errorf("%s: target %s, want %s", k, got, w)
			}
		}
	}
	for k := range want {
		t.Errorf("%s: no row", k)
	}
}

// TestClusterAgainstOneNode checks the cluster fan-out's rows against the
// single node of the same invocation: deliveries/s divided (median of the
// single runs), p99 at the fixed rate less the single node's, and the
// cluster's targets on them.
func TestClusterAgainstOneNode(t *testing.T) {
	single := func(perS, p99 float64) *Run {
		return &Run{Case: "fanout/telnet/1000", Server: kindFastws, Round: 1, Metrics: map[string]float64{"sat_deliveries_per_s": perS, "rate_p99_ms": p99}}
	}
	runs := []*Run{
		single(3e6, 9), single(4e6, 10), single(2e6, 30), // median 3e6 and 10 ms
		{Case: "cluster/fanout/2x500", Server: kindFastws, Round: 1, Metrics: map[string]float64{"sat_deliveries_per_s": 2.4e6, "rate_p99_ms": 13}},
	}
	rows := buildRows(runs, casesOf(runs), 2)
	got := map[string]Row{}
	for _, r := range rows {
		got[r.Case+" "+r.Key] = r
	}
	ratio, ok1 := got["cluster/fanout/2x500 sat_deliveries_per_s"+vsSingle]
	p99, ok2 := got["cluster/fanout/2x500 rate_p99_ms"+overSingle]
	if !ok1 || !ok2 {
		t.Fatalf("rows %v: no cluster row against one node", rows)
	}
	if *ratio.Fastws != 0.8 || ratio.Pass == nil || !*ratio.Pass || ratio.Target != "≥0.70× one node" {
		t.Errorf("deliveries ÷ one node: %v, target %q pass %v; want 0.8, ≥0.70× one node, pass", *ratio.Fastws, ratio.Target, ratio.Pass)
	}
	if *p99.Fastws != 3 || p99.Pass == nil || *p99.Pass || p99.Target != "≤2 ms over one node" {
		t.Errorf("p99 - one node: %v, target %q pass %v; want 3, ≤2 ms over one node, FAIL", *p99.Fastws, p99.Target, p99.Pass)
	}
	if !strings.Contains(ratio.Versus, "fanout/telnet/1000") {
		t.Errorf("versus %q does not name the single-node case", ratio.Versus)
	}
}

// TestTLSRows checks that the TLS cases' plain and TLS runs become rows
// of the TLS figures and their quotients over plain, with TLS's targets.
func TestTLSRows(t *testing.T) {
	runs := []*Run{
		{Case: "tls/idle/10000", Server: kindPlain, Round: 1, Metrics: map[string]float64{"rss_kib_per_conn": 1.5}},
		{Case: "tls/idle/10000", Server: kindTLS, Round: 1, Metrics: map[string]float64{"rss_kib_per_conn": 15}},
		{Case: "tls/fanout/1000", Server: kindPlain, Round: 1, Metrics: map[string]float64{"deliveries_per_s": 1e6, "server_us_per_delivery": 1}},
		{Case: "tls/fanout/1000", Server: kindTLS, Round: 1, Metrics: map[string]float64{"deliveries_per_s": 4e5, "server_us_per_delivery": 1.5}},
	}
	rows := buildRows(runs, casesOf(runs), 2)
	got := map[string]Row{}
	for _, r := range rows {
		got[r.Case+" "+r.Key] = r
	}
	idle := got["tls/idle/10000 rss_kib_per_conn"]
	if idle.Fastws == nil || *idle.Fastws != 15 || idle.Pass == nil || !*idle.Pass {
		t.Errorf("idle TLS row %+v: want 15 KiB, passing ≤16 KiB", idle)
	}
	if p := got["tls/idle/10000 plain_rss_kib_per_conn"]; p.Fastws == nil || *p.Fastws != 1.5 {
		t.Errorf("idle plain row %+v: want 1.5", p)
	}
	fan := got["tls/fanout/1000 deliveries_per_s"+vsPlain]
	if fan.Fastws == nil || *fan.Fastws != 0.4 || fan.Pass == nil || *fan.Pass || fan.Target != "≥0.50× plain" {
		t.Errorf("fan-out ÷ plain row %+v: want 0.4, ≥0.50× plain, FAIL", fan)
	}
	if c := got["tls/fanout/1000 server_us_per_delivery"+vsPlain]; c.Fastws == nil || *c.Fastws != 1.5 {
		t.Errorf("CPU ÷ plain row %+v: want 1.5", c)
	}
}
