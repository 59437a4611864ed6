package status

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// RenderStatus writes s for a terminal, after Workerman's status screen:
// the daemon block, then one row per instance, in columns aligned by
// terminal width (Chinese names included). Times are shown in
// UTC, sizes in KiB/MiB/GiB and durations to the second. Text that came from
// the config or from clients is escaped so it cannot move the cursor or
// break a row. Write errors are ignored: w is a terminal or a pipe.
func RenderStatus(w io.Writer, s Snapshot) {
	d := s.Daemon
	fmt.Fprintf(w, "fastws %s (%s)  pid %d  config %s\n", text(d.Version), text(d.GoVersion), d.PID, text(d.Config))
	fmt.Fprintf(w, "started %s  uptime %s\n", stamp(d.Started), seconds(d.UptimeSeconds))
	fmt.Fprintf(w, "memory  RSS %s  Go heap %s  goroutines %d  open files %s\n",
		size(d.RSSBytes), size(d.HeapBytes), d.Goroutines, openFiles(d.OpenFiles, d.MaxOpenFiles))
	members := "members"
	if d.Members == 1 {
		members = "member"
	}
	rooms := ""
	switch {
	case d.Rooms == 1:
		rooms = ", 1 room beside the lobby"
	case d.Rooms > 1:
		rooms = fmt.Sprintf(", %d rooms beside the lobby", d.Rooms)
	}
	fmt.Fprintf(w, "room    %d %s%s\n", d.Members, members, rooms)
	renderCluster(w, s.Cluster)

	var t table
	t.add("INSTANCE", "PROTOCOL", "LISTEN", "REACTORS", "CONNS", "TOTAL", "MSG IN", "MSG OUT", "BYTES IN", "BYTES OUT", "ERRORS", "STATE")
	for _, i := range s.Instances {
		t.add(text(i.Name), text(i.Protocol), text(i.Listen), itoa(i.Reactors), itoa(i.Connections), utoa(i.ConnectionsTotal),
			utoa(i.MessagesIn), utoa(i.MessagesOut), size(i.BytesIn), size(i.BytesOut), utoa(i.Errors), state(i))
	}
	t.write(w)
	for _, i := range s.Instances {
		if i.Error != "" {
			fmt.Fprintf(w, "%s %s: %s\n", text(i.Name), state(i), text(i.Error))
		}
	}
}

// state is an instance's STATE cell: up, down, or stale when it listens
// with its previous settings (see Instance.Error).
func state(i Instance) string {
	switch {
	case !i.Listening:
		return "down"
	case i.Error != "":
		return "stale"
	}
	return "up"
}

// RenderConnections writes one row per connection, in the order given.
// SINCE is the connection time in UTC and, in parentheses, how long ago
// that was. Nicknames and other client-supplied text are escaped as in
// RenderStatus; an empty nick shows as "-".
func RenderConnections(w io.Writer, cs []Connection) {
	renderConnections(w, cs, time.Now())
}

func renderConnections(w io.Writer, cs []Connection, now time.Time) {
	var t table
	t.add("UID", "NICK", "USER", "INSTANCE", "REACTOR", "REMOTE", "SINCE", "MSG IN", "MSG OUT", "QUEUED", "ROOMS")
	for _, c := range cs {
		since := stamp(c.Since)
		if !c.Since.IsZero() {
			since += " (" + duration(now.Sub(c.Since)) + ")"
		}
		t.add(utoa(c.UID), text(c.Nick), text(c.User), text(c.Instance), itoa(c.Reactor), text(c.Remote), since,
			utoa(c.MessagesIn), utoa(c.MessagesOut), size(uint64(max(c.BytesQueued, 0))), text(strings.Join(c.Rooms, ",")))
	}
	t.write(w)
}

// WriteJSON writes v as indented JSON with a trailing newline: the form of
// "fastws status --json" and "fastws connections --json". Unlike the
// encoder's default, it leaves <, > and & unescaped.
func WriteJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

func itoa[T int | int64](n T) string { return strconv.FormatInt(int64(n), 10) }

func utoa(n uint64) string { return strconv.FormatUint(n, 10) }

// text makes s safe for one table cell: "-" if empty, and escaped in Go
// syntax if it holds a control character, a tab, a newline or invalid
// UTF-8. Printable text, Chinese included, passes unchanged.
func text(s string) string {
	if s == "" {
		return "-"
	}
	for i, r := range s {
		if r == utf8.RuneError && !strings.HasPrefix(s[i:], string(utf8.RuneError)) || !unicode.IsGraphic(r) {
			return strconv.QuoteToGraphic(s)
		}
	}
	return s
}

// stamp formats t in UTC to the second, or "-" for the zero time.
func stamp(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format("2006-01-02 15:04:05 MST")
}

// seconds formats a count of seconds as a Go duration rounded to the second.
func seconds(s float64) string {
	if math.IsNaN(s) || s <= 0 {
		return "0s"
	}
	if s >= math.MaxInt64/float64(time.Second) {
		return duration(math.MaxInt64)
	}
	return duration(time.Duration(s * float64(time.Second)))
}

// duration formats d rounded to the second, e.g. "1h2m3s"; never negative,
// so a clock step cannot show a connection from the future.
func duration(d time.Duration) string {
	d = max(d, 0)
	if r := d.Round(time.Second); r%time.Second == 0 {
		return r.String()
	}
	return d.Truncate(time.Second).String() // Round saturated near the largest Duration
}

// size formats a byte count with binary units: "512 B", "1.2 KiB",
// "12.3 MiB".
func size(n uint64) string {
	if n < 1024 {
		return strconv.FormatUint(n, 10) + " B"
	}
	units := [...]string{"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"}
	v, u := float64(n)/1024, 0
	for v >= 1024-0.05 && u < len(units)-1 { // 1023.97 KiB shows as 1.0 MiB, not 1024.0 KiB
		v /= 1024
		u++
	}
	return strconv.FormatFloat(v, 'f', 1, 64) + " " + units[u]
}

// openFiles formats "57/20000", leaving out a limit that is unknown (0).
func openFiles(n int, limit uint64) string {
	switch limit {
	case 0:
		return strconv.Itoa(n)
	case math.MaxUint64: // RLIM_INFINITY
		return strconv.Itoa(n) + "/unlimited"
	}
	return strconv.Itoa(n) + "/" + strconv.FormatUint(limit, 10)
}
