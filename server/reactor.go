package server

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fastws/fastws/chat"
	"github.com/panjf2000/gnet/v2"
)

// delivery is one entry of a reactor's outbox: an event or raw bytes for
// one session (s set), a room-wide event (s nil), or a close.
type delivery struct {
	s      *session
	ev     *chat.Event
	raw    []byte // bytes in the session's wire format, sent as they are
	close  bool
	reason chat.CloseReason
	fn     func() // run on the loop for s (session.Run)
}

// reactor is one gnet event loop of an instance and the chat.Fanout of the
// sessions it owns.
type reactor struct {
	inst *instance
	hub  *chat.Hub
	loop gnet.EventLoop

	mu     sync.Mutex
	outbox []delivery   // guarded by mu
	queued atomic.Int32 // len(outbox), for Reply to read without mu
	st     loopState    // what the loop is doing: see traffic and task

	// Owned by the event loop.
	spare    []delivery
	sessions []*session
	dirty    []*session               // sessions with a batch to write
	closing  []*session               // sessions to close once their output is written
	held     int64                    // bytes its sessions hold in gnet's outbound buffers, as noted (sendBudget)
	scratch  []byte                   // encodeOne's output until flush
	wire     [chat.MaxFormats][]byte  // room-wide events in each wire format, one after another, until flush (see fanOut)
	ends     [chat.MaxFormats][]int32 // where each event of a run ends in its wire buffer
	joined   []byte                   // a batch of many buffers as one, in writeBatch
	batches  []*batch                 // batches no session holds, for takeBatch
	tlsBuf   []byte                   // a TLS session's plaintext while it is decoded
	exp      expiries                 // when authenticated sessions' tokens expire (see expiry.go)
	pace     pacer                    // when room-wide batches are written (see pace.go)

	counters  reactorCounters
	enrolling atomic.Int64 // connections the acceptor gave this loop and has no result for (opened ones count twice for a moment)
}

// loopState is what a reactor's event loop is doing, as far as the
// outbox is concerned: whether a drain will come without a wake-up, and
// whether our code already runs on the loop. It changes only through
// traffic and task (and drain, which ends a pass's wait), so that a new
// callback cannot forget a step of "drain the outbox before polling
// again".
type loopState struct {
	scheduled bool // guarded by reactor.mu: a Run is pending on the loop
	busy      bool // guarded by reactor.mu: a traffic pass runs and drains the outbox at its end

	// Owned by the event loop.
	current  *session // the session of the traffic pass: gnet closes it, not closeDrained
	working  bool     // our code runs on the loop (a traffic pass or a task)
	shutdown bool     // the shutdown notice went out: no new sessions
}

// reactorCounters are written by the event loop and read by Stats.
type reactorCounters struct {
	conns, accepted, closed            atomic.Int64
	msgsIn, msgsOut, bytesIn, bytesOut atomic.Uint64
	writes                             atomic.Uint64 // writes that carried messages (see flush)
	errors, slowConsumers              atomic.Uint64
	broadcasts, privates               atomic.Uint64 // deliveries of room-wide and private messages
	closedBy                           [chat.NumReasons]atomic.Uint64
}

// Broadcast queues a room-wide event for the reactor's sessions. It never
// blocks and is safe for concurrent use.
//
// A reactor without sessions is not woken for it: a session that opens
// later could only have got the events queued after its welcome. Only the
// shutdown notice is always queued, as it also shuts the reactor.
func (r *reactor) Broadcast(ev *chat.Event) {
	if r.counters.conns.Load() == 0 && ev.Kind != chat.KindShutdown {
		return
	}
	r.enqueue(delivery{ev: ev})
}

// enqueue adds d to the outbox and wakes the loop if no wake-up is pending.
func (r *reactor) enqueue(d delivery) {
	r.mu.Lock()
	r.outbox = append(r.outbox, d)
	r.queued.Store(int32(len(r.outbox)))
	// No wake-up while the loop is in OnTraffic (or OnOpen, or a held
	// OnClose): it drains the outbox before it polls again. A private
	// message to a member of the same reactor so costs no eventfd write
	// and goes out in the same loop iteration.
	wake := r.claimWake()
	r.mu.Unlock()
	if wake {
		r.wake()
	}
}

// claimWake reports whether the caller is to wake the loop for a drain:
// none is pending and no traffic pass will drain anyway. Its caller
// holds r.mu.
func (r *reactor) claimWake() bool {
	wake := !r.st.scheduled && !r.st.busy
	r.st.scheduled = r.st.scheduled || wake
	return wake
}

// wake queues a drain on the loop, after claimWake said to.
func (r *reactor) wake() {
	if err := r.loop.Execute(context.Background(), r); err != nil {
		// The engine is gone; its connections are closed with it.
		r.mu.Lock()
		r.st.scheduled = false
		r.mu.Unlock()
	}
}

// Run drains the outbox on the event loop: it implements gnet.Runnable.
func (r *reactor) Run(context.Context) error {
	r.task(r.drain)
	return nil
}

// traffic runs fn, the handling of s's input (OnTraffic), its join
// (OnOpen) or its end (OnClose, s nil), as a traffic pass: what is queued
// for the reactor meanwhile, by fn or by other loops, waits for the pass's
// end instead of waking the loop, and goes out then in one drain. A reply
// to a member of the same loop so costs no eventfd write and leaves in
// the same loop iteration.
//
// Inside our own code on the loop (a write there failed and gnet called
// OnClose), fn just runs: a drain there would run inside the loops of
// that code, over the slices it walks, and what fn queued goes out when
// that code's pass ends, or with a wake-up. Event loop only.
func (r *reactor) traffic(s *session, fn func()) {
	if r.st.working {
		fn()
		return
	}
	r.mu.Lock()
	r.st.busy = true
	r.mu.Unlock()
	r.st.current, r.st.working = s, true
	fn()
	r.drain()
	r.st.current, r.st.working = nil, false
}

// task runs fn, our code on the loop that is not a traffic pass (a
// drain, a tick, a stop), marked as running for traffic. Event loop
// only: everything else runs its code on the loop through execute.
func (r *reactor) task(fn func()) {
	was := r.st.working
	r.st.working = true
	fn()
	r.st.working = was
}

// drain processes the outbox and writes the batches. Event loop only,
// inside a traffic pass or a task.
func (r *reactor) drain() {
	r.mu.Lock()
	q := r.outbox
	r.outbox = r.spare[:0]
	if len(q) > 0 {
		r.queued.Store(0)
	}
	r.st.scheduled = false
	r.st.busy = false
	r.mu.Unlock()

	for i := 0; i < len(q); i++ {
		d := &q[i]
		switch {
		case d.fn != nil:
			if !d.s.closed && !d.s.closing {
				d.fn()
			}
		case d.close:
			if !d.s.closed {
				d.s.startClose(d.reason)
			}
		case d.raw != nil:
			d.s.push(d.raw)
		case d.s != nil:
			r.deliver(d.s, d.ev)
		default: // room-wide: with those after it for the same room, in one walk
			j := i + 1
			for j < len(q) && sameRun(&q[j], d.ev) {
				j++
			}
			r.fanOut(q[i:j])
			i = j - 1
		}
	}
	clear(q)
	r.spare = q[:0]
	if cap(q) > keepOutbox {
		r.spare = nil // a burst is over: keep no big array
	}
	r.flush()
}

// deliver queues ev, for s alone, in s's batch. Event loop only.
func (r *reactor) deliver(s *session, ev *chat.Event) {
	if ev.Kind == chat.KindWelcome {
		// Room-wide events queued before the welcome predate the member;
		// it gets those queued after it.
		s.welcomed = true
	}
	if ev.Kind == chat.KindMessage && !ev.Echo {
		r.counters.privates.Add(1)
	}
	s.push(r.encodeOne(s, ev))
	ev.Release() // encoded: a private message is ours to give back
}

// encodeOne renders ev for s alone. It is appended to the reactor's
// scratch buffer, which is reused once flush has handed the batches to
// gnet (gnet copies what the socket does not take at once), so a reply
// costs no allocation. A shared event is encoded once instead: see
// session.encoded. Event loop only.
func (r *reactor) encodeOne(s *session, ev *chat.Event) []byte {
	start := len(r.scratch)
	r.scratch = s.dec.appendEvent(r.scratch, ev)
	// Full slice expression: a later append must not write into this one.
	return r.scratch[start:len(r.scratch):len(r.scratch)]
}

// fanOut appends a run of room-wide events (see sameRun) to the batch
// of every joined session in their room but each event's Except: for a
// room other than the lobby, the room's members on this loop, which chat
// lists for it; for the lobby and what is for everyone (a nick change,
// the shutdown notice), every session.
//
// The events are encoded once per wire format, one after another in the
// reactor's wire buffer, and a session that gets them all gets them as
// one buffer, which continues its batch's last one if that was the
// previous run's (see extend). One walk over the sessions per run, not
// per event: under load a drain holds dozens of lines, and the sessions
// of a loop with thousands do not fit in the CPU's cache.
//
// A member joins, leaves and closes on this loop, so a room's list is as
// it is now, not as when the events were published: one that left
// meanwhile does not get them, one that joined meanwhile does.
func (r *reactor) fanOut(evs []delivery) {
	rs := newRun(evs)
	k := len(evs)
	var n, touched int // chat messages delivered; sessions given lines
	// With requireAuth, a member that has not authenticated reads nothing
	// said in the rooms (the lobby's lines, the server's to everyone, nick
	// changes), only what is for it alone and the shutdown notice: else a
	// client that reconnects every authTimeout reads the lobby for good.
	gated := evs[0].ev.Kind != chat.KindShutdown && r.hub.AuthRequired()
	if room := evs[0].ev.Room; room != nil && !room.IsLobby() {
		for _, m := range room.Local(r) {
			s, ok := m.Session().(*session)
			if !ok || s.closing || gated && !m.Authenticated() {
				continue
			}
			touched++
			if uid := m.UID(); uid == rs.except || rs.mixed {
				n += r.pushSome(&rs, s, uid, true)
				continue
			}
			f := s.dec.format() // r.encoding, inlined by hand: once per session
			if rs.enc[f] == nil {
				r.encodeRun(&rs, f, s)
			}
			s.pushN(rs.enc[f], k)
			n += rs.msgs
		}
	} else {
		for _, s := range r.sessions {
			if !s.welcomed || s.closing || gated && !s.m.Authenticated() {
				continue
			}
			touched++
			if uid := s.m.UID(); uid == rs.except || rs.mixed || rs.lobby && !s.m.InLobby() {
				n += r.pushSome(&rs, s, uid, !rs.lobby || s.m.InLobby())
				continue
			}
			f := s.dec.format() // r.encoding, inlined by hand: once per session
			if rs.enc[f] == nil {
				r.encodeRun(&rs, f, s)
			}
			s.pushN(rs.enc[f], k)
			n += rs.msgs
		}
	}
	if n > 0 {
		r.counters.broadcasts.Add(uint64(n))
	}
	// The lines queued, for pacing's rate: an estimate, as pushSome gives
	// a session only the events that are for it.
	r.pace.fanned += touched * k
	if evs[0].ev.Kind == chat.KindShutdown { // a run of its own
		r.st.shutdown = true
		for _, s := range r.sessions {
			s.startClose(chat.ReasonShutdown)
		}
	}
}

// sameRun reports whether d, an outbox entry, is a room-wide event that
// fanOut may take with ev, the first of a run: for the same audience (a
// room other than the lobby, or the lobby and everyone). The shutdown
// notice runs alone, as it closes every session after it.
func sameRun(d *delivery, ev *chat.Event) bool {
	if d.s != nil || d.fn != nil || d.close || d.raw != nil ||
		d.ev.Kind == chat.KindShutdown || ev.Kind == chat.KindShutdown {
		return false
	}
	return audience(d.ev) == audience(ev)
}

// audience returns ev's room if it is one other than the lobby, or nil:
// the lobby's events and those for everyone are fanned out together.
func audience(ev *chat.Event) *chat.Room {
	if ev.Room != nil && !ev.Room.IsLobby() {
		return ev.Room
	}
	return nil
}

// run is fanOut's view of its events.
type run struct {
	evs    []delivery
	enc    [chat.MaxFormats][]byte // the events' encodings, one after another; nil until a session needs the format
	except uint64                  // the uid that events skip, 0 if none does
	mixed  bool                    // events skip different uids: each session checks every event
	lobby  bool                    // some event is for the lobby's members only, not everyone's
	msgs   int                     // chat messages among evs
}

// newRun returns the run of evs.
func newRun(evs []delivery) run {
	rs := run{evs: evs}
	for i := range evs {
		ev := evs[i].ev
		rs.lobby = rs.lobby || ev.Room != nil
		if ev.Kind == chat.KindMessage {
			rs.msgs++
		}
		switch {
		case ev.Except == 0 || ev.Except == rs.except:
		case rs.except == 0:
			rs.except = ev.Except
		default:
			rs.mixed = true
		}
	}
	return rs
}

// encoding returns rs's events in s's wire format, encoding them the
// first time.
func (r *reactor) encoding(rs *run, s *session) []byte {
	f := s.dec.format()
	if rs.enc[f] == nil {
		r.encodeRun(rs, f, s)
	}
	return rs.enc[f]
}

// pushSome appends to s's batch the events of rs it gets, as the session
// with uid, in the lobby or not (true for a run that is not the lobby's),
// and returns the chat messages among them. Each stretch of them is one
// buffer.
func (r *reactor) pushSome(rs *run, s *session, uid uint64, inLobby bool) int {
	enc := r.encoding(rs, s)
	ends := r.ends[s.dec.format()]
	msgs, from := 0, -1
	for i := range rs.evs {
		ev := rs.evs[i].ev
		if ev.Except != uid && (inLobby || ev.Room == nil) {
			if from < 0 {
				from = i
			}
			if ev.Kind == chat.KindMessage {
				msgs++
			}
			continue
		}
		if from >= 0 {
			s.pushN(enc[startOf(ends, from):ends[i-1]], i-from)
			from = -1
		}
	}
	if from >= 0 {
		s.pushN(enc[startOf(ends, from):], len(rs.evs)-from)
	}
	return msgs
}

// startOf returns where event i of a run starts in its encoding.
func startOf(ends []int32, i int) int32 {
	if i == 0 {
		return 0
	}
	return ends[i-1]
}

// encodeRun encodes rs's events in s's wire format f into the reactor's
// wire buffer, each once (see session.encoded), and notes where each
// ends. The run's slice keeps the buffer's capacity: the next run's
// bytes follow it, so that a session's batch can extend over both.
func (r *reactor) encodeRun(rs *run, f int, s *session) {
	w := r.wire[f]
	start := len(w)
	ends := r.ends[f][:0]
	for i := range rs.evs {
		w = append(w, s.encoded(rs.evs[i].ev)...)
		ends = append(ends, int32(len(w)-start))
	}
	r.wire[f], r.ends[f] = w, ends
	rs.enc[f] = w[start:]
}

// takeBatch returns an empty batch for a session.
func (r *reactor) takeBatch() *batch {
	n := len(r.batches)
	if n == 0 {
		return new(batch)
	}
	b := r.batches[n-1]
	r.batches[n-1] = nil
	r.batches = r.batches[:n-1]
	return b
}

// putBatch takes back a batch that a session wrote.
func (r *reactor) putBatch(b *batch) {
	clear(b.bufs)
	b.bufs = b.bufs[:0]
	r.batches = append(r.batches, b)
}

// minIOV is the most buffers writeBatch hands to one writev: past 8,
// golang.org/x/sys/unix.Writev allocates the iovecs.
const minIOV = 8

// flush writes the pending batches but those that wait for the pacer's
// next burst (see pace.go), then closes the sessions that asked for it
// once their output has left gnet's buffer.
func (r *reactor) flush() {
	var msgs, bytes, writes uint64
	var queued int64 // change in gnet's outbound buffers, for the budget
	if r.pacing() {
		r.paceFlush(monoNow())
	}
	for i := 0; i < len(r.dirty); i++ { // evict may close, and so unpace, some
		s := r.dirty[i]
		if len(s.first) == 0 {
			continue // nothing left: closed before its turn
		}
		s.urgent = false
		n, w := s.writeBatch()
		if n > 0 {
			writes++
		}
		s.msgsOut += n
		s.bytesOut += w
		msgs += n
		bytes += w
		if s.closed {
			continue
		}
		q := s.backlog()
		if s.slow() {
			q = 0 // gnet frees its buffer as it closes: held by no one now
		}
		// Checked per session that grew, not once per flush: one flush
		// of a fan-out can queue a line for thousands of sessions.
		d := r.note(s, q)
		if queued += d; queued >= publishEvery || queued <= -publishEvery {
			r.account(queued)
			queued = 0
		}
		if d > 0 && r.inst.budget.over(queued) {
			r.account(queued)
			queued = 0
			r.evict()
		}
	}
	r.account(queued)
	r.paceBurstDone()
	clear(r.dirty)
	r.dirty = r.dirty[:0]
	r.scratch = r.scratch[:0]
	if cap(r.scratch) > keepScratch {
		r.scratch = nil // a burst is over: keep no big buffer
	}
	for f := range r.wire {
		switch {
		case len(r.pace.list) == 0:
			if r.wire[f] = r.wire[f][:0]; cap(r.wire[f]) > keepScratch {
				r.wire[f] = nil
			}
		case len(r.wire[f]) > keepScratch:
			// Paced batches hold on to this one: new lines go to a new
			// one, and this is freed once they are written.
			r.wire[f] = nil
		}
	}
	if cap(r.joined) > keepScratch {
		r.joined = nil
	}
	r.counters.msgsOut.Add(msgs)
	r.counters.writes.Add(writes)
	r.counters.bytesOut.Add(bytes)
	r.closeDrained(false)
}

// closeDrained closes the closing sessions that are drained, or all of
// them if force.
func (r *reactor) closeDrained(force bool) {
	keep := r.closing[:0]
	var now int64 // read once, if a session lingers
	clock := func() int64 {
		if now == 0 {
			now = time.Now().UnixNano()
		}
		return now
	}
	for _, s := range r.closing {
		switch {
		case s.closed:
		case s == r.st.current && !force:
			keep = append(keep, s) // OnTraffic (or OnOpen) returns gnet.Close for it
		case s.shut && !force && !r.st.shutdown && !s.lingerOver(clock()):
			keep = append(keep, s) // waits for its peer to close
		case s.shut:
			_ = r.loop.Close(s.conn)
		case force || s.drained():
			s.sayFarewell()
			if !force && !r.st.shutdown && s.lingers() && s.halfClose(clock()) {
				keep = append(keep, s)
				continue
			}
			_ = r.loop.Close(s.conn)
		default:
			keep = append(keep, s)
		}
	}
	clear(r.closing[len(keep):])
	r.closing = keep
}

// add registers a new session on the loop.
func (r *reactor) add(s *session) {
	s.idx = int32(len(r.sessions))
	r.sessions = append(r.sessions, s)
}

// remove unregisters a closed session on the loop.
func (r *reactor) remove(s *session) {
	last := len(r.sessions) - 1
	r.sessions[s.idx] = r.sessions[last]
	r.sessions[s.idx].idx = s.idx
	r.sessions[last] = nil
	r.sessions = r.sessions[:last]
	r.exp.forget(s)
}

// execute queues fn to run on the reactor's event loop, as a task.
func (r *reactor) execute(ctx context.Context, fn func()) error {
	return r.loop.Execute(ctx, gnet.RunnableFunc(func(context.Context) error {
		r.task(fn)
		return nil
	}))
}

// onLoop runs fn on the reactor's event loop and waits for it, or for ctx.
func (r *reactor) onLoop(ctx context.Context, fn func()) error {
	done := make(chan struct{})
	err := r.execute(ctx, func() {
		fn()
		close(done)
	})
	if err != nil {
		return err
	}
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// keepOutbox is the most outbox entries a reactor keeps room for between
// drains (48 bytes each).
const keepOutbox = 1024

// keepScratch is the largest scratch buffer a reactor keeps after a flush.
const keepScratch = 64 << 10

// keepBatch is the largest write batch array a reactor keeps between ticks.
const keepBatch = 16

// handshakeTimeout bounds how long a connection may take to become a
// member (the websocket upgrade) before it is closed.
const handshakeTimeout = 10 * time.Second

// tick enforces the instance's timers on every session of the loop:
// idleTimeout (nothing read for that long: told why, then closed) and the
// websocket keepalive (a ping after pingInterval of silence; closed if
// nothing, pong or otherwise, arrives within pongTimeout). One pass over
// the sessions per tick, which costs microseconds even at 50k sessions.
// Event loop only.
func (r *reactor) tick(now time.Time) {
	l := &r.inst.limits
	n := now.UnixNano()
	var idle *chat.Event
	for _, s := range r.sessions {
		if s.read {
			// Read since the last tick: lastRead is as precise as the
			// ticks, a fraction of the shortest timer.
			s.read, s.lastRead = false, n
		}
		switch {
		case s.closing:
		case s.member() == nil && n-s.since > int64(handshakeTimeout):
			s.startClose(chat.ReasonIdle) // never finished its websocket handshake
		case s.authExpired(n):
			s.push(s.encoded(&chat.Event{Kind: chat.KindError, Text: authTimeoutText, Time: now}))
			s.startClose(chat.ReasonAuthTimeout)
		case l.IdleTimeout > 0 && s.lastRead < n-int64(l.IdleTimeout):
			if idle == nil {
				idle = &chat.Event{Kind: chat.KindError, Text: "idle for " + l.IdleTimeout.String() + ", closing", Time: now}
			}
			if s.member() != nil {
				s.push(s.encoded(idle))
			}
			s.startClose(chat.ReasonIdle)
		case l.PingInterval <= 0:
		case s.pingSent > s.lastRead:
			if n-s.pingSent > int64(l.PongTimeout) {
				s.startClose(chat.ReasonPingTimeout)
			}
		case s.lastRead < n-int64(l.PingInterval):
			if p := s.dec.ping(); p != nil {
				s.push(p)
				s.pingSent = n
			}
		}
	}
	// A burst is over: keep no big batch array.
	r.batches = slices.DeleteFunc(r.batches, func(b *batch) bool { return cap(b.bufs) > keepBatch })
	r.checkExpiries(n, now)
	// gnet drains outbound buffers out of our sight: bring the budget
	// up to date, and act on it even if nothing is written now.
	r.refresh()
	if r.inst.budget.over(0) {
		r.evict()
	}
	r.flush()
}
