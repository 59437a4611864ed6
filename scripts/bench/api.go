package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// The api case (SPEC.md section 9), against fastws alone (the baselines
// have no API): apiPosters application clients POST /api/v1/send to
// everyone, each over one keep-alive connection, for -sat, while the
// case's telnet members read. An API send takes the chat line's write
// path (one publish, one append per reactor), so its deliveries/s and
// server CPU µs/delivery read against the lobby fan-out rows of the same
// invocation.
const (
	apiPosters = 4
	apiKey     = "bench-api-key-0123456789abcdef" // the bench's own daemon, on loopback
	apiText    = `{"text": "a line the application pushes to everyone"}`
	apiLine    = "server: a line the application pushes to everyone"
)

// apiSection is the [api] section of the bench's daemon config.
func apiSection(port int) string {
	return fmt.Sprintf("\n[api]\nlisten = 127.0.0.1:%d\nkey = %s\n", port, apiKey)
}

// apiSend runs the api case: connect the members, post for -sat, wait
// for every delivery (or -drain), and record the rates.
func (b *bench) apiSend(ctx context.Context, s *server, c caseDef, r *Run) {
	if s.api == "" {
		r.failf("the daemon has no [api] listen")
		return
	}
	var delivered atomic.Int64
	var readers sync.WaitGroup
	conns := make([]net.Conn, 0, c.n)
	defer func() {
		for _, conn := range conns {
			conn.Close()
		}
		readers.Wait()
	}()
	for range c.n {
		conn, err := net.DialTimeout("tcp", s.telnet, 5*time.Second)
		if err != nil {
			r.failf("connect: %v", err)
			return
		}
		conns = append(conns, conn)
		readers.Add(1)
		go func() {
			defer readers.Done()
			br := bufio.NewReaderSize(conn, b.opt.bufSize)
			for {
				line, err := br.ReadSlice('\n')
				if err != nil && err != bufio.ErrBufferFull {
					return
				}
				if bytes.HasPrefix(line, []byte(apiLine)) {
					delivered.Add(1)
				}
			}
		}()
	}
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: apiPosters}}
	defer client.CloseIdleConnections()
	call := func(method, path, body string) (int, []byte, error) {
		req, err := http.NewRequestWithContext(ctx, method, "http://"+s.api+path, strings.NewReader(body))
		if err != nil {
			return 0, nil, err
		}
		req.Header.Set("Authorization", "Bearer "+apiKey)
		res, err := client.Do(req)
		if err != nil {
			return 0, nil, err
		}
		defer res.Body.Close()
		b, err := io.ReadAll(res.Body)
		return res.StatusCode, b, err
	}
	everyone := fmt.Appendf(nil, `"members":%d,`, c.n)
	if !waitFor(ctx, b.opt.setupTimeout, func() bool {
		code, body, err := call("GET", "/api/v1/online", "")
		return err == nil && code == http.StatusOK && bytes.Contains(body, everyone)
	}) {
		r.failf("the %d members did not all join within %s", c.n, b.opt.setupTimeout)
		return
	}
	var posts, errs atomic.Int64
	var lastErr atomic.Value
	w := b.begin(s)
	deadline := time.Now().Add(b.opt.satDur)
	var wg sync.WaitGroup
	for range apiPosters {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) && ctx.Err() == nil {
				if b.opt.satMsgs > 0 && posts.Load() >= int64(b.opt.satMsgs) {
					return
				}
				code, _, err := call("POST", "/api/v1/send", apiText)
				if err == nil && code != http.StatusOK {
					err = fmt.Errorf("status %d", code)
				}
				if err != nil {
					errs.Add(1)
					lastErr.Store(err.Error())
					continue
				}
				posts.Add(1)
			}
		}()
	}
	wg.Wait()
	sending := time.Since(w.t0)
	want := posts.Load() * int64(c.n)
	waitFor(ctx, b.opt.drain, func() bool { return delivered.Load() >= want })
	b.end(s, &w)
	got := delivered.Load()
	r.set("api_posts", float64(posts.Load()))
	r.set("api_posts_per_s", float64(posts.Load())/sending.Seconds())
	r.set("api_deliveries_per_s", float64(got)/w.Wall.Seconds())
	r.set("api_server_us_per_delivery", perOp(w.Srv, got))
	r.set("errors", float64(errs.Load()))
	r.set("lost", float64(want-min(got, want)))
	r.other("api ", w)
	if n := errs.Load(); n > 0 {
		r.failf("%d failed requests, last: %v", n, lastErr.Load())
	}
	if got < want {
		r.failf("%d of %d deliveries missing after %s", want-got, want, b.opt.drain)
	}
	b.progressf("  %s: %.0f POSTs/s, %.0f deliveries/s, %.2f server µs/delivery",
		s.kind, r.Metrics["api_posts_per_s"], r.Metrics["api_deliveries_per_s"], r.Metrics["api_server_us_per_delivery"])
}
