package server

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestOneSenderCannotCutReaders: at the default limits, one sender's
// legal burst of long lines (messageBurst lines of near maxPackageSize)
// must not push readers that read steadily past their maxSendBuffer. The
// byte limit (bytesPerSecond, bytesBurst) refuses most of the burst with
// "! slow down"; without it, 100 lines of 60 KB are 6 MB for each
// reader's 1 MiB buffer and every reader is cut as a slow consumer.
func TestOneSenderCannotCutReaders(t *testing.T) {
	const (
		readers  = 20
		lines    = 100
		lineSize = 60 << 10
		readRate = 2 << 20 // bytes per second each reader takes
	)
	ic := telnetInstance("a", 2) // the default limits
	s := startServer(t, ic)
	addr := s.Addrs()["a"]

	// Readers with a small receive buffer: what they have not read waits
	// in the daemon, where maxSendBuffer counts it, not in the kernel.
	var rs []*client
	for range readers {
		rs = append(rs, dialWith(t, smallRcvBuf(), addr).welcomed())
	}
	sender := dial(t, addr)
	prefix := fmt.Sprintf("uid %d: ", sender.uid)
	body := strings.Repeat("x", lineSize)

	// Each reader takes at most readRate, counts the burst lines and
	// stops at "done", or at the first error.
	got := make([]int, readers)
	errs := make([]error, readers)
	var wg sync.WaitGroup
	for k, c := range rs {
		wg.Go(func() { got[k], errs[k] = readPaced(c, prefix, body, readRate) })
	}

	// The burst, as fast as the socket takes it, while the sender reads
	// what comes back to it: its own lines and the refusals.
	echoed, refused := 0, 0
	wg.Go(func() {
		var b strings.Builder
		for range lines {
			b.WriteString(body + "\n")
		}
		if _, err := sender.conn.Write([]byte(b.String())); err != nil {
			t.Errorf("sender: write: %v", err)
		}
	})
	for echoed+refused < lines {
		switch line := sender.line(); {
		case line == prefix+body:
			echoed++
		case line == "! slow down":
			refused++
		case strings.HasPrefix(line, "* uid "):
		default:
			t.Fatalf("sender: got %.60q, want its own line or %q", line, "! slow down")
		}
	}
	// "done" may be refused too until the byte bucket refills a little.
	deadline := time.Now().Add(testTimeout)
	sender.send("done\n")
	for sent := false; !sent; {
		switch line := sender.line(); {
		case line == prefix+"done":
			sent = true
		case line == "! slow down" && time.Now().Before(deadline):
			time.Sleep(50 * time.Millisecond) // the refill, not a synchronisation
			sender.send("done\n")
		case strings.HasPrefix(line, "* uid "): // readers leaving, if they are cut
		default:
			t.Fatalf("sender: got %.60q after the burst, want %q", line, prefix+"done")
		}
	}
	wg.Wait()

	t.Logf("sender: %d lines passed, %d refused", echoed, refused)
	if refused == 0 {
		t.Errorf("sender: no line refused, want %q for most of the burst", "! slow down")
	}
	for k, err := range errs {
		if err != nil {
			t.Errorf("reader %d: %v", k, err)
		} else if got[k] != echoed {
			t.Errorf("reader %d: got %d burst lines, want %d", k, got[k], echoed)
		}
	}
	st := s.Stats().Instances[0]
	if st.SlowConsumers != 0 || st.ClosedByReason["slow_consumer"] != 0 {
		t.Errorf("got %d slow consumers, %d closed as slow_consumer; want none", st.SlowConsumers, st.ClosedByReason["slow_consumer"])
	}
	if st.Connections != readers+1 {
		t.Errorf("got %d connections open, want %d", st.Connections, readers+1)
	}
}

// readPaced reads c's lines at no more than rate bytes per second until
// prefix+"done", and returns how many were prefix+body. Other lines (join
// notices) are skipped. It runs on its own goroutine and so does not use
// c's helpers, which fail the test.
func readPaced(c *client, prefix, body string, rate int) (int, error) {
	_ = c.conn.SetReadDeadline(time.Now().Add(3 * testTimeout))
	start, n, k := time.Now(), 0, 0
	for {
		s, err := c.r.ReadString('\n')
		if err != nil {
			return k, fmt.Errorf("after %d burst lines: %v", k, err)
		}
		switch s = strings.TrimSuffix(s, "\r\n"); s {
		case prefix + body:
			k++
		case prefix + "done":
			return k, nil
		}
		// A steady reader, not loopback's gigabytes per second.
		n += len(s) + 2
		time.Sleep(time.Until(start.Add(time.Duration(n) * time.Second / time.Duration(rate))))
	}
}
