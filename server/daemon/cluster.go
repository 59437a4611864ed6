package daemon

import (
	"context"
	"os"
	"runtime"

	"github.com/fastws/fastws/chat"
	"github.com/fastws/fastws/server"
	"github.com/fastws/fastws/server/cluster"
	"github.com/fastws/fastws/server/config"
	"github.com/fastws/fastws/status"
)

// startRoom makes the room: a single node's, or with [cluster] nats set a
// node of the cluster, connected before anything listens, so that a NATS
// out of reach fails the start (naming the URL, never a password).
func (d *Daemon) startRoom(cfg *config.Config) error {
	opts := chat.Options{}
	c := cfg.Cluster
	if c.NATS != "" {
		node, err := cluster.Connect(cluster.Config{
			NATS: c.NATS, Name: c.Name, Prefix: c.SubjectPrefix, Credentials: c.Credentials, Timeout: c.Timeout,
		}, d.log)
		if err != nil {
			return err
		}
		d.node = node
		opts.Cluster = node
		clusterProcs(cfg)
		// After the server has stopped (undo runs last first): its
		// members have left, and the node tells the others it goes.
		d.undo = append(d.undo, func() {
			ctx, cancel := context.WithTimeout(context.Background(), c.Timeout)
			defer cancel()
			node.Close(ctx)
		})
	}
	d.srv = server.New(d.log, opts)
	if d.node != nil {
		return d.node.Start(d.srv.Hub())
	}
	return nil
}

// clusterProcs gives the Go scheduler one more P (GOMAXPROCS) per event
// loop of the configuration, unless GOMAXPROCS is set in the environment.
//
// An event loop's thread waits in epoll_wait, a system call, and keeps
// its P meanwhile until the runtime's monitor takes it back, which it
// does after 20 µs when busy but only every 10 ms when the process has
// been quiet. On one node nothing else is on a message's path. In a
// cluster the NATS client's goroutines are: its flusher sends what a loop
// published, its reader hands another node's events to the loops. With
// every P held by a waiting loop they waited for the monitor: a line
// took 2.5 ms from node to node at the median and 14 ms at p99, at 100
// messages/s to 1000 receivers (cluster/fanout/2x500 in scripts/bench).
// With spare Ps they run at once: 1.3 ms and 3.1 ms, and the p99 of the
// whole fan-out fell from 15-17 ms to within 2.5 ms of one node's. A
// single node does not get them: there the spare Ps' idle spinning cost
// case 1 more CPU per round trip than it saved.
func clusterProcs(cfg *config.Config) {
	if os.Getenv("GOMAXPROCS") != "" {
		return
	}
	loops := 0
	for _, in := range cfg.Instances {
		loops += in.ChildProcessCount
	}
	runtime.GOMAXPROCS(runtime.GOMAXPROCS(0) + loops)
}

// clusterStatus is status.Snapshot.Cluster.
func (d *Daemon) clusterStatus() status.Cluster {
	if d.node == nil {
		return status.Cluster{}
	}
	st := d.node.Stats()
	out := status.Cluster{
		Enabled: true, Node: st.Node, NATS: st.NATS, Connected: st.Connected, RTTSeconds: st.RTT.Seconds(),
		Error: st.Error, MessagesSent: st.Sent, MessagesReceived: st.Received, Malformed: st.Dropped,
	}
	for _, n := range st.Nodes {
		out.Nodes = append(out.Nodes, status.ClusterNode{Name: n.Name, Members: n.Members, Self: n.Self})
	}
	return out
}
