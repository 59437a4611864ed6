package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

const (
	cliAPIKey    = "cli-test-api-key-0123456789"
	cliSecret    = "cli-test-token-secret-0123456789"
	cliAPIKeyNew = "cli-test-api-key-reloaded-987654"
)

// apiConfig writes a config with a telnet and a websocket instance and
// [api] on free loopback ports, and returns its path and the API port.
func apiConfig(t *testing.T, key string) (cfg string, apiPort, telnetPort, wsPort int) {
	t.Helper()
	apiPort, telnetPort, wsPort = freePort(t), freePort(t), freePort(t)
	text := fmt.Sprintf(`[fastws]
runDir = ./run
metricsListen =
messagesPerSecond = 0

[api]
listen = 127.0.0.1:%d
key = %s
tokenSecret = %s

[instance.t]
instanceName = Telnet
protocol = telnet
host = 127.0.0.1
port = %d
childProcessCount = 1

[instance.w]
instanceName = WS
protocol = websocket
host = 127.0.0.1
port = %d
childProcessCount = 1
`, apiPort, key, cliSecret, telnetPort, wsPort)
	cfg = filepath.Join(t.TempDir(), "config.ini")
	if err := os.WriteFile(cfg, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return cfg, apiPort, telnetPort, wsPort
}

// apiCall makes one request to the API on port and decodes the answer.
func apiCall(t *testing.T, port int, method, path, key, body string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, "http://127.0.0.1:"+strconv.Itoa(port)+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+key)
	res, err := (&http.Client{Timeout: testTimeout}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var m map[string]any
	b, _ := io.ReadAll(res.Body)
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("%s %s: body %q: %v", method, path, b, err)
	}
	return res.StatusCode, m
}

// TestAPIWithTheBinary: what a user does: check, start -d with [api],
// mint a token with `fastws token`, /auth with it, push to the user with
// the API, reload a new key; the key and secret never in any output.
func TestAPIWithTheBinary(t *testing.T) {
	t.Parallel()
	cfg, apiPort, telnetPort, _ := apiConfig(t, cliAPIKey)
	var outputs []string
	out, errOut, code := runCLI(t, "-c", cfg, "check")
	outputs = append(outputs, out, errOut)
	if code != 0 {
		t.Fatalf("check: exit %d %s %s", code, out, errOut)
	}
	out, errOut, code = runCLI(t, "-c", cfg, "start", "-d")
	outputs = append(outputs, out, errOut)
	if code != 0 {
		t.Fatalf("start -d: exit %d\n%s\n%s", code, out, errOut)
	}
	daemonPID(t, cfg, "start -d", out)
	t.Cleanup(func() { runCLI(t, "-c", cfg, "stop") })
	if want := "API: http://127.0.0.1:" + strconv.Itoa(apiPort) + "/api/v1/"; !strings.Contains(out, want) {
		t.Errorf("start -d printed %q, want %q", out, want)
	}

	tok, errOut, code := runCLI(t, "-c", cfg, "token", "--user", "u123", "--name", "alice", "--room", "games")
	if code != 0 || strings.Count(tok, ".") != 2 {
		t.Fatalf("token: exit %d, %q %q", code, tok, errOut)
	}
	c := connect(t, telnetPort)
	c.say("/auth " + strings.TrimSpace(tok))
	c.waitFor("* authenticated as alice (user u123)")
	c.waitFor("* you are now in #games (1 member)")

	if code, m := apiCall(t, apiPort, "POST", "/api/v1/send", cliAPIKey, `{"user": "u123", "text": "hello from the app"}`); code != 200 || m["delivered"] != 1.0 {
		t.Fatalf("send: got %d %v, want 200 delivered 1", code, m)
	}
	c.waitFor("server: hello from the app")
	if code, _ := apiCall(t, apiPort, "GET", "/api/v1/online", "wrong-key-wrong-key", ""); code != 401 {
		t.Errorf("a wrong key: got %d, want 401", code)
	}

	// Reload a new key: applied at once; the old one is refused.
	data, _ := os.ReadFile(cfg)
	if err := os.WriteFile(cfg, []byte(strings.Replace(string(data), cliAPIKey, cliAPIKeyNew, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	out, errOut, code = runCLI(t, "-c", cfg, "reload")
	outputs = append(outputs, out, errOut)
	if code != 0 {
		t.Fatalf("reload: exit %d %s %s", code, out, errOut)
	}
	if code, _ := apiCall(t, apiPort, "GET", "/api/v1/online", cliAPIKey, ""); code != 401 {
		t.Errorf("the old key after reload: got %d, want 401", code)
	}
	if code, m := apiCall(t, apiPort, "GET", "/api/v1/online", cliAPIKeyNew, ""); code != 200 || m["users"] != 1.0 {
		t.Errorf("the new key after reload: got %d %v, want 200 with 1 user", code, m)
	}
	for _, verb := range []string{"status", "connections"} {
		out, errOut, _ = runCLI(t, "-c", cfg, verb, "--json")
		outputs = append(outputs, out, errOut)
	}
	log, _ := os.ReadFile(filepath.Join(runDir(cfg), "fastws.log"))
	outputs = append(outputs, string(log))
	for _, o := range outputs {
		for _, secret := range []string{cliAPIKey, cliAPIKeyNew, cliSecret} {
			if strings.Contains(o, secret) {
				t.Errorf("output shows a secret:\n%s", o)
			}
		}
	}
}

// TestAPIConfigRefusals: check refuses a short key without printing it;
// token refuses without a secret or a user; start names a busy API port.
func TestAPIConfigRefusals(t *testing.T) {
	t.Parallel()
	short := "shortkey-12345"
	cfg, _, _, _ := apiConfig(t, short)
	out, errOut, code := runCLI(t, "-c", cfg, "check")
	if code != 2 || !strings.Contains(errOut, "[api] key: too short: at least 16 bytes") || strings.Contains(out+errOut, short) {
		t.Errorf("check with a short key: got exit %d, %q %q; want 2 naming [api] key, without it", code, out, errOut)
	}
	_, errOut, code = runCLI(t, "-c", cfg, "token")
	if code != 2 || !strings.Contains(errOut, "--user is required") {
		t.Errorf("token without --user: got exit %d, %q", code, errOut)
	}
	noSecret := writeConfig(t, "", freePort(t))
	_, errOut, code = runCLI(t, "-c", noSecret, "token", "--user", "u1")
	if code != 2 || !strings.Contains(errOut, "no tokenSecret") {
		t.Errorf("token without a secret: got exit %d, %q", code, errOut)
	}

	busy, apiPort, _, _ := apiConfig(t, cliAPIKey)
	ln, err := (&netListenConfig{}).listen(apiPort)
	if err != nil {
		t.Skipf("port %d: %v", apiPort, err)
	}
	defer ln.Close()
	out, errOut, code = runCLI(t, "-c", busy, "start", "-d")
	if code != 1 || !strings.Contains(out+errOut, "[api] listen") || !strings.Contains(out+errOut, "address already in use") {
		t.Errorf("start with the API port taken: got exit %d, %q %q; want 1 naming [api] listen", code, out, errOut)
	}
	if exists(filepath.Join(runDir(busy), "fastws.pid")) {
		t.Errorf("a failed start left its pidfile")
	}
}

// TestExamples runs scripts/examples against the built daemon: the Node
// client mints a token with jsonwebtoken and connects with ws; the PHP
// script pushes to its user and lists who is online. scripts/test.sh
// installs php-cli, php-curl and the npm packages and sets
// FASTWS_EXAMPLES=1, which makes missing tools a failure, not a skip.
func TestExamples(t *testing.T) {
	t.Parallel()
	dir := filepath.Join("scripts", "examples")
	_, errPHP := exec.LookPath("php")
	_, errNode := os.Stat(filepath.Join(dir, "node_modules", "jsonwebtoken"))
	if errPHP != nil || errNode != nil {
		if os.Getenv("FASTWS_EXAMPLES") == "1" {
			t.Fatalf("php: %v; node modules: %v", errPHP, errNode)
		}
		t.Skip("php-cli or scripts/examples/node_modules missing; scripts/test.sh installs them")
	}
	cfg, apiPort, _, wsPort := apiConfig(t, cliAPIKey)
	out, errOut, code := runCLI(t, "-c", cfg, "start", "-d")
	if code != 0 {
		t.Fatalf("start -d: exit %d\n%s\n%s", code, out, errOut)
	}
	daemonPID(t, cfg, "start -d", out)
	t.Cleanup(func() { runCLI(t, "-c", cfg, "stop") })

	ctx, cancel := context.WithTimeout(context.Background(), 2*testTimeout)
	defer cancel()
	text := "order 42 shipped"
	node := exec.CommandContext(ctx, "node", "client.mjs", "u123", "alice", text)
	node.Dir = dir
	node.Env = append(os.Environ(), "FASTWS_WS=ws://127.0.0.1:"+strconv.Itoa(wsPort), "FASTWS_TOKEN_SECRET="+cliSecret)
	stdout, err := node.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var nodeErr strings.Builder
	node.Stderr = &nodeErr
	if err := node.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(stdout)
	if !sc.Scan() || !strings.HasPrefix(sc.Text(), "ready ") {
		_ = node.Wait()
		t.Fatalf("node client: got %q, want ready; stderr %s", sc.Text(), nodeErr.String())
	}
	php := exec.CommandContext(ctx, "php", "push.php", "u123", text)
	php.Dir = dir
	php.Env = append(os.Environ(), "FASTWS_API=http://127.0.0.1:"+strconv.Itoa(apiPort), "FASTWS_API_KEY="+cliAPIKey)
	phpOut, err := php.CombinedOutput()
	if err != nil {
		t.Fatalf("php push.php: %v\n%s", err, phpOut)
	}
	for _, want := range []string{`{"send":{"delivered":1}}`, `{"online":{"members":1,"rooms":1,"users":1}}`, `"user":"u123"`, `"protocol":"websocket"`} {
		if !strings.Contains(string(phpOut), want) {
			t.Errorf("php output %s: want %s", phpOut, want)
		}
	}
	rest, _ := io.ReadAll(stdout)
	if err := node.Wait(); err != nil {
		t.Fatalf("node client: %v\nstdout: %s\nstderr: %s", err, rest, nodeErr.String())
	}
	if !strings.Contains(string(rest), `"text":"`+text+`"`) {
		t.Errorf("node client printed %s, want the pushed text", rest)
	}
}

// netListenConfig takes a port for the duration of a test.
type netListenConfig struct{}

func (netListenConfig) listen(port int) (io.Closer, error) {
	return (&net.ListenConfig{}).Listen(context.Background(), "tcp", "127.0.0.1:"+strconv.Itoa(port))
}
