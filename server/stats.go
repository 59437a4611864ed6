package server

import (
	"context"
	"sort"
	"sync/atomic"
	"time"

	"github.com/fastws/fastws/chat"
	"github.com/fastws/fastws/server/config"
)

// InstanceStats is a snapshot of one instance's counters.
type InstanceStats struct {
	Name         string
	Protocol     string
	Addr         string // bound address
	Reactors     int    // configured event loops
	Conns        int64  // open now
	ConnsTotal   uint64 // accepted since start
	Closed       uint64 // closed since start
	MsgsIn       uint64 // client lines (or frames) handled
	MsgsOut      uint64 // lines (or frames) written
	BytesIn      uint64
	BytesOut     uint64
	Errors       uint64            // socket errors, protocol errors and refusals
	Slow         uint64            // slow-consumer disconnects
	AcceptStalls uint64            // times accepting paused on a shortage (file descriptors)
	ProtoErrors  map[string]uint64 // protocol errors and refusals by kind; every known kind present
	ClosedBy     map[string]uint64 // closed connections by chat.CloseReason name; every reason present
	Broadcasts   uint64            // room-wide chat messages delivered, one per recipient
	Privates     uint64            // private messages delivered to their recipient
	Listening    bool              // accepting connections: started and not stopping
	// Error is why the instance does not run what the config in force
	// says: it is down because it could not start, or it keeps its
	// previous settings because a reload could not start their
	// replacement. "" otherwise.
	Error string
}

// Stats is a snapshot of the server.
type Stats struct {
	Started   time.Time
	Room      chat.Stats
	Instances []InstanceStats
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

func (i *instance) stats() InstanceStats {
	st := InstanceStats{
		Name:        i.cfg.Name,
		Protocol:    i.cfg.Protocol.String(),
		Addr:        i.addr,
		Reactors:    i.cfg.ChildProcessCount,
		ProtoErrors: make(map[string]uint64, len(protoErrKinds[i.cfg.Protocol])),
		ClosedBy:    make(map[string]uint64, chat.NumReasons),
		Listening:   i.listening(),
	}
	if err := i.faultErr(); err != nil {
		st.Error = err.Error()
	}
	if i.down {
		st.Addr = i.cfg.Addr() // it binds none: the one it could not
	}
	for _, k := range protoErrKinds[i.cfg.Protocol] {
		st.ProtoErrors[k] = 0
	}
	var closedBy [chat.NumReasons]uint64
	for _, r := range i.reactorList() {
		c := &r.counters
		// conns before closed: OnClose counts the close first, so a
		// snapshot that sees none open has every close counted.
		st.Conns += c.conns.Load()
		st.ConnsTotal += uint64(c.accepted.Load())
		st.Closed += uint64(c.closed.Load())
		st.MsgsIn += c.msgsIn.Load()
		st.MsgsOut += c.msgsOut.Load()
		st.BytesIn += c.bytesIn.Load()
		st.BytesOut += c.bytesOut.Load()
		st.Errors += c.errors.Load()
		st.Slow += c.slowConsumers.Load()
		st.Broadcasts += c.broadcasts.Load()
		st.Privates += c.privates.Load()
		for k := range closedBy {
			closedBy[k] += c.closedBy[k].Load()
		}
	}
	for k, n := range closedBy {
		st.ClosedBy[chat.CloseReason(k).String()] = n
	}
	if i.acc != nil { // nil if down
		st.AcceptStalls = i.acc.stalls.Load()
	}
	i.protoErr.Range(func(k, v any) bool {
		n := v.(*atomic.Uint64).Load()
		st.ProtoErrors[k.(string)] = n
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
					rows = append(rows, ConnStats{
						UID: m.UID(), Nick: m.Nick(), Instance: i.cfg.Name, Reactor: n,
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
