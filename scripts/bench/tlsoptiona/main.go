// Command tlsoptiona measures the TLS design fastws did not take (README,
// "TLS", option (a)): crypto/tls terminated by a goroutine
// pair per connection, the plaintext carried over a socket pair whose
// other end the event loop would own (held open here, unread).
package main

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/fastws/fastws/server/tlstest"
)

func rss() int64 {
	b, _ := os.ReadFile("/proc/self/status")
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return n << 10
		}
	}
	return 0
}

// Usage: go run ./scripts/bench/tlsoptiona server 6000 (the client mode is
// its own child process, so that its memory is not counted).
func main() {
	n, _ := strconv.Atoi(os.Args[2])
	if os.Args[1] == "client" {
		addr := os.Args[3]
		var conns []net.Conn
		for i := 0; i < n; i++ {
			c, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true})
			if err != nil {
				fmt.Fprintln(os.Stderr, "client:", err)
				os.Exit(1)
			}
			if _, err := c.Write([]byte("hi\n")); err != nil {
				os.Exit(1)
			}
			r := bufio.NewReader(c)
			if _, err := r.ReadString('\n'); err != nil {
				fmt.Fprintln(os.Stderr, "client read:", err)
				os.Exit(1)
			}
			conns = append(conns, c)
		}
		fmt.Println("ready")
		io.Copy(io.Discard, os.Stdin)
		for _, c := range conns { // held open until the parent is done
			c.Close()
		}
		return
	}
	var selfSigned *tlstest.CA
	der, key, _ := selfSigned.Issue(tlstest.Leaf{Serial: 1, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)})
	cfg := &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}, MinVersion: tls.VersionTLS12, DynamicRecordSizingDisabled: true}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	var mu sync.Mutex
	var loopEnds []*os.File
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				tc := tls.Server(c, cfg)
				if tc.Handshake() != nil {
					c.Close()
					return
				}
				fds, _ := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
				f := os.NewFile(uintptr(fds[0]), "ours")
				ours, _ := net.FileConn(f)
				f.Close()                                   // FileConn dup'ed it
				loop := os.NewFile(uintptr(fds[1]), "loop") // the event loop's end
				mu.Lock()
				loopEnds = append(loopEnds, loop)
				mu.Unlock()
				// The loop's echo of the first line stands in for a reply.
				go func() { // TLS -> plaintext
					buf := make([]byte, 4<<10)
					for {
						k, err := tc.Read(buf)
						if err != nil {
							ours.Close()
							return
						}
						if _, err := ours.Write(buf[:k]); err != nil {
							return
						}
					}
				}()
				go func() { // plaintext -> TLS
					buf := make([]byte, 4<<10)
					for {
						k, err := ours.Read(buf)
						if err != nil {
							tc.Close()
							return
						}
						if _, err := tc.Write(buf[:k]); err != nil {
							return
						}
					}
				}()
				// The loop answers the client's line once.
				b := make([]byte, 64)
				k, _ := loop.Read(b)
				loop.Write(b[:k])
			}()
		}
	}()
	runtime.GC()
	time.Sleep(time.Second)
	r0 := rss()
	cl := exec.Command(os.Args[0], "client", strconv.Itoa(n), ln.Addr().String())
	out, _ := cl.StdoutPipe()
	in, _ := cl.StdinPipe()
	cl.Stderr = os.Stderr
	cl.Start()
	bufio.NewReader(out).ReadString('\n')
	time.Sleep(2 * time.Second)
	r1 := rss()
	var fds int
	ents, _ := os.ReadDir("/proc/self/fd")
	fds = len(ents)
	fmt.Printf("option (a): %d TLS connections: RSS %.1f -> %.1f MiB, %.2f KiB/connection, goroutines %d, descriptors %d\n",
		n, float64(r0)/(1<<20), float64(r1)/(1<<20), float64(r1-r0)/1024/float64(n), runtime.NumGoroutine(), fds)
	in.Close()
	cl.Wait()
}
