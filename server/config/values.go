package config

import (
	"math"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Messages for bad values. Each says what is allowed.
const (
	msgSize     = "not a size (bytes or with K, M, G suffix, e.g. 64K)"
	msgPort     = "not a port (1-65535)"
	msgProtocol = "unknown protocol (telnet, websocket)"
	msgHost     = "not an IP address or localhost (e.g. 0.0.0.0, 127.0.0.1, ::1)"
	msgListen   = "not host:port (e.g. 127.0.0.1:19990; empty = off)"
	msgOrigins  = "not a list of origins (scheme://host[:port], comma-separated, e.g. https://chat.example.com; empty = any)"
)

// parseSize parses a byte count: plain bytes or with a 1024-based K, M or G
// suffix, optionally followed by B or iB, in any case ("64K", "1MiB", "512").
func parseSize(s string) (int, bool) {
	s = strings.TrimSpace(s)
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	if i == 0 {
		return 0, false
	}
	n, err := strconv.ParseInt(s[:i], 10, 64)
	if err != nil {
		return 0, false
	}
	var shift uint
	switch strings.ToLower(strings.TrimSpace(s[i:])) {
	case "", "b":
	case "k", "kb", "kib":
		shift = 10
	case "m", "mb", "mib":
		shift = 20
	case "g", "gb", "gib":
		shift = 30
	default:
		return 0, false
	}
	if n > math.MaxInt>>shift {
		return 0, false
	}
	return int(n << shift), true
}

// formatSize renders n the way the shipped config.ini writes sizes.
func formatSize(n int) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return strconv.Itoa(n>>30) + "G"
	case n >= 1<<20 && n%(1<<20) == 0:
		return strconv.Itoa(n>>20) + "M"
	case n >= 1<<10 && n%(1<<10) == 0:
		return strconv.Itoa(n>>10) + "K"
	}
	return strconv.Itoa(n)
}

// parseDuration parses Go duration syntax ("10s", "1m30s", "0").
func parseDuration(s string) (time.Duration, bool) {
	d, err := time.ParseDuration(strings.TrimSpace(s))
	return d, err == nil
}

// parseInt parses a base-10 whole number within [lo, hi].
func parseInt(s string, lo, hi int) (int, bool) {
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil || n < lo || n > hi {
		return 0, false
	}
	return n, true
}

// parseRate parses a finite, non-negative number of events per second.
func parseRate(s string) (float64, bool) {
	f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) || f < 0 {
		return 0, false
	}
	return f, true
}

// parseHost accepts an IP literal or "localhost"; DNS names are refused so
// that what the daemon binds never depends on a resolver.
func parseHost(s string) (string, bool) {
	s = strings.TrimSpace(s)
	if s == "localhost" {
		return s, true
	}
	if _, err := netip.ParseAddr(s); err != nil {
		return "", false
	}
	return s, true
}

// parseListen accepts host:port with a port of 0-65535; the host may be
// empty (every interface) or a name.
func parseListen(s string) (string, bool) {
	s = strings.TrimSpace(s)
	host, port, err := net.SplitHostPort(s)
	if err != nil || strings.ContainsAny(host, " \t") {
		return "", false
	}
	if port == "" || strings.Trim(port, "0123456789") != "" {
		return "", false
	}
	if _, ok := parseInt(port, 0, 65535); !ok {
		return "", false
	}
	return s, true
}

// parseOrigins parses a comma- or space-separated list of browser origins
// (scheme://host[:port]) and returns them lower-cased, as browsers send them.
func parseOrigins(s string) ([]string, bool) {
	fields := strings.FieldsFunc(s, func(r rune) bool {
		return r == ',' || r == ' ' || r == '\t'
	})
	var out []string
	for _, f := range fields {
		u, err := url.Parse(f)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") ||
			u.Host == "" || u.User != nil || (u.Path != "" && u.Path != "/") ||
			u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" {
			return nil, false
		}
		out = append(out, strings.ToLower(u.Scheme+"://"+u.Host))
	}
	return out, true
}

// bindKey reduces a listen address to what the kernel compares: a wildcard
// host overlaps every host on the same port and "localhost" is 127.0.0.1.
type bindKey struct {
	addr     netip.Addr
	wildcard bool
	port     int
}

// newBindKey reports false for hosts it cannot compare (DNS names).
func newBindKey(host string, port int) (bindKey, bool) {
	if host == "" {
		return bindKey{wildcard: true, port: port}, true
	}
	if host == "localhost" {
		host = "127.0.0.1"
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return bindKey{}, false
	}
	a = a.Unmap().WithZone("")
	return bindKey{addr: a, wildcard: a.IsUnspecified(), port: port}, true
}

// overlaps reports whether two listeners would fight over one port.
func (k bindKey) overlaps(o bindKey) bool {
	return k.port == o.port && (k.wildcard || o.wildcard || k.addr == o.addr)
}
