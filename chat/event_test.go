package chat

import (
	"fmt"
	"os"
	"os/exec"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestEncoded(t *testing.T) {
	ev := &Event{Kind: KindMessage, UID: 7, Text: "hello"}
	var calls [MaxFormats]atomic.Int32
	encoder := func(f int) func(*Event) []byte {
		return func(ev *Event) []byte {
			calls[f].Add(1)
			return []byte(strconv.Itoa(f) + ":" + ev.Line())
		}
	}
	for f := range MaxFormats {
		first := ev.Encoded(f, encoder(f))
		again := ev.Encoded(f, encoder(f))
		want := strconv.Itoa(f) + ":uid 7: hello"
		if string(first) != want || string(again) != want {
			t.Errorf("format %d: got %q then %q, want %q", f, first, again, want)
		}
		if &first[0] != &again[0] {
			t.Errorf("format %d: second call returned a new slice, want the cached one", f)
		}
		if got := calls[f].Load(); got != 1 {
			t.Errorf("format %d: encoder calls got %d, want 1", f, got)
		}
	}
}

func TestEncodedConcurrent(t *testing.T) {
	const goroutines = 64
	ev := &Event{Kind: KindMessage, UID: 7, Text: "hello"}
	var calls atomic.Int32
	enc := func(ev *Event) []byte {
		calls.Add(1)
		return []byte(ev.Line())
	}
	results := make([][]byte, goroutines)
	var start, wg sync.WaitGroup
	start.Add(1)
	for i := range goroutines {
		wg.Go(func() {
			start.Wait()
			results[i] = ev.Encoded(1, enc)
		})
	}
	start.Done()
	wg.Wait()

	if got := calls.Load(); got < 1 || got > goroutines {
		t.Errorf("encoder calls: got %d, want 1 to %d", got, goroutines)
	}
	for i, b := range results {
		if string(b) != "uid 7: hello" {
			t.Errorf("goroutine %d: got %q, want %q", i, b, "uid 7: hello")
		}
		if &b[0] != &results[0][0] {
			t.Errorf("goroutine %d: got its own slice, want the one shared by every caller", i)
		}
	}
	before := calls.Load()
	for range 10 {
		ev.Encoded(1, enc)
	}
	if got := calls.Load(); got != before {
		t.Errorf("encoder calls once cached: got %d, want %d", got, before)
	}
}

func TestKindString(t *testing.T) {
	tests := []struct {
		k    Kind
		want string
	}{
		{KindWelcome, "welcome"},
		{KindJoin, "join"},
		{KindLeave, "leave"},
		{KindMessage, "message"},
		{KindNick, "nick"},
		{KindWho, "who"},
		{KindInfo, "info"},
		{KindError, "error"},
		{KindShutdown, "shutdown"},
		{numKinds, "unknown"},
		{Kind(255), "unknown"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			if got := tt.k.String(); got != tt.want {
				t.Errorf("Kind(%d).String(): got %q, want %q", tt.k, got, tt.want)
			}
		})
	}
}

func TestEventLines(t *testing.T) {
	tests := []struct {
		name string
		ev   *Event
		want []string
	}{
		{"welcome", &Event{Kind: KindWelcome, UID: 7}, []string{"Welcome to fastws! You are uid 7. Type to talk to everyone, $uid:text to talk to one user, /help for commands."}},
		{"join", &Event{Kind: KindJoin, UID: 7}, []string{"* uid 7 joined"}},
		{"leave with a nick", &Event{Kind: KindLeave, UID: 7, Nick: "alice"}, []string{"* alice(7) left"}},
		{"message", &Event{Kind: KindMessage, UID: 7, Text: "hello"}, []string{"uid 7: hello"}},
		{"private", &Event{Kind: KindMessage, UID: 7, To: 3, Private: true, Text: "hi"}, []string{"uid 7 (private): hi"}},
		{"private echo", &Event{Kind: KindMessage, UID: 7, To: 3, ToNick: "bob", Private: true, Echo: true, Text: "hi"}, []string{"(to bob(3)): hi"}},
		{"first nick", &Event{Kind: KindNick, UID: 7, Nick: "alice"}, []string{"* uid 7 is now alice"}},
		{"new nick", &Event{Kind: KindNick, UID: 7, OldNick: "alice", Nick: "bob"}, []string{"* alice(7) is now bob"}},
		{"error", &Event{Kind: KindError, Text: "uid 3 is not online"}, []string{"! uid 3 is not online"}},
		{"shutdown", &Event{Kind: KindShutdown}, []string{"* server is shutting down"}},
		{"who, empty", &Event{Kind: KindWho}, []string{"* 0 online"}},
		{"who", &Event{Kind: KindWho, Online: 2, Members: []MemberInfo{{1, "", "telnet", ""}, {2, "bob", "websocket", ""}}},
			[]string{"* uid 1 (telnet)", "* uid 2 bob (websocket)", "* 2 online"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.ev.Lines(); !slices.Equal(got, tt.want) {
				t.Errorf("Lines(): got %q, want %q", got, tt.want)
			}
			if got, want := tt.ev.Line(), strings.Join(tt.want, "\n"); got != want {
				t.Errorf("Line(): got %q, want %q", got, want)
			}
		})
	}
}

func TestAppendName(t *testing.T) {
	tests := []struct {
		name string
		uid  uint64
		nick string
		want string
	}{
		{"no nick", 7, "", "uid 7"},
		{"nick", 7, "alice", "alice(7)"},
		{"largest uid", 18446744073709551615, "", "uid 18446744073709551615"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := string(appendName(nil, tt.uid, tt.nick)); got != tt.want {
				t.Errorf("appendName(%d, %q): got %q, want %q", tt.uid, tt.nick, got, tt.want)
			}
		})
	}
}

// TestLineOfUnknownKind renders an event of a kind this build does not know
// (Kind.String allows for them; a broker may carry events from a newer
// daemon). It runs in a child process because the failure is unbounded
// recursion, a fatal stack overflow that would end the whole test binary.
func TestLineOfUnknownKind(t *testing.T) {
	if os.Getenv("CHAT_TEST_UNKNOWN_KIND") == "1" {
		debug.SetMaxStack(8 << 20)
		ev := &Event{Kind: numKinds, UID: 7}
		fmt.Printf("lines=%q line=%q\n", ev.Lines(), ev.Line())
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestLineOfUnknownKind$", "-test.count=1")
	cmd.Env = append(os.Environ(), "CHAT_TEST_UNKNOWN_KIND=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		first, _, _ := strings.Cut(string(out), "\n")
		t.Errorf("Lines()/Line() of Event{Kind: %d}: got a crash (%v: %s), want a line", numKinds, err, first)
	}
}

// TestReleaseRecyclesOnce: Release pools an event made for one session, at
// most once however often it is called, and never an event it did not
// make (a room-wide event shared by others).
func TestReleaseRecyclesOnce(t *testing.T) {
	for range 20 {
		shared := &Event{Kind: KindMessage, Text: "for everyone"}
		shared.Release()
		ev := privateMessage(1, "", 2, "", "hi", time.Time{}, false)
		ev.Release()
		ev.Release()
		back := 0
		for range 4 {
			switch pool.Get().(*Event) {
			case shared:
				t.Fatal("a shared event was recycled")
			case ev:
				back++
			}
		}
		if back > 1 {
			t.Fatalf("an event released twice came back from the pool %d times", back)
		}
	}
}
