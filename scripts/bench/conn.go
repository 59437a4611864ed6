package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// target is a server under test: where it listens and how it talks.
type target struct {
	Addr    string `json:"addr"`
	WS      bool   `json:"ws"`      // websocket framing; else telnet lines
	Welcome bool   `json:"welcome"` // the server greets first (fastws: the welcome line with the uid)
}

// dialer spreads connections over several 127.0.0.X source addresses, so
// that the 4-tuples of one server address do not run out of ephemeral
// ports (about 28,000 per source address with the default range).
type dialer struct {
	src []net.IP
}

func newDialer(n int) *dialer {
	d := &dialer{}
	for i := range max(n, 1) {
		d.src = append(d.src, net.IPv4(127, 0, 0, byte(1+i%254)))
	}
	return d
}

// dial connects to addr from source address number i (mod the number of
// addresses). IP_BIND_ADDRESS_NO_PORT defers the choice of the local port
// to connect(), where the kernel only needs the 4-tuple to be unique;
// binding first would make every port unique per source address.
func (d *dialer) dial(ctx context.Context, addr string, i int) (net.Conn, error) {
	nd := net.Dialer{
		LocalAddr: &net.TCPAddr{IP: d.src[i%len(d.src)]},
		Timeout:   10 * time.Second,
		Control: func(_, _ string, c syscall.RawConn) error {
			var serr error
			err := c.Control(func(fd uintptr) {
				serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_BIND_ADDRESS_NO_PORT, 1)
			})
			if err != nil {
				return err
			}
			return serr
		},
	}
	return nd.DialContext(ctx, "tcp", addr)
}

// client is one connection speaking the target's framing.
type client struct {
	c   net.Conn
	r   *bufio.Reader
	ws  bool
	uid uint64 // from the welcome, if the target sends one

	// buffered's view of r: what it has peeked at and not returned yet,
	// and what it has returned and not discarded, so that it calls into
	// r once per read from the socket rather than once per message.
	// taken is 0 whenever buffered returns false: next then starts where
	// buffered left off.
	peeked []byte
	taken  int

	wmu  sync.Mutex // the reader answers pings while another goroutine sends
	wbuf []byte
}

var errServerClosed = errors.New("server sent a close frame")

// connect dials t, upgrades to websocket if t.WS, and reads the welcome if
// t.Welcome (recording the uid). bufSize is the read buffer.
func connect(ctx context.Context, d *dialer, t target, i, bufSize int) (*client, error) {
	c, err := d.dial(ctx, t.Addr, i)
	if err != nil {
		return nil, err
	}
	cl := &client{c: c, r: bufio.NewReaderSize(c, bufSize), ws: t.WS}
	if dl, ok := ctx.Deadline(); ok {
		_ = c.SetDeadline(dl)
	}
	if err := cl.handshake(t); err != nil {
		c.Close()
		return nil, err
	}
	_ = c.SetDeadline(time.Time{})
	return cl, nil
}

func (cl *client) handshake(t target) error {
	if t.WS {
		req := "GET / HTTP/1.1\r\nHost: " + t.Addr + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
			"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
		if _, err := io.WriteString(cl.c, req); err != nil {
			return err
		}
		status, err := cl.r.ReadSlice('\n')
		if err != nil {
			return fmt.Errorf("upgrade: %w", err)
		}
		if !bytes.HasPrefix(status, []byte("HTTP/1.1 101")) {
			return fmt.Errorf("upgrade: %q", bytes.TrimSpace(status))
		}
		for {
			line, err := cl.r.ReadSlice('\n')
			if err != nil {
				return fmt.Errorf("upgrade: %w", err)
			}
			if len(line) <= 2 {
				break
			}
		}
	}
	if !t.Welcome {
		return nil
	}
	msg, err := cl.next()
	if err != nil {
		return fmt.Errorf("welcome: %w", err)
	}
	const you = "You are uid "
	i := bytes.Index(msg, []byte(you))
	if i < 0 {
		return fmt.Errorf("welcome: %q", msg)
	}
	rest := msg[i+len(you):]
	j := 0
	for j < len(rest) && rest[j] >= '0' && rest[j] <= '9' {
		j++
	}
	cl.uid, err = strconv.ParseUint(string(rest[:j]), 10, 64)
	return err
}

// buffered returns the next message if the read buffer holds it whole,
// without reading from the socket; else ok is false, and next must read.
// Only a text frame counts: next answers or skips any other. The result
// is valid until the following call.
func (cl *client) buffered() (msg []byte, ok bool) {
	msg, n := cl.split(cl.peeked)
	if n == 0 {
		// peeked is used up, or next has read on since: give r what
		// was taken, and look at all it holds now.
		_, _ = cl.r.Discard(cl.taken)
		cl.taken = 0
		cl.peeked, _ = cl.r.Peek(cl.r.Buffered())
		if msg, n = cl.split(cl.peeked); n == 0 {
			cl.peeked = nil
			return nil, false
		}
	}
	cl.peeked = cl.peeked[n:]
	cl.taken += n
	return msg, true
}

// split returns the message b starts with, and its length on the wire;
// n is 0 unless b holds a whole line or text frame.
func (cl *client) split(b []byte) (msg []byte, n int) {
	if !cl.ws {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			return nil, 0
		}
		return trimCR(b[:i]), i + 1
	}
	if len(b) < 2 || b[0]&0x0f != 1 {
		return nil, 0
	}
	size, hl := int(b[1]&0x7f), 2
	switch {
	case size == 126 && len(b) >= 4:
		size, hl = int(binary.BigEndian.Uint16(b[2:])), 4
	case size == 127 && len(b) >= 10:
		size, hl = int(binary.BigEndian.Uint64(b[2:])), 10
	case size >= 126:
		return nil, 0
	}
	if size < 0 || size > len(b)-hl { // next tells what is wrong with a length past 63 bits
		return nil, 0
	}
	return b[hl : hl+size], hl + size
}

func trimCR(line []byte) []byte {
	if n := len(line); n > 0 && line[n-1] == '\r' {
		return line[:n-1]
	}
	return line
}

// next returns the next line (without its line end) or text message. The
// result is valid until the following call.
func (cl *client) next() ([]byte, error) {
	if !cl.ws {
		line, err := cl.r.ReadSlice('\n')
		if err != nil {
			return nil, err
		}
		return trimCR(line[:len(line)-1]), nil
	}
	for {
		h, err := cl.r.Peek(2)
		if err != nil {
			return nil, err
		}
		op, n, hl := h[0]&0x0f, int(h[1]&0x7f), 2
		switch n {
		case 126:
			b, err := cl.r.Peek(4)
			if err != nil {
				return nil, err
			}
			n, hl = int(binary.BigEndian.Uint16(b[2:])), 4
		case 127:
			b, err := cl.r.Peek(10)
			if err != nil {
				return nil, err
			}
			n, hl = int(binary.BigEndian.Uint64(b[2:])), 10
		}
		if hl+n > cl.r.Size() {
			return nil, fmt.Errorf("frame of %d bytes is larger than the read buffer", n)
		}
		b, err := cl.r.Peek(hl + n)
		if err != nil {
			return nil, err
		}
		_, _ = cl.r.Discard(hl + n)
		switch op {
		case 1: // text
			return b[hl:], nil
		case 8: // close
			return nil, errServerClosed
		case 9: // ping: a quiet client must answer (fastws pingInterval)
			if err := cl.write(0x8a, b[hl:]); err != nil {
				return nil, err
			}
		}
	}
}

// send writes one line or text frame.
func (cl *client) send(p []byte) error { return cl.write(0x81, p) }

// write writes p as a line, or as a masked client frame with first
// header byte b0 (FIN and opcode).
func (cl *client) write(b0 byte, p []byte) error {
	cl.wmu.Lock()
	defer cl.wmu.Unlock()
	cl.wbuf = cl.frame(cl.wbuf[:0], b0, p)
	_, err := cl.c.Write(cl.wbuf)
	return err
}

// writeRaw writes b, lines or frames made with frame, in one write.
func (cl *client) writeRaw(b []byte) error {
	cl.wmu.Lock()
	defer cl.wmu.Unlock()
	_, err := cl.c.Write(b)
	return err
}

// frame appends p as a line, or as a masked client frame.
func (cl *client) frame(b []byte, b0 byte, p []byte) []byte {
	if !cl.ws {
		return append(append(b, p...), '\n')
	}
	switch {
	case len(p) < 126:
		b = append(b, b0, 0x80|byte(len(p)))
	case len(p) <= 0xffff:
		b = append(b, b0, 0x80|126, byte(len(p)>>8), byte(len(p)))
	default:
		b = append(b, b0, 0x80|127)
		b = binary.BigEndian.AppendUint64(b, uint64(len(p)))
	}
	key := [4]byte{0x37, 0xfa, 0x21, 0x3d}
	b = append(b, key[:]...)
	for i, c := range p {
		b = append(b, c^key[i&3])
	}
	return b
}

func (cl *client) close() error { return cl.c.Close() }

// fileLimit returns RLIMIT_NOFILE.
func fileLimit() (soft, hard uint64) {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return 0, 0
	}
	return rl.Cur, rl.Max
}
