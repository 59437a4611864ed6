package status

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"syscall"
	"time"
)

// Handler is what the daemon provides to the status socket. Each method is
// called on the goroutine serving one client, possibly for several clients
// at once, so it must be safe for concurrent use.
type Handler interface {
	// Status returns a snapshot of the daemon. It should not block.
	Status() Snapshot
	// Connections lists every connection, a batch at a time (one event
	// loop's, say), passing each batch to emit, which writes it to the
	// client before it returns; the batch is not kept. It stops and returns
	// emit's error if emit fails (the client is gone). It may block until
	// ctx is done, which is at most 5s after the client connected, or when
	// the Server closes.
	Connections(ctx context.Context, emit func([]Connection) error) error
	// Reload re-reads the config file. Its error text is shown to the user
	// as is and may span several lines. It is not bound by the 5s limit of
	// the other commands: it may take as long as rebinding instances takes.
	Reload() error
	// Stop begins a graceful stop that takes at most timeout (0 means the
	// daemon's stopTimeout) and returns at once. The stop will close the
	// Server; Close waits for the request that called Stop, so Stop must not
	// call Close itself.
	Stop(timeout time.Duration)
}

// ExpiredLogger is a Handler that wants to know of each request dropped
// because its deadline passed before the daemon got to it: the operator
// who finds the reload they asked for not done can read why in the log.
type ExpiredLogger interface {
	Expired(cmd string, deadline time.Time)
}

const (
	// maxClients bounds the clients served at once; others wait in the
	// listen backlog until a slot frees.
	maxClients = 16
	// maxListings bounds the connections listings made at once; others
	// wait their turn (within requestTimeout). A listing holds an event
	// loop's rows and their JSON; 16 at once of 15,000 connections took a
	// daemon from 30 to 104 MB even streamed (166 built whole), 2 at once
	// to about 55.
	maxListings = 2
	// requestTimeout bounds reading a request and listing connections.
	requestTimeout = 5 * time.Second
	// writeTimeout bounds writing a reply, counted from when it is ready.
	writeTimeout = 5 * time.Second
	// closeWait bounds how long Close waits for requests in flight.
	closeWait = 5 * time.Second
	// probeTimeout bounds the dial that tells a live socket from a stale one.
	probeTimeout = time.Second
	// maxPathLen is the longest socket path: sockaddr_un's sun_path holds
	// 108 bytes on Linux, with a terminating NUL.
	maxPathLen = 107
)

// options are the Server's limits; tests shorten them.
type options struct {
	requestTimeout time.Duration
	writeTimeout   time.Duration
	closeWait      time.Duration
	// allow reports whether a peer with this uid may use the socket.
	allow func(uid int) bool
}

func defaultOptions() options {
	return options{
		requestTimeout: requestTimeout,
		writeTimeout:   writeTimeout,
		closeWait:      closeWait,
		allow:          ownerOrRoot(os.Geteuid()),
	}
}

// ownerOrRoot allows the daemon's own user and root, who can open the 0600
// socket file anyway.
func ownerOrRoot(owner int) func(uid int) bool {
	return func(uid int) bool { return uid == owner || uid == 0 }
}

// errNoPeerCred is returned by peerUID where the system cannot say who the
// peer is; the socket file's mode is then the only guard.
var errNoPeerCred = errors.New("peer credentials not supported")

// Server is the daemon side of the status socket, returned by Listen. Its
// methods are safe for concurrent use.
type Server struct {
	h    Handler
	path string
	ln   *net.UnixListener
	file os.FileInfo // the socket file Listen created; Close removes only that one
	opt  options

	ctx        context.Context // cancelled by Close; the parent of every request's
	cancel     context.CancelFunc
	slots      chan struct{} // one token per client being served
	listings   chan struct{} // one token per connections listing being made
	acceptDone chan struct{} // closed when the accept loop returns
	spare      *os.File      // accept loop only: a descriptor kept for running out of them

	mu    sync.Mutex
	conns map[*net.UnixConn]struct{} // being served; Close cuts them if they overstay

	closeOnce sync.Once
	closeErr  error
}

// Listen creates the status socket at path and serves h on it, each client
// on its own goroutine, until Close. It returns once the socket accepts
// connections.
//
// The socket is for the daemon's user only. The daemon creates runDir with
// mode 0700, which alone keeps other users out; the socket file itself is
// chmod'ed to 0600 before the first accept; and, since a peer could have
// connected in the instant between bind and chmod, each peer's uid is read
// from the socket (SO_PEERCRED) and anyone but the daemon's user and root is
// refused. Umask is not used: it is process-wide, and changing it would race
// with every other file the daemon creates.
//
// A socket file left by a daemon that died without cleaning up (kill -9) is
// stale: nothing accepts on it, and it is replaced. A socket someone accepts
// on is never taken over, and Listen returns an error; nor is a path that
// holds anything but a socket.
func Listen(path string, h Handler) (*Server, error) {
	return listen(path, h, defaultOptions())
}

func listen(path string, h Handler, opt options) (*Server, error) {
	// Open the /proc files the snapshot reads now: when the daemon runs out
	// of descriptors is when an operator asks, and when they can't be opened.
	_, _ = ReadRSS(), OpenFiles()
	if len(path) > maxPathLen {
		return nil, fmt.Errorf("status socket path %s is %d bytes, more than the %d a unix socket allows; use a shorter runDir", path, len(path), maxPathLen)
	}
	if err := removeStale(path); err != nil {
		return nil, err
	}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		if oe := (*net.OpError)(nil); errors.As(err, &oe) {
			err = oe.Err // "bind: ...": the path is said once, below
		}
		return nil, fmt.Errorf("status socket %s: %w", path, err)
	}
	// Close removes the file itself, and only if it is still this one.
	ln.SetUnlinkOnClose(false)
	undo := func(err error) (*Server, error) {
		ln.Close()
		os.Remove(path)
		return nil, err
	}
	if err := os.Chmod(path, 0o600); err != nil {
		return undo(fmt.Errorf("status socket %s: %w", path, err))
	}
	fi, err := os.Lstat(path)
	if err != nil {
		return undo(fmt.Errorf("status socket %s: %w", path, err))
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{
		h: h, path: path, ln: ln, file: fi, opt: opt,
		ctx: ctx, cancel: cancel,
		slots:      make(chan struct{}, maxClients),
		listings:   make(chan struct{}, maxListings),
		acceptDone: make(chan struct{}),
		spare:      openSpare(),
		conns:      make(map[*net.UnixConn]struct{}),
	}
	go s.serve()
	return s, nil
}

// removeStale removes path if it is a socket nobody accepts on. It leaves
// a missing path alone and refuses anything else.
func removeStale(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("status socket %s: %w", path, err)
	}
	if fi.Mode().Type() != os.ModeSocket {
		return fmt.Errorf("status socket %s: the path exists and is not a socket; remove it or change runDir", path)
	}
	c, err := net.DialTimeout("unix", path, probeTimeout)
	if err == nil {
		c.Close()
		return fmt.Errorf("status socket %s is in use by another fastws; stop it first ('fastws stop')", path)
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		// Not provably stale (no permission, a full backlog, ...): leave it.
		return fmt.Errorf("status socket %s: %w", path, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove stale status socket: %w", err)
	}
	return nil
}

// Path returns the socket's path.
func (s *Server) Path() string { return s.path }

// Close stops accepting, waits up to 5s for requests in flight, cuts the
// connections of those still running and removes the socket file, unless
// another process has since replaced it. A request whose Handler method
// has not returned by then ends when the method returns. Close is
// idempotent; later calls return the first call's result at once.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		s.cancel()
		err := s.ln.Close()
		<-s.acceptDone
		if !s.drain() {
			s.mu.Lock()
			for c := range s.conns {
				c.Close()
			}
			s.mu.Unlock()
		}
		if fi, serr := os.Lstat(s.path); serr == nil && os.SameFile(fi, s.file) {
			if rerr := os.Remove(s.path); rerr != nil && !errors.Is(rerr, os.ErrNotExist) {
				err = errors.Join(err, rerr)
			}
		}
		if err != nil {
			s.closeErr = fmt.Errorf("close status socket %s: %w", s.path, err)
		}
	})
	return s.closeErr
}

// drain waits up to closeWait until no client is being served and reports
// whether that happened. It takes every slot, which the accept loop, gone
// by now, no longer competes for.
func (s *Server) drain() bool {
	t := time.NewTimer(s.opt.closeWait)
	defer t.Stop()
	for range maxClients {
		select {
		case s.slots <- struct{}{}:
		case <-t.C:
			return false
		}
	}
	return true
}

// serve accepts clients until Close, at most maxClients at a time.
func (s *Server) serve() {
	defer close(s.acceptDone)
	defer func() {
		if s.spare != nil {
			s.spare.Close()
		}
	}()
	var pause time.Duration
	for {
		select {
		case s.slots <- struct{}{}:
		case <-s.ctx.Done():
			return
		}
		c, err := s.ln.AcceptUnix()
		if err != nil && isFDShortage(err) && s.spare != nil {
			// Out of descriptors: give up the spare so that the operator
			// asking why still gets an answer. It is taken back below.
			s.spare.Close()
			s.spare = nil
			c, err = s.ln.AcceptUnix()
		}
		if s.spare == nil {
			s.spare = openSpare()
		}
		if err != nil {
			<-s.slots
			if s.ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of descriptors or the like: the daemon's 20,000 clients can
			// use every one. Back off as net/http does, and retry.
			pause = min(max(2*pause, 5*time.Millisecond), time.Second)
			t := time.NewTimer(pause)
			select {
			case <-t.C:
			case <-s.ctx.Done():
				t.Stop()
				return
			}
			continue
		}
		pause = 0
		s.mu.Lock()
		s.conns[c] = struct{}{}
		s.mu.Unlock()
		go s.handle(c)
	}
}

// handle serves one client: one request, one reply.
func (s *Server) handle(c *net.UnixConn) {
	defer func() {
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
		c.Close()
		<-s.slots
	}()
	start := time.Now()
	c.SetDeadline(start.Add(s.opt.requestTimeout))
	if uid, err := peerUID(c); err != nil && !errors.Is(err, errNoPeerCred) {
		s.reply(c, fail(fmt.Errorf("cannot identify the client: %v", err)))
		return
	} else if err == nil && !s.opt.allow(uid) {
		s.reply(c, fail(fmt.Errorf("permission denied: uid %d may not use the status socket of uid %d", uid, os.Geteuid())))
		return
	}
	line, err := readLine(c, maxRequest)
	if errors.Is(err, errLineTooLong) {
		s.reply(c, fail(err))
		return
	}
	if err != nil {
		return // the client went away or was too slow; nobody to tell
	}
	req, err := parseRequest(line)
	if err != nil {
		s.reply(c, fail(err))
		return
	}
	if !req.deadline.IsZero() && !time.Now().Before(req.deadline) {
		// The client has given up: acting now would do what it was told
		// failed. The reply is for a client whose clock runs ahead.
		if l, ok := s.h.(ExpiredLogger); ok {
			l.Expired(req.cmd, req.deadline)
		}
		s.reply(c, fail(fmt.Errorf("request expired: its deadline %s passed before the daemon got to it; nothing was done", req.deadline.UTC().Format(time.RFC3339Nano))))
		return
	}
	if req.cmd == cmdConnections {
		// Not cut at the request's deadline: a listing is harmless if late,
		// and the client should see its own timeout, not the daemon's.
		ctx, cancel := context.WithDeadline(s.ctx, start.Add(s.opt.requestTimeout))
		defer cancel()
		s.streamConnections(ctx, c)
		return
	}
	s.reply(c, s.dispatch(req))
}

// streamConnections writes the connections reply as the Handler yields
// it, so that a listing of many connections costs the daemon one batch at
// a time, not the whole listing (and its JSON) per client. "ok" comes
// last, since a failure may come after rows have gone out.
func (s *Server) streamConnections(ctx context.Context, c *net.UnixConn) {
	select {
	case s.listings <- struct{}{}:
		defer func() { <-s.listings }()
	case <-ctx.Done():
		s.reply(c, fail(fmt.Errorf("list connections: waiting for other listings to finish: %w", ctx.Err())))
		return
	}
	w := bufio.NewWriterSize(c, 32<<10)
	c.SetWriteDeadline(time.Now().Add(s.opt.writeTimeout))
	w.WriteString(`{"connections":{"connections":[`)
	first := true
	err := s.h.Connections(ctx, func(batch []Connection) error {
		for _, x := range batch {
			x.Since = x.Since.UTC()
			b, err := json.Marshal(x)
			if err != nil {
				return fmt.Errorf("encode reply: %w", err)
			}
			if !first {
				w.WriteByte(',')
			}
			first = false
			if _, err := w.Write(b); err != nil {
				return err // the client is gone or does not read
			}
		}
		// The write deadline is for each batch: a long listing is fine,
		// a client that stops reading is not.
		c.SetWriteDeadline(time.Now().Add(s.opt.writeTimeout))
		return w.Flush()
	})
	w.WriteString(`]}`)
	if err != nil {
		msg, _ := json.Marshal(fmt.Sprintf("list connections: %v", err))
		w.WriteString(`,"ok":false,"error":`)
		w.Write(msg)
	} else {
		w.WriteString(`,"ok":true`)
	}
	w.WriteString("}\n")
	c.SetWriteDeadline(time.Now().Add(s.opt.writeTimeout))
	w.Flush()
}

// dispatch runs one request's Handler method, but Connections's (see
// streamConnections).
func (s *Server) dispatch(req call) response {
	switch req.cmd {
	case cmdStatus:
		snap := s.h.Status().wire()
		return response{OK: true, Status: &snap}
	case cmdReload:
		if err := s.h.Reload(); err != nil {
			return fail(err)
		}
		return response{OK: true}
	case cmdStop:
		s.h.Stop(req.timeout)
		return response{OK: true}
	}
	// parseRequest admits only the commands above.
	panic("status: unhandled command " + req.cmd)
}

func fail(err error) response { return response{Error: err.Error()} }

// reply writes r as one line. A client that is gone or does not read
// within writeTimeout misses it; nobody else needs to know.
func (s *Server) reply(c *net.UnixConn, r response) {
	b, err := json.Marshal(r)
	if err != nil {
		b, _ = json.Marshal(fail(fmt.Errorf("encode reply: %w", err)))
	}
	c.SetWriteDeadline(time.Now().Add(s.opt.writeTimeout))
	c.Write(append(b, '\n'))
}

// openSpare opens the descriptor the accept loop keeps in reserve, or
// returns nil if there is none to be had.
func openSpare() *os.File {
	f, _ := os.Open(os.DevNull)
	return f
}

// isFDShortage reports whether err says the process or system has no file
// descriptor left.
func isFDShortage(err error) bool {
	return errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE)
}
