package config

import (
	"math"
	"net"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"gopkg.in/ini.v1"
)

// Section names.
const (
	sectionDaemon   = "fastws"
	sectionInstance = "instance" // [instance.NAME]; ini.v1's parent of the instances
	msgSections     = "allowed: [fastws], [api], [instance.NAME], [cluster]"
)

// loadOptions makes ini.v1 read config.ini like php.ini: "=" separates key
// and value, names are case-sensitive, a ";" or "#" after a space starts a
// comment ("port = 19910 ; note") while one inside a value does not
// ("a = x;y" is "x;y"), a double-quoted value is taken as is ("a = "x ; y""
// is "x ; y"), and no line continues onto the next. scan reads each
// statement with these same options, so they are set here only.
var loadOptions = ini.LoadOptions{
	KeyValueDelimiters:        "=",
	IgnoreContinuation:        true,
	SpaceBeforeInlineComment:  true,
	UnescapeValueDoubleQuotes: true,
}

// Keys of each section, in the order the shipped config.ini lists them.
var (
	daemonKeys   = []string{"runDir", "logFile", "metricsListen", "stopTimeout", "announceLimit", "maxSendBufferTotal", "maxRooms", "maxRoomsPerMember"}
	instanceKeys = []string{"instanceName", "protocol", "host", "port", "childProcessCount", "allowedOrigins", keyTLSCert, keyTLSKey}
	limitKeys    = []string{"maxPackageSize", "maxSendBuffer", "idleTimeout", "maxConnections",
		"maxConnectionsPerIP", "messagesPerSecond", "messageBurst", "bytesPerSecond", "bytesBurst",
		"pingInterval", "pongTimeout", "fanoutDelay"}
)

// parser turns one file into a Config, collecting every problem on the way.
type parser struct {
	file string // the path as given, for messages
	path string // absolute path
	dir  string // the folder a relative runDir resolves against
	data []byte
	ix   *index
	f    *ini.File // as ini.v1 parsed it
	errs Errors

	burstGiven bool // [fastws] sets bytesBurst: instances inherit it instead of deriving theirs
}

func newParser(path string, data []byte) *parser {
	p := &parser{file: path, data: data}
	abs, err := filepath.Abs(path)
	switch {
	case err != nil:
		p.errs = append(p.errs, &Error{File: path, Msg: "cannot make the path absolute: " + err.Error()})
	case path == "":
		p.dir = abs // no file: anchor relative paths at the working folder
	default:
		p.path, p.dir = abs, filepath.Dir(abs)
	}
	return p
}

// parse returns the Config, meaningful only if p.errs is empty afterwards.
func (p *parser) parse() *Config {
	ix, data := scan(p.file, p.data)
	p.ix = ix
	p.errs = append(p.errs, ix.errs...)
	f, err := ini.LoadSources(loadOptions, data)
	p.f = f
	if err != nil {
		// scan blanks every line ini.v1 refuses; this is a disagreement
		// between the two, reported without a line rather than hidden.
		p.errs = append(p.errs, &Error{File: p.file, Msg: "ini: " + strings.TrimSpace(err.Error())})
		return nil
	}

	c := &Config{
		Path:          p.path,
		MetricsListen: defaultMetricsListen,
		StopTimeout:   defaultStopTimeout,
		AnnounceLimit: defaultAnnounceLimit,
		MaxRooms:      defaultMaxRooms,

		MaxRoomsPerMember: defaultRoomsPerMember,
		Defaults:          DefaultLimits(),

		MaxSendBufferTotal: defaultSendTotal,
		Cluster:            defaultCluster(),
		API:                API{MaxConnectionsPerUser: DefaultMaxConnectionsPerUser, MaxConnections: DefaultAPIMaxConnections},
	}
	var instances []*ini.Section
	daemonSeen := false
	for _, s := range f.Sections() {
		name := s.Name()
		switch {
		case name == ini.DefaultSection:
			p.outside(s)
		case name == sectionDaemon:
			daemonSeen = true
			p.daemon(c, s)
		case name == sectionAPI:
			p.api(c, s)
		case name == sectionInstance:
			if len(s.Keys()) > 0 {
				p.sectionErr(name, "section needs a name; "+msgSections)
			}
		case name == sectionCluster:
			p.cluster(c, s)
		case strings.HasPrefix(name, sectionInstance+"."):
			instances = append(instances, s)
		default:
			p.sectionErr(name, "unknown section; "+msgSections)
		}
	}
	if !daemonSeen {
		p.resolvePaths(c, defaultRunDir, defaultLogFile)
	}
	// Instances inherit [fastws]'s limits wherever it sits in the file.
	for _, s := range instances {
		c.Instances = append(c.Instances, p.instance(c.Defaults, s))
	}
	if len(instances) == 0 {
		p.errs = append(p.errs, &Error{File: p.file, Msg: "no [instance.NAME] section; at least one is required"})
	}
	p.apiEnv(c)
	p.crossCheck(c)
	return c
}

// outside reports keys that precede every section header. An explicit
// [DEFAULT] header is an unknown section instead.
func (p *parser) outside(s *ini.Section) {
	for _, k := range p.ix.order[implicitSection] {
		p.keyErr("", k, p.value(s, k, implicitSection), "outside any section; put it under [fastws] or [instance.NAME]")
	}
	if p.ix.headerLine(ini.DefaultSection) > 0 {
		p.sectionErr(ini.DefaultSection, "unknown section; "+msgSections)
	}
}

// daemon reads [fastws]: the daemon keys and the default limits.
func (p *parser) daemon(c *Config, s *ini.Section) {
	runDir, logFile := defaultRunDir, defaultLogFile
	given, ok := p.walk(s, slices.Concat(daemonKeys, limitKeys),
		func(key, v string) string {
			switch key {
			case "runDir":
				if strings.TrimSpace(v) == "" {
					return "must not be empty (a folder, relative to the config file's folder; default " + defaultRunDir + ")"
				}
				runDir = strings.TrimSpace(v)
			case "logFile":
				if strings.TrimSpace(v) == "" {
					return "must not be empty (a file, relative to runDir; default " + defaultLogFile + ")"
				}
				logFile = strings.TrimSpace(v)
			case "metricsListen":
				if strings.TrimSpace(v) == "" {
					c.MetricsListen = ""
					break
				}
				addr, ok := parseListen(v)
				if !ok {
					return msgListen
				}
				c.MetricsListen = addr
			case "stopTimeout":
				d, ok := parseDuration(v)
				switch {
				case !ok:
					return "not a duration (Go syntax, e.g. 10s, 1m30s)"
				case d <= 0:
					return "must be positive (Go duration, e.g. 10s)"
				}
				c.StopTimeout = d
			case "announceLimit":
				n, ok := parseInt(v, 0, math.MaxInt)
				if !ok {
					return "must be a whole number >= 0 (room size up to which joins and leaves are announced; 0 = always)"
				}
				c.AnnounceLimit = n
			case "maxSendBufferTotal":
				n, ok := parseSize(v)
				switch {
				case !ok:
					return msgSize + "; 0 = unlimited"
				case n != 0 && n < minSendTotal:
					return "must be 0 (unlimited) or at least 64K (bytes queued for all clients together, e.g. 256M)"
				}
				c.MaxSendBufferTotal = n
			case "maxRooms":
				n, ok := parseInt(v, 0, math.MaxInt32)
				if !ok {
					return "must be a whole number >= 0 (rooms that may exist at once, the lobby aside; 0 = unlimited)"
				}
				c.MaxRooms = n
			case "maxRoomsPerMember":
				n, ok := parseInt(v, 0, math.MaxInt32)
				if !ok {
					return "must be a whole number >= 0 (rooms one member may be in, the lobby aside; 0 = unlimited)"
				}
				c.MaxRoomsPerMember = n
			default:
				return setLimit(&c.Defaults, key, v)
			}
			return ""
		})
	p.resolvePaths(c, runDir, logFile)
	p.burstGiven = given["bytesBurst"]
	if !p.burstGiven {
		c.Defaults.BytesBurst = defaultBytesBurst(c.Defaults)
	}
	p.checkLimits(s, c.Defaults, given, ok)
}

// resolvePaths anchors runDir at the config file's folder and logFile at
// runDir, so that the daemon never depends on its working folder.
func (p *parser) resolvePaths(c *Config, runDir, logFile string) {
	if !filepath.IsAbs(runDir) {
		runDir = filepath.Join(p.dir, runDir)
	}
	if !filepath.IsAbs(logFile) {
		logFile = filepath.Join(runDir, logFile)
	}
	c.RunDir, c.LogFile = filepath.Clean(runDir), filepath.Clean(logFile)
}

// instance reads one [instance.NAME] section. Fields whose value is bad or
// missing are left zero (Host "", Port 0, Name ""), which crossCheck skips.
func (p *parser) instance(defaults Limits, s *ini.Section) Instance {
	in := Instance{
		Section:           s.Name(),
		Host:              defaultHost,
		ChildProcessCount: defaultChildProcessCount(),
		Limits:            defaults,
	}
	if !validInstanceName(strings.TrimPrefix(in.Section, sectionInstance+".")) {
		p.sectionErr(in.Section, "bad section name; want [instance.NAME] with a NAME of letters, digits, '-', '_' or '.'")
	}
	var origins string
	given, ok := p.walk(s, slices.Concat(instanceKeys, limitKeys),
		func(key, v string) string {
			v = strings.TrimSpace(v)
			switch key {
			case "instanceName":
				if v == "" || len(v) > 64 || strings.ContainsFunc(v, unicode.IsControl) {
					return "must be 1-64 printable characters (a unique name, e.g. FastWS-Telnet)"
				}
				in.Name = v
			case "protocol":
				proto, ok := parseProtocol(v)
				if !ok {
					return msgProtocol
				}
				in.Protocol = proto
			case "host":
				host, ok := parseHost(v)
				if !ok {
					in.Host = ""
					return msgHost
				}
				in.Host = host
			case "port":
				port, ok := parseInt(v, 1, 65535)
				if !ok {
					return msgPort
				}
				in.Port = port
			case "childProcessCount":
				n, ok := parseInt(v, 1, maxChildProcesses)
				if !ok {
					return "must be 1-" + strconv.Itoa(maxChildProcesses)
				}
				in.ChildProcessCount = n
			case "allowedOrigins":
				list, ok := parseOrigins(v)
				if !ok {
					return msgOrigins
				}
				origins, in.AllowedOrigins = v, list
			case keyTLSCert, keyTLSKey:
				return p.setTLSKey(&in, key, v)
			default:
				return setLimit(&in.Limits, key, v)
			}
			return ""
		})
	for _, req := range []struct{ key, msg string }{
		{"instanceName", "missing (a unique name, e.g. FastWS-Telnet)"},
		{"protocol", "missing (telnet, websocket)"},
		{"port", "missing (1-65535)"},
	} {
		if !given[req.key] {
			p.errs = append(p.errs, &Error{File: p.file, Line: p.ix.headerLine(in.Section),
				Section: in.Section, Key: req.key, Msg: req.msg})
		}
	}
	if !given["bytesBurst"] && !p.burstGiven {
		in.Limits.BytesBurst = defaultBytesBurst(in.Limits)
	}
	if len(in.AllowedOrigins) > 0 && in.Protocol == ProtocolTelnet {
		p.keyErr(in.Section, "allowedOrigins", origins, "only allowed with protocol = websocket")
	}
	p.checkTLSPair(&in)
	p.checkLimits(s, in.Limits, given, ok)
	return in
}

// validInstanceName reports whether NAME in [instance.NAME] is non-empty
// and made of letters, digits, '-', '_' and '.'.
func validInstanceName(name string) bool {
	if name == "" {
		return false
	}
	for _, r := range name {
		if !unicode.IsLetter(r) && !unicode.IsDigit(r) && r != '-' && r != '_' && r != '.' {
			return false
		}
	}
	return true
}

// setOffDuration parses v, a duration where 0 turns the feature off, into
// *d, or returns what is wrong with examples of what is allowed.
func setOffDuration(d *time.Duration, v, examples, example string) string {
	x, ok := parseDuration(v)
	switch {
	case !ok:
		return "not a duration (Go syntax, e.g. " + examples + "; 0 = off)"
	case x < 0:
		return "must not be negative (Go duration, e.g. " + example + "; 0 = off)"
	}
	*d = x
	return ""
}

// setLimit sets one limit key; it returns what is wrong with v, or "".
func setLimit(l *Limits, key, v string) string {
	switch key {
	case "maxPackageSize":
		n, ok := parseSize(v)
		switch {
		case !ok:
			return msgSize
		case n < minPackageSize || n > maxPackageSize:
			return "must be 16 to 64M (bytes or with K, M, G suffix, e.g. 64K)"
		}
		l.MaxPackageSize = n
	case "maxSendBuffer":
		n, ok := parseSize(v)
		switch {
		case !ok:
			return msgSize
		case n < minSendBuffer:
			return "must be at least 4K (bytes or with K, M, G suffix, e.g. 1M)"
		}
		l.MaxSendBuffer = n
	case "idleTimeout":
		return setOffDuration(&l.IdleTimeout, v, "10m, 1h30m", "10m")
	case "pingInterval":
		return setOffDuration(&l.PingInterval, v, "30s", "30s")
	case "pongTimeout":
		return setOffDuration(&l.PongTimeout, v, "30s", "30s")
	case "fanoutDelay":
		if msg := setOffDuration(&l.FanoutDelay, v, "100ms", "100ms"); msg != "" {
			return msg
		}
		if l.FanoutDelay > maxFanoutDelay {
			return "must be at most 1s (Go duration, e.g. 100ms; 0 = off)"
		}
	case "maxConnections", "maxConnectionsPerIP":
		n, ok := parseInt(v, 0, math.MaxInt)
		if !ok {
			return "must be a whole number >= 0 (0 = unlimited)"
		}
		if key == "maxConnections" {
			l.MaxConnections = n
		} else {
			l.MaxConnectionsPerIP = n
		}
	case "messagesPerSecond":
		f, ok := parseRate(v)
		if !ok {
			return "must be a number >= 0 (messages per second per connection, e.g. 50 or 0.5; 0 = unlimited)"
		}
		l.MessagesPerSecond = f
	case "messageBurst":
		n, ok := parseInt(v, 1, math.MaxInt)
		if !ok {
			return "must be a whole number >= 1 (messages a connection may send at once)"
		}
		l.MessageBurst = n
	case "bytesPerSecond", "bytesBurst":
		n, ok := parseSize(v)
		if !ok {
			return msgSize + "; 0 = unlimited"
		}
		if key == "bytesPerSecond" {
			l.BytesPerSecond = n
		} else {
			l.BytesBurst = n
		}
	}
	return ""
}

// checkLimits checks what no single limit key can: a send buffer must hold
// the largest message. Only a section that sets one of the two keys, both
// well-formed, is checked, so an inherited problem is reported once, where
// it is written.
func (p *parser) checkLimits(s *ini.Section, l Limits, given, ok map[string]bool) {
	p.checkBytesBurst(s, l, given, ok)
	if !given["maxPackageSize"] && !given["maxSendBuffer"] ||
		given["maxPackageSize"] && !ok["maxPackageSize"] ||
		given["maxSendBuffer"] && !ok["maxSendBuffer"] ||
		l.MaxSendBuffer >= l.MaxPackageSize {
		return
	}
	if given["maxSendBuffer"] {
		p.keyErr(s.Name(), "maxSendBuffer", p.value(s, "maxSendBuffer", s.Name()),
			"must be at least maxPackageSize ("+formatSize(l.MaxPackageSize)+")")
		return
	}
	p.keyErr(s.Name(), "maxPackageSize", p.value(s, "maxPackageSize", s.Name()),
		"must be at most maxSendBuffer ("+formatSize(l.MaxSendBuffer)+")")
}

// checkBytesBurst checks that a maximal line can pass the byte limit
// (bytesBurst >= maxPackageSize) and that one sender's burst cannot fill
// a reader's send buffer (bytesBurst < maxSendBuffer). A derived
// bytesBurst is not checked: it is as close to both as the two allow. As
// in checkLimits, a problem is reported in the section that writes one
// of the keys involved, at the key it writes.
func (p *parser) checkBytesBurst(s *ini.Section, l Limits, given, ok map[string]bool) {
	if !given["bytesBurst"] && !p.burstGiven || l.BytesPerSecond == 0 || l.BytesBurst == 0 {
		return
	}
	for _, k := range []string{"bytesBurst", "bytesPerSecond", "maxPackageSize", "maxSendBuffer"} {
		if given[k] && !ok[k] {
			return
		}
	}
	burst := formatSize(l.BytesBurst)
	switch {
	case l.BytesBurst >= l.MaxPackageSize:
	case given["bytesBurst"]:
		p.keyErr(s.Name(), "bytesBurst", p.value(s, "bytesBurst", s.Name()),
			"must be at least maxPackageSize ("+formatSize(l.MaxPackageSize)+"), or the longest line could never be sent; 0 = unlimited")
	case given["maxPackageSize"]:
		p.keyErr(s.Name(), "maxPackageSize", p.value(s, "maxPackageSize", s.Name()),
			"must be at most bytesBurst ("+burst+"), or the longest line could never be sent")
	case given["bytesPerSecond"]:
		p.keyErr(s.Name(), "bytesPerSecond", p.value(s, "bytesPerSecond", s.Name()),
			"turns on a bytesBurst ("+burst+") under maxPackageSize ("+formatSize(l.MaxPackageSize)+"); set bytesBurst here too")
	}
	switch {
	case l.BytesBurst < l.MaxSendBuffer:
	case given["bytesBurst"]:
		p.keyErr(s.Name(), "bytesBurst", p.value(s, "bytesBurst", s.Name()),
			"must be less than maxSendBuffer ("+formatSize(l.MaxSendBuffer)+"), or one sender's burst fills a reader's send buffer; 0 = unlimited")
	case given["maxSendBuffer"]:
		p.keyErr(s.Name(), "maxSendBuffer", p.value(s, "maxSendBuffer", s.Name()),
			"must be more than bytesBurst ("+burst+"), or one sender's burst fills a reader's send buffer")
	case given["bytesPerSecond"]:
		p.keyErr(s.Name(), "bytesPerSecond", p.value(s, "bytesPerSecond", s.Name()),
			"turns on a bytesBurst ("+burst+") not under maxSendBuffer ("+formatSize(l.MaxSendBuffer)+"); set bytesBurst here too")
	}
}

// listener is an address some section already binds.
type listener struct {
	key     bindKey
	addr    string
	section string
}

// crossCheck finds what no single section shows: two instances with one
// name, two listeners on one address.
func (p *parser) crossCheck(c *Config) {
	names := map[string]string{} // instanceName -> section
	var bound []listener
	for _, in := range c.Instances {
		if in.Name != "" {
			if other, dup := names[in.Name]; dup {
				p.keyErr(in.Section, "instanceName", in.Name, "already used by ["+other+"]; names must be unique")
			} else {
				names[in.Name] = in.Section
			}
		}
		if in.Host == "" || in.Port == 0 {
			continue
		}
		k, ok := newBindKey(in.Host, in.Port)
		if !ok {
			continue
		}
		if o, clash := findOverlap(bound, k); clash {
			p.keyErr(in.Section, "port", p.value(p.f.Section(in.Section), "port", in.Section), overlapMsg(in.Addr(), o))
			continue
		}
		bound = append(bound, listener{k, in.Addr(), in.Section})
	}
	if c.MetricsListen == "" {
		return
	}
	host, portStr, err := net.SplitHostPort(c.MetricsListen)
	port, _ := strconv.Atoi(portStr)
	if err != nil || port == 0 {
		return
	}
	if k, ok := newBindKey(host, port); ok {
		if o, clash := findOverlap(bound, k); clash {
			p.keyErr(sectionDaemon, "metricsListen", c.MetricsListen, overlapMsg(c.MetricsListen, o))
		}
	}
}

// findOverlap returns the first listener whose address overlaps k.
func findOverlap(bound []listener, k bindKey) (listener, bool) {
	for _, l := range bound {
		if l.key.overlaps(k) {
			return l, true
		}
	}
	return listener{}, false
}

// overlapMsg says which section already binds an address.
func overlapMsg(addr string, owner listener) string {
	if addr == owner.addr {
		return "address " + addr + " already used by [" + owner.section + "]"
	}
	return "address " + addr + " overlaps " + owner.addr + " of [" + owner.section + "]"
}

// walk calls set for each key of s in file order and reports unknown keys
// and the messages set returns. It returns which allowed keys are given and
// which of those are well-formed.
func (p *parser) walk(s *ini.Section, allowed []string, set func(key, value string) string) (given, ok map[string]bool) {
	given, ok = map[string]bool{}, map[string]bool{}
	for _, k := range s.Keys() {
		key, v := k.Name(), p.value(s, k.Name(), s.Name())
		if !slices.Contains(allowed, key) {
			p.keyErr(s.Name(), key, v, unknownKeyMsg(key, allowed))
			continue
		}
		given[key] = true
		if msg := set(key, v); msg != "" {
			p.keyErr(s.Name(), key, v, msg)
			continue
		}
		ok[key] = true
	}
	return given, ok
}

// unknownKeyMsg lists the allowed keys, pointing at a near miss in case.
func unknownKeyMsg(key string, allowed []string) string {
	msg := "unknown key; allowed: " + strings.Join(allowed, ", ")
	for _, a := range allowed {
		if strings.EqualFold(a, key) {
			return "unknown key (did you mean " + a + "? keys are case-sensitive); allowed: " + strings.Join(allowed, ", ")
		}
	}
	return msg
}

// value returns a key's value as ini.v1 read it, except that a value that
// is only a comment ("key = ; note") is empty: ini.v1 strips an inline
// comment only after a space, and the value has none before it.
func (p *parser) value(s *ini.Section, key, section string) string {
	if p.ix.key(section, key).commentOnly {
		return ""
	}
	k, err := s.GetKey(key)
	if err != nil {
		return ""
	}
	return k.Value()
}

// keyErr reports a bad value at the line of its key.
func (p *parser) keyErr(section, key, value, msg string) {
	p.errs = append(p.errs, &Error{File: p.file, Line: p.ix.key(section, key).line,
		Section: section, Key: key, Value: value, Msg: msg, hasValue: true})
}

// sectionErr reports a problem with a whole section at its header line.
func (p *parser) sectionErr(section, msg string) {
	p.errs = append(p.errs, &Error{File: p.file, Line: p.ix.headerLine(section), Section: section, Msg: msg})
}
