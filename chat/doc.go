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
// member. The member table takes no lock to read: a message looks its
// recipient up with atomic loads (memberTable), and joins and leaves
// serialise on the table's own mutex. Hub.mu guards the nick table and the
// list of fanouts; it is held while they are read or changed and while an
// event is handed to each Fanout.Broadcast, which never blocks. Nothing is
// written to a socket under it. Lock order: Hub.mu, then memberTable.mu,
// then whatever a Session or Fanout takes inside Send or Broadcast; a
// Session never calls back into the Hub from Send.
//
// Rooms: Hub.roomsMu guards the table of rooms and is taken before a
// Room's mu, which guards its uid-ordered member list and the
// replacement of its per-fanout lists; neither is held while an event is
// handed to a Fanout. A member's rooms (memberRooms) and the per-fanout
// list of each room are owned by the goroutine that handles the member's
// lines, the same for every member of a fanout (in the server, the
// reactor's event loop): a member joins, leaves and closes there, and
// the fanout walks the lists there when it delivers a room event (see
// [Room.Local]). So a room event costs no lock on the way out, and only
// the fanouts holding members of the room get it.
//
// Events are immutable once handed out and are shared by every recipient; a
// transport caches its encoding of an event with [Event.Encoded], so a
// broadcast is encoded once per wire format, not once per recipient. A
// private message is the one event made for a single session: its
// transport may hand it back with [Event.Release] for the next one.
//
// Identities (user.go): the user index (uid -> user, user -> members)
// sits behind its own lock, identities.mu, a leaf: it is never held
// while another lock is taken or an event is sent. A member carries only
// its authenticated flag, owned by its goroutine.
//
// # What applications do: one Hub method each
//
// Everything the HTTP API (server/api) does to sessions goes through one
// Hub method, never through sessions directly, so that a cluster broker
// can forward each to the other nodes: [Hub.SendServer] (to everyone, a
// room, a uid or a user), [Hub.JoinFor] and [Hub.LeaveFor] (rooms of a
// uid or a user: run on each member's own goroutine through [Runner]),
// [Hub.Disconnect], and the listings [Hub.Online], [Hub.RoomList] and
// [Hub.MembersOf] ([Presence] has a Node for the cluster to fill). Each
// is safe for concurrent use and never blocks.
//
// # Cluster
//
// With Options.Cluster set (server/cluster, over NATS), the Hub is one node
// of several: uids come from [Cluster.NextUID], nicks are claimed with
// [Cluster.ClaimNick], and this node reports its members' joins, leaves,
// nicks and rooms; /who, /rooms, room counts and $uid: add the members of
// other nodes from the cluster's directory. The cluster is also the Broker:
// a room event crosses to the nodes holding members of its room, and comes
// back in through [Hub.ClusterRoom] and the Broker's deliver as if
// published here. Without a cluster (the default) each hook is one nil
// check, none of them on the path of a line to a room. NextUID may wait
// for the cluster; it is called with no lock held. A nick claim, and the
// subscription of a room a member opens on this node, wait for it off the
// member's goroutine, and finish on it (see claimNick and awaitRoom).
//
// # How to add a command
//
// Give it an Op and a case in parse (command.go), with its grammar in
// parse's comment; carry it out in Hub.Handle, drawing on the rate limiter
// in proportion to what it costs (as /who does); give what it answers an
// event Kind with its text line (event.go) and its JSON object
// (server/wsjson.go); add it to the help lines; and add its lines to
// TestWireLines and its input to FuzzHandle's seeds.
package chat
