package web

import (
	"bytes"
	"regexp"
	"testing"
	"unicode/utf8"
)

func TestIndexSelfContained(t *testing.T) {
	if len(Index) == 0 {
		t.Fatal("Index is empty; want the embedded index.html")
	}
	if !utf8.Valid(Index) {
		t.Fatal("Index is not valid UTF-8")
	}
	// Nothing may come from outside the daemon: no external scripts,
	// styles, fonts or images, and no absolute URL anywhere.
	forbidden := []struct {
		name string
		re   *regexp.Regexp
	}{
		{"absolute URL", regexp.MustCompile(`(?i)\b(https?:)?//[a-z0-9.-]+\.[a-z]{2,}`)},
		{"external script", regexp.MustCompile(`(?i)<script[^>]+src=`)},
		{"external stylesheet", regexp.MustCompile(`(?i)<link[^>]+rel=["']?stylesheet`)},
		{"CSS import", regexp.MustCompile(`(?i)@import`)},
		{"innerHTML", regexp.MustCompile(`\b(inner|outer)HTML\b|insertAdjacentHTML|document\.write`)},
	}
	for _, f := range forbidden {
		if loc := f.re.FindIndex(Index); loc != nil {
			t.Errorf("index.html has %s: %q", f.name, Index[loc[0]:loc[1]])
		}
	}
}

func TestIndexContract(t *testing.T) {
	// The browser test and users' scripts rely on these; the subprotocol
	// is the daemon's.
	want := []string{
		`'fastws.v1.json'`,
		`id="me"`, `id="status"`, `id="messages"`, `id="who"`, `id="to"`,
		`id="input"`, `id="send"`, `id="nick-input"`, `id="nick-set"`,
		`name="viewport"`,
	}
	for _, w := range want {
		if !bytes.Contains(Index, []byte(w)) {
			t.Errorf("index.html lacks %s", w)
		}
	}
}
