package server

import "time"

// Pacing. A write costs the kernel about the same whether it carries one
// line or fifty, so under a fan-out to thousands the server's CPU goes to
// writes, not to lines. While a reactor fans out more than paceRate
// lines a second (one per receiver), it writes the room-wide lines to its sessions in
// bursts: after a burst that took d, it waits paceFactor×d (at least
// paceMin, at most the instance's fanoutDelay) before the next, while
// the lines that arrive meanwhile gather in each session's batch. Each
// write so carries more lines, and the loop writes fan-out at most a
// third of its time, leaving the rest to reading and to other
// processes. A line waits at most fanoutDelay more; below paceRate, as in
// any room people type in, it goes out in the drain that brings it.
//
// Only room-wide lines wait: a batch with anything for its session alone
// (a private message, a reply, an error, the welcome) goes out in the
// next flush with all it holds, in order; so does the batch of a session
// that closes, and every batch once the shutdown notice went out.
const paceFactor = 2

// paceRate is the rate above which a reactor paces: room-wide lines
// queued for its sessions a second (a message to 1000 is 1000 lines; so
// is a join notice), since the last burst. paceMin is the least wait
// between bursts. A reactor's pacer starts with them (newPacer); the
// tests change its own, to pace any fan-out and hold lines long enough
// to see it.
const (
	paceRate = 250_000
	paceMin  = time.Millisecond
)

// pacer is a reactor's pacing state. Event loop only, but for timer,
// whose function only wakes the loop.
type pacer struct {
	rate    float64       // paceRate
	min     time.Duration // paceMin
	on      bool          // pacing
	since   int64         // monoNow when the last burst began: fanned counts from there
	fanned  int           // room-wide lines queued for sessions since then
	next    int64         // monoNow when the paced batches go out
	list    []*session    // sessions whose batch waits for next (those unpaced meanwhile are skipped)
	burst   int64         // monoNow when the flush writing the paced batches began, 0 if none is under way
	timer   *time.Timer
	armedAt int64 // the next that timer is set for
}

func newPacer() pacer { return pacer{rate: paceRate, min: paceMin} }

// monoStart is what monoNow counts from.
var monoStart = time.Now()

// monoNow returns the monotonic clock in nanoseconds: pacing does not
// move with the wall clock.
func monoNow() int64 { return int64(time.Since(monoStart)) }

// pacing reports whether flush has pacing to do: the reactor paces, holds
// paced batches, or fanned out since it last decided. Event loop only.
func (r *reactor) pacing() bool {
	p := &r.pace
	return p.on || p.fanned > 0 || len(p.list) > 0
}

// paceFlush decides, at now, which of the pending batches flush writes.
// Once next has come, the paced batches join them, the flush is a burst
// that writes every batch, and whether to pace from now on is decided
// from the rate since the last decision. Until then, while pacing, the
// batches of room-wide lines move to the pacer's list. Event loop only.
func (r *reactor) paceFlush(now int64) {
	p := &r.pace
	limit := int64(r.inst.limits.FanoutDelay)
	if now >= p.next || r.st.shutdown { // with fanoutDelay 0, next is never ahead
		// In float64: a reactor quiet for hours would overflow int64.
		p.on = limit > 0 && !r.st.shutdown && float64(p.fanned)*float64(time.Second) >= p.rate*float64(now-p.since)
		p.fanned, p.since = 0, now
		for _, s := range p.list {
			if s.paced {
				r.unpace(s)
			}
		}
		clear(p.list)
		p.list = p.list[:0]
		p.burst = now
		return
	}
	if !p.on {
		return
	}
	keep := r.dirty[:0]
	for _, s := range r.dirty {
		if s.urgent || s.closing || s.closed || s.paced {
			keep = append(keep, s)
			continue
		}
		s.paced = true
		p.list = append(p.list, s)
	}
	clear(r.dirty[len(keep):])
	r.dirty = keep
	if len(p.list) > 0 && p.armedAt != p.next {
		p.armedAt = p.next
		if p.timer == nil {
			p.timer = time.AfterFunc(time.Duration(p.next-now), r.schedule)
		} else {
			p.timer.Reset(time.Duration(p.next - now))
		}
	}
}

// paceBurstDone ends a flush that was a burst: the next one comes
// paceFactor times its length after it, within paceMin and fanoutDelay.
// Event loop only.
func (r *reactor) paceBurstDone() {
	p := &r.pace
	if p.burst == 0 {
		return
	}
	end := monoNow()
	wait := min(max(paceFactor*(end-p.burst), int64(p.min)), int64(r.inst.limits.FanoutDelay))
	p.next, p.burst = end+wait, 0
}

// stopPacing stops the pacer's timer, once the reactor's loop has ended.
func (r *reactor) stopPacing() {
	if r.pace.timer != nil {
		r.pace.timer.Stop()
	}
}

// unpace takes s's batch off the pacer's list: it goes out in the next
// flush. Event loop only.
func (r *reactor) unpace(s *session) {
	s.paced = false
	r.dirty = append(r.dirty, s)
}

// schedule makes the loop drain the reactor soon without input (the
// pacer's timer): a task, unless one is pending or a traffic pass will
// drain anyway.
func (r *reactor) schedule() {
	r.mu.Lock()
	wake := r.claimWake()
	r.mu.Unlock()
	if wake {
		r.wake()
	}
}
