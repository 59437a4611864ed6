package daemon

import (
	"context"
	"testing"

	"github.com/fastws/fastws/status"
)

// TestConnectionsShowUser: "fastws connections" shows the user id a
// connection authenticated as, and nothing for an anonymous one.
func TestConnectionsShowUser(t *testing.T) {
	d, _ := apiDaemon(t, "", "")
	anon := dialTelnet(t, d.Addrs()["Telnet"])
	authed := dialTelnet(t, d.Addrs()["Telnet"])
	anon.sync()
	authed.authAs(token(t, "u42", ""), "u42")
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	users := map[uint64]string{}
	err := d.Connections(ctx, func(rows []status.Connection) error {
		for _, r := range rows {
			users[r.UID] = r.User
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if u, ok := users[authed.uid]; !ok || u != "u42" {
		t.Errorf("authenticated uid %d: user %q (listed %v), want u42", authed.uid, u, ok)
	}
	if u, ok := users[anon.uid]; !ok || u != "" {
		t.Errorf("anonymous uid %d: user %q (listed %v), want none", anon.uid, u, ok)
	}
}
