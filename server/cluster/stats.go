package cluster

import (
	"slices"
	"strings"
	"time"
)

// Stats is a snapshot of the node's view of the cluster.
type Stats struct {
	Node      string        // this node's name
	NATS      string        // the NATS server connected to, password removed; "" while cut off
	Connected bool          // connected to NATS
	Error     string        // why not part of the cluster ("" if it is)
	RTT       time.Duration // the last round trip to NATS
	Nodes     []NodeStats   // every node known, this one among them, by name
	Sent      uint64        // events sent to other nodes
	Received  uint64        // events received from other nodes
	Dropped   uint64        // malformed messages dropped
}

// NodeStats is one node as this one knows it.
type NodeStats struct {
	Name    string
	Members int
	Self    bool
}

// Stats returns a snapshot. It is safe for concurrent use.
func (n *Node) Stats() Stats {
	st := Stats{
		Node: n.cfg.Name, Connected: n.connected.Load(), RTT: time.Duration(n.rtt.Load()),
		Sent: n.sent.Load(), Received: n.received.Load(), Dropped: n.dropped.Load(),
	}
	if st.Connected {
		st.NATS = n.nc.ConnectedUrlRedacted()
	}
	if err := n.Healthy(); err != nil {
		st.Error = strings.TrimPrefix(err.Error(), "cluster: ")
	}
	n.localMu.Lock()
	st.Nodes = append(st.Nodes, NodeStats{Name: n.cfg.Name, Members: len(n.local), Self: true})
	n.localMu.Unlock()
	n.dirMu.RLock()
	for _, p := range n.dir.peers {
		st.Nodes = append(st.Nodes, NodeStats{Name: p.name, Members: len(p.members)})
	}
	n.dirMu.RUnlock()
	slices.SortFunc(st.Nodes, func(a, b NodeStats) int { return strings.Compare(a.Name, b.Name) })
	return st
}
