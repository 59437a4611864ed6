package daemon

import (
	"context"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestAPIStopsBeforeTheDrain: at a stop, the HTTP API stops first, not
// after the instances drained (up to stopTimeout): an application gets
// "connection refused" rather than "delivered" for members being closed.
// A telnet member that reads nothing holds the drain open meanwhile.
func TestAPIStopsBeforeTheDrain(t *testing.T) {
	d, _ := apiDaemon(t, "stopTimeout = 30s", "")
	api := d.APIAddr()
	stuck := dialTelnet(t, d.Addrs()["Telnet"]) // from here it reads nothing
	text := strings.Repeat("x", 900)
	queued := func() int {
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		defer cancel()
		cs, err := d.srv.Connections(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range cs {
			if c.UID == stuck.uid {
				return c.Queued
			}
		}
		t.Fatalf("uid %d is gone", stuck.uid)
		return 0
	}
	// Fill the kernel's buffers until the server holds bytes for it (well
	// under maxSendBuffer, 64K: it is not a slow consumer yet).
	for i := 0; queued() == 0; i++ {
		if i == 20000 {
			t.Fatal("the server never held bytes for a member that reads nothing")
		}
		want(t, api, "POST", "/api/v1/send", `{"text": "`+text+`", "uid": `+strconv.FormatUint(stuck.uid, 10)+`}`, 200, nil)
	}
	d.Stop(30 * time.Second)
	deadline := time.Now().Add(10 * time.Second) // far under stopTimeout
	for {
		c, err := net.DialTimeout("tcp", api, time.Second)
		if err != nil {
			break // refused: the API is down
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatal("the API still accepts connections 10s into the drain")
		}
		time.Sleep(10 * time.Millisecond) // polling, with a deadline
	}
	select {
	case <-d.done:
		t.Fatal("the daemon finished before the check: the drain did not wait for the stuck member")
	default:
	}
	stuck.conn.Close() // ends the drain
	if err := d.Wait(); err != nil {
		t.Errorf("Wait: %v", err)
	}
}
