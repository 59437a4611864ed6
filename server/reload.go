package server

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/fastws/fastws/server/config"
)

// ReloadResult says what a reload changed, by instanceName. An instance
// that could not start is in Failed only: a changed one was stopped, and
// stays stopped.
type ReloadResult struct {
	Started, Stopped, Restarted, Unchanged, Failed []string
}

// Reload applies cfg's instances to the running server: it starts added
// instances, stops removed ones and restarts changed ones (their clients
// are told the instance is shutting down); connections on unchanged
// instances stay. Instances are matched by section name. If an instance
// cannot start, Reload goes on with the others and returns every failure
// joined. It is safe for concurrent use; reloads are serialised.
func (s *Server) Reload(cfg *config.Config) (ReloadResult, error) {
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	s.hub.SetAnnounceLimit(cfg.AnnounceLimit)
	s.budget.limit.Store(int64(cfg.MaxSendBufferTotal)) // applies at the next flush or tick

	s.mu.Lock()
	old := append([]*instance(nil), s.instances...)
	s.mu.Unlock()
	bySection := make(map[string]*instance, len(old))
	for _, i := range old {
		bySection[i.cfg.Section] = i
	}

	var res ReloadResult
	var stop []*instance
	kept := make(map[string]*instance, len(old)) // by section
	for _, ic := range cfg.Instances {
		cur, ok := bySection[ic.Section]
		delete(bySection, ic.Section) // what is left is removed
		switch {
		case !ok:
			res.Started = append(res.Started, ic.Name)
		case cur.cfg.Same(ic):
			kept[ic.Section] = cur
			res.Unchanged = append(res.Unchanged, ic.Name)
		default:
			stop = append(stop, cur)
			res.Restarted = append(res.Restarted, ic.Name)
		}
	}
	for _, i := range old {
		if bySection[i.cfg.Section] == i {
			stop = append(stop, i)
			res.Stopped = append(res.Stopped, i.cfg.Name)
		}
	}

	// Stop first: a changed instance may keep its address.
	ctx, cancel := context.WithTimeout(context.Background(), cfg.StopTimeout)
	defer cancel()
	s.stopInstances(ctx, stop)
	// Start the rest. running is in config order, for status listings.
	var running []*instance
	var errs []error
	for _, ic := range cfg.Instances {
		inst := kept[ic.Section]
		if inst == nil {
			var err error
			if inst, err = s.open(ic); err != nil {
				errs = append(errs, err)
				res.Failed = append(res.Failed, ic.Name)
				res.Started = slices.DeleteFunc(res.Started, func(n string) bool { return n == ic.Name })
				res.Restarted = slices.DeleteFunc(res.Restarted, func(n string) bool { return n == ic.Name })
				continue
			}
		}
		running = append(running, inst)
	}
	s.mu.Lock()
	s.instances = running
	s.mu.Unlock()
	if len(errs) > 0 {
		return res, fmt.Errorf("reload: %w", errors.Join(errs...))
	}
	return res, nil
}
