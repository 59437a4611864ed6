package daemon

import (
	"context"

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
