// Package server runs the daemon's instances: one gnet engine per
// config.ini instance, each with childProcessCount event loops (reactors),
// every connection a member of the one [chat.Hub].
//
// # Goroutines
//
// Per instance, the acceptor (acceptor.go) owns one goroutine that accepts
// TCP connections and hands each to the event loop with the fewest
// connections, counting those handed over and not yet taken (round robin
// until every loop has had one), and one goroutine per hand-over in flight
// (at most maxSpares/2) that waits for gnet's result; all are waited for
// on stop.
// gnet owns the rest: one goroutine per event loop, its main reactor (idle:
// the engine listens only on a private unix socket) and a ticker. Every
// gnet callback and every [reactor.Run] runs on the event loop that owns
// the connection, so a session's decoder state, its write batch and the
// reactor's session list are touched by that loop alone and need no lock.
// Other goroutines (the hub on another reactor, the status socket) reach a
// connection only through its reactor's outbox.
//
// # The write path
//
// A reactor is the [chat.Fanout] of its sessions. A room-wide event costs the
// publisher one append to each reactor's outbox, and each reactor one
// wake-up (gnet's EventLoop.Execute) per batch, not per recipient; while a
// loop is inside OnTraffic (or OnOpen) it needs none, as it drains its
// outbox before it polls again, so a reply on the same reactor goes out in
// the same pass.
// On the loop, the reactor drains the outbox, appends each event's shared
// encoding to every recipient's batch, then writes each batch with one
// writev (one buffer once gnet holds a backlog for it). Output
// the socket does not take stays in gnet's outbound buffer; past
// maxSendBuffer the session is closed as a slow consumer.
//
// # Locks
//
// reactor.mu guards the outbox and its scheduled and busy flags; it is
// never held while calling out. instance.mu guards the reactor table and the per-IP counts.
// Server.mu guards the instance table and is taken before instance.mu.
// chat.Hub's lock is taken before reactor.mu (the hub publishes under its
// read lock), never after.
package server
