package server

import (
	"context"
	"errors"
	"fmt"
	"net"

	"github.com/fastws/fastws/server/config"
)

// ReloadResult says what a reload changed, by instanceName. An instance
// that could not start is in Failed only: an added one (or one that was
// down) is down, with the error in its stats; a changed one keeps running
// with its previous settings, the error in its stats too.
type ReloadResult struct {
	Started, Stopped, Restarted, Unchanged, Failed []string
}

// Reload applies cfg's instances to the running server: it starts added
// instances, stops removed ones and restarts changed ones (their clients
// are told the instance is shutting down); connections on unchanged
// instances stay. An unchanged instance with TLS reads its certificate
// files again and serves the renewed pair to new handshakes; a pair that
// does not load leaves it serving the old one, in Failed. Instances are
// matched by section name. An instance that is down (it could not start)
// is started again.
//
// A changed instance is replaced without a moment in which its address
// refuses connections: on the same address the new one takes over the
// listening socket (see replace), on a new address it binds before the old
// one stops. If the new one cannot start, the old one keeps running.
//
// If an instance cannot start, Reload goes on with the others and returns
// every failure joined; each stays in the instance's stats (Error) until a
// reload starts it. It is safe for concurrent use; reloads are serialised.
//
// Once Stop has begun, Reload changes nothing and returns ErrStopping; a
// Reload under way when Stop begins closes the clients of the instances it
// replaces at once rather than waiting stopTimeout for them to drain.
func (s *Server) Reload(cfg *config.Config) (ReloadResult, error) {
	if s.quit.Err() != nil {
		return ReloadResult{}, ErrStopping
	}
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	if s.quit.Err() != nil { // Stop began while this waited, and is done
		return ReloadResult{}, ErrStopping
	}
	s.hub.SetAnnounceLimit(cfg.AnnounceLimit)
	s.hub.SetRoomLimits(cfg.MaxRooms, cfg.MaxRoomsPerMember)
	s.budget.limit.Store(int64(cfg.MaxSendBufferTotal)) // applies at the next flush or tick

	s.mu.Lock()
	old := append([]*instance(nil), s.instances...)
	s.mu.Unlock()
	bySection := make(map[string]*instance, len(old))
	for _, i := range old {
		bySection[i.cfg.Section] = i
	}

	var res ReloadResult
	// Removed ones stop first: an added or changed instance may want an
	// address that one frees.
	var removed []*instance
	wanted := make(map[string]bool, len(cfg.Instances))
	for _, ic := range cfg.Instances {
		wanted[ic.Section] = true
	}
	for _, i := range old {
		if !wanted[i.cfg.Section] {
			removed = append(removed, i)
			res.Stopped = append(res.Stopped, i.cfg.Name)
		}
	}
	s.stopWithin(cfg, removed)

	// running is in config order, for status listings.
	var running, replaced []*instance
	var errs []error
	for _, ic := range cfg.Instances {
		cur := bySection[ic.Section]
		switch {
		case cur != nil && !cur.down && cur.cfg.Same(ic):
			if err := cur.renewCert(); err != nil {
				cur.setFault(err)
				running = append(running, cur)
				errs = append(errs, err)
				res.Failed = append(res.Failed, ic.Name)
				continue
			}
			cur.setFault(nil) // a reload that failed to change it is undone
			running = append(running, cur)
			res.Unchanged = append(res.Unchanged, ic.Name)
		case cur == nil || cur.down:
			inst, err := s.open(ic, nil)
			running = append(running, inst) // down if err != nil
			if err != nil {
				errs = append(errs, err)
				res.Failed = append(res.Failed, ic.Name)
				continue
			}
			res.Started = append(res.Started, ic.Name)
		default:
			inst, err := s.replace(cur, ic)
			if err != nil {
				err = fmt.Errorf("%w; it keeps serving %s with its previous settings", err, cur.addr)
				cur.setFault(err)
				running = append(running, cur)
				errs = append(errs, err)
				res.Failed = append(res.Failed, ic.Name)
				continue
			}
			running = append(running, inst)
			replaced = append(replaced, cur)
			res.Restarted = append(res.Restarted, ic.Name)
		}
	}
	s.mu.Lock()
	s.instances = running
	s.mu.Unlock()
	s.stopWithin(cfg, replaced)
	if len(errs) > 0 {
		return res, fmt.Errorf("reload: %w", errors.Join(errs...))
	}
	return res, nil
}

// replace starts an instance of ic to take over from cur, which keeps
// running; the caller stops cur once the new one is in place.
//
// On an unchanged address the new instance accepts on a duplicate of
// cur's listening socket, and cur stops accepting at once: one socket and
// one accept queue throughout, so no client is refused or dropped, and no
// other process can take the port in between. SO_REUSEPORT would let the
// new instance bind while cur listens, but every listener would then need
// it, so a second daemon of the same user could bind the same port without
// an error and take part of its clients; and the kernel resets the
// connections waiting in a reuseport socket's queue when it closes.
func (s *Server) replace(cur *instance, ic config.Instance) (*instance, error) {
	if ic.Network() != cur.cfg.Network() || ic.Addr() != cur.cfg.Addr() {
		return s.open(ic, nil)
	}
	ln, err := cur.dupListener()
	if err != nil {
		return nil, fmt.Errorf("instance %s: take over %s: %w", ic.Name, cur.addr, err)
	}
	inst, err := s.open(ic, ln)
	if err != nil {
		ln.Close()
		return nil, err
	}
	cur.acc.close(true) // the new instance accepts what queues from now on
	return inst, nil
}

// dupListener returns a second listener on i's listening socket.
func (i *instance) dupListener() (net.Listener, error) {
	f, err := i.acc.ln.(*net.TCPListener).File()
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return net.FileListener(f)
}

// stopWithin stops insts, all within cfg's stopTimeout, or at once if
// Stop begins meanwhile.
func (s *Server) stopWithin(cfg *config.Config, insts []*instance) {
	if len(insts) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(s.quit, cfg.StopTimeout)
	defer cancel()
	s.stopInstances(ctx, insts)
}

// setFault records why i does not run the config in force; nil clears it.
func (i *instance) setFault(err error) {
	if err == nil {
		i.fault.Store(nil)
		return
	}
	i.fault.Store(&err)
}

// faultErr returns what setFault recorded last.
func (i *instance) faultErr() error {
	if p := i.fault.Load(); p != nil {
		return *p
	}
	return nil
}
