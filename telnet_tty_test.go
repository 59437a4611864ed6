package main

import (
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestRealTelnetInTerminalIs8BitClean types Chinese, a check mark and an
// emoji into plain inetutils `telnet` (no flags) running in a terminal
// (tmux), and checks that another client receives them byte-identical.
// Without TRANSMIT-BINARY, telnet strips the 8th bit of typed input: the
// 0x9d of 李 became Ctrl-], its escape to the telnet> prompt.
func TestRealTelnetInTerminalIs8BitClean(t *testing.T) {
	t.Parallel()
	for _, tool := range []string{"telnet", "tmux"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed (scripts/test.sh installs it)", tool)
		}
	}
	port := freePort(t)
	startForeground(t, writeConfig(t, "", port))
	recv, ok, _ := knock(t, port, testTimeout)
	if !ok {
		t.Fatal("receiver: no welcome")
	}

	// A tmux server of its own, in a UTF-8 locale, ended with the test.
	sock := "fastws-test-" + strconv.Itoa(os.Getpid())
	tmux := func(args ...string) string {
		t.Helper()
		cmd := exec.Command("tmux", append([]string{"-L", sock}, args...)...)
		cmd.Env = append(os.Environ(), "LANG=C.UTF-8", "LC_ALL=C.UTF-8")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("tmux %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	capture := func() string { return tmux("capture-pane", "-p", "-t", "chat") }
	tmux("new-session", "-d", "-s", "chat", "-x", "160", "-y", "40", "telnet 127.0.0.1 "+strconv.Itoa(port))
	t.Cleanup(func() { _ = exec.Command("tmux", "-L", sock, "kill-server").Run() })

	// The client has taken the greeting once its welcome is on the
	// screen: the negotiation comes in front of it, in the same write.
	deadline := time.Now().Add(testTimeout)
	for !strings.Contains(capture(), "Welcome to fastws!") {
		if time.Now().After(deadline) {
			t.Fatalf("no welcome on the terminal; it shows:\n%s", capture())
		}
		time.Sleep(20 * time.Millisecond) // poll interval
	}
	m := regexp.MustCompile(`^\* uid (\d+) joined$`).FindStringSubmatch(recv.line())
	if m == nil {
		t.Fatal("receiver: want the terminal user's join")
	}
	uid := m[1]
	const text = "李 ✓ 🙂 你好"
	tmux("send-keys", "-t", "chat", "-l", text)
	tmux("send-keys", "-t", "chat", "Enter")
	recv.waitFor("uid " + uid + ": " + text)
}
