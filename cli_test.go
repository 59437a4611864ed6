package main

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// These tests drive the real binary, built once with -race, the way users
// do.

const testTimeout = 15 * time.Second

var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "fastws-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "fastws")
	build := exec.Command("go", "build", "-race", "-o", binary, ".")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build:", err)
		os.Exit(1)
	}
	// The tests here mostly wait, on processes and on timeouts; -parallel's
	// default, GOMAXPROCS, would run two at a time on a 2-core machine.
	flag.Parse()
	if !parallelSet() {
		_ = flag.Set("test.parallel", "16")
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// parallelSet reports whether -test.parallel was given.
func parallelSet() (set bool) {
	flag.Visit(func(f *flag.Flag) { set = set || f.Name == "test.parallel" })
	return set
}

// freePort returns a port that was free a moment ago.
//
// It hands out ports below the kernel's ephemeral range (32768 on), in
// which every other package's test servers (port 0) and every client
// connection take theirs: a port found free there could be taken by one
// of them, running in parallel, before the daemon binds it. Here, only
// this package's tests take ports, each a new one.
func freePort(t testing.TB) int {
	t.Helper()
	for range freePorts {
		p := freePortBase + int(nextPort.Add(1))%freePorts
		ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
		if err == nil {
			ln.Close()
			return p
		}
	}
	t.Fatalf("no free port in %d-%d", freePortBase, freePortBase+freePorts-1)
	return 0
}

// freePortBase and freePorts are the range freePort takes ports from,
// below the ephemeral range and above the shipped config's 19910-19990;
// server/daemon's tests, which go test runs at the same time, take theirs
// from 26000 up.
const freePortBase, freePorts = 20000, 6000

// nextPort starts at a random place, so that two runs of these tests at
// once do not walk the range in step.
var nextPort = func() *atomic.Int64 {
	var n atomic.Int64
	n.Store(rand.Int64N(freePorts))
	return &n
}()

// writeConfig writes a config.ini into a temp dir: the [fastws] section
// gets extra, then one telnet instance per port.
func writeConfig(t testing.TB, extra string, ports ...int) string {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "[fastws]\nrunDir = ./run\nmetricsListen =\nmessagesPerSecond = 0\n%s\n", extra)
	for k, p := range ports {
		fmt.Fprintf(&b, "[instance.t%d]\ninstanceName = Telnet-%d\nprotocol = telnet\nhost = 127.0.0.1\nport = %d\nchildProcessCount = 2\n\n", k, k, p)
	}
	path := filepath.Join(t.TempDir(), "config.ini")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// runCLI runs the binary to completion.
func runCLI(t testing.TB, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(binary, args...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		return o.String(), e.String(), ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run %v: %v", args, err)
	}
	return o.String(), e.String(), 0
}

// lines collects a reader's lines on a channel.
func lines(r io.Reader) <-chan string {
	ch := make(chan string, 1024)
	go func() {
		defer close(ch)
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			ch <- strings.TrimRight(sc.Text(), "\r")
		}
	}()
	return ch
}

// waitLine reads from ch until a line matches re; it fails on timeout or
// end of output.
func waitLine(t testing.TB, who string, ch <-chan string, re *regexp.Regexp) []string {
	t.Helper()
	deadline := time.After(testTimeout)
	for {
		select {
		case l, ok := <-ch:
			if !ok {
				t.Fatalf("%s: output ended before a line matching %q", who, re)
			}
			if m := re.FindStringSubmatch(l); m != nil {
				return m
			}
		case <-deadline:
			t.Fatalf("%s: no line matching %q within %s", who, re, testTimeout)
		}
	}
}

// fgDaemon is a `fastws start` running in the foreground.
type fgDaemon struct {
	cmd    *exec.Cmd
	stdout <-chan string
	stderr *bytes.Buffer
	exited chan struct{}
}

func startForeground(t *testing.T, cfg string) *fgDaemon {
	t.Helper()
	return startCmd(t, exec.Command(binary, "-c", cfg, "start"))
}

// startCmd runs cmd, a `fastws start` in the foreground, until its start
// screen is printed, and kills it when the test ends if it still runs.
func startCmd(t *testing.T, cmd *exec.Cmd) *fgDaemon {
	t.Helper()
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	d := &fgDaemon{cmd: cmd, stdout: lines(out), stderr: &bytes.Buffer{}, exited: make(chan struct{})}
	cmd.Stderr = d.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		select {
		case <-d.exited:
		default:
			_ = cmd.Process.Kill()
			<-d.exited
		}
	})
	go func() { _ = cmd.Wait(); close(d.exited) }()
	waitLine(t, "daemon", d.stdout, regexp.MustCompile(`^Press Ctrl-C to stop\.$`))
	return d
}

// wait waits for the daemon to exit and returns its exit code.
func (d *fgDaemon) wait(t *testing.T) int {
	t.Helper()
	select {
	case <-d.exited:
		return d.cmd.ProcessState.ExitCode()
	case <-time.After(testTimeout):
		t.Fatalf("daemon did not exit within %s", testTimeout)
		return -1
	}
}

// telnet is a real telnet client process.
type telnet struct {
	cmd *exec.Cmd
	in  io.WriteCloser
	out <-chan string
	uid string
}

// telnetGreeting is the option negotiation in front of a telnet
// instance's welcome (TRANSMIT-BINARY both ways), which a real telnet
// client consumes and a raw socket reads.
const telnetGreeting = "\xff\xfb\x00\xff\xfd\x00"

// ungreet returns a line without telnetGreeting in front.
func ungreet(line string) string { return strings.TrimPrefix(line, telnetGreeting) }

var welcome = regexp.MustCompile(`^Welcome to fastws! You are uid (\d+)\.`)

func startTelnet(t *testing.T, port int) *telnet {
	t.Helper()
	if _, err := exec.LookPath("telnet"); err != nil {
		t.Skip("telnet is not installed; scripts/test.sh installs it (Debian package telnet)")
	}
	cmd := exec.Command("telnet", "127.0.0.1", strconv.Itoa(port))
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatalf("telnet: %v", err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	tc := &telnet{cmd: cmd, in: in, out: lines(out)}
	tc.uid = waitLine(t, "telnet", tc.out, welcome)[1]
	return tc
}

func (tc *telnet) say(t *testing.T, line string) {
	t.Helper()
	if _, err := io.WriteString(tc.in, line+"\n"); err != nil {
		t.Fatalf("telnet uid %s: write: %v", tc.uid, err)
	}
}

func (tc *telnet) expect(t *testing.T, line string) {
	t.Helper()
	waitLine(t, "telnet uid "+tc.uid, tc.out, regexp.MustCompile("^"+regexp.QuoteMeta(line)+"$"))
}

func TestRealTelnetClientsChatAndGracefulStop(t *testing.T) {
	t.Parallel()
	port := freePort(t)
	d := startForeground(t, writeConfig(t, "", port))
	a := startTelnet(t, port)
	b := startTelnet(t, port)
	a.expect(t, "* uid "+b.uid+" joined")

	a.say(t, "hello from a")
	b.expect(t, "uid "+a.uid+": hello from a")
	a.expect(t, "uid "+a.uid+": hello from a")
	b.say(t, "你好 from b")
	a.expect(t, "uid "+b.uid+": 你好 from b")

	a.say(t, "$"+b.uid+":just for you")
	b.expect(t, "uid "+a.uid+" (private): just for you")
	a.expect(t, "(to uid "+b.uid+"): just for you")

	if err := d.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	for _, c := range []*telnet{a, b} {
		c.expect(t, "* server is shutting down")
		c.expect(t, "Connection closed by foreign host.")
	}
	if code := d.wait(t); code != 0 {
		t.Fatalf("got exit code %d after SIGINT, want 0; stderr:\n%s", code, d.stderr)
	}
}

func TestSecondSignalForcesExit(t *testing.T) {
	t.Parallel()
	port := freePort(t)
	d := startForeground(t, writeConfig(t, "maxSendBuffer = 256M\nstopTimeout = 1m", port))
	// A client that never reads, with a small receive buffer (see
	// smallReceiver): the graceful stop waits for it.
	stuck, err := smallReceiver().Dial("tcp", "127.0.0.1:"+strconv.Itoa(port))
	if err != nil {
		t.Fatal(err)
	}
	defer stuck.Close()
	talker := startTelnet(t, port)
	big := strings.Repeat("x", 60000)
	for k := 0; k < 200; k++ {
		talker.say(t, big)
	}
	talker.say(t, "$"+talker.uid+":done")
	talker.expect(t, "uid "+talker.uid+" (private): done")

	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	waitLine(t, "daemon", d.stdout, regexp.MustCompile(`^stopping`))
	_ = d.cmd.Process.Signal(syscall.SIGINT)
	if code := d.wait(t); code != 1 {
		t.Fatalf("got exit code %d after a second signal, want 1", code)
	}
	if !strings.Contains(d.stderr.String(), "forced exit") {
		t.Errorf("stderr %q does not say the exit was forced", d.stderr)
	}
}

// TestBindFailure: a port in use stops `start` and `start -d` alike with
// exit 1, naming the instance and address, and leaves nothing listening and
// no pidfile or socket behind.
func TestBindFailure(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() }) // not defer: the subtests run after this function returns
	taken := ln.Addr().(*net.TCPAddr).Port
	for _, args := range [][]string{{"start"}, {"start", "-d"}} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			t.Parallel()
			free := freePort(t)
			cfg := writeConfig(t, "", free, taken)
			_, stderr, code := runCLI(t, append([]string{"-c", cfg}, args...)...)
			if code != 1 {
				t.Fatalf("got exit code %d, want 1; stderr:\n%s", code, stderr)
			}
			want := fmt.Sprintf("instance Telnet-1: listen 127.0.0.1:%d: ", taken)
			if !strings.Contains(stderr, want) || !strings.Contains(stderr, "address already in use") {
				t.Errorf("stderr %q does not name the instance and address (%q)", stderr, want)
			}
			if n := strings.Count(stderr, fmt.Sprint(taken)); n != 1 {
				t.Errorf("stderr %q names the address %d times, want once", stderr, n)
			}
			entries, _ := os.ReadDir(filepath.Join(filepath.Dir(cfg), "run"))
			for _, e := range entries {
				if e.Name() != "fastws.log" {
					t.Errorf("runDir holds %s after a failed start", e.Name())
				}
			}
			// Nothing is left listening on the instance that did bind.
			if c, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(free)); err == nil {
				c.Close()
				t.Errorf("port %d still accepts after the failed start", free)
			}
		})
	}
}

func TestCheck(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ config, want string }{
		{writeConfig(t, "", 19000), "config OK: 1 instance (Telnet-0)\n"},
		{writeConfig(t, "", 19000, 19001), "config OK: 2 instances (Telnet-0, Telnet-1)\n"},
		{"config.ini", "config OK: 2 instances (FastWS-Telnet, FastWS-WebSocket)\n"}, // the shipped one
	} {
		out, errOut, code := runCLI(t, "-c", tt.config, "check")
		if code != 0 || out != tt.want {
			t.Errorf("check of %s: got exit %d, output %q %q; want 0 and %q", tt.config, code, out, errOut, tt.want)
		}
	}
	bad := filepath.Join(t.TempDir(), "config.ini")
	os.WriteFile(bad, []byte("[fastws]\nbogus = 1\n[instance.t]\ninstanceName = T\nprotocol = telnet\nport = abc\n"), 0o644)
	_, stderr, code := runCLI(t, "-c", bad, "check")
	if code != 2 {
		t.Errorf("check of a bad config: got exit %d, want 2", code)
	}
	for _, want := range []string{
		`config.ini:2: [fastws] bogus = "1": unknown key`,
		`config.ini:6: [instance.t] port = "abc": not a port (1-65535)`,
	} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr %q does not contain %q", stderr, want)
		}
	}
	missing := filepath.Join(t.TempDir(), "missing.ini")
	_, stderr, code = runCLI(t, "-c", missing, "check")
	if want := "fastws: config file " + missing + " not found\n"; code != 2 || stderr != want {
		t.Errorf("check of a missing file: got exit %d, stderr %q; want 2 and %q", code, stderr, want)
	}
}

// TestMissingDefaultConfig: with no -c and no config.ini in the working
// folder, every verb that needs one says where it looked and what to do.
func TestMissingDefaultConfig(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, verb := range []string{"start", "start -d", "check", "status", "stop", "reload"} {
		t.Run(verb, func(t *testing.T) {
			t.Parallel()
			cmd := exec.Command(binary, strings.Fields(verb)...)
			cmd.Dir = dir
			var errOut bytes.Buffer
			cmd.Stderr = &errOut
			err := cmd.Run()
			code := 0
			if ee, ok := err.(*exec.ExitError); ok {
				code = ee.ExitCode()
			}
			want := "config.ini not found in " + dir + "; pass -c FILE"
			if code != 2 || !strings.Contains(errOut.String(), want) {
				t.Errorf("got exit %d, stderr %q; want 2 and %q", code, errOut.String(), want)
			}
		})
	}
}

// TestNotRunningSaidOnce: the verbs that need a running daemon say once
// that it is not running, and why.
func TestNotRunningSaidOnce(t *testing.T) {
	t.Parallel()
	cfg := writeConfig(t, "", freePort(t))
	for _, verb := range []string{"status", "connections", "stop", "kill", "reload"} {
		t.Run(verb, func(t *testing.T) {
			t.Parallel()
			_, stderr, code := runCLI(t, "-c", cfg, verb)
			if code != 1 || strings.Count(stderr, "not running") != 1 || !strings.Contains(stderr, "does not exist") {
				t.Errorf("got exit %d, stderr %q; want 1 and 'not running' once, with the reason", code, stderr)
			}
		})
	}
}

func TestUsage(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		args []string
		code int
		out  string
	}{
		{"version", []string{"version"}, 0, "fastws 0."},
		{"--version", []string{"--version"}, 0, "fastws 0."},
		{"-version", []string{"-version"}, 0, "fastws 0."},
		{"help", []string{"help"}, 0, "Usage:"},
		{"-h", []string{"-h"}, 0, "Usage:"},
		{"--help", []string{"--help"}, 0, "Usage:"},
		{"verb -h", []string{"start", "-h"}, 0, "Usage:"},
		{"no verb", nil, 2, "Usage:"},
		{"unknown verb", []string{"frobnicate"}, 2, `unknown command "frobnicate"`},
		{"bad flag", []string{"-x", "start"}, 2, "flag provided but not defined"},
		{"extra argument", []string{"check", "now"}, 2, `unexpected argument "now"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			out, errOut, code := runCLI(t, tt.args...)
			if code != tt.code || !strings.Contains(out+errOut, tt.out) {
				t.Errorf("got exit %d, output %q; want %d and %q", code, out+errOut, tt.code, tt.out)
			}
			// What was asked for goes to stdout; usage shown for a
			// mistake, to stderr.
			if tt.code == 0 && (errOut != "" || out == "") || tt.code != 0 && out != "" {
				t.Errorf("got stdout %q, stderr %q; want exit 0's output on stdout only, and nothing on stdout otherwise", out, errOut)
			}
		})
	}
}

// TestInterruptExitsZero: Ctrl-C stops a foreground start gracefully and
// the exit status says so, with no telnet needed. (`go run . start` exits
// 1 on Ctrl-C whatever the program does: the go command records the
// interrupt itself, golang/go#40467; README says to build first.)
func TestInterruptExitsZero(t *testing.T) {
	t.Parallel()
	d := startForeground(t, writeConfig(t, "", freePort(t)))
	if err := d.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	if code := d.wait(t); code != 0 {
		t.Fatalf("got exit %d after SIGINT, want 0; stderr:\n%s", code, d.stderr)
	}
}
