package daemon

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkAPISend measures POST /api/v1/send to everyone over one
// keep-alive connection, with 100 telnet members reading what it sends:
// requests per second, and deliveries per second (b.N x 100). It is not
// a timed test: run it with
//
//	go test ./server/daemon -run '^$' -bench APISend -benchtime 2000x
func BenchmarkAPISend(b *testing.B) {
	d, _ := apiDaemon(b, "", "")
	const members = 100
	var lines atomic.Int64
	for range members {
		conn, err := net.Dial("tcp", d.Addrs()["Telnet"])
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { conn.Close() })
		go func() {
			r := bufio.NewReader(conn)
			for {
				l, err := r.ReadString('\n')
				if err != nil {
					return
				}
				if strings.HasPrefix(l, "server: ") {
					lines.Add(1)
				}
			}
		}()
	}
	waitFor(b, func() bool { return d.Status().Daemon.Members == members })
	client := &http.Client{Timeout: testTimeout}
	url := "http://" + d.APIAddr() + "/api/v1/send"
	body := `{"text": "a line of about forty bytes from the app"}`
	b.ResetTimer()
	start := time.Now()
	for range b.N {
		req, _ := http.NewRequest("POST", url, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+testAPIKey)
		res, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if res.StatusCode != 200 {
			b.Fatalf("status %d", res.StatusCode)
		}
	}
	want := int64(b.N) * members
	waitFor(b, func() bool { return lines.Load() >= want })
	el := time.Since(start).Seconds()
	b.ReportMetric(float64(b.N)/el, "posts/s")
	b.ReportMetric(float64(want)/el, "deliveries/s")
}
