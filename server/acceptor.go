package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/panjf2000/gnet/v2"
)

// The acceptor accepts an instance's TCP connections and hands them to the
// gnet engine (Engine.Register), instead of letting gnet accept them.
//
// Why: gnet v2.10's acceptor treats every accept error other than EAGAIN
// and ECONNABORTED as fatal and shuts the whole engine down, so running
// out of file descriptors (EMFILE) would close every connection of the
// instance. This loop instead backs off while descriptors are short, keeps
// serving the connections it has, logs once per episode and accepts again
// as soon as descriptors free up, as net/http does.
//
// Handing a connection to gnet duplicates its descriptor, so each new
// connection briefly needs two. The acceptor holds a spare descriptor
// (/dev/null) and releases it only around a hand-over: an accept that
// succeeds then never fails at the dup, and when descriptors run out the
// client waits in the kernel's queue instead of being accepted and dropped.
//
// The engine itself listens only on a unix socket in a private temporary
// folder, which nothing connects to: gnet needs a listener to run.

// acceptor owns an instance's TCP listener and its accept goroutine.
type acceptor struct {
	inst    *instance
	ln      net.Listener
	dir     string // holds the engine's private unix socket
	done    chan struct{}
	closing chan struct{} // closed by close: ends a backoff at once

	spare *os.File // released around each hand-over; nil while short

	stalls atomic.Uint64 // times accepting stalled on a resource shortage
}

// listen binds the instance's address.
func listen(i *instance) (*acceptor, error) {
	ln, err := net.Listen("tcp", i.cfg.Addr())
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "fastws-engine-")
	if err != nil {
		ln.Close()
		return nil, err
	}
	spare, _ := os.Open(os.DevNull)
	return &acceptor{inst: i, ln: ln, dir: dir, done: make(chan struct{}), closing: make(chan struct{}), spare: spare}, nil
}

// engineAddr is the gnet listen address of the engine's private socket.
func (a *acceptor) engineAddr() string { return "unix://" + filepath.Join(a.dir, "engine.sock") }

// run accepts until close. It runs on its own goroutine once the engine
// has booted.
func (a *acceptor) run(eng gnet.Engine) {
	defer close(a.done)
	defer func() {
		if a.spare != nil {
			a.spare.Close()
		}
	}()
	var delay time.Duration
	for {
		if a.spare == nil {
			a.spare, _ = os.Open(os.DevNull)
		}
		var c net.Conn
		err := errNoSpare
		if a.spare != nil {
			c, err = a.ln.Accept()
		}
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			if delay == 0 {
				a.stalls.Add(1)
				a.inst.log.Warn("accept failed; paused, retrying with backoff until it succeeds", "err", err, "fd_shortage", shortOfFDs(err))
			}
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			select {
			case <-time.After(delay):
			case <-a.closing:
				return
			}
			continue
		}
		if delay != 0 {
			a.inst.log.Info("accepting again")
			delay = 0
		}
		a.handOver(eng, c)
	}
}

// errNoSpare stands for the spare descriptor that could not be reopened:
// the process is at its descriptor limit.
var errNoSpare = fmt.Errorf("no spare file descriptor: %w", syscall.EMFILE)

// handOver gives c to the engine, freeing the spare descriptor for gnet's
// dup while it does.
func (a *acceptor) handOver(eng gnet.Engine, c net.Conn) {
	a.spare.Close()
	a.spare = nil
	res, err := eng.Register(gnet.NewNetConnContext(context.Background(), c))
	if err == nil {
		err = (<-res).Err // gnet closes c once it holds its own descriptor
	}
	if err != nil {
		c.Close()
		a.inst.log.Warn("could not hand a connection to its event loop", "remote", c.RemoteAddr().String(), "err", err)
	}
}

// shortOfFDs reports whether err is a shortage of file descriptors.
func shortOfFDs(err error) bool {
	return errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE)
}

// close stops accepting and waits for the accept goroutine, if it started.
func (a *acceptor) close(started bool) {
	close(a.closing)
	a.ln.Close()
	if started {
		<-a.done // run closes the spare
	} else if a.spare != nil {
		a.spare.Close()
	}
	os.RemoveAll(a.dir)
}
