package cluster

import (
	"context"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/fastws/fastws/chat"
)

// member is a member as the cluster knows it: on this node (Node.local) or
// another (directory).
type member struct {
	uid      uint64
	nick     string
	nickKey  string
	protocol string
	user     string            // the user id it authenticated as; "" = anonymous
	instance string            // the instance it connected to
	since    int64             // unix nanoseconds when it connected
	rooms    map[string]string // key -> name, the lobby ("lobby") among them unless out of it
	peer     *peer             // nil for this node's
}

// peer is another node.
type peer struct {
	name    string
	id      string
	seen    time.Time // last heartbeat, or any message before the first
	members map[uint64]*member
}

// directory is what this node knows of the others: eventually consistent,
// kept by their dir messages, heartbeats and dumps.
type directory struct {
	peers  map[string]*peer
	byUID  map[uint64]*member
	counts map[string]int                // room key -> members of other nodes in it
	names  map[string]string             // room key -> name, while counts has it
	users  map[string]map[uint64]*member // user id -> its members on other nodes
}

func newDirectory() directory {
	return directory{peers: map[string]*peer{}, byUID: map[uint64]*member{}, counts: map[string]int{}, names: map[string]string{}, users: map[string]map[uint64]*member{}}
}

// setUser makes m, in the directory, the member of user.
func (d *directory) setUser(m *member, user string) {
	d.unsetUser(m)
	m.user = user
	if user == "" {
		return
	}
	ms := d.users[user]
	if ms == nil {
		ms = map[uint64]*member{}
		d.users[user] = ms
	}
	ms[m.uid] = m
}

func (d *directory) unsetUser(m *member) {
	if m.user == "" {
		return
	}
	if ms := d.users[m.user]; ms[m.uid] == m {
		delete(ms, m.uid)
		if len(ms) == 0 {
			delete(d.users, m.user)
		}
	}
	m.user = ""
}

func (d *directory) add(p *peer, m *member) {
	if old := d.byUID[m.uid]; old != nil {
		d.remove(old)
	}
	m.peer = p
	p.members[m.uid] = m
	d.byUID[m.uid] = m
	if user := m.user; user != "" {
		m.user = ""
		d.setUser(m, user)
	}
	for k, name := range m.rooms {
		d.enter(k, name)
	}
}

func (d *directory) remove(m *member) {
	delete(m.peer.members, m.uid)
	if d.byUID[m.uid] == m {
		delete(d.byUID, m.uid)
	}
	d.unsetUser(m)
	for k := range m.rooms {
		d.exit(k)
	}
}

func (d *directory) enter(key, name string) {
	if d.counts[key]++; d.counts[key] == 1 {
		d.names[key] = name
	}
}

func (d *directory) exit(key string) {
	if d.counts[key]--; d.counts[key] <= 0 {
		delete(d.counts, key)
		delete(d.names, key)
	}
}

// loop handles every message from the cluster in order, and takes nodes
// whose heartbeats stopped for gone.
func (n *Node) loop() {
	defer n.wg.Done()
	check := time.NewTicker(n.cfg.Heartbeat / 10)
	defer check.Stop()
	for {
		select {
		case <-n.stop:
			return
		case msg := <-n.in:
			n.handle(msg)
		case now := <-check.C:
			n.checkPeers(now)
		}
	}
}

// handle applies one message; a malformed one is counted and dropped.
func (n *Node) handle(msg *nats.Msg) {
	rest, ok := strings.CutPrefix(msg.Subject, n.prefix+".")
	kind, from, _ := strings.Cut(rest, ".")
	if ok && kind == subSync {
		if msg.Reply != "" {
			n.sendDump(msg.Reply)
		}
		return
	}
	if !ok || len(msg.Data) == 0 {
		n.dropped.Add(1)
		return
	}
	r := &reader{b: msg.Data[1:]}
	typ := msg.Data[0]
	switch kind {
	case subLobby, subRoom, subNode:
		if kind == subNode && typ == msgForward {
			n.runForward(r)
			return
		}
		if typ != msgEvent {
			n.dropped.Add(1)
			return
		}
		w, err := decodeEvent(r)
		if err != nil || w.ev.Private != (kind == subNode) {
			n.dropped.Add(1)
			return
		}
		n.received.Add(1)
		n.deliverRemote(w)
	case subDir:
		n.handleDir(from, typ, r)
	case subBeat:
		if typ != msgBeat {
			n.dropped.Add(1)
			return
		}
		id := r.string()
		r.uint() // members: for a glance at the traffic; the directory counts them
		if r.err != nil {
			n.dropped.Add(1)
			return
		}
		n.heard(from, id)
	case subDump:
		if typ != msgDump {
			n.dropped.Add(1)
			return
		}
		n.applyDump(r)
	default:
		n.dropped.Add(1)
	}
}

// deliverRemote hands an event of another node to this node's members.
func (n *Node) deliverRemote(w wireEvent) {
	ev := w.ev
	if ev.Private {
		n.hub.DeliverPrivate(ev)
		return
	}
	if w.roomKey != "" {
		if ev.Room = n.hub.ClusterRoom(w.roomKey); ev.Room == nil {
			return // nobody here is in it any more
		}
	} else if ev.Kind != chat.KindNick && ev.UID != 0 {
		// No room: a nick change, or the server's message to everyone.
		n.dropped.Add(1)
		return
	}
	n.deliver(ev)
}

// heard notes a heartbeat of the node from with process id: a node it did
// not know, or knew with another id, is asked for its dump.
func (n *Node) heard(from, id string) {
	if from == n.cfg.Name {
		if id != n.id {
			why := "another node uses this node's name " + n.cfg.Name + "; give each node a unique name"
			if p := n.reason.Load(); p == nil || *p != why {
				n.log.Error("cluster: " + why)
			}
			n.reason.Store(&why)
		}
		return
	}
	n.dirMu.Lock()
	p := n.dir.peers[from]
	switch {
	case p == nil:
		p = &peer{name: from, id: id, members: map[uint64]*member{}}
		n.dir.peers[from] = p
	case p.id == "":
		p.id = id
	case p.id != id:
		n.dirMu.Unlock()
		// An impostor, or a node restarted within three heartbeats: the
		// node known keeps the name until its heartbeats stop.
		n.log.Warn("cluster: heartbeat of a second node named "+from+" ignored", "node", from)
		return
	default:
		p.seen = time.Now()
		n.dirMu.Unlock()
		return
	}
	p.seen = time.Now()
	n.dirMu.Unlock()
	n.log.Info("cluster: node joined", "node", from)
	if n.connected.Load() {
		_ = n.nc.PublishRequest(n.subject(subSync, from), n.subject(subDump, n.cfg.Name), nil)
	}
}

// checkPeers takes nodes silent for deadBeats heartbeats for gone.
func (n *Node) checkPeers(now time.Time) {
	limit := time.Duration(deadBeats) * n.cfg.Heartbeat
	var gone []*peer
	n.dirMu.Lock()
	for name, p := range n.dir.peers {
		if now.Sub(p.seen) > limit {
			delete(n.dir.peers, name)
			gone = append(gone, p)
		}
	}
	n.dirMu.Unlock()
	for _, p := range gone {
		n.log.Warn("cluster: node gone (no heartbeat)", "node", p.name, "members", len(p.members))
		n.drop(p)
	}
}

// drop takes p's members out of the directory and tells this node's
// members they left. p is out of dir.peers already.
func (n *Node) drop(p *peer) {
	ms := slices.Collect(maps.Values(p.members))
	slices.SortFunc(ms, func(a, b *member) int { return int(a.uid - b.uid) })
	anonymous := make([]bool, len(ms)) // read before remove, which forgets the users
	n.dirMu.Lock()
	for i, m := range ms {
		anonymous[i] = m.user == ""
		n.dir.remove(m)
	}
	n.dirMu.Unlock()
	for i, m := range ms {
		n.hub.RemoteGone(m.uid, m.nick, anonymous[i], slices.Collect(maps.Keys(m.rooms)), n.deliver)
		if m.nickKey != "" {
			n.releaseNick(nickClaim{node: p.name, uid: m.uid, key: m.nickKey})
		}
	}
}

// handleDir applies a member change of node from.
func (n *Node) handleDir(from string, typ byte, r *reader) {
	if from == n.cfg.Name || CheckName(from) != nil {
		n.dropped.Add(1)
		return
	}
	if typ == msgDump {
		if name := r.string(); r.err != nil || name != from {
			n.dropped.Add(1)
			return
		}
		n.applyDumpFrom(from, r)
		return
	}
	if typ == msgUser {
		uid, user, err := decodeUser(r)
		if err != nil {
			n.dropped.Add(1)
			return
		}
		n.dirMu.Lock()
		if p := n.dir.peers[from]; p != nil {
			if m := p.members[uid]; m != nil {
				n.dir.setUser(m, user)
			}
		}
		n.dirMu.Unlock()
		return
	}
	uid := uint64(0)
	if typ != msgBye {
		uid = r.uint()
	}
	var a, b string
	var since int64
	switch typ {
	case msgJoined:
		a, b, since = r.string(), r.string(), r.int()
		if !validInstance(b) {
			n.dropped.Add(1)
			return
		}
	case msgRenamed, msgEntered:
		a, b = r.string(), r.string()
	case msgExited:
		a = r.string()
	case msgLeft, msgBye:
	default:
		n.dropped.Add(1)
		return
	}
	if r.err != nil || typ != msgBye && uid == 0 {
		n.dropped.Add(1)
		return
	}
	n.dirMu.Lock()
	p := n.dir.peers[from]
	if p == nil {
		if typ == msgBye {
			n.dirMu.Unlock()
			return
		}
		// Before its first heartbeat: its dump follows that.
		p = &peer{name: from, seen: time.Now(), members: map[uint64]*member{}}
		n.dir.peers[from] = p
	}
	m := p.members[uid]
	switch typ {
	case msgJoined:
		n.dir.add(p, &member{uid: uid, protocol: a, instance: b, since: since, rooms: map[string]string{chat.LobbyName: chat.LobbyName}})
	case msgLeft:
		if m != nil {
			n.dir.remove(m)
		}
	case msgRenamed:
		if m != nil {
			m.nick, m.nickKey = a, b
		}
	case msgEntered:
		if m != nil {
			if _, in := m.rooms[a]; !in {
				m.rooms[a] = b
				n.dir.enter(a, b)
			}
		}
	case msgExited:
		if m != nil {
			if _, in := m.rooms[a]; in {
				delete(m.rooms, a)
				n.dir.exit(a)
			}
		}
	case msgBye:
		delete(n.dir.peers, from)
		n.dirMu.Unlock()
		n.log.Info("cluster: node left", "node", from)
		n.drop(p)
		return
	}
	n.dirMu.Unlock()
}

// applyDump applies a dump sent in answer to a sync request.
func (n *Node) applyDump(r *reader) {
	from := r.string()
	if r.err != nil || from == n.cfg.Name || CheckName(from) != nil {
		n.dropped.Add(1)
		return
	}
	n.applyDumpFrom(from, r)
}

// applyDumpFrom replaces what the directory holds of node from with its
// dump: the first part replaces, the others add.
func (n *Node) applyDumpFrom(from string, r *reader) {
	id, first, ms, err := decodeDump(r)
	if err != nil {
		n.dropped.Add(1)
		return
	}
	n.dirMu.Lock()
	defer n.dirMu.Unlock()
	p := n.dir.peers[from]
	switch {
	case p == nil:
		p = &peer{name: from, id: id, seen: time.Now(), members: map[uint64]*member{}}
		n.dir.peers[from] = p
	case p.id == "":
		p.id = id
	case p.id != id:
		return // see heard
	}
	if first {
		for _, m := range p.members {
			n.dir.remove(m)
		}
	}
	for _, dm := range ms {
		m := &member{uid: dm.uid, nick: dm.nick, nickKey: dm.nickKey, protocol: dm.protocol, user: dm.user, instance: dm.instance, since: dm.since, rooms: map[string]string{}}
		for _, rr := range dm.rooms {
			m.rooms[rr.key] = rr.name
		}
		n.dir.add(p, m)
	}
}

// dumpPart is the most members one dump message carries: NATS's default
// payload limit is 1 MB.
const dumpPart = 4000

// sendDump sends this node's members to subj, in parts. Like every change
// of the members, it is published under localMu: a change is either in
// the dump or published after it, never published before a dump that
// misses it (which would undo it where the dump arrives).
func (n *Node) sendDump(subj string) {
	n.localMu.Lock()
	defer n.localMu.Unlock()
	ms := make([]dumpMember, 0, len(n.local))
	for _, m := range n.local {
		dm := dumpMember{uid: m.uid, nick: m.nick, nickKey: m.nickKey, protocol: m.protocol, user: m.user, instance: m.instance, since: m.since}
		for k, name := range m.rooms {
			dm.rooms = append(dm.rooms, roomRef{key: k, name: name})
		}
		ms = append(ms, dm)
	}
	for i := 0; i == 0 || i < len(ms); i += dumpPart {
		n.publish(subj, encodeDump(n.cfg.Name, n.id, i == 0, ms[i:min(i+dumpPart, len(ms))]))
	}
}

// Joined implements [chat.Cluster].
func (n *Node) Joined(uid uint64, protocol string) {
	n.localMu.Lock()
	defer n.localMu.Unlock()
	m := &member{uid: uid, protocol: protocol, rooms: map[string]string{chat.LobbyName: chat.LobbyName}}
	if n.hub != nil {
		inst, since, _ := n.hub.Describe(uid)
		m.instance, m.since = inst, since.UnixNano()
	}
	n.local[uid] = m
	n.publish(n.subject(subDir, n.cfg.Name), encodeJoined(uid, protocol, m.instance, m.since))
}

// Left implements [chat.Cluster].
func (n *Node) Left(uid uint64) {
	n.localMu.Lock()
	defer n.localMu.Unlock()
	delete(n.local, uid)
	n.publish(n.subject(subDir, n.cfg.Name), appendUint([]byte{msgLeft}, uid))
}

// Renamed implements [chat.Cluster].
func (n *Node) Renamed(uid uint64, nick, key string) {
	n.localMu.Lock()
	defer n.localMu.Unlock()
	if m := n.local[uid]; m != nil {
		m.nick, m.nickKey = nick, key
	}
	n.publish(n.subject(subDir, n.cfg.Name), appendString(appendString(appendUint([]byte{msgRenamed}, uid), nick), key))
}

// Entered implements [chat.Cluster].
func (n *Node) Entered(uid uint64, r *chat.Room) {
	n.localMu.Lock()
	defer n.localMu.Unlock()
	if m := n.local[uid]; m != nil {
		m.rooms[r.Key()] = r.Name()
	}
	n.publish(n.subject(subDir, n.cfg.Name), appendString(appendString(appendUint([]byte{msgEntered}, uid), r.Key()), r.Name()))
}

// Exited implements [chat.Cluster].
func (n *Node) Exited(uid uint64, r *chat.Room) {
	n.localMu.Lock()
	defer n.localMu.Unlock()
	if m := n.local[uid]; m != nil {
		delete(m.rooms, r.Key())
	}
	n.publish(n.subject(subDir, n.cfg.Name), appendString(appendUint([]byte{msgExited}, uid), r.Key()))
}

// RoomOpened implements [chat.Cluster]: the node subscribes to r's subject.
func (n *Node) RoomOpened(r *chat.Room) {
	n.subMu.Lock()
	defer n.subMu.Unlock()
	if n.rooms[r.Key()] != nil {
		return
	}
	if sub, err := n.nc.ChanSubscribe(n.subject(subRoom, roomToken(r.Key())), n.in); err == nil {
		n.rooms[r.Key()] = sub
		n.opened[r.Key()] = sub
	}
}

// Subscribed implements [chat.Cluster]: the round trip that confirms a
// room's new subscription is one flush of the connection to NATS, which
// the node's flusher goroutine makes for every room opened since its last
// one, and then calls their dones. So a member opening rooms again and
// again costs NATS one flush at a time, and a done waits for at most two
// of them. Every member that joins a room until its subscription is
// confirmed waits, not only the one that opened it. While NATS is down
// there is nothing to wait for.
func (n *Node) Subscribed(r *chat.Room, done func()) bool {
	n.subMu.Lock()
	sub := n.opened[r.Key()]
	n.subMu.Unlock()
	if sub == nil || !n.connected.Load() {
		return false
	}
	n.flushMu.Lock()
	defer n.flushMu.Unlock()
	if n.flusherDone {
		return false
	}
	n.flushes = append(n.flushes, pendingFlush{key: r.Key(), sub: sub, done: done})
	select {
	case n.flushKick <- struct{}{}:
	default: // a kick is pending: its flush takes this one too
	}
	return true
}

// pendingFlush is a Subscribed waiting for the flusher: the room's key
// and the subscription that opened it (a room closed and opened again
// has a new one, which this flush may not confirm).
type pendingFlush struct {
	key  string
	sub  *nats.Subscription
	done func()
}

// flusher is the node's goroutine that confirms rooms' subscriptions (see
// Subscribed). Its dones run on it; on the node's stop it calls those
// waiting without a flush, and takes no more. A flush under way ends with
// the stop.
func (n *Node) flusher() {
	defer n.wg.Done()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-n.stop
		cancel()
	}()
	for {
		select {
		case <-n.stop:
			n.flushMu.Lock()
			n.flusherDone = true
			waiting := n.flushes
			n.flushes = nil
			n.flushMu.Unlock()
			for _, p := range waiting {
				p.done()
			}
			return
		case <-n.flushKick:
		}
		// The subscriptions of these went out before this flush's PING,
		// on the same connection: its PONG confirms them.
		n.flushMu.Lock()
		batch := n.flushes
		n.flushes = nil
		n.flushMu.Unlock()
		if n.beforeFlush != nil {
			n.beforeFlush()
		}
		if n.connected.Load() {
			fctx, fcancel := context.WithTimeout(ctx, n.cfg.Timeout)
			_ = n.nc.FlushWithContext(fctx)
			fcancel()
		}
		n.subMu.Lock()
		for _, p := range batch {
			if n.opened[p.key] == p.sub {
				delete(n.opened, p.key)
			}
		}
		n.subMu.Unlock()
		for _, p := range batch {
			p.done()
		}
	}
}

// RoomClosed implements [chat.Cluster]: the node unsubscribes from r's
// subject.
func (n *Node) RoomClosed(r *chat.Room) {
	n.subMu.Lock()
	defer n.subMu.Unlock()
	if sub := n.rooms[r.Key()]; sub != nil {
		_ = sub.Unsubscribe()
		delete(n.rooms, r.Key())
		delete(n.opened, r.Key())
	}
}

// Private implements [chat.Cluster].
func (n *Node) Private(ev *chat.Event) bool {
	n.dirMu.RLock()
	m := n.dir.byUID[ev.To]
	var node string
	if m != nil {
		node = m.peer.name
	}
	n.dirMu.RUnlock()
	if m == nil {
		return false
	}
	if n.publish(n.subject(subNode, node), encodeEvent(ev)) {
		n.sent.Add(1)
	}
	return true
}

// Remote implements [chat.Cluster].
func (n *Node) Remote(uid uint64) (chat.MemberInfo, bool) {
	n.dirMu.RLock()
	defer n.dirMu.RUnlock()
	if m := n.dir.byUID[uid]; m != nil {
		return chat.MemberInfo{UID: uid, Nick: m.nick, Protocol: m.protocol, Node: m.peer.name}, true
	}
	return chat.MemberInfo{}, false
}

// RemoteMembers implements [chat.Cluster].
func (n *Node) RemoteMembers(key string, fn func(chat.MemberInfo)) {
	n.dirMu.RLock()
	defer n.dirMu.RUnlock()
	for _, m := range n.dir.byUID {
		if _, in := m.rooms[key]; in || key == chat.LobbyName {
			fn(chat.MemberInfo{UID: m.uid, Nick: m.nick, Protocol: m.protocol, Node: m.peer.name})
		}
	}
}

// RemoteCount implements [chat.Cluster].
func (n *Node) RemoteCount(key string) int {
	n.dirMu.RLock()
	defer n.dirMu.RUnlock()
	return n.dir.counts[key]
}

// RemoteOnline implements [chat.Cluster].
func (n *Node) RemoteOnline() int {
	n.dirMu.RLock()
	defer n.dirMu.RUnlock()
	return len(n.dir.byUID)
}

// RemoteRooms implements [chat.Cluster].
func (n *Node) RemoteRooms(fn func(name, key string, n int)) {
	n.dirMu.RLock()
	defer n.dirMu.RUnlock()
	for k, c := range n.dir.counts {
		if k != chat.LobbyName {
			fn(n.dir.names[k], k, c)
		}
	}
}

// Authenticated implements [chat.Cluster].
func (n *Node) Authenticated(uid uint64, user string) {
	n.localMu.Lock()
	defer n.localMu.Unlock()
	m := n.local[uid]
	if m == nil {
		return // gone: its left is on its way
	}
	m.user = user
	n.publish(n.subject(subDir, n.cfg.Name), encodeUser(uid, user))
}

// RemoteDetail implements [chat.Cluster].
func (n *Node) RemoteDetail(uid uint64) (user, instance string, since time.Time) {
	n.dirMu.RLock()
	defer n.dirMu.RUnlock()
	if m := n.dir.byUID[uid]; m != nil {
		user, instance = m.user, m.instance
		if m.since != 0 {
			since = time.Unix(0, m.since)
		}
	}
	return user, instance, since
}

// RemoteUsers implements [chat.Cluster].
func (n *Node) RemoteUsers(fn func(user string)) {
	n.dirMu.RLock()
	defer n.dirMu.RUnlock()
	for u := range n.dir.users {
		fn(u)
	}
}

// UserNodes implements [chat.Cluster].
func (n *Node) UserNodes(user string, fn func(node string, n int)) {
	per := map[string]int{}
	n.dirMu.RLock()
	for _, m := range n.dir.users[user] {
		per[m.peer.name]++
	}
	n.dirMu.RUnlock()
	for node, c := range per {
		fn(node, c)
	}
}

// Forward implements [chat.Cluster]: f goes to node's own subject, as a
// private message does.
func (n *Node) Forward(node string, f chat.Forwarded) bool {
	if !n.publish(n.subject(subNode, node), encodeForward(f)) {
		return false
	}
	n.sent.Add(1)
	return true
}

// runForward runs an action another node forwarded to this node's
// members. The Hub checks it as API input; what it refuses is counted as
// malformed.
func (n *Node) runForward(r *reader) {
	f, err := decodeForward(r)
	if err != nil || n.hub.RunForwarded(f) < 0 {
		n.dropped.Add(1)
		return
	}
	n.received.Add(1)
}
