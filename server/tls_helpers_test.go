package server

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/fastws/fastws/server/config"
	"github.com/fastws/fastws/server/tlstest"
)

// testCA is a throwaway certificate authority made in-process for one
// test: it issues the certificates the TLS instances serve, and its pool
// is what the test's clients trust.
type testCA struct {
	*tlstest.CA
	cert *x509.Certificate
	pool *x509.CertPool
}

func newTestCA(tb testing.TB) *testCA {
	tb.Helper()
	ca, err := tlstest.NewCA(time.Now().Add(24 * time.Hour))
	if err != nil {
		tb.Fatal(err)
	}
	return &testCA{CA: ca, cert: ca.Cert, pool: ca.Pool}
}

// issue writes a leaf for 127.0.0.1 and localhost, valid from notBefore
// to notAfter, with serial, to dir/name.crt and dir/name.key, and
// returns their paths.
func (ca *testCA) issue(tb testing.TB, dir, name string, serial int64, notBefore, notAfter time.Time) (certFile, keyFile string) {
	tb.Helper()
	der, key, err := ca.Issue(tlstest.Leaf{Serial: serial, DNSNames: []string{"localhost"},
		NotBefore: notBefore, NotAfter: notAfter, ServerAuth: true})
	if err != nil {
		tb.Fatal(err)
	}
	keyPEM, err := tlstest.PEMKey(key)
	if err != nil {
		tb.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")
	writeFile(tb, certFile, tlstest.PEMCert(der))
	writeFile(tb, keyFile, keyPEM)
	return certFile, keyFile
}

// valid issues a leaf valid from an hour ago for a day.
func (ca *testCA) valid(tb testing.TB, dir, name string, serial int64) (string, string) {
	return ca.issue(tb, dir, name, serial, time.Now().Add(-time.Hour), time.Now().Add(24*time.Hour))
}

func writeFile(tb testing.TB, path string, b []byte) {
	tb.Helper()
	// Through a rename, as certbot and the like renew: a reader sees the
	// old file or the new one, never half of it.
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		tb.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		tb.Fatal(err)
	}
}

// withTLS returns ic serving TLS with a fresh certificate from ca.
func withTLS(tb testing.TB, ic config.Instance, ca *testCA) config.Instance {
	ic.TLSCert, ic.TLSKey = ca.valid(tb, tb.TempDir(), ic.Name, 2)
	return ic
}

// clientTLS is the config of a client that trusts ca only.
func (ca *testCA) clientTLS() *tls.Config {
	return &tls.Config{RootCAs: ca.pool, ServerName: "127.0.0.1"}
}

// dialTLS connects to a TLS telnet instance at addr, completes the
// handshake and reads nothing.
func dialTLS(tb testing.TB, addr string, cfg *tls.Config) *client {
	tb.Helper()
	c := dialRaw(tb, addr)
	tc := tls.Client(c.conn, cfg)
	_ = tc.SetDeadline(time.Now().Add(testTimeout))
	if err := tc.Handshake(); err != nil {
		tb.Fatalf("TLS handshake with %s: %v", addr, err)
	}
	_ = tc.SetDeadline(time.Time{})
	c.conn = tc
	c.r.Reset(tc)
	return c
}

// testConfig is a config of insts, as startServer runs, for Reload.
func testConfig(insts ...config.Instance) *config.Config {
	return &config.Config{StopTimeout: 5 * time.Second, Defaults: config.DefaultLimits(), Instances: insts}
}

func mustRead(tb testing.TB, path string) []byte {
	tb.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// pipeConn is a net.Conn over a child process's stdout and stdin, for a
// client whose TLS is the child's (openssl s_client). Deadlines are the
// child's context's.
type pipeConn struct {
	net.Conn // nil: only what client uses is implemented
	r        io.Reader
	w        io.WriteCloser
}

func (p *pipeConn) Read(b []byte) (int, error)       { return p.r.Read(b) }
func (p *pipeConn) Write(b []byte) (int, error)      { return p.w.Write(b) }
func (p *pipeConn) Close() error                     { return p.w.Close() }
func (p *pipeConn) SetReadDeadline(time.Time) error  { return nil }
func (p *pipeConn) SetDeadline(time.Time) error      { return nil }
func (p *pipeConn) SetWriteDeadline(time.Time) error { return nil }

func newReader(c net.Conn) *bufio.Reader { return bufio.NewReaderSize(c, 1<<20) }

// chatOverWSS dials wss://front/ with hc and checks that it and a telnet
// client on telAddr chat both ways: the telnet client says toWS, the wss
// one toTel. how says which path failed ("through nginx", "directly").
func chatOverWSS(t *testing.T, ctx context.Context, hc *http.Client, front, telAddr, how, toWS, toTel string) {
	t.Helper()
	conn, _, err := websocket.Dial(ctx, "wss://"+front+"/", &websocket.DialOptions{HTTPClient: hc})
	if err != nil {
		t.Fatalf("dial wss %s: %v", how, err)
	}
	defer conn.CloseNow()
	ws := &coderClient{tb: t, ctx: ctx, conn: conn}
	m := welcomeRE.FindStringSubmatch(ws.read())
	if m == nil {
		t.Fatalf("no welcome over wss %s", how)
	}
	tel := dial(t, telAddr)
	ws.expect(fmt.Sprintf("* uid %d joined", tel.uid))
	tel.send(toWS + "\r\n")
	ws.expect(fmt.Sprintf("uid %d: %s", tel.uid, toWS))
	ws.send(toTel + "\n")
	tel.skipUntil(fmt.Sprintf("uid %s: %s", m[1], toTel))
}
