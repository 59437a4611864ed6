package daemon

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
)

// startNATS runs an embedded nats-server with JetStream on a random port.
func startNATS(t *testing.T) *natsserver.Server {
	t.Helper()
	s, err := natsserver.NewServer(&natsserver.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(), NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server not ready")
	}
	t.Cleanup(s.Shutdown)
	return s
}

// TestClusterStatusAndHealth runs a daemon with [cluster] on an embedded
// NATS: status shows the cluster; with NATS gone /healthz answers 503 and
// says why, and status shows the node cut off.
func TestClusterStatusAndHealth(t *testing.T) {
	ns := startNATS(t)
	cfg := loadConfig(t, fmt.Sprintf("\n[cluster]\nnats = %s\nname = d-1\n", ns.ClientURL()), 0)
	cfg.MetricsListen = "127.0.0.1:0"
	d := startDaemon(t, cfg, Options{})
	st := d.Status().Cluster
	if !st.Enabled || st.Node != "d-1" || !st.Connected || st.NATS == "" || len(st.Nodes) != 1 || !st.Nodes[0].Self {
		t.Fatalf("status cluster %+v", st)
	}
	health := func() (int, string) {
		resp, err := http.Get("http://" + d.MetricsAddr() + "/healthz")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := health(); code != 200 {
		t.Fatalf("/healthz with NATS up: %d %q", code, body)
	}
	ns.Shutdown()
	deadline := time.Now().Add(10 * time.Second)
	for {
		code, body := health()
		if code == 503 && strings.Contains(body, "NATS connection lost") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/healthz with NATS down: %d %q", code, body)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if st := d.Status().Cluster; st.Connected || !strings.Contains(st.Error, "NATS connection lost") {
		t.Errorf("status cluster with NATS down: %+v", st)
	}
	// Local chat goes on.
	conn, err := net.Dial("tcp", d.Addrs()["Telnet-0"])
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	buf := make([]byte, 512)
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	if n, err := conn.Read(buf); err != nil || !strings.Contains(string(buf[:n]), "Welcome") {
		t.Fatalf("no welcome with NATS down: %q %v", buf[:n], err)
	}
}

// TestClusterNATSDownAtStart: start fails, naming the URL.
func TestClusterNATSDownAtStart(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	cfg := loadConfig(t, "\n[cluster]\nnats = nats://u:pw9@"+addr+"\ntimeout = 500ms\n", 0)
	_, err = Start(t.Context(), cfg, Options{})
	if err == nil || !strings.Contains(err.Error(), addr) || strings.Contains(err.Error(), "pw9") {
		t.Fatalf("Start with NATS down: %v; want an error naming %s without the password", err, addr)
	}
}
