package server

import (
	"context"
	"github.com/fastws/fastws/chat"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/fastws/fastws/server/config"
)

// TestReloadDuringStart checks that a Reload sent while Start is still
// opening instances waits for it, and then finds every instance unchanged,
// rather than opening them all a second time.
func TestReloadDuringStart(t *testing.T) {
	s := New(discardLogger(), chat.Options{})
	cfg := &config.Config{StopTimeout: 5 * time.Second, Defaults: config.DefaultLimits(),
		Instances: []config.Instance{telnetInstance("a", 1), telnetInstance("b", 1)}}
	type result struct {
		res ReloadResult
		err error
	}
	reloaded := make(chan result, 1)
	var once sync.Once
	testHookStartOpened = func() {
		once.Do(func() {
			go func() {
				res, err := s.Reload(cfg)
				reloaded <- result{res, err}
			}()
			// Start pauses after its first instance: an unserialised
			// Reload runs to its end in this window; a serialised one waits
			// for Start, and the window only costs its length.
			select {
			case r := <-reloaded:
				reloaded <- r
			case <-time.After(time.Second):
			}
		})
	}
	t.Cleanup(func() { testHookStartOpened = nil })
	if err := s.Start(cfg); err != nil {
		t.Fatalf("start: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		defer cancel()
		_ = s.Stop(ctx)
	})

	var r result
	select {
	case r = <-reloaded:
	case <-time.After(testTimeout):
		t.Fatalf("reload did not return within %s", testTimeout)
	}
	if r.err != nil || len(r.res.Started)+len(r.res.Stopped)+len(r.res.Restarted) != 0 || !slices.Equal(r.res.Unchanged, []string{"a", "b"}) {
		t.Errorf("reload: got %+v, %v; want a and b unchanged, nothing else", r.res, r.err)
	}
	if got := len(s.Stats().Instances); got != 2 {
		t.Errorf("got %d instances running, want 2", got)
	}
}
