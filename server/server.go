package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/fastws/fastws/chat"
	"github.com/fastws/fastws/server/config"
)

// Server is the daemon's network side: the room and every instance. Its
// methods are safe for concurrent use.
type Server struct {
	log     *slog.Logger
	hub     *chat.Hub
	files   *files
	budget  sendBudget // maxSendBufferTotal, over every instance
	started time.Time

	reloadMu sync.Mutex // serialises Start, Reload and Stop: each decides from s.instances what to open or close

	// quit is cancelled when Stop begins. A reload in progress then cuts
	// short its wait for the clients of the instances it replaces (up to
	// stopTimeout for a client that does not read), so that Stop, which
	// waits for the reload, is not held up by it; later reloads are
	// refused with ErrStopping.
	quit     context.Context
	quitStop context.CancelFunc

	mu        sync.Mutex
	instances []*instance // guarded by mu; in config order
}

// New returns a server with an empty room made with room (its broker,
// clock and announce limit; the zero value is the single-node default);
// nothing listens until Start.
func New(log *slog.Logger, room chat.Options) *Server {
	quit, stop := context.WithCancel(context.Background())
	return &Server{log: log, hub: chat.NewHub(room), files: newFiles(), quit: quit, quitStop: stop}
}

// ErrStopping is returned by Reload once Stop has begun.
var ErrStopping = errors.New("the daemon is stopping; a reload would start instances in a process about to exit")

// testHookStartOpened, if set, runs in Start after each instance opens,
// so that tests can send a Reload while Start is under way.
var testHookStartOpened func()

// Start opens every instance of cfg and returns once each one listens. If
// one cannot, Start stops the ones it opened and returns an error naming
// the instance and address.
//
// A Reload that arrives meanwhile (the status socket serves before the
// instances open) waits until Start returns, then applies its config to
// what Start opened; it would otherwise open the same instances again.
func (s *Server) Start(cfg *config.Config) error {
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	s.hub.SetAnnounceLimit(cfg.AnnounceLimit)
	s.hub.SetRoomLimits(cfg.MaxRooms, cfg.MaxRoomsPerMember)
	s.budget.limit.Store(int64(cfg.MaxSendBufferTotal))
	var started []*instance
	for _, ic := range cfg.Instances {
		inst, err := s.open(ic, nil)
		if testHookStartOpened != nil {
			testHookStartOpened()
		}
		if err != nil {
			ctx, cancel := context.WithTimeout(context.Background(), cfg.StopTimeout)
			defer cancel()
			s.stopInstances(ctx, started)
			return err
		}
		started = append(started, inst)
	}
	s.mu.Lock()
	s.instances = append(s.instances, started...)
	s.started = time.Now()
	s.mu.Unlock()
	return nil
}

// open starts an instance of ic, accepting on inherit if not nil, and
// logs where it listens. If the instance cannot start, open returns the
// error and the instance, down, with the error as its fault.
func (s *Server) open(ic config.Instance, inherit net.Listener) (*instance, error) {
	inst := newInstance(ic, s.hub, s.files, &s.budget, s.log)
	if err := inst.start(inherit); err != nil {
		inst.down = true
		inst.setFault(err)
		return inst, err
	}
	s.log.Info("listening", "instance", ic.Name, "protocol", ic.Protocol.String(), "addr", inst.addr, "reactors", ic.ChildProcessCount)
	return inst, nil
}

// Addrs returns the bound address of each instance, by instanceName.
func (s *Server) Addrs() map[string]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := make(map[string]string, len(s.instances))
	for _, i := range s.instances {
		m[i.cfg.Name] = i.addr
	}
	return m
}

// Stop stops every instance gracefully: every member gets the events queued before the stop, then
// "* server is shutting down", then its connection closes. What is still
// open when ctx ends is closed by force. Stop waits for every engine to
// exit and returns ctx's error if the deadline cut the drain short.
//
// A Reload in progress is cut short first (see quit), and every later one
// is refused.
func (s *Server) Stop(ctx context.Context) error {
	s.quitStop()
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	s.mu.Lock()
	insts := s.instances
	s.instances = nil
	s.mu.Unlock()
	s.stopInstances(ctx, insts)
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("stop: %w", err)
	}
	return nil
}

// stopInstances stops insts in parallel, all bounded by ctx.
func (s *Server) stopInstances(ctx context.Context, insts []*instance) {
	for _, i := range insts {
		i.stopping.Store(true) // all refuse newcomers before any notice goes out
	}
	var wg sync.WaitGroup
	for _, i := range insts {
		wg.Go(func() { i.stop(ctx) })
	}
	wg.Wait()
}
