package chat

import (
	"slices"
	"strings"
	"testing"
	"time"
)

// TestByteRateLimit: bytes are limited beside lines, so that a few long
// lines within the line burst cannot flood every reader's send buffer.
func TestByteRateLimit(t *testing.T) {
	r := newPopulatedRoom(t, 2, JoinOptions{Rate: 100, Burst: 100, BytesRate: 100, BytesBurst: 300})
	sender, other := r.sessions[1], r.sessions[2]
	long := strings.Repeat("x", 100)

	// 401 bytes at once in a bucket of 300: the first two lines (201
	// bytes) pass; the others are refused though lines are left.
	r.send(t, 1, long+"1", long[1:]+"2", long[1:]+"3", long[1:]+"4")
	want := []string{"uid 1: " + long + "1"}
	if got := drainLines(t, other); len(got) != 2 || got[0] != want[0] {
		t.Errorf("other after 401 bytes at once: got %d lines (%.20q), want 2, the first %.20q", len(got), got, want[0])
	}
	if got := drainLines(t, sender); len(got) != 4 || got[3] != "! slow down" {
		t.Errorf("sender after 401 bytes at once: got %d lines, want 4, the last %q", len(got), "! slow down")
	}

	// One second refills 100 bytes: a short line passes, a long one not.
	r.clock.Advance(time.Second)
	r.send(t, 1, "short", long+long)
	if got, want := drainLines(t, other), []string{"uid 1: short"}; !slices.Equal(got, want) {
		t.Errorf("other after 1s: got %.40q, want %q", got, want)
	}

	// A line longer than the whole byte burst passes on a full bucket.
	r.clock.Advance(time.Minute)
	huge := strings.Repeat("y", 1000)
	r.send(t, 1, huge, "z")
	if got, want := drainLines(t, other), []string{"uid 1: " + huge}; !slices.Equal(got, want) {
		t.Errorf("other after a line over the burst: got %d lines, want the one line", len(got))
	}

	// The structured form (the JSON subprotocol) is charged its text.
	r.clock.Advance(time.Minute)
	r.drainAll()
	for range 4 {
		r.hub.Say(r.members[1], 0, long)
	}
	if got := len(drainLines(t, other)); got != 3 {
		t.Errorf("other after four Say of 100 bytes: got %d lines, want 3", got)
	}
	if got := sender.Closes(); got != nil {
		t.Errorf("sender closes: got %v, want none", got)
	}
}
