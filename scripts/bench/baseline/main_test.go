package main

import (
	"bufio"
	"context"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/panjf2000/gnet/v2"
)

// booting is a server that hands its engine to the test once it runs.
type booting struct {
	*server
	boot chan gnet.Engine
}

func (b booting) OnBoot(eng gnet.Engine) gnet.Action {
	act := b.server.OnBoot(eng)
	b.boot <- eng
	return act
}

// start runs a baseline in mode on two event loops and returns its
// address; the test stops it.
func start(t *testing.T, mode string) (*server, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	s := &server{mode: mode, byLoop: map[gnet.EventLoop]*loopConns{}}
	b := booting{s, make(chan gnet.Engine, 1)}
	done := make(chan error, 1)
	go func() {
		done <- gnet.Run(b, "tcp://"+addr, gnet.WithMulticore(true), gnet.WithNumEventLoop(2), gnet.WithReuseAddr(true))
	}()
	var eng gnet.Engine
	select {
	case eng = <-b.boot:
	case err := <-done:
		t.Fatalf("gnet.Run: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("the baseline did not boot within 10s")
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = eng.Stop(ctx)
		<-done
	})
	return s, addr
}

// conns counts the server's connections over its loops.
func (s *server) count() (loops, n int) {
	for _, l := range s.loopList() {
		l.mu.RLock()
		if len(l.conns) > 0 {
			loops++
		}
		n += len(l.conns)
		l.mu.RUnlock()
	}
	return loops, n
}

// TestBroadcastModes checks that batch and naive mode deliver every
// complete line to every connection on both event loops, each sender's
// lines in order, whole: a line split over two reads, several lines in
// one read, and a partial line left at the end of a read.
func TestBroadcastModes(t *testing.T) {
	for _, mode := range []string{modeBatch, modeNaive} {
		t.Run(mode, func(t *testing.T) {
			s, addr := start(t, mode)
			const n = 6
			cs := make([]net.Conn, n)
			rs := make([]*bufio.Reader, n)
			for i := range cs {
				c, err := net.Dial("tcp", addr)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { c.Close() })
				_ = c.SetDeadline(time.Now().Add(20 * time.Second))
				cs[i], rs[i] = c, bufio.NewReader(c)
			}
			deadline := time.Now().Add(10 * time.Second)
			for {
				loops, got := s.count()
				if got == n && loops == 2 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("%d connections on %d loops, want %d on 2", got, loops, n)
				}
				time.Sleep(time.Millisecond)
			}
			// Sender 0: three lines and half a line in one write, the rest
			// of it later; sender 3: one line.
			send := func(c net.Conn, p string) {
				if _, err := c.Write([]byte(p)); err != nil {
					t.Fatal(err)
				}
			}
			send(cs[0], "a0\na1\na2\na3-")
			send(cs[3], "b0\n")
			// The split line: "a3-" stays unread until its end comes.
			time.Sleep(20 * time.Millisecond) // not synchronisation: only makes a second read likely
			send(cs[0], "end\na4\n")
			want := map[byte][]string{'a': {"a0", "a1", "a2", "a3-end", "a4"}, 'b': {"b0"}}
			for i, r := range rs {
				got := map[byte][]string{}
				for k := 0; k < 6; k++ {
					line, err := r.ReadString('\n')
					if err != nil {
						t.Fatalf("connection %d, line %d: %v (so far %q)", i, k, err, got)
					}
					line = strings.TrimSuffix(line, "\n")
					got[line[0]] = append(got[line[0]], line)
				}
				for who, lines := range want {
					if strings.Join(got[who], ",") != strings.Join(lines, ",") {
						t.Errorf("connection %d got %q from sender %c, want %q", i, got[who], who, lines)
					}
				}
			}
		})
	}
}

// TestBatchSurvivesClosingReceivers checks that a batch broadcast skips
// none of the connections left when others on the loop are gone, and
// that the server keeps serving.
func TestBatchSurvivesClosingReceivers(t *testing.T) {
	s, addr := start(t, modeBatch)
	const n = 8
	var cs []net.Conn
	for range n {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		_ = c.SetDeadline(time.Now().Add(20 * time.Second))
		cs = append(cs, c)
	}
	waitCount := func(want int) {
		deadline := time.Now().Add(10 * time.Second)
		for _, got := s.count(); got != want; _, got = s.count() {
			if time.Now().After(deadline) {
				t.Fatalf("%d connections, want %d", got, want)
			}
			time.Sleep(time.Millisecond)
		}
	}
	waitCount(n)
	// Reset connections (SO_LINGER 0): the server's writes to them fail.
	for _, c := range cs[n/2:] {
		_ = c.(*net.TCPConn).SetLinger(0)
		c.Close()
	}
	for k := range 50 {
		if _, err := cs[0].Write([]byte("m" + strconv.Itoa(k) + "\n")); err != nil {
			t.Fatal(err)
		}
	}
	for i, c := range cs[:n/2] {
		r := bufio.NewReader(c)
		for k := range 50 {
			line, err := r.ReadString('\n')
			if want := "m" + strconv.Itoa(k) + "\n"; err != nil || line != want {
				t.Fatalf("connection %d, line %d: %q, %v; want %q", i, k, line, err, want)
			}
		}
	}
	waitCount(n / 2)
}
