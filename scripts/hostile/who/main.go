// Command who measures what /who spam costs everyone else: it fills a
// running fastws daemon's room with idle telnet members, then measures a
// private round trip ($<own uid>:text, read back) while the room is quiet
// and while a few clients send /who as fast as the daemon lets them, and
// prints both latency distributions and their ratio.
//
//	go run ./scripts/hostile/who -addr 127.0.0.1:19910 -members 12000
//
// Loopback only: -addr must be a loopback address. Every phase is bounded
// in time, and the tool closes its connections and exits by itself. The
// members come from -src-addrs loopback source addresses, so that the
// daemon's maxConnectionsPerIP (default 1000) admits them; raise the open
// file limit (ulimit -n) above -members.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"net"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:19910", "a telnet instance of the daemon (loopback)")
	members := flag.Int("members", 12000, "idle members in the room")
	spammers := flag.Int("spammers", 4, "clients sending /who")
	burst := flag.Int("burst", 100, "/who lines in a spammer's first write")
	phase := flag.Duration("phase", 5*time.Second, "length of the quiet and the spam measurement")
	srcAddrs := flag.Int("src-addrs", 20, "loopback source addresses (127.0.1.1 on) the members come from")
	flag.Parse()
	host, _, err := net.SplitHostPort(*addr)
	if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
		fail("-addr %q: want a loopback host:port", *addr)
	}

	start := time.Now()
	idle := make([]net.Conn, 0, *members)
	for k := range *members {
		ip := net.IPv4(127, 0, 1, byte(1+k%*srcAddrs))
		d := net.Dialer{Timeout: 10 * time.Second, LocalAddr: &net.TCPAddr{IP: ip}}
		c, err := d.Dial("tcp", *addr)
		if err != nil {
			fail("member %d: %v", k, err)
		}
		idle = append(idle, c)
		go drain(c) // members read, so none is a slow consumer
	}
	fmt.Printf("%d members connected in %v\n", len(idle), time.Since(start).Round(time.Millisecond))

	probe := dial(*addr)
	quiet := probe.roundTrips(*phase)

	var stop atomic.Bool
	var wg sync.WaitGroup
	var whoLines, refused atomic.Int64
	for range *spammers {
		s := dial(*addr)
		wg.Go(func() {
			go func() {
				for !stop.Load() {
					l, err := s.r.ReadString('\n')
					if err != nil {
						return
					}
					switch {
					case strings.HasPrefix(l, "! slow down"):
						refused.Add(1)
					case strings.HasPrefix(l, "* "):
						whoLines.Add(1)
					}
				}
			}()
			// One packet of -burst /who lines (the default messageBurst
			// lets them all through), then one every 20 ms: the most the
			// default messagesPerSecond (50) lets a client send without
			// being refused.
			if _, err := s.c.Write([]byte(strings.Repeat("/who\n", *burst))); err != nil {
				return
			}
			for !stop.Load() {
				time.Sleep(20 * time.Millisecond)
				if _, err := s.c.Write([]byte("/who\n")); err != nil {
					return
				}
			}
			s.c.Close()
		})
	}
	spam := probe.roundTrips(*phase)
	stop.Store(true)
	wg.Wait()

	fmt.Printf("quiet room:  %s\n", quiet)
	fmt.Printf("/who spam:   %s (%d spammers sent %d /who lines at once, then 50 a second; they got %d listing lines and %d refusals)\n",
		spam, *spammers, *burst, whoLines.Load(), refused.Load())
	if !spam.timedOut && !quiet.timedOut {
		fmt.Printf("p99 ratio spam/quiet: %.2f\n", float64(spam.p99)/float64(quiet.p99))
	}
	for _, c := range idle {
		c.Close()
	}
}

type client struct {
	c   net.Conn
	r   *bufio.Reader
	uid string
}

var welcome = regexp.MustCompile(`You are uid (\d+)\.`)

func dial(addr string) *client {
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		fail("dial: %v", err)
	}
	cl := &client{c: c, r: bufio.NewReaderSize(c, 1<<16)}
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	l, err := cl.r.ReadString('\n')
	m := welcome.FindStringSubmatch(l)
	if err != nil || m == nil {
		fail("welcome: %q %v", l, err)
	}
	cl.uid = m[1]
	return cl
}

type dist struct {
	n             int
	p50, p99, max time.Duration
	timedOut      bool // a round trip took longer than timeout
}

// timeout is the longest a round trip may take before the measurement
// gives up on it.
const timeout = 30 * time.Second

func (d dist) String() string {
	if d.timedOut {
		return fmt.Sprintf("%d round trips, then one took over %v", d.n, timeout)
	}
	return fmt.Sprintf("%d round trips, p50 %v, p99 %v, max %v", d.n, d.p50, d.p99, d.max)
}

// roundTrips sends private messages to itself, one at a time, for d.
func (cl *client) roundTrips(d time.Duration) dist {
	var took []time.Duration
	end := time.Now().Add(d)
	for k := 0; time.Now().Before(end); k++ {
		tag := "rt" + strconv.Itoa(k)
		want := " (private): " + tag + "\r\n"
		t0 := time.Now()
		if _, err := fmt.Fprintf(cl.c, "$%s:%s\n", cl.uid, tag); err != nil {
			fail("probe: %v", err)
		}
		_ = cl.c.SetReadDeadline(time.Now().Add(timeout))
		for {
			l, err := cl.r.ReadString('\n')
			if err != nil {
				fmt.Printf("probe: no answer: %v\n", err)
				return dist{n: len(took), timedOut: true}
			}
			if strings.HasSuffix(l, want) {
				break
			}
		}
		took = append(took, time.Since(t0))
		time.Sleep(40 * time.Millisecond) // 25 a second: within the default messagesPerSecond (50)
	}
	slices.Sort(took)
	q := func(p float64) time.Duration { return took[min(len(took)-1, int(p*float64(len(took))))] }
	return dist{n: len(took), p50: q(0.50), p99: q(0.99), max: took[len(took)-1]}
}

func drain(c net.Conn) {
	buf := make([]byte, 4096)
	for {
		if _, err := c.Read(buf); err != nil {
			return
		}
	}
}

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "who: "+format+"\n", args...)
	os.Exit(1)
}
