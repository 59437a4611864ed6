package server

import (
	"context"
	"sort"
	"sync/atomic"
	"time"

	"github.com/fastws/fastws/chat"
	"github.com/fastws/fastws/server/config"
	"github.com/fastws/fastws/status"
)

// Stats is a snapshot of the server.
type Stats struct {
	Started time.Time
	Room    chat.Stats
	// Instances are the instances' counters, in the form the status
	// socket, /metrics and the CLI table show: one definition, status's.
	Instances []status.Instance
}

// Stats returns a snapshot of every counter. It is safe for concurrent use
// and does not stop the event loops.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	insts := append([]*instance(nil), s.instances...)
	st := Stats{Started: s.started, Room: s.hub.Stats()}
	s.mu.Unlock()
	for _, i := range insts {
		st.Instances = append(st.Instances, i.stats())
	}
	return st
}

func (i *instance) stats() status.Instance {
	st := status.Instance{
		Name:           i.cfg.Name,
		Protocol:       i.cfg.Protocol.String(),
		Listen:         i.addr,
		Reactors:       i.cfg.ChildProcessCount,
		ProtocolErrors: make(map[string]uint64, len(protoErrKinds[i.cfg.Protocol])),
		ClosedByReason: make(map[string]uint64, chat.NumReasons),
		Listening:      i.listening(),
	}
	if err := i.faultErr(); err != nil {
		st.Error = err.Error()
	}
	if i.down {
		st.Listen = i.cfg.Addr() // it binds none: the one it could not
	}
	for _, k := range protoErrKinds[i.cfg.Protocol] {
		st.ProtocolErrors[k] = 0
	}
	var closedBy [chat.NumReasons]uint64
	for _, r := range i.reactorList() {
		c := &r.counters
		// conns before the closes by reason: OnClose counts the close
		// first, so a snapshot that sees none open has every close counted.
		st.Connections += c.conns.Load()
		st.ConnectionsTotal += uint64(c.accepted.Load())
		st.MessagesIn += c.msgsIn.Load()
		st.MessagesOut += c.msgsOut.Load()
		st.Writes += c.writes.Load()
		st.BytesIn += c.bytesIn.Load()
		st.BytesOut += c.bytesOut.Load()
		st.Errors += c.errors.Load()
		st.SlowConsumers += c.slowConsumers.Load()
		st.BroadcastDeliveries += c.broadcasts.Load()
		st.PrivateMessages += c.privates.Load()
		for k := range closedBy {
			closedBy[k] += c.closedBy[k].Load()
		}
	}
	for k, n := range closedBy {
		st.ClosedByReason[chat.CloseReason(k).String()] = n
	}
	if i.acc != nil { // nil if down
		st.AcceptStalls = i.acc.stalls.Load()
	}
	i.protoErr.Range(func(k, v any) bool {
		n := v.(*atomic.Uint64).Load()
		st.ProtocolErrors[k.(string)] = n
		st.Errors += n
		return true
	})
	return st
}

// protoErrKinds are the protocol error kinds each protocol counts, so that
// stats list them, and metrics expose them, at 0 before the first one. A
// kind missing here is still counted, from its first occurrence on.
var protoErrKinds = map[config.Protocol][]string{
	config.ProtocolTelnet: {telnetKindTooLong, kindRefused},
	config.ProtocolWebSocket: {wsKindHandshake, wsKindOrigin, wsKindProtocol, wsKindTooBig,
		wsKindUnsupported, wsKindUTF8, kindRefused},
}

// listening reports whether the instance accepts connections: its engine
// booted, has not exited and is not stopping.
func (i *instance) listening() bool {
	select {
	case <-i.done:
		return false
	default:
	}
	select {
	case <-i.ready:
		return !i.stopping.Load()
	default:
		return false
	}
}

// ConnStats describes one connection.
type ConnStats struct {
	UID      uint64
	Nick     string
	User     string   // the user id it authenticated as, "" if anonymous
	Rooms    []string // in join order, the lobby first while it is in it
	Instance string
	Reactor  int
	Remote   string
	Since    time.Time
	MsgsIn   uint64
	MsgsOut  uint64
	Queued   int // bytes waiting in gnet's outbound buffer
}

// Connections lists every connection, by uid. It visits each event loop
// in turn and waits for it, or for ctx.
func (s *Server) Connections(ctx context.Context) ([]ConnStats, error) {
	var out []ConnStats
	err := s.EachConnection(ctx, func(rows []ConnStats) error {
		out = append(out, rows...)
		return nil
	})
	if err != nil {
		return nil, err
	}
	sort.Slice(out, func(a, b int) bool { return out[a].UID < out[b].UID })
	return out, nil
}

// EachConnection lists every connection, one event loop's at a time, in no
// particular order: it collects a loop's rows on the loop, then passes
// them to emit off it, and does not keep them. So a listing of many
// connections holds one loop's rows at a time, and a slow emit (a client
// reading a long listing) does not stall a loop. It stops at emit's first
// error, or when ctx ends, and returns that error.
func (s *Server) EachConnection(ctx context.Context, emit func([]ConnStats) error) error {
	s.mu.Lock()
	insts := append([]*instance(nil), s.instances...)
	s.mu.Unlock()
	var rows []ConnStats
	for _, i := range insts {
		for n, r := range i.reactorList() {
			rows = rows[:0]
			err := r.onLoop(ctx, func() {
				for _, x := range r.sessions {
					m := x.member()
					if m == nil {
						continue // still in its handshake
					}
					var user string
					if m.Authenticated() { // on m's loop: its own flag, no lock for the anonymous
						user = s.hub.User(m.UID())
					}
					rows = append(rows, ConnStats{
						UID: m.UID(), Nick: m.Nick(), User: user, Rooms: m.Rooms(), Instance: i.cfg.Name, Reactor: n,
						Remote: x.conn.RemoteAddr().String(), Since: time.Unix(0, x.since), MsgsIn: x.msgsIn, MsgsOut: x.msgsOut,
						Queued: x.conn.OutboundBuffered(),
					})
				}
			})
			if err != nil {
				return err
			}
			if len(rows) == 0 {
				continue
			}
			if err := emit(rows); err != nil {
				return err
			}
		}
	}
	return nil
}
