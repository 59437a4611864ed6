package main

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// writeMetricsConfig is writeConfig with metricsListen on 127.0.0.1:port.
func writeMetricsConfig(t *testing.T, extra string, port int, ports ...int) string {
	t.Helper()
	cfg := writeConfig(t, extra, ports...)
	b, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	b = bytes.Replace(b, []byte("metricsListen =\n"), fmt.Appendf(nil, "metricsListen = 127.0.0.1:%d\n", port), 1)
	if err := os.WriteFile(cfg, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return cfg
}

func TestMetricsBindFailure(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	taken := ln.Addr().(*net.TCPAddr).Port
	free := freePort(t)
	cfg := writeMetricsConfig(t, "", taken, free)
	for _, args := range [][]string{{"start"}, {"start", "-d"}} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			_, stderr, code := runCLI(t, append([]string{"-c", cfg}, args...)...)
			if code != 1 {
				t.Fatalf("got exit code %d, want 1; stderr:\n%s", code, stderr)
			}
			want := fmt.Sprintf("metricsListen: listen tcp 127.0.0.1:%d: ", taken)
			if !strings.Contains(stderr, want) || !strings.Contains(stderr, "address already in use") {
				t.Errorf("stderr %q does not name metricsListen and the address (%q)", stderr, want)
			}
			// The instances start after the metrics endpoint: nothing listens.
			if c, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(free)); err == nil {
				c.Close()
				t.Errorf("port %d accepts after the failed start", free)
			}
			for _, f := range []string{"fastws.pid", "fastws.sock"} {
				if path := filepath.Join(runDir(cfg), f); exists(path) {
					t.Errorf("%s is left after the failed start", path)
				}
			}
		})
	}
}
