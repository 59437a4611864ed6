package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fastws/fastws/chat"
	"github.com/fastws/fastws/server/config"
	"github.com/panjf2000/gnet/v2"
)

// TLS is terminated on the event loop, by crypto/tls, over the gnet
// connection (README, "TLS", says why and what it costs):
//
//   - The handshake runs on a goroutine of the connection's own, as
//     crypto/tls's handshake blocks and cannot be resumed once a read
//     fails. It reads through a tlsPipe that OnTraffic feeds with what
//     arrives, and writes into the pipe, whose bytes a task on the loop
//     hands to gnet. The goroutine ends with the handshake, which the
//     tick bounds like a websocket upgrade (handshakeTimeout): a client
//     that never finishes it is closed, and the pipe's close ends the
//     goroutine.
//   - From then on only the loop uses the tls.Conn: OnTraffic decrypts
//     what gnet read (the pipe returns errWouldBlock, a temporary
//     net.Error, when it has no more, which crypto/tls passes up without
//     failing the connection), and the session's writes are encrypted
//     into gnet's outbound buffer. So what a client that does not read
//     leaves queued is gnet's, and maxSendBuffer and the send budget
//     count it as for a plain connection.
//
// A TLS connection so costs no descriptor and no goroutine once set up,
// and a plain connection one nil check per read and write.

// tlsState is an instance's TLS: its config and the certificate served,
// which reload swaps without touching connections. Safe for concurrent
// use.
type tlsState struct {
	cert atomic.Pointer[tls.Certificate]
	cfg  *tls.Config
}

// newTLSState loads ic's certificate pair.
func newTLSState(ic config.Instance) (*tlsState, error) {
	cert, _, err := config.LoadCertificate(ic, time.Now())
	if err != nil {
		return nil, err
	}
	t := &tlsState{}
	t.cert.Store(cert)
	t.cfg = &tls.Config{
		MinVersion: tls.VersionTLS12, // Go's default suites: no weak ones
		NextProtos: []string{"http/1.1"},
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			return t.cert.Load(), nil
		},
		// Full-size records: a fan-out's batch leaves in as few records,
		// and so writes, as it can. Dynamic sizing helps a page's first
		// paint over slow links, which the chat page's size does not need.
		DynamicRecordSizingDisabled: true,
	}
	return t, nil
}

// renew loads ic's certificate pair again and serves it to new
// handshakes from now on; a pair that does not load is refused and the
// current one stays.
func (t *tlsState) renew(ic config.Instance) error {
	cert, _, err := config.LoadCertificate(ic, time.Now())
	if err != nil {
		return err
	}
	t.cert.Store(cert)
	return nil
}

// maxHandshakeInput bounds what a client may send before its handshake
// is done: a ClientHello is a few KiB.
const maxHandshakeInput = 64 << 10

// errWouldBlock is what the pipe's Read returns on the loop when gnet
// holds no more ciphertext.
var errWouldBlock net.Error = wouldBlock{}

type wouldBlock struct{}

func (wouldBlock) Error() string   { return "no more input" }
func (wouldBlock) Timeout() bool   { return true }
func (wouldBlock) Temporary() bool { return true } // crypto/tls then keeps the connection usable

// tlsLayer is the TLS of one session.
type tlsLayer struct {
	tc   *tls.Conn
	pipe *tlsPipe

	// Event loop only: the plaintext being decoded (in the reactor's
	// scratch buffer) and the part of it consumed, and what a decode
	// left (a partial line), kept for the next read.
	plain []byte
	off   int
	left  []byte
}

// tlsPipe is the net.Conn under a session's tls.Conn. While the
// handshake runs, it is shared between the handshake goroutine and the
// loop (mu); once the handshake goroutine has ended and the loop has set
// onLoop, only the loop uses it.
type tlsPipe struct {
	s      *session
	remote net.Addr
	local  net.Addr

	mu      sync.Mutex
	wake    sync.Cond
	in      []byte // guarded by mu: ciphertext the handshake has not read yet
	out     []byte // guarded by mu: handshake output for the loop to write
	pending bool   // guarded by mu: a flush task is queued
	closed  bool   // guarded by mu

	onLoop bool // the handshake is over: Read and Write run on the loop, unlocked
}

// newTLSLayer sets up the TLS of s, whose connection c just opened.
func newTLSLayer(t *tlsState, s *session, c gnet.Conn) *tlsLayer {
	p := &tlsPipe{s: s, remote: c.RemoteAddr(), local: c.LocalAddr()}
	p.wake.L = &p.mu
	return &tlsLayer{tc: tls.Server(p, t.cfg), pipe: p}
}

// handshake runs the TLS handshake, on a goroutine of its own, then
// hands the session back to its loop (tlsReady).
func (l *tlsLayer) handshake(i *instance) {
	err := l.tc.Handshake()
	s := l.pipe.s
	_ = s.r.loop.Execute(context.Background(), gnet.RunnableFunc(func(context.Context) error {
		i.tlsReady(s, err)
		return nil
	}))
}

// feed passes what c holds to the handshake. It reports false if the
// client sent more than a handshake needs. Event loop only.
func (l *tlsLayer) feed(c gnet.Conn) bool {
	b, _ := c.Next(-1)
	p := l.pipe
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.in)+len(b) > maxHandshakeInput {
		return false
	}
	p.in = append(p.in, b...)
	p.wake.Signal()
	return true
}

// tlsReady ends s's handshake on its loop: what it wrote last goes out,
// then a telnet session joins, and whatever arrived with the handshake's
// end is read. A handshake that failed closes the connection.
func (i *instance) tlsReady(s *session, err error) {
	if s.closed {
		return
	}
	p := s.layer().pipe
	p.flush()
	if s.closed {
		return
	}
	if err != nil {
		i.countProtoErr(kindTLS)
		s.muted = true
		s.startClose(chat.ReasonProtocolError)
		_ = s.r.loop.Close(s.conn)
		return
	}
	p.onLoop = true // the goroutine has ended: Execute orders its last use before this
	s.r.traffic(s, func() {
		if !i.codec.handshake() {
			s.join()
		}
		i.read(s, s.conn)
	})
	if s.closeOnReturn() {
		_ = s.r.loop.Close(s.conn)
	}
}

// decrypt decrypts what gnet read into the reactor's scratch buffer,
// after what the last decode left, for the decoder to read through
// l's input methods. Event loop only.
func (l *tlsLayer) decrypt(r *reactor) error {
	buf := l.resume(r)
	var err error
	for {
		if cap(buf)-len(buf) < 4<<10 {
			buf = slices.Grow(buf, 16<<10) // a full record at least
		}
		var n int
		n, err = l.tc.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err != nil {
			break
		}
	}
	l.plain, l.off = buf, 0
	if errors.Is(err, errWouldBlock) {
		return nil
	}
	return err
}

// resume returns the reactor's scratch buffer holding what the last
// decode left, for more plaintext to be appended. Event loop only.
func (l *tlsLayer) resume(r *reactor) []byte {
	buf := append(r.tlsBuf[:0], l.left...)
	l.left = nil
	return buf
}

// keep saves what the decode left of the plaintext (a partial unit) and
// lets the reactor have its buffer back. Event loop only.
func (l *tlsLayer) keep(r *reactor) {
	if l.off < len(l.plain) {
		l.left = append([]byte(nil), l.plain[l.off:]...)
	}
	r.tlsBuf = l.plain[:0]
	if cap(r.tlsBuf) > keepScratch {
		r.tlsBuf = nil
	}
	l.plain, l.off = nil, 0
}

// Peek, Discard and InboundBuffered make the plaintext the decoder's
// input, as gnet's inbound buffer is a plain connection's.
func (l *tlsLayer) Peek(n int) ([]byte, error) {
	avail := l.plain[l.off:]
	if n < 0 || n == len(avail) {
		return avail, nil
	}
	if n > len(avail) {
		return avail, io.ErrShortBuffer
	}
	return avail[:n], nil
}

func (l *tlsLayer) Discard(n int) (int, error) {
	if avail := len(l.plain) - l.off; n < 0 || n > avail {
		n = avail
	}
	l.off += n
	return n, nil
}

func (l *tlsLayer) InboundBuffered() int { return len(l.plain) - l.off }

// send encrypts p into gnet's outbound buffer. Event loop only.
func (l *tlsLayer) send(p []byte) (int, bool) {
	if !l.pipe.onLoop {
		return 0, false // nothing is written before the handshake is done
	}
	n, err := l.tc.Write(p)
	return n, err == nil
}

// Read implements net.Conn for the tls.Conn: during the handshake, it
// waits for what OnTraffic feeds it; then, on the loop, it reads gnet's
// inbound buffer and returns errWouldBlock once that is empty.
func (p *tlsPipe) Read(b []byte) (int, error) {
	if p.onLoop {
		if len(p.in) > 0 { // fed during the handshake, not read by it
			n := copy(b, p.in)
			if p.in = p.in[n:]; len(p.in) == 0 {
				p.in = nil
			}
			return n, nil
		}
		c := p.s.conn
		if c.InboundBuffered() == 0 {
			return 0, errWouldBlock
		}
		return c.Read(b)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for len(p.in) == 0 && !p.closed {
		p.wake.Wait()
	}
	if len(p.in) == 0 {
		return 0, io.EOF
	}
	n := copy(b, p.in)
	if p.in = p.in[n:]; len(p.in) == 0 {
		p.in = nil // an idle connection keeps no ClientHello-sized array
	}
	return n, nil
}

// Write implements net.Conn for the tls.Conn: during the handshake, it
// queues b for a task on the loop to write; then, on the loop, it hands b
// to gnet.
func (p *tlsPipe) Write(b []byte) (int, error) {
	if p.onLoop {
		return p.s.conn.Write(b)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return 0, net.ErrClosed
	}
	p.out = append(p.out, b...)
	if !p.pending {
		p.pending = true
		s := p.s
		_ = s.r.loop.Execute(context.Background(), gnet.RunnableFunc(func(context.Context) error {
			if !s.closed {
				p.flush()
			}
			return nil
		}))
	}
	return len(b), nil
}

// flush writes what the handshake queued. Event loop only.
func (p *tlsPipe) flush() {
	p.mu.Lock()
	b := p.out
	p.out, p.pending = nil, false
	p.mu.Unlock()
	if len(b) > 0 {
		_, _ = p.s.conn.Write(b)
	}
}

// Close ends a handshake that waits for input. crypto/tls calls it, and
// OnClose does.
func (p *tlsPipe) Close() error {
	p.mu.Lock()
	p.closed = true
	p.wake.Broadcast()
	p.mu.Unlock()
	return nil
}

func (p *tlsPipe) LocalAddr() net.Addr              { return p.local }
func (p *tlsPipe) RemoteAddr() net.Addr             { return p.remote }
func (p *tlsPipe) SetDeadline(time.Time) error      { return nil } // the tick's handshakeTimeout bounds the handshake
func (p *tlsPipe) SetReadDeadline(time.Time) error  { return nil }
func (p *tlsPipe) SetWriteDeadline(time.Time) error { return nil }

// kindTLS labels a connection closed for a failed TLS handshake or a bad
// TLS record.
const kindTLS = "tls"

// refusal returns what a connection refused at accept is told: nothing
// over TLS, whose handshake has not begun.
func (i *instance) refusal(why string) []byte {
	if i.tls != nil {
		return nil
	}
	return i.codec.refusal(why)
}

// tlsDecoder is the decoder of a TLS session: it decrypts what arrives
// and runs the protocol's own decoder over the plaintext. Before the
// handshake is done, what arrives is fed to the handshake instead.
type tlsDecoder struct {
	decoder
	l *tlsLayer
}

// layer returns the TLS layer of s, a TLS session. Event loop only.
func (s *session) layer() *tlsLayer { return s.dec.(*tlsDecoder).l }

// decode decrypts what c holds and decodes the plaintext. A record that
// does not decrypt, or the client's close_notify, ends the session once
// what came before it is decoded. Event loop only.
func (d *tlsDecoder) decode(s *session, c input) error {
	t := d.l
	gc := s.conn
	if !t.pipe.onLoop {
		if !t.feed(gc) {
			return &protocolError{Kind: kindTLS, Msg: "handshake too long"}
		}
		return nil
	}
	err := t.decrypt(s.r)
	derr := d.decoder.decode(s, t)
	t.keep(s.r)
	switch {
	case derr != nil:
		return derr
	case err == nil:
		return nil
	case errors.Is(err, io.EOF):
		return &protocolError{} // the client closed
	default:
		return &protocolError{Kind: kindTLS}
	}
}

// renewCert loads the instance's certificate files again, if it has TLS,
// for reload. A pair that does not load is refused, and the error says
// the instance serves the one it had.
func (i *instance) renewCert() error {
	if i.tls == nil {
		return nil
	}
	if err := i.tls.renew(i.cfg); err != nil {
		return fmt.Errorf("%w; it keeps serving its previous certificate", err)
	}
	return nil
}
