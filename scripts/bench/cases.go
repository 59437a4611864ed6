package main

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Run is one measurement: one case against one server.
type Run struct {
	Case     string             `json:"case"` // e.g. "fanout/telnet/10000"
	Server   string             `json:"server"`
	Round    int                `json:"round"`
	Metrics  map[string]float64 `json:"metrics"`
	Notes    []string           `json:"notes,omitempty"`
	Failures []string           `json:"failures,omitempty"` // errors, lost messages: a failed run
}

func (r *Run) set(k string, v float64) { r.Metrics[k] = v }

func (r *Run) failf(format string, a ...any) {
	r.Failures = append(r.Failures, fmt.Sprintf(format, a...))
}

func (r *Run) notef(format string, a ...any) { r.Notes = append(r.Notes, fmt.Sprintf(format, a...)) }

// window measures a stretch of a run: wall time and the CPU time of the
// server and of the load tool (this process and its workers).
// Other is what the rest of the machine used meanwhile (other engineers'
// tests, say): a busy machine makes the run noisy.
// With -pprof, Mallocs and AllocBytes are the daemon's Go allocations
// meanwhile (0 otherwise).
type window struct {
	t0                    time.Time
	srv0, tool0, sys0     time.Duration
	mallocs0, bytes0      uint64
	Wall, Srv, Own, Other time.Duration
	Mallocs, AllocBytes   uint64
}

func (b *bench) begin(s *server) window {
	w := window{srv0: s.cpu(), tool0: b.procs.cpu(), sys0: systemBusy()}
	if s.pprof != "" {
		w.mallocs0, w.bytes0, _ = memStats(s.pprof)
	}
	w.t0 = time.Now()
	return w
}

func (b *bench) end(s *server, w *window) {
	w.Wall = time.Since(w.t0)
	w.Srv = s.cpu() - w.srv0
	w.Own = b.procs.cpu() - w.tool0
	w.Other = max(systemBusy()-w.sys0-w.Srv-w.Own, 0)
	if s.pprof != "" && w.mallocs0 > 0 {
		if m, by, err := memStats(s.pprof); err == nil {
			w.Mallocs, w.AllocBytes = m-w.mallocs0, by-w.bytes0
		}
	}
}

// allocs records the daemon's allocations per operation (unit: "rt" or
// "delivery"), with -pprof.
func (r *Run) allocs(prefix, unit string, w window, ops int64) {
	if w.Mallocs > 0 && ops > 0 {
		r.set(prefix+"allocs_per_"+unit, float64(w.Mallocs)/float64(ops))
		r.set(prefix+"alloc_bytes_per_"+unit, float64(w.AllocBytes)/float64(ops))
	}
}

// other records the rest of the machine's CPU use in w, and notes it when
// it was more than a fifth of a CPU.
func (r *Run) other(name string, w window) {
	r.set(name+"other_cpu_s", w.Other.Seconds())
	if cpus := w.Other.Seconds() / w.Wall.Seconds(); cpus > 0.2 {
		r.notef("%sother processes used %.2f CPUs during the measurement: noisy", name, cpus)
	}
}

// perOp returns CPU microseconds per operation.
func perOp(d time.Duration, n int64) float64 {
	if n == 0 {
		return 0
	}
	return float64(d.Microseconds()) / float64(n)
}

// failures counts a case's errors and keeps the last one. It is safe for
// concurrent use.
type failures struct {
	n    atomic.Int64
	mu   sync.Mutex
	last error
}

// add records err and returns how many errors there are now.
func (f *failures) add(err error) int64 {
	f.mu.Lock()
	f.last = err
	f.mu.Unlock()
	return f.n.Add(1)
}

// roundTrips records what cases 1 and 2 measure: n round trips over w,
// and f's errors, which the failure message calls what.
func (r *Run) roundTrips(w window, n int64, f *failures, what string) {
	r.set("round_trips", float64(n))
	r.set("seconds", w.Wall.Seconds())
	r.set("rt_per_s", float64(n)/w.Wall.Seconds())
	r.set("server_us_per_rt", perOp(w.Srv, n))
	r.set("tool_us_per_rt", perOp(w.Own, n))
	r.set("server_cpu_s", w.Srv.Seconds())
	r.set("tool_cpu_s", w.Own.Seconds())
	r.other("", w)
	r.allocs("", "rt", w, n)
	errs := f.n.Load()
	r.set("errors", float64(errs))
	if errs > 0 {
		f.mu.Lock()
		r.failf("%d %s, last: %v", errs, what, f.last)
		f.mu.Unlock()
	}
}

// roundTrip sends one message and reads until its delivery comes back,
// skipping what else the server sends (join and leave notices).
func roundTrip(cl *client, msg []byte) error {
	if err := cl.send(msg); err != nil {
		return err
	}
	for {
		line, err := cl.next()
		if err != nil {
			return err
		}
		if bytes.HasSuffix(line, []byte("hello world")) {
			return nil
		}
	}
}

// rtMessage is what a client sends for one round trip: to itself on
// fastws (a private message, the chat path), a line to echo on the
// baseline.
func rtMessage(cl *client, t target) []byte {
	if t.Welcome {
		return []byte("$" + strconv.FormatUint(cl.uid, 10) + ":hello world")
	}
	return []byte("hello world")
}

// case1: 2 workers, each looping connect, 100 round trips, close.
func (b *bench) case1(ctx context.Context, s *server, r *Run) {
	var rts, conns atomic.Int64
	var fails failures
	var w window
	b.profile(s, r.Case, func() {
		w = b.begin(s)
		b.loop1(ctx, s.target(false), &rts, &conns, &fails)
		b.end(s, &w)
	})
	r.roundTrips(w, rts.Load(), &fails, "connection cycles failed")
	r.set("connects_per_s", float64(conns.Load())/w.Wall.Seconds())
	b.progressf("  %s: %.0f round trips/s, %.0f connects/s, server %.2f µs/rt, tool %.2f µs/rt",
		s.kind, r.Metrics["rt_per_s"], r.Metrics["connects_per_s"], r.Metrics["server_us_per_rt"], r.Metrics["tool_us_per_rt"])
}

// loop1 runs case 1's workers until the case's duration has passed.
func (b *bench) loop1(ctx context.Context, t target, rts, conns *atomic.Int64, fails *failures) {
	const workers, trips = 2, 100
	deadline := time.Now().Add(b.opt.case1Dur)
	var wg sync.WaitGroup
	for wk := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; time.Now().Before(deadline) && ctx.Err() == nil; i++ {
				err := func() error {
					cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
					defer cancel()
					cl, err := connect(cctx, b.dialer, t, wk+workers*i, 4096)
					if err != nil {
						return err
					}
					defer cl.close()
					_ = cl.c.SetDeadline(time.Now().Add(10 * time.Second))
					msg := rtMessage(cl, t)
					for range trips {
						if err := roundTrip(cl, msg); err != nil {
							return err
						}
						rts.Add(1)
					}
					conns.Add(1)
					return nil
				}()
				if err != nil && fails.add(err) > 10 {
					return
				}
			}
		}()
	}
	wg.Wait()
}

// case2: n persistent connections, each with one round trip outstanding.
func (b *bench) case2(ctx context.Context, s *server, ws bool, n int, r *Run) {
	t := s.target(ws)
	clients := make([]*client, n)
	var fails failures
	sem := make(chan struct{}, b.opt.dialConc)
	var wg sync.WaitGroup
	for i := range clients {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			defer cancel()
			cl, err := connect(cctx, b.dialer, t, i, 4096)
			if err != nil {
				fails.add(err)
				return
			}
			clients[i] = cl
		}()
	}
	wg.Wait()
	defer func() {
		for _, cl := range clients {
			if cl != nil {
				cl.close()
			}
		}
	}()
	// One round trip each before measuring: it also reads past the join
	// notices queued while the others connected.
	start := make(chan struct{})
	deadline := time.Now().Add(time.Minute) // replaced before start closes
	var rts atomic.Int64
	var ready, done sync.WaitGroup
	for _, cl := range clients {
		if cl == nil {
			continue
		}
		ready.Add(1)
		done.Add(1)
		go func() {
			defer done.Done()
			msg := rtMessage(cl, t)
			_ = cl.c.SetDeadline(time.Now().Add(60 * time.Second))
			err := roundTrip(cl, msg)
			ready.Done()
			if err != nil {
				fails.add(fmt.Errorf("warm-up: %w", err))
				return
			}
			<-start
			_ = cl.c.SetDeadline(deadline.Add(10 * time.Second))
			var k int64
			for time.Now().Before(deadline) {
				if err := roundTrip(cl, msg); err != nil {
					fails.add(err)
					break
				}
				k++
			}
			rts.Add(k)
		}()
	}
	ready.Wait()
	var w window
	b.profile(s, r.Case, func() {
		w = b.begin(s)
		deadline = time.Now().Add(b.opt.case2Dur)
		close(start)
		done.Wait()
		b.end(s, &w)
	})
	r.set("connections", float64(n))
	r.roundTrips(w, rts.Load(), &fails, "errors")
	b.progressf("  %s: %d conns, %.0f round trips/s, server %.2f µs/rt, tool %.2f µs/rt",
		s.kind, n, r.Metrics["rt_per_s"], r.Metrics["server_us_per_rt"], r.Metrics["tool_us_per_rt"])
}

// probe is a connection of this process that sends markers and fan-out
// messages and counts what comes back to it: the sender of a fan-out or
// rooms case.
type probe struct {
	cl      *client
	marks   [maxMarkers]atomic.Int64
	recv    [numPhases]atomic.Int64
	joined  atomic.Int64 // "* you are now in #..." lines
	refused atomic.Value // the last "! ..." line (a string)
	err     atomic.Value
	quiet   atomic.Bool
	done    chan struct{}
}

func (b *bench) newProbe(ctx context.Context, t target) (*probe, error) {
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	cl, err := connect(cctx, b.dialer, t, 0, 64<<10)
	if err != nil {
		return nil, err
	}
	p := &probe{cl: cl, done: make(chan struct{})}
	go func() {
		defer close(p.done)
		seen := 0
		for {
			msg, err := cl.next()
			if err != nil {
				if !p.quiet.Load() {
					p.err.Store(err)
				}
				return
			}
			if i := bytes.Index(msg, []byte(tagMessage)); i >= 0 {
				if ph, _, ok := parseMessage(msg[i+len(tagMessage):]); ok {
					p.recv[ph].Add(1)
				}
			} else if i := bytes.Index(msg, []byte(tagMarker)); i >= 0 {
				seen = countMarker(msg[i+len(tagMarker):], seen, &p.marks)
			} else if bytes.HasPrefix(msg, []byte(roomJoined)) {
				p.joined.Add(1)
			} else if bytes.HasPrefix(msg, []byte(refusal)) {
				p.refused.Store(string(msg))
			}
		}
	}()
	return p, nil
}

func (p *probe) close() {
	p.quiet.Store(true)
	p.cl.close()
	<-p.done
}

// mark has senders[0] send marker k and waits until every connection
// of gs and every sender has read it: then whatever was queued before it
// is delivered. The marker goes with prefix ("#lobby " in the rooms
// cases, whose senders' current room is another). It is sent again every
// 250ms while some have not read it: a client cannot tell when the
// baseline has registered its connection, so the first marker may miss
// the last few.
func (b *bench) mark(ctx context.Context, senders []*probe, gs groups, n int, k int, timeout time.Duration, prefix string) error {
	msg := []byte(prefix + tagMarker + strconv.Itoa(k))
	var err error
	next := time.Now()
	ok := waitFor(ctx, timeout, func() bool {
		pr := gs.progress()
		if pr.Marks[k] >= int64(n) && !slices.ContainsFunc(senders, func(p *probe) bool { return p.marks[k].Load() == 0 }) {
			return true
		}
		if err == nil && time.Now().After(next) {
			err = senders[0].cl.send(msg)
			next = time.Now().Add(250 * time.Millisecond)
		}
		return err != nil
	})
	if err != nil {
		return err
	}
	if !ok {
		pr := gs.progress()
		return fmt.Errorf("marker %d: read by %d of %d connections after %s (connection errors %d, last: %s)", k, pr.Marks[k], n, timeout, pr.Errors, pr.LastError)
	}
	return nil
}
