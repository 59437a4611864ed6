package cluster

import (
	"context"
	"encoding/base64"
	"errors"
	"hash/fnv"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// uids: the key "uid" of the bucket counts the blocks handed out. A node
// takes block k (uids k*uidBlock to k*uidBlock+uidBlock-1, uid 0 aside)
// by moving the counter from k to k+1 with compare-and-swap, so two nodes
// never get one block, and a block is never handed out twice while the
// bucket lives. A block is a multiple of the Hub's member-table page, so
// pages free as on one node.
//
// While NATS is down a node hands out the rest of its block, then uids
// of its emergency range (emergencyBase + slot*emergencySize, slot from
// its name): larger, still typable, unique unless two nodes' names share
// a slot. Once NATS is back it takes blocks again.
const (
	uidBlock      = 128
	emergencyBase = 1_000_000_000
	emergencySize = 1_000_000
	uidKey        = "uid"
)

// uidSource is a node's current block, and the next one, taken ahead by
// the kv goroutine once half the current one is handed out, so that a join
// seldom waits for NATS.
type uidSource struct {
	mu        sync.Mutex
	next, end uint64 // next uid to hand out, and the end of its block
	spare     uint64 // the block taken ahead, plus one; 0 = none
	fetching  bool   // the kv goroutine is taking one
	emergency uint64 // next uid of the emergency range
	emEnd     uint64
}

func (u *uidSource) init(name string) {
	h := fnv.New32a()
	_, _ = h.Write([]byte(name))
	u.emergency = emergencyBase + uint64(h.Sum32()%1000)*emergencySize
	u.emEnd = u.emergency + emergencySize
}

// NextUID implements [chat.Cluster]. It waits for the key-value store
// once per uidBlock uids, at most the cluster timeout.
func (n *Node) NextUID() uint64 {
	u := &n.uids
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.next >= u.end && u.spare != 0 {
		k := u.spare - 1
		u.next, u.end, u.spare = max(k*uidBlock, 1), (k+1)*uidBlock, 0
	}
	if u.next < u.end {
		if u.spare == 0 && !u.fetching && u.end-u.next <= uidBlock/2 && n.connected.Load() {
			select {
			case n.prefetch <- struct{}{}:
				u.fetching = true
			default:
			}
		}
		u.next++
		return u.next - 1
	}
	if n.connected.Load() {
		if k, err := n.takeBlock(); err == nil {
			u.next, u.end = max(k*uidBlock, 1), (k+1)*uidBlock
			u.next++
			return u.next - 1
		} else {
			n.log.Warn("cluster: no uid block from NATS; using this node's emergency range", "err", err)
		}
	}
	if u.emergency < u.emEnd {
		u.emergency++
	}
	return u.emergency - 1
}

// takeBlock moves the block counter on by one and returns the block taken.
func (n *Node) takeBlock() (uint64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), n.cfg.Timeout)
	defer cancel()
	for {
		e, err := n.kv.Get(ctx, uidKey)
		switch {
		case errors.Is(err, jetstream.ErrKeyNotFound):
			if _, err := n.kv.Create(ctx, uidKey, []byte("1")); err == nil {
				return 0, nil
			} else if !errors.Is(err, jetstream.ErrKeyExists) && !retry(ctx) {
				return 0, err
			}
			continue
		case err != nil:
			if retry(ctx) {
				continue
			}
			return 0, err
		}
		k, err := strconv.ParseUint(string(e.Value()), 10, 64)
		if err != nil {
			return 0, errors.New("uid counter holds " + strconv.Quote(string(e.Value())))
		}
		if _, err := n.kv.Update(ctx, uidKey, []byte(strconv.FormatUint(k+1, 10)), e.Revision()); err == nil {
			return k, nil
		} else if ctx.Err() != nil {
			return 0, err
		}
		// Another node took it first: try the next.
	}
}

// retry waits a moment before another try at the key-value store, which
// answers with errors for a second or two while a NATS cluster elects the
// bucket a new leader; false once ctx leaves no time for one.
func retry(ctx context.Context) bool {
	const pause = 100 * time.Millisecond
	if d, ok := ctx.Deadline(); ok && time.Until(d) < 2*pause {
		return false
	}
	select {
	case <-ctx.Done():
		return false
	case <-time.After(pause):
		return true
	}
}

// nickClaim is a claim on a nick key: held by uid on node.
type nickClaim struct {
	node string
	uid  uint64
	key  string
}

func (c nickClaim) value() string { return c.node + "/" + strconv.FormatUint(c.uid, 10) }

func nickKVKey(key string) string { return "nick." + base64.RawURLEncoding.EncodeToString([]byte(key)) }

// maxClaims is the most nick claims a node has under way at once. A claim
// is a round trip to JetStream (up to the timeout while a NATS cluster
// elects a leader); past this many, a /nick is refused at once rather
// than queued, so that members repeating it load neither the node nor
// NATS beyond it.
const maxClaims = 256

// ClaimNick implements [chat.Cluster]: it claims the nick on a goroutine
// of the node's (see claimNick), at most cap(n.claims) at once, and calls
// done with the result; false (done not called) when that many are under
// way or the node is closing.
func (n *Node) ClaimNick(uid uint64, key string, done func(held bool)) bool {
	select {
	case n.claims <- struct{}{}:
	default:
		return false
	}
	n.claimMu.Lock()
	if n.closing {
		n.claimMu.Unlock()
		<-n.claims
		return false
	}
	n.wg.Add(1)
	n.claimMu.Unlock()
	go func() {
		defer n.wg.Done()
		if n.beforeClaim != nil {
			n.beforeClaim()
		}
		held := n.claimNick(uid, key)
		<-n.claims
		done(held)
	}()
	return true
}

// claimNick claims key for uid: the key "nick.<key>" of the bucket is
// created with its holder as value. A claim left by a node no longer
// running, or by a member of this node no longer online, is taken over.
// While NATS is down a claim is this node's alone (see README).
func (n *Node) claimNick(uid uint64, key string) bool {
	if !n.connected.Load() {
		return true
	}
	ctx, cancel := context.WithTimeout(context.Background(), n.cfg.Timeout)
	defer cancel()
	k := nickKVKey(key)
	mine := nickClaim{node: n.cfg.Name, uid: uid, key: key}.value()
	for range 3 {
		_, err := n.kv.Create(ctx, k, []byte(mine))
		for err != nil && !errors.Is(err, jetstream.ErrKeyExists) && retry(ctx) {
			_, err = n.kv.Create(ctx, k, []byte(mine))
		}
		if err == nil {
			return true
		} else if !errors.Is(err, jetstream.ErrKeyExists) {
			n.log.Warn("cluster: nick claim not checked with the cluster", "err", err)
			return true
		}
		e, err := n.kv.Get(ctx, k)
		for err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) && retry(ctx) {
			e, err = n.kv.Get(ctx, k)
		}
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			continue
		} else if err != nil {
			n.log.Warn("cluster: nick claim not checked with the cluster", "err", err)
			return true
		}
		holder := string(e.Value())
		if holder == mine {
			return true
		}
		if n.holds(holder) {
			return false
		}
		if _, err := n.kv.Update(ctx, k, []byte(mine), e.Revision()); err == nil {
			return true
		}
	}
	return false
}

// holds reports whether the claim value holder ("node/uid") is a member
// online: of this node, or of another the directory knows.
func (n *Node) holds(holder string) bool {
	node, u, _ := strings.Cut(holder, "/")
	uid, err := strconv.ParseUint(u, 10, 64)
	if err != nil {
		return false
	}
	if node == n.cfg.Name {
		n.localMu.Lock()
		defer n.localMu.Unlock()
		return n.local[uid] != nil
	}
	n.dirMu.RLock()
	defer n.dirMu.RUnlock()
	if p := n.dir.peers[node]; p != nil {
		// A node known a moment ago whose member's claim the directory
		// has not heard of yet holds it still.
		_, online := p.members[uid]
		return online || time.Since(p.seen) < n.cfg.Heartbeat
	}
	return false
}

// ReleaseNick implements [chat.Cluster]: the release goroutine deletes the
// claim, so that the member's event loop does not wait for it.
func (n *Node) ReleaseNick(uid uint64, key string) {
	n.releaseNick(nickClaim{node: n.cfg.Name, uid: uid, key: key})
}

func (n *Node) releaseNick(c nickClaim) {
	select {
	case n.releases <- c:
	default:
		// A claim not released is taken over by the next to claim it.
	}
}

// takeAhead takes the next uid block for uidSource.
func (n *Node) takeAhead() {
	k, err := n.takeBlock()
	u := &n.uids
	u.mu.Lock()
	defer u.mu.Unlock()
	u.fetching = false
	if err == nil {
		u.spare = k + 1
	}
}

// release is the node's key-value goroutine: it deletes released nick
// claims that are still the holder's, and takes uid blocks ahead.
func (n *Node) release() {
	defer n.wg.Done()
	for {
		select {
		case <-n.stop:
			return
		case <-n.prefetch:
			n.takeAhead()
		case c := <-n.releases:
			if !n.connected.Load() {
				continue
			}
			ctx, cancel := context.WithTimeout(context.Background(), n.cfg.Timeout)
			k := nickKVKey(c.key)
			if e, err := n.kv.Get(ctx, k); err == nil && string(e.Value()) == c.value() {
				_ = n.kv.Delete(ctx, k, jetstream.LastRevision(e.Revision()))
			}
			cancel()
		}
	}
}

// beat sends the node's heartbeat every period and measures the round
// trip to NATS.
func (n *Node) beat() {
	defer n.wg.Done()
	t := time.NewTicker(n.cfg.Heartbeat)
	defer t.Stop()
	for {
		n.localMu.Lock()
		members := len(n.local)
		n.localMu.Unlock()
		n.publish(n.subject(subBeat, n.cfg.Name), appendUint(appendString([]byte{msgBeat}, n.id), uint64(members)))
		if n.connected.Load() {
			ctx, cancel := context.WithTimeout(context.Background(), n.cfg.Timeout)
			start := time.Now()
			if err := n.nc.FlushWithContext(ctx); err == nil {
				n.rtt.Store(int64(time.Since(start)))
			}
			cancel()
		}
		select {
		case <-n.stop:
			return
		case <-t.C:
		}
	}
}
