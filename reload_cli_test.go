package main

import (
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

// statusSnapshot runs `status --json` with the built binary and decodes it.
func statusSnapshot(t *testing.T, cfg string) status.Snapshot {
	return statusAs[status.Snapshot](t, runCLI, cfg)
}
