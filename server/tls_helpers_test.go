package server

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/fastws/fastws/server/config"
)

// testCA is a throwaway certificate authority made in-process for one
// test: it issues the certificates the TLS instances serve, and its pool
// is what the test's clients trust.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool
}

func newTestCA(tb testing.TB) *testCA {
	tb.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "fastws test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		tb.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &testCA{cert: cert, key: key, pool: pool}
}

// issue writes a leaf for 127.0.0.1 and localhost, valid from notBefore
// to notAfter, with serial, to dir/name.crt and dir/name.key, and
// returns their paths.
func (ca *testCA) issue(tb testing.TB, dir, name string, serial int64, notBefore, notAfter time.Time) (certFile, keyFile string) {
	tb.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "localhost"},
		DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore: notBefore, NotAfter: notAfter,
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		tb.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		tb.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")
	writeFile(tb, certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	writeFile(tb, keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}))
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

func pemCert(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
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
