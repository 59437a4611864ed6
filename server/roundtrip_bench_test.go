package server

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/fastws/fastws/chat"
	"github.com/fastws/fastws/server/config"
	"github.com/gobwas/ws"
	"github.com/panjf2000/gnet/v2"
)

// rtClient is one connection of the round trip benchmarks: msg is its
// private message to itself, want the delivery it reads back.
type rtClient struct {
	conn      net.Conn
	r         *bufio.Reader
	ws        bool
	msg, want []byte
	got       []byte
}

// sync makes a round trip that reads past what came before the delivery
// (the join notices of the clients that connected later).
func (c *rtClient) sync() error {
	if _, err := c.conn.Write(c.msg); err != nil {
		return err
	}
	for {
		var got []byte
		if c.ws {
			h, err := ws.ReadHeader(c.r)
			if err != nil {
				return err
			}
			p := make([]byte, h.Length)
			if _, err := io.ReadFull(c.r, p); err != nil {
				return err
			}
			got = appendFrame(nil, h.OpCode, p)
		} else {
			l, err := c.r.ReadSlice('\n')
			if err != nil {
				return err
			}
			got = l
		}
		if bytes.Equal(got, c.want) {
			return nil
		}
	}
}

// round sends the message and reads its delivery.
func (c *rtClient) round() error {
	if _, err := c.conn.Write(c.msg); err != nil {
		return err
	}
	if _, err := io.ReadFull(c.r, c.got); err != nil {
		return err
	}
	if !bytes.Equal(c.got, c.want) {
		return fmt.Errorf("got reply %q, want %q", c.got, c.want)
	}
	return nil
}

// rtDial connects one client of protocol proto (telnet or websocket) to
// addr, reads its welcome and returns it ready for round trips.
func rtDial(tb testing.TB, proto, addr string) *rtClient {
	tb.Helper()
	if proto == "websocket" {
		c := wsDial(tb, addr)
		uid := strconv.FormatUint(c.uid, 10)
		rc := newRTClient(c.conn, c.r,
			clientFrame(true, 0, ws.OpText, []byte("$"+uid+":hello world")),
			appendFrame(nil, ws.OpText, []byte("uid "+uid+" (private): hello world")))
		rc.ws = true
		return rc
	}
	c := dial(tb, addr)
	uid := strconv.FormatUint(c.uid, 10)
	return newRTClient(c.conn, c.r, []byte("$"+uid+":hello world\n"), []byte("uid "+uid+" (private): hello world\r\n"))
}

func newRTClient(conn net.Conn, r *bufio.Reader, msg, want []byte) *rtClient {
	_ = conn.SetDeadline(time.Now().Add(time.Hour))
	return &rtClient{conn: conn, r: r, msg: msg, want: want, got: make([]byte, len(want))}
}

// rtInstance returns an instance of proto as scripts/bench runs it: two
// event loops, no rate limits.
func rtInstance(proto string) config.Instance {
	ic := telnetInstance("rt", 2)
	if proto == "websocket" {
		ic = wsInstance("rt", 2)
	}
	ic.Limits.MessagesPerSecond = 0
	ic.Limits.BytesPerSecond = 0
	ic.Limits.IdleTimeout = 0
	return ic
}

// BenchmarkRoundTrip is scripts/bench's case 2 in-process: conns
// connections, each with one private message to itself outstanding, over
// real sockets. An op is one round trip; allocations count the client's
// too (about none: a read into a fixed buffer).
//
// The server's share of the CPU is what the bench compares: profile with
// -cpuprofile and read the server's functions (gnet, server, chat).
func BenchmarkRoundTrip(b *testing.B) {
	for _, proto := range []string{"telnet", "websocket"} {
		for _, conns := range []int{1, 100} {
			b.Run(fmt.Sprintf("%s/%d", proto, conns), func(b *testing.B) {
				addr := startServerLog(b, discardLogger(), rtInstance(proto)).Addrs()["rt"]
				cs := make([]*rtClient, conns)
				for i := range cs {
					cs[i] = rtDial(b, proto, addr)
				}
				for _, c := range cs {
					if err := c.sync(); err != nil {
						b.Fatal(err)
					}
				}
				runRounds(b, cs, 10*conns) // warm up: buffers grow to their steady size
				b.ReportAllocs()
				b.ResetTimer()
				cpu := processCPU()
				runRounds(b, cs, b.N)
				// The client's CPU too, the same whatever the server does.
				b.ReportMetric(float64(processCPU()-cpu)/float64(b.N), "cpu-ns/op")
			})
		}
	}
}

// runRounds makes n round trips over cs, spread evenly, each client in
// its own goroutine.
func runRounds(b *testing.B, cs []*rtClient, n int) {
	var wg sync.WaitGroup
	errs := make(chan error, len(cs))
	for i, c := range cs {
		k := n / len(cs)
		if i < n%len(cs) {
			k++
		}
		wg.Go(func() {
			for range k {
				if err := c.round(); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
}

// BenchmarkConnectRoundTrips is scripts/bench's case 1 in-process: 2
// clients, each looping connect, welcome, 100 round trips, close. An op
// is one round trip (the connects spread over them, as the bench counts).
func BenchmarkConnectRoundTrips(b *testing.B) {
	const perConn = 100
	addr := startServerLog(b, discardLogger(), rtInstance("telnet")).Addrs()["rt"]
	d := &net.Dialer{Timeout: testTimeout}
	b.ReportAllocs()
	b.ResetTimer()
	cpu := processCPU()
	defer func() { b.ReportMetric(float64(processCPU()-cpu)/float64(b.N), "cpu-ns/op") }()
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	for i := range 2 {
		n := b.N / 2
		if i == 0 {
			n += b.N % 2
		}
		wg.Go(func() {
			for n > 0 {
				k := min(n, perConn)
				if err := connectRounds(d, addr, k); err != nil {
					errs <- err
					return
				}
				n -= k
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
}

// connectRounds connects to addr, reads the welcome, makes k round trips
// and closes.
func connectRounds(d *net.Dialer, addr string, k int) error {
	conn, err := d.Dial("tcp", addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(testTimeout))
	r := bufio.NewReaderSize(conn, 4096)
	line, err := r.ReadString('\n')
	if err != nil {
		return err
	}
	m := welcomeRE.FindStringSubmatch(ungreet(line))
	if m == nil {
		return fmt.Errorf("first line %q, want the welcome", line)
	}
	msg, want := []byte("$"+m[1]+":hello world\n"), []byte("uid "+m[1]+" (private): hello world\r\n")
	for range k {
		if _, err := conn.Write(msg); err != nil {
			return err
		}
		for { // the other client's join and leave notices come between
			l, err := r.ReadSlice('\n')
			if err != nil {
				return err
			}
			if bytes.Equal(l, want) {
				break
			}
		}
	}
	return nil
}

// benchConn is the part of a gnet.Conn the round trip's path uses: its
// input is one message, read again on every OnTraffic; its output is
// counted and dropped.
type benchConn struct {
	gnet.Conn // nil: a method the path does not use panics
	ctx       any
	in        []byte
	off       int
	out       int
	want      int // bytes of the reply
}

func (c *benchConn) Context() any                    { return c.ctx }
func (c *benchConn) SetContext(v any)                { c.ctx = v }
func (c *benchConn) Peek(n int) ([]byte, error)      { return c.in[c.off:], nil }
func (c *benchConn) InboundBuffered() int            { return len(c.in) - c.off }
func (c *benchConn) OutboundBuffered() int           { return 0 }
func (c *benchConn) Write(p []byte) (int, error)     { c.out += len(p); return len(p), nil }
func (c *benchConn) Writev(bs [][]byte) (int, error) { return c.Write(bytes.Join(bs, nil)) }
func (c *benchConn) Discard(n int) (int, error) {
	if n < 0 || n > len(c.in)-c.off {
		n = len(c.in) - c.off
	}
	c.off += n
	return n, nil
}

// BenchmarkTraffic is the server's userland share of a round trip, with
// no sockets and no event loop: OnTraffic on a connection whose input is
// a private message to itself, through the decoder, the room, the
// reply's encoding and the write (to a benchConn). With 1000 connections
// taken in turn, as in case 2, their state is rarely in the cache.
func BenchmarkTraffic(b *testing.B) {
	for _, proto := range []string{"telnet", "websocket"} {
		for _, conns := range []int{1, 1000, 100000} {
			b.Run(fmt.Sprintf("%s/%d", proto, conns), func(b *testing.B) {
				ic := rtInstance(proto)
				hub := chat.NewHub(chat.Options{})
				i := newInstance(ic, hub, nil, &sendBudget{}, discardLogger())
				r := &reactor{inst: i, hub: hub}
				bcs := make([]*benchConn, conns)
				for k := range bcs {
					fc := &benchConn{}
					s := &session{r: r, conn: fc, dec: i.codec.newDecoder()}
					if d, ok := s.dec.(*wsDecoder); ok {
						d.upgraded = true
					}
					fc.ctx = s
					r.add(s)
					r.traffic(s, s.join)
					uid := strconv.FormatUint(s.m.UID(), 10)
					fc.in = []byte("$" + uid + ":hello world\n")
					fc.want = len("uid " + uid + " (private): hello world\r\n")
					if proto == "websocket" {
						fc.in = clientFrame(true, 0, ws.OpText, []byte("$"+uid+":hello world"))
						fc.want = len(appendFrame(nil, ws.OpText, []byte("uid "+uid+" (private): hello world")))
					}
					bcs[k] = fc
				}
				round := func(fc *benchConn) {
					fc.off, fc.out = 0, 0
					i.OnTraffic(fc)
				}
				for _, fc := range bcs {
					round(fc)
					if fc.out != fc.want {
						b.Fatalf("wrote %d bytes, want %d", fc.out, fc.want)
					}
				}
				b.ReportAllocs()
				b.ResetTimer()
				cpu := processCPU()
				for k := range b.N {
					round(bcs[k%conns])
				}
				// CPU time rather than wall time: on a shared machine it
				// leaves out the time others had the core.
				b.ReportMetric(float64(processCPU()-cpu)/float64(b.N), "cpu-ns/op")
			})
		}
	}
}

// processCPU returns the CPU time the process used so far, user and
// system, in nanoseconds.
func processCPU() int64 {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return ru.Utime.Nano() + ru.Stime.Nano()
}
