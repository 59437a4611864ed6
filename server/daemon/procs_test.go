package daemon

import (
	"runtime"
	"testing"

	"github.com/fastws/fastws/server/config"
)

// TestClusterProcs: a cluster node gets one more P per event loop (see
// clusterProcs), unless GOMAXPROCS is set in the environment.
func TestClusterProcs(t *testing.T) {
	before := runtime.GOMAXPROCS(0)
	t.Cleanup(func() { runtime.GOMAXPROCS(before) })
	cfg := &config.Config{Instances: []config.Instance{{ChildProcessCount: 2}, {ChildProcessCount: 3}}}
	t.Setenv("GOMAXPROCS", "")
	clusterProcs(cfg)
	if got := runtime.GOMAXPROCS(0); got != before+5 {
		t.Errorf("GOMAXPROCS %d, want %d + 5 event loops", got, before)
	}
	runtime.GOMAXPROCS(before)
	t.Setenv("GOMAXPROCS", "3")
	clusterProcs(cfg)
	if got := runtime.GOMAXPROCS(0); got != before {
		t.Errorf("with GOMAXPROCS set: %d, want %d (left as the environment says)", got, before)
	}
}
