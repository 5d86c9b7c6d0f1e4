package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"runtime/pprof"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/popbridge/popbridge/imapback"
	"github.com/popbridge/popbridge/internal/dovecottest"
	"github.com/popbridge/popbridge/internal/faultproxy"
	"github.com/popbridge/popbridge/internal/gwtest"
	"github.com/popbridge/popbridge/internal/oracle"
	"github.com/popbridge/popbridge/internal/pop3test"
	"github.com/popbridge/popbridge/internal/testtb"
	"github.com/popbridge/popbridge/pop3front"
)

// Options configure a soak run.
type Options struct {
	Duration     time.Duration
	Users        int
	POP          int
	IMAP         int
	DeliverEvery time.Duration
	FaultRate    float64
	Seed         int64
	Verbose      bool
}

func defaultOptions() Options {
	return Options{
		Duration:     60 * time.Second,
		Users:        3,
		POP:          4,
		IMAP:         2,
		DeliverEvery: 50 * time.Millisecond,
		FaultRate:    0.15,
	}
}

// policies are given to users in turn.
var policies = []imapback.DeletePolicy{imapback.DeleteFlag, imapback.DeleteExpunge, imapback.DeleteTrash}

// Summary is the outcome of a run.
type Summary struct {
	Sessions, SessionsOK, QuitOK, QuitFailed int64
	Retrieved, Truncated, IMAPOps            int64
	Faults                                   int64
	Verdict                                  verdict
	Start, End                               gwtest.Resources
	ResourcesFlat                            bool
}

// OK reports a clean run: nothing lost, changed, misplaced or corrupt,
// and resources back to where they started.
func (s Summary) OK() bool {
	v := s.Verdict
	return v.lost == 0 && v.changed == 0 && v.misplaced == 0 && v.corrupt == 0 && s.ResourcesFlat
}

// soak is one run's shared state.
type soak struct {
	o      Options
	d      *dovecottest.Dovecot
	fp     *faultproxy.Proxy
	gws    []*gwtest.Gateway // gws[i] serves users with policies[i]
	users  []string
	ledger *ledger
	seq    atomic.Int64

	sessions, sessionsOK, quitOK, quitFailed atomic.Int64
	retrieved, truncated, imapOps            atomic.Int64
}

// Run runs the soak with Dovecot started through tb, prints a summary to
// out and returns it.
func Run(ctx context.Context, tb testtb.TB, o Options, out io.Writer) (Summary, error) {
	s := &soak{o: o, ledger: newLedger()}
	var users []dovecottest.User
	for i := range o.Users {
		name := fmt.Sprintf("soak%d", i)
		s.users = append(s.users, name)
		users = append(users, dovecottest.User{Name: name, Password: "pw-" + name})
	}
	s.d = dovecottest.Start(tb, users...)
	for _, u := range s.users {
		s.d.CreateMailbox(u, "Trash")
		s.d.CreateMailbox(u, "Archive")
	}
	fp, err := faultproxy.Start(s.d.IMAPAddr())
	if err != nil {
		return Summary{}, err
	}
	defer fp.Close()
	s.fp = fp
	rng := rand.New(rand.NewPCG(uint64(o.Seed), 1))
	var rngMu sync.Mutex
	fp.SetPlanner(func(int) faultproxy.Plan {
		rngMu.Lock()
		defer rngMu.Unlock()
		return randomFault(rng, o.FaultRate)
	})

	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if o.Verbose {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	for _, pol := range policies {
		g, err := gwtest.Start(gwtest.Options{
			Upstream:       fp.Addr(),
			Policy:         imapback.Policy{Delete: pol, Seen: imapback.SeenQuit},
			DialTimeout:    2 * time.Second,
			CommandTimeout: time.Second,
			Logger:         log,
			Limits: pop3front.Limits{
				AuthTimeout: 10 * time.Second, IdleTimeout: 10 * time.Second, WriteTimeout: 2 * time.Second,
				LoginTimeout: 10 * time.Second, CommitTimeout: 10 * time.Second,
				MaxConnections: 1000, MaxConnectionsPerIP: 1000, MaxSessionsPerUser: 100,
			},
		})
		if err != nil {
			return Summary{}, err
		}
		defer g.Close()
		s.gws = append(s.gws, g)
	}
	for range 20 {
		for i := range s.users {
			s.deliver(rng, &rngMu, i)
		}
	}
	start := gwtest.Measure()

	runCtx, cancel := context.WithTimeout(ctx, o.Duration)
	defer cancel()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		r := rand.New(rand.NewPCG(uint64(o.Seed), 2))
		var mu sync.Mutex
		t := time.NewTicker(o.DeliverEvery)
		defer t.Stop()
		for {
			select {
			case <-runCtx.Done():
				return
			case <-t.C:
				s.deliver(r, &mu, r.IntN(len(s.users)))
			}
		}
	}()
	for i := range o.POP {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(o.Seed), uint64(100+i)))
			for runCtx.Err() == nil {
				s.popSession(runCtx, r, i%2 == 0)
			}
		}()
	}
	for i := range o.IMAP {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(o.Seed), uint64(200+i)))
			for runCtx.Err() == nil {
				s.imapSession(runCtx, r)
			}
		}()
	}
	wg.Wait()
	fp.SetPlanner(nil) // faithful from now on

	end, flat := gwtest.WaitBaseline(start, 3, 30*time.Second)
	if os.Getenv("POPBRIDGE_SOAK_STACKS") != "" {
		pprof.Lookup("goroutine").WriteTo(os.Stderr, 1)
	}
	found, err := s.locate()
	if err != nil {
		return Summary{}, err
	}
	sum := Summary{
		Sessions: s.sessions.Load(), SessionsOK: s.sessionsOK.Load(),
		QuitOK: s.quitOK.Load(), QuitFailed: s.quitFailed.Load(),
		Retrieved: s.retrieved.Load(), Truncated: s.truncated.Load(), IMAPOps: s.imapOps.Load(),
		Faults:  fp.Fired(),
		Verdict: s.ledger.judge(found),
		Start:   start, End: end, ResourcesFlat: flat,
	}
	sum.print(out, o)
	return sum, nil
}

// randomFault picks a fault for one upstream connection, or none.
func randomFault(r *rand.Rand, rate float64) faultproxy.Plan {
	if r.Float64() >= rate {
		return faultproxy.Plan{}
	}
	actions := []faultproxy.Action{faultproxy.Cut, faultproxy.Reset, faultproxy.Stall}
	f := faultproxy.Fault{Action: actions[r.IntN(len(actions))]}
	if r.IntN(3) == 0 {
		f.Dir = faultproxy.Up
		f.After = int64(r.IntN(600))
	} else {
		f.Dir = faultproxy.Down
		f.After = int64(r.IntN(60000))
	}
	return faultproxy.Plan{Faults: []faultproxy.Fault{f}}
}

// deliver delivers one new message to user i and records it.
func (s *soak) deliver(r *rand.Rand, mu *sync.Mutex, i int) {
	n := s.seq.Add(1)
	mu.Lock()
	lines := 3 + r.IntN(300)
	mu.Unlock()
	id := fmt.Sprintf("<soak-%d-%d@popbridge.test>", s.o.Seed, n)
	var b strings.Builder
	fmt.Fprintf(&b, "From: soak@example.org\r\nTo: %s@example.org\r\nSubject: soak %d\r\nMessage-ID: %s\r\n\r\n", s.users[i], n, id)
	for j := range lines {
		if j%17 == 0 {
			b.WriteString(".a line starting with a dot\r\n")
		}
		fmt.Fprintf(&b, "line %d of soak message %d, some text to make it longer\r\n", j, n)
	}
	raw := []byte(b.String())
	s.ledger.add(id, s.users[i], oracle.SHA256(raw))
	s.d.Deliver(s.users[i], "INBOX", raw)
}

// popSession is one POP3 session through the user's gateway: RETR some
// messages, and (deleting clients) DELE some of those fully retrieved,
// then QUIT, or sometimes just hang up.
func (s *soak) popSession(ctx context.Context, r *rand.Rand, deleting bool) {
	ui := r.IntN(len(s.users))
	user := s.users[ui]
	g := s.gws[ui%len(s.gws)]
	s.sessions.Add(1)
	p, err := pop3test.Dial(g.Addr(), 30*time.Second)
	if err != nil {
		return
	}
	defer p.Close()
	stop := context.AfterFunc(ctx, func() { p.Close() })
	defer stop()
	if err := p.Login(user, "pw-"+user); err != nil {
		return
	}
	uidl, err := p.UIDL()
	if err != nil {
		return
	}
	var dele []string // Message-IDs DELE'd
	for range min(len(uidl), 1+r.IntN(5)) {
		n := 1 + r.IntN(len(uidl))
		body, err := p.Retr(n)
		if err != nil {
			if err == pop3test.ErrNoTerminator {
				s.truncated.Add(1)
			}
			if strings.HasPrefix(err.Error(), "RETR") { // -ERR (expunged, SYS/TEMP): go on
				continue
			}
			return
		}
		id := messageID(body)
		sha := oracle.SHA256(body)
		ok := s.ledger.update(id, func(e *entry) {
			if e.sha != sha {
				e.corruptRetr = true
				e.corruptDetail = fmt.Sprintf("%d octets", len(body))
				return
			}
			e.retrieved = true
		})
		if !ok {
			continue
		}
		s.retrieved.Add(1)
		if deleting && r.IntN(2) == 0 {
			if _, err := p.OK(fmt.Sprintf("DELE %d", n)); err == nil {
				dele = append(dele, id)
			}
		}
	}
	if r.IntN(10) == 0 {
		return // hang up without QUIT: nothing may change
	}
	l, err := p.Quit()
	s.sessionsOK.Add(1)
	okQuit := err == nil && strings.HasPrefix(l, "+OK")
	if okQuit {
		s.quitOK.Add(1)
	} else {
		s.quitFailed.Add(1)
	}
	for _, id := range dele {
		s.ledger.update(id, func(e *entry) {
			if okQuit {
				e.popDeleted = true
			} else {
				e.popUnsure = true
			}
		})
	}
}

// imapSession is another device: it picks a message of a user's INBOX
// and moves it to Archive, expunges it, flags it, or marks it \Deleted.
func (s *soak) imapSession(ctx context.Context, r *rand.Rand) {
	user := s.users[r.IntN(len(s.users))]
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	c, err := dialIMAP(ctx, s.d.IMAPAddr(), user, "pw-"+user)
	if err != nil {
		return
	}
	defer c.close()
	time.Sleep(time.Duration(50+r.IntN(200)) * time.Millisecond)
	uid, id, err := c.pick(r)
	if err != nil || id == "" {
		return
	}
	switch r.IntN(4) {
	case 0:
		// Recorded before: the move may land even if its OK is lost.
		s.ledger.update(id, func(e *entry) { e.imapMoved = true })
		if c.move(uid, "Archive") == nil {
			s.imapOps.Add(1)
		}
	case 1:
		// Recorded before: if the expunge lands and its OK is lost, the
		// message is still accounted for.
		s.ledger.update(id, func(e *entry) { e.imapDeleted, e.imapExpunging = true, true })
		if c.expunge(uid) == nil {
			s.imapOps.Add(1)
			s.ledger.update(id, func(e *entry) { e.imapRemoved = true })
		}
	case 2:
		if c.flag(uid, `\Flagged`) == nil {
			s.imapOps.Add(1)
		}
	case 3:
		s.ledger.update(id, func(e *entry) { e.imapDeleted = true })
		if c.flag(uid, `\Deleted`) == nil {
			s.imapOps.Add(1)
		}
	}
}

// locate reads every user's INBOX, Trash and Archive.
func (s *soak) locate() (map[string][]place, error) {
	found := map[string][]place{}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for _, u := range s.users {
		for _, mb := range []string{"INBOX", "Trash", "Archive"} {
			msgs, _, err := oracle.Messages(ctx, oracle.Account{Addr: s.d.IMAPAddr(), User: u, Password: "pw-" + u}, mb)
			if err != nil {
				return nil, err
			}
			for _, m := range msgs {
				id := messageID(m.Body)
				del := false
				for _, f := range m.Flags {
					if f == `\Deleted` {
						del = true
					}
				}
				found[id] = append(found[id], place{mailbox: mb, sha: m.SHA256, deleted: del})
			}
		}
	}
	return found, nil
}

func (sum Summary) print(out io.Writer, o Options) {
	v := sum.Verdict
	w := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	row := func(k string, val any) { fmt.Fprintf(w, "%s\t%v\t\n", k, val) }
	fmt.Fprintf(out, "popbridge soak: %v, %d users, %d POP3 + %d IMAP clients, fault rate %.2f, seed %d\n",
		o.Duration, o.Users, o.POP, o.IMAP, o.FaultRate, o.Seed)
	row("POP3 sessions", sum.Sessions)
	row("  reached QUIT", sum.SessionsOK)
	row("  QUIT +OK", sum.QuitOK)
	row("  QUIT -ERR/closed", sum.QuitFailed)
	row("RETR complete", sum.Retrieved)
	row("RETR cut (no terminator)", sum.Truncated)
	row("IMAP device operations", sum.IMAPOps)
	row("faults injected", sum.Faults)
	row("messages delivered", v.delivered)
	row("  in INBOX", v.inMailbox)
	row("    of which \\Deleted", v.pending)
	row("  in Trash", v.inTrash)
	row("  in Archive", v.inArchive)
	row("  deleted by POP3 (+OK)", v.popDeleted)
	row("  deleted by POP3 (QUIT failed)", v.popUnsure)
	row("  expunged by IMAP", v.imapRemoved)
	row("  expunged by IMAP (reply lost)", v.imapUnsure)
	row("LOST", v.lost)
	row("changed", v.changed)
	row("misplaced", v.misplaced)
	row("corrupt RETR", v.corrupt)
	row("goroutines start/end", fmt.Sprintf("%d/%d", sum.Start.Goroutines, sum.End.Goroutines))
	row("fds start/end", fmt.Sprintf("%d/%d", sum.Start.FDs, sum.End.FDs))
	row("RSS MB start/end", fmt.Sprintf("%.1f/%.1f", float64(sum.Start.RSS)/(1<<20), float64(sum.End.RSS)/(1<<20)))
	w.Flush()
	for _, p := range v.problems {
		fmt.Fprintln(out, "  !", p)
	}
	if sum.OK() {
		fmt.Fprintln(out, "PASS: nothing lost")
	} else {
		fmt.Fprintln(out, "FAIL")
	}
}
