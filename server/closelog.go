package server

import (
	"cmp"
	"context"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/fastws/fastws/chat"
)

// closeLog logs the connections that close for a reason an operator may
// want to see (a protocol error, a slow consumer, a flood, an idle or ping
// timeout, a socket error) without letting clients flood the log: in each
// window, the first close of each reason is logged as it happens, and the
// others are counted and summed up in one line when the window is over,
// with the addresses that caused most of them. A client that opens
// connections one after another and sends garbage (3,000-4,000 a second
// from one local process) so costs the log two lines every window, not a
// line per connection. Closes by the client, by /quit and by a shutdown
// are the normal course of things and go to the debug level.
//
// Its methods are safe for concurrent use: every event loop of an
// instance closes connections.
type closeLog struct {
	log    *slog.Logger
	window time.Duration

	mu         sync.Mutex
	start      time.Time             // guarded by mu: the window's
	logged     [chat.NumReasons]bool // guarded by mu: this window's first is logged
	suppressed [chat.NumReasons]int  // guarded by mu: and so many more were not
	byIP       map[string]int        // guarded by mu: suppressed closes by address
}

// closeLogWindow is how long a window of closeLog lasts; maxSummaryIPs
// bounds the addresses a window counts, and topSummaryIPs those its
// summary names.
const (
	closeLogWindow = 10 * time.Second
	maxSummaryIPs  = 256
	topSummaryIPs  = 3
)

func newCloseLog(log *slog.Logger) *closeLog {
	return &closeLog{log: log, window: closeLogWindow, byIP: make(map[string]int)}
}

// closed records a connection closed for reason.
func (l *closeLog) closed(now time.Time, uid uint64, remote, ip string, reason chat.CloseReason, err error) {
	switch reason {
	case chat.ReasonClientClosed, chat.ReasonClientQuit, chat.ReasonShutdown:
		// Checked first: the arguments, boxed for the call, cost three
		// allocations per close even when debug is off.
		if l.log.Enabled(context.Background(), slog.LevelDebug) {
			l.log.Debug("connection closed", "uid", uid, "remote", remote, "reason", reason.String())
		}
		return
	}
	l.mu.Lock()
	if now.Sub(l.start) >= l.window {
		l.flushLocked(now)
	}
	first := !l.logged[reason]
	if first {
		l.logged[reason] = true
	} else {
		l.suppressed[reason]++
		if _, ok := l.byIP[ip]; ok || len(l.byIP) < maxSummaryIPs {
			l.byIP[ip]++
		}
	}
	l.mu.Unlock()
	if first {
		l.log.Info("connection closed", "uid", uid, "remote", remote, "reason", reason.String(), "err", err)
	}
}

// flush logs the summary of a window that is over, if it has one. It is
// for a stop, when no later close would.
func (l *closeLog) flush(now time.Time) {
	l.mu.Lock()
	l.flushLocked(now)
	l.mu.Unlock()
}

// flushLocked logs what the window held back, if anything, and starts a
// new window at now. l.mu is held.
func (l *closeLog) flushLocked(now time.Time) {
	var attrs []any
	total := 0
	for r, n := range l.suppressed {
		if n > 0 {
			attrs = append(attrs, chat.CloseReason(r).String(), n)
			total += n
		}
	}
	if total > 0 {
		type count struct {
			ip string
			n  int
		}
		top := make([]count, 0, len(l.byIP))
		for ip, n := range l.byIP {
			top = append(top, count{ip, n})
		}
		slices.SortFunc(top, func(a, b count) int { return cmp.Or(cmp.Compare(b.n, a.n), cmp.Compare(a.ip, b.ip)) })
		for _, c := range top[:min(len(top), topSummaryIPs)] {
			attrs = append(attrs, "from_"+c.ip, c.n)
		}
		l.log.Info("more connections closed, not logged one by one",
			append([]any{"count", total, "in", now.Sub(l.start).Round(time.Second).String()}, attrs...)...)
	}
	l.start = now
	l.logged = [chat.NumReasons]bool{}
	l.suppressed = [chat.NumReasons]int{}
	clear(l.byIP)
}
