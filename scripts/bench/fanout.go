package main

import (
	"context"
	"errors"
	"strconv"
	"time"
)

// receivers connects n receivers and a probe (the sender) to s, then
// waits until the set-up traffic (fastws's join notices: each newcomer is
// announced to everyone already there) has been read. It records the
// set-up costs in r.
func (b *bench) receivers(ctx context.Context, s *server, ws bool, n int, r *Run) (*probe, groups, error) {
	senders, gs, err := b.setup(ctx, s, ws, n, r, nil)
	if err != nil {
		return nil, nil, err
	}
	return senders[0], gs, nil
}

// setup is receivers, and with a plan the rooms: receiver i joins room
// i/plan.size, sender j (senders[0] is the probe) joins plan.senders[j],
// and the set-up traffic is read once every join is answered. The
// markers then go to the lobby, where everyone is.
func (b *bench) setup(ctx context.Context, s *server, ws bool, n int, r *Run, plan *roomPlan) ([]*probe, groups, error) {
	t := s.target(ws)
	nsend := 1
	if plan != nil {
		nsend = max(len(plan.senders), 1)
	}
	var senders []*probe
	for range nsend {
		p, err := b.newProbe(ctx, t)
		if err != nil {
			closeProbes(senders)
			return nil, nil, err
		}
		senders = append(senders, p)
	}
	spec := groupSpec{Target: t, N: n, SrcAddrs: b.opt.srcAddrs, SrcFirst: 1, DialConc: b.opt.dialConc, BufSize: b.opt.bufSize}
	prefix := ""
	if plan != nil {
		spec.RoomSize, prefix = plan.size, "#"+lobbyRoom+" "
	}
	gs, err := newGroups(ctx, b.workers, spec, b.opt.perProc)
	if err != nil {
		closeProbes(senders)
		return nil, nil, err
	}
	w := b.begin(s)
	var connected time.Duration
	b.profile(s, r.Case+"-setup", func() {
		err = gs.connect(ctx)
		connected = time.Since(w.t0)
		pr := gs.progress()
		r.set("connected", float64(pr.Connected))
		r.set("connect_s", connected.Seconds())
		if pr.Connected < int64(n) {
			err = errors.Join(err, errors.New(strconv.FormatInt(pr.Connected, 10)+" of "+strconv.Itoa(n)+" connected; last error: "+pr.LastError))
		}
		if err == nil && plan != nil {
			err = b.join(ctx, senders, plan.senders, gs, n)
		}
		if err == nil {
			err = b.mark(ctx, senders, gs, n, 1, b.opt.setupTimeout, prefix)
		}
	})
	b.end(s, &w)
	r.set("setup_messages", float64(gs.progress().Messages)) // join notices, welcomes, markers
	r.set("setup_s", w.Wall.Seconds())
	r.set("setup_server_cpu_s", w.Srv.Seconds())
	r.set("setup_tool_cpu_s", w.Own.Seconds())
	if err != nil {
		b.teardown(s, senders, gs)
		return nil, nil, err
	}
	where := "this process"
	if _, remote := gs[0].(*remoteGroup); remote {
		where = strconv.Itoa(len(gs)) + " worker processes"
	}
	b.progressf("  %s: %d connected from %s in %.1fs, set-up traffic (%.0f messages) read after %.1fs (server CPU %.1fs)",
		s.kind, n, where, connected.Seconds(), r.Metrics["setup_messages"], w.Wall.Seconds(), w.Srv.Seconds())
	return senders, gs, nil
}

func closeProbes(ps []*probe) {
	for _, p := range ps {
		p.close()
	}
}

// teardown stops the server before the clients close, so that fastws does
// not announce tens of thousands of departures to the ones still there.
func (b *bench) teardown(s *server, senders []*probe, gs groups) {
	gs.quiet()
	for _, p := range senders {
		p.quiet.Store(true)
	}
	s.stop()
	gs.close()
	closeProbes(senders)
}

// fanout: one sender, n receivers: at saturation (the sender keeps at
// most window messages per receiver unread), then at a fixed rate.
func (b *bench) fanout(ctx context.Context, s *server, ws bool, n int, r *Run) {
	r.set("receivers", float64(n))
	p, gs, err := b.receivers(ctx, s, ws, n, r)
	if err != nil {
		r.failf("set-up: %v", err)
		return
	}
	b.measure(ctx, s, gs, traffic{senders: []*probe{p}, rooms: [][]string{{""}}, per: n, receivers: n}, 2, r)
}

// traffic is what the senders of a fan-out or rooms case send: each sender
// cycles through its rooms, one message to each in one write (a room is
// the prefix of its lines: "" for the sender's current room, "#r7 "),
// and every message reaches per receivers. The saturation window is
// counted over receivers connections.
type traffic struct {
	senders   []*probe
	rooms     [][]string
	per       int
	receivers int
}

// measure runs phases of ld (1: saturation; 2: and the fixed rate)
// against gs, records what they found in r, and tears the case down.
func (b *bench) measure(ctx context.Context, s *server, gs groups, ld traffic, phases int, r *Run) {
	defer b.teardown(s, ld.senders, gs)
	b.profile(s, r.Case, func() {
		for ph := 0; ph < phases && ctx.Err() == nil; ph++ {
			b.phase(ctx, s, ld, gs, ph, r)
		}
	})
	rep, err := gs.report()
	if err != nil {
		r.failf("report: %v", err)
		return
	}
	for ph, pre := range []string{"sat_", "rate_"}[:phases] {
		h := rep.Hist[ph]
		r.set(pre+"p50_ms", ms(h.quantile(0.50)))
		r.set(pre+"p99_ms", ms(h.quantile(0.99)))
		r.set(pre+"max_ms", ms(h.Max))
	}
	if pr := gs.progress(); pr.Errors > 0 {
		r.failf("%d receiver errors, last: %s", pr.Errors, pr.LastError)
	}
	for _, p := range ld.senders {
		if v, ok := p.refused.Load().(string); ok {
			r.failf("a sender was refused: %q", v)
			break
		}
	}
	if s.kind == kindFastws {
		if st, _, err := s.status(ctx); err == nil {
			for _, in := range st.Instances {
				if in.SlowConsumers > 0 {
					r.failf("%s: %d slow consumers disconnected", in.Name, in.SlowConsumers)
				}
			}
		}
	}
	if phases < 2 {
		b.progressf("  %s: saturation %.0f deliveries/s, server %.3f µs/delivery, p50 %.1f ms p99 %.1f ms; lost %g",
			s.kind, r.Metrics["sat_deliveries_per_s"], r.Metrics["sat_server_us_per_delivery"], r.Metrics["sat_p50_ms"], r.Metrics["sat_p99_ms"], r.Metrics["sat_lost"])
		return
	}
	b.progressf("  %s: saturation %.0f deliveries/s, server %.3f µs/delivery, p99 %.1f ms; %g/s: p50 %.2f ms p99 %.2f ms max %.2f ms; lost %g+%g",
		s.kind, r.Metrics["sat_deliveries_per_s"], r.Metrics["sat_server_us_per_delivery"], r.Metrics["sat_p99_ms"],
		b.opt.rate, r.Metrics["rate_p50_ms"], r.Metrics["rate_p99_ms"], r.Metrics["rate_max_ms"], r.Metrics["sat_lost"], r.Metrics["rate_lost"])
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// phase sends one phase's messages and waits for their delivery: phase 0
// as fast as the window allows for satDur (or satMsgs messages), phase 1
// at opt.rate messages per second for rateDur. The senders take turns,
// each writing one message to each of its rooms.
func (b *bench) phase(ctx context.Context, s *server, ld traffic, gs groups, ph int, r *Run) {
	pre := []string{"sat_", "rate_"}[ph]
	if ph == 0 {
		b.progressf("  %s: saturation for %s (window %d messages per receiver)", s.kind, b.opt.satDur, b.opt.window)
	} else {
		b.progressf("  %s: %g messages/s for %s", s.kind, b.opt.rate, b.opt.rateDur)
	}
	var msgs0, writes0 uint64
	if s.kind == kindFastws {
		msgs0, writes0 = s.written(ctx) // before the window: its CPU is not counted
	}
	recv0 := gs.progress().Recv[ph]
	w := b.begin(s)
	var sent int64
	var line, batch []byte
	turn := 0
	send := func() error {
		p, rooms := ld.senders[turn], ld.rooms[turn]
		turn = (turn + 1) % len(ld.senders)
		batch = batch[:0]
		now := time.Now().UnixNano()
		for _, room := range rooms {
			line = appendMessage(append(line[:0], room...), ph, sent, now)
			batch = p.cl.frame(batch, 0x81, line)
			sent++
		}
		return p.cl.writeRaw(batch)
	}
	per := int64(ld.per)
	var err error
	if ph == 0 {
		end := time.Now().Add(b.opt.satDur)
		limit := int64(b.opt.window) * int64(ld.receivers)
		for err == nil && ctx.Err() == nil && time.Now().Before(end) && (b.opt.satMsgs == 0 || sent < int64(b.opt.satMsgs)) {
			if sent*per-(gs.progress().Recv[ph]-recv0) >= limit {
				time.Sleep(50 * time.Microsecond)
				continue
			}
			err = send()
		}
	} else {
		count := int64(b.opt.rate * b.opt.rateDur.Seconds())
		every := time.Duration(float64(time.Second) / b.opt.rate)
		for err == nil && ctx.Err() == nil && sent < count {
			if d := time.Until(w.t0.Add(time.Duration(sent) * every)); d > 0 {
				time.Sleep(d)
			}
			err = send()
		}
	}
	if err != nil {
		r.failf("%ssend: %v", pre, err)
	}
	want := sent * per
	drained := waitFor(ctx, b.opt.drain, func() bool { return gs.progress().Recv[ph]-recv0 >= want })
	b.end(s, &w)
	got := gs.progress().Recv[ph] - recv0
	if s.kind == kindFastws {
		// Delivered by now, and so written: what one write carried.
		if msgs1, writes1 := s.written(ctx); writes1 > writes0 {
			r.set(pre+"messages_per_write", float64(msgs1-msgs0)/float64(writes1-writes0))
		}
	}
	if !drained {
		// Measure what arrived within the window, then give stragglers a
		// last chance before counting them lost.
		waitFor(ctx, 5*time.Second, func() bool { return gs.progress().Recv[ph]-recv0 >= want })
		r.notef("%s%d of %d deliveries within %s of the last send", pre, got, want, b.opt.drain)
	}
	r.allocs(pre, "delivery", w, got)
	if w.Mallocs > 0 && sent > 0 {
		r.set(pre+"allocs_per_message", float64(w.Mallocs)/float64(sent))
	}
	lost := want - (gs.progress().Recv[ph] - recv0)
	r.set(pre+"sent", float64(sent))
	r.set(pre+"deliveries", float64(got))
	r.set(pre+"lost", float64(lost))
	r.set(pre+"seconds", w.Wall.Seconds())
	r.set(pre+"deliveries_per_s", float64(got)/w.Wall.Seconds())
	r.set(pre+"server_us_per_delivery", perOp(w.Srv, got))
	r.set(pre+"tool_us_per_delivery", perOp(w.Own, got))
	r.set(pre+"server_cpu_s", w.Srv.Seconds())
	r.set(pre+"tool_cpu_s", w.Own.Seconds())
	r.other(pre, w)
	switch {
	case lost > 0 && s.kind == kindFastws:
		r.failf("%s%d messages lost of %d", pre, lost, want)
	case lost > 0:
		// A baseline falls behind rather than loses: what it has
		// not delivered by the deadline is reported, not a tool failure.
		r.notef("%s%d of %d deliveries still queued %s after the last send (counted as lost)", pre, lost, want, b.opt.drain+5*time.Second)
	}
}

// idle: n connections that only read, and the daemon's memory for them.
func (b *bench) idle(ctx context.Context, s *server, ws bool, n int, r *Run) {
	r.set("connections", float64(n))
	time.Sleep(b.opt.settle)
	rss0, err := procRSS(s.pid())
	if err != nil {
		r.failf("rss: %v", err)
		return
	}
	p, gs, err := b.receivers(ctx, s, ws, n, r)
	if err != nil {
		r.failf("set-up: %v", err)
		return
	}
	defer b.teardown(s, []*probe{p}, gs)
	time.Sleep(b.opt.settle)
	rss1, err := procRSS(s.pid())
	if err != nil {
		r.failf("rss: %v", err)
		return
	}
	held := n + 1 // and the probe
	r.set("rss_before_mib", float64(rss0)/(1<<20))
	r.set("rss_after_mib", float64(rss1)/(1<<20))
	r.set("rss_kib_per_conn", float64(rss1-rss0)/1024/float64(held))
	if s.kind == kindFastws {
		b.answering(ctx, s, ws, held, r)
	}
	// Still connected and no errors after the checks.
	pr := gs.progress()
	r.set("errors", float64(pr.Errors))
	if pr.Errors > 0 {
		r.failf("%d connection errors, last: %s", pr.Errors, pr.LastError)
	}
	if e, ok := p.err.Load().(error); ok {
		r.failf("probe: %v", e)
	}
	b.progressf("  %s: %d idle connections, RSS %.1f -> %.1f MiB, %.2f KiB/connection",
		s.kind, n, r.Metrics["rss_before_mib"], r.Metrics["rss_after_mib"], r.Metrics["rss_kib_per_conn"])
	if b.opt.hold > 0 {
		b.progressf("  holding the connections for %s: %s pid %d", b.opt.hold, s.kind, s.pid())
		select {
		case <-time.After(b.opt.hold):
		case <-ctx.Done():
		}
	}
}

// answering checks that "fastws status" and /metrics answer while the
// connections are held, and that status counts them.
func (b *bench) answering(ctx context.Context, s *server, ws bool, held int, r *Run) {
	st, took, err := s.status(ctx)
	if err != nil {
		r.set("status_ok", 0)
		r.failf("status: %v", err)
	} else {
		name := map[bool]string{false: "bench-telnet", true: "bench-websocket"}[ws]
		var conns int64 = -1
		for _, in := range st.Instances {
			if in.Name == name {
				conns = in.Connections
			}
		}
		r.set("status_ok", 1)
		r.set("status_ms", ms(took))
		r.set("status_connections", float64(conns))
		if conns != int64(held) {
			r.failf("status counts %d connections on %s, want %d", conns, name, held)
		}
	}
	size, took, err := s.scrape(ctx)
	switch {
	case errors.Is(err, errNoMetrics):
		r.notef("/metrics check skipped: %v", err)
	case err != nil:
		r.set("metrics_ok", 0)
		r.failf("metrics: %v", err)
	default:
		r.set("metrics_ok", 1)
		r.set("metrics_ms", ms(took))
		r.set("metrics_bytes", float64(size))
	}
}
