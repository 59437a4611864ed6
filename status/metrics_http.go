package status

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// MetricsServer is the HTTP endpoint of metricsListen:
//
//	GET /metrics   the registry of [NewRegistry], in Prometheus's text format
//	               (OpenMetrics if the scraper asks for it)
//	GET /healthz   200 "ok" when healthy, else 503 and why
//
// Any other path is 404. It serves on a goroutine of its own until
// [MetricsServer.Close].
type MetricsServer struct {
	ln   net.Listener
	srv  *http.Server
	done chan struct{} // closed when Serve returns

	closeOnce sync.Once
	closeErr  error
}

// metricsScrapes bounds concurrent scrapes: each takes a snapshot, and a
// burst of them should queue rather than pile up.
const metricsScrapes = 4

// ServeMetrics listens on addr and serves c's registry and the health
// check. healthy returns nil when the daemon is healthy (every instance
// listens) or the reason it is not; it must be safe for concurrent use. A
// failure to listen is returned at once, naming addr. log receives the HTTP
// server's own errors; nil discards them.
func ServeMetrics(addr string, c *Collector, healthy func() error, log *slog.Logger) (*MetricsServer, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err // net's error names addr: "listen tcp 127.0.0.1:19990: bind: address already in use"
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	errLog := slog.NewLogLogger(log.Handler(), slog.LevelWarn)
	reg := NewRegistry(c)

	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.InstrumentMetricHandler(reg, promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		ErrorLog:            errLog,
		Registry:            reg, // counts its own errors in promhttp_metric_handler_errors_total
		MaxRequestsInFlight: metricsScrapes,
		EnableOpenMetrics:   true,
	})))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		if err := healthy(); err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = io.WriteString(w, err.Error()+"\n")
			return
		}
		_, _ = io.WriteString(w, "ok\n")
	})

	m := &MetricsServer{
		ln: ln,
		srv: &http.Server{
			Handler:           mux,
			ReadHeaderTimeout: 5 * time.Second,
			ReadTimeout:       10 * time.Second,
			WriteTimeout:      30 * time.Second,
			IdleTimeout:       2 * time.Minute,
			MaxHeaderBytes:    16 << 10,
			ErrorLog:          errLog,
		},
		done: make(chan struct{}),
	}
	go func() {
		defer close(m.done)
		if err := m.srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics server stopped", "addr", m.Addr(), "err", err)
		}
	}()
	return m, nil
}

// Addr returns the address the server listens on, host:port.
func (m *MetricsServer) Addr() string { return m.ln.Addr().String() }

// Close stops the server: it stops listening, lets scrapes in progress
// finish until ctx ends, then closes what is left, and waits for the serving
// goroutine. It returns ctx's error if it had to cut scrapes short. It is
// safe for concurrent use and idempotent.
func (m *MetricsServer) Close(ctx context.Context) error {
	m.closeOnce.Do(func() {
		if err := m.srv.Shutdown(ctx); err != nil {
			_ = m.srv.Close()
			m.closeErr = err
		}
		<-m.done
	})
	return m.closeErr
}
