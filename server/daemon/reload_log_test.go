package daemon

import (
	"bytes"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/fastws/fastws/server/config"
)

// syncBuffer is a bytes.Buffer safe for the logger's concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

// take returns what was written since the last take.
func (b *syncBuffer) take() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := b.b.String()
	b.b.Reset()
	return s
}

// TestReloadLogsTheOutcomeOnce runs a daemon in-process with a captured
// log and checks that each reload logs one line, and the true one: an
// instance that cannot bind makes the reload incomplete, not "reloaded".
func TestReloadLogsTheOutcomeOnce(t *testing.T) {
	t.Parallel()
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	takenPort := taken.Addr().(*net.TCPAddr).Port

	path := writeConfig(t, "", freePort(t))
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	var buf syncBuffer
	log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo}))
	d := startDaemon(t, cfg, Options{Log: log})
	original, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	buf.take()

	tests := []struct {
		name    string
		config  string // written to the config file before the reload
		wantErr bool
		want    string // the one reload line's level and message
	}{
		{"unchanged", string(original), false, `level=INFO msg=reloaded`},
		{"invalid", string(original) + "bogus = 1\n", true, `level=ERROR msg="reload refused"`},
		{"runDir changed", strings.Replace(string(original), "runDir = ./run", "runDir = ./run2", 1), true, `level=ERROR msg="reload refused"`},
		{"cannot bind", string(original) + fmt.Sprintf("[instance.taken]\ninstanceName = Taken\nprotocol = telnet\nhost = 127.0.0.1\nport = %d\n", takenPort),
			true, `level=ERROR msg="reload incomplete" started=[] stopped=[] restarted=[] unchanged=[Telnet-0] failed=[Taken]`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := os.WriteFile(path, []byte(tt.config), 0o644); err != nil {
				t.Fatal(err)
			}
			err := d.Reload()
			if (err != nil) != tt.wantErr {
				t.Errorf("Reload: got %v, want error %v", err, tt.wantErr)
			}
			var got []string
			for _, l := range strings.Split(buf.take(), "\n") {
				if strings.Contains(l, "msg=reload") || strings.Contains(l, `msg="reload`) {
					got = append(got, l)
				}
			}
			if len(got) != 1 || !strings.Contains(got[0], tt.want) {
				t.Errorf("reload logged %q, want one line with %q", got, tt.want)
			}
			if tt.wantErr && len(got) == 1 && !strings.Contains(got[0], "err=") {
				t.Errorf("reload line %q does not say why", got[0])
			}
		})
	}
}
