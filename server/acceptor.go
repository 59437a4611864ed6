package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"
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
// A hand-over is a round trip through gnet's goroutine pool and an event
// loop, which costs several accepts; waiting for each one made connection
// set-up several times slower than gnet's own acceptor. So each hand-over
// runs on a goroutine of its own while the loop accepts the next
// connection, and close waits for them all.
//
// Handing a connection to gnet duplicates its descriptor, so each new
// connection briefly needs two: one for the accept and one for gnet's dup.
// The acceptor keeps descriptors in reserve as spares (/dev/null), accepts
// only while it holds two, and closes one just before the accept and the
// other just before the hand-over: an accept that succeeds then never
// fails at the dup, and when descriptors run out the client waits in the
// kernel's queue instead of being accepted and dropped. A lent spare is
// owed the descriptor it freed until its accept or dup is done, and
// opening another spare could take that descriptor instead: so spares are
// replenished only while no hand-over is in flight, which also bounds the
// hand-overs in flight to half the reserve. The loop, when it runs short,
// waits for the last one to end.
//
// The engine itself listens only on a unix socket in a private temporary
// folder, which nothing connects to: gnet needs a listener to run.

// maxSpares is the acceptor's reserve of descriptors, held or lent: each
// connection takes two, so at most maxSpares/2 hand-overs are in flight.
// 32 overlap enough to take most of the hand-over's cost off set-up, and
// 64 descriptors an instance are little next to a limit that lets it serve
// thousands of clients.
const maxSpares = 64

// acceptor owns an instance's TCP listener, its accept goroutine and the
// goroutines of the hand-overs in flight.
type acceptor struct {
	inst    *instance
	ln      net.Listener
	dir     string // holds the engine's private unix socket
	done    chan struct{}
	closing chan struct{} // closed by close: ends a backoff or a wait at once
	idle    chan struct{} // signalled when the last hand-over in flight ends

	handOvers sync.WaitGroup // the hand-over goroutines, waited for by run

	mu       sync.Mutex
	spares   []*os.File // guarded by mu: the reserve that is held
	lent     int        // guarded by mu: spares closed for an accept or a dup under way
	inFlight int        // guarded by mu: hand-overs given to gnet and not yet done

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
	return &acceptor{inst: i, ln: ln, dir: dir, done: make(chan struct{}), closing: make(chan struct{}), idle: make(chan struct{}, 1)}, nil
}

// engineAddr is the gnet listen address of the engine's private socket.
func (a *acceptor) engineAddr() string { return "unix://" + filepath.Join(a.dir, "engine.sock") }

// run accepts until close. It runs on its own goroutine once the engine
// has booted, and returns once its hand-overs are done and its spares
// closed.
func (a *acceptor) run(eng gnet.Engine) {
	defer close(a.done)
	defer a.closeSpares()
	defer a.handOvers.Wait() // before closeSpares: the last one tops them up
	var delay time.Duration
	for {
		a.mu.Lock()
		if a.inFlight == 0 {
			a.topUpLocked()
		}
		held, busy := len(a.spares), a.inFlight > 0
		if held >= 2 {
			a.lendLocked() // to the accept; the other one is for the dup
		}
		a.mu.Unlock()
		if held < 2 && busy {
			select {
			case <-a.idle:
			case <-a.closing:
				return
			}
			continue
		}
		var c net.Conn
		err := errNoSpare
		if held >= 2 {
			c, err = a.ln.Accept()
			a.mu.Lock()
			a.lent-- // the accept took the descriptor, or no longer needs it
			a.mu.Unlock()
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

// errNoSpare stands for the spare descriptors that could not be reopened:
// the process is at its descriptor limit.
var errNoSpare = fmt.Errorf("no spare file descriptor: %w", syscall.EMFILE)

// errEngineStopped stands for the result of a hand-over that the engine
// stopped before it processed it.
var errEngineStopped = errors.New("engine stopped")

// handOver gives c to the engine, lending a spare descriptor for gnet's
// dup, and waits for the result on a goroutine of its own.
func (a *acceptor) handOver(eng gnet.Engine, c net.Conn) {
	a.mu.Lock()
	a.lendLocked()
	a.inFlight++
	a.mu.Unlock()
	a.handOvers.Add(1)
	res, err := eng.Register(gnet.NewNetConnContext(context.Background(), c))
	if err != nil {
		a.handedOver(c, err)
		return
	}
	go func() {
		var err error
		select {
		case r := <-res:
			err = r.Err
			<-res // closed once gnet has closed c, holding its own descriptor
		case <-a.inst.done:
			// The engine stopped with the hand-over queued on an event
			// loop that will never run it: the result would never come.
			err = errEngineStopped
		}
		a.handedOver(c, err)
	}()
}

// handedOver ends a hand-over: the dup is done or will not be. The last
// one in flight tops the spares up, as nothing is owed then but to an
// accept under way, and wakes the loop if it ran short.
func (a *acceptor) handedOver(c net.Conn, err error) {
	defer a.handOvers.Done()
	if err != nil {
		c.Close()
		a.inst.log.Warn("could not hand a connection to its event loop", "remote", c.RemoteAddr().String(), "err", err)
	}
	a.mu.Lock()
	a.lent--
	a.inFlight--
	if a.inFlight == 0 {
		a.topUpLocked()
	} else if f, err := os.Open(os.DevNull); err == nil {
		a.spares = append(a.spares, f) // where c's descriptor was
	}
	a.mu.Unlock()
	select {
	case a.idle <- struct{}{}:
	default: // already signalled
	}
}

// lendLocked closes a spare, freeing its descriptor for the accept or dup
// about to take it.
func (a *acceptor) lendLocked() {
	f := a.spares[len(a.spares)-1]
	a.spares = a.spares[:len(a.spares)-1]
	f.Close()
	a.lent++
}

// topUpLocked opens spares until the reserve, held and lent, is maxSpares
// again or descriptors run out. An open may take a descriptor that a lent
// spare freed for its accept or dup, so it opens as many more as are lent
// and closes those again: if they opened, that many descriptors are free.
func (a *acceptor) topUpLocked() {
	opened := 0
	for len(a.spares) < maxSpares {
		f, err := os.Open(os.DevNull)
		if err != nil {
			break
		}
		a.spares = append(a.spares, f)
		opened++
	}
	for range min(opened, a.lent) {
		a.spares[len(a.spares)-1].Close()
		a.spares = a.spares[:len(a.spares)-1]
	}
}

// closeSpares closes the spares held. Nothing else uses them by then.
func (a *acceptor) closeSpares() {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, f := range a.spares {
		f.Close()
	}
	a.spares = nil
}

// shortOfFDs reports whether err is a shortage of file descriptors.
func shortOfFDs(err error) bool {
	return errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE)
}

// close stops accepting and waits for the accept goroutine, if it started,
// and so for every hand-over in flight.
func (a *acceptor) close(started bool) {
	close(a.closing)
	a.ln.Close()
	if started {
		<-a.done // run closes the spares
	}
	os.RemoveAll(a.dir)
}
