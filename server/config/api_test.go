package config

import (
	"strings"
	"testing"
	"time"
)

func TestAPISection(t *testing.T) {
	t.Setenv(EnvAPIKey, "")
	t.Setenv(EnvTokenSecret, "")
	c := mustParse(t, oneInstance)
	if c.API != (API{AuthTimeout: 10 * time.Second, MaxConnectionsPerUser: 16, MaxConnections: 1024}) {
		t.Errorf("defaults: got %+v", c.API)
	}
	c = mustParse(t, "[api]\nlisten = 127.0.0.1:19980\nkey = 0123456789abcdef\ntokenSecret = s3cret-s3cret-s3cret-s3cret-0123456\nrequireAuth = true\nauthTimeout = 3s\nmaxConnectionsPerUser = 3\nmaxConnections = 64\n"+oneInstance)
	want := API{Listen: "127.0.0.1:19980", Key: "0123456789abcdef", TokenSecret: "s3cret-s3cret-s3cret-s3cret-0123456", RequireAuth: true, AuthTimeout: 3 * time.Second, MaxConnectionsPerUser: 3, MaxConnections: 64}
	if c.API != want {
		t.Errorf("got %+v, want %+v", c.API, want)
	}
	if c = mustParse(t, "[api]\nmaxConnectionsPerUser = 0\n"+oneInstance); c.API.MaxConnectionsPerUser != 0 {
		t.Errorf("maxConnectionsPerUser = 0: got %d, want 0 (unlimited)", c.API.MaxConnectionsPerUser)
	}
}

// TestAPIErrors: each bad [api] is refused naming the key, and a secret's
// value never appears in the message.
func TestAPIErrors(t *testing.T) {
	t.Setenv(EnvAPIKey, "")
	t.Setenv(EnvTokenSecret, "")
	const secret = "sh0rt-s3cret"
	cases := []struct{ name, section, want string }{
		{"short key", "listen = 127.0.0.1:1\nkey = " + secret, "config.ini:4: [api] key: too short: at least 16 bytes (the value is not shown)"},
		{"no key", "listen = 127.0.0.1:1", "[api] key: required when listen is set (or set FASTWS_API_KEY)"},
		{"bad listen", "listen = nowhere", `[api] listen = "nowhere": not host:port`},
		{"bad bool", "requireAuth = maybe", `[api] requireAuth = "maybe": not a boolean`},
		{"bad timeout", "authTimeout = -1s", `[api] authTimeout = "-1s": must be a positive duration`},
		{"negative per-user limit", "maxConnectionsPerUser = -1", `[api] maxConnectionsPerUser = "-1": must be a whole number >= 0`},
		{"huge per-user limit", "maxConnectionsPerUser = 99999999999999999999", `[api] maxConnectionsPerUser = "99999999999999999999": must be a whole number >= 0`},
		{"per-user limit not a number", "maxConnectionsPerUser = 16 conns", `[api] maxConnectionsPerUser = "16 conns": must be a whole number >= 0`},
		{"no API connections", "maxConnections = 0", `[api] maxConnections = "0": must be a whole number from 1 to 1048576`},
		{"API connections not a number", "maxConnections = many", `[api] maxConnections = "many": must be a whole number from 1 to 1048576`},
		{"API connections past the bound", "maxConnections = 1048577", `[api] maxConnections = "1048577": must be a whole number from 1 to 1048576`},
		{"API connections negative", "maxConnections = -5", `[api] maxConnections = "-5": must be a whole number from 1 to 1048576`},
		{"API connections overflowing", "maxConnections = 99999999999999999999", `[api] maxConnections = "99999999999999999999": must be a whole number from 1 to 1048576`},
		{"requireAuth without secret", "requireAuth = true", "[api] requireAuth: needs tokenSecret"},
		{"short token secret", "tokenSecret = " + secret, "config.ini:3: [api] tokenSecret: too short: at least 32 bytes for HS256 (the value is not shown)"},
		{"unknown key", "Key = " + secret, "[api] Key: unknown key (did you mean key?"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			msg := parseErr(t, "[fastws]\n[api]\n"+c.section+"\n"+oneInstance)
			if !strings.Contains(msg, c.want) {
				t.Errorf("got %q, want it to contain %q", msg, c.want)
			}
			if strings.Contains(msg, secret) {
				t.Errorf("got %q: it shows the secret", msg)
			}
		})
	}
}

func TestAPIEnvironment(t *testing.T) {
	t.Setenv(EnvAPIKey, "from-the-environment-0123")
	t.Setenv(EnvTokenSecret, "env-secret-env-secret-env-secret-0")
	c := mustParse(t, "[api]\nlisten = 127.0.0.1:1\nkey = short\ntokenSecret = file\n"+oneInstance)
	if c.API.Key != "from-the-environment-0123" || c.API.TokenSecret != "env-secret-env-secret-env-secret-0" {
		t.Errorf("got %+v, want the environment's key and secret", c.API)
	}
	t.Setenv(EnvAPIKey, "short")
	msg := parseErr(t, "[api]\nlisten = 127.0.0.1:1\nkey = long-enough-in-the-file\n"+oneInstance)
	if !strings.Contains(msg, "[api] FASTWS_API_KEY: too short") || strings.Contains(msg, "long-enough") {
		t.Errorf("got %q, want the environment's key refused, without values", msg)
	}
}
