package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/fastws/fastws/server/auth"
)

// roomFlags collects repeated --room flags.
type roomFlags []string

func (r *roomFlags) String() string     { return fmt.Sprint([]string(*r)) }
func (r *roomFlags) Set(v string) error { *r = append(*r, v); return nil }

// token prints a user token signed with the config's tokenSecret
// (FASTWS_TOKEN_SECRET overrides it): for trying things out, as
// Centrifugo's gentoken. The secret itself is never printed.
//
//	fastws token --user u123 [--name alice] [--room games]... [--ttl 1h]
func (e *env) token(args []string) (int, error) {
	fs := flag.NewFlagSet("token", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	user := fs.String("user", "", "the application's user id (sub), 1-64 bytes")
	name := fs.String("name", "", "the nick the token gives")
	ttl := fs.Duration("ttl", time.Hour, "how long the token is valid")
	var rooms roomFlags
	fs.Var(&rooms, "room", "a room joined on authentication (repeatable)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK, err
		}
		return exitUsage, fmt.Errorf("token: %w; usage: fastws token --user ID [--name NICK] [--room ROOM] [--ttl 1h]", err)
	}
	if fs.NArg() > 0 {
		return exitUsage, fmt.Errorf("token: unexpected argument %q; usage: fastws token --user ID [--name NICK] [--room ROOM] [--ttl 1h]", fs.Arg(0))
	}
	if *user == "" {
		return exitUsage, errors.New("token: --user is required; usage: fastws token --user ID [--name NICK] [--room ROOM] [--ttl 1h]")
	}
	cfg, err := e.load()
	if err != nil {
		return exitUsage, err
	}
	tok, err := auth.Sign([]byte(cfg.API.TokenSecret), *user, *name, rooms, *ttl, time.Now())
	if err != nil {
		return exitUsage, fmt.Errorf("token: %w", err)
	}
	fmt.Fprintln(e.stdout, tok)
	return exitOK, nil
}
