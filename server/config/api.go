package config

import (
	"math"
	"os"
	"slices"
	"strings"
	"time"

	"gopkg.in/ini.v1"
)

// API is the [api] section: the HTTP API for applications and the user
// tokens members authenticate with. The zero value is the API off,
// anonymous members allowed.
type API struct {
	Listen string // listen: host:port of the HTTP API, "" = off (default)
	// Key (key) is the bearer key every API request carries; required
	// when Listen is set, at least 16 bytes. FASTWS_API_KEY overrides it.
	// Never printed.
	Key string
	// TokenSecret (tokenSecret) is the HS256 secret of user tokens, ""
	// = /auth refused. FASTWS_TOKEN_SECRET overrides it. Never printed.
	TokenSecret string
	RequireAuth bool          // requireAuth: only authenticated members may talk; default false
	AuthTimeout time.Duration // authTimeout: with RequireAuth, how long one may stay unauthenticated; default 10s
	// MaxConnectionsPerUser (maxConnectionsPerUser) is the most
	// connections one user id may hold at once; 0 = unlimited; default
	// 16 (see DefaultMaxConnectionsPerUser).
	MaxConnectionsPerUser int
	// MaxConnections (maxConnections) is the most HTTP connections the API
	// serves at once; past it, new ones wait in the kernel's accept queue
	// until one closes. Default 1024 (see DefaultAPIMaxConnections).
	MaxConnections int
}

// DefaultAPIMaxConnections is [api] maxConnections when unset: a
// backend's keep-alive connections, a PHP-FPM pool's one per worker, with
// room to spare, and far below the descriptors the chat needs.
const DefaultAPIMaxConnections = 1024

// DefaultMaxConnectionsPerUser is [api] maxConnectionsPerUser when unset:
// a user's devices and tabs, not a botnet behind one token.
const DefaultMaxConnectionsPerUser = 16

// Environment variables that override [api] secrets, so that they need
// not sit in a file.
const (
	EnvAPIKey      = "FASTWS_API_KEY"
	EnvTokenSecret = "FASTWS_TOKEN_SECRET"
)

const (
	sectionAPI = "api"
	minAPIKey  = 16
	// minTokenSecret: an HS256 key must be at least the hash's size (RFC
	// 7518 section 3.2); a shorter secret is cracked offline from any one
	// token a user holds, and then any user can be minted.
	minTokenSecret     = 32
	defaultAuthTimeout = 10 * time.Second
)

var apiKeys = []string{"listen", "key", "tokenSecret", "requireAuth", "authTimeout", "maxConnectionsPerUser", "maxConnections"}

// api reads [api]. The secrets' values never reach an error message, nor
// does the value of an unknown key (it may be a misspelt key).
func (p *parser) api(c *Config, s *ini.Section) {
	for _, k := range s.Keys() {
		if !slices.Contains(apiKeys, k.Name()) {
			p.secretErr(k.Name(), unknownKeyMsg(k.Name(), apiKeys))
			s.DeleteKey(k.Name())
		}
	}
	p.walk(s, apiKeys, func(key, v string) string {
		switch key {
		case "listen":
			if strings.TrimSpace(v) == "" {
				c.API.Listen = ""
				break
			}
			addr, ok := parseListen(v)
			if !ok {
				return "not host:port (e.g. 127.0.0.1:19980; empty = off)"
			}
			c.API.Listen = addr
		case "key":
			c.API.Key = strings.TrimSpace(v)
		case "tokenSecret":
			c.API.TokenSecret = strings.TrimSpace(v)
		case "requireAuth":
			switch strings.ToLower(strings.TrimSpace(v)) {
			case "true", "yes", "on", "1":
				c.API.RequireAuth = true
			case "false", "no", "off", "0", "":
				c.API.RequireAuth = false
			default:
				return "not a boolean (true or false)"
			}
		case "authTimeout":
			d, ok := parseDuration(v)
			if !ok || d <= 0 {
				return "must be a positive duration (Go syntax, e.g. 10s)"
			}
			c.API.AuthTimeout = d
		case "maxConnectionsPerUser":
			n, ok := parseInt(v, 0, math.MaxInt32)
			if !ok {
				return "must be a whole number >= 0 (connections one user id may hold at once; 0 = unlimited)"
			}
			c.API.MaxConnectionsPerUser = n
		case "maxConnections":
			n, ok := parseInt(v, 1, 1<<20)
			if !ok {
				return "must be a whole number from 1 to 1048576 (HTTP connections the API serves at once)"
			}
			c.API.MaxConnections = n
		}
		return ""
	})
}

// apiEnv applies the environment's overrides and checks [api] as a
// whole. Errors name the key (or variable), never its value.
func (p *parser) apiEnv(c *Config) {
	keyFrom := "key"
	if v := os.Getenv(EnvAPIKey); v != "" {
		c.API.Key, keyFrom = v, EnvAPIKey
	}
	secretFrom := "tokenSecret"
	if v := os.Getenv(EnvTokenSecret); v != "" {
		c.API.TokenSecret, secretFrom = v, EnvTokenSecret
	}
	if c.API.TokenSecret != "" && len(c.API.TokenSecret) < minTokenSecret {
		p.secretErr(secretFrom, "too short: at least 32 bytes for HS256 (the value is not shown)")
	}
	if c.API.AuthTimeout == 0 {
		c.API.AuthTimeout = defaultAuthTimeout
	}
	switch {
	case c.API.Listen == "":
	case c.API.Key == "":
		p.secretErr("key", "required when listen is set (or set "+EnvAPIKey+")")
	case len(c.API.Key) < minAPIKey:
		p.secretErr(keyFrom, "too short: at least 16 bytes (the value is not shown)")
	}
	if c.API.RequireAuth && c.API.TokenSecret == "" {
		p.secretErr("requireAuth", "needs tokenSecret (or "+EnvTokenSecret+"): without it no one can authenticate")
	}
}

// secretErr reports a problem with an [api] key without its value.
func (p *parser) secretErr(key, msg string) {
	p.errs = append(p.errs, &Error{File: p.file, Line: p.ix.key(sectionAPI, key).line, Section: sectionAPI, Key: key, Msg: msg})
}
