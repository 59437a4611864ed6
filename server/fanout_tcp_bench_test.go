package server

import (
	"bufio"
	"bytes"
	"context"
	"net"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/fastws/fastws/chat"
	"github.com/fastws/fastws/server/config"
)

// fanOutRig is a running telnet server with n receivers that read and
// discard, and one sender: the fan-out case of scripts/bench in one
// process, for CPU profiles and allocation counts of the server's path.
type fanOutRig struct {
	sender  net.Conn
	n       int
	lines   atomic.Int64 // lines the receivers read
	reached chan struct{}
	target  atomic.Int64
	wg      sync.WaitGroup
	conns   []net.Conn
}

// newFanOutRig starts the server (two event loops, no rate limits) and
// connects n receivers and the sender, each past its welcome.
func newFanOutRig(tb testing.TB, n int) *fanOutRig {
	tb.Helper()
	ic := telnetInstance("t", 2)
	ic.Limits.MessagesPerSecond = 0
	ic.Limits.BytesPerSecond = 0
	ic.Limits.IdleTimeout = 0
	ic.Limits.MaxSendBuffer = 64 << 20
	ic.Limits.MaxConnectionsPerIP = 0
	// Joins are not announced to a room of this size: N receivers
	// joining would cost N² lines before the measurement.
	s := New(discardLogger(), chat.Options{})
	cfg := &config.Config{StopTimeout: 5 * time.Second, AnnounceLimit: 1, Defaults: config.DefaultLimits(), Instances: []config.Instance{ic}}
	if err := s.Start(cfg); err != nil {
		tb.Fatalf("start: %v", err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		defer cancel()
		_ = s.Stop(ctx)
	})
	addr := s.Addrs()["t"]
	rig := &fanOutRig{n: n, reached: make(chan struct{}, 1)}
	rig.target.Store(-1)
	for range n + 1 {
		// Not dial: its 1 MiB read buffer per client would cost more
		// than the server.
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			tb.Fatalf("dial: %v", err)
		}
		c := &client{tb: tb, conn: conn, r: bufio.NewReaderSize(conn, 4096)}
		c.welcomed()
		if c.r.Buffered() > 0 {
			tb.Fatalf("receiver got %d bytes after its welcome, want none", c.r.Buffered())
		}
		rig.conns = append(rig.conns, conn)
	}
	rig.sender = rig.conns[n]
	rig.conns = rig.conns[:n]
	tb.Cleanup(func() { rig.sender.Close() })
	for _, c := range rig.conns {
		rig.wg.Add(1)
		go rig.receive(c)
	}
	tb.Cleanup(func() {
		for _, c := range rig.conns {
			_ = c.Close()
		}
		rig.wg.Wait()
	})
	return rig
}

// receive counts c's lines until it closes.
func (rig *fanOutRig) receive(c net.Conn) {
	defer rig.wg.Done()
	buf := make([]byte, 64<<10)
	for {
		k, err := c.Read(buf)
		if k > 0 {
			got := rig.lines.Add(int64(bytes.Count(buf[:k], []byte{'\n'})))
			if t := rig.target.Load(); t >= 0 && got >= t {
				select {
				case rig.reached <- struct{}{}:
				default:
				}
			}
		}
		if err != nil {
			return
		}
	}
}

// waitLines waits until the receivers have read want lines in all.
func (rig *fanOutRig) waitLines(tb testing.TB, want int64) {
	tb.Helper()
	rig.target.Store(want)
	timer := time.NewTimer(testTimeout)
	defer timer.Stop()
	for rig.lines.Load() < want {
		select {
		case <-rig.reached:
		case <-timer.C:
			tb.Fatalf("receivers read %d lines, want %d", rig.lines.Load(), want)
		}
	}
}

// run sends msgs lines in writes of wave lines, keeping at most two
// waves unread, and waits until every receiver has read them all.
func (rig *fanOutRig) run(tb testing.TB, msgs, wave int) {
	tb.Helper()
	line := []byte("hello world, this is a fan-out line of some length\n")
	buf := bytes.Repeat(line, wave)
	base := rig.lines.Load()
	sent := 0
	for sent < msgs {
		k := min(wave, msgs-sent)
		if _, err := rig.sender.Write(buf[:k*len(line)]); err != nil {
			tb.Fatalf("send: %v", err)
		}
		if sent >= wave {
			rig.waitLines(tb, base+int64(sent-wave)*int64(rig.n))
		}
		sent += k
	}
	rig.waitLines(tb, base+int64(msgs)*int64(rig.n))
}

// cpuTime returns the process's user and system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkFanOutTCP measures a line's fan-out to n receivers over real
// sockets, per delivery: one op is one line read by one receiver. The
// receivers' reading is in the figures too (the same in an A/B pair);
// cpu-ns/delivery is the process's CPU time, as ns/op is wall time.
func BenchmarkFanOutTCP(b *testing.B) {
	for _, n := range []int{1000, 5000} {
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			rig := newFanOutRig(b, n)
			const wave = 50
			rig.run(b, 4*wave, wave) // warm up: buffers grow to their steady size
			msgs := max(b.N/n, 1)
			b.ReportAllocs()
			b.ResetTimer()
			var m0, m1 runtime.MemStats
			runtime.ReadMemStats(&m0)
			cpu := cpuTime()
			rig.run(b, msgs, wave)
			cpu = cpuTime() - cpu
			b.StopTimer()
			runtime.ReadMemStats(&m1)
			d := float64(msgs * n)
			b.ReportMetric(float64(cpu.Nanoseconds())/d, "cpu-ns/delivery")
			b.ReportMetric(float64(m1.Mallocs-m0.Mallocs)/d*1000, "allocs/1k-deliveries")
			b.ReportMetric(float64(m1.TotalAlloc-m0.TotalAlloc)/d, "B/delivery")
		})
	}
}
