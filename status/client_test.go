package status

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"
)

func TestNoDaemon(t *testing.T) {
	stale := socketPath(t)
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: stale, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	ln.SetUnlinkOnClose(false)
	ln.Close()

	tests := []struct {
		name string
		path string
	}{
		{"missing socket", socketPath(t)},
		{"stale socket", stale},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			calls := map[string]func() error{
				"Query":            func() error { _, err := Query(testCtx(t), tt.path); return err },
				"QueryConnections": func() error { _, err := QueryConnections(testCtx(t), tt.path); return err },
				"Reload":           func() error { return Reload(testCtx(t), tt.path) },
				"Stop":             func() error { return Stop(testCtx(t), tt.path, time.Second) },
			}
			for name, call := range calls {
				err := call()
				if !errors.Is(err, ErrNoDaemon) {
					t.Errorf("%s: got %v, want an error wrapping ErrNoDaemon", name, err)
					continue
				}
				if !strings.Contains(err.Error(), tt.path) {
					t.Errorf("%s: got %q, want it to name %s", name, err, tt.path)
				}
			}
		})
	}
}

// fakeDaemon accepts on a fresh socket and answers every connection with
// serve, for replies a real Server never sends.
func fakeDaemon(t *testing.T, serve func(c net.Conn)) string {
	t.Helper()
	path := socketPath(t)
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	t.Cleanup(func() { ln.Close(); <-done })
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			readLine(c, maxRequest)
			serve(c)
			c.Close()
		}
	}()
	return path
}

func TestClientErrors(t *testing.T) {
	tests := []struct {
		name  string
		serve func(c net.Conn)
		want  string
	}{
		{"hang-up", func(net.Conn) {}, "hung up without replying"},
		{"not JSON", func(c net.Conn) { c.Write([]byte("HTTP/1.0 400 Bad Request\r\n\r\n")) }, "bad reply"},
		{"refusal without text", func(c net.Conn) { c.Write([]byte(`{"ok":false}` + "\n")) }, "refused the request without saying why"},
		{"status without snapshot", func(c net.Conn) { c.Write([]byte(`{"ok":true}` + "\n")) }, "the reply has no status"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := fakeDaemon(t, tt.serve)
			_, err := Query(testCtx(t), path)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

func TestClientContext(t *testing.T) {
	h := &fakeHandler{entered: make(chan struct{}, 2), block: make(chan struct{})}
	_, path := startServer(t, h, nil)
	t.Cleanup(func() { close(h.block) }) // runs before the server's Close

	t.Run("deadline", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(testCtx(t), 50*time.Millisecond)
		defer cancel()
		_, err := QueryConnections(ctx, path)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("got %v, want an error wrapping context.DeadlineExceeded", err)
		}
		receive(t, h.entered, "the listing to begin")
	})
	t.Run("cancel", func(t *testing.T) {
		ctx, cancel := context.WithCancel(testCtx(t))
		go func() {
			select {
			case <-h.entered:
			case <-ctx.Done():
			}
			cancel()
		}()
		err := Reload(ctx, path)
		if !errors.Is(err, context.Canceled) {
			t.Errorf("got %v, want an error wrapping context.Canceled", err)
		}
	})
}

func TestStopRejectsNegativeTimeout(t *testing.T) {
	h := &fakeHandler{}
	_, path := startServer(t, h, nil)
	if err := Stop(testCtx(t), path, -time.Second); err == nil {
		t.Error("Stop(-1s): got no error")
	}
	if len(h.stops) != 0 {
		t.Errorf("got stops %v, want none", h.stops)
	}
}
