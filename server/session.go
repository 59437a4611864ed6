package server

import (
	"time"

	"github.com/fastws/fastws/chat"
	"github.com/panjf2000/gnet/v2"
	"golang.org/x/sys/unix"
)

// session is one connection: the chat.Session the room writes to, and the
// state its event loop keeps for it. Every field but r is owned by the
// reactor's event loop.
//
// The fields a message touches come first, in the first 64 bytes: with
// thousands of connections a session is rarely in the cache when its
// bytes arrive, and each further cache line is one more miss per message.
//
// The chat.Member lives in the session too: one allocation per connection,
// 256 bytes, a size class whose objects start on a cache line.
type session struct {
	// Cache line 0: what reading a message touches.
	r        *reactor
	dec      decoder
	lastRead int64 // unix nanoseconds of the tick that saw read set
	read     bool  // bytes arrived since the last tick
	closing  bool  // no more output is queued; closes once written
	muted    bool  // input is ignored: a Close is queued
	welcomed bool  // the welcome is queued: room-wide events are for it now
	closed   bool
	shut     bool // the write side is shut: lingering until the peer closes (see lingers)
	tls      bool // dec is a *tlsDecoder: bytes go through its TLS layer (see layer)
	reason   chat.CloseReason
	msgsIn   uint64
	bytesIn  uint64

	// Line 1: what queueing and writing output touches. A lone buffer,
	// the usual reply, waits in first; batch, the reactor's (see
	// takeBatch), holds two or more. A buffer that continues the last
	// one in memory extends it instead (see extend): a fan-out's lines
	// for a session, next to each other in the reactor's wire buffer,
	// are usually one buffer however many there are.
	first             []byte
	batch             *batch
	pending           int32 // messages in first and batch
	urgent            bool  // the batch holds more than room-wide lines: it is not paced (see pacer)
	paced             bool  // the batch waits in the pacer's list
	msgsOut, bytesOut uint64

	// Line 2: the connection and the member, whose fields a message
	// reads come first (chat.Member says so).
	conn gnet.Conn
	m    chat.Member

	since    int64 // unix nanoseconds of the connect
	idx      int32 // position in r.sessions
	queued   int32 // bytes in gnet's outbound buffer as last noted (sendBudget)
	pingSent int64 // unix nanoseconds of the last keepalive ping, 0 if none; once shut, of the shutdown
}

// Send queues ev for this session. It never blocks and is safe for
// concurrent use.
func (s *session) Send(ev *chat.Event) { s.r.enqueue(delivery{s: s, ev: ev}) }

// Reply queues ev, an answer to the line (or join) this session's loop is
// handling. During OnTraffic or OnOpen, with nothing queued for the
// reactor by others, it goes straight into the session's batch, which
// the traffic pass writes at its end: no lock, no outbox entry. Otherwise it is Send, which
// keeps the order of what others queued before it. Event loop only
// (chat.Session says so).
func (s *session) Reply(ev *chat.Event) {
	if r := s.r; r.st.current == s && r.queued.Load() == 0 {
		r.deliver(s, ev)
		return
	}
	s.Send(ev)
}

// Close closes the session with reason r once what is queued before it is
// written. It never blocks, is safe for concurrent use and idempotent.
func (s *session) Close(r chat.CloseReason) { s.r.enqueue(delivery{s: s, close: true, reason: r}) }

// member returns the session's place in the room, nil until it joins (a
// websocket joins after its handshake). uid 0 is never handed out.
func (s *session) member() *chat.Member {
	if s.m.UID() == 0 {
		return nil
	}
	return &s.m
}

// listening reports whether the room takes input from the session: it
// has joined and is neither closing nor closed. Event loop only.
func (s *session) listening() bool { return !s.closing && !s.muted && !s.closed && s.member() != nil }

// line hands one decoded client line to the room. Event loop only.
func (s *session) line(b []byte) {
	if s.listening() {
		s.msgsIn++
		s.r.hub.Handle(s.member(), b)
	}
}

// say hands one structured message (fastws.v1.json) to the room: text to
// everyone (to = 0) or to uid to. Event loop only.
func (s *session) say(to uint64, text string) {
	if s.listening() {
		s.msgsIn++
		s.r.hub.Say(s.member(), to, text)
	}
}

// join makes the session a member of the room: it gets the welcome, the
// others the join notice. A session whose connection is already gone
// does not join: OnClose, which takes members out of the room, has run
// for it (a write that failed on the way, such as the websocket's 101,
// closes the connection at once), so a member joined now would stay in
// the room for good. Event loop only, once.
func (s *session) join() {
	if s.closed {
		return
	}
	i := s.r.inst
	s.r.hub.JoinMember(&s.m, s, chat.JoinOptions{
		Protocol: i.cfg.Protocol.String(),
		Rate:     i.limits.MessagesPerSecond,
		Burst:    i.limits.MessageBurst,
		// Bytes as well as lines: without it, one sender's legal burst
		// of long lines overflows every reader's maxSendBuffer.
		BytesRate:  float64(i.limits.BytesPerSecond),
		BytesBurst: i.limits.BytesBurst,
		Fanout:     s.r,
	})
}

// fail ends the session for a protocol error: the member is told pe.Msg,
// pe.Frame is written, then the connection closes; input is ignored from
// now on. Event loop only.
func (s *session) fail(reason chat.CloseReason, pe *protocolError) {
	s.muted = true
	if pe != nil {
		if m := s.member(); pe.Msg != "" && m != nil {
			s.r.hub.Refuse(m, pe.Msg)
		}
		if pe.Frame != nil {
			s.r.enqueue(delivery{s: s, raw: pe.Frame})
		}
	}
	s.Close(reason)
}

// encoded returns ev in the session's wire format from ev's own cache, so
// that an event for many sessions is encoded once per format. Event loop
// only.
func (s *session) encoded(ev *chat.Event) []byte {
	return ev.Encoded(s.dec.format(), func(ev *chat.Event) []byte { return s.dec.appendEvent(nil, ev) })
}

// push appends encoded bytes, one message for this session alone, to the
// session's batch, which then goes out in the next flush, paced or not.
// Event loop only.
func (s *session) push(b []byte) {
	s.urgent = true
	if s.paced && !s.closing && !s.closed {
		s.r.unpace(s)
	}
	s.pushN(b, 1)
}

// pushN appends b, n messages, to the session's batch: room-wide lines,
// which the reactor may pace, unless push marked it urgent. Event loop
// only.
func (s *session) pushN(b []byte, n int) {
	if s.closing || s.closed {
		return
	}
	s.pending += int32(n)
	switch {
	case len(s.first) == 0:
		s.r.dirty = append(s.r.dirty, s)
		s.first = b
	case s.batch == nil:
		if !extend(&s.first, b) {
			s.batch = s.r.takeBatch()
			s.batch.bufs = append(s.batch.bufs, s.first, b)
		}
	default:
		bufs := s.batch.bufs
		if !extend(&bufs[len(bufs)-1], b) {
			s.batch.bufs = append(bufs, b)
		}
	}
}

// extend makes *p cover b as well if b starts where *p ends, in the same
// array, and reports whether it did. The bytes are the same either way;
// one buffer is one iovec for the kernel to copy instead of many.
func extend(p *[]byte, b []byte) bool {
	rest := (*p)[len(*p):cap(*p)]
	if len(b) == 0 || len(b) > len(rest) || &rest[0] != &b[0] {
		return false
	}
	*p = (*p)[:len(*p)+len(b)]
	return true
}

// batch holds a session's pending buffers when there are two or more.
type batch struct{ bufs [][]byte }

// startClose stops further output and records why. Event loop only.
func (s *session) startClose(r chat.CloseReason) {
	if !s.closing {
		s.closing, s.reason = true, r
		s.r.closing = append(s.r.closing, s)
		if s.paced { // its lines go out now, then it closes
			s.r.unpace(s)
		}
	}
}

// writeBatch hands the session's batch to gnet and empties it; it returns
// the messages and bytes handed over. A batch goes out in one writev when
// the socket takes it. Once gnet holds unsent output, it keeps each buffer
// it is given as a node of a list that it walks on every write, so a
// backlog of many small lines is handed over as one buffer instead; so
// are more buffers than minIOV, as golang.org/x/sys/unix.Writev
// allocates their iovecs (and the kernel's copy of one buffer costs less
// than the walk of many). Event loop only.
func (s *session) writeBatch() (msgs, n uint64) {
	one, msgs := s.first, uint64(s.pending)
	var b [][]byte
	if s.batch != nil {
		b = s.batch.bufs
	}
	defer func() {
		s.first, s.pending = nil, 0
		if s.batch != nil {
			s.r.putBatch(s.batch)
			s.batch = nil
		}
	}()
	switch {
	case s.closed, s.slow():
		return 0, 0
	case len(b) == 0:
		return s.write(msgs, one)
	case len(b) > minIOV || s.conn.OutboundBuffered() > 0 || s.tls:
		// TLS: the batch in as few records (of up to 16 KiB), and so
		// writes, as it takes. gnet (and the TLS layer) copy what they
		// keep, so the reactor's buffer is reused at once.
		r := s.r
		r.joined = r.joined[:0]
		for _, p := range b {
			r.joined = append(r.joined, p...)
		}
		return s.write(msgs, r.joined)
	}
	w, err := s.conn.Writev(b) // with send, the only writes to a connection
	if err != nil {
		return 0, 0
	}
	return msgs, uint64(w)
}

// write hands p, which holds msgs messages, to gnet in one buffer and
// returns the messages and bytes handed over.
func (s *session) write(msgs uint64, p []byte) (uint64, uint64) {
	if w, ok := s.send(p); ok {
		return msgs, uint64(w)
	}
	return 0, 0
}

// send writes p to the connection now, past the batch: a protocol's own
// bytes (telnet negotiation, pongs, the websocket handshake's answer, a
// farewell) and a batch of one. With writeBatch's writev, it is the one
// place where bytes leave a connection. gnet keeps what the socket does
// not take; a write that fails closes the connection (OnClose runs
// before send returns). Event loop only.
func (s *session) send(p []byte) (int, bool) {
	if s.tls {
		return s.layer().send(p)
	}
	w, err := s.conn.Write(p)
	return w, err == nil
}

// slow reports whether s is closing as a slow consumer: its output is
// neither written nor counted any more. Event loop only.
func (s *session) slow() bool { return s.closing && s.reason == chat.ReasonSlowConsumer }

// backlog returns the bytes gnet holds for s, and closes s as a slow
// consumer past maxSendBuffer: a peer that does not read what it is sent,
// or what it asks for (telnet negotiation, pongs), must not grow the
// daemon's memory. Event loop only.
func (s *session) backlog() int {
	q := s.conn.OutboundBuffered()
	if q > s.r.inst.limits.MaxSendBuffer && !s.closing {
		s.r.counters.slowConsumers.Add(1)
		s.startClose(chat.ReasonSlowConsumer)
	}
	return q
}

// drained reports whether a closing session may be closed now: once its
// batch is written, at once, or after a shutdown notice once its output
// has left gnet's buffer. A slow consumer is not waited for.
func (s *session) drained() bool {
	if s.slow() {
		return true
	}
	return len(s.first) == 0 && (s.reason != chat.ReasonShutdown || s.conn.OutboundBuffered() == 0)
}

// closeOnReturn reports whether the callback handling s (OnTraffic,
// OnOpen) must return gnet.Close: s asked to close and its output is
// written. Closing a connection inside its own callback is gnet's to do,
// not ours; the farewell is written here, first. Event loop only.
func (s *session) closeOnReturn() bool {
	if !s.closing || s.closed || s.shut || !s.drained() {
		return false
	}
	s.sayFarewell()
	return !s.lingers() || !s.halfClose(time.Now().UnixNano())
}

// lingerTimeout bounds how long a half-closed session waits for its peer
// to close (see lingers).
const lingerTimeout = 2 * time.Second

// lingers reports whether the server's close of s, for its reason, waits
// for the peer: the peer may still be sending (a line too long, a flood,
// input after /quit), and closing with its input unread makes the kernel
// reset the connection; a reset throws away what the peer had not read
// yet, such as the line that says why it is closed. So the server shuts
// its write side instead (the peer reads everything, then the end),
// drops what still arrives, and closes once the peer does or after
// lingerTimeout, as web servers do (nginx's lingering close).
func (s *session) lingers() bool {
	switch s.reason {
	case chat.ReasonProtocolError, chat.ReasonFlood, chat.ReasonClientQuit:
		return true
	}
	return false
}

// halfClose shuts s's write side once gnet holds none of its output and
// reports whether it did; if it did not, s is to be closed at once (a
// peer that does not read is not waited for). Event loop only.
func (s *session) halfClose(now int64) bool {
	if s.conn.OutboundBuffered() > 0 || unix.Shutdown(s.conn.Fd(), unix.SHUT_WR) != nil {
		return false
	}
	s.shut, s.pingSent = true, now
	return true
}

// lingerOver reports whether a half-closed session has waited long
// enough for its peer.
func (s *session) lingerOver(now int64) bool { return now-s.pingSent > int64(lingerTimeout) }

// sayFarewell writes what the protocol sends just before the server
// closes the connection (a websocket close frame), if anything.
func (s *session) sayFarewell() {
	if b := s.dec.farewell(s.reason); b != nil {
		s.send(b)
	}
}
