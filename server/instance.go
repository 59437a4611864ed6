package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/fastws/fastws/chat"
	"github.com/fastws/fastws/server/config"
	"github.com/panjf2000/gnet/v2"
)

// instance is one config.ini instance: a gnet engine and its reactors. It
// implements gnet.EventHandler. OnOpen, OnTraffic and OnClose run on the
// connection's event loop; OnBoot runs before the loops start, and OnTick
// on gnet's ticker goroutine, which reaches the loops only through
// reactor.execute.
type instance struct {
	gnet.BuiltinEventEngine

	cfg    config.Instance
	limits config.Limits
	hub    *chat.Hub
	budget *sendBudget // the daemon's, shared by every instance
	log    *slog.Logger
	codec  codec
	tls    *tlsState // nil for plain text

	eng       gnet.Engine
	acc       *acceptor
	addr      string        // the bound address
	ready     chan struct{} // closed by the first OnTick
	readyOnce sync.Once
	done      chan struct{} // closed when gnet.Run returns
	err       error         // gnet.Run's error, set before done closes

	stopping atomic.Bool

	// down is set on an instance that could not start: it has no engine
	// and no listener, and fault says why. It is set before the instance
	// is published and never changes.
	down bool
	// fault is why the instance does not run what the config in force
	// says: it is down, or a reload could not start its replacement and
	// it serves its previous settings. nil otherwise.
	fault atomic.Pointer[error]

	mu       sync.Mutex
	reactors map[gnet.EventLoop]*reactor // guarded by mu
	order    []*reactor                  // guarded by mu: in creation order
	perIP    map[string]int              // guarded by mu: open connections by client IP
	stopped  bool                        // guarded by mu: no new reactors

	conns    atomic.Int64
	files    *files // the daemon's, shared by every instance
	closes   *closeLog
	protoErr sync.Map // kind -> *atomic.Uint64
}

func newInstance(cfg config.Instance, hub *chat.Hub, f *files, budget *sendBudget, log *slog.Logger) *instance {
	i := &instance{
		cfg:      cfg,
		files:    f,
		limits:   cfg.Limits,
		hub:      hub,
		budget:   budget,
		log:      log.With("instance", cfg.Name),
		closes:   newCloseLog(log.With("instance", cfg.Name)),
		ready:    make(chan struct{}),
		done:     make(chan struct{}),
		reactors: make(map[gnet.EventLoop]*reactor),
		perIP:    make(map[string]int),
	}
	switch cfg.Protocol {
	case config.ProtocolWebSocket:
		i.codec = newWSCodec(cfg)
	default:
		i.codec = telnetCodec{maxLine: cfg.Limits.MaxPackageSize}
	}
	return i
}

// start binds the instance's address (or accepts on inherit, if not nil),
// runs the engine and returns once both are ready, or with the reason they
// are not.
func (i *instance) start(inherit net.Listener) error {
	if i.cfg.TLS() {
		t, err := newTLSState(i.cfg)
		if err != nil {
			return err // it names the instance
		}
		i.tls = t
	}
	acc, err := listen(i, inherit)
	if err != nil {
		return fmt.Errorf("instance %s: listen %s: %w", i.cfg.Name, i.cfg.Addr(), err)
	}
	i.acc = acc
	i.addr = acc.ln.Addr().String()
	go func() {
		i.err = gnet.Run(i, acc.engineAddr(),
			gnet.WithMulticore(true),
			gnet.WithNumEventLoop(i.cfg.ChildProcessCount),
			// The acceptor picks the loop itself once it knows them all
			// (see enroll). Until then the engine does, round robin: its
			// counter is not atomic, but only the acceptor's goroutine
			// calls Register (gnet's own accept, its other caller, serves
			// the private unix socket, which nothing connects to).
			gnet.WithLoadBalancing(gnet.RoundRobin),
			// The first tick is what says the event loops run (OnBoot
			// comes before they start); later ticks close idle sessions.
			gnet.WithTicker(true),
			gnet.WithTCPNoDelay(gnet.TCPNoDelay),
			gnet.WithLogger(gnetLogger{i.log}),
		)
		close(i.done)
	}()
	select {
	case <-i.ready:
		go acc.run(i.eng)
		return nil
	case <-i.done:
		acc.close(false)
		return fmt.Errorf("instance %s: start engine: %w", i.cfg.Name, i.err)
	}
}

// OnBoot records the engine. Its event loops do not run yet.
func (i *instance) OnBoot(eng gnet.Engine) gnet.Action {
	i.eng = eng
	return gnet.None
}

// reactorFor returns the reactor of loop, creating it on first use, or nil
// once the instance is stopping.
func (i *instance) reactorFor(loop gnet.EventLoop) *reactor {
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.stopped {
		return nil
	}
	r := i.reactors[loop]
	if r == nil {
		r = &reactor{inst: i, hub: i.hub, loop: loop, pace: newPacer()}
		i.reactors[loop] = r
		i.order = append(i.order, r)
		i.hub.AddFanout(r)
	}
	return r
}

// admit applies the connection limits to a new peer and counts it. It
// returns why the peer is refused, or "".
func (i *instance) admit(ip string) string {
	// The check and the count happen under one lock: two loops admitting
	// at once must not both take the last slot.
	i.mu.Lock()
	defer i.mu.Unlock()
	if max := i.limits.MaxConnections; max > 0 && i.conns.Load() >= int64(max) {
		return "server full (maxConnections " + strconv.Itoa(max) + "), try again later"
	}
	held := i.perIP[ip]
	if max := i.limits.MaxConnectionsPerIP; max > 0 && held >= max {
		return "too many connections from " + ip + " (maxConnectionsPerIP " + strconv.Itoa(max) + ")"
	}
	if !i.files.admits(held) {
		return "server nearly full: too many connections from " + ip + ", try again later"
	}
	i.perIP[ip]++
	i.conns.Add(1)
	i.files.open.Add(1)
	return ""
}

func (i *instance) release(ip string) {
	i.conns.Add(-1)
	i.files.open.Add(-1)
	i.mu.Lock()
	if i.perIP[ip]--; i.perIP[ip] <= 0 {
		delete(i.perIP, ip)
	}
	i.mu.Unlock()
}

// remoteIP returns c's remote address and its IP, which the per-IP
// limit counts.
func remoteIP(c gnet.Conn) (remote, ip string) {
	remote = c.RemoteAddr().String()
	ip, _, _ = net.SplitHostPort(remote)
	return remote, ip
}

// OnOpen admits a connection and makes it a member of the room.
func (i *instance) OnOpen(c gnet.Conn) ([]byte, gnet.Action) {
	if _, tcp := c.RemoteAddr().(*net.TCPAddr); !tcp {
		return nil, gnet.Close // only the acceptor's connections are ours
	}
	_, ip := remoteIP(c)
	if i.stopping.Load() {
		return i.refusal("server is shutting down"), gnet.Close
	}
	if why := i.admit(ip); why != "" {
		i.countProtoErr(kindRefused)
		if r := i.reactorFor(c.EventLoop()); r != nil {
			// Accepted and closed at once: the closed counter and its
			// reason say so, and the open count never moves.
			r.counters.accepted.Add(1)
			r.counters.closed.Add(1)
			r.counters.closedBy[chat.ReasonRefused].Add(1)
		}
		return i.refusal(why), gnet.Close
	}
	r := i.reactorFor(c.EventLoop())
	if r == nil || r.st.shutdown {
		i.release(ip)
		return i.refusal("server is shutting down"), gnet.Close
	}
	now := time.Now().UnixNano()
	s := &session{r: r, conn: c, dec: i.codec.newDecoder(), since: now, lastRead: now}
	c.SetContext(s)
	r.add(s)
	r.counters.conns.Add(1)
	r.counters.accepted.Add(1)
	i.budget.conns.Add(1)
	if i.tls != nil {
		l := newTLSLayer(i.tls, s, c)
		s.dec, s.tls = &tlsDecoder{decoder: s.dec, l: l}, true
		go l.handshake(i) // it joins once that is done, in tlsReady
		return nil, gnet.None
	}
	if i.codec.handshake() {
		return nil, gnet.None // it joins once its handshake is done, in OnTraffic
	}
	// As in OnTraffic: the welcome goes straight into the session's batch,
	// and the join notice for this loop's other sessions is drained on the
	// way out, so joining costs the loop no wake-up of its own.
	r.traffic(s, s.join)
	if s.closeOnReturn() {
		return nil, gnet.Close
	}
	return nil, gnet.None
}

// OnTraffic decodes what the peer sent, then writes what that queued.
func (i *instance) OnTraffic(c gnet.Conn) gnet.Action {
	s, _ := c.Context().(*session)
	if s == nil || s.closing || s.muted {
		_, _ = c.Discard(-1)
		return gnet.None
	}
	s.read = true // the tick turns it into lastRead: no clock read per message
	s.r.traffic(s, func() { i.read(s, c) })
	if s.closeOnReturn() {
		return gnet.Close
	}
	return gnet.None
}

// read runs s's decoder over what c holds and deals with its verdict.
func (i *instance) read(s *session, c gnet.Conn) {
	in, msgs := s.bytesIn, s.msgsIn
	err := s.dec.decode(s, c)
	s.r.counters.bytesIn.Add(s.bytesIn - in)
	s.r.counters.msgsIn.Add(s.msgsIn - msgs)
	if err == nil {
		// The decoder writes its own answers (telnet negotiation, pongs)
		// past the batch and its check.
		s.backlog()
		return
	}
	_, _ = c.Discard(-1)
	pe, ok := asProtocolError(err)
	switch {
	case !ok:
		s.fail(chat.ReasonError, nil)
	case pe.Kind == "":
		s.fail(chat.ReasonClientClosed, pe)
	default:
		i.countProtoErr(pe.Kind)
		s.fail(chat.ReasonProtocolError, pe)
	}
}

// OnClose takes a closed connection out of the room.
func (i *instance) OnClose(c gnet.Conn, err error) gnet.Action {
	s, _ := c.Context().(*session)
	if s == nil {
		return gnet.None
	}
	c.SetContext(nil)
	s.closed = true
	if s.tls {
		s.layer().pipe.Close() // ends a handshake under way
	}
	// As a traffic pass: the leave notice for this loop's sessions goes
	// out as OnClose ends, not after an eventfd round trip.
	s.r.traffic(nil, func() { i.leave(s, c, err) })
	return gnet.None
}

// leave takes s, whose connection c closed with err, out of its reactor
// and the room, and counts and logs why. Event loop only.
func (i *instance) leave(s *session, c gnet.Conn, err error) {
	r := s.r
	r.remove(s)
	remote, ip := remoteIP(c)
	i.release(ip)
	reason := s.reason
	if !s.closing {
		reason = chat.ReasonClientClosed
		if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, syscall.ECONNRESET) && !errors.Is(err, syscall.EPIPE) {
			reason = chat.ReasonError
			r.counters.errors.Add(1)
		}
	}
	s.reason = reason
	// Out of the room before it is no longer counted open, and counted
	// closed before that: a snapshot, which reads the room first, never
	// sees more members than open connections, and one that sees no
	// connection open has counted every close.
	var uid uint64
	if m := s.member(); m != nil {
		uid = m.UID()
		i.hub.Leave(m)
	}
	r.counters.closed.Add(1)
	r.counters.closedBy[reason].Add(1)
	r.counters.conns.Add(-1)
	// gnet releases the outbound buffer with the connection.
	i.budget.conns.Add(-1)
	r.account(r.note(s, 0))
	i.closes.closed(time.Now(), uid, remote, ip, reason, err)
}

// OnTick reports the instance ready the first time (gnet starts the ticker
// once every event loop runs), then closes idle connections.
func (i *instance) OnTick() (time.Duration, gnet.Action) {
	i.readyOnce.Do(func() { close(i.ready) })
	every := i.tickEvery()
	now := time.Now()
	for _, r := range i.reactorList() {
		_ = r.execute(context.Background(), func() { r.tick(now) })
	}
	return every, gnet.None
}

// tickEvery is how often the timers need checking: a fraction of the
// shortest one, at most a second.
func (i *instance) tickEvery() time.Duration {
	l := i.limits
	every := time.Duration(0)
	for _, d := range []time.Duration{l.IdleTimeout / 4, l.PingInterval / 4, l.PongTimeout / 4} {
		if d > 0 && (every == 0 || d < every) {
			every = d
		}
	}
	if every == 0 {
		// At least every second: handshakeTimeout, the send budget's
		// refresh and lingerTimeout need it, and a pass over the
		// sessions costs microseconds.
		return time.Second
	}
	return min(max(every, 10*time.Millisecond), time.Second)
}

func (i *instance) reactorList() []*reactor {
	i.mu.Lock()
	defer i.mu.Unlock()
	return append([]*reactor(nil), i.order...)
}

func (i *instance) countProtoErr(kind string) {
	v, ok := i.protoErr.Load(kind)
	if !ok {
		v, _ = i.protoErr.LoadOrStore(kind, new(atomic.Uint64))
	}
	v.(*atomic.Uint64).Add(1)
}

// stop ends the instance gracefully: no new connections, every session gets
// what was queued before, then the shutdown notice, then close; whatever is
// left when ctx ends is closed by force. It waits for the engine to exit.
func (i *instance) stop(ctx context.Context) {
	i.stopping.Store(true)
	if i.down {
		return // nothing runs
	}
	i.acc.close(true)
	i.mu.Lock()
	i.stopped = true
	rs := append([]*reactor(nil), i.order...)
	i.mu.Unlock()

	ev := &chat.Event{Kind: chat.KindShutdown, Time: time.Now()}
	for _, r := range rs {
		r.Broadcast(ev)
	}
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
wait:
	for i.conns.Load() > 0 {
		select {
		case <-ctx.Done():
			break wait
		case <-t.C:
			for _, r := range rs {
				_ = r.execute(ctx, func() { r.closeDrained(false) })
			}
		}
	}
	for _, r := range rs {
		i.hub.RemoveFanout(r)
	}
	i.closes.flush(time.Now())
	// Engine.Stop polls for the end every 500ms; with a done context it
	// only signals the engine, and gnet.Run's return says when it ended.
	done, cancel := context.WithCancel(context.Background())
	cancel()
	_ = i.eng.Stop(done)
	<-i.done
	for _, r := range rs {
		r.stopPacing() // the loops are done: no flush arms it again
	}
}
