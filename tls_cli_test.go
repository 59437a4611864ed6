package main

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fastws/fastws/server/tlstest"
)

// certMaker issues certificates for the binary's tests in-process: a
// throwaway CA, leaves it signs, and self-signed ones.
type certMaker struct {
	*tlstest.CA
}

func newCertMaker(t *testing.T) *certMaker {
	t.Helper()
	ca, err := tlstest.NewCA(time.Now().Add(48 * time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	return &certMaker{ca}
}

// leaf writes dir/name.crt and dir/name.key for localhost, valid from
// an hour before now+from to now+until; self-signed or from the CA, and
// with the CA after the leaf if chain.
func (m *certMaker) leaf(t *testing.T, dir, name string, from, until time.Duration, selfSigned, chain bool) {
	t.Helper()
	signer := m.CA
	if selfSigned {
		signer = nil
	}
	der, key, err := signer.Issue(tlstest.Leaf{Serial: time.Now().UnixNano(), DNSNames: []string{"localhost", "chat.example"},
		NotBefore: time.Now().Add(from - time.Hour), NotAfter: time.Now().Add(until), ServerAuth: true})
	if err != nil {
		t.Fatal(err)
	}
	out := tlstest.PEMCert(der)
	if chain {
		out = append(out, m.PEM...)
	}
	keyPEM, err := tlstest.PEMKey(key)
	if err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(dir, name+".crt"), out)
	write(t, filepath.Join(dir, name+".key"), keyPEM)
}

func write(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// tlsConfig writes a config with one TLS telnet instance, Secure, whose
// tlsCert and tlsKey are cert and key, relative to the config's folder.
func tlsConfig(t *testing.T, dir, cert, key string) string {
	t.Helper()
	path := filepath.Join(dir, "config.ini")
	write(t, path, fmt.Appendf(nil, "[fastws]\nrunDir = ./run\nmetricsListen =\n\n[instance.secure]\ninstanceName = Secure\nprotocol = telnet\nhost = 127.0.0.1\nport = %d\nchildProcessCount = 1\ntlsCert = %s\ntlsKey = %s\n",
		freePort(t), cert, key))
	return path
}

// TestTLSBrokenPairsRefused: check, start and start -d refuse each
// broken pair with exit 2, naming the instance, the file and the reason.
func TestTLSBrokenPairsRefused(t *testing.T) {
	t.Parallel()
	m := newCertMaker(t)
	tests := []struct {
		name      string
		setup     func(t *testing.T, dir string)
		cert, key string
		want      []string // in stderr, besides the instance's name
	}{
		{"missing_cert", func(t *testing.T, dir string) { m.leaf(t, dir, "a", 0, 24*time.Hour, false, true) },
			"nope.crt", "a.key", []string{"tlsCert", "nope.crt", "no such file"}},
		{"missing_key", func(t *testing.T, dir string) { m.leaf(t, dir, "a", 0, 24*time.Hour, false, true) },
			"a.crt", "nope.key", []string{"tlsKey", "nope.key", "no such file"}},
		{"unreadable_cert", func(t *testing.T, dir string) {
			m.leaf(t, dir, "a", 0, 24*time.Hour, false, true)
			if err := os.Mkdir(filepath.Join(dir, "dir.crt"), 0o700); err != nil {
				t.Fatal(err)
			}
		}, "dir.crt", "a.key", []string{"tlsCert", "dir.crt", "cannot read it"}},
		{"not_pem", func(t *testing.T, dir string) {
			m.leaf(t, dir, "a", 0, 24*time.Hour, false, true)
			write(t, filepath.Join(dir, "junk.crt"), []byte("not a certificate\n"))
		}, "junk.crt", "a.key", []string{"tlsCert", "junk.crt", "no PEM certificate"}},
		{"mismatched_key", func(t *testing.T, dir string) {
			m.leaf(t, dir, "a", 0, 24*time.Hour, false, true)
			m.leaf(t, dir, "b", 0, 24*time.Hour, false, true)
		}, "a.crt", "b.key", []string{"tlsKey", "b.key", "does not match the certificate in", "a.crt"}},
		{"expired", func(t *testing.T, dir string) { m.leaf(t, dir, "old", -48*time.Hour, -time.Hour, false, true) },
			"old.crt", "old.key", []string{"tlsCert", "old.crt", "certificate expired"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			tc.setup(t, dir)
			cfg := tlsConfig(t, dir, tc.cert, tc.key)
			for _, verb := range [][]string{{"check"}, {"start"}, {"start", "-d"}} {
				_, stderr, code := runCLI(t, append([]string{"-c", cfg}, verb...)...)
				if code != 2 {
					t.Errorf("%s: exit %d, want 2; stderr %q", verb, code, stderr)
				}
				for _, w := range append(tc.want, "instance Secure") {
					if !strings.Contains(stderr, w) {
						t.Errorf("%s: stderr %q, want it to say %q", verb, stderr, w)
					}
				}
			}
			if _, err := os.Stat(filepath.Join(dir, "run", "fastws.pid")); err == nil {
				t.Error("a daemon started")
			}
		})
	}
}

// TestTLSCheckShowsCertificates: check prints each certificate's names
// and expiry, and warns on a near end or a missing chain, exit 0.
func TestTLSCheckShowsCertificates(t *testing.T) {
	t.Parallel()
	m := newCertMaker(t)
	tests := []struct {
		name                 string
		until                time.Duration
		selfSigned, chain    bool
		nearWarn, chainWarns bool
	}{
		{"chained", 40 * 24 * time.Hour, false, true, false, false},
		{"self_signed", 40 * 24 * time.Hour, true, false, false, false},
		{"no_chain", 40 * 24 * time.Hour, false, false, false, true},
		{"near_expiry", 3 * 24 * time.Hour, false, true, true, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			m.leaf(t, dir, "site", 0, tc.until, tc.selfSigned, tc.chain)
			cfg := tlsConfig(t, dir, "site.crt", "site.key")
			stdout, stderr, code := runCLI(t, "-c", cfg, "check")
			if code != 0 {
				t.Fatalf("exit %d, want 0; stderr %q", code, stderr)
			}
			want := "instance Secure: certificate " + filepath.Join(dir, "site.crt") + " for localhost, chat.example, 127.0.0.1, expires " +
				time.Now().Add(tc.until).UTC().Format("2006-01-02")
			if !strings.Contains(stdout, want) {
				t.Errorf("stdout %q, want %q", stdout, want)
			}
			if got := strings.Contains(stderr, "within 14 days"); got != tc.nearWarn {
				t.Errorf("near-expiry warning %v, want %v; stderr %q", got, tc.nearWarn, stderr)
			}
			if got := strings.Contains(stderr, "no intermediate certificate"); got != tc.chainWarns {
				t.Errorf("chain warning %v, want %v; stderr %q", got, tc.chainWarns, stderr)
			}
		})
	}
}

// TestTLSKeysGoTogether: tlsCert without tlsKey (or the reverse) is a
// config error naming the file, section and missing key.
func TestTLSKeysGoTogether(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "config.ini")
	write(t, path, fmt.Appendf(nil, "[instance.s]\ninstanceName = S\nprotocol = telnet\nport = %d\ntlsKey = a.key\n", freePort(t)))
	_, stderr, code := runCLI(t, "-c", path, "check")
	if code != 2 || !strings.Contains(stderr, "config.ini:1: [instance.s] tlsCert: missing: tlsKey is set") {
		t.Errorf("exit %d, stderr %q; want 2 and the missing tlsCert named", code, stderr)
	}
}

// TestTLSReloadRenews renews a running daemon's certificate files in
// place: after `fastws reload` new clients get the new certificate and a
// client connected before keeps chatting; a broken renewal is refused by
// reload (exit 2) and, sent as SIGHUP, by the daemon, which keeps the
// last good pair.
func TestTLSReloadRenews(t *testing.T) {
	t.Parallel()
	m := newCertMaker(t)
	dir := t.TempDir()
	m.leaf(t, dir, "site", 0, 24*time.Hour, false, true)
	cfg := tlsConfig(t, dir, "site.crt", "site.key")
	pid := startDaemon(t, cfg)
	port := regexp.MustCompile(`port = (\d+)`).FindStringSubmatch(string(mustReadFile(t, cfg)))[1]
	pool := m.Pool
	dialTLS := func() (*tls.Conn, *bufio.Reader, uint64) {
		t.Helper()
		c, err := tls.DialWithDialer(&net.Dialer{Timeout: testTimeout}, "tcp", "127.0.0.1:"+port, &tls.Config{RootCAs: pool, ServerName: "localhost"})
		if err != nil {
			t.Fatalf("dial TLS: %v", err)
		}
		t.Cleanup(func() { c.Close() })
		_ = c.SetDeadline(time.Now().Add(testTimeout))
		r := bufio.NewReader(c)
		line, err := r.ReadString('\n')
		mm := regexp.MustCompile(`You are uid (\d+)\.`).FindStringSubmatch(line)
		if err != nil || mm == nil {
			t.Fatalf("welcome: %q, %v", line, err)
		}
		uid, _ := strconv.ParseUint(mm[1], 10, 64)
		return c, r, uid
	}
	serial := func(c *tls.Conn) string { return c.ConnectionState().PeerCertificates[0].SerialNumber.String() }
	readUntil := func(r *bufio.Reader, want string) {
		t.Helper()
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				t.Fatalf("waiting for %q: %v", want, err)
			}
			if strings.TrimRight(line, "\r\n") == want {
				return
			}
		}
	}

	old, oldR, oldUID := dialTLS()
	first := serial(old)
	m.leaf(t, dir, "site", 0, 48*time.Hour, false, true) // renewed in place
	if out, stderr, code := runCLI(t, "-c", cfg, "reload"); code != 0 {
		t.Fatalf("reload: exit %d: %s%s", code, out, stderr)
	}
	renewed, _, newUID := dialTLS()
	if serial(renewed) == first {
		t.Fatal("after reload: the old certificate is served")
	}
	if _, err := fmt.Fprintf(old, "hello after renewal\r\n"); err != nil {
		t.Fatal(err)
	}
	readUntil(oldR, fmt.Sprintf("uid %d: hello after renewal", oldUID))
	_ = newUID

	// A key that does not match: reload refuses it before asking the daemon.
	good := mustReadFile(t, filepath.Join(dir, "site.key"))
	m.leaf(t, dir, "other", 0, 24*time.Hour, false, true)
	write(t, filepath.Join(dir, "site.key"), mustReadFile(t, filepath.Join(dir, "other.key")))
	_, stderr, code := runCLI(t, "-c", cfg, "reload")
	if code != 2 || !strings.Contains(stderr, "does not match") || !strings.Contains(stderr, "keeps its certificates") {
		t.Fatalf("reload of a mismatched pair: exit %d, %q; want 2 and the reason", code, stderr)
	}
	// SIGHUP reaches the daemon anyway: it refuses the pair and serves the renewed one.
	if err := syscall.Kill(pid, syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(testTimeout)
	for {
		out, _, _ := runCLI(t, "-c", cfg, "status")
		if strings.Contains(out, "does not match") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("status after SIGHUP with a bad pair: %q, want the refusal", out)
		}
		time.Sleep(50 * time.Millisecond)
	}
	again, _, _ := dialTLS()
	if serial(again) != serial(renewed) {
		t.Fatal("after a refused SIGHUP renewal: not the last good certificate")
	}
	write(t, filepath.Join(dir, "site.key"), good)
	if _, err := fmt.Fprintf(old, "still here\r\n"); err != nil {
		t.Fatal(err)
	}
	readUntil(oldR, fmt.Sprintf("uid %d: still here", oldUID))
}

func mustReadFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
