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

// whole reports whether the read buffer holds a whole message, so that
// next returns one without reading from the socket. Only a text frame
// counts: next answers or skips any other, then reads on.
func (cl *client) whole() bool {
	b, _ := cl.r.Peek(cl.r.Buffered())
	if !cl.ws {
		return bytes.IndexByte(b, '\n') >= 0
	}
	if len(b) < 2 || b[0]&0x0f != 1 {
		return false
	}
	n, hl := int(b[1]&0x7f), 2
	switch {
	case n == 126 && len(b) >= 4:
		n, hl = int(binary.BigEndian.Uint16(b[2:])), 4
	case n == 127 && len(b) >= 10:
		n, hl = int(binary.BigEndian.Uint64(b[2:])), 10
	case n >= 126:
		return false
	}
	return len(b)-hl >= n
}

// next returns the next line (without its line end) or text message. The
// result is valid until the following call.
func (cl *client) next() ([]byte, error) {
	if !cl.ws {
		line, err := cl.r.ReadSlice('\n')
		if err != nil {
			return nil, err
		}
		line = line[:len(line)-1]
		if n := len(line); n > 0 && line[n-1] == '\r' {
			line = line[:n-1]
		}
		return line, nil
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
