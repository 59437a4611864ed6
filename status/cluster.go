package status

import (
	"fmt"
	"io"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
)

// Cluster describes the daemon's place in a cluster over NATS (SPEC
// section 10). A single node (no [cluster] nats) has Enabled false and the
// rest zero.
type Cluster struct {
	Enabled          bool          `json:"enabled"`          // [cluster] nats is set
	Node             string        `json:"node"`             // this node's name
	NATS             string        `json:"nats"`             // the NATS server connected to, without a password; "" while cut off
	Connected        bool          `json:"connected"`        // connected to NATS
	RTTSeconds       float64       `json:"rttSeconds"`       // last round trip to NATS
	Error            string        `json:"error"`            // why the node is not part of the cluster, or ""
	MessagesSent     uint64        `json:"messagesSent"`     // events sent to other nodes
	MessagesReceived uint64        `json:"messagesReceived"` // events received from other nodes
	Malformed        uint64        `json:"malformed"`        // malformed messages dropped
	Nodes            []ClusterNode `json:"nodes"`            // every node known, this one among them, by name; [] for a single node
}

// ClusterNode is one node of the cluster as this one knows it.
type ClusterNode struct {
	Name    string `json:"name"`
	Members int    `json:"members"` // its members online
	Self    bool   `json:"self"`    // this node
}

// renderCluster writes the cluster lines of "fastws status".
func renderCluster(w io.Writer, c Cluster) {
	if !c.Enabled {
		return
	}
	state := "connected to " + text(c.NATS) + ", rtt " + fmt.Sprintf("%.1fms", c.RTTSeconds*1000)
	if !c.Connected {
		state = "NATS DOWN: local clients only"
	}
	fmt.Fprintf(w, "cluster node %s  %s  sent %d  received %d\n", text(c.Node), state, c.MessagesSent, c.MessagesReceived)
	var nodes []string
	for _, n := range c.Nodes {
		s := fmt.Sprintf("%s %d", text(n.Name), n.Members)
		if n.Self {
			s += " (this)"
		}
		nodes = append(nodes, s)
	}
	fmt.Fprintf(w, "nodes   %d: %s\n", len(c.Nodes), strings.Join(nodes, ", "))
	if c.Error != "" {
		fmt.Fprintf(w, "cluster error: %s\n", text(c.Error))
	}
}

// clusterMetrics are the cluster's metrics.
type clusterMetrics struct {
	nodes, sent, received, connected *prometheus.Desc
}

func newClusterMetrics() clusterMetrics {
	return clusterMetrics{
		nodes:     prometheus.NewDesc("fastws_cluster_nodes", "Nodes of the cluster this node knows, itself among them; 0 for a single node.", nil, nil),
		sent:      prometheus.NewDesc("fastws_cluster_messages_sent_total", "Events sent to other nodes of the cluster.", nil, nil),
		received:  prometheus.NewDesc("fastws_cluster_messages_received_total", "Events received from other nodes of the cluster.", nil, nil),
		connected: prometheus.NewDesc("fastws_cluster_nats_connected", "1 while connected to NATS, else 0 (always 0 for a single node, which uses none).", nil, nil),
	}
}

func (m clusterMetrics) describe(ch chan<- *prometheus.Desc) {
	ch <- m.nodes
	ch <- m.sent
	ch <- m.received
	ch <- m.connected
}

func (m clusterMetrics) collect(ch chan<- prometheus.Metric, c Cluster) {
	ch <- prometheus.MustNewConstMetric(m.nodes, prometheus.GaugeValue, float64(len(c.Nodes)))
	ch <- prometheus.MustNewConstMetric(m.sent, prometheus.CounterValue, float64(c.MessagesSent))
	ch <- prometheus.MustNewConstMetric(m.received, prometheus.CounterValue, float64(c.MessagesReceived))
	up := 0.0
	if c.Connected {
		up = 1
	}
	ch <- prometheus.MustNewConstMetric(m.connected, prometheus.GaugeValue, up)
}
