package server

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
)

// TestGnetLoggerLevels: gnet's warnings stay warnings, except the stale
// event a burst of disconnects produces by the hundred, which is debug.
func TestGnetLoggerLevels(t *testing.T) {
	var buf bytes.Buffer
	l := gnetLogger{slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))}
	// gnet v2.10's own format strings (reactor_default.go, acceptor_unix.go).
	l.Warnf("received event[fd=%d|ev=%d|flags=%d] of a stale connection from event-loop(%d)", 42, 25, 0, 1)
	l.Warnf("failed to set TCP keepalive on fd=%d: %v", 42, "boom")
	l.Errorf("Accept() failed due to error: %v", "too many open files")
	l.Infof("launching gnet with %d event-loops", 2)
	want := []string{
		"level=DEBUG msg=\"received event[fd=42|ev=25|flags=0] of a stale connection from event-loop(1)\" component=gnet",
		"level=WARN msg=\"failed to set TCP keepalive on fd=42: boom\" component=gnet",
		"level=ERROR msg=\"Accept() failed due to error: too many open files\" component=gnet",
		"level=DEBUG msg=\"launching gnet with 2 event-loops\" component=gnet",
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != len(want) {
		t.Fatalf("got %d lines, want %d:\n%s", len(lines), len(want), buf.String())
	}
	for i, line := range lines {
		if _, rest, _ := strings.Cut(line, " "); rest != want[i] { // after time=...
			t.Errorf("line %d: got %q, want %q", i, rest, want[i])
		}
	}
}
