package config

import (
	"fmt"
	"net"
	"os"
	"reflect"
	"runtime"
	"strconv"
	"time"
)

// Config is a validated config.ini. Load and Parse return a new one each
// time and nothing in this package modifies it afterwards, so it can be
// shared between goroutines as long as no one writes to it.
type Config struct {
	Path          string        // absolute path of the file
	RunDir        string        // absolute; default "./run" resolved against the config file's folder
	LogFile       string        // absolute; default "fastws.log" resolved against RunDir
	MetricsListen string        // host:port or "" (off); default "127.0.0.1:19990"
	StopTimeout   time.Duration // default 10s
	AnnounceLimit int           // announceLimit: joins and leaves are announced while the room has at most this many members; default 1000, 0 = always
	// MaxSendBufferTotal (maxSendBufferTotal) bounds the bytes queued for
	// every client of the daemon together; past it the clients holding
	// the most are disconnected as slow consumers. Default 256M; 0 =
	// unlimited; else at least 64K. Daemon-wide: [fastws] only.
	MaxSendBufferTotal int
	// MaxRooms (maxRooms) is the most rooms, the lobby aside, that may
	// exist at once in the daemon; default 10000, 0 = unlimited.
	// MaxRoomsPerMember (maxRoomsPerMember) is the most rooms, the lobby
	// aside, one member may be in; default 16, 0 = unlimited. [fastws]
	// only: rooms are shared by every instance.
	MaxRooms          int
	MaxRoomsPerMember int
	Defaults          Limits     // the [fastws] limit keys
	Instances         []Instance // in file order
	API               API        // [api]: see api.go
	Cluster           Cluster    // [cluster]; NATS "" = a single node
}

// Limits are the per-connection and per-instance limits the daemon
// enforces. [fastws] sets them for every instance; an [instance.NAME]
// section may override each one.
type Limits struct {
	MaxPackageSize      int           // maxPackageSize, bytes, default 64K (65536); allowed 16..64M
	MaxSendBuffer       int           // maxSendBuffer, bytes, default 1M; allowed >= 4K and >= MaxPackageSize
	IdleTimeout         time.Duration // idleTimeout, default 10m; 0 = off
	MaxConnections      int           // maxConnections per instance, default 100000; 0 = unlimited
	MaxConnectionsPerIP int           // maxConnectionsPerIP per instance, default 1000; 0 = unlimited
	MessagesPerSecond   float64       // messagesPerSecond, default 50; 0 = unlimited
	MessageBurst        int           // messageBurst, default 100 (token bucket size); >= 1
	PingInterval        time.Duration // pingInterval, websocket keepalive ping period, default 30s; 0 = off
	PongTimeout         time.Duration // pongTimeout, how long a ping may go unanswered, default 10s
	// BytesPerSecond and BytesBurst limit the bytes one connection sends
	// as MessagesPerSecond and MessageBurst limit its lines; either 0 =
	// unlimited. bytesPerSecond defaults to 64K. bytesBurst defaults to
	// a quarter of maxSendBuffer, at most 256K and at least
	// maxPackageSize (256K with the default limits), so that one sender's
	// burst never fills a reading client's send buffer; when given, it
	// must be at least maxPackageSize and less than maxSendBuffer.
	BytesPerSecond int
	BytesBurst     int
	// FanoutDelay (fanoutDelay) is the most a room line may wait while a
	// reactor paces a heavy fan-out (see server/pace.go); 0 = never
	// pace. Default 100ms, at most 1s.
	FanoutDelay time.Duration
}

// Defaults and bounds of the daemon keys and limits.
const (
	defaultRunDir         = "./run"
	defaultLogFile        = "fastws.log"
	defaultMetricsListen  = "127.0.0.1:19990"
	defaultStopTimeout    = 10 * time.Second
	defaultAnnounceLimit  = 1000
	defaultMaxRooms       = 10000
	defaultRoomsPerMember = 16
	defaultSendTotal      = 256 << 20
	minSendTotal          = 64 << 10
	defaultHost           = "0.0.0.0"

	minPackageSize    = 16
	maxPackageSize    = 64 << 20
	minSendBuffer     = 4 << 10
	maxBytesBurst     = 256 << 10 // the default bytesBurst, unless maxSendBuffer is under 1M
	maxChildProcesses = 256       // gnet's most event loops per engine (gfd.EventLoopIndexMax); it runs no more
	maxFanoutDelay    = time.Second
)

// DefaultLimits returns the limits that apply when config.ini sets none.
func DefaultLimits() Limits {
	return Limits{
		MaxPackageSize:      64 << 10,
		MaxSendBuffer:       1 << 20,
		IdleTimeout:         10 * time.Minute,
		MaxConnections:      100000,
		MaxConnectionsPerIP: 1000,
		MessagesPerSecond:   50,
		MessageBurst:        100,
		PingInterval:        30 * time.Second,
		PongTimeout:         10 * time.Second,
		FanoutDelay:         100 * time.Millisecond,
		BytesPerSecond:      64 << 10,
		BytesBurst:          maxBytesBurst,
	}
}

// defaultBytesBurst is bytesBurst when config.ini sets none: a quarter of
// the send buffer, so that four senders bursting at once are needed to
// fill a reader's, but at least a line of maxPackageSize.
func defaultBytesBurst(l Limits) int {
	return max(l.MaxPackageSize, min(maxBytesBurst, l.MaxSendBuffer/4))
}

// Instance is one [instance.NAME] section: a listener with its own protocol
// and reactors. Every instance's connections join the same chat room.
type Instance struct {
	Section           string   // "instance.telnet"
	Name              string   // instanceName, required, unique across instances
	Protocol          Protocol // protocol: telnet | websocket (required)
	Host              string   // host, default "0.0.0.0"; an IP literal or "localhost"
	Port              int      // port, required, 1-65535
	ChildProcessCount int      // childProcessCount, default runtime.NumCPU(); 1..256
	Limits            Limits   // [fastws] limits overridden by this section's keys

	// AllowedOrigins lists the browser origins (lower-case
	// "scheme://host[:port]") allowed to open a WebSocket; empty allows
	// any. Only websocket instances set it (allowedOrigins).
	AllowedOrigins []string

	// TLSCert and TLSKey (tlsCert, tlsKey) are the absolute paths of the
	// PEM certificate (the leaf, then its chain) and private key the
	// instance serves TLS with; both empty for plain text. See tls.go.
	TLSCert, TLSKey string
}

// Addr returns the instance's listen address, host:port.
func (i Instance) Addr() string {
	return net.JoinHostPort(i.Host, strconv.Itoa(i.Port))
}

// Network returns the network to listen on for Host: "tcp4" for an IPv4
// address, 0.0.0.0 included, so that it means IPv4 only (Go's "tcp"
// would listen on both); "tcp" otherwise, where :: is IPv6 and, where
// the system allows, dual-stack.
func (i Instance) Network() string {
	if ip := net.ParseIP(i.Host); ip != nil && ip.To4() != nil {
		return "tcp4"
	}
	return "tcp"
}

// Same reports whether i and o are equal in every field, so that a reload
// can leave an unchanged instance (and its connections) alone; any other
// difference restarts it. The whole struct is compared, not a list of
// fields, so that a field added later (a TLS certificate, say) restarts
// the instance unless Same is taught otherwise, and a reload cannot miss
// it. A nil and an empty AllowedOrigins both allow any origin, so they
// are alike. TestSameFields lists every field with whether it restarts.
func (i Instance) Same(o Instance) bool {
	if len(i.AllowedOrigins) == 0 {
		i.AllowedOrigins = nil
	}
	if len(o.AllowedOrigins) == 0 {
		o.AllowedOrigins = nil
	}
	return reflect.DeepEqual(i, o)
}

// defaultChildProcessCount is one reactor per CPU, within the allowed range.
func defaultChildProcessCount() int {
	return min(max(runtime.NumCPU(), 1), maxChildProcesses)
}

// Protocol is the wire protocol of an instance.
type Protocol int

// The protocols an instance can speak. The zero Protocol is none of them.
const (
	ProtocolTelnet    Protocol = iota + 1 // lines over TCP
	ProtocolWebSocket                     // RFC 6455, plus the built-in chat page
)

// String returns the protocol's config.ini spelling.
func (p Protocol) String() string {
	switch p {
	case ProtocolTelnet:
		return "telnet"
	case ProtocolWebSocket:
		return "websocket"
	}
	return "Protocol(" + strconv.Itoa(int(p)) + ")"
}

// parseProtocol is the inverse of Protocol.String.
func parseProtocol(s string) (Protocol, bool) {
	switch s {
	case "telnet":
		return ProtocolTelnet, true
	case "websocket":
		return ProtocolWebSocket, true
	}
	return 0, false
}

// Load reads and validates the config file at path. A file that cannot be
// read yields the *os.PathError, wrapped; an invalid file yields Errors.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load config: %w", err)
	}
	return Parse(path, data)
}

// Parse validates config.ini content. The path names the file in error
// messages and anchors relative paths (runDir resolves against its folder);
// Parse does not read it. When data is invalid, the error is Errors, listing
// every problem found, in line order.
func Parse(path string, data []byte) (*Config, error) {
	p := newParser(path, data)
	c := p.parse()
	if len(p.errs) > 0 {
		p.errs.sortByLine()
		return nil, p.errs
	}
	return c, nil
}
