package status

import (
	"bytes"
	"math"
	"testing"
	"time"
)

func renderSnapshot() Snapshot {
	return Snapshot{
		Daemon: Daemon{
			PID: 1234, Version: "0.1.0", GoVersion: "go1.26.8", Config: "/x/config.ini",
			Started:       time.Date(2026, 11, 21, 16, 0, 0, 0, time.FixedZone("CET", 3600)),
			UptimeSeconds: 3723.4, RSSBytes: 12897484, HeapBytes: 4299161, Goroutines: 23,
			Members: 3, OpenFiles: 57, MaxOpenFiles: 20000,
		},
		Instances: []Instance{
			{Name: "FastWS-Telnet", Protocol: "telnet", Listen: "0.0.0.0:19910", Reactors: 4,
				Connections: 2, ConnectionsTotal: 5, MessagesIn: 10, MessagesOut: 20, BytesIn: 1229, BytesOut: 3482, Listening: true},
			{Name: "FastWS-WebSocket", Protocol: "websocket", Listen: "[::]:19911", Reactors: 2,
				Connections: 1, ConnectionsTotal: 1, MessagesIn: 3, MessagesOut: 12, BytesIn: 96, BytesOut: 1860, Errors: 1, Listening: true,
				Error: "instance FastWS-WebSocket: listen [::]:19912: bind: address already in use; it keeps serving [::]:19911 with its previous settings"},
			{Name: "bad\tname\x1b[2J", Protocol: "telnet", Listen: "127.0.0.1:20000", Reactors: 1,
				Error: "instance bad: listen 127.0.0.1:20000: bind: address already in use\n\x1b[2J"},
		},
	}
}

func TestRenderStatus(t *testing.T) {
	var b bytes.Buffer
	RenderStatus(&b, renderSnapshot())
	want := `fastws 0.1.0 (go1.26.8)  pid 1234  config /x/config.ini
started 2026-11-21 15:00:00 UTC  uptime 1h2m3s
memory  RSS 12.3 MiB  Go heap 4.1 MiB  goroutines 23  open files 57/20000
room    3 members
INSTANCE            PROTOCOL   LISTEN           REACTORS  CONNS  TOTAL  MSG IN  MSG OUT  BYTES IN  BYTES OUT  ERRORS  STATE
FastWS-Telnet       telnet     0.0.0.0:19910    4         2      5      10      20       1.2 KiB   3.4 KiB    0       up
FastWS-WebSocket    websocket  [::]:19911       2         1      1      3       12       96 B      1.8 KiB    1       stale
"bad\tname\x1b[2J"  telnet     127.0.0.1:20000  1         0      0      0       0        0 B       0 B        0       down
FastWS-WebSocket stale: instance FastWS-WebSocket: listen [::]:19912: bind: address already in use; it keeps serving [::]:19911 with its previous settings
"bad\tname\x1b[2J" down: "instance bad: listen 127.0.0.1:20000: bind: address already in use\n\x1b[2J"
`
	if got := b.String(); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}

func TestRenderConnections(t *testing.T) {
	now := time.Date(2026, 11, 21, 16, 2, 3, 0, time.UTC)
	cs := []Connection{
		{UID: 7, Nick: "alice", User: "u123", Rooms: []string{"lobby", "games"}, Instance: "FastWS-Telnet", Reactor: 1, Remote: "203.0.113.5:51234",
			Since: time.Date(2026, 11, 21, 15, 58, 51, 0, time.UTC), MessagesIn: 4, MessagesOut: 9},
		{UID: 8, Rooms: []string{"lobby"}, Instance: "FastWS-WebSocket", Remote: "[2001:db8::1]:40022",
			Since: time.Date(2026, 11, 21, 17, 1, 30, 250e6, time.FixedZone("CET", 3600)), MessagesOut: 2, BytesQueued: 1536},
		{UID: 9, Nick: "小明", Instance: "FastWS-Telnet", Reactor: 3, Remote: "127.0.0.1:6000", BytesQueued: 3 << 20},
		{UID: 10, Nick: "\x1b]0;pwned\x07", User: "\x1b[2J", Instance: "FastWS-Telnet", Remote: "127.0.0.1:6001",
			Since: now.Add(5 * time.Second), BytesQueued: -1},
	}
	var b bytes.Buffer
	renderConnections(&b, cs, now)
	want := `UID  NICK              USER       INSTANCE          REACTOR  REMOTE               SINCE                            MSG IN  MSG OUT  QUEUED   ROOMS
7    alice             u123       FastWS-Telnet     1        203.0.113.5:51234    2026-11-21 15:58:51 UTC (3m12s)  4       9        0 B      lobby,games
8    -                 -          FastWS-WebSocket  0        [2001:db8::1]:40022  2026-11-21 16:01:30 UTC (33s)    0       2        1.5 KiB  lobby
9    小明              -          FastWS-Telnet     3        127.0.0.1:6000       -                                0       0        3.0 MiB  -
10   "\x1b]0;pwned\a"  "\x1b[2J"  FastWS-Telnet     0        127.0.0.1:6001       2026-11-21 16:02:08 UTC (0s)     0       0        0 B      -
`
	if got := b.String(); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}

func TestRenderStatusEdges(t *testing.T) {
	tests := []struct {
		name string
		snap Snapshot
		want string
	}{
		{"empty", Snapshot{}, `fastws - (-)  pid 0  config -
started -  uptime 0s
memory  RSS 0 B  Go heap 0 B  goroutines 0  open files 0
room    0 members
INSTANCE  PROTOCOL  LISTEN  REACTORS  CONNS  TOTAL  MSG IN  MSG OUT  BYTES IN  BYTES OUT  ERRORS  STATE
`},
		{"one member, no file limit", Snapshot{Daemon: Daemon{
			PID: 1, Version: "v", GoVersion: "go", Config: "c", Started: time.Unix(0, 0),
			UptimeSeconds: 1e300, Members: 1, OpenFiles: 5, MaxOpenFiles: math.MaxUint64,
		}}, `fastws v (go)  pid 1  config c
started 1970-01-01 00:00:00 UTC  uptime 2562047h47m16s
memory  RSS 0 B  Go heap 0 B  goroutines 0  open files 5/unlimited
room    1 member
INSTANCE  PROTOCOL  LISTEN  REACTORS  CONNS  TOTAL  MSG IN  MSG OUT  BYTES IN  BYTES OUT  ERRORS  STATE
`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b bytes.Buffer
			RenderStatus(&b, tt.snap)
			if got := b.String(); got != tt.want {
				t.Errorf("got\n%s\nwant\n%s", got, tt.want)
			}
		})
	}
}

func TestRenderConnectionsEmpty(t *testing.T) {
	var b bytes.Buffer
	RenderConnections(&b, nil)
	if got, want := b.String(), "UID  NICK  USER  INSTANCE  REACTOR  REMOTE  SINCE  MSG IN  MSG OUT  QUEUED  ROOMS\n"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestSize(t *testing.T) {
	tests := []struct {
		n    uint64
		want string
	}{
		{0, "0 B"},
		{1023, "1023 B"},
		{1024, "1.0 KiB"},
		{1229, "1.2 KiB"},
		{1<<20 - 1, "1.0 MiB"},
		{12897484, "12.3 MiB"},
		{5 << 30, "5.0 GiB"},
		{math.MaxUint64, "16.0 EiB"},
	}
	for _, tt := range tests {
		if got := size(tt.n); got != tt.want {
			t.Errorf("size(%d): got %q, want %q", tt.n, got, tt.want)
		}
	}
}

func TestSeconds(t *testing.T) {
	tests := []struct {
		s    float64
		want string
	}{
		{0, "0s"},
		{-5, "0s"},
		{math.NaN(), "0s"},
		{0.4, "0s"},
		{0.5, "1s"},
		{3723.4, "1h2m3s"},
		{90061, "25h1m1s"},
		{math.Inf(1), "2562047h47m16s"},
	}
	for _, tt := range tests {
		if got := seconds(tt.s); got != tt.want {
			t.Errorf("seconds(%v): got %q, want %q", tt.s, got, tt.want)
		}
	}
}

func TestText(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"empty", "", "-"},
		{"plain", "alice", "alice"},
		{"space", "a b", "a b"},
		{"chinese", "小明", "小明"},
		{"ideographic space", "小\u3000明", "小\u3000明"},
		{"escape sequence", "\x1b[31mred", `"\x1b[31mred"`},
		{"newline", "a\nb", `"a\nb"`},
		{"invalid utf-8", "a\xffb", `"a\xffb"`},
		{"replacement character", "a\ufffdb", "a\ufffdb"},
		{"quote alone", `a"b`, `a"b`},
		{"quote with control", "a\"\tb", `"a\"\tb"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := text(tt.in); got != tt.want {
				t.Errorf("text(%q): got %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestCellWidth(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want int
	}{
		{"ascii", "alice", 5},
		{"chinese", "小明", 4},
		{"mixed", "a小b", 4},
		{"hangul", "한글", 4},
		{"fullwidth", "ＡＢ", 4},
		{"emoji", "\U0001F600", 2},
		{"combining accent", "e\u0301", 1},
		{"zero-width joiner", "a\u200db", 2},
		{"accented latin", "é", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := cellWidth(tt.in); got != tt.want {
				t.Errorf("cellWidth(%q): got %d, want %d", tt.in, got, tt.want)
			}
		})
	}
}

func TestWriteJSON(t *testing.T) {
	var b bytes.Buffer
	if err := WriteJSON(&b, wireConnections([]Connection{{UID: 1, Nick: "<a&b>", Since: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}})); err != nil {
		t.Fatal(err)
	}
	want := `{
  "connections": [
    {
      "uid": 1,
      "nick": "<a&b>",
      "user": "",
      "rooms": [],
      "instance": "",
      "reactor": 0,
      "remote": "",
      "since": "2026-01-02T03:04:05Z",
      "messagesIn": 0,
      "messagesOut": 0,
      "bytesQueued": 0
    }
  ]
}
`
	if got := b.String(); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	if err := WriteJSON(&b, math.NaN()); err == nil {
		t.Error("WriteJSON(NaN): got no error")
	}
}
