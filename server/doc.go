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
// A TLS connection (tls.go) has one more goroutine while its handshake
// runs, which shares only the connection's tlsPipe with the loop (under
// its mu) and hands the session back to the loop through Execute; it
// ends with the handshake or the connection, whichever ends first. The
// instance's certificate is an atomic pointer that reload swaps.
// A reactor that paces a heavy fan-out (pace.go) has a timer whose
// function only wakes its loop (Execute), stopped with the instance.
//
// # The write path
//
// A reactor is the [chat.Fanout] of its sessions. A room-wide event costs the
// publisher one append to each reactor's outbox, and each reactor one
// wake-up (gnet's EventLoop.Execute) per batch, not per recipient; while a
// loop is inside OnTraffic (or OnOpen) it needs none, as it drains its
// outbox before it polls again, so a reply on the same reactor goes out in
// the same pass.
// On the loop, the reactor drains the outbox: the room-wide events next to
// each other in it, for the same room, are encoded once per wire format,
// one after another in the reactor's wire buffer, and go to every
// recipient in one walk over the sessions, as one buffer for a recipient
// that gets them all (which continues its batch's last buffer if that
// was the previous such run). Then it writes each batch with one write:
// one buffer, a writev of up to 8, or more joined into one (also once
// gnet holds a backlog for it). Under a heavy fan-out, batches of
// room-wide lines wait for the reactor's next burst (pace.go), so that
// each write carries more of them. Output
// the socket does not take stays in gnet's outbound buffer; past
// maxSendBuffer the session is closed as a slow consumer.
//
// # Locks
//
// In the order they are taken: Server.mu (the instance table), then
// instance.mu (the reactor table and the per-IP counts; reactorFor
// registers a new reactor with the hub under it), then chat.Hub's lock
// (the hub hands events to the reactors under its read lock), then
// reactor.mu (the outbox and the loop's scheduled and busy flags, never
// held while calling out). Server.reloadMu serialises Start, Reload and
// Stop and is taken before all of them. The acceptor's mu guards only its
// spare descriptors and is never held with another; nor is a TLS
// connection's tlsPipe.mu (its handshake's bytes).
//
// # How to add a protocol
//
// Write a codec (codec.go): newDecoder, whether a connection joins only
// after a handshake, and the refusal written to a connection turned away
// at accept. Its decoder reads only through input and writes only
// through its session (send, and the batch that Reply and Send fill), so
// the write path, the slow-consumer check and any layer under the socket
// stay in one place; it hands each client line to session.line. Give it a
// wire format slot (formatText, ...) so that a broadcast is encoded once
// for all its connections, a protocol name in config, a fuzz target over
// its decoder with inputs split at every byte, and its protocol error
// kinds in protoErrKinds (stats.go), which the metrics pre-declare.
//
// # How to add a metric
//
// Count it where it happens, on the event loop, in reactorCounters
// (reactor.go: one atomic per reactor, no shared cache line), or in the
// room (chat.Stats); add the field to status.Instance (status/snapshot.go, SCHEMA.md) and fill it in stats.go, which
// feeds the status socket, the CLI table and /metrics alike; then give it
// a series in status/metrics.go, a column or line in status/render.go if
// people read it there, a row in status/SCHEMA.md, and a test in
// status/metrics_test.go that promtool accepts.
package server
