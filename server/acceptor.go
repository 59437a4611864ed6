package server

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/panjf2000/gnet/v2"
	"golang.org/x/sys/unix"
)

// The acceptor accepts an instance's TCP connections and hands them to the
// gnet engine (an event loop's Enroll, see enroll), instead of letting
// gnet accept them.
//
// Why: gnet v2.10's acceptor treats every accept error other than EAGAIN
// and ECONNABORTED as fatal and shuts the whole engine down, so running
// out of file descriptors (EMFILE) would close every connection of the
// instance. This loop instead backs off while descriptors are short, keeps
// serving the connections it has, logs once per episode and accepts again
// as soon as descriptors free up, as net/http does.
//
// A hand-over is a round trip through gnet's goroutine pool and an event
// loop and costs several accepts, so the loop does not wait for it: each
// hand-over waits for its result on a goroutine of its own while the loop
// accepts the next client, and close waits for them all.
//
// Handing a connection to gnet duplicates its descriptor, so each new
// connection briefly needs two. The acceptor keeps a reserve of spare
// descriptors (/dev/null), accepts only while it holds one, and closes it
// just before the hand-over: an accept that succeeds then never fails at
// the dup, and when descriptors run out the client waits in the kernel's
// queue instead of being accepted and dropped.
//
// Until its dup is done, a hand-over in flight is owed the descriptor its
// spare freed, and an accept or an open could take it. So the reserve is
// replenished only when no hand-over is in flight, and while some are, the
// loop closes a second spare just before the accept, for the accept to
// take. (When the last one ends during that accept, it takes that spare
// back, as nothing is owed any more; an accept that then finds no
// descriptor free is retried with a spare.) A connection accepted so
// costs two spares, which bounds the hand-overs in flight to half the
// reserve (rounded up), and a loop out of spares waits for the hand-overs
// to end. The reserve starts at minSpares, doubles (up to maxSpares) each
// time a client had to wait for it, and is back at minSpares once none
// did: an idle instance holds three descriptors of /dev/null.
//
// The engine itself listens only on a unix socket in a private temporary
// folder, which nothing connects to: gnet needs a listener to run.

// minSpares and maxSpares bound the reserve of spare descriptors. One is
// what a lone accept needs, for its dup; three let the loop accept the
// next client while the last hand-over is still in flight, instead of
// waiting for it and only then waiting for a client: that saved 10 µs of
// CPU per connection (9%) with clients that connect one after another,
// as in scripts/bench's case 1. maxSpares/2 hand-overs in flight take
// most of their cost off connection set-up. More in flight set up
// faster but cost memory: each holds a net.Conn and two goroutines, and
// with 64 the idle RSS at 19,000 connections was 0.13 KiB per connection
// higher (scripts/bench, idle case) for 0.2s less set-up.
const (
	minSpares = 3
	maxSpares = 32
)

// acceptor owns an instance's TCP listener, its accept goroutine and the
// goroutines of the hand-overs in flight.
type acceptor struct {
	inst    *instance
	ln      net.Listener
	raw     syscall.RawConn // ln's, to see whether a client waits
	dir     string          // holds the engine's private unix socket
	done    chan struct{}
	closing chan struct{} // closed by close: ends a backoff or a wait at once
	idle    chan struct{} // signalled when the last hand-over in flight ends

	closeOnce sync.Once

	handOvers sync.WaitGroup // the hand-over goroutines, waited for by run

	mu        sync.Mutex
	spares    []int // guarded by mu: the reserve held, descriptors of /dev/null
	target    int   // guarded by mu: the reserve wanted, minSpares to maxSpares
	inFlight  int   // guarded by mu: hand-overs not yet done, each lent a spare for its dup
	accepting bool  // guarded by mu: a spare is lent to the accept under way
	waiting   bool  // guarded by mu: a client waits for the hand-overs in flight to end

	stalls atomic.Uint64 // times accepting stalled on a resource shortage

	loops []*reactor // the run goroutine's: the engine's reactors, once each loop has had a session
	last  []uint64   // the run goroutine's: when each of loops last got a connection, in picks
	picks uint64     // the run goroutine's: connections enroll gave to one of loops
}

// listen binds the instance's address, or, with inherit set, accepts on
// that listener instead (see Server.Reload). The error of a bind that fails
// names the address once, as the caller's context does: "bind: address
// already in use", not net's "listen tcp ADDR: bind: ...".
func listen(i *instance, inherit net.Listener) (*acceptor, error) {
	ln := inherit
	if ln == nil {
		var err error
		if ln, err = net.Listen(i.cfg.Network(), i.cfg.Addr()); err != nil {
			if oe, ok := errors.AsType[*net.OpError](err); ok {
				err = oe.Err
			}
			return nil, err
		}
	}
	raw, err := ln.(*net.TCPListener).SyscallConn()
	if err != nil {
		ln.Close()
		return nil, err
	}
	dir, err := os.MkdirTemp("", "fastws-engine-")
	if err != nil {
		ln.Close()
		return nil, err
	}
	return &acceptor{
		inst: i, ln: ln, raw: raw, dir: dir,
		done: make(chan struct{}), closing: make(chan struct{}), idle: make(chan struct{}, 1),
		target: minSpares,
	}, nil
}

// engineAddr is the gnet listen address of the engine's private socket.
func (a *acceptor) engineAddr() string { return "unix://" + filepath.Join(a.dir, "engine.sock") }

// run accepts until close. It runs on its own goroutine once the engine
// has booted, and returns once the hand-overs in flight are done and the
// spares closed.
func (a *acceptor) run(eng gnet.Engine) {
	defer close(a.done)
	defer a.closeSpares()
	defer a.handOvers.Wait() // before closeSpares: the last one tops them up
	var delay time.Duration
	for {
		c, err := a.accept()
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

// errNoSpare stands for the spare descriptors that could not be opened:
// the process is at its descriptor limit.
var errNoSpare = fmt.Errorf("no spare file descriptor: %w", syscall.EMFILE)

// accept accepts a client once it holds a spare for its dup and, while
// hand-overs are in flight or if it found no descriptor free, another one
// that it lends to the accept. Short of spares, it waits for the
// hand-overs in flight to end, or with none in flight returns errNoSpare.
func (a *acceptor) accept() (net.Conn, error) {
	lend := false
	for {
		a.mu.Lock()
		if a.inFlight == 0 {
			a.topUpLocked()
		}
		held, busy := len(a.spares), a.inFlight > 0
		need := 1 // for the dup
		if busy || lend {
			need = 2 // and for the accept
		}
		if held < need {
			a.waiting = busy && a.clientWaits()
			a.mu.Unlock()
			if !busy {
				return nil, errNoSpare
			}
			select {
			case <-a.idle:
			case <-a.closing:
				return nil, net.ErrClosed
			}
			continue
		}
		if need == 2 {
			a.lendLocked()
			a.accepting = true
		}
		a.mu.Unlock()
		c, err := a.ln.Accept()
		a.mu.Lock()
		lent := a.accepting // the accept took the descriptor, or no longer needs it
		a.accepting = false
		a.mu.Unlock()
		if err != nil && !lent && shortOfFDs(err) {
			lend = true // the reserve holds the descriptors it lacked
			continue
		}
		return c, err
	}
}

// clientWaits reports whether a client waits in the listen queue.
func (a *acceptor) clientWaits() bool {
	waits := false
	_ = a.raw.Control(func(fd uintptr) {
		p := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		n, _ := unix.Poll(p, 0)
		waits = n > 0
	})
	return waits
}

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
	to, res, err := a.enroll(eng, c)
	if err != nil {
		a.handedOver(c, err)
		return
	}
	go func() {
		var err error
		select {
		case r := <-res:
			err = r.Err
			if to != nil {
				to.enrolling.Add(-1) // opened (and counted) or refused
			}
			<-res // closed once gnet has closed c: its descriptor is free for a spare
		case <-a.inst.done:
			// The engine stopped with the hand-over queued on an event
			// loop that will not run again: no result will come.
			err = errEngineStopped
		}
		a.handedOver(c, err)
	}()
}

// enroll gives c to the event loop with the fewest sessions, counting the
// hand-overs in flight to each, and returns its reactor. Of loops that tie,
// it takes the one whose last connection it gave longest ago: a client
// that closes and at once connects again (scripts/bench's case 1) is often
// accepted before its loop has seen the old connection close, which makes
// its loop tie with one that keeps its client, and the older connection is
// the likelier to be the one closing. Always taking the first loop put such
// a client beside the other on every second reconnect. gnet's
// least-connections balancer counts only the connections the loops have
// taken, so it sent whatever was handed over faster than they took it to
// a single loop: two clients that connected together shared one loop
// while the other idled, and two such clients exchanging lines cost 20 to
// 60% more server CPU per round trip than with a loop each. Until every
// loop has had a session, and so a reactor, the engine picks, round
// robin, and enroll returns no reactor.
func (a *acceptor) enroll(eng gnet.Engine, c net.Conn) (*reactor, <-chan gnet.RegisteredResult, error) {
	ctx := gnet.NewNetConnContext(context.Background(), c)
	if len(a.loops) < a.inst.cfg.ChildProcessCount {
		a.loops = a.inst.reactorList()
		if len(a.loops) < a.inst.cfg.ChildProcessCount {
			res, err := eng.Register(ctx)
			return nil, res, err
		}
		a.last = make([]uint64, len(a.loops))
	}
	pick, least := 0, int64(math.MaxInt64)
	for k, r := range a.loops {
		n := r.counters.conns.Load() + r.enrolling.Load()
		if n < least || (n == least && a.last[k] < a.last[pick]) {
			pick, least = k, n
		}
	}
	a.picks++
	a.last[pick] = a.picks
	to := a.loops[pick]
	to.enrolling.Add(1)
	res, err := to.loop.Enroll(ctx, c)
	if err != nil {
		to.enrolling.Add(-1)
		return nil, nil, err
	}
	return to, res, nil
}

// handedOver ends a hand-over, whose dup is done or will not be. The last
// one in flight sizes the reserve for what comes next, tops it up and
// wakes the loop if it waits for that.
func (a *acceptor) handedOver(c net.Conn, err error) {
	defer a.handOvers.Done()
	if err != nil {
		c.Close()
		a.inst.log.Warn("could not hand a connection to its event loop", "remote", c.RemoteAddr().String(), "err", err)
	}
	a.mu.Lock()
	a.inFlight--
	last := a.inFlight == 0
	if last {
		// Nothing else is owed now, so an accept under way may take any
		// free descriptor, as a lone accept always may: the top-up below
		// takes its spare back.
		a.accepting = false
		if a.waiting {
			a.target = min(2*a.target, maxSpares) // a client waited for spares
		} else {
			a.target = minSpares // the loop kept up, or waits for clients
		}
		a.waiting = false
		a.topUpLocked()
	}
	a.mu.Unlock()
	if last {
		select {
		case a.idle <- struct{}{}:
		default: // already signalled
		}
	}
}

// lendLocked closes a spare, freeing its descriptor for the accept or dup
// about to take it.
func (a *acceptor) lendLocked() {
	fd := a.spares[len(a.spares)-1]
	a.spares = a.spares[:len(a.spares)-1]
	unix.Close(fd)
}

// topUpLocked opens spares until the reserve is at its target or
// descriptors run out, and closes those beyond it. Nothing may be lent:
// an open could take the descriptor a lent spare freed.
func (a *acceptor) topUpLocked() {
	for len(a.spares) < a.target {
		// A bare descriptor: an os.File would cost five more system calls
		// (its non-blocking mode and a refused netpoller registration).
		fd, err := unix.Open(os.DevNull, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			break
		}
		a.spares = append(a.spares, fd)
	}
	for len(a.spares) > a.target {
		unix.Close(a.spares[len(a.spares)-1])
		a.spares = a.spares[:len(a.spares)-1]
	}
}

// closeSpares closes the reserve. Nothing else uses it by then.
func (a *acceptor) closeSpares() {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, fd := range a.spares {
		unix.Close(fd)
	}
	a.spares = nil
}

// shortOfFDs reports whether err is a shortage of file descriptors.
func shortOfFDs(err error) bool {
	return errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE)
}

// close stops accepting and waits for the accept goroutine, if it started,
// and with it for the hand-overs in flight. Calls after the first do
// nothing: a reload closes the acceptor of an instance it replaces before
// the instance stops (see Server.replace).
func (a *acceptor) close(started bool) {
	a.closeOnce.Do(func() {
		close(a.closing)
		a.ln.Close()
		if started {
			<-a.done // run closes the spares
		}
		os.RemoveAll(a.dir)
	})
}
