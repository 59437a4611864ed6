package config

import (
	"strings"
	"testing"
)

// TestErrors checks the exact text users read for each kind of bad config.
func TestErrors(t *testing.T) {
	tests := []struct {
		name, text string
		want       []string
	}{
		{
			name: "bad port",
			text: "[instance.telnet]\ninstanceName = A\nprotocol = telnet\nport = abc\n",
			want: []string{`config.ini:4: [instance.telnet] port = "abc": not a port (1-65535)`},
		},
		{
			name: "port out of range",
			text: "[instance.telnet]\ninstanceName = A\nprotocol = telnet\nport = 65536\n",
			want: []string{`config.ini:4: [instance.telnet] port = "65536": not a port (1-65535)`},
		},
		{
			name: "unknown key",
			text: "[fastws]\nfoo = 1\n" + oneInstance,
			want: []string{`config.ini:2: [fastws] foo = "1": unknown key; allowed: runDir, logFile, metricsListen, stopTimeout, announceLimit, maxSendBufferTotal, maxRooms, maxRoomsPerMember, maxPackageSize, maxSendBuffer, idleTimeout, maxConnections, maxConnectionsPerIP, messagesPerSecond, messageBurst, bytesPerSecond, bytesBurst, pingInterval, pongTimeout, fanoutDelay`},
		},
		{
			name: "key in the wrong case",
			text: "[instance.a]\ninstanceName = A\nprotocol = telnet\nPort = 19910\n",
			want: []string{
				`config.ini:1: [instance.a] port: missing (1-65535)`,
				`config.ini:4: [instance.a] Port = "19910": unknown key (did you mean port? keys are case-sensitive); allowed: instanceName, protocol, host, port, childProcessCount, allowedOrigins, tlsCert, tlsKey, maxPackageSize, maxSendBuffer, idleTimeout, maxConnections, maxConnectionsPerIP, messagesPerSecond, messageBurst, bytesPerSecond, bytesBurst, pingInterval, pongTimeout, fanoutDelay`,
			},
		},
		{
			name: "unknown section",
			text: "[server]\nport = 1\n" + oneInstance,
			want: []string{`config.ini:1: [server]: unknown section; allowed: [fastws], [api], [instance.NAME], [cluster]`},
		},
		{
			name: "section in the wrong case",
			text: "[FastWS]\n" + oneInstance,
			want: []string{`config.ini:1: [FastWS]: unknown section; allowed: [fastws], [api], [instance.NAME], [cluster]`},
		},
		{
			name: "bare instance section with keys",
			text: "[instance]\nport = 1\n" + oneInstance,
			want: []string{`config.ini:1: [instance]: section needs a name; allowed: [fastws], [api], [instance.NAME], [cluster]`},
		},
		{
			name: "bad instance section name",
			text: "[instance.]\ninstanceName = A\nprotocol = telnet\nport = 19910\n",
			want: []string{`config.ini:1: [instance.]: bad section name; want [instance.NAME] with a NAME of letters, digits, '-', '_' or '.'`},
		},
		{
			name: "keys before any section",
			text: "port = 1\n" + oneInstance,
			want: []string{`config.ini:1: port = "1": outside any section; put it under [fastws] or [instance.NAME]`},
		},
		{
			name: "explicit DEFAULT section",
			text: "[DEFAULT]\nport = 1\n" + oneInstance,
			want: []string{`config.ini:1: [DEFAULT]: unknown section; allowed: [fastws], [api], [instance.NAME], [cluster]`},
		},
		{
			name: "duplicate address",
			text: oneInstance + "[instance.b]\ninstanceName = B\nprotocol = websocket\nport = 19910\n",
			want: []string{`config.ini:8: [instance.b] port = "19910": address 0.0.0.0:19910 already used by [instance.a]`},
		},
		{
			name: "wildcard overlaps a host",
			text: oneInstance + "[instance.b]\ninstanceName = B\nprotocol = websocket\nhost = localhost\nport = 19910\n",
			want: []string{`config.ini:9: [instance.b] port = "19910": address localhost:19910 overlaps 0.0.0.0:19910 of [instance.a]`},
		},
		{
			name: "localhost is 127.0.0.1",
			text: "[instance.a]\ninstanceName = A\nprotocol = telnet\nhost = 127.0.0.1\nport = 19910\n" +
				"[instance.b]\ninstanceName = B\nprotocol = telnet\nhost = localhost\nport = 19910\n",
			want: []string{`config.ini:10: [instance.b] port = "19910": address localhost:19910 overlaps 127.0.0.1:19910 of [instance.a]`},
		},
		{
			name: "metrics on an instance's address",
			text: "[fastws]\nmetricsListen = :19910\n" + oneInstance,
			want: []string{`config.ini:2: [fastws] metricsListen = ":19910": address :19910 overlaps 0.0.0.0:19910 of [instance.a]`},
		},
		{
			name: "bad protocol",
			text: "[instance.a]\ninstanceName = A\nprotocol = udp\nport = 19910\n",
			want: []string{`config.ini:3: [instance.a] protocol = "udp": unknown protocol (telnet, websocket)`},
		},
		{
			name: "childProcessCount 0",
			text: oneInstance + "childProcessCount = 0\n",
			want: []string{`config.ini:5: [instance.a] childProcessCount = "0": must be 1-256`},
		},
		{
			name: "bad size suffix",
			text: "[fastws]\nmaxSendBuffer = 1Q\n" + oneInstance,
			want: []string{`config.ini:2: [fastws] maxSendBuffer = "1Q": not a size (bytes or with K, M, G suffix, e.g. 64K)`},
		},
		{
			name: "package size out of range",
			text: oneInstance + "maxPackageSize = 8\n",
			want: []string{`config.ini:5: [instance.a] maxPackageSize = "8": must be 16 to 64M (bytes or with K, M, G suffix, e.g. 64K)`},
		},
		{
			name: "send buffer smaller than a package",
			text: oneInstance + "maxPackageSize = 64K\nmaxSendBuffer = 32K\n",
			want: []string{`config.ini:6: [instance.a] maxSendBuffer = "32K": must be at least maxPackageSize (64K)`},
		},
		{
			name: "package larger than the inherited send buffer",
			text: "[fastws]\nmaxPackageSize = 4K\nmaxSendBuffer = 8K\n" + oneInstance + "maxPackageSize = 16K\n",
			want: []string{`config.ini:8: [instance.a] maxPackageSize = "16K": must be at most maxSendBuffer (8K)`},
		},
		{
			name: "byte burst smaller than a package",
			text: "[fastws]\nbytesBurst = 32K\n" + oneInstance,
			want: []string{`config.ini:2: [fastws] bytesBurst = "32K": must be at least maxPackageSize (64K), or the longest line could never be sent; 0 = unlimited`},
		},
		{
			name: "byte burst as large as the send buffer",
			text: oneInstance + "bytesBurst = 1M\n",
			want: []string{`config.ini:5: [instance.a] bytesBurst = "1M": must be less than maxSendBuffer (1M), or one sender's burst fills a reader's send buffer; 0 = unlimited`},
		},
		{
			name: "send buffer under the inherited byte burst",
			text: "[fastws]\nbytesBurst = 256K\n" + oneInstance + "maxSendBuffer = 128K\n",
			want: []string{`config.ini:7: [instance.a] maxSendBuffer = "128K": must be more than bytesBurst (256K), or one sender's burst fills a reader's send buffer`},
		},
		{
			name: "package over the inherited byte burst",
			text: "[fastws]\nbytesBurst = 128K\n" + oneInstance + "maxPackageSize = 200K\n",
			want: []string{`config.ini:7: [instance.a] maxPackageSize = "200K": must be at most bytesBurst (128K), or the longest line could never be sent`},
		},
		{
			name: "byte rate turning on a small inherited burst",
			text: "[fastws]\nbytesPerSecond = 0\nbytesBurst = 16K\n" + oneInstance + "bytesPerSecond = 1K\n",
			want: []string{`config.ini:8: [instance.a] bytesPerSecond = "1K": turns on a bytesBurst (16K) under maxPackageSize (64K); set bytesBurst here too`},
		},
		{
			name: "bad byte rate",
			text: "[fastws]\nbytesPerSecond = -1\n" + oneInstance,
			want: []string{`config.ini:2: [fastws] bytesPerSecond = "-1": not a size (bytes or with K, M, G suffix, e.g. 64K); 0 = unlimited`},
		},
		{
			name: "total send buffer too small",
			text: "[fastws]\nmaxSendBufferTotal = 1K\n" + oneInstance,
			want: []string{`config.ini:2: [fastws] maxSendBufferTotal = "1K": must be 0 (unlimited) or at least 64K (bytes queued for all clients together, e.g. 256M)`},
		},
		{
			name: "total send buffer is daemon-wide",
			text: oneInstance + "maxSendBufferTotal = 1G\n",
			want: []string{`config.ini:5: [instance.a] maxSendBufferTotal = "1G": unknown key; allowed: instanceName, protocol, host, port, childProcessCount, allowedOrigins, tlsCert, tlsKey, maxPackageSize, maxSendBuffer, idleTimeout, maxConnections, maxConnectionsPerIP, messagesPerSecond, messageBurst, bytesPerSecond, bytesBurst, pingInterval, pongTimeout, fanoutDelay`},
		},
		{
			name: "missing port",
			text: oneInstance + "[instance.b]\ninstanceName = B\nprotocol = telnet\n",
			want: []string{`config.ini:5: [instance.b] port: missing (1-65535)`},
		},
		{
			name: "missing everything",
			text: "[instance.a]\n",
			want: []string{
				`config.ini:1: [instance.a] instanceName: missing (a unique name, e.g. FastWS-Telnet)`,
				`config.ini:1: [instance.a] protocol: missing (telnet, websocket)`,
				`config.ini:1: [instance.a] port: missing (1-65535)`,
			},
		},
		{
			name: "empty port",
			text: "[instance.a]\ninstanceName = A\nprotocol = telnet\nport =\n",
			want: []string{`config.ini:4: [instance.a] port = "": not a port (1-65535)`},
		},
		{
			name: "duplicate instanceName",
			text: oneInstance + "[instance.b]\ninstanceName = A\nprotocol = telnet\nport = 19911\n",
			want: []string{`config.ini:6: [instance.b] instanceName = "A": already used by [instance.a]; names must be unique`},
		},
		{
			name: "negative duration",
			text: "[fastws]\nidleTimeout = -5s\n" + oneInstance,
			want: []string{`config.ini:2: [fastws] idleTimeout = "-5s": must not be negative (Go duration, e.g. 10m; 0 = off)`},
		},
		{
			name: "fanoutDelay past its bound",
			text: "[fastws]\nfanoutDelay = 2s\n" + oneInstance,
			want: []string{`config.ini:2: [fastws] fanoutDelay = "2s": must be at most 1s (Go duration, e.g. 100ms; 0 = off)`},
		},
		{
			name: "fanoutDelay negative, in an instance",
			text: oneInstance + "fanoutDelay = -1ms\n",
			want: []string{`config.ini:5: [instance.a] fanoutDelay = "-1ms": must not be negative (Go duration, e.g. 100ms; 0 = off)`},
		},
		{
			name: "fanoutDelay not a duration",
			text: "[fastws]\nfanoutDelay = 100\n" + oneInstance,
			want: []string{`config.ini:2: [fastws] fanoutDelay = "100": not a duration (Go syntax, e.g. 100ms; 0 = off)`},
		},
		{
			name: "zero stopTimeout",
			text: "[fastws]\nstopTimeout = 0s\n" + oneInstance,
			want: []string{`config.ini:2: [fastws] stopTimeout = "0s": must be positive (Go duration, e.g. 10s)`},
		},
		{
			name: "host name",
			text: oneInstance + "host = example.com\n",
			want: []string{`config.ini:5: [instance.a] host = "example.com": not an IP address or localhost (e.g. 0.0.0.0, 127.0.0.1, ::1)`},
		},
		{
			name: "bad metricsListen",
			text: "[fastws]\nmetricsListen = 19990\n" + oneInstance,
			want: []string{`config.ini:2: [fastws] metricsListen = "19990": not host:port (e.g. 127.0.0.1:19990; empty = off)`},
		},
		{
			name: "bad rate",
			text: "[fastws]\nmessagesPerSecond = NaN\n" + oneInstance,
			want: []string{`config.ini:2: [fastws] messagesPerSecond = "NaN": must be a number >= 0 (messages per second per connection, e.g. 50 or 0.5; 0 = unlimited)`},
		},
		{
			name: "zero burst",
			text: "[fastws]\nmessageBurst = 0\n" + oneInstance,
			want: []string{`config.ini:2: [fastws] messageBurst = "0": must be a whole number >= 1 (messages a connection may send at once)`},
		},
		{
			name: "negative maxConnections",
			text: "[fastws]\nmaxConnections = -1\n" + oneInstance,
			want: []string{`config.ini:2: [fastws] maxConnections = "-1": must be a whole number >= 0 (0 = unlimited)`},
		},
		{
			name: "origins on telnet",
			text: oneInstance + "allowedOrigins = https://a.example\n",
			want: []string{`config.ini:5: [instance.a] allowedOrigins = "https://a.example": only allowed with protocol = websocket`},
		},
		{
			name: "bad origin",
			text: oneInstance + "allowedOrigins = a.example\n",
			want: []string{`config.ini:5: [instance.a] allowedOrigins = "a.example": not a list of origins (scheme://host[:port], comma-separated, e.g. https://chat.example.com; empty = any)`},
		},
		{
			name: "empty runDir",
			text: "[fastws]\nrunDir =\n" + oneInstance,
			want: []string{`config.ini:2: [fastws] runDir = "": must not be empty (a folder, relative to the config file's folder; default ./run)`},
		},
		{
			name: "duplicate key",
			text: oneInstance + "port = 19911\n",
			want: []string{`config.ini:5: [instance.a] port = "19911": duplicate key (first on line 4); set each key once per section`},
		},
		{
			name: "duplicate section",
			text: "[fastws]\n" + oneInstance + "[fastws]\n",
			want: []string{`config.ini:6: [fastws]: duplicate section (first on line 1); write each section once`},
		},
		{
			name: "no instance",
			text: "[fastws]\n",
			want: []string{`config.ini: no [instance.NAME] section; at least one is required`},
		},
		{
			name: "empty file",
			text: "",
			want: []string{`config.ini: no [instance.NAME] section; at least one is required`},
		},
		{
			name: "unclosed section header",
			text: "[fastws\n" + oneInstance,
			want: []string{`config.ini:1: "[fastws": unclosed section header; want [fastws] or [instance.NAME]`},
		},
		{
			name: "empty section name",
			text: "[]\n" + oneInstance,
			want: []string{`config.ini:1: "[]": empty section name; want [fastws] or [instance.NAME]`},
		},
		{
			name: "line without =",
			text: oneInstance + "port: 19911\n",
			want: []string{`config.ini:5: "port: 19911": not a key = value line; want key = value, [section] or a ; comment`},
		},
		{
			name: "missing key name",
			text: oneInstance + "= 5\n",
			want: []string{`config.ini:5: "= 5": missing key name; want key = value`},
		},
		{
			name: "unclosed quoted key",
			text: oneInstance + "\"port = 5\n",
			want: []string{`config.ini:5: "\"port = 5": unclosed quote in key name; want key = value`},
		},
		{
			name: "unclosed multi-line value",
			text: oneInstance + "host = `::1\n",
			want: []string{"config.ini:5: [instance.a] host = \"`::1\": unclosed ` quote; close it or remove it"},
		},
		{
			name: "unclosed double quote",
			text: oneInstance + "host = \"::1\n",
			want: []string{`config.ini:5: [instance.a] host = "\"::1": unclosed " quote; close it or remove it`},
		},
		{
			name: "syntax errors do not hide the rest",
			text: "[fastws\nbogus line\n" + oneInstance + "port = x\n",
			want: []string{
				`config.ini:1: "[fastws": unclosed section header; want [fastws] or [instance.NAME]`,
				`config.ini:2: "bogus line": not a key = value line; want key = value, [section] or a ; comment`,
				`config.ini:7: [instance.a] port = "x": duplicate key (first on line 6); set each key once per section`,
				`config.ini:7: [instance.a] port = "x": not a port (1-65535)`,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := parseErr(t, tt.text)
			if want := strings.Join(tt.want, "\n"); got != want {
				t.Errorf("got:\n%s\nwant:\n%s", got, want)
			}
		})
	}
}

// TestErrorsTogether checks that problems are all reported at once, in line
// order, whatever order they are found in.
func TestErrorsTogether(t *testing.T) {
	text := `; three mistakes
[instance.b]
instanceName = B
protocol = udp
port = 19910

[fastws]
idleTimeout = -1s

[instance.a]
instanceName = A
protocol = telnet
port = 0
`
	want := strings.Join([]string{
		`config.ini:4: [instance.b] protocol = "udp": unknown protocol (telnet, websocket)`,
		`config.ini:8: [fastws] idleTimeout = "-1s": must not be negative (Go duration, e.g. 10m; 0 = off)`,
		`config.ini:13: [instance.a] port = "0": not a port (1-65535)`,
	}, "\n")
	if got := parseErr(t, text); got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
	_, err := Parse("config.ini", []byte(text))
	if n := len(err.(Errors)); n != 3 {
		t.Errorf("got %d errors, want 3", n)
	}
}
