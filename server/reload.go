package server

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/fastws/fastws/server/config"
)

// ReloadResult says what a reload changed, by instanceName.
type ReloadResult struct {
	Started, Stopped, Restarted, Unchanged []string
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

	s.mu.Lock()
	old := append([]*instance(nil), s.instances...)
	s.mu.Unlock()
	bySection := make(map[string]*instance, len(old))
	for _, i := range old {
		bySection[i.cfg.Section] = i
	}

	var res ReloadResult
	var keep, stop []*instance
	var start []config.Instance
	wanted := make(map[string]bool, len(cfg.Instances))
	for _, ic := range cfg.Instances {
		wanted[ic.Section] = true
		cur, ok := bySection[ic.Section]
		switch {
		case !ok:
			start = append(start, ic)
			res.Started = append(res.Started, ic.Name)
		case cur.cfg.Same(ic):
			keep = append(keep, cur)
			res.Unchanged = append(res.Unchanged, ic.Name)
		default:
			stop = append(stop, cur)
			start = append(start, ic)
			res.Restarted = append(res.Restarted, ic.Name)
		}
	}
	for _, i := range old {
		if !wanted[i.cfg.Section] {
			stop = append(stop, i)
			res.Stopped = append(res.Stopped, i.cfg.Name)
		}
	}

	// Stop first: a changed instance may keep its address.
	ctx, cancel := context.WithTimeout(context.Background(), cfg.StopTimeout)
	defer cancel()
	s.stopInstances(ctx, stop)
	var errs []error
	running := keep
	for _, ic := range start {
		inst := newInstance(ic, s.hub, s.log)
		if err := inst.start(); err != nil {
			errs = append(errs, err)
			continue
		}
		s.log.Info("listening", "instance", ic.Name, "protocol", ic.Protocol.String(), "addr", inst.addr, "reactors", ic.ChildProcessCount)
		running = append(running, inst)
	}
	// Keep config order for status listings.
	order := make(map[string]int, len(cfg.Instances))
	for k, ic := range cfg.Instances {
		order[ic.Section] = k
	}
	slices.SortStableFunc(running, func(a, b *instance) int { return order[a.cfg.Section] - order[b.cfg.Section] })
	s.mu.Lock()
	s.instances = running
	s.mu.Unlock()
	if len(errs) > 0 {
		return res, fmt.Errorf("reload: %w", errors.Join(errs...))
	}
	return res, nil
}
