package main

import (
	"encoding/json"
	"net"
	"strconv"
	"testing"

	"github.com/fastws/fastws/status"
)

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
