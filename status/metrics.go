package status

import (
	"slices"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Collector exposes the daemon's [Snapshot] as Prometheus metrics. It keeps
// no counters of its own: every scrape asks the daemon for a snapshot, so
// the numbers are those "fastws status" shows, read from the same per-reactor
// atomic counters, and counting costs nothing more on the hot path.
//
// Per instance (label instance = instanceName):
//
//	fastws_connections                        gauge    open now
//	fastws_connections_accepted_total         counter
//	fastws_connections_closed_total{reason}   counter  every close reason, 0 included
//	fastws_messages_received_total            counter  lines (telnet) or messages (websocket)
//	fastws_messages_sent_total                counter
//	fastws_received_bytes_total               counter
//	fastws_sent_bytes_total                   counter
//	fastws_broadcast_deliveries_total         counter  one per recipient
//	fastws_private_messages_total             counter  delivered to the recipient
//	fastws_slow_consumer_disconnects_total    counter
//	fastws_accept_stalls_total                counter
//	fastws_protocol_errors_total{kind}        counter  refused connections included
//	fastws_instance_up                        gauge    1 while it accepts connections
//
// For the daemon: fastws_room_members (gauge) and
// fastws_build_info{version,goversion} (always 1).
type Collector struct {
	snapshot func() Snapshot
	reasons  []string

	connections, accepted, closed          *prometheus.Desc
	msgsIn, msgsOut, writes                *prometheus.Desc
	bytesIn, bytesOut                      *prometheus.Desc
	broadcasts, privates, slow             *prometheus.Desc
	stalls                                 *prometheus.Desc
	protoErrors, up, members, rooms, build *prometheus.Desc

	more    []prometheus.Collector // see Add
	cluster clusterMetrics
}

// Add makes c also expose x's metrics (the daemon's API counters, kept
// where they are counted). It must be called before c is registered.
func (c *Collector) Add(x prometheus.Collector) { c.more = append(c.more, x) }

// NewCollector returns a Collector that calls snapshot on every scrape;
// snapshot must be safe for concurrent use. closeReasons names every close
// reason, so that fastws_connections_closed_total shows each one at 0
// before the first close of that kind (rate() needs a first sample);
// reasons the snapshot has beyond them are exposed too.
func NewCollector(snapshot func() Snapshot, closeReasons []string) *Collector {
	inst := []string{"instance"}
	desc := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc("fastws_"+name, help, labels, nil)
	}
	return &Collector{
		snapshot:    snapshot,
		reasons:     slices.Clone(closeReasons),
		connections: desc("connections", "Client connections open now.", inst...),
		accepted:    desc("connections_accepted_total", "Client connections accepted since the instance started.", inst...),
		closed:      desc("connections_closed_total", "Client connections closed, by close reason.", "instance", "reason"),
		msgsIn:      desc("messages_received_total", "Lines (telnet) or messages (websocket) received from clients and handled.", inst...),
		msgsOut:     desc("messages_sent_total", "Lines (telnet) or messages (websocket) written to clients.", inst...),
		writes:      desc("writes_total", "Writes to clients' sockets; messages_sent_total over it is the messages one write carries.", inst...),
		bytesIn:     desc("received_bytes_total", "Bytes received from clients.", inst...),
		bytesOut:    desc("sent_bytes_total", "Bytes written to clients.", inst...),
		broadcasts:  desc("broadcast_deliveries_total", "Room-wide chat messages delivered to clients, one per recipient.", inst...),
		privates:    desc("private_messages_total", "Private messages delivered to their recipient.", inst...),
		slow:        desc("slow_consumer_disconnects_total", "Connections closed because their unsent output passed maxSendBuffer.", inst...),
		stalls:      desc("accept_stalls_total", "Times accepting paused because the process ran out of file descriptors.", inst...),
		protoErrors: desc("protocol_errors_total", "Protocol errors and refused connections, by kind.", "instance", "kind"),
		up:          desc("instance_up", "Whether the instance accepts connections (1) or not (0).", inst...),
		members:     desc("room_members", "Chat room members online now, across all instances."),
		rooms:       desc("rooms", "Rooms that exist now (/join), the lobby not counted."),
		cluster:     newClusterMetrics(),
		build:       desc("build_info", "A metric with a constant '1' value labeled by the fastws version and the Go version that built it.", "version", "goversion"),
	}
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{
		c.connections, c.accepted, c.closed, c.msgsIn, c.msgsOut, c.writes, c.bytesIn, c.bytesOut,
		c.broadcasts, c.privates, c.slow, c.stalls, c.protoErrors, c.up, c.members, c.rooms, c.build,
	} {
		ch <- d
	}
	for _, x := range c.more {
		x.Describe(ch)
	}
	c.cluster.describe(ch)
}

// Collect implements prometheus.Collector: it takes one snapshot and sends
// its metrics. It is safe for concurrent use if the snapshot function is.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	for _, x := range c.more {
		x.Collect(ch)
	}
	s := c.snapshot()
	ch <- prometheus.MustNewConstMetric(c.build, prometheus.GaugeValue, 1, s.Daemon.Version, s.Daemon.GoVersion)
	ch <- prometheus.MustNewConstMetric(c.members, prometheus.GaugeValue, float64(s.Daemon.Members))
	ch <- prometheus.MustNewConstMetric(c.rooms, prometheus.GaugeValue, float64(s.Daemon.Rooms))
	c.cluster.collect(ch, s.Cluster)
	for _, i := range s.Instances {
		gauge := func(d *prometheus.Desc, v float64) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, i.Name)
		}
		counter := func(d *prometheus.Desc, v uint64, label ...string) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), append([]string{i.Name}, label...)...)
		}
		up := 0.0
		if i.Listening {
			up = 1
		}
		gauge(c.up, up)
		gauge(c.connections, float64(i.Connections))
		counter(c.accepted, i.ConnectionsTotal)
		for _, r := range labelValues(c.reasons, i.ClosedByReason) {
			counter(c.closed, i.ClosedByReason[r], r)
		}
		counter(c.msgsIn, i.MessagesIn)
		counter(c.msgsOut, i.MessagesOut)
		counter(c.writes, i.Writes)
		counter(c.bytesIn, i.BytesIn)
		counter(c.bytesOut, i.BytesOut)
		counter(c.broadcasts, i.BroadcastDeliveries)
		counter(c.privates, i.PrivateMessages)
		counter(c.slow, i.SlowConsumers)
		counter(c.stalls, i.AcceptStalls)
		for _, k := range labelValues(nil, i.ProtocolErrors) {
			counter(c.protoErrors, i.ProtocolErrors[k], k)
		}
	}
}

// labelValues returns known followed by the other keys of m, sorted.
func labelValues(known []string, m map[string]uint64) []string {
	out := slices.Clone(known)
	var extra []string
	for k := range m {
		if !slices.Contains(known, k) {
			extra = append(extra, k)
		}
	}
	slices.Sort(extra)
	return append(out, extra...)
}

// NewRegistry returns the registry /metrics serves: c, and the Go runtime
// and process collectors (go_*, process_*). It is a registry of its own, not
// Prometheus's global one, so nothing else in the process can add to it.
func NewRegistry(c *Collector) *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		c,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return reg
}
