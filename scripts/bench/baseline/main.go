// Command baseline is the raw gnet server the bench tool measures fastws
// against: the least a gnet chat server can do, with nothing of fastws's
// room, codecs, limits or counters.
//
//	line  = *( any byte but LF ) LF      ; telnet, as received
//	frame = RFC 6455 client text frame   ; websocket (-ws), after a 101
//
// In echo mode every line (or text frame) goes back to its sender. The
// two broadcast modes write every line to every connection, the sender
// included:
//
//   - batch, the strongest simple server: per read, all of its complete
//     lines in one write per connection. gnet lets an event handler call
//     Write on any connection of its own event loop (Write is not
//     concurrency-safe, and the loop's goroutine is the only one touching
//     those connections), so the reading loop's connections are written
//     directly; every other loop's get one AsyncWrite each, with all the
//     lines.
//   - naive: one AsyncWrite per line and connection, across the event
//     loops: the chat server that batches nothing.
//
// The websocket framing is minimal: the upgrade, masked client frames,
// text and close; no ping, fragmentation, UTF-8 or size checks.
//
// With -accept enroll it accepts the way fastws's acceptor must (gnet
// v2.10's own acceptor shuts the engine down on EMFILE): on Go's
// netpoller, handing each connection to an event loop through the
// engine's Register (gnet's worker pool, a dup, the loop), the engine
// itself listening only on a private unix socket. Run against it, case 1
// shows what that accept path costs a server with no chat at all.
//
// It prints "ready" once it listens and exits on SIGTERM or SIGINT.
package main

import (
	"bytes"
	"context"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/panjf2000/gnet/v2"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "listen address")
	mode := flag.String("mode", modeBatch, "echo | batch (per read, one write per connection) | naive (one AsyncWrite per line per connection)")
	ws := flag.Bool("ws", false, "speak websocket instead of lines")
	loops := flag.Int("loops", 2, "gnet event loops")
	accept := flag.String("accept", "native", "native (gnet's acceptor) | enroll (net.Listener, then Engine.Register)")
	flag.Parse()
	if *mode != modeEcho && *mode != modeBatch && *mode != modeNaive {
		fmt.Fprintf(os.Stderr, "baseline: -mode %q: want echo, batch or naive\n", *mode)
		os.Exit(2)
	}
	s := &server{mode: *mode, ws: *ws, byLoop: map[gnet.EventLoop]*loopConns{}}
	listen := "tcp://" + *addr
	var dir string
	switch *accept {
	case "native":
	case "enroll":
		ln, err := net.Listen("tcp", *addr)
		if err != nil {
			fmt.Fprintf(os.Stderr, "baseline: %v\n", err)
			os.Exit(1)
		}
		if dir, err = os.MkdirTemp("", "fastws-baseline-"); err != nil {
			fmt.Fprintf(os.Stderr, "baseline: %v\n", err)
			os.Exit(1)
		}
		s.ln, listen = ln, "unix://"+filepath.Join(dir, "engine.sock")
	default:
		fmt.Fprintf(os.Stderr, "baseline: -accept %q: want native or enroll\n", *accept)
		os.Exit(2)
	}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, os.Interrupt)
	go func() {
		<-sigs
		if dir != "" {
			os.RemoveAll(dir)
		}
		os.Exit(0)
	}()
	err := gnet.Run(s, listen,
		gnet.WithTicker(s.ln != nil),
		gnet.WithMulticore(true),
		gnet.WithReuseAddr(true),
		gnet.WithNumEventLoop(*loops),
		gnet.WithTCPNoDelay(gnet.TCPNoDelay),
	)
	if err != nil {
		fmt.Fprintf(os.Stderr, "baseline: %v\n", err)
		os.Exit(1)
	}
}

// The modes.
const (
	modeEcho  = "echo"
	modeBatch = "batch"
	modeNaive = "naive"
)

type server struct {
	gnet.BuiltinEventEngine
	mode      string
	ws        bool
	ln        net.Listener // -accept enroll: the TCP listener, accepted on by acceptLoop
	eng       gnet.Engine  // -accept enroll: set by OnBoot
	accepting bool         // -accept enroll: acceptLoop runs (OnTick's)

	loopsMu sync.RWMutex
	byLoop  map[gnet.EventLoop]*loopConns // guarded by loopsMu
	loops   []*loopConns                  // guarded by loopsMu; only appended to
}

// loopConns are one event loop's connections. Only that loop's goroutine
// changes them (OnOpen, OnClose), under mu, so it reads them without it;
// other loops read them under mu.RLock.
type loopConns struct {
	mu    sync.RWMutex
	conns []gnet.Conn // each conn's *peer holds its index
}

// peer is a connection's state, kept in its context.
type peer struct {
	home     *loopConns
	idx      int // in home.conns
	upgraded bool
	closed   bool   // OnClose ran, perhaps from a write of its own OnTraffic
	scratch  []byte // the echo frame
	batch    []byte // batch mode: the read's lines (frames), to go out together
}

func (s *server) OnBoot(eng gnet.Engine) gnet.Action {
	if s.ln != nil {
		s.eng = eng // OnTick accepts, once the loops run
		return gnet.None
	}
	fmt.Println("ready")
	return gnet.None
}

// OnTick, with -accept enroll, starts accepting: gnet starts the ticker
// once every event loop runs, and a hand-over before that fails.
func (s *server) OnTick() (time.Duration, gnet.Action) {
	if s.ln != nil && !s.accepting {
		s.accepting = true
		go s.acceptLoop(s.eng)
		fmt.Println("ready")
	}
	return time.Hour, gnet.None
}

func (s *server) OnOpen(c gnet.Conn) ([]byte, gnet.Action) {
	p := &peer{home: s.home(c.EventLoop())}
	c.SetContext(p)
	l := p.home
	l.mu.Lock()
	p.idx = len(l.conns)
	l.conns = append(l.conns, c)
	l.mu.Unlock()
	return nil, gnet.None
}

// home returns the connections of event loop el.
func (s *server) home(el gnet.EventLoop) *loopConns {
	s.loopsMu.RLock()
	l := s.byLoop[el]
	s.loopsMu.RUnlock()
	if l != nil {
		return l
	}
	s.loopsMu.Lock()
	defer s.loopsMu.Unlock()
	if l = s.byLoop[el]; l == nil {
		l = &loopConns{}
		s.byLoop[el] = l
		s.loops = append(s.loops, l)
	}
	return l
}

func (s *server) OnClose(c gnet.Conn, _ error) gnet.Action {
	p := c.Context().(*peer)
	p.closed = true
	l := p.home
	l.mu.Lock()
	last := len(l.conns) - 1
	moved := l.conns[last]
	l.conns[p.idx] = moved
	moved.Context().(*peer).idx = p.idx
	l.conns[last] = nil
	l.conns = l.conns[:last]
	l.mu.Unlock()
	return gnet.None
}

func (s *server) OnTraffic(c gnet.Conn) gnet.Action {
	p := c.Context().(*peer)
	p.batch = p.batch[:0]
	act := s.read(c, p)
	if len(p.batch) > 0 {
		s.fanOut(p)
	}
	if p.closed {
		// A write of fanOut failed and gnet closed c: Close makes gnet
		// skip it as closed instead of buffering into its released input.
		return gnet.Close
	}
	return act
}

// read handles c's complete lines (frames); in batch mode it collects
// them in p.batch.
func (s *server) read(c gnet.Conn, p *peer) gnet.Action {
	for {
		buf, _ := c.Peek(-1)
		var msg []byte // what to send: the line, or a server frame
		var n int      // bytes consumed
		switch {
		case !s.ws:
			i := bytes.IndexByte(buf, '\n')
			if i < 0 {
				return gnet.None
			}
			msg, n = buf[:i+1], i+1
		case !p.upgraded:
			end := bytes.Index(buf, []byte("\r\n\r\n"))
			if end < 0 {
				return gnet.None
			}
			resp, ok := upgrade(buf[:end])
			if !ok {
				return gnet.Close
			}
			_, _ = c.Write(resp)
			_, _ = c.Discard(end + 4)
			p.upgraded = true
			continue
		default:
			var op byte
			var ok bool
			op, msg, n, ok = readFrame(buf)
			if !ok {
				return gnet.None
			}
			if op == 8 { // close
				return gnet.Close
			}
			p.scratch = appendTextFrame(p.scratch[:0], msg)
			msg = p.scratch
		}
		switch s.mode {
		case modeBatch:
			p.batch = append(p.batch, msg...)
		case modeNaive:
			out := bytes.Clone(msg) // AsyncWrite keeps it until written
			for _, l := range s.loopList() {
				l.mu.RLock()
				for _, x := range l.conns {
					_ = x.AsyncWrite(out, nil)
				}
				l.mu.RUnlock()
			}
		default:
			_, _ = c.Write(msg)
		}
		_, _ = c.Discard(n)
	}
}

func (s *server) loopList() []*loopConns {
	s.loopsMu.RLock()
	defer s.loopsMu.RUnlock()
	return s.loops
}

// fanOut writes p.batch, a read's lines, to every connection: those of
// p's own event loop directly (this is their loop's goroutine), every
// other one with one AsyncWrite.
func (s *server) fanOut(p *peer) {
	out := bytes.Clone(p.batch) // AsyncWrite keeps it until written
	for _, l := range s.loopList() {
		if l != p.home {
			l.mu.RLock()
			for _, x := range l.conns {
				_ = x.AsyncWrite(out, nil)
			}
			l.mu.RUnlock()
			continue
		}
		// A failed write closes its connection at once, and OnClose moves
		// the last one into its place: going down, that one was written
		// already.
		for i := len(l.conns) - 1; i >= 0; i-- {
			if i < len(l.conns) {
				_, _ = l.conns[i].Write(out)
			}
		}
	}
}

// upgrade answers a websocket upgrade request head.
func upgrade(head []byte) ([]byte, bool) {
	const name = "\r\nsec-websocket-key:"
	i := bytes.Index(bytes.ToLower(head), []byte(name))
	if i < 0 {
		return nil, false
	}
	key := head[i+len(name):]
	if j := bytes.Index(key, []byte("\r\n")); j >= 0 {
		key = key[:j]
	}
	h := sha1.Sum(append(bytes.TrimSpace(key), "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"...))
	return []byte("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " +
		base64.StdEncoding.EncodeToString(h[:]) + "\r\n\r\n"), true
}

// readFrame parses one masked client frame at the start of b and unmasks
// its payload in place; ok is false until the whole frame is buffered.
func readFrame(b []byte) (op byte, payload []byte, n int, ok bool) {
	if len(b) < 2 {
		return 0, nil, 0, false
	}
	op = b[0] & 0x0f
	l, h := int(b[1]&0x7f), 2
	switch l {
	case 126:
		if len(b) < 4 {
			return 0, nil, 0, false
		}
		l, h = int(binary.BigEndian.Uint16(b[2:])), 4
	case 127:
		if len(b) < 10 {
			return 0, nil, 0, false
		}
		l, h = int(binary.BigEndian.Uint64(b[2:])), 10
	}
	masked := b[1]&0x80 != 0
	if masked {
		h += 4
	}
	if len(b) < h+l {
		return 0, nil, 0, false
	}
	payload = b[h : h+l]
	if masked {
		key := b[h-4 : h]
		for i := range payload {
			payload[i] ^= key[i&3]
		}
	}
	return op, payload, h + l, true
}

// appendTextFrame appends an unmasked server text frame holding p to b.
func appendTextFrame(b, p []byte) []byte {
	switch {
	case len(p) < 126:
		b = append(b, 0x81, byte(len(p)))
	case len(p) <= 0xffff:
		b = append(b, 0x81, 126, byte(len(p)>>8), byte(len(p)))
	default:
		b = append(b, 0x81, 127)
		b = binary.BigEndian.AppendUint64(b, uint64(len(p)))
	}
	return append(b, p...)
}

// acceptLoop accepts on s.ln and hands each connection to the engine
// without waiting for it to be taken (a goroutine per hand-over waits for
// the result, as fastws's acceptor does), until the listener fails.
func (s *server) acceptLoop(eng gnet.Engine) {
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		res, err := eng.Register(gnet.NewNetConnContext(context.Background(), c))
		if err != nil {
			c.Close()
			continue
		}
		go func() {
			for range res { // closed once gnet has closed c, its dup registered
			}
		}()
	}
}
