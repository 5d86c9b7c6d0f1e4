package nothinglost

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/popbridge/popbridge/imapback"
	"github.com/popbridge/popbridge/internal/gwtest"
	"github.com/popbridge/popbridge/internal/oracle"
	"github.com/popbridge/popbridge/internal/testmail"
)

// TestDSlowAndStalledReaders: a client reading a 5 MB RETR slowly gets it
// whole; one that stops reading hits the write deadline, its session
// ends and its upstream connection is released; nothing changes upstream.
func TestDSlowAndStalledReaders(t *testing.T) {
	heavy(t)
	msgs := append(testmail.Ordinary(1), testmail.Big())
	e := startD(t, imapback.Policy{Delete: imapback.DeleteExpunge, Seen: imapback.SeenQuit}, msgs)
	before := e.snap("INBOX")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	t.Run("stalled", func(t *testing.T) {
		p := e.login()
		must(t, p.Send("DELE 1\r\nRETR 2\r\n"))
		p.Line()
		p.Line()
		// Read nothing more: the gateway's write deadline (fastLimits) must end
		// the session and release the upstream connection.
		if err := e.fp.WaitActive(ctx, 0); err != nil {
			t.Fatalf("upstream connection of a stalled reader not released: %d active", e.fp.Active())
		}
		rest, _ := readAll(p)
		if strings.Contains(rest, "\r\n.\r\n") {
			t.Fatal("a stalled reader got a terminator")
		}
		checkOracle(t, oracle.CheckUnchanged(before, e.snap("INBOX")))
	})
	t.Run("slow", func(t *testing.T) {
		p := e.login()
		must(t, p.Send("RETR 2\r\n"))
		if l, _ := p.Line(); !strings.HasPrefix(l, "+OK") {
			t.Fatalf("RETR: %q, want prefix %q", l, "+OK")
		}
		// About 3 MB/s, in small reads, well within the deadline per write.
		var got bytes.Buffer
		buf := make([]byte, 32<<10)
		for !bytes.HasSuffix(got.Bytes(), []byte("\r\n.\r\n")) {
			n, err := p.R.Read(buf)
			got.Write(buf[:n])
			if err != nil {
				t.Fatalf("after %d octets: %v", got.Len(), err)
			}
			time.Sleep(10 * time.Millisecond)
		}
		if want := testmail.DotStuff(msgs[1].Served); !bytes.Equal(got.Bytes()[:got.Len()-3], want) {
			t.Fatalf("slow RETR: %d octets, want %d", got.Len()-3, len(want))
		}
		p.Close()
	})
}

// TestDConnectionLoad: slowloris clients trickling bytes before login,
// hundreds of idle connections and a burst of connects over the
// connection cap. Caps hold (connections over MaxConnections are refused
// at once), slowloris clients are dropped at the AUTHORIZATION deadline,
// a normal login succeeds throughout, memory stays bounded (64 KiB a
// connection at most, both ends in this process), and
// goroutines and file descriptors return to baseline.
func TestDConnectionLoad(t *testing.T) {
	heavy(t)
	const (
		burst       = 150
		loris       = 40
		authTimeout = 5 * time.Second
	)
	idle := idleConnections(t)
	maxConns := idle + 50
	e := startD(t, imapback.Policy{Delete: imapback.DeleteFlag}, testmail.Ordinary(2), func(o *gwtest.Options) {
		o.Limits.AuthTimeout = authTimeout
		o.Limits.MaxConnections = maxConns
		o.Limits.MaxConnectionsPerIP = maxConns
	})
	login := func() {
		t.Helper()
		p := e.login()
		if _, err := p.Retr(1); err != nil {
			t.Fatal(err)
		}
		p.Close()
	}
	login()
	base := gwtest.Measure()

	lorisDone := make(chan time.Duration, loris)
	var wg sync.WaitGroup
	startSlowloris(e, loris, &wg, lorisDone)

	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for range idle {
		c, err := net.Dial("tcp", e.g.Addr())
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	login()

	// The burst: some are over the cap and must be refused at once.
	greeted, refused, heap := connectBurst(e, burst)
	if refused == 0 || greeted+refused != burst {
		t.Errorf("burst of %d over a cap of %d: %d greeted, %d refused", burst, maxConns, greeted, refused)
	}
	if grew := int64(heap.HeapInuse) - int64(base.HeapInuse); grew > int64(idle+burst+loris)<<16 {
		t.Errorf("heap grew by %d MB with %d connections", grew>>20, idle+burst+loris)
	}
	// Once the burst is gone, a normal login works beside the idle ones.
	time.Sleep(100 * time.Millisecond)
	login()

	wg.Wait()
	close(lorisDone)
	checkSlowlorisCut(t, lorisDone, authTimeout)
	// The idle ones were cut at the AUTHORIZATION deadline too.
	for _, c := range conns[:5] {
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.ReadAll(c); err != nil {
			t.Errorf("idle connection: %v", err)
		}
	}
	for _, c := range conns {
		c.Close()
	}
	if r, ok := gwtest.WaitBaseline(base, 8, 15*time.Second); !ok {
		t.Fatalf("resources did not return to baseline: %v, baseline %v", r, base)
	}
	t.Log(fmt.Sprintf("burst: %d greeted, %d refused; peak %v", greeted, refused, heap))
}

// idleConnections raises the descriptor limit to its maximum and returns
// how many idle connections fit: thousands, but both ends live in this
// process, so it needs two descriptors each.
func idleConnections(t *testing.T) int {
	t.Helper()
	idle := 2000
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err == nil && lim.Cur < lim.Max {
		lim.Cur = lim.Max
		syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim)
		syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim)
	}
	if room := int(lim.Cur)/2 - 500; room < idle {
		t.Logf("descriptor limit %d: %d idle connections instead of %d", lim.Cur, room, idle)
		idle = max(room, 100)
	}
	return idle
}

// startSlowloris starts n slowloris clients: one byte every 100 ms, never
// a whole line. Each sends how long it lasted on done (-1 if it could not
// connect) and marks wg done.
func startSlowloris(e *denv, n int, wg *sync.WaitGroup, done chan<- time.Duration) {
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := net.Dial("tcp", e.g.Addr())
			if err != nil {
				done <- -1
				return
			}
			defer c.Close()
			start := time.Now()
			for i := 0; i < 100; i++ {
				if _, err := c.Write([]byte("U")); err != nil {
					break
				}
				time.Sleep(100 * time.Millisecond)
			}
			done <- time.Since(start)
		}()
	}
}

// connectBurst opens size connections at once and counts the greeted and the
// refused ones; it measures the resources while they are all open, then
// closes them.
func connectBurst(e *denv, size int) (greeted, refused int, peak gwtest.Resources) {
	var mu sync.Mutex
	var bwg sync.WaitGroup
	burstConns := make([]net.Conn, size)
	for i := range size {
		bwg.Add(1)
		go func() {
			defer bwg.Done()
			c, err := net.Dial("tcp", e.g.Addr())
			if err != nil {
				return
			}
			burstConns[i] = c
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			l := make([]byte, 128)
			n, _ := c.Read(l)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case strings.HasPrefix(string(l[:n]), "-ERR"):
				refused++
			case strings.HasPrefix(string(l[:n]), "+OK"):
				greeted++
			}
		}()
	}
	bwg.Wait()
	peak = gwtest.Measure()
	for _, c := range burstConns {
		if c != nil {
			c.Close()
		}
	}
	return greeted, refused, peak
}

// checkSlowlorisCut checks that every slowloris client was dropped at the
// AUTHORIZATION deadline.
func checkSlowlorisCut(t *testing.T, lorisDone <-chan time.Duration, authTimeout time.Duration) {
	t.Helper()
	for d := range lorisDone {
		if d < 0 || d > authTimeout+4*time.Second {
			t.Errorf("slowloris client lasted %v (AuthTimeout %v)", d, authTimeout)
		}
	}
}
