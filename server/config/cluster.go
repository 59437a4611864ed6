package config

import (
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"gopkg.in/ini.v1"
)

// Cluster is the [cluster] section: the NATS that joins this daemon to
// others (SPEC section 10). NATS "" (the default) is a single node.
type Cluster struct {
	NATS          string        // nats: comma-separated URLs (nats://, tls://, user:password@ allowed); "" = single node
	Name          string        // name: this node's name, unique in the cluster; default the host name
	SubjectPrefix string        // subjectPrefix: first token of every subject; default "fastws"
	Credentials   string        // credentials: a NATS .creds file, absolute; optional
	Timeout       time.Duration // timeout: NATS connect and request timeout; default 2s
}

const (
	sectionCluster       = "cluster"
	defaultSubjectPrefix = "fastws"
	defaultClusterWait   = 2 * time.Second
)

var clusterKeys = []string{"nats", "name", "subjectPrefix", "credentials", "timeout"}

func defaultCluster() Cluster {
	return Cluster{SubjectPrefix: defaultSubjectPrefix, Timeout: defaultClusterWait}
}

// clusterToken reports whether s can be one NATS subject token as fastws
// uses them: 1 to 64 letters, digits, '-' and '_'.
func clusterToken(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return false
		}
	}
	return true
}

// cluster reads [cluster]. A bad nats value is reported without its
// passwords.
func (p *parser) cluster(c *Config, s *ini.Section) {
	p.walk(s, clusterKeys, func(key, v string) string {
		v = strings.TrimSpace(v)
		switch key {
		case "nats":
			c.Cluster.NATS = v // checked below, where the value shown can be redacted
		case "name":
			if v != "" && !clusterToken(v) {
				return "must be 1 to 64 letters, digits, - and _ (this node's name, unique in the cluster; default the host name)"
			}
			c.Cluster.Name = v
		case "subjectPrefix":
			if !clusterToken(v) {
				return "must be 1 to 64 letters, digits, - and _ (default " + defaultSubjectPrefix + ")"
			}
			c.Cluster.SubjectPrefix = v
		case "credentials":
			if v == "" {
				break
			}
			if !filepath.IsAbs(v) {
				v = filepath.Join(p.dir, v)
			}
			if _, err := os.Stat(v); err != nil {
				return "cannot read the credentials file: " + err.Error()
			}
			c.Cluster.Credentials = filepath.Clean(v)
		case "timeout":
			d, ok := parseDuration(v)
			if !ok || d <= 0 {
				return "must be a positive duration (Go syntax, e.g. 2s)"
			}
			c.Cluster.Timeout = d
		}
		return ""
	})
	if msg := checkNATS(c.Cluster.NATS); msg != "" {
		p.keyErr(s.Name(), "nats", redactURLs(c.Cluster.NATS), msg)
		c.Cluster.NATS = ""
	}
}

// checkNATS checks comma-separated NATS URLs ("" is fine: a single node).
func checkNATS(v string) string {
	if v == "" {
		return ""
	}
	for _, part := range strings.Split(v, ",") {
		part = strings.TrimSpace(part)
		if !strings.Contains(part, "://") {
			part = "nats://" + part
		}
		u, err := url.Parse(part)
		if err != nil || u.Hostname() == "" {
			return "not a NATS URL list (comma-separated, e.g. nats://10.0.0.1:4222,tls://user:password@nats.example:4222)"
		}
		switch u.Scheme {
		case "nats", "tls", "ws", "wss":
		default:
			return "unknown scheme " + u.Scheme + "://; use nats:// or tls://"
		}
	}
	return ""
}

// redactURLs returns v with what follows "://" up to an "@" hidden: a
// password never reaches a message.
func redactURLs(v string) string {
	parts := strings.Split(v, ",")
	for i, part := range parts {
		if at := strings.LastIndex(part, "@"); at >= 0 {
			start := strings.Index(part, "://") + 3
			if start < 3 || start > at {
				start = 0
			}
			parts[i] = part[:start] + "xxxxx" + part[at:]
		}
	}
	return strings.Join(parts, ",")
}
