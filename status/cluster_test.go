package status

import (
	"bytes"
	"strings"
	"testing"
)

func TestRenderCluster(t *testing.T) {
	var b bytes.Buffer
	renderCluster(&b, Cluster{})
	if b.Len() != 0 {
		t.Errorf("single node: %q, want nothing", b.String())
	}
	c := Cluster{Enabled: true, Node: "fra-1", NATS: "nats://10.0.0.5:4222", Connected: true, RTTSeconds: 0.0004,
		MessagesSent: 3, MessagesReceived: 4, Nodes: []ClusterNode{{Name: "fra-1", Members: 2, Self: true}, {Name: "fra-2", Members: 5}}}
	renderCluster(&b, c)
	want := "cluster node fra-1  connected to nats://10.0.0.5:4222, rtt 0.4ms  sent 3  received 4\nnodes   2: fra-1 2 (this), fra-2 5\n"
	if b.String() != want {
		t.Errorf("got\n%q\nwant\n%q", b.String(), want)
	}
	b.Reset()
	c.Connected, c.NATS, c.Error = false, "", "NATS connection lost\x1b[2J"
	renderCluster(&b, c)
	if out := b.String(); !strings.Contains(out, "NATS DOWN") || !strings.Contains(out, "cluster error: ") || strings.Contains(out, "\x1b") {
		t.Errorf("cut off: %q", out)
	}
}
