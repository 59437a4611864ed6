// Command fastws is a chat daemon: config-driven instances of telnet and
// websocket servers on gnet, all sharing one chat room. See README.md.
package main

import (
	"context"
	"os"
)

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
}
