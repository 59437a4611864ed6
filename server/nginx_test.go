package server

import (
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// TestNginxProxy runs Debian's nginx with scripts/nginx/fastws.conf,
// terminating TLS in front of a plain websocket instance (the
// alternative to fastws's own TLS), and gets the page and chats through
// it with a plain telnet user. scripts/test.sh installs nginx.
func TestNginxProxy(t *testing.T) {
	bin, err := exec.LookPath("nginx")
	if err != nil {
		if bin, err = exec.LookPath("/usr/sbin/nginx"); err != nil {
			t.Skip("nginx not installed (scripts/test.sh installs it)")
		}
	}
	ca := newTestCA(t)
	s := startServer(t, wsInstance("ws", 1), telnetInstance("tel", 1))
	addrs := s.Addrs()

	prefix := t.TempDir()
	cert, key := ca.valid(t, prefix, "proxy", 3)
	tmpl, err := os.ReadFile("../scripts/nginx/fastws.conf")
	if err != nil {
		t.Fatal(err)
	}
	port := freeLoopbackPort(t)
	user := "" // nginx runs as whoever runs the test; as root, its workers would be nobody's, who cannot read the temp dir
	if os.Getuid() == 0 {
		user = "user root;"
	}
	conf := strings.NewReplacer("${USER_DIRECTIVE}", user, "${PREFIX}", prefix, "${UPSTREAM}", addrs["ws"],
		"${LISTEN_PORT}", strconv.Itoa(port), "${TLS_CERT}", cert, "${TLS_KEY}", key).Replace(string(tmpl))
	confFile := filepath.Join(prefix, "nginx.conf")
	writeFile(t, confFile, []byte(conf))

	cmd := exec.Command(bin, "-p", prefix, "-c", confFile, "-e", filepath.Join(prefix, "error.log"))
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGQUIT) // nginx's graceful stop
		_ = cmd.Wait()
	})
	front := "127.0.0.1:" + strconv.Itoa(port)
	waitFor(t, "nginx listening on "+front, func() bool {
		c, err := net.Dial("tcp", front)
		if err == nil {
			c.Close()
		}
		return err == nil
	})

	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: ca.clientTLS()}, Timeout: testTimeout}
	defer hc.CloseIdleConnections()
	resp, err := hc.Get("https://" + front + "/")
	if err != nil {
		t.Fatalf("GET the page through nginx: %v", err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(page), "<html") {
		t.Fatalf("GET https://%s/: %s, want the page", front, resp.Status)
	}

	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	chatOverWSS(t, ctx, hc, front, addrs["tel"], "through nginx", "through the proxy", "back through it")
}

// freeLoopbackPort returns a loopback port that was free a moment ago,
// for a child process that cannot take port 0.
func freeLoopbackPort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}
