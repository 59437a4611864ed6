package server

import (
	"context"
	"errors"
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
// The engine itself listens only on a unix socket in a private temporary
// folder, which nothing connects to: gnet needs a listener to run.

// acceptor owns an instance's TCP listener and its accept goroutine.
type acceptor struct {
	inst *instance
	ln   net.Listener
	dir  string // holds the engine's private unix socket
	done chan struct{}

	episodes atomic.Uint64 // times accepting stalled on a resource shortage
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
	return &acceptor{inst: i, ln: ln, dir: dir, done: make(chan struct{})}, nil
}

// engineAddr is the gnet listen address of the engine's private socket.
func (a *acceptor) engineAddr() string { return "unix://" + filepath.Join(a.dir, "engine.sock") }

// run accepts until close. It runs on its own goroutine once the engine
// has booted.
func (a *acceptor) run(eng gnet.Engine) {
	defer close(a.done)
	var delay time.Duration
	for {
		c, err := a.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			if delay == 0 {
				a.episodes.Add(1)
				a.inst.log.Warn("accept failed; retrying with backoff until it succeeds", "err", err, "fd_shortage", shortOfFDs(err))
			}
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			time.Sleep(delay)
			continue
		}
		if delay != 0 {
			a.inst.log.Info("accepting again")
			delay = 0
		}
		if _, err := eng.Register(gnet.NewNetConnContext(context.Background(), c)); err != nil {
			c.Close()
		}
	}
}

// shortOfFDs reports whether err is a shortage of file descriptors.
func shortOfFDs(err error) bool {
	return errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE)
}

// close stops accepting and waits for the accept goroutine, if it started.
func (a *acceptor) close(started bool) {
	a.ln.Close()
	if started {
		<-a.done
	}
	os.RemoveAll(a.dir)
}
