package status

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// metricsSnapshot is a fixed snapshot with every metric non-zero
// somewhere, a close reason the collector was not told about (idle) and one
// it was told about that the snapshot lacks (shutdown).
func metricsSnapshot() Snapshot {
	return Snapshot{
		Daemon: Daemon{Version: "0.1.0", GoVersion: "go1.26.8", Members: 3, Rooms: 2},
		Instances: []Instance{
			{
				Name: "FastWS-Telnet", Protocol: "telnet", Listening: true,
				Connections: 2, ConnectionsTotal: 5, MessagesIn: 10, MessagesOut: 20, Writes: 14, BytesIn: 1229, BytesOut: 3482,
				BroadcastDeliveries: 16, PrivateMessages: 1, SlowConsumers: 1, AcceptStalls: 2,
				ClosedByReason: map[string]uint64{"client_quit": 1, "protocol_error": 0, "client_closed": 0, "idle": 2},
				ProtocolErrors: map[string]uint64{"refused": 0, "line_too_long": 4},
			},
			{
				Name: "FastWS-WebSocket", Protocol: "websocket",
				Connections: 1, ConnectionsTotal: 1, MessagesIn: 3, MessagesOut: 12, Writes: 12, BytesIn: 96, BytesOut: 1860,
				ProtocolErrors: map[string]uint64{"ws_utf8": 1},
			},
		},
	}
}

var testReasons = []string{"client_closed", "client_quit", "protocol_error", "shutdown"}

const metricsGolden = `
# HELP fastws_accept_stalls_total Times accepting paused because the process ran out of file descriptors.
# TYPE fastws_accept_stalls_total counter
fastws_accept_stalls_total{instance="FastWS-Telnet"} 2
fastws_accept_stalls_total{instance="FastWS-WebSocket"} 0
# HELP fastws_broadcast_deliveries_total Room-wide chat messages delivered to clients, one per recipient.
# TYPE fastws_broadcast_deliveries_total counter
fastws_broadcast_deliveries_total{instance="FastWS-Telnet"} 16
fastws_broadcast_deliveries_total{instance="FastWS-WebSocket"} 0
# HELP fastws_build_info A metric with a constant '1' value labeled by the fastws version and the Go version that built it.
# TYPE fastws_build_info gauge
fastws_build_info{goversion="go1.26.8",version="0.1.0"} 1
# HELP fastws_cluster_messages_received_total Events received from other nodes of the cluster.
# TYPE fastws_cluster_messages_received_total counter
fastws_cluster_messages_received_total 0
# HELP fastws_cluster_messages_sent_total Events sent to other nodes of the cluster.
# TYPE fastws_cluster_messages_sent_total counter
fastws_cluster_messages_sent_total 0
# HELP fastws_cluster_nats_connected 1 while connected to NATS, else 0 (always 0 for a single node, which uses none).
# TYPE fastws_cluster_nats_connected gauge
fastws_cluster_nats_connected 0
# HELP fastws_cluster_nodes Nodes of the cluster this node knows, itself among them; 0 for a single node.
# TYPE fastws_cluster_nodes gauge
fastws_cluster_nodes 0
# HELP fastws_connections Client connections open now.
# TYPE fastws_connections gauge
fastws_connections{instance="FastWS-Telnet"} 2
fastws_connections{instance="FastWS-WebSocket"} 1
# HELP fastws_connections_accepted_total Client connections accepted since the instance started.
# TYPE fastws_connections_accepted_total counter
fastws_connections_accepted_total{instance="FastWS-Telnet"} 5
fastws_connections_accepted_total{instance="FastWS-WebSocket"} 1
# HELP fastws_connections_closed_total Client connections closed, by close reason.
# TYPE fastws_connections_closed_total counter
fastws_connections_closed_total{instance="FastWS-Telnet",reason="client_closed"} 0
fastws_connections_closed_total{instance="FastWS-Telnet",reason="client_quit"} 1
fastws_connections_closed_total{instance="FastWS-Telnet",reason="idle"} 2
fastws_connections_closed_total{instance="FastWS-Telnet",reason="protocol_error"} 0
fastws_connections_closed_total{instance="FastWS-Telnet",reason="shutdown"} 0
fastws_connections_closed_total{instance="FastWS-WebSocket",reason="client_closed"} 0
fastws_connections_closed_total{instance="FastWS-WebSocket",reason="client_quit"} 0
fastws_connections_closed_total{instance="FastWS-WebSocket",reason="protocol_error"} 0
fastws_connections_closed_total{instance="FastWS-WebSocket",reason="shutdown"} 0
# HELP fastws_instance_up Whether the instance accepts connections (1) or not (0).
# TYPE fastws_instance_up gauge
fastws_instance_up{instance="FastWS-Telnet"} 1
fastws_instance_up{instance="FastWS-WebSocket"} 0
# HELP fastws_messages_received_total Lines (telnet) or messages (websocket) received from clients and handled.
# TYPE fastws_messages_received_total counter
fastws_messages_received_total{instance="FastWS-Telnet"} 10
fastws_messages_received_total{instance="FastWS-WebSocket"} 3
# HELP fastws_messages_sent_total Lines (telnet) or messages (websocket) written to clients.
# TYPE fastws_messages_sent_total counter
fastws_messages_sent_total{instance="FastWS-Telnet"} 20
fastws_messages_sent_total{instance="FastWS-WebSocket"} 12
# HELP fastws_private_messages_total Private messages delivered to their recipient.
# TYPE fastws_private_messages_total counter
fastws_private_messages_total{instance="FastWS-Telnet"} 1
fastws_private_messages_total{instance="FastWS-WebSocket"} 0
# HELP fastws_protocol_errors_total Protocol errors and refused connections, by kind.
# TYPE fastws_protocol_errors_total counter
fastws_protocol_errors_total{instance="FastWS-Telnet",kind="line_too_long"} 4
fastws_protocol_errors_total{instance="FastWS-Telnet",kind="refused"} 0
fastws_protocol_errors_total{instance="FastWS-WebSocket",kind="ws_utf8"} 1
# HELP fastws_received_bytes_total Bytes received from clients.
# TYPE fastws_received_bytes_total counter
fastws_received_bytes_total{instance="FastWS-Telnet"} 1229
fastws_received_bytes_total{instance="FastWS-WebSocket"} 96
# HELP fastws_room_members Chat room members online now, across all instances.
# TYPE fastws_room_members gauge
fastws_room_members 3
# HELP fastws_rooms Rooms that exist now (/join), the lobby not counted.
# TYPE fastws_rooms gauge
fastws_rooms 2
# HELP fastws_sent_bytes_total Bytes written to clients.
# TYPE fastws_sent_bytes_total counter
fastws_sent_bytes_total{instance="FastWS-Telnet"} 3482
fastws_sent_bytes_total{instance="FastWS-WebSocket"} 1860
# HELP fastws_slow_consumer_disconnects_total Connections closed because their unsent output passed maxSendBuffer.
# TYPE fastws_slow_consumer_disconnects_total counter
fastws_slow_consumer_disconnects_total{instance="FastWS-Telnet"} 1
fastws_slow_consumer_disconnects_total{instance="FastWS-WebSocket"} 0
# HELP fastws_writes_total Writes to clients' sockets; messages_sent_total over it is the messages one write carries.
# TYPE fastws_writes_total counter
fastws_writes_total{instance="FastWS-Telnet"} 14
fastws_writes_total{instance="FastWS-WebSocket"} 12
`

func TestCollector(t *testing.T) {
	c := NewCollector(metricsSnapshot, testReasons)
	if err := testutil.CollectAndCompare(c, strings.NewReader(metricsGolden)); err != nil {
		t.Error(err)
	}
}

func TestCollectorLint(t *testing.T) {
	c := NewCollector(metricsSnapshot, testReasons)
	problems, err := testutil.CollectAndLint(c)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}
	// The registry /metrics serves: fastws's metrics and the Go and process
	// collectors, gathered together without conflict.
	problems, err = testutil.GatherAndLint(NewRegistry(NewCollector(metricsSnapshot, testReasons)))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint registry: %s: %s", p.Metric, p.Text)
	}
}

// TestCollectorReadsAtScrape checks that the collector keeps nothing of
// its own: each scrape shows the snapshot of that moment.
func TestCollectorReadsAtScrape(t *testing.T) {
	var n atomic.Uint64
	c := NewCollector(func() Snapshot {
		return Snapshot{Instances: []Instance{{Name: "a", MessagesIn: n.Load()}}}
	}, nil)
	for _, want := range []uint64{0, 7, 3} { // 3: an instance restarted by a reload starts again
		n.Store(want)
		golden := "# HELP fastws_messages_received_total Lines (telnet) or messages (websocket) received from clients and handled.\n" +
			"# TYPE fastws_messages_received_total counter\n" +
			`fastws_messages_received_total{instance="a"} ` + itoa(int64(want)) + "\n"
		if err := testutil.CollectAndCompare(c, strings.NewReader(golden), "fastws_messages_received_total"); err != nil {
			t.Errorf("after storing %d: %v", want, err)
		}
	}
}

// get fetches url and returns the status code and body.
func get(t *testing.T, method, url string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(testCtx(t), method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, url, err)
	}
	return resp.StatusCode, string(b)
}

func startMetrics(t *testing.T, snapshot func() Snapshot, healthy func() error) *MetricsServer {
	t.Helper()
	m, err := ServeMetrics("127.0.0.1:0", NewCollector(snapshot, testReasons), healthy, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := m.Close(context.Background()); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return m
}

func TestServeMetrics(t *testing.T) {
	var unhealthy atomic.Pointer[error]
	notYet := errors.New("instance FastWS-Telnet is not listening")
	unhealthy.Store(&notYet)
	m := startMetrics(t, metricsSnapshot, func() error {
		if p := unhealthy.Load(); p != nil {
			return *p
		}
		return nil
	})
	base := "http://" + m.Addr()

	code, body := get(t, "GET", base+"/metrics")
	if code != http.StatusOK {
		t.Fatalf("GET /metrics: got %d, want 200\n%s", code, body)
	}
	for _, want := range []string{
		`fastws_connections{instance="FastWS-Telnet"} 2`,
		`fastws_build_info{goversion="go1.26.8",version="0.1.0"} 1`,
		"go_goroutines ",
		"process_resident_memory_bytes ",
		"process_start_time_seconds ",
		"promhttp_metric_handler_requests_total",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("GET /metrics: no line with %q", want)
		}
	}

	tests := []struct {
		name, method, path string
		healthy            bool
		wantCode           int
		wantBody           string
	}{
		{"unhealthy", "GET", "/healthz", false, http.StatusServiceUnavailable, "instance FastWS-Telnet is not listening\n"},
		{"healthy", "GET", "/healthz", true, http.StatusOK, "ok\n"},
		{"root", "GET", "/", true, http.StatusNotFound, ""},
		{"other path", "GET", "/metrics/x", true, http.StatusNotFound, ""},
		{"POST", "POST", "/metrics", true, http.StatusMethodNotAllowed, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.healthy {
				unhealthy.Store(nil)
			} else {
				unhealthy.Store(&notYet)
			}
			code, body := get(t, tt.method, base+tt.path)
			if code != tt.wantCode {
				t.Errorf("%s %s: got %d, want %d", tt.method, tt.path, code, tt.wantCode)
			}
			if tt.wantBody != "" && body != tt.wantBody {
				t.Errorf("%s %s: got body %q, want %q", tt.method, tt.path, body, tt.wantBody)
			}
		})
	}
}

func TestServeMetricsBindFailure(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	addr := busy.Addr().String()
	m, err := ServeMetrics(addr, NewCollector(metricsSnapshot, nil), func() error { return nil }, nil)
	if err == nil {
		m.Close(context.Background())
		t.Fatalf("ServeMetrics(%s) on a busy port: got no error", addr)
	}
	if !strings.Contains(err.Error(), addr) {
		t.Errorf("got %q, want it to name %s", err, addr)
	}
}

func TestMetricsClose(t *testing.T) {
	t.Run("stops listening and is idempotent", func(t *testing.T) {
		m, err := ServeMetrics("127.0.0.1:0", NewCollector(metricsSnapshot, nil), func() error { return nil }, nil)
		if err != nil {
			t.Fatal(err)
		}
		for k := range 2 {
			if err := m.Close(context.Background()); err != nil {
				t.Errorf("Close #%d: %v", k+1, err)
			}
		}
		if c, err := net.Dial("tcp", m.Addr()); err == nil {
			c.Close()
			t.Errorf("dial %s after Close: got a connection", m.Addr())
		}
	})
	t.Run("bounded by ctx", func(t *testing.T) {
		entered, release := make(chan struct{}), make(chan struct{})
		var once sync.Once
		m, err := ServeMetrics("127.0.0.1:0", NewCollector(func() Snapshot {
			once.Do(func() { close(entered) })
			<-release
			return metricsSnapshot()
		}, nil), func() error { return nil }, nil)
		if err != nil {
			t.Fatal(err)
		}
		scraped := make(chan error, 1)
		go func() {
			resp, err := http.Get("http://" + m.Addr() + "/metrics")
			if err == nil {
				resp.Body.Close()
			}
			scraped <- err
		}()
		receive(t, entered, "the scrape to begin")
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		if err := m.Close(ctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Close with a scrape stuck: got %v, want context.DeadlineExceeded", err)
		}
		close(release)
		if err := <-scraped; err == nil {
			t.Error("the stuck scrape: got a response, want its connection closed")
		}
	})
}
