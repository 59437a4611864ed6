package chat

// Session is one member's connection as the room sees it. The transport
// implements it; the room only writes to it and closes it. The transport's
// reader decodes lines and calls [Hub.Handle]; a Session has no Read.
type Session interface {
	// Send queues ev for this session alone. It must not block and must not
	// call back into the Hub. It is safe for concurrent use. A private
	// message (or its echo) is the session's to release once it is done
	// with it (see [Event.Release]); a session that hands ev on to another
	// must leave that to the last holder.
	Send(ev *Event)
	// Reply is Send for an answer to the member itself: its welcome, the
	// echo of its private message, an error line. The Hub calls it only on
	// the goroutine that is calling Join, Handle, Say or Refuse for it,
	// so a transport may queue it without synchronisation, as long as it
	// keeps the order of everything sent to the session.
	Reply(ev *Event)
	// Close ends the session with reason r after the events already queued.
	// It must not block and must not call back into the Hub; the transport
	// calls Hub.Leave once the connection is gone. It is safe for concurrent
	// use and idempotent.
	Close(r CloseReason)
}

// Fanout is a set of sessions that receive room-wide events together: in the
// server, the sessions of one reactor. Broadcasting through fanouts wakes each
// reactor once per event instead of queueing the event once per member.
type Fanout interface {
	// Broadcast queues ev for every session of the fanout that has joined the
	// room, except the member ev.Except (0 = none), in the same order as the
	// fanout's other events. It must not block and must not call back into the
	// Hub. It is safe for concurrent use.
	Broadcast(ev *Event)
}

// CloseReason says why a session ended. It reaches the log, the
// connection listing and a metric label, so its String values are stable.
type CloseReason uint8

// Close reasons.
const (
	ReasonClientClosed  CloseReason = iota // the peer closed or reset the connection
	ReasonClientQuit                       // the member typed /quit
	ReasonIdle                             // idleTimeout passed without a line
	ReasonSlowConsumer                     // queued output passed maxSendBuffer
	ReasonProtocolError                    // bad framing, a line too long, bad UTF-8 on websocket
	ReasonFlood                            // persistent flooding past messagesPerSecond
	ReasonRefused                          // refused at connect (limits)
	ReasonShutdown                         // the daemon or the instance stopped
	ReasonError                            // a socket error
	ReasonPingTimeout                      // a websocket ping went unanswered past pongTimeout
	ReasonAuthTimeout                      // requireAuth: not authenticated within authTimeout
	ReasonDisconnected                     // disconnected by the application (the HTTP API)
	ReasonTokenExpired                     // the user token it authenticated with expired (see Expirer)
	numReasons
)

var reasonNames = [numReasons]string{
	"client_closed", "client_quit", "idle", "slow_consumer", "protocol_error",
	"flood", "refused", "shutdown", "error", "ping_timeout",
	"auth_timeout", "disconnected", "token_expired",
}

// String returns the reason's stable snake_case name.
func (r CloseReason) String() string {
	if r < numReasons {
		return reasonNames[r]
	}
	return "unknown"
}

// NumReasons is the number of close reasons, for arrays indexed by reason.
const NumReasons = int(numReasons)

// Reasons lists every close reason, in order, for pre-declaring metric labels.
func Reasons() []CloseReason {
	rs := make([]CloseReason, numReasons)
	for i := range rs {
		rs[i] = CloseReason(i)
	}
	return rs
}
