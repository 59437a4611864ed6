package main

import (
	"bufio"
	"bytes"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestBuckets(t *testing.T) {
	prev := -1
	for _, us := range []int64{0, 1, 63, 64, 65, 127, 128, 1000, 12345, 1e6, 3.6e9} {
		d := time.Duration(us) * time.Microsecond
		i := bucketOf(d)
		if i < prev {
			t.Errorf("bucketOf(%v) = %d, below the bucket of a smaller value (%d)", d, i, prev)
		}
		prev = i
		if lo, hi := bucketValue(i), bucketValue(i+1); d < lo || (d >= hi && i < histBuckets-1) {
			t.Errorf("bucketOf(%v) = %d, which holds [%v, %v)", d, i, lo, hi)
		}
	}
}

func TestQuantile(t *testing.T) {
	var h hist
	for i := 1; i <= 1000; i++ {
		h.add(time.Duration(i) * time.Millisecond)
	}
	s := h.snap()
	for _, c := range []struct {
		q    float64
		want time.Duration
	}{{0.5, 500 * time.Millisecond}, {0.99, 990 * time.Millisecond}, {1, time.Second}} {
		got := s.quantile(c.q)
		if got < c.want || float64(got) > float64(c.want)*1.04 {
			t.Errorf("quantile(%v) = %v, want %v to 4%% above", c.q, got, c.want)
		}
	}
	if s.Max != time.Second {
		t.Errorf("max = %v, want 1s", s.Max)
	}
}

func TestParseMessage(t *testing.T) {
	for _, c := range []struct {
		in    string
		phase int
		ts    int64
		ok    bool
	}{
		{"1|42|1700000000000000000", 1, 1700000000000000000, true},
		{"0|0|5", 0, 5, true},
		{"2|0|5", 0, 0, false}, // no such phase
		{"0|5", 0, 0, false},
		{"0|1|2|3", 0, 0, false},
		{"0|x|5", 0, 0, false},
	} {
		phase, ts, ok := parseMessage([]byte(c.in))
		if ok != c.ok || ok && (phase != c.phase || ts != c.ts) {
			t.Errorf("parseMessage(%q) = %d, %d, %v; want %d, %d, %v", c.in, phase, ts, ok, c.phase, c.ts, c.ok)
		}
	}
}

func TestCountMarker(t *testing.T) {
	var marks [maxMarkers]atomic.Int64
	seen := countMarker([]byte("2"), 0, &marks) // 1 was missed: counted too
	seen = countMarker([]byte("2"), seen, &marks)
	seen = countMarker([]byte("1"), seen, &marks)
	if seen != 2 || marks[1].Load() != 1 || marks[2].Load() != 1 {
		t.Errorf("seen %d, marks 1 and 2 = %d, %d; want 2, 1, 1", seen, marks[1].Load(), marks[2].Load())
	}
}

// TestFrames checks that a masked client frame unmasks to what was sent,
// and that next reads server frames of every length encoding and answers
// a ping.
func TestFrames(t *testing.T) {
	for _, n := range []int{0, 5, 125, 126, 300, 70000} {
		p := bytes.Repeat([]byte{'a'}, n)
		cl := &client{ws: true}
		b := cl.frame(nil, 0x81, p)
		hl := map[bool]int{true: 2, false: 4}[n < 126]
		if n > 0xffff {
			hl = 10
		}
		if b[0] != 0x81 || b[1]&0x80 == 0 || len(b) != hl+4+n {
			t.Fatalf("frame of %d bytes: header % x, length %d", n, b[:2], len(b))
		}
		key := b[hl : hl+4]
		for i, c := range b[hl+4:] {
			if c^key[i&3] != 'a' {
				t.Fatalf("frame of %d bytes: byte %d unmasks to %q", n, i, c^key[i&3])
			}
		}
	}
	var in bytes.Buffer
	in.Write([]byte{0x89, 2, 'h', 'i'}) // ping
	in.Write([]byte{0x81, 126, 0, 200})
	in.WriteString(strings.Repeat("x", 200))
	in.Write([]byte{0x88, 0})
	out := &recorder{}
	cl := &client{ws: true, r: bufio.NewReader(&in), c: out}
	msg, err := cl.next()
	if err != nil || len(msg) != 200 {
		t.Fatalf("next = %d bytes, %v; want 200 bytes", len(msg), err)
	}
	if got := out.out.Bytes(); len(got) != 2+4+2 || got[0] != 0x8a {
		t.Errorf("ping answered with % x, want a masked pong of 2 bytes", got)
	}
	if _, err := cl.next(); err != errServerClosed {
		t.Errorf("after a close frame: %v, want errServerClosed", err)
	}
}

func TestNum(t *testing.T) {
	for v, want := range map[float64]string{0: "0", 1234567: "1,234,567", 123.4: "123", 12.34: "12.3", 1.234: "1.23", 0.0123: "0.012"} {
		if got := num(&v); got != want {
			t.Errorf("num(%v) = %q, want %q", v, got, want)
		}
	}
}

// recorder is a net.Conn that keeps what is written to it.
type recorder struct {
	net.Conn
	out bytes.Buffer
}

func (r *recorder) Write(p []byte) (int, error) { return r.out.Write(p) }

// TestRatioShowsTheVerdict checks that a ratio prints with a third decimal
// only where two would print its target's bound.
func TestRatioShowsTheVerdict(t *testing.T) {
	f := func(v float64) *float64 { return &v }
	for k, c := range []struct {
		row  Row
		want string
	}{
		{Row{}, "-"},
		{Row{Ratio: f(1.2527)}, "1.25"},               // no target
		{Row{Ratio: f(1.2527), bound: 1.25}, "1.253"}, // fails ≤1.25×
		{Row{Ratio: f(1.2496), bound: 1.25}, "1.250"}, // passes it
		{Row{Ratio: f(1.25), bound: 1.25}, "1.25"},
		{Row{Ratio: f(1.2349), bound: 1.25}, "1.23"},
		{Row{Ratio: f(22.153), bound: 1}, "22.15"},
	} {
		if got := ratio(c.row); got != c.want {
			t.Errorf("case %d: ratio = %q, want %q", k, got, c.want)
		}
	}
}
