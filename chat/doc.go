// Package chat is the room: members and their uids, nicknames, the commands
// of the chat protocol and the routing of every line. It knows nothing of
// sockets, reactors or metrics; a transport plugs in through [Session] (one
// member's connection) and [Fanout] (the sessions that share a reactor and take
// room-wide events in one batch).
//
// # Goroutines and locks
//
// A [Hub] has no goroutine of its own. Its methods run on the caller's
// goroutine, which in the server is the event loop that read the line, so a
// broadcast costs the sender's reactor one call per [Fanout], never one per
// member. Hub.mu guards the member table and the group list; it is held only
// while the table is read or changed and while events are handed to
// Session.Send or Group.Broadcast, which never block. Nothing is written to a
// socket under it. Lock order: Hub.mu, then whatever a Session or Fanout takes
// inside Send or Broadcast; a Session never calls back into the Hub from Send.
//
// Events are immutable once handed out and are shared by every recipient; a
// transport caches its encoding of an event with [Event.Encoded], so a
// broadcast is encoded once per wire format, not once per recipient. A
// private message is the one event made for a single session: its
// transport may hand it back with [Event.Release] for the next one.
package chat
