package main

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/fastws/fastws/status"
)

// TestReloadFailureIsHonest drives the binary through a reload whose
// addresses are taken: a changed instance that would move to a taken port
// keeps serving its old one, an added instance on a taken port is down;
// `fastws reload` fails naming both and their addresses, the log has no
// "reloaded", and status (table and JSON) shows each with its error until
// a reload after the ports are freed starts them.
func TestReloadFailureIsHonest(t *testing.T) {
	var taken [2]net.Listener
	var ports [2]int
	for k := range taken {
		ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(freePort(t)))
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		taken[k], ports[k] = ln, ln.Addr().(*net.TCPAddr).Port
	}
	first := freePort(t)
	cfg := writeConfig(t, "", first)
	d := startForeground(t, cfg)
	stay := dialTelnet(t, first)
	defer stay.Close()

	orig, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	moved := strings.Replace(string(orig), "port = "+strconv.Itoa(first), "port = "+strconv.Itoa(ports[0]), 1) +
		fmt.Sprintf("[instance.added]\ninstanceName = Added\nprotocol = telnet\nhost = 127.0.0.1\nport = %d\n", ports[1])
	if err := os.WriteFile(cfg, []byte(moved), 0o644); err != nil {
		t.Fatal(err)
	}
	out, stderr, code := runCLI(t, "-c", cfg, "reload")
	if code != 1 {
		t.Fatalf("reload onto taken ports: got exit %d, output %q %q; want 1", code, out, stderr)
	}
	for _, want := range []string{
		fmt.Sprintf("instance Telnet-0: listen 127.0.0.1:%d: bind: address already in use; it keeps serving 127.0.0.1:%d with its previous settings", ports[0], first),
		fmt.Sprintf("instance Added: listen 127.0.0.1:%d: bind: address already in use", ports[1]),
	} {
		if !strings.Contains(stderr, want) {
			t.Errorf("reload said %q, want %q in it", stderr, want)
		}
	}
	if strings.Contains(out, "reloaded") {
		t.Errorf("reload printed %q on failure", out)
	}

	table, _, code := runCLI(t, "-c", cfg, "status")
	if code != 0 {
		t.Fatalf("status: exit %d", code)
	}
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(fmt.Sprintf(`(?m)^Telnet-0\s+telnet\s+127\.0\.0\.1:%d\s.*\sstale$`, first)),
		regexp.MustCompile(fmt.Sprintf(`(?m)^Added\s+telnet\s+127\.0\.0\.1:%d\s.*\sdown$`, ports[1])),
		regexp.MustCompile(regexp.QuoteMeta(fmt.Sprintf("Telnet-0 stale: instance Telnet-0: listen 127.0.0.1:%d: bind: address already in use", ports[0]))),
		regexp.MustCompile(regexp.QuoteMeta(fmt.Sprintf("Added down: instance Added: listen 127.0.0.1:%d: bind: address already in use", ports[1]))),
	} {
		if !want.MatchString(table) {
			t.Errorf("status:\n%s\nwant a line with %q", table, want)
		}
	}
	snap := statusSnapshot(t, cfg)
	if len(snap.Instances) != 2 {
		t.Fatalf("status --json lists %d instances, want 2", len(snap.Instances))
	}
	if in := snap.Instances[0]; !in.Listening || !strings.Contains(in.Error, "keeps serving") {
		t.Errorf("status --json: Telnet-0 listening %v, error %q; want listening with the error", in.Listening, in.Error)
	}
	if in := snap.Instances[1]; in.Listening || !strings.Contains(in.Error, "address already in use") {
		t.Errorf("status --json: Added listening %v, error %q; want down with the error", in.Listening, in.Error)
	}

	for _, ln := range taken {
		ln.Close()
	}
	if out, stderr, code := runCLI(t, "-c", cfg, "reload"); code != 0 {
		t.Fatalf("reload once the ports are free: exit %d, %q %q", code, out, stderr)
	}
	for k, in := range statusSnapshot(t, cfg).Instances {
		if !in.Listening || in.Error != "" || in.Listen != "127.0.0.1:"+strconv.Itoa(ports[k]) {
			t.Errorf("after the second reload %s: listening %v on %s, error %q; want listening on port %d, no error",
				in.Name, in.Listening, in.Listen, in.Error, ports[k])
		}
	}

	_ = d.cmd.Process.Signal(syscall.SIGINT)
	if code := d.wait(t); code != 0 {
		t.Fatalf("exit %d after SIGINT", code)
	}
	var reloads []string
	for _, l := range strings.Split(d.stderr.String(), "\n") {
		if strings.Contains(l, "msg=reload") || strings.Contains(l, `msg="reload`) {
			reloads = append(reloads, l)
		}
	}
	if len(reloads) != 2 || !strings.Contains(reloads[0], `msg="reload incomplete"`) || !strings.Contains(reloads[1], "msg=reloaded") {
		t.Errorf("log has reload lines %q, want one incomplete, then one reloaded", reloads)
	}
}

// dialTelnet connects to a telnet instance on 127.0.0.1:port.
func dialTelnet(t *testing.T, port int) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(port), testTimeout)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// statusSnapshot runs `status --json` and decodes it.
func statusSnapshot(t *testing.T, cfg string) status.Snapshot {
	t.Helper()
	out, stderr, code := runCLI(t, "-c", cfg, "status", "--json")
	if code != 0 {
		t.Fatalf("status --json: exit %d: %s", code, stderr)
	}
	var snap status.Snapshot
	if err := json.Unmarshal([]byte(out), &snap); err != nil {
		t.Fatalf("status --json: %v\n%s", err, out)
	}
	return snap
}
