package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Fan-out payloads. A message is "FO|phase|seq|unixnano": the receiver
// takes the latency from the timestamp. A marker "MK|k" is sent to every
// connection once set-up traffic (join notices) has been queued: a
// connection that reads it has read everything queued before it, since
// each server delivers in order per connection.
const (
	tagMessage = "FO|"
	tagMarker  = "MK|"
	numPhases  = 2 // saturation, fixed rate
	maxMarkers = 16
	histShards = 16
)

// groupSpec says what a group of receiving connections connects to.
type groupSpec struct {
	Target   target `json:"target"`
	N        int    `json:"n"`
	SrcAddrs int    `json:"srcAddrs"` // 127.0.0.X source addresses
	SrcFirst int    `json:"srcFirst"` // offset into them, so groups spread
	DialConc int    `json:"dialConc"` // connections being set up at once
	BufSize  int    `json:"bufSize"`
	// RoomSize, if not 0, makes each connection join a room once set up:
	// connection i of the run (First+i of the group) joins room number
	// (First+i)/RoomSize (see roomName).
	RoomSize int `json:"roomSize,omitempty"`
	First    int `json:"first"`
}

// groupProgress is a group's counters as of now.
type groupProgress struct {
	Connected int64             `json:"connected"` // set up (welcome read, if any)
	Errors    int64             `json:"errors"`    // failed connects, unexpected closes
	LastError string            `json:"lastError,omitempty"`
	Messages  int64             `json:"messages"` // lines or text frames read, of any kind
	Joined    int64             `json:"joined"`   // connections told they are in their room
	Marks     [maxMarkers]int64 `json:"marks"`    // connections that read marker k
	Recv      [numPhases]int64  `json:"recv"`     // messages read, per phase
}

// groupReport is a group's final latency histograms.
type groupReport struct {
	Hist [numPhases]histSnap `json:"hist"`
}

// group is a set of receiving connections, in this process (localGroup)
// or in a worker process (remoteGroup).
type group interface {
	// connect sets up every connection and returns once all are up or
	// failed.
	connect(ctx context.Context) error
	progress() groupProgress
	report() (groupReport, error)
	// quiet says the server is about to close the connections: from now
	// on a closed connection is not an error.
	quiet()
	// close closes every connection.
	close()
}

// localGroup is a group in this process: one goroutine per connection.
type localGroup struct {
	spec    groupSpec
	d       *dialer
	closing atomic.Bool

	mu      sync.Mutex
	clients []*client
	lastErr string

	connected, errors atomic.Int64
	messages, joined  atomic.Int64
	marks             [maxMarkers]atomic.Int64
	recv              [numPhases]atomic.Int64
	hist              [numPhases][histShards]hist
	wg                sync.WaitGroup
}

func newLocalGroup(spec groupSpec) *localGroup {
	return &localGroup{spec: spec, d: newDialer(spec.SrcAddrs)}
}

func (g *localGroup) fail(err error) {
	g.errors.Add(1)
	g.mu.Lock()
	g.lastErr = err.Error()
	g.mu.Unlock()
}

func (g *localGroup) connect(ctx context.Context) error {
	sem := make(chan struct{}, max(g.spec.DialConc, 1))
	var wg sync.WaitGroup
	for i := range g.spec.N {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			wg.Wait()
			return ctx.Err()
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			dctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			defer cancel()
			cl, err := connect(dctx, g.d, g.spec.Target, g.spec.SrcFirst+i, g.spec.BufSize)
			if err == nil && g.spec.RoomSize > 0 {
				if err = cl.send([]byte("/join " + roomName((g.spec.First+i)/g.spec.RoomSize))); err != nil {
					cl.close()
				}
			}
			if err != nil {
				g.fail(err)
				return
			}
			g.mu.Lock()
			g.clients = append(g.clients, cl)
			g.mu.Unlock()
			g.connected.Add(1)
			g.wg.Add(1)
			go g.read(cl, i%histShards)
		}()
	}
	wg.Wait()
	return nil
}

// read consumes a connection's messages until it closes.
//
// It counts them, and reads the clock for their latency, once per read
// from the socket rather than once per message: the messages one read
// returns arrived together, and the counters every connection shares
// would cost the load tool more CPU per message than the server spends
// (measured: 0.22-0.30 µs per delivery with them per message). The
// counts are published before a read that may wait, so that what the
// sender's window and the set-up wait for is never held back.
func (g *localGroup) read(cl *client, shard int) {
	defer g.wg.Done()
	seen := 0     // the highest marker read
	var now int64 // when the messages in the read buffer were read
	var msgs int64
	var recv [numPhases]int64
	publish := func() {
		if msgs > 0 {
			g.messages.Add(msgs)
			msgs = 0
		}
		for ph, n := range recv {
			if n > 0 {
				g.recv[ph].Add(n)
				recv[ph] = 0
			}
		}
	}
	for {
		msg, ok := cl.buffered()
		if !ok { // next reads from the socket, and may wait
			publish()
			now = 0
			var err error
			if msg, err = cl.next(); err != nil {
				publish()
				if !g.closing.Load() {
					g.fail(fmt.Errorf("read: %w", err))
				}
				return
			}
		}
		if now == 0 {
			now = time.Now().UnixNano()
		}
		msgs++
		if g.spec.RoomSize > 0 {
			switch {
			case bytes.HasPrefix(msg, []byte(roomJoined)):
				g.joined.Add(1)
				continue
			case bytes.HasPrefix(msg, []byte(refusal)):
				g.fail(fmt.Errorf("refused: %q", msg))
				continue
			}
		}
		phase, ts, ok := tailMessage(msg)
		if !ok {
			if i := bytes.Index(msg, []byte(tagMessage)); i >= 0 {
				phase, ts, ok = parseMessage(msg[i+len(tagMessage):])
			} else if i := bytes.Index(msg, []byte(tagMarker)); i >= 0 {
				seen = countMarker(msg[i+len(tagMarker):], seen, &g.marks)
			}
		}
		if ok {
			recv[phase]++
			g.hist[phase][shard].add(time.Duration(now - ts))
		}
	}
}

// countMarker counts a connection that reads marker k (the text b) for
// the first time in marks[k], and for every marker below k it had not
// read; it returns the connection's new highest marker.
func countMarker(b []byte, seen int, marks *[maxMarkers]atomic.Int64) int {
	k, err := strconv.Atoi(string(b))
	if err != nil || k >= maxMarkers {
		return seen
	}
	for ; seen < k; seen++ {
		marks[seen+1].Add(1)
	}
	return seen
}

// tailMessage is the fast path to a fan-out message: it returns what
// parseMessage of what follows the first tagMessage in line would, but
// reads line from its end, where both servers put what was said
// ("uid 17: FO|0|42|1700000000123456789"), and takes the 19 digits of a
// unixnano eight at a time. It knows only that shape, a one-digit phase
// and a 19-digit unixnano (2001 to 2286): ok is false for anything else,
// which the caller then parses the slow way.
func tailMessage(line []byte) (phase int, ts int64, ok bool) {
	at := len(line) - 19 // the unixnano
	if at < 1 || line[at-1] != '|' {
		return 0, 0, false
	}
	a, b, c := line[at]-'0', line[at+1]-'0', line[at+2]-'0'
	hi, ok1 := eightDigits(line[at+3:])
	lo, ok2 := eightDigits(line[at+11:])
	t := (uint64(a)*100+uint64(b)*10+uint64(c))*1e16 + hi*1e8 + lo
	if a > 9 || b > 9 || c > 9 || !ok1 || !ok2 || t > math.MaxInt64 {
		return 0, 0, false
	}
	i := at - 1 // the seq, which may have any number of digits
	for i > 0 && line[i-1]-'0' <= 9 {
		i--
	}
	tag := i - len(tagMessage) - 2 // "FO|", the phase, "|", the seq
	if tag < 0 || line[i-1] != '|' || line[i-2]-'0' >= numPhases || string(line[tag:i-2]) != tagMessage {
		return 0, 0, false
	}
	// The first tag is the one that counts. IndexByte spares most lines
	// the dearer Contains: a prefix ("uid 17: ") rarely has an F.
	if p := line[:tag]; bytes.IndexByte(p, tagMessage[0]) >= 0 && bytes.Contains(p, []byte(tagMessage)) {
		return 0, 0, false
	}
	return int(line[i-2] - '0'), int64(t), true
}

// eightDigits returns the value of b[:8] if it is 8 decimal digits. It
// takes them at once, in a 64-bit word: one at a time, each waits for
// the one before it, and parsing was most of a line's cost.
func eightDigits(b []byte) (uint64, bool) {
	const (
		nibbles = 0xf0f0f0f0f0f0f0f0
		zeros   = 0x3030303030303030 // '0' in every byte
	)
	x := binary.LittleEndian.Uint64(b) // b[0], the first digit, lowest
	// Every byte in '0'..'?', and still below ':' once 6 is added.
	if x&nibbles != zeros || (x+0x0606060606060606)&nibbles != zeros {
		return 0, false
	}
	x -= zeros
	// Join neighbours: 8 numbers of 1 digit, then 4 of 2, 2 of 4, 1 of 8.
	x = (x*10 + x>>8) & 0x00ff00ff00ff00ff
	x = (x*100 + x>>16) & 0x0000ffff0000ffff
	return (x*10000 + x>>32) & 0xffffffff, true
}

// parseMessage parses "phase|seq|unixnano".
func parseMessage(b []byte) (phase int, ts int64, ok bool) {
	var f [3]int64
	k := 0
	for _, c := range b {
		switch {
		case c >= '0' && c <= '9':
			f[k] = f[k]*10 + int64(c-'0')
		case c == '|' && k < 2:
			k++
		default:
			return 0, 0, false
		}
	}
	if k != 2 || f[0] < 0 || f[0] >= numPhases { // < 0: wrapped, past 19 digits
		return 0, 0, false
	}
	return int(f[0]), f[2], true
}

func (g *localGroup) progress() groupProgress {
	p := groupProgress{Connected: g.connected.Load(), Errors: g.errors.Load(), Messages: g.messages.Load(), Joined: g.joined.Load()}
	g.mu.Lock()
	p.LastError = g.lastErr
	g.mu.Unlock()
	for k := range p.Marks {
		p.Marks[k] = g.marks[k].Load()
	}
	for ph := range p.Recv {
		p.Recv[ph] = g.recv[ph].Load()
	}
	return p
}

func (g *localGroup) report() (groupReport, error) {
	var r groupReport
	for ph := range numPhases {
		for sh := range histShards {
			r.Hist[ph].merge(g.hist[ph][sh].snap())
		}
	}
	return r, nil
}

func (g *localGroup) quiet() { g.closing.Store(true) }

func (g *localGroup) close() {
	g.closing.Store(true)
	g.mu.Lock()
	for _, cl := range g.clients {
		cl.close()
	}
	g.mu.Unlock()
	done := make(chan struct{})
	go func() { g.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
	}
}

// groups is the receivers of one run, spread over this process and
// workers so that no process passes its open-file limit.
type groups []group

// newGroups returns one group in this process for up to perProc
// connections; more are split evenly over worker processes of at most
// perProc each (this process keeps the sender and the probes).
func newGroups(ctx context.Context, w *workers, spec groupSpec, perProc int) (groups, error) {
	specs := splitGroups(spec, perProc)
	if len(specs) == 1 {
		return groups{newLocalGroup(specs[0])}, nil
	}
	var gs groups
	for _, s := range specs {
		g, err := w.start(ctx, s)
		if err != nil {
			gs.close()
			return nil, err
		}
		gs = append(gs, g)
	}
	return gs, nil
}

// splitGroups splits spec into groups of at most perProc connections,
// evenly (19,000 over two processes is 9,500 each), each numbered from
// where the one before it ends (First, and SrcFirst for the source
// addresses).
func splitGroups(spec groupSpec, perProc int) []groupSpec {
	if spec.N <= perProc {
		return []groupSpec{spec}
	}
	procs := (spec.N + perProc - 1) / perProc
	var out []groupSpec
	for first := 0; first < spec.N; {
		s := spec
		s.N = min(spec.N-first, (spec.N+procs-1)/procs)
		s.SrcFirst, s.First = spec.SrcFirst+first, spec.First+first
		first += s.N
		out = append(out, s)
	}
	return out
}

// connect sets up every group at once.
func (gs groups) connect(ctx context.Context) error {
	errc := make(chan error, len(gs))
	for _, g := range gs {
		go func() { errc <- g.connect(ctx) }()
	}
	var errs []error
	for range gs {
		errs = append(errs, <-errc)
	}
	return errors.Join(errs...)
}

func (gs groups) progress() groupProgress {
	var p groupProgress
	for _, g := range gs {
		q := g.progress()
		p.Connected += q.Connected
		p.Errors += q.Errors
		p.Messages += q.Messages
		p.Joined += q.Joined
		if q.LastError != "" {
			p.LastError = q.LastError
		}
		for k := range p.Marks {
			p.Marks[k] += q.Marks[k]
		}
		for ph := range p.Recv {
			p.Recv[ph] += q.Recv[ph]
		}
	}
	return p
}

func (gs groups) report() (groupReport, error) {
	var r groupReport
	for _, g := range gs {
		q, err := g.report()
		if err != nil {
			return r, err
		}
		for ph := range numPhases {
			r.Hist[ph].merge(q.Hist[ph])
		}
	}
	return r, nil
}

func (gs groups) quiet() {
	for _, g := range gs {
		g.quiet()
	}
}

func (gs groups) close() {
	var wg sync.WaitGroup
	for _, g := range gs {
		wg.Add(1)
		go func() { defer wg.Done(); g.close() }()
	}
	wg.Wait()
}

// waitFor polls cond every 20ms until it holds, ctx ends or timeout
// passes; it reports whether cond held.
func waitFor(ctx context.Context, timeout time.Duration, cond func() bool) bool {
	t := time.NewTimer(timeout)
	defer t.Stop()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
			return cond()
		case <-tick.C:
		}
	}
	return true
}
