package daemon

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fastws/fastws/server/config"
)

// These tests run the daemon in-process, each on its own runDir and
// ports, most of them in parallel. The command-line verbs and what only a
// process shows (start -d, pidfiles of dead processes, signals, fds 1 and
// 2) are tested on the built binary, in package main.

const testTimeout = 15 * time.Second

// freePort returns a port that was free a moment ago, for a config file a
// reload reads again (port 0 would move the instance). It takes ports below
// the ephemeral range, from a random start, in a range of its own: package
// main's tests, which go test runs at the same time, take theirs below.
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

const freePortBase, freePorts = 26000, 6000

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

// loadConfig is writeConfig then config.Load; a port 0 (which the file
// cannot say) becomes port 0 in the loaded config, for the kernel to
// choose. So does metricsListen 127.0.0.1:0 set on the result.
func loadConfig(t testing.TB, extra string, ports ...int) *config.Config {
	t.Helper()
	file := make([]int, len(ports))
	for k, p := range ports {
		file[k] = p
		if p == 0 {
			file[k] = 1 + k // replaced below; distinct, or the config is refused
		}
	}
	cfg, err := config.Load(writeConfig(t, extra, file...))
	if err != nil {
		t.Fatal(err)
	}
	for k, p := range ports {
		if p == 0 {
			cfg.Instances[k].Port = 0
		}
	}
	return cfg
}

// testDaemon is a daemon started in-process.
type testDaemon struct {
	*Daemon
	stop func() error // stops it, if the test did not, and returns Wait's error
}

// startDaemon starts a daemon on cfg and stops it when the test ends.
func startDaemon(t testing.TB, cfg *config.Config, o Options) *testDaemon {
	t.Helper()
	d, err := Start(t.Context(), cfg, o)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	td := &testDaemon{Daemon: d}
	td.stop = func() error {
		d.Stop(0)
		return d.Wait()
	}
	t.Cleanup(func() { _ = td.stop() })
	return td
}

// port returns the port instance name is bound to.
func (d *testDaemon) port(t testing.TB, name string) int {
	t.Helper()
	_, p, err := net.SplitHostPort(d.Addrs()[name])
	if err != nil {
		t.Fatalf("instance %s: %v (addresses %v)", name, err, d.Addrs())
	}
	n, _ := strconv.Atoi(p)
	return n
}

// telnetGreeting is the option negotiation in front of a telnet
// instance's welcome (TRANSMIT-BINARY both ways).
const telnetGreeting = "\xff\xfb\x00\xff\xfd\x00"

// ungreet returns a line without telnetGreeting in front.
func ungreet(line string) string { return strings.TrimPrefix(line, telnetGreeting) }

var welcome = regexp.MustCompile(`^Welcome to fastws! You are uid (\d+)\.`)
