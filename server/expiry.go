package server

import (
	"math"
	"time"

	"github.com/fastws/fastws/chat"
)

// expiries are the close times of a reactor's authenticated sessions
// whose token expires (chat.Expirer): an entry per such session, checked
// by the tick, which skips the walk until the soonest is due. Not a timer
// per connection: one map per reactor. Owned by the event loop.
type expiries struct {
	at   map[*session]int64 // unix nanoseconds
	next int64              // the soonest in at; 0 = none
}

// tokenExpiredText is what a member closed for token_expired reads last.
const tokenExpiredText = "token expired, closing"

// Expire sets when s is closed for token_expired (chat.Expirer). Event
// loop only: chat calls it while authenticating the member.
func (s *session) Expire(at time.Time) {
	e := &s.r.exp
	if at.IsZero() {
		delete(e.at, s)
		return
	}
	if e.at == nil {
		e.at = make(map[*session]int64)
	}
	n := at.UnixNano()
	e.at[s] = n
	if e.next == 0 || n < e.next {
		e.next = n
	}
}

// forget drops s as it is removed from the loop.
func (e *expiries) forget(s *session) {
	if e.at != nil {
		delete(e.at, s)
	}
}

// check closes the sessions whose token has expired by n and notes the
// next due. It walks the sessions with an expiry only when one is due
// (an entry removed meanwhile leaves next early: one walk too many).
// Event loop only, from the tick.
func (r *reactor) checkExpiries(n int64, now time.Time) {
	e := &r.exp
	if e.next == 0 || n < e.next {
		return
	}
	var ev *chat.Event
	next := int64(math.MaxInt64)
	for s, at := range e.at {
		switch {
		case s.closing || s.closed:
		case at <= n:
			if ev == nil {
				ev = &chat.Event{Kind: chat.KindError, Text: tokenExpiredText, Time: now}
			}
			s.push(s.encoded(ev))
			s.startClose(chat.ReasonTokenExpired)
		default:
			next = min(next, at)
			continue
		}
		delete(e.at, s)
	}
	if next == math.MaxInt64 {
		next = 0
	}
	e.next = next
}
