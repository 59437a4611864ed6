// Package cluster joins fastws nodes through NATS: it is the [chat.Cluster]
// and [chat.Broker] of a Hub whose rooms, uids, nicks and member lists are
// shared by every node on the same NATS (SPEC section 10).
//
// What crosses NATS, and on which subjects (P is subjectPrefix, N a node's
// name, R a room's subject token, see roomToken):
//
//	P.lobby      a line, join, leave or nick change in the lobby   every node
//	P.room.R     the same in room R                  nodes with members in R
//	P.node.N     a private message to a member of N, or an API      node N
//	             action (send, join, leave, disconnect) for N's members
//	P.dir.N      N's member changes (user ids among them), its dump
//	             after a reconnect, its bye                            all
//	P.hb.N       N's heartbeat, every second                        every node
//	P.sync.N     a request for N's dump (reply: P.dump.M)            node N
//
// Every message of a node arrives at one goroutine of another (the loop),
// through one channel, so that what a node said is applied in the order it
// said it. uids come in blocks from a JetStream key-value counter and nick
// claims are keys of the same bucket (see uid.go).
//
// # Goroutines and locks
//
// A Node runs three goroutines: loop (every message received, and the
// check of the heartbeats), beat (its heartbeat and NATS round-trip
// time) and release (nick claims given up, which need the key-value store
// and must not hold up an event loop). Node.dirMu guards the directory of
// the other nodes' members, Node.localMu this node's members, Node.uidMu
// the current uid block; none is held while calling into the Hub, except
// that Hub calls Open and Close under its roomsMu, which take subMu.
package cluster

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/fastws/fastws/chat"
)

// Config is the [cluster] section of the config.
type Config struct {
	NATS        string        // comma-separated URLs
	Name        string        // this node's name; default the host name
	Prefix      string        // subject prefix; default "fastws"
	Credentials string        // a .creds file, optional
	Timeout     time.Duration // NATS connect and request timeout; default 2s
	// Heartbeat is the period of heartbeats: a node that misses deadBeats
	// of them in a row is gone. Default 1s.
	Heartbeat time.Duration
}

// deadBeats is the heartbeats a node may miss before the others take it for
// gone.
const deadBeats = 3

// Node is this process's place in a cluster. Its methods are safe for
// concurrent use.
type Node struct {
	cfg    Config
	log    *slog.Logger
	id     string // random per process: tells a restarted node, or an impostor, from the one known
	nc     *nats.Conn
	kv     jetstream.KeyValue
	prefix string

	hub     *chat.Hub
	deliver func(*chat.Event) // the Hub's, from Subscribe

	in     chan *nats.Msg
	subMu  sync.Mutex
	subs   []*nats.Subscription          // guarded by subMu: the fixed ones
	rooms  map[string]*nats.Subscription // guarded by subMu: room key -> its subscription
	opened map[string]*nats.Subscription // guarded by subMu: room subscriptions not yet confirmed (see Subscribed)

	flushMu     sync.Mutex
	flushes     []pendingFlush // guarded by flushMu: the Subscribed waiting for the next flush
	flusherDone bool           // guarded by flushMu: the flusher has stopped
	flushKick   chan struct{}  // wakes the flusher
	beforeFlush func()         // tests only: runs in the flusher before each flush
	localMu     sync.Mutex
	local       map[uint64]*member // guarded by localMu: this node's members

	dirMu sync.RWMutex
	dir   directory // guarded by dirMu

	uids uidSource

	releases chan nickClaim
	prefetch chan struct{} // asks the release goroutine for a uid block ahead

	claims      chan struct{} // a slot per nick claim under way (see ClaimNick)
	claimMu     sync.Mutex
	closing     bool   // guarded by claimMu: no new claim goroutines
	beforeClaim func() // tests only: runs in each claim's goroutine first

	connected atomic.Bool
	reason    atomic.Pointer[string] // why not connected; or a name conflict
	rtt       atomic.Int64
	sent      atomic.Uint64
	received  atomic.Uint64
	dropped   atomic.Uint64 // malformed messages

	stop     chan struct{}
	stopOnce sync.Once
	wg       sync.WaitGroup
}

// Subject tokens of each kind of message (see the package comment).
const (
	subLobby = "lobby"
	subRoom  = "room"
	subNode  = "node"
	subDir   = "dir"
	subBeat  = "hb"
	subSync  = "sync"
	subDump  = "dump"
)

// Connect connects to NATS, makes sure of the key-value bucket and that no
// running node has cfg.Name, and returns the node, which hears nothing
// until [Node.Start]. An unreachable NATS is an error naming the URL.
func Connect(cfg Config, log *slog.Logger) (*Node, error) {
	if cfg.Prefix == "" {
		cfg.Prefix = "fastws"
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 2 * time.Second
	}
	if cfg.Heartbeat <= 0 {
		cfg.Heartbeat = time.Second
	}
	if cfg.Name == "" {
		cfg.Name = DefaultName()
	}
	if err := CheckName(cfg.Name); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var idb [8]byte
	_, _ = rand.Read(idb[:])
	n := &Node{
		cfg: cfg, log: log, id: hex.EncodeToString(idb[:]), prefix: cfg.Prefix,
		in:        make(chan *nats.Msg, 1<<16),
		rooms:     map[string]*nats.Subscription{},
		opened:    map[string]*nats.Subscription{},
		local:     map[uint64]*member{},
		dir:       newDirectory(),
		releases:  make(chan nickClaim, 4096),
		prefetch:  make(chan struct{}, 1),
		flushKick: make(chan struct{}, 1),
		claims:    make(chan struct{}, maxClaims),
		stop:      make(chan struct{}),
	}
	n.uids.init(cfg.Name)
	opts := []nats.Option{
		nats.Name("fastws " + cfg.Name),
		nats.Timeout(cfg.Timeout),
		nats.NoEcho(), // a node delivers its own events itself
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250 * time.Millisecond),
		// What a node says while cut off is stale when it is back: it
		// sends its dump instead (see reconnected).
		nats.ReconnectBufSize(-1),
		nats.DisconnectErrHandler(n.disconnected),
		nats.ReconnectHandler(n.reconnected),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			n.log.Warn("cluster: NATS error", "err", err)
		}),
	}
	if cfg.Credentials != "" {
		opts = append(opts, nats.UserCredentials(cfg.Credentials))
	}
	nc, err := nats.Connect(cfg.NATS, opts...)
	if err != nil {
		return nil, fmt.Errorf("cluster: connect to NATS %s: %w", Redact(cfg.NATS), err)
	}
	n.nc = nc
	n.connected.Store(true)
	if err := n.setup(); err != nil {
		nc.Close()
		return nil, err
	}
	return n, nil
}

// setup opens the key-value bucket and checks the node's name.
func (n *Node) setup() error {
	ctx, cancel := context.WithTimeout(context.Background(), n.cfg.Timeout)
	defer cancel()
	js, err := jetstream.New(n.nc)
	if err != nil {
		return fmt.Errorf("cluster: JetStream on NATS %s: %w", n.nc.ConnectedUrlRedacted(), err)
	}
	kvc := jetstream.KeyValueConfig{
		Bucket:      bucketName(n.prefix),
		Description: "fastws cluster: uid blocks and nick claims",
		History:     1,
		// On a NATS cluster the bucket keeps three copies, so that it
		// outlives one server; a single server refuses that, and keeps one.
		Replicas: 3,
	}
	for {
		n.kv, err = js.CreateOrUpdateKeyValue(ctx, kvc)
		var apiErr *jetstream.APIError
		switch {
		case err == nil:
		case kvc.Replicas > 1 && errors.As(err, &apiErr) && apiErr.ErrorCode == errReplicasNotSupported:
			kvc.Replicas = 1
			continue
		case retry(ctx):
			// A NATS cluster just started may still be electing its
			// JetStream leader.
			continue
		}
		break
	}
	if err != nil {
		return fmt.Errorf("cluster: key-value bucket %s on NATS %s (is JetStream enabled?): %w", bucketName(n.prefix), n.nc.ConnectedUrlRedacted(), err)
	}
	// A node that answers to our name's sync subject is running: two
	// nodes of one name would take each other's messages.
	_, err = n.nc.Request(n.subject(subSync, n.cfg.Name), nil, min(n.cfg.Timeout, 500*time.Millisecond))
	if err == nil {
		return fmt.Errorf("cluster: node name %q is in use by a running node; set a unique name in [cluster]", n.cfg.Name)
	}
	return nil
}

// errReplicasNotSupported is JetStream's answer to a bucket of more than
// one copy on a NATS server that is not part of a NATS cluster
// (JSStreamReplicasNotSupportedErr).
const errReplicasNotSupported = 10074

// Start subscribes the node to the cluster's subjects on behalf of hub,
// whose [chat.Options] named the node as its Cluster, and starts its
// goroutines.
func (n *Node) Start(hub *chat.Hub) error {
	n.hub = hub
	for _, s := range []string{
		n.subject(subLobby), n.subject(subNode, n.cfg.Name), n.subject(subDir, "*"),
		n.subject(subBeat, "*"), n.subject(subSync, n.cfg.Name), n.subject(subDump, n.cfg.Name),
	} {
		sub, err := n.nc.ChanSubscribe(s, n.in)
		if err != nil {
			return fmt.Errorf("cluster: subscribe %s: %w", s, err)
		}
		n.subMu.Lock()
		n.subs = append(n.subs, sub)
		n.subMu.Unlock()
	}
	_ = n.nc.Flush()
	n.wg.Add(4)
	go n.loop()
	go n.beat()
	go n.release()
	go n.flusher()
	n.log.Info("cluster: joined", "node", n.cfg.Name, "nats", n.nc.ConnectedUrlRedacted())
	return nil
}

// Name returns the node's name.
func (n *Node) Name() string { return n.cfg.Name }

// Close leaves the cluster gracefully: the other nodes drop this node's
// members at once. It waits for the node's goroutines, at most until ctx
// ends. It is idempotent.
func (n *Node) Close(ctx context.Context) {
	n.stopOnce.Do(func() {
		if n.connected.Load() {
			n.publish(n.subject(subDir, n.cfg.Name), []byte{msgBye})
			_ = n.nc.FlushWithContext(ctx)
		}
		n.shutdown()
	})
}

// Kill drops the node out of the cluster without a word, as a crash would:
// the other nodes notice by its heartbeats. For tests.
func (n *Node) Kill() {
	n.stopOnce.Do(n.shutdown)
}

func (n *Node) shutdown() {
	n.claimMu.Lock()
	n.closing = true // the claims under way end within the timeout: waited for below
	n.claimMu.Unlock()
	close(n.stop)
	n.wg.Wait()
	n.nc.Close()
}

// Publish implements [chat.Broker]: it delivers ev here, then sends it
// once to the nodes that hold members of its room (every node for the
// lobby and for a nick change). It does not block.
func (n *Node) Publish(ev *chat.Event) {
	n.deliver(ev)
	switch ev.Kind {
	case chat.KindMessage, chat.KindJoin, chat.KindLeave, chat.KindNick:
	default:
		return
	}
	subj := n.subject(subLobby)
	if r := ev.Room; r != nil && !r.IsLobby() {
		subj = n.subject(subRoom, roomToken(r.Key()))
	}
	if n.publish(subj, encodeEvent(ev)) {
		n.sent.Add(1)
	}
}

// Subscribe implements [chat.Broker]; the Hub calls it once.
func (n *Node) Subscribe(deliver func(*chat.Event)) { n.deliver = deliver }

// publish sends data on subj if NATS is there: what a node says while cut
// off is lost (it is stale once back, and the node sends its dump then).
func (n *Node) publish(subj string, data []byte) bool {
	if !n.connected.Load() {
		return false
	}
	return n.nc.Publish(subj, data) == nil
}

// subject returns the prefix and tokens joined with dots.
func (n *Node) subject(tokens ...string) string {
	return n.prefix + "." + strings.Join(tokens, ".")
}

func (n *Node) disconnected(_ *nats.Conn, err error) {
	select {
	case <-n.stop:
		return // our own Close
	default:
	}
	n.connected.Store(false)
	why := "NATS connection lost"
	if err != nil {
		why += ": " + err.Error()
	}
	why += "; serving local clients only until it is back"
	n.reason.Store(&why)
	n.log.Error("cluster: " + why)
}

func (n *Node) reconnected(nc *nats.Conn) {
	n.connected.Store(true)
	n.reason.Store(nil)
	n.log.Info("cluster: NATS connection back", "nats", nc.ConnectedUrlRedacted())
	// The others may have taken this node for gone meanwhile: its dump
	// tells them who is here.
	n.sendDump(n.subject(subDir, n.cfg.Name))
}

// Healthy returns why the node is not part of the cluster, or nil.
func (n *Node) Healthy() error {
	if p := n.reason.Load(); p != nil {
		return errors.New("cluster: " + *p)
	}
	return nil
}

// Redact returns urls with every password replaced by "xxxxx".
func Redact(urls string) string {
	parts := strings.Split(urls, ",")
	for i, p := range parts {
		u, err := url.Parse(strings.TrimSpace(p))
		if err != nil {
			parts[i] = "(unparsable URL)"
			continue
		}
		if u.User != nil {
			if _, ok := u.User.Password(); ok {
				u.User = url.UserPassword(u.User.Username(), "xxxxx")
			} else {
				u.User = url.User("xxxxx") // a token
			}
		}
		parts[i] = u.String()
	}
	return strings.Join(parts, ",")
}

// DefaultName returns the host name as a node name: its first label, with
// what a NATS subject token cannot hold replaced by '_'.
func DefaultName() string {
	h, err := os.Hostname()
	if err != nil || h == "" {
		return "fastws"
	}
	h, _, _ = strings.Cut(h, ".")
	return strings.Map(func(r rune) rune {
		if nameRune(r) {
			return r
		}
		return '_'
	}, h)
}

func nameRune(r rune) bool {
	return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_'
}

// CheckName reports whether name can name a node: 1 to 64 letters, digits,
// '-' and '_' (it is a subject token).
func CheckName(name string) error {
	if name == "" || len(name) > 64 || strings.IndexFunc(name, func(r rune) bool { return !nameRune(r) }) >= 0 {
		return fmt.Errorf("cluster: node name %q: use 1 to 64 letters, digits, - and _", name)
	}
	return nil
}

// roomToken returns a room key as a subject token: itself if it is made of
// letters, digits, '-' and '_', else "~" and its bytes in hex (a key may
// hold '.', which separates tokens, and any letter, but never '~').
func roomToken(key string) string {
	if strings.IndexFunc(key, func(r rune) bool { return !nameRune(r) }) < 0 && key != "" {
		return key
	}
	return "~" + hex.EncodeToString([]byte(key))
}

// bucketName returns the key-value bucket of a subject prefix.
func bucketName(prefix string) string {
	return strings.Map(func(r rune) rune {
		if nameRune(r) {
			return r
		}
		return '_'
	}, prefix) + "_cluster"
}
