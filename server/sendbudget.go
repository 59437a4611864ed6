package server

import (
	"cmp"
	"math"
	"slices"
	"sync/atomic"

	"github.com/fastws/fastws/chat"
)

// sendBudget bounds the output queued for every client of the daemon
// together (maxSendBufferTotal): maxSendBuffer bounds one client, and
// without a total, thousands of clients that never read each hold up to
// it. One per Server, shared by every reactor of every instance.
//
// What it counts is gnet's outbound buffers, the output the sockets did
// not take: each session remembers what it last saw there (queued), and
// its reactor adds the changes up and publishes them with one atomic add
// per flush and per tick. A buffer that drains does so in gnet's
// write-ready path, where our code does not run, so the count may lag
// above the truth until the session's next flush or the next tick (at
// most a second); an eviction first refreshes every session of its
// reactor, so a drained reader is never taken for a slow one.
//
// What that costs in memory: gnet copies each write the socket does not
// take into a ring buffer of up to 64 KiB, then into list nodes from a
// power-of-two pool, so a queued byte costs up to two bytes plus 32 per
// write; drained buffers go back to gnet's sync.Pools, which the garbage
// collector empties, so nothing stays pinned after a burst.
type sendBudget struct {
	limit  atomic.Int64 // maxSendBufferTotal; 0 = unlimited
	queued atomic.Int64 // bytes in gnet's outbound buffers, as last seen
	conns  atomic.Int64 // open sessions, for the fair share
}

// over reports whether adding pending bytes to what is counted passes
// the limit.
func (b *sendBudget) over(pending int64) bool {
	limit := b.limit.Load()
	return limit > 0 && b.queued.Load()+pending > limit
}

// publishEvery is how many bytes of change a reactor may hold back from
// the daemon's count within one flush: an atomic add per 64 KiB queued,
// not per session, and the count lags by at most this much per reactor.
const publishEvery = 64 << 10

// note records that s now has q bytes in gnet's outbound buffer and
// returns the change, for the caller to add up and publish. Event loop
// only.
func (r *reactor) note(s *session, q int) int64 {
	q = min(q, math.MaxInt32) // a session past maxSendBuffer is closing anyway
	d := int64(q) - int64(s.queued)
	s.queued = int32(q)
	r.held += d
	return d
}

// account publishes a reactor's added-up changes.
func (r *reactor) account(d int64) {
	if d != 0 {
		r.inst.budget.queued.Add(d)
	}
}

// refresh notes every session's outbound buffer, as gnet's writes may
// have drained it, and publishes the change. Event loop only.
func (r *reactor) refresh() {
	var d int64
	for _, s := range r.sessions {
		switch {
		case s.closed:
		case s.slow():
			// Closed as a slow consumer in this pass, not gone yet: its
			// buffer is freed as it closes, so it holds nothing, or a
			// second eviction would count it and close others for it.
			d += r.note(s, 0)
		default:
			d += r.note(s, s.conn.OutboundBuffered())
		}
	}
	r.account(d)
}

// evict closes, as slow consumers, the sessions of this reactor holding
// the most queued output, until the daemon's total is back under the
// limit with headroom (so that the next writes do not evict again at
// once), or until this reactor holds no more than its share. It runs only
// past the limit. Event loop only.
//
// Shares follow connections: a reactor with n of the daemon's N open
// connections may hold limit*n/N, and a session limit/N. While the total
// is over the limit, some reactor holds more than its share and some of
// its sessions more than theirs, so that reactor evicts them (in its next
// flush or tick, within a second), and a reactor whose sessions read is
// never made to cut them for another reactor's backlog.
func (r *reactor) evict() {
	b := r.inst.budget
	r.refresh()
	limit := b.limit.Load()
	if limit <= 0 || b.queued.Load() <= limit {
		return
	}
	perConn := limit / max(b.conns.Load(), 1)
	share := perConn * int64(len(r.sessions))
	var big []*session
	for _, s := range r.sessions {
		if !s.closing && !s.closed && int64(s.queued) > perConn {
			big = append(big, s)
		}
	}
	slices.SortFunc(big, func(x, y *session) int { return cmp.Compare(y.queued, x.queued) })
	target := limit - limit/8
	for _, s := range big {
		if b.queued.Load() <= target || r.held <= share {
			break
		}
		r.counters.slowConsumers.Add(1)
		s.startClose(chat.ReasonSlowConsumer)
		// Counted gone now: gnet releases its buffer when it closes, at
		// the end of this flush (or as its OnTraffic returns).
		r.account(r.note(s, 0))
	}
}
