package config

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

const shippedPath = "../../config.ini"

// mustParse parses text as config.ini and fails the test on any error.
func mustParse(t testing.TB, text string) *Config {
	t.Helper()
	c, err := Parse("config.ini", []byte(text))
	if err != nil {
		t.Fatalf("Parse: %v\ninput:\n%s", err, text)
	}
	return c
}

// parseErr parses text as config.ini and returns the error text.
func parseErr(t testing.TB, text string) string {
	t.Helper()
	c, err := Parse("config.ini", []byte(text))
	if err == nil {
		t.Fatalf("Parse: got %+v, nil error, want an error\ninput:\n%s", c, text)
	}
	var errs Errors
	if !errors.As(err, &errs) {
		t.Fatalf("Parse: got error %T (%v), want Errors", err, err)
	}
	return err.Error()
}

// oneInstance is the smallest valid instance section.
const oneInstance = `[instance.a]
instanceName = A
protocol = telnet
port = 19910
`

func TestShippedConfig(t *testing.T) {
	c, err := Load(shippedPath)
	if err != nil {
		t.Fatalf("Load(%s): %v", shippedPath, err)
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(root, "config.ini"); c.Path != want {
		t.Errorf("Path: got %q, want %q", c.Path, want)
	}
	if want := filepath.Join(root, "run"); c.RunDir != want {
		t.Errorf("RunDir: got %q, want %q", c.RunDir, want)
	}
	if want := filepath.Join(root, "run", "fastws.log"); c.LogFile != want {
		t.Errorf("LogFile: got %q, want %q", c.LogFile, want)
	}
	if c.MetricsListen != "127.0.0.1:19990" {
		t.Errorf("MetricsListen: got %q, want %q", c.MetricsListen, "127.0.0.1:19990")
	}
	if c.StopTimeout != 10*time.Second {
		t.Errorf("StopTimeout: got %v, want 10s", c.StopTimeout)
	}
	if c.Defaults != DefaultLimits() {
		t.Errorf("Defaults: got %+v, want the built-in defaults %+v", c.Defaults, DefaultLimits())
	}
	want := []Instance{
		{Section: "instance.telnet", Name: "FastWS-Telnet", Protocol: ProtocolTelnet,
			Host: "0.0.0.0", Port: 19910, ChildProcessCount: 4, Limits: DefaultLimits()},
		{Section: "instance.websocket", Name: "FastWS-WebSocket", Protocol: ProtocolWebSocket,
			Host: "0.0.0.0", Port: 19911, ChildProcessCount: 2, Limits: DefaultLimits()},
	}
	if len(c.Instances) != len(want) {
		t.Fatalf("Instances: got %d, want %d: %+v", len(c.Instances), len(want), c.Instances)
	}
	for i := range want {
		if !c.Instances[i].Same(want[i]) {
			t.Errorf("Instances[%d]: got %+v, want %+v", i, c.Instances[i], want[i])
		}
	}
}

// TestShippedConfigDocumented keeps the shipped file complete: every key is
// present and the comment above it states its default (or that it is
// required).
func TestShippedConfigDocumented(t *testing.T) {
	data, err := os.ReadFile(shippedPath)
	if err != nil {
		t.Fatal(err)
	}
	ix, _ := scan(shippedPath, data)
	for _, k := range slices.Concat(daemonKeys, limitKeys) {
		if ix.keys["fastws"][k] == nil {
			t.Errorf("[fastws] %s: missing from %s, want every key present", k, shippedPath)
		}
	}
	for _, k := range apiKeys {
		if ix.keys["api"][k] == nil {
			t.Errorf("[api] %s: missing from %s, want every key present", k, shippedPath)
		}
	}
	for _, sec := range []string{"instance.telnet", "instance.websocket"} {
		for _, k := range instanceKeys {
			if k == "allowedOrigins" && sec == "instance.telnet" {
				continue // websocket only
			}
			if ix.keys[sec][k] == nil {
				t.Errorf("[%s] %s: missing from %s", sec, k, shippedPath)
			}
		}
	}
	lines := strings.Split(string(data), "\n")
	for i, line := range lines {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == ';' || line[0] == '[' {
			continue
		}
		var comment []string
		for j := i - 1; j >= 0 && strings.HasPrefix(lines[j], ";"); j-- {
			comment = append(comment, lines[j])
		}
		text := strings.Join(comment, " ")
		if !strings.Contains(text, "Default") && !strings.Contains(text, "Required") {
			t.Errorf("%s:%d: %q: got comment %q, want one stating the default or Required", shippedPath, i+1, line, text)
		}
	}
}

func TestDefaults(t *testing.T) {
	c := mustParse(t, oneInstance)
	if c.MaxSendBufferTotal != 256<<20 {
		t.Errorf("maxSendBufferTotal: got %d, want 256M", c.MaxSendBufferTotal)
	}
	if c := mustParse(t, "[fastws]\nmaxSendBufferTotal = 0\n"+oneInstance); c.MaxSendBufferTotal != 0 {
		t.Errorf("maxSendBufferTotal = 0: got %d, want 0 (unlimited)", c.MaxSendBufferTotal)
	}
	if c.MetricsListen != defaultMetricsListen || c.StopTimeout != defaultStopTimeout {
		t.Errorf("daemon: got metricsListen %q, stopTimeout %v, want %q, %v",
			c.MetricsListen, c.StopTimeout, defaultMetricsListen, defaultStopTimeout)
	}
	wantLimits := Limits{
		MaxPackageSize: 65536, MaxSendBuffer: 1 << 20, IdleTimeout: 10 * time.Minute,
		MaxConnections: 100000, MaxConnectionsPerIP: 1000, MessagesPerSecond: 50, MessageBurst: 100, PingInterval: 30 * time.Second, PongTimeout: 10 * time.Second,
		BytesPerSecond: 64 << 10, BytesBurst: 256 << 10, FanoutDelay: 100 * time.Millisecond,
	}
	if c.Defaults != wantLimits {
		t.Errorf("Defaults: got %+v, want %+v", c.Defaults, wantLimits)
	}
	want := Instance{Section: "instance.a", Name: "A", Protocol: ProtocolTelnet, Host: "0.0.0.0",
		Port: 19910, ChildProcessCount: defaultChildProcessCount(), Limits: wantLimits}
	if len(c.Instances) != 1 || !c.Instances[0].Same(want) {
		t.Errorf("Instances: got %+v, want [%+v]", c.Instances, want)
	}
}

func TestOverrides(t *testing.T) {
	// [fastws] comes last on purpose: instances inherit it wherever it is.
	c := mustParse(t, `[instance.a]
instanceName = A
protocol = telnet
port = 19910
maxPackageSize = 1K
messagesPerSecond = 0.5
maxConnectionsPerIP = 3

[instance.b]
instanceName = B
protocol = websocket
host = ::1
port = 19911
childProcessCount = 1
allowedOrigins = https://Chat.Example.com, http://localhost:19911

[fastws]
maxPackageSize = 8K
idleTimeout = 1m
maxConnections = 0
messageBurst = 5
metricsListen =
`)
	defaults := DefaultLimits()
	defaults.MaxPackageSize = 8 << 10
	defaults.IdleTimeout = time.Minute
	defaults.MaxConnections = 0
	defaults.MessageBurst = 5
	if c.Defaults != defaults {
		t.Errorf("Defaults: got %+v, want %+v", c.Defaults, defaults)
	}
	if c.MetricsListen != "" {
		t.Errorf("MetricsListen: got %q, want empty (off)", c.MetricsListen)
	}
	a := defaults
	a.MaxPackageSize = 1 << 10
	a.MessagesPerSecond = 0.5
	a.MaxConnectionsPerIP = 3
	want := []Instance{
		{Section: "instance.a", Name: "A", Protocol: ProtocolTelnet, Host: "0.0.0.0", Port: 19910,
			ChildProcessCount: defaultChildProcessCount(), Limits: a},
		{Section: "instance.b", Name: "B", Protocol: ProtocolWebSocket, Host: "::1", Port: 19911,
			ChildProcessCount: 1, Limits: defaults,
			AllowedOrigins: []string{"https://chat.example.com", "http://localhost:19911"}},
	}
	if len(c.Instances) != len(want) {
		t.Fatalf("Instances: got %d, want %d", len(c.Instances), len(want))
	}
	for i := range want {
		if !c.Instances[i].Same(want[i]) {
			t.Errorf("Instances[%d]: got %+v, want %+v", i, c.Instances[i], want[i])
		}
	}
	if got, want := c.Instances[1].Addr(), "[::1]:19911"; got != want {
		t.Errorf("Addr: got %q, want %q", got, want)
	}
}

// TestBytesBurstDefault: unless config.ini sets bytesBurst, it follows
// each section's maxSendBuffer (a quarter, at most 256K, at least
// maxPackageSize), so a small send buffer needs no bytesBurst of its own;
// a bytesBurst in [fastws] is inherited as written; 0 turns it off.
func TestBytesBurstDefault(t *testing.T) {
	tests := []struct {
		name, text string
		want       []int // [fastws], then each instance
	}{
		{"defaults", oneInstance, []int{256 << 10, 256 << 10}},
		{"small send buffer", "[fastws]\nmaxSendBuffer = 128K\nmaxPackageSize = 16K\n" + oneInstance, []int{32 << 10, 32 << 10}},
		{"send buffer of one package", oneInstance + "maxSendBuffer = 64K\n", []int{256 << 10, 64 << 10}},
		{"big send buffer", oneInstance + "maxSendBuffer = 64M\n", []int{256 << 10, 256 << 10}},
		{"given in [fastws]", "[fastws]\nbytesBurst = 100K\n" + oneInstance + "maxSendBuffer = 2M\n", []int{100 << 10, 100 << 10}},
		{"off", "[fastws]\nbytesBurst = 0\n" + oneInstance + "maxSendBuffer = 64K\n", []int{0, 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := mustParse(t, tt.text)
			got := []int{c.Defaults.BytesBurst}
			for _, in := range c.Instances {
				got = append(got, in.Limits.BytesBurst)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("bytesBurst: got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestParseSize(t *testing.T) {
	tests := []struct {
		in   string
		want int
		ok   bool
	}{
		{"0", 0, true},
		{"512", 512, true},
		{"64K", 64 << 10, true},
		{"64k", 64 << 10, true},
		{"64KB", 64 << 10, true},
		{"64KiB", 64 << 10, true},
		{"64kib", 64 << 10, true},
		{"1M", 1 << 20, true},
		{"1MiB", 1 << 20, true},
		{"2G", 2 << 30, true},
		{"100B", 100, true},
		{" 8K ", 8 << 10, true},
		{"8 K", 8 << 10, true},
		{"", 0, false},
		{"K", 0, false},
		{"1Q", 0, false},
		{"1T", 0, false},
		{"64iB", 0, false},
		{"-1", 0, false},
		{"+1", 0, false},
		{"1.5M", 0, false},
		{"0x10", 0, false},
		{"9223372036854775807", 9223372036854775807, true},
		{"9223372036854775807K", 0, false},
		{"99999999999999999999", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, ok := parseSize(tt.in)
			if got != tt.want || ok != tt.ok {
				t.Errorf("parseSize(%q): got %d, %v, want %d, %v", tt.in, got, ok, tt.want, tt.ok)
			}
		})
	}
}

func TestDurations(t *testing.T) {
	tests := []struct {
		name, value string
		want        time.Duration
		err         string // the message after the value, or "" when valid
	}{
		{"seconds", "10s", 10 * time.Second, ""},
		{"minutes", "5m", 5 * time.Minute, ""},
		{"compound", "1h30m", 90 * time.Minute, ""},
		{"milliseconds", "1500ms", 1500 * time.Millisecond, ""},
		{"zero is off", "0", 0, ""},
		{"no unit", "10", 0, "not a duration (Go syntax, e.g. 10m, 1h30m; 0 = off)"},
		{"days", "1d", 0, "not a duration (Go syntax, e.g. 10m, 1h30m; 0 = off)"},
		{"negative", "-1s", 0, "must not be negative (Go duration, e.g. 10m; 0 = off)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			text := "[fastws]\nidleTimeout = " + tt.value + "\n" + oneInstance
			if tt.err != "" {
				want := `config.ini:2: [fastws] idleTimeout = "` + tt.value + `": ` + tt.err
				if got := parseErr(t, text); got != want {
					t.Errorf("got %q, want %q", got, want)
				}
				return
			}
			if got := mustParse(t, text).Defaults.IdleTimeout; got != tt.want {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestInlineComments(t *testing.T) {
	tests := []struct {
		name, line string
		want       string
	}{
		{"semicolon after space is a comment", "instanceName = x ; y", "x"},
		{"hash after space is a comment", "instanceName = x # y", "x"},
		{"semicolon inside a value is kept", "instanceName = x;y", "x;y"},
		{"hash inside a value is kept", "instanceName = x#y", "x#y"},
		{"quotes are stripped", `instanceName = "x ; y"`, "x ; y"},
		{"no spaces around =", "instanceName=x", "x"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := mustParse(t, "[instance.a]\n"+tt.line+"\nprotocol = telnet\nport = 19910 ; the port\nhost = 0.0.0.0 # every interface\n")
			in := c.Instances[0]
			if in.Name != tt.want {
				t.Errorf("instanceName: got %q, want %q", in.Name, tt.want)
			}
			if in.Port != 19910 || in.Host != "0.0.0.0" {
				t.Errorf("port, host: got %d, %q, want 19910, 0.0.0.0", in.Port, in.Host)
			}
		})
	}
	t.Run("value that is only a comment is empty", func(t *testing.T) {
		c := mustParse(t, "[fastws]\nmetricsListen = ; off\n"+oneInstance)
		if c.MetricsListen != "" {
			t.Errorf("metricsListen: got %q, want empty", c.MetricsListen)
		}
	})
	t.Run("CRLF line ends and a BOM", func(t *testing.T) {
		text := "\ufeff; comment\r\n" + strings.ReplaceAll(oneInstance, "\n", "\r\n")
		if c := mustParse(t, text); c.Instances[0].Port != 19910 {
			t.Errorf("port: got %d, want 19910", c.Instances[0].Port)
		}
	})
}

func TestRelativePaths(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name, path, daemon string
		runDir, logFile    string
	}{
		{"defaults", filepath.Join(dir, "etc", "config.ini"), "",
			filepath.Join(dir, "etc", "run"), filepath.Join(dir, "etc", "run", "fastws.log")},
		{"relative runDir", filepath.Join(dir, "etc", "config.ini"), "runDir = ../var/run\n",
			filepath.Join(dir, "var", "run"), filepath.Join(dir, "var", "run", "fastws.log")},
		{"absolute runDir", filepath.Join(dir, "etc", "config.ini"), "runDir = " + filepath.Join(dir, "abs") + "\nlogFile = logs/x.log\n",
			filepath.Join(dir, "abs"), filepath.Join(dir, "abs", "logs", "x.log")},
		{"absolute logFile", filepath.Join(dir, "etc", "config.ini"), "logFile = " + filepath.Join(dir, "x.log") + "\n",
			filepath.Join(dir, "etc", "run"), filepath.Join(dir, "x.log")},
		{"relative config path", filepath.Join("sub", "config.ini"), "",
			filepath.Join(dir, "sub", "run"), filepath.Join(dir, "sub", "run", "fastws.log")},
	}
	t.Chdir(dir)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse(tt.path, []byte("[fastws]\n"+tt.daemon+oneInstance))
			if err != nil {
				t.Fatal(err)
			}
			if c.RunDir != tt.runDir || c.LogFile != tt.logFile {
				t.Errorf("got runDir %q, logFile %q, want %q, %q", c.RunDir, c.LogFile, tt.runDir, tt.logFile)
			}
			if !filepath.IsAbs(c.Path) {
				t.Errorf("Path: got %q, want an absolute path", c.Path)
			}
		})
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "nope.ini"))
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("got %v, want an error wrapping fs.ErrNotExist", err)
	}
}

func TestSame(t *testing.T) {
	base := Instance{Section: "instance.a", Name: "A", Protocol: ProtocolWebSocket, Host: "0.0.0.0",
		Port: 1, ChildProcessCount: 2, Limits: DefaultLimits(), AllowedOrigins: []string{"https://a"}}
	tests := []struct {
		name   string
		change func(*Instance)
		same   bool
	}{
		{"identical", func(*Instance) {}, true},
		{"section", func(i *Instance) { i.Section = "instance.b" }, false},
		{"name", func(i *Instance) { i.Name = "B" }, false},
		{"protocol", func(i *Instance) { i.Protocol = ProtocolTelnet }, false},
		{"host", func(i *Instance) { i.Host = "127.0.0.1" }, false},
		{"port", func(i *Instance) { i.Port = 2 }, false},
		{"reactors", func(i *Instance) { i.ChildProcessCount = 3 }, false},
		{"limit", func(i *Instance) { i.Limits.MessageBurst = 1 }, false},
		{"origins", func(i *Instance) { i.AllowedOrigins = []string{"https://b"} }, false},
		{"no origins", func(i *Instance) { i.AllowedOrigins = nil }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := base
			o.AllowedOrigins = append([]string(nil), base.AllowedOrigins...)
			tt.change(&o)
			if got := base.Same(o); got != tt.same {
				t.Errorf("Same: got %v, want %v", got, tt.same)
			}
		})
	}
}

func TestProtocolString(t *testing.T) {
	for p, want := range map[Protocol]string{ProtocolTelnet: "telnet", ProtocolWebSocket: "websocket", 0: "Protocol(0)"} {
		if got := p.String(); got != want {
			t.Errorf("Protocol(%d).String(): got %q, want %q", int(p), got, want)
		}
	}
}

func TestErrorRender(t *testing.T) {
	tests := []struct {
		name string
		err  Error
		want string
	}{
		{"key", Error{File: "c.ini", Line: 3, Section: "fastws", Key: "k", Value: "v", Msg: "bad"}, `c.ini:3: [fastws] k = "v": bad`},
		{"empty value", Error{File: "c.ini", Line: 3, Section: "s", Key: "k", Msg: "missing", hasValue: true}, `c.ini:3: [s] k = "": missing`},
		{"missing key", Error{File: "c.ini", Line: 3, Section: "s", Key: "k", Msg: "missing"}, `c.ini:3: [s] k: missing`},
		{"section", Error{File: "c.ini", Line: 1, Section: "s", Msg: "bad"}, `c.ini:1: [s]: bad`},
		{"no line", Error{File: "c.ini", Msg: "bad"}, `c.ini: bad`},
		{"control characters", Error{File: "c.ini", Line: 1, Section: "a\nb", Key: "k\r", Value: "x\ny", Msg: "m\n"}, `c.ini:1: [a\nb] k\r = "x\ny": m\n`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.err.Error(); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}
