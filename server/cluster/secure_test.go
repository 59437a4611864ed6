package cluster

import (
	"crypto/tls"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/jwt/v2"
	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nkeys"

	"github.com/fastws/fastws/chat"
	"github.com/fastws/fastws/server"
	"github.com/fastws/fastws/server/config"
	"github.com/fastws/fastws/server/tlstest"
)

// testCA signs the certificate of the NATS servers that speak TLS here.
// TestMain makes the process trust it the way an operator makes fastws
// trust a private CA on Linux: SSL_CERT_FILE, read once, before the first
// TLS connection.
var testCA *tlstest.CA

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "fastws-cluster-ca-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	code := func() int {
		defer os.RemoveAll(dir)
		testCA, err = tlstest.NewCA(time.Now().Add(24 * time.Hour))
		if err == nil {
			file := filepath.Join(dir, "ca.pem")
			err = os.WriteFile(file, testCA.PEM, 0o600)
			os.Setenv("SSL_CERT_FILE", file)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 2
		}
		return m.Run()
	}()
	os.Exit(code)
}

// serverTLS returns a TLS configuration for 127.0.0.1 signed by ca
// (self-signed if ca is nil).
func serverTLS(tb testing.TB, ca *tlstest.CA) *tls.Config {
	tb.Helper()
	der, key, err := ca.Issue(tlstest.Leaf{Serial: 2, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), ServerAuth: true})
	if err != nil {
		tb.Fatal(err)
	}
	return &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}
}

// operator is a NATS operator with one account (JetStream enabled) and
// the system account, for a server in operator mode: its users log in
// with a .creds file, as in production.
type operator struct {
	claims  *jwt.OperatorClaims
	account nkeys.KeyPair
	sys     string // the system account's public key
	jwts    map[string]string
}

func newOperator(tb testing.TB) *operator {
	tb.Helper()
	must := func(err error) {
		if err != nil {
			tb.Fatal(err)
		}
	}
	okp, err := nkeys.CreateOperator()
	must(err)
	opub, err := okp.PublicKey()
	must(err)
	op := &operator{claims: jwt.NewOperatorClaims(opub), jwts: map[string]string{}}
	account := func(js bool) (nkeys.KeyPair, string) {
		kp, err := nkeys.CreateAccount()
		must(err)
		pub, err := kp.PublicKey()
		must(err)
		ac := jwt.NewAccountClaims(pub)
		if js {
			ac.Limits.JetStreamLimits = jwt.JetStreamLimits{MemoryStorage: -1, DiskStorage: -1, Streams: -1, Consumer: -1}
		}
		enc, err := ac.Encode(okp)
		must(err)
		op.jwts[pub] = enc
		return kp, pub
	}
	op.account, _ = account(true)
	_, op.sys = account(false)
	return op
}

// creds writes a .creds file of a new user of the account, or of an
// account the server does not know if stranger, and returns its path.
func (op *operator) creds(tb testing.TB, stranger bool) string {
	tb.Helper()
	signer := op.account
	if stranger {
		var err error
		if signer, err = nkeys.CreateAccount(); err != nil {
			tb.Fatal(err)
		}
	}
	ukp, err := nkeys.CreateUser()
	if err != nil {
		tb.Fatal(err)
	}
	upub, _ := ukp.PublicKey()
	ujwt, err := jwt.NewUserClaims(upub).Encode(signer)
	if err != nil {
		tb.Fatal(err)
	}
	seed, _ := ukp.Seed()
	data, err := jwt.FormatUserConfig(ujwt, seed)
	if err != nil {
		tb.Fatal(err)
	}
	file := filepath.Join(tb.TempDir(), "user.creds")
	if err := os.WriteFile(file, data, 0o600); err != nil {
		tb.Fatal(err)
	}
	return file
}

// startSecureNATS runs an embedded nats-server with JetStream that only
// speaks TLS, with op's accounts (users log in with .creds) if op is
// set, else with one user and password.
func startSecureNATS(tb testing.TB, tc *tls.Config, op *operator, user, pass string) int {
	tb.Helper()
	o := &natsserver.Options{
		Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: tb.TempDir(), NoLog: true, NoSigs: true,
		TLSConfig: tc, TLSTimeout: 2,
	}
	if op != nil {
		res := &natsserver.MemAccResolver{}
		for pub, enc := range op.jwts {
			if err := res.Store(pub, enc); err != nil {
				tb.Fatal(err)
			}
		}
		o.TrustedOperators, o.AccountResolver, o.SystemAccount = []*jwt.OperatorClaims{op.claims}, res, op.sys
	} else {
		o.Username, o.Password = user, pass
	}
	s, err := natsserver.NewServer(o)
	if err != nil {
		tb.Fatalf("nats-server: %v", err)
	}
	s.Start()
	if !s.ReadyForConnections(testTimeout) {
		tb.Fatal("nats-server not ready")
	}
	tb.Cleanup(s.Shutdown)
	return s.Addr().(*net.TCPAddr).Port
}

// startNodeWith is startNode with the whole cluster configuration, and
// setup run on the node before it starts.
func startNodeWith(tb testing.TB, cfg Config, setup ...func(*Node)) *testNode {
	tb.Helper()
	n, err := Connect(cfg, testLog())
	if err != nil {
		tb.Fatalf("connect %s: %v", cfg.Name, err)
	}
	for _, f := range setup {
		f(n)
	}
	srv := server.New(testLog(), chat.Options{Cluster: n})
	if err := n.Start(srv.Hub()); err != nil {
		tb.Fatal(err)
	}
	inst := config.Instance{
		Section: "instance.t", Name: "t", Protocol: config.ProtocolTelnet,
		Host: "127.0.0.1", Port: 0, ChildProcessCount: 1, Limits: config.DefaultLimits(),
	}
	if err := srv.Start(&config.Config{StopTimeout: 5 * time.Second, Defaults: config.DefaultLimits(), Instances: []config.Instance{inst}}); err != nil {
		tb.Fatal(err)
	}
	tn := &testNode{node: n, srv: srv, addr: srv.Addrs()["t"]}
	tb.Cleanup(tn.stop)
	return tn
}

// crossLine checks that a lobby line said on a's node reaches b's.
func crossLine(t *testing.T, a, b *testNode) {
	t.Helper()
	ca, cb := dial(t, a.addr), dial(t, b.addr)
	agree(t, []*testNode{a, b}, 1, 1)
	ca.send("over tls")
	cb.skipUntil(fmt.Sprintf("uid %d: over tls", ca.uid))
	if st := a.node.Stats(); !strings.HasPrefix(st.NATS, "tls://") {
		t.Errorf("node a is connected to %q, want a tls:// URL", st.NATS)
	}
}

// TestNATSOverTLSWithCreds: nodes join a NATS server that speaks only
// TLS and runs in operator mode through a tls:// URL and a .creds file;
// a line crosses. A user the server does not know, a missing .creds and
// a server certificate no trusted CA signed are refused at start, naming
// the URL.
func TestNATSOverTLSWithCreds(t *testing.T) {
	op := newOperator(t)
	port := startSecureNATS(t, serverTLS(t, testCA), op, "", "")
	url := fmt.Sprintf("tls://127.0.0.1:%d", port)
	a := startNodeWith(t, Config{NATS: url, Name: "a", Credentials: op.creds(t, false)})
	b := startNodeWith(t, Config{NATS: url, Name: "b", Credentials: op.creds(t, false)})
	crossLine(t, a, b)

	refused := func(what string, cfg Config) {
		t.Helper()
		cfg.Timeout = 2 * time.Second
		n, err := Connect(cfg, testLog())
		if err == nil {
			n.Kill()
			t.Fatalf("%s: connected", what)
		}
		if want := fmt.Sprintf("127.0.0.1:%d", port); !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error %q does not name %s", what, err, want)
		}
		t.Logf("%s: %v", what, err)
	}
	refused("unknown account", Config{NATS: url, Name: "c", Credentials: op.creds(t, true)})
	refused("no credentials", Config{NATS: url, Name: "c"})
	stranger := startSecureNATS(t, serverTLS(t, nil), op, "", "")
	url, port = fmt.Sprintf("tls://127.0.0.1:%d", stranger), stranger
	refused("untrusted certificate", Config{NATS: url, Name: "c", Credentials: op.creds(t, false)})
}

// TestNATSOverTLSWithPassword: the user and password in a tls:// URL log
// in; a wrong password is refused at start, and the error names the URL
// without the password.
func TestNATSOverTLSWithPassword(t *testing.T) {
	port := startSecureNATS(t, serverTLS(t, testCA), nil, "fastws", "s3cret-pass")
	url := fmt.Sprintf("tls://fastws:s3cret-pass@127.0.0.1:%d", port)
	a := startNodeWith(t, Config{NATS: url, Name: "a"})
	b := startNodeWith(t, Config{NATS: url, Name: "b"})
	crossLine(t, a, b)

	n, err := Connect(Config{NATS: fmt.Sprintf("tls://fastws:wrong-pass@127.0.0.1:%d", port), Name: "c", Timeout: 2 * time.Second}, testLog())
	if err == nil {
		n.Kill()
		t.Fatal("a wrong password connected")
	}
	if msg := err.Error(); !strings.Contains(msg, fmt.Sprintf("127.0.0.1:%d", port)) || strings.Contains(msg, "wrong-pass") {
		t.Errorf("error %q: want the URL without the password", msg)
	}
}
