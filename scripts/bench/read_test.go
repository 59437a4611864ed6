package main

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// fanoutStream is what a receiver of a fan-out at saturation reads from
// fastws: batches of msgsPerBatch messages ("uid 17: FO|0|seq|unixnano"),
// one batch per read, as telnet lines or websocket text frames. A batch's
// messages were sent 1.37 ms apart, the oldest 137 ms ago, as at 7.3
// million deliveries/s to 10,000 receivers with a window of 100.
type fanoutStream struct {
	ws      bool
	yield   bool // let other readers run before each batch, as a read that waits does
	batches int  // still to read
	buf     []byte
	off     int
	stamps  []int // where each message's timestamp starts in buf
	stamped time.Time
}

const (
	msgsPerBatch = 100
	msgSpacing   = 1370 * time.Microsecond
)

func newFanoutStream(ws bool, lines int) *fanoutStream {
	s := &fanoutStream{ws: ws, batches: (lines + msgsPerBatch - 1) / msgsPerBatch}
	now := time.Now().UnixNano()
	for i := range msgsPerBatch {
		line := []byte("uid 17: ")
		line = appendMessage(line, 0, int64(100000+i), now)
		stamp := len(line) - len(strconv.FormatInt(now, 10))
		if ws {
			s.buf = append(s.buf, 0x81, byte(len(line)))
		} else {
			line = append(line, '\r', '\n')
		}
		s.stamps = append(s.stamps, len(s.buf)+stamp)
		s.buf = append(s.buf, line...)
	}
	s.stamp()
	return s
}

// lines is the number of messages the stream delivers in all.
func (s *fanoutStream) lines() int { return s.batches * msgsPerBatch }

// stamp rewrites the timestamps so that the latencies stay what they
// would be (to within the 10 ms between stamps), however long the
// benchmark runs. Unix nanoseconds keep their 19 digits, so the layout
// does not move.
func (s *fanoutStream) stamp() {
	now := time.Now()
	s.stamped = now
	oldest := now.Add(-msgsPerBatch * msgSpacing)
	var ts []byte
	for i, at := range s.stamps {
		ts = strconv.AppendInt(ts[:0], oldest.Add(time.Duration(i)*msgSpacing).UnixNano(), 10)
		copy(s.buf[at:], ts)
	}
}

func (s *fanoutStream) Read(p []byte) (int, error) {
	if s.off == 0 {
		if s.batches == 0 {
			return 0, io.EOF
		}
		s.batches--
		if s.yield {
			runtime.Gosched()
		}
		if time.Since(s.stamped) > 10*time.Millisecond {
			s.stamp()
		}
	}
	n := copy(p, s.buf[s.off:])
	s.off += n
	if s.off == len(s.buf) {
		s.off = 0
	}
	return n, nil
}

// readAll runs g.read over cl until the stream ends, and checks that
// every message was counted and timed.
func readAll(tb testing.TB, g *localGroup, cl *client, want int) {
	tb.Helper()
	g.closing.Store(true) // the end of the stream is no error
	g.wg.Add(1)
	g.read(cl, 0)
	var timed uint64
	for sh := range histShards {
		timed += g.hist[0][sh].snap().N
	}
	p := g.progress()
	if p.Messages != int64(want) || p.Recv[0] != int64(want) || timed != uint64(want) {
		tb.Fatalf("read %d messages, %d of phase 0, %d timed; want %d", p.Messages, p.Recv[0], timed, want)
	}
}

// benchRead times readAll, per line: in wall time, and in the process's
// CPU time, which holds still while other processes share the CPUs.
func benchRead(b *testing.B, g *localGroup, cl *client, lines int) {
	b.Helper()
	cpu0 := cpuTime(b)
	b.ResetTimer()
	readAll(b, g, cl, lines)
	b.StopTimer()
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(lines), "ns/line")
	b.ReportMetric(float64((cpuTime(b)-cpu0).Nanoseconds())/float64(lines), "cpu-ns/line")
}

// cpuTime is the user and system CPU time of this process so far.
func cpuTime(tb testing.TB) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkReadFanout is the receive path of a fan-out, without the
// kernel: a connection's reads, each of a batch of messages.
func BenchmarkReadFanout(b *testing.B) {
	for _, ws := range []bool{false, true} {
		b.Run(map[bool]string{false: "telnet", true: "websocket"}[ws], func(b *testing.B) {
			s := newFanoutStream(ws, b.N)
			g := newLocalGroup(groupSpec{})
			cl := &client{ws: ws, r: bufio.NewReaderSize(s, 4096), c: &recorder{}}
			benchRead(b, g, cl, s.lines())
		})
	}
}

// BenchmarkReadFanoutTCP is BenchmarkReadFanout through a loopback TCP
// connection, kernel included. The writer takes the other CPU, and its
// CPU time is in cpu-ns/line: read ns/line.
func BenchmarkReadFanoutTCP(b *testing.B) {
	for _, ws := range []bool{false, true} {
		b.Run(map[bool]string{false: "telnet", true: "websocket"}[ws], func(b *testing.B) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			defer ln.Close()
			s := newFanoutStream(ws, b.N)
			lines := s.lines()
			go func() {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				defer c.Close()
				buf := make([]byte, len(s.buf)) // one batch per write
				_, _ = io.CopyBuffer(struct{ io.Writer }{c}, struct{ io.Reader }{s}, buf)
			}()
			c, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			g := newLocalGroup(groupSpec{})
			cl := &client{ws: ws, r: bufio.NewReaderSize(c, 4096), c: c}
			benchRead(b, g, cl, lines)
		})
	}
}

// BenchmarkReadFanoutShared is BenchmarkReadFanout with many readers
// taking turns on every CPU, sharing the histograms' shards as the
// 10,000 of a fan-out do: what a message's latency costs then depends on
// how often a reader writes to memory the other CPU wrote to last.
func BenchmarkReadFanoutShared(b *testing.B) {
	const readers = 4 * histShards
	g := newLocalGroup(groupSpec{})
	g.closing.Store(true)
	var cls []*client
	lines := 0
	for range readers {
		s := newFanoutStream(false, b.N/readers+1)
		s.yield = true
		lines += s.lines()
		cls = append(cls, &client{r: bufio.NewReaderSize(s, 4096), c: &recorder{}})
	}
	cpu0 := cpuTime(b)
	b.ResetTimer()
	for i, cl := range cls {
		g.wg.Add(1)
		go g.read(cl, i%histShards)
	}
	g.wg.Wait()
	b.StopTimer()
	if p := g.progress(); p.Recv[0] != int64(lines) {
		b.Fatalf("read %d messages, want %d", p.Recv[0], lines)
	}
	b.ReportMetric(float64((cpuTime(b)-cpu0).Nanoseconds())/float64(lines), "cpu-ns/line")
}

// slowMessage is how read found a fan-out message before tailMessage,
// and still does when tailMessage says no: parseMessage of what follows
// the first tag.
func slowMessage(line []byte) (phase int, ts int64, ok bool) {
	i := bytes.Index(line, []byte(tagMessage))
	if i < 0 {
		return 0, 0, false
	}
	return parseMessage(line[i+len(tagMessage):])
}

const stamp = "1700000000123456789" // a unixnano, 19 digits

func TestTailMessage(t *testing.T) {
	for _, c := range []struct {
		name, line string
		phase      int
		ts         int64
		ok         bool
		slowOK     bool // the slow path finds a message (tailMessage may leave it to it)
	}{
		{"fastws", "uid 17: FO|0|42|" + stamp, 0, 1700000000123456789, true, true},
		{"baseline", "FO|1|0|" + stamp, 1, 1700000000123456789, true, true},
		{"room", "[#r7] uid 9: FO|1|123456|" + stamp, 1, 1700000000123456789, true, true},
		{"an F before the tag", "uid 17 (F): FFO|0|1|" + stamp, 0, 1700000000123456789, true, true},
		{"empty seq", "FO|0||" + stamp, 0, 1700000000123456789, true, true},
		{"empty", "", 0, 0, false, false},
		{"tag alone", "FO|", 0, 0, false, false},
		{"fields alone", "0|1|" + stamp, 0, 0, false, false},
		{"no tag", "* uid 3 joined", 0, 0, false, false},
		{"marker", "uid 0: MK|3", 0, 0, false, false},
		{"tag in the middle", "uid 1: FO|0|1|" + stamp + " and more", 0, 0, false, false},
		{"CR left on", "FO|0|1|" + stamp + "\r", 0, 0, false, false},
		{"an earlier tag starts no message", "uid 1: FO|x FO|0|1|" + stamp, 0, 0, false, false},
		{"an earlier tag", "FO|FO|0|1|" + stamp, 0, 0, false, false},
		{"no such phase", "FO|2|1|" + stamp, 0, 0, false, false},
		{"two fields", "FO|0|" + stamp, 0, 0, false, false},
		{"four fields", "FO|0|0|1|" + stamp, 0, 0, false, false},
		{"past int64", "FO|0|1|9223372036854775808", 0, 0, false, true}, // wraps on the slow path, as before
		{"at int64's end", "FO|0|1|9223372036854775807", 0, 9223372036854775807, true, true},
		{"20 digits", "FO|0|1|1" + stamp, 0, 0, false, true},
		// Shapes the slow path takes alone.
		{"short unixnano", "FO|0|1|5", 0, 0, false, true},
		{"phase 00", "FO|00|1|" + stamp, 0, 0, false, true},
		{"empty phase", "FO||1|" + stamp, 0, 0, false, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			phase, ts, ok := tailMessage([]byte(c.line))
			if ok != c.ok || ok && (phase != c.phase || ts != c.ts) {
				t.Errorf("tailMessage(%q) = %d, %d, %v; want %d, %d, %v", c.line, phase, ts, ok, c.phase, c.ts, c.ok)
			}
			if _, _, slowOK := slowMessage([]byte(c.line)); slowOK != c.slowOK {
				t.Errorf("slowMessage(%q) ok = %v, want %v", c.line, slowOK, c.slowOK)
			}
		})
	}
	// A byte that is no digit, in each place of the unixnano.
	for i := range len(stamp) {
		for _, bad := range []byte{'/', ':', 'a', 0, 0xb0} {
			b := []byte("FO|0|1|" + stamp)
			b[len("FO|0|1|")+i] = bad
			if _, _, ok := tailMessage(b); ok {
				t.Errorf("tailMessage(%q) ok", b)
			}
		}
	}
}

// FuzzTailMessage checks that the fast path finds what the slow one
// would, whenever it finds anything.
func FuzzTailMessage(f *testing.F) {
	for _, s := range []string{"", "FO|", "uid 17: FO|0|42|" + stamp, "FO|1||" + stamp, "FO|x FO|0|1|" + stamp, "FO|0|1|9999999999999999999", "uid 0: MK|3"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		phase, ts, ok := tailMessage(line)
		if !ok {
			return
		}
		if p, s, sok := slowMessage(line); !sok || p != phase || s != ts {
			t.Errorf("tailMessage(%q) = %d, %d; the slow path: %d, %d, %v", line, phase, ts, p, s, sok)
		}
	})
}

func TestEightDigits(t *testing.T) {
	for _, c := range []struct {
		in   string
		want uint64
		ok   bool
	}{
		{"00000000", 0, true},
		{"12345678", 12345678, true},
		{"99999999", 99999999, true},
		{"1234567/", 0, false}, // '0'-1
		{":2345678", 0, false}, // '9'+1
		{"1234 678", 0, false},
		{"123456\xb8" + "8", 0, false}, // '8' with the high bit set
	} {
		got, ok := eightDigits([]byte(c.in))
		if got != c.want || ok != c.ok {
			t.Errorf("eightDigits(%q) = %d, %v; want %d, %v", c.in, got, ok, c.want, c.ok)
		}
	}
}

// chunked reads at most n bytes at a time from r: a socket whose reads
// end anywhere, in a line or a frame header.
type chunked struct {
	r io.Reader
	n int
}

func (c chunked) Read(p []byte) (int, error) { return c.r.Read(p[:min(len(p), c.n)]) }

// TestReadCounts checks what read makes of every kind of line, as
// telnet lines and as websocket frames (with a ping to answer and a
// close frame at the end), delivered in reads of every size.
func TestReadCounts(t *testing.T) {
	old := strconv.FormatInt(time.Now().Add(-time.Hour).UnixNano(), 10)
	lines := []string{
		"Welcome to fastws! You are uid 7.",
		"* uid 3 joined",
		"* you are now in #r1 (2 members)", // joined
		"! too many rooms",                 // refused: an error
		"uid 0: MK|2",                      // markers 1 and 2
		"uid 5: FO|0|1|" + old,
		"uid 5: FO|0|2|" + old,
		"uid 5: FO|1|3|" + old,
		"FO|00|4|" + old,                 // phase 0, the slow way
		"uid 5: FO|x FO|0|5|" + old,      // a tag that starts no message
		"uid 5: FO|0|6|" + old + " more", // nor does this one
		"uid 5: FO|x uid 0: MK|3",        // nor is it a marker
		"",
	}
	for _, ws := range []bool{false, true} {
		var in bytes.Buffer
		for i, l := range lines {
			if !ws {
				in.WriteString(l + "\r\n")
				continue
			}
			if i == 3 {
				in.Write([]byte{0x89, 2, 'h', 'i'}) // ping
			}
			in.Write([]byte{0x81, byte(len(l))})
			in.WriteString(l)
		}
		if ws {
			in.Write([]byte{0x88, 0})
		}
		for n := 1; n <= in.Len(); n++ {
			g := newLocalGroup(groupSpec{RoomSize: 2})
			out := &recorder{}
			cl := &client{ws: ws, r: bufio.NewReaderSize(chunked{bytes.NewReader(in.Bytes()), n}, 4096), c: out}
			g.wg.Add(1)
			g.read(cl, 0)
			p := g.progress()
			end := "EOF"
			if ws {
				end = errServerClosed.Error()
			}
			if p.Messages != int64(len(lines)) || p.Joined != 1 || p.Errors != 2 || !strings.Contains(p.LastError, end) ||
				p.Marks[1] != 1 || p.Marks[2] != 1 || p.Marks[3] != 0 || p.Recv[0] != 3 || p.Recv[1] != 1 {
				t.Fatalf("ws %v, reads of %d bytes: %+v", ws, n, p)
			}
			r, _ := g.report()
			if r.Hist[0].N != 3 || r.Hist[1].N != 1 || r.Hist[0].Max < time.Hour {
				t.Fatalf("ws %v, reads of %d bytes: %d and %d timed, max %v; want 3 and 1, max at least 1h", ws, n, r.Hist[0].N, r.Hist[1].N, r.Hist[0].Max)
			}
			if ws && (out.out.Len() != 2+4+2 || out.out.Bytes()[0] != 0x8a) {
				t.Fatalf("ws, reads of %d bytes: ping answered with % x, want a masked pong of 2 bytes", n, out.out.Bytes())
			}
		}
	}
}
