package nothinglost

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/popbridge/popbridge/imapback"
	"github.com/popbridge/popbridge/internal/gwtest"
	"github.com/popbridge/popbridge/internal/oracle"
	"github.com/popbridge/popbridge/internal/pop3test"
	"github.com/popbridge/popbridge/internal/testmail"
)

// TestDUpstreamRestart: 30 sessions are logged in, each has DELE'd a
// message, when Dovecot restarts (and, in a second round, when every
// upstream connection is reset and the upstream refuses connections for
// a while). Every session then ends with -ERR [SYS/TEMP] or a close,
// never +OK to QUIT; the mailbox is unchanged; new sessions fail cleanly
// while the upstream is down and work once it is back; goroutines and
// file descriptors return to their baseline.
func TestDUpstreamRestart(t *testing.T) {
	heavy(t)
	msgs := testmail.Ordinary(3)
	e := startD(t, imapback.Policy{Delete: imapback.DeleteExpunge, Seen: imapback.SeenQuit}, msgs)
	before := e.snap("INBOX")

	// Warm up (first-use allocations, Dovecot's login processes), then
	// take the baseline.
	p := e.login()
	p.Quit()
	base := gwtest.Measure()

	const n = 30
	open := func() []*pop3test.Conn {
		t.Helper()
		ps := make([]*pop3test.Conn, n)
		for i := range ps {
			ps[i] = e.login()
			if _, err := ps[i].OK("DELE 1"); err != nil {
				t.Fatal(err)
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := e.fp.WaitActive(ctx, n); err != nil {
			t.Fatalf("%d upstream connections, want %d", e.fp.Active(), n)
		}
		return ps
	}
	finish := func(ps []*pop3test.Conn) {
		t.Helper()
		var wg sync.WaitGroup
		var mu sync.Mutex
		var bad []string
		for _, p := range ps {
			wg.Add(1)
			go func() {
				defer wg.Done()
				l1, _ := p.Cmd("RETR 2")
				l2, _ := p.Quit()
				if strings.HasPrefix(l2, "+OK") || strings.HasPrefix(l1, "+OK") {
					mu.Lock()
					bad = append(bad, l1+" / "+l2)
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		if len(bad) > 0 {
			t.Fatalf("%d sessions went on after the upstream restart: %q", len(bad), bad[0])
		}
		checkOracle(t, oracle.CheckUnchanged(before, e.snap("INBOX")))
	}

	// Round 1: Dovecot itself restarts.
	ps := open()
	e.d.Restart()
	finish(ps)

	// Round 2: every upstream connection is reset, and the upstream
	// refuses new ones for a while.
	ps = open()
	e.fp.Refuse(true)
	e.fp.ResetAll()
	finish(ps)
	q := dial(t, e.g.Addr())
	must(t, q.Send("USER u\r\nPASS pw\r\n"))
	q.Line()
	if l, _ := q.Line(); !strings.HasPrefix(l, "-ERR [SYS/TEMP]") {
		t.Fatalf("login while the upstream is down: %q, want prefix %q", l, "-ERR [SYS/TEMP]")
	}
	q.Close()
	e.fp.Refuse(false)

	p = e.login()
	if _, err := p.Retr(1); err != nil {
		t.Fatalf("after the restart: %v", err)
	}
	if l, _ := p.Quit(); !strings.HasPrefix(l, "+OK") {
		t.Fatalf("after the restart: QUIT %q, want prefix %q", l, "+OK")
	}

	if r, ok := gwtest.WaitBaseline(base, 8, 15*time.Second); !ok {
		t.Fatalf("resources did not return to baseline: %v, baseline %v", r, base)
	}
}
