package server

import (
	"bytes"
	"net/url"
	"time"

	"github.com/fastws/fastws/chat"
)

// Run queues fn to run on the session's event loop, in order with what
// is queued for it: how the room changes a member's rooms for the HTTP
// API (chat.Runner). fn does not run if the session is closed by then.
// It never blocks and is safe for concurrent use.
func (s *session) Run(fn func()) { s.r.enqueue(delivery{s: s, fn: fn}) }

// Describe returns the session's instance name and connect time
// (chat.Describer). It is safe for concurrent use: neither changes.
func (s *session) Describe() (string, time.Time) {
	return s.r.inst.cfg.Name, time.Unix(0, s.since)
}

// authExpired reports whether s, a member, has stayed unauthenticated
// past authTimeout while requireAuth holds. Event loop only.
func (s *session) authExpired(n int64) bool {
	timeout, since, on := s.r.hub.AuthDeadline()
	return on && s.member() != nil && !s.m.Authenticated() && n-max(s.since, since) > int64(timeout)
}

// queryToken returns the token parameter of an upgrade request's target
// ("/?token=..."), "" if none.
func queryToken(req []byte) string {
	_, target, _, ok := parseRequestHead(req)
	if !ok {
		return ""
	}
	_, query, found := bytes.Cut(target, []byte{'?'})
	if !found {
		return ""
	}
	v, err := url.ParseQuery(string(query))
	if err != nil {
		return ""
	}
	return v.Get("token")
}

// authOnUpgrade authenticates a websocket member that brought a token on
// its upgrade URL (see queryToken). Event loop only, right after its join.
func (s *session) authOnUpgrade(token string) {
	if token != "" && s.member() != nil {
		s.r.hub.Auth(s.member(), token)
	}
}

// authTimeoutText is what a member closed for auth_timeout reads last.
const authTimeoutText = "not authenticated in time, closing"

// Hub returns the server's room: for the HTTP API and identity settings,
// and for a cluster node to deliver what other nodes send.
// It is safe for concurrent use.
func (s *Server) Hub() *chat.Hub { return s.hub }
