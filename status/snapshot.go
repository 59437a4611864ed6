package status

import (
	"path/filepath"
	"time"
)

// SocketName is the status socket's file name inside runDir.
const SocketName = "fastws.sock"

// SocketPath returns the status socket's path for runDir.
func SocketPath(runDir string) string { return filepath.Join(runDir, SocketName) }

// Snapshot is what "fastws status" shows: the daemon and each of its
// instances, as of one moment. Its JSON form is the documented, stable output
// of "fastws status --json"; see SCHEMA.md and the package documentation.
// The daemon fills it; this package only serves and renders it.
type Snapshot struct {
	Daemon    Daemon     `json:"daemon"`
	Instances []Instance `json:"instances"` // in config order; [] when none
	Cluster   Cluster    `json:"cluster"`   // see Cluster
}

// Daemon describes the daemon process.
type Daemon struct {
	PID           int       `json:"pid"`
	Version       string    `json:"version"`       // fastws version, e.g. "0.1.0"
	GoVersion     string    `json:"goVersion"`     // runtime.Version(), e.g. "go1.26.8"
	Config        string    `json:"config"`        // absolute path of the config file in use
	Started       time.Time `json:"started"`       // RFC 3339, UTC on the wire
	UptimeSeconds float64   `json:"uptimeSeconds"` // seconds since Started
	RSSBytes      uint64    `json:"rssBytes"`      // resident set size; see ReadRSS
	HeapBytes     uint64    `json:"heapBytes"`     // Go heap in use (runtime.MemStats.HeapAlloc)
	Goroutines    int       `json:"goroutines"`
	Members       int       `json:"members"`      // chat room members online now
	Rooms         int       `json:"rooms"`        // rooms that exist now, the lobby not counted
	OpenFiles     int       `json:"openFiles"`    // open file descriptors; see OpenFiles
	MaxOpenFiles  uint64    `json:"maxOpenFiles"` // soft RLIMIT_NOFILE; see MaxOpenFiles
	// StartedBy says who runs the daemon, and so who restarts it: "start -d"
	// (fastws restart can), "systemd" (systemctl restart ServiceUnit), or
	// "foreground" (fastws start in a terminal, or another supervisor).
	StartedBy   string `json:"startedBy"`
	ServiceUnit string `json:"serviceUnit"` // the systemd unit, such as "fastws.service"; "" if not under systemd
}

// Instance describes one config.ini instance: a listener and its reactors.
// Counters run from the instance's start; a reload that restarts an
// instance resets them.
type Instance struct {
	Name             string `json:"name"`             // instanceName
	Protocol         string `json:"protocol"`         // "telnet" or "websocket"
	Listen           string `json:"listen"`           // bound host:port
	Reactors         int    `json:"reactors"`         // gnet event loops (childProcessCount)
	Connections      int64  `json:"connections"`      // open now
	ConnectionsTotal uint64 `json:"connectionsTotal"` // accepted since start
	MessagesIn       uint64 `json:"messagesIn"`       // client lines or frames handled
	MessagesOut      uint64 `json:"messagesOut"`      // lines or frames written
	Writes           uint64 `json:"writes"`           // writes to clients' sockets: messagesOut/writes is the lines one write carries
	BytesIn          uint64 `json:"bytesIn"`
	BytesOut         uint64 `json:"bytesOut"`
	Errors           uint64 `json:"errors"` // socket errors, protocol errors and refusals

	Listening           bool              `json:"listening"`           // accepting connections
	BroadcastDeliveries uint64            `json:"broadcastDeliveries"` // room-wide chat messages delivered, one per recipient
	PrivateMessages     uint64            `json:"privateMessages"`     // private messages delivered to their recipient
	SlowConsumers       uint64            `json:"slowConsumers"`       // disconnected past maxSendBuffer
	AcceptStalls        uint64            `json:"acceptStalls"`        // times accepting paused for lack of file descriptors
	ClosedByReason      map[string]uint64 `json:"closedByReason"`      // closed connections by close reason; every reason present
	ProtocolErrors      map[string]uint64 `json:"protocolErrors"`      // protocol errors and refused connections by kind

	// Error is why the instance does not run what the config in force
	// says, or "": it is down (not listening) because it could not start,
	// or, listening, it keeps its previous settings because a reload could
	// not start their replacement. A reload that starts it clears it.
	Error string `json:"error"`
}

// Closed returns the connections closed since start: the sum of
// ClosedByReason, where every close is counted once.
func (i Instance) Closed() uint64 {
	var n uint64
	for _, c := range i.ClosedByReason {
		n += c
	}
	return n
}

// Connection describes one client connection.
type Connection struct {
	UID         uint64    `json:"uid"`
	Nick        string    `json:"nick"`  // "" until the client sets one
	User        string    `json:"user"`  // the user id it authenticated as (a token's sub), "" if anonymous
	Rooms       []string  `json:"rooms"` // the rooms it is in, in join order, the lobby first while it is in it
	Instance    string    `json:"instance"`
	Reactor     int       `json:"reactor"` // event loop index within the instance, from 0
	Remote      string    `json:"remote"`  // the client's host:port
	Since       time.Time `json:"since"`   // connected at; RFC 3339, UTC on the wire
	MessagesIn  uint64    `json:"messagesIn"`
	MessagesOut uint64    `json:"messagesOut"`
	BytesQueued int       `json:"bytesQueued"` // written by the daemon, not yet taken by the socket
}

// Connections is the JSON document of "fastws connections --json".
type Connections struct {
	Connections []Connection `json:"connections"` // by uid; [] when none
}

// wire returns s as it is sent: times in UTC and no null arrays or
// objects, so that the JSON does not depend on the daemon's time zone or on
// nil slices and maps.
func (s Snapshot) wire() Snapshot {
	s.Daemon.Started = s.Daemon.Started.UTC()
	s.Instances = append(make([]Instance, 0, len(s.Instances)), s.Instances...)
	s.Cluster.Nodes = append(make([]ClusterNode, 0, len(s.Cluster.Nodes)), s.Cluster.Nodes...)
	for k := range s.Instances {
		i := &s.Instances[k]
		if i.ClosedByReason == nil {
			i.ClosedByReason = map[string]uint64{}
		}
		if i.ProtocolErrors == nil {
			i.ProtocolErrors = map[string]uint64{}
		}
	}
	return s
}

// wireConnections is the Connections counterpart of Snapshot.wire.
func wireConnections(cs []Connection) Connections {
	out := make([]Connection, len(cs))
	for i, c := range cs {
		c.Since = c.Since.UTC()
		if c.Rooms == nil {
			c.Rooms = []string{}
		}
		out[i] = c
	}
	return Connections{Connections: out}
}
