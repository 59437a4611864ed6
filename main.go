// Command fastws is a chat daemon: config-driven instances of telnet and
// websocket servers on gnet, all sharing one chat room. See README.md.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr, signals()))
}

// signals delivers SIGINT and SIGTERM to the running daemon.
func signals() <-chan os.Signal {
	ch := make(chan os.Signal, 2)
	signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
	return ch
}
