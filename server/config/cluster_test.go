package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestClusterDefaults(t *testing.T) {
	c := mustParse(t, oneInstance)
	if c.Cluster != (Cluster{SubjectPrefix: "fastws", Timeout: 2 * time.Second}) {
		t.Errorf("no [cluster]: %+v", c.Cluster)
	}
	c, err := Load(shippedPath)
	if err != nil {
		t.Fatal(err)
	}
	if c.Cluster != (Cluster{SubjectPrefix: "fastws", Timeout: 2 * time.Second}) {
		t.Errorf("shipped [cluster]: %+v", c.Cluster)
	}
	data, _ := os.ReadFile(shippedPath)
	ix, _ := scan(shippedPath, data)
	for _, k := range clusterKeys {
		if ix.keys["cluster"][k] == nil {
			t.Errorf("[cluster] %s: missing from %s", k, shippedPath)
		}
	}
}

func TestClusterKeys(t *testing.T) {
	dir := t.TempDir()
	creds := filepath.Join(dir, "node.creds")
	if err := os.WriteFile(creds, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	c := mustParse(t, oneInstance+"[cluster]\nnats = nats://a:4222, tls://u:p@b:4222\nname = fra-1\nsubjectPrefix = chat_1\ncredentials = "+creds+"\ntimeout = 500ms\n")
	want := Cluster{NATS: "nats://a:4222, tls://u:p@b:4222", Name: "fra-1", SubjectPrefix: "chat_1", Credentials: creds, Timeout: 500 * time.Millisecond}
	if c.Cluster != want {
		t.Errorf("got %+v, want %+v", c.Cluster, want)
	}
}

// TestClusterHostile: every bad value is reported with its key, and a
// password in a bad URL never appears in the message.
func TestClusterHostile(t *testing.T) {
	for _, tt := range []struct{ line, want string }{
		{"nats = http://h:4222", "unknown scheme http://"},
		{"nats = nats://u:hunter2@:4222", "not a NATS URL list"},
		{"nats = nats://u:hunter2@h:4222,ftp://x:hunter2@y", "unknown scheme ftp://"},
		{"name = a.b", "must be 1 to 64 letters"},
		{"name = " + strings.Repeat("n", 65), "must be 1 to 64 letters"},
		{"subjectPrefix = fastws.>", "must be 1 to 64 letters"},
		{"subjectPrefix =", "must be 1 to 64 letters"},
		{"credentials = /nonexistent/x.creds", "cannot read the credentials file"},
		{"timeout = 0s", "positive duration"},
		{"timeout = soon", "positive duration"},
		{"natsURL = nats://h", "unknown key"},
	} {
		msg := parseErr(t, oneInstance+"[cluster]\n"+tt.line+"\n")
		if !strings.Contains(msg, tt.want) || !strings.Contains(msg, "[cluster]") {
			t.Errorf("%q: got %q, want %q", tt.line, msg, tt.want)
		}
		if strings.Contains(msg, "hunter2") {
			t.Errorf("%q: the message shows the password: %q", tt.line, msg)
		}
	}
}
