package server

import (
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/fastws/fastws/chat"
	"github.com/fastws/fastws/server/config"
)

// TestReloadKeepsTheSocketOfAnUnchangedAddress restarts an instance whose
// settings changed but whose address did not, while a client dials it
// over and over: the new instance accepts on the same socket, so the
// port stays (port 0 would otherwise get a new one) and no dial is
// refused.
func TestReloadKeepsTheSocketOfAnUnchangedAddress(t *testing.T) {
	s := startServer(t, telnetInstance("a", 1))
	addr := s.Addrs()["a"]

	stop := make(chan struct{})
	var wg sync.WaitGroup
	var refused, dials int
	wg.Go(func() {
		for dials < 100000 {
			select {
			case <-stop:
				return
			default:
			}
			dials++
			c, err := net.DialTimeout("tcp", addr, testTimeout)
			if err != nil {
				if errors.Is(err, syscall.ECONNREFUSED) {
					refused++
				}
				continue
			}
			c.Close()
		}
	})
	changed := telnetInstance("a", 2)
	res, err := s.Reload(&config.Config{StopTimeout: testTimeout, Instances: []config.Instance{changed}})
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatalf("reload: %v", err)
	}
	if !slices.Equal(res.Restarted, []string{"a"}) {
		t.Errorf("got %+v, want a restarted", res)
	}
	if got := s.Addrs()["a"]; got != addr {
		t.Errorf("after the reload a listens on %s, want %s as before", got, addr)
	}
	if refused > 0 {
		t.Errorf("%d of %d dials were refused during the reload, want none", refused, dials)
	}
	dial(t, addr).sync()
	if in := s.Stats().Instances[0]; in.Reactors != 2 || !in.Listening || in.Error != "" {
		t.Errorf("got %+v, want 2 reactors, listening, no error", in)
	}
}

// TestReloadFailureIsKept: a changed instance whose new address is taken
// keeps serving on its old one, an added instance whose address is taken
// is down, and both say why in their stats until a reload starts them.
func TestReloadFailureIsKept(t *testing.T) {
	var taken [2]net.Listener
	var ports [2]int
	for k := range taken {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		taken[k], ports[k] = ln, ln.Addr().(*net.TCPAddr).Port
	}
	s := startServer(t, telnetInstance("a", 1))
	old := s.Addrs()["a"]
	stay := dial(t, old)

	a, b := telnetInstance("a", 1), telnetInstance("b", 1)
	a.Port, b.Port = ports[0], ports[1]
	cfg := &config.Config{StopTimeout: testTimeout, Instances: []config.Instance{a, b}}
	res, err := s.Reload(cfg)
	if err == nil {
		t.Fatal("reload onto taken ports succeeded")
	}
	for _, want := range []string{
		fmt.Sprintf("instance a: listen 127.0.0.1:%d: bind: address already in use; it keeps serving %s with its previous settings", ports[0], old),
		fmt.Sprintf("instance b: listen 127.0.0.1:%d: bind: address already in use", ports[1]),
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if strings.Count(err.Error(), "127.0.0.1:") != 3 {
		t.Errorf("error %q names an address more than once", err)
	}
	if !slices.Equal(res.Failed, []string{"a", "b"}) || len(res.Restarted)+len(res.Started) != 0 {
		t.Errorf("got %+v, want a and b failed, nothing started", res)
	}
	st := s.Stats().Instances
	if len(st) != 2 {
		t.Fatalf("got %d instances in stats, want 2", len(st))
	}
	if in := st[0]; !in.Listening || in.Listen != old || !strings.Contains(in.Error, "keeps serving") {
		t.Errorf("a: got listening %v on %s, error %q; want listening on %s with the error", in.Listening, in.Listen, in.Error, old)
	}
	if in := st[1]; in.Listening || in.Listen != b.Addr() || !strings.Contains(in.Error, "address already in use") || len(in.ClosedByReason) != chat.NumReasons {
		t.Errorf("b: got %+v; want down on %s with the error and every close reason", in, b.Addr())
	}
	stay.sync() // a's client stays

	for _, ln := range taken {
		ln.Close()
	}
	deadline := time.Now().Add(testTimeout)
	for {
		res, err = s.Reload(cfg)
		if err == nil || time.Now().After(deadline) {
			break
		}
	}
	if err != nil {
		t.Fatalf("reload once the ports are free: %v", err)
	}
	if !slices.Equal(res.Restarted, []string{"a"}) || !slices.Equal(res.Started, []string{"b"}) {
		t.Errorf("got %+v, want a restarted and b started", res)
	}
	for k, in := range s.Stats().Instances {
		if !in.Listening || in.Error != "" || in.Listen != fmt.Sprintf("127.0.0.1:%d", ports[k]) {
			t.Errorf("%s: got listening %v on %s, error %q; want listening on port %d, no error", in.Name, in.Listening, in.Listen, in.Error, ports[k])
		}
	}
}
