package api

import (
	"net"
	"sync"
)

// DefaultMaxConns is the most connections the API serves at once unless
// told ([api] maxConnections). Each holds a goroutine and a descriptor,
// which the daemon shares with its chat connections: without a bound,
// anyone who reaches the port (no key is needed to connect) could take
// the descriptors chat needs. An application's backend needs a few
// keep-alive connections, a PHP-FPM pool one per worker: 1024 leaves room
// for both. Past it, new connections wait in the kernel's accept queue
// until one closes, as with golang.org/x/net/netutil.LimitListener (not
// imported for these lines), and a client without the key is answered
// with "Connection: close", so it keeps no slot between requests.
const DefaultMaxConns = 1024

// limitListener accepts at most cap(sem) connections at once.
type limitListener struct {
	net.Listener
	sem  chan struct{}
	done chan struct{} // closed by Close: Accept stops waiting for a slot
	once sync.Once
}

func newLimitListener(l net.Listener, n int) *limitListener {
	return &limitListener{Listener: l, sem: make(chan struct{}, n), done: make(chan struct{})}
}

// Accept waits for a free slot, then for a connection.
func (l *limitListener) Accept() (net.Conn, error) {
	select {
	case l.sem <- struct{}{}:
	case <-l.done:
		return nil, net.ErrClosed
	}
	c, err := l.Listener.Accept()
	if err != nil {
		<-l.sem
		return nil, err
	}
	return &limitConn{Conn: c, release: func() { <-l.sem }}, nil
}

// Close closes the listener and ends an Accept waiting for a slot.
func (l *limitListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return l.Listener.Close()
}

// limitConn gives its slot back once, on its first Close.
type limitConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *limitConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}
