// Command sendmem measures what clients that never read cost a running
// fastws daemon (maxSendBufferTotal's bound): it opens -n telnet connections that
// never read (small receive buffers, so that output piles up in the
// daemon, not in the kernel), has one more client broadcast -lines lines
// of -size bytes, and prints the daemon's VmRSS (read from
// /proc/PID/status) before, at its peak and after, with how many of the
// non-readers the daemon closed. It builds and starts nothing: start the
// daemon yourself (go run . -c FILE start, or the built binary) with
// messagesPerSecond and bytesPerSecond high enough for the burst. Every
// wait is bounded by -timeout; the descriptors it needs are -n + 1, so
// raise the soft limit first (ulimit -n 20000).
//
//	go run ./scripts/hostile/sendmem -addr 127.0.0.1:19910 -pid 1234 -n 12000
package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "sendmem:", err)
		os.Exit(1)
	}
}

func run() error {
	addr := flag.String("addr", "127.0.0.1:19910", "telnet instance of the running daemon")
	pid := flag.Int("pid", 0, "the daemon's pid, for /proc/PID/status")
	n := flag.Int("n", 12000, "connections that never read")
	lines := flag.Int("lines", 10, "lines broadcast")
	size := flag.Int("size", 60<<10, "bytes per line")
	settle := flag.Duration("settle", 5*time.Second, "how long to watch RSS after the burst")
	timeout := flag.Duration("timeout", 2*time.Minute, "bound on the whole run")
	flag.Parse()
	if *pid <= 0 {
		return errors.New("-pid is required")
	}
	deadline := time.Now().Add(*timeout)

	base, err := rss(*pid)
	if err != nil {
		return err
	}
	d := rcvBufDialer(4 << 10)
	quiet := make([]net.Conn, 0, *n)
	defer func() {
		for _, c := range quiet {
			c.Close()
		}
	}()
	for len(quiet) < *n && time.Now().Before(deadline) {
		c, err := d.Dial("tcp", *addr)
		if err != nil {
			return fmt.Errorf("dial non-reader %d: %w", len(quiet), err)
		}
		quiet = append(quiet, c)
	}
	idle, _ := rss(*pid)
	// The peak is sampled from here on, whatever happens to the talker.
	var peak atomic.Int64
	peak.Store(int64(idle))
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		for {
			if v, err := rss(*pid); err == nil && int64(v) > peak.Load() {
				peak.Store(int64(v))
			}
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
		}
	}()
	report := func(got, refused int, fanned time.Duration) {
		after, _ := rss(*pid)
		fmt.Printf("non-readers %d, broadcast %d of %d lines of %d bytes (%d refused) in %v\n", len(quiet), got, *lines, *size, refused, fanned.Round(time.Millisecond))
		fmt.Printf("daemon VmRSS: %d MiB before, %d MiB with the idle connections, peak %d MiB, %d MiB at the end\n",
			base>>20, idle>>20, peak.Load()>>20, after>>20)
	}

	// The talker reads, with room for the whole burst: the daemon must
	// not take it for one of the non-readers.
	talker, err := rcvBufDialer(2*(*lines)*(*size)).Dial("tcp", *addr)
	if err != nil {
		return fmt.Errorf("dial talker: %w", err)
	}
	defer talker.Close()
	r := bufio.NewReaderSize(talker, 1<<20)
	_ = talker.SetReadDeadline(deadline)
	welcome, err := r.ReadString('\n')
	if err != nil {
		return fmt.Errorf("talker: welcome: %w", err)
	}
	uid := strings.TrimSuffix(strings.Fields(welcome)[6], ".") // "Welcome to fastws! You are uid 7. ..."
	body := strings.Repeat("x", *size-1)
	start := time.Now()
	go func() { // the talker reads meanwhile
		if _, err := talker.Write([]byte(strings.Repeat(body+"\n", *lines))); err != nil {
			fmt.Fprintln(os.Stderr, "sendmem: talker: write:", err)
		}
	}()
	// The talker reads: once its own lines are back, the daemon has
	// fanned them out to everyone.
	got, left, refused := 0, 0, 0
	for got+refused < *lines {
		line, err := r.ReadString('\n')
		if err != nil {
			report(got, refused, time.Since(start))
			return fmt.Errorf("talker: after %d of %d lines: %w", got, *lines, err)
		}
		line = strings.TrimSuffix(line, "\r\n")
		switch {
		case line == "uid "+uid+": "+body:
			got++
		case line == "! slow down":
			refused++
		case strings.HasSuffix(line, " left"):
			left++
		}
	}
	fanned := time.Since(start)
	for end := time.Now().Add(*settle); time.Now().Before(end) && time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		// Leave notices tell how many non-readers the daemon closed.
		_ = talker.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				break
			}
			if strings.HasSuffix(line, " left\r\n") {
				left++
			}
		}
	}
	report(got, refused, fanned)
	fmt.Printf("leave notices seen: %d (non-readers closed; 0 if the room is past announceLimit)\n", left)
	return nil
}

// rcvBufDialer dials with a receive buffer of size bytes.
func rcvBufDialer(size int) *net.Dialer {
	return &net.Dialer{Timeout: 10 * time.Second, Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, size)
		})
		return errors.Join(err, serr)
	}}
}

// rss returns VmRSS of pid in bytes.
func rss(pid int) (int, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, err := strconv.Atoi(f[1])
			return kb << 10, err
		}
	}
	return 0, errors.New("no VmRSS in /proc/" + strconv.Itoa(pid) + "/status")
}
