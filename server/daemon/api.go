package daemon

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fastws/fastws/chat"
	"github.com/fastws/fastws/server/api"
	"github.com/fastws/fastws/server/auth"
	"github.com/fastws/fastws/server/config"
	"github.com/prometheus/client_golang/prometheus"
)

// identity is the daemon's part for [api]: the HTTP API server (nil
// without listen) and the counts of authentications, for /metrics.
type identity struct {
	srv *api.Server

	authOK   atomic.Uint64
	mu       sync.Mutex
	authFail map[string]uint64 // guarded by mu: by reason

	requests, authSuccesses, authFailures *prometheus.Desc
}

func newIdentity() *identity {
	return &identity{
		authFail:      map[string]uint64{},
		requests:      prometheus.NewDesc("fastws_api_requests_total", "HTTP API requests, by endpoint and status code.", []string{"endpoint", "code"}, nil),
		authSuccesses: prometheus.NewDesc("fastws_auth_successes_total", "User tokens accepted (/auth, ?token=, {\"auth\": ...}).", nil, nil),
		authFailures:  prometheus.NewDesc("fastws_auth_failures_total", "User tokens refused, by reason.", []string{"reason"}, nil),
	}
}

// onAuth counts one authentication: "" = success, else the reason.
func (id *identity) onAuth(reason string) {
	if reason == "" {
		id.authOK.Add(1)
		return
	}
	id.mu.Lock()
	id.authFail[reason]++
	id.mu.Unlock()
}

// Describe implements prometheus.Collector.
func (id *identity) Describe(ch chan<- *prometheus.Desc) {
	ch <- id.requests
	ch <- id.authSuccesses
	ch <- id.authFailures
}

// Collect implements prometheus.Collector. Every reason and endpoint is
// shown from the start, at 0, so that rate() has a first sample.
func (id *identity) Collect(ch chan<- prometheus.Metric) {
	ch <- prometheus.MustNewConstMetric(id.authSuccesses, prometheus.CounterValue, float64(id.authOK.Load()))
	id.mu.Lock()
	fails := make(map[string]uint64, len(id.authFail))
	for k, v := range id.authFail {
		fails[k] = v
	}
	id.mu.Unlock()
	for _, r := range append(auth.Reasons(), chat.ReasonTooMany) {
		if _, ok := fails[r]; !ok {
			fails[r] = 0
		}
	}
	for r, n := range fails {
		ch <- prometheus.MustNewConstMetric(id.authFailures, prometheus.CounterValue, float64(n), r)
	}
	if id.srv == nil {
		return
	}
	reqs := id.srv.Requests()
	for _, ep := range api.Endpoints {
		k := api.RequestKey{Endpoint: ep, Code: 200}
		if _, ok := reqs[k]; !ok {
			reqs[k] = 0
		}
	}
	for k, n := range reqs {
		ch <- prometheus.MustNewConstMetric(id.requests, prometheus.CounterValue, float64(n), k.Endpoint, strconv.Itoa(k.Code))
	}
}

// authOptions returns the hub's identity settings for cfg.
func (d *Daemon) authOptions(cfg *config.Config) chat.AuthOptions {
	o := chat.AuthOptions{Require: cfg.API.RequireAuth, Timeout: cfg.API.AuthTimeout, OnAuth: d.id.onAuth, MaxPerUser: cfg.API.MaxConnectionsPerUser}
	if cfg.API.TokenSecret != "" {
		o.Verify = auth.Verifier([]byte(cfg.API.TokenSecret))
	}
	return o
}

// startAPI sets the room's identity settings and, with [api] listen,
// binds and serves the HTTP API. It is part of start: an address in use
// is a start error.
func (d *Daemon) startAPI(cfg *config.Config) error {
	d.srv.Hub().SetAuth(d.authOptions(cfg))
	if cfg.API.Listen == "" {
		return nil
	}
	srv, err := api.Listen(cfg.API.Listen, api.Options{Hub: d.srv.Hub(), Key: cfg.API.Key, MaxText: d.maxText, MaxConns: cfg.API.MaxConnections, Log: d.log})
	if err != nil {
		return bindHint(fmt.Errorf("[api] listen: %w", err), cfg.Path, "[api] listen")
	}
	d.id.srv = srv
	d.undo = append(d.undo, func() {
		ctx, cancel := context.WithTimeout(context.Background(), apiStopTimeout)
		defer cancel()
		_ = srv.Close(ctx)
	})
	d.log.Info("api listening", "addr", srv.Addr())
	return nil
}

// apiStopTimeout is the longest the HTTP API's requests under way may
// take to finish at a stop (each is small; see api's timeouts).
const apiStopTimeout = 2 * time.Second

// stopAPI stops the HTTP API first at a stop, before the instances drain:
// an application then gets "connection refused", not a "delivered" for
// members who are being closed, and the drain is not fed new messages
// while it waits for them. It waits for requests under way up to
// apiStopTimeout (timeout if shorter). The cleanup's Close after it is a
// no-op.
func (d *Daemon) stopAPI(timeout time.Duration) {
	if d.id.srv == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), min(timeout, apiStopTimeout))
	defer cancel()
	if err := d.id.srv.Close(ctx); err != nil {
		d.log.Warn("api stop cut short", "err", err)
	}
	d.log.Info("api stopped")
}

// maxText is the longest text the API sends: the smallest maxPackageSize
// of the instances in force, so that any member could have sent it.
func (d *Daemon) maxText() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	n := 0
	for _, i := range d.cfg.Instances {
		if n == 0 || i.Limits.MaxPackageSize < n {
			n = i.Limits.MaxPackageSize
		}
	}
	if n == 0 {
		n = d.cfg.Defaults.MaxPackageSize
	}
	return n
}

// APIAddr returns the HTTP API's bound address, "" without [api] listen.
func (d *Daemon) APIAddr() string {
	if d.id.srv == nil {
		return ""
	}
	return d.id.srv.Addr()
}

// reloadAPI applies what a reload may change in [api]: the key, the
// token secret, requireAuth, authTimeout and maxConnectionsPerUser. A changed listen is refused
// before (see reloadable): it needs a restart, as metricsListen does.
func (d *Daemon) reloadAPI(cfg *config.Config) {
	d.srv.Hub().SetAuth(d.authOptions(cfg))
	if d.id.srv != nil {
		d.id.srv.SetKey(cfg.API.Key)
	}
}
