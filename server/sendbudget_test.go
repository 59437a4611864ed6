package server

import (
	"context"
	"fmt"
	"github.com/fastws/fastws/chat"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fastws/fastws/server/config"
)

// TestSendBufferTotalIsBounded: maxSendBuffer bounds one client, and
// maxSendBufferTotal the daemon. Twenty clients that never read, each
// under its own 1 MiB, together hold several times the total; past it
// the ones holding the most are closed as slow consumers, and a client
// that reads keeps everything.
func TestSendBufferTotalIsBounded(t *testing.T) {
	const (
		nonReaders = 20
		total      = 4 << 20
		// The count lags the truth by at most publishEvery per reactor
		// plus the one write that crosses the limit (a 45 KB line
		// here); sampling the reactors one after the other adds a
		// little more. 512 KiB covers both reactors.
		slack    = 512 << 10
		fillLine = 60 << 10 // phase 1: fills the kernel's socket buffers
		fill     = 44       // lines of fillLine: 2.6 MB, what loopback's buffers take
		privLine = 45 << 10 // phase 2: non-reader k gets k lines of privLine
	)
	ic := telnetInstance("a", 2)
	ic.Limits.MaxSendBuffer = 1 << 20
	ic.Limits.MessagesPerSecond = 0
	ic.Limits.BytesPerSecond = 0
	s := startServerTotal(t, total, ic)
	addr := s.Addrs()["a"]

	talker := dial(t, addr)
	var quiet []*client
	for range nonReaders {
		c := dialWith(t, smallRcvBuf(), addr)
		quiet = append(quiet, c)
		m := joinedRE.FindStringSubmatch(talker.line())
		if m == nil {
			t.Fatal("talker: want a join notice")
		}
		c.uid, _ = strconv.ParseUint(m[1], 10, 64)
	}
	reactorOf := map[uint64]int{}
	for _, cs := range connections(t, s) {
		reactorOf[cs.UID] = cs.Reactor
	}

	// Sample the daemon's queued output while the bursts go on.
	stop := make(chan struct{})
	var peak, samples int
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			n := 0
			for _, cs := range connections(t, s) {
				n += cs.Queued
			}
			peak, samples = max(peak, n), samples+1
			select {
			case <-stop:
				return
			case <-time.After(time.Millisecond):
			}
		}
	})

	// Phase 1: broadcasts that fill every non-reader's kernel buffers.
	prefix := fmt.Sprintf("uid %d: ", talker.uid)
	body := strings.Repeat("f", fillLine)
	// The talker writes on its own goroutine and reads meanwhile, as
	// any reading client does: it must not be taken for a non-reader.
	sendAsync(t, &wg, talker, strings.Repeat(body+"\n", fill))
	for k := 0; k < fill; {
		switch line := talker.line(); {
		case line == prefix+body:
			k++
		case strings.HasPrefix(line, "* uid ") && strings.HasSuffix(line, " left"):
		default:
			t.Fatalf("talker: got %.60q, want its broadcast", line)
		}
	}
	open := map[uint64]bool{}
	for _, cs := range connections(t, s) {
		open[cs.UID] = true
	}

	// Phase 2: what a non-reader holds now grows with k; the biggest go
	// first, so that each new one pushes the total past the limit.
	priv := strings.Repeat("p", privLine)
	var b strings.Builder
	lines := 0
	for k := nonReaders - 1; k > 0; k-- {
		for range k {
			fmt.Fprintf(&b, "$%d:%s\n", quiet[k].uid, priv)
			lines++
		}
	}
	sendAsync(t, &wg, talker, b.String())
	for k := 0; k < lines; {
		switch line := talker.line(); {
		case strings.HasPrefix(line, "(to uid ") && strings.HasSuffix(line, priv):
			k++
		case strings.HasPrefix(line, "* uid ") && strings.HasSuffix(line, " left"):
		default:
			t.Fatalf("talker: got %.60q, want the echo of a private line", line)
		}
	}
	close(stop)
	wg.Wait()
	// Every line is queued or written by now: one more sample, which
	// the sampler may have missed on a busy machine.
	n := 0
	for _, cs := range connections(t, s) {
		n += cs.Queued
	}
	peak = max(peak, n)

	// The talker reads: it stays, and nothing it was sent is lost.
	talker.sync()
	survivors := map[uint64]bool{}
	for _, cs := range connections(t, s) {
		survivors[cs.UID] = true
	}
	if !survivors[talker.uid] {
		t.Errorf("talker uid %d: closed, want it connected", talker.uid)
	}
	t.Logf("peak queued %d KiB over %d samples (limit %d KiB); open after phase 1: %d of %d non-readers, after phase 2: %d",
		peak>>10, samples, total>>10, len(open)-1, nonReaders, len(survivors)-1)
	if peak > total+slack {
		t.Errorf("queued output peaked at %d KiB, want at most maxSendBufferTotal %d KiB + %d KiB", peak>>10, total>>10, slack>>10)
	}
	st := s.Stats().Instances[0]
	closed := nonReaders - (len(survivors) - 1)
	if int(st.ClosedByReason["slow_consumer"]) != closed || int(st.SlowConsumers) != closed || closed == 0 {
		t.Errorf("got %d closed as slow_consumer, %d slow consumers; want %d (the non-readers gone), at least one",
			st.ClosedByReason["slow_consumer"], st.SlowConsumers, closed)
	}
	// In phase 2, each reactor closed its non-readers holding the most:
	// every one it closed got more than every one it kept.
	for r := range 2 {
		var order []bool // closed in phase 2, by k ascending, on reactor r
		for _, c := range quiet {
			if reactorOf[c.uid] == r && open[c.uid] {
				order = append(order, !survivors[c.uid])
			}
		}
		if i := slices.Index(order, true); i >= 0 && slices.Contains(order[i:], false) {
			t.Errorf("reactor %d: closed in phase 2, by what they got: %v; want the biggest closed first", r, order)
		}
	}
}

// sendAsync writes s to c on a goroutine of wg.
func sendAsync(t *testing.T, wg *sync.WaitGroup, c *client, s string) {
	wg.Go(func() {
		if _, err := c.conn.Write([]byte(s)); err != nil {
			t.Errorf("uid %d: write: %v", c.uid, err)
		}
	})
}

// startServerTotal is startServer with maxSendBufferTotal set.
func startServerTotal(tb testing.TB, total int, insts ...config.Instance) *Server {
	tb.Helper()
	s := New(discardLogger(), chat.Options{})
	cfg := &config.Config{StopTimeout: 5 * time.Second, Defaults: config.DefaultLimits(), Instances: insts, MaxSendBufferTotal: total}
	if err := s.Start(cfg); err != nil {
		tb.Fatalf("start: %v", err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		defer cancel()
		_ = s.Stop(ctx)
	})
	return s
}

// connections lists s's connections or fails the test.
func connections(tb testing.TB, s *Server) []ConnStats {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	cs, err := s.Connections(ctx)
	if err != nil {
		tb.Errorf("connections: %v", err)
	}
	return cs
}
