package pop3front

import (
	"context"
	"fmt"
	"net/netip"
	"sync"
	"testing"
	"time"
)

func TestPenaltyTable(t *testing.T) {
	now := time.Unix(1000, 0)
	tab := newPenaltyTable(2*time.Second, 15*time.Second)
	tab.now = func() time.Time { return now }
	a := netip.MustParseAddr("192.0.2.7")
	b := netip.MustParseAddr("192.0.2.8")

	if d := tab.delay(a); d != 0 {
		t.Fatalf("fresh address: %v, want %v", d, 0)
	}
	var got []time.Duration
	for i := range 6 {
		tab.fail(a, "alice", fmt.Sprint("guess", i))
		got = append(got, tab.delay(a))
	}
	want := []time.Duration{2 * time.Second, 4 * time.Second, 8 * time.Second, 15 * time.Second, 15 * time.Second, 15 * time.Second}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("delays %v, want %v", got, want)
	}
	if d := tab.delay(b); d != 0 {
		t.Errorf("another address pays %v, want %v", d, 0)
	}

	// The same wrong password again and again does not escalate.
	tab.fail(b, "bob", "stale")
	for range 5 {
		tab.fail(b, "bob", "stale")
	}
	if d := tab.delay(b); d != 2*time.Second {
		t.Errorf("repeated password: %v, want 2s", d)
	}
	tab.fail(b, "bob", "other")
	if d := tab.delay(b); d != 4*time.Second {
		t.Errorf("new password: %v, want 4s", d)
	}
	// (user, password) is the unit: the same password for another user is
	// another guess; the split between them is unambiguous.
	tab.fail(b, "bo", "bstale")
	if d := tab.delay(b); d != 8*time.Second {
		t.Errorf("other user: %v, want 8s", d)
	}

	// IPv6 counts by /64.
	v6a := netip.MustParseAddr("2001:db8:0:1::1")
	v6b := netip.MustParseAddr("2001:db8:0:1:ffff::2")
	v6c := netip.MustParseAddr("2001:db8:0:2::1")
	tab.fail(v6a, "alice", "x")
	if tab.delay(v6b) != 2*time.Second || tab.delay(v6c) != 0 {
		t.Errorf("IPv6: same /64 %v, other /64 %v", tab.delay(v6b), tab.delay(v6c))
	}

	// Entries expire after the TTL since their last failure.
	now = now.Add(penaltyTTL - time.Second)
	tab.fail(a, "alice", "late")
	now = now.Add(2 * time.Second)
	if tab.delay(b) != 0 || tab.delay(v6a) != 0 {
		t.Errorf("expired entries still penalise")
	}
	if tab.delay(a) == 0 {
		t.Errorf("live entry expired")
	}
	if n := tab.size(); n != 1 {
		t.Errorf("%d entries after expiry, want 1", n)
	}

	// No IP (a Unix socket, a pipe): no penalty, nothing stored.
	tab.fail(netip.Addr{}, "alice", "x")
	if tab.delay(netip.Addr{}) != 0 || tab.size() != 1 {
		t.Error("address-less failure recorded")
	}

	// Disabled.
	off := newPenaltyTable(-1, time.Second)
	off.fail(a, "alice", "x")
	if off.delay(a) != 0 {
		t.Error("disabled table penalises")
	}
}

// TestPenaltyTableBounded: whatever number of addresses fail, the table
// holds at most its cap, evicting the least recently failed.
func TestPenaltyTableBounded(t *testing.T) {
	tab := newPenaltyTable(time.Second, time.Second)
	tab.cap = 1000
	for i := range 5000 {
		ip := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		tab.fail(ip, "u", "p")
	}
	if n := tab.size(); n != 1000 {
		t.Fatalf("%d entries, want 1000", n)
	}
	if tab.delay(netip.AddrFrom4([4]byte{10, 0, 0, 0})) != 0 {
		t.Error("oldest entry not evicted")
	}
	if tab.delay(netip.AddrFrom4([4]byte{10, 0, 19, 135})) == 0 { // 4999
		t.Error("newest entry evicted")
	}
}

// penaltyEvents records penalties and backend logins in one sequence.
type penaltyEvents struct {
	nopObserver
	mu     sync.Mutex
	events []string
}

func (p *penaltyEvents) add(e string) {
	p.mu.Lock()
	p.events = append(p.events, e)
	p.mu.Unlock()
}

func (p *penaltyEvents) AuthPenalty(d time.Duration) { p.add("penalty " + d.String()) }

func (p *penaltyEvents) take() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	e := p.events
	p.events = nil
	return e
}

type eventBackend struct {
	*fakeBackend
	ev *penaltyEvents
}

func (b eventBackend) Login(ctx context.Context, req *LoginRequest) (Maildrop, error) {
	b.ev.add("backend " + req.Username)
	return b.fakeBackend.Login(ctx, req)
}

// penaltyServer serves with a 50ms..200ms penalty; clients pick their
// address with dialFrom.
func penaltyServer(t *testing.T) (*fakeBackend, *penaltyEvents, string) {
	be, ev := newFake(), &penaltyEvents{}
	addr := testServer(t, &Server{
		Backend:  eventBackend{be, ev},
		Observer: ev,
		Limits:   Limits{AuthPenaltyInitial: 50 * time.Millisecond, AuthPenaltyMax: 200 * time.Millisecond, MaxAuthAttempts: 100},
	})
	return be, ev, addr
}

// timedFail runs USER/PASS expecting failure and returns how long PASS
// took.
func timedFail(t *testing.T, cl *client, user, pass string) time.Duration {
	t.Helper()
	cl.cmd("USER " + user)
	start := time.Now()
	if r := cl.cmd("PASS " + pass); r != "-ERR [AUTH] Authentication failed.\r\n" {
		t.Fatalf("PASS: %q, want %q", r, "-ERR [AUTH] Authentication failed.\r\n")
	}
	return time.Since(start)
}

func TestPenaltyPerAddress(t *testing.T) {
	_, ev, addr := penaltyServer(t)
	a := dialFrom(t, addr, "127.0.0.2")
	var took []time.Duration
	for i := range 5 {
		took = append(took, timedFail(t, a, "alice", fmt.Sprint("guess", i)))
	}
	want := []string{
		"backend alice",
		"penalty 50ms", "backend alice",
		"penalty 100ms", "backend alice",
		"penalty 200ms", "backend alice",
		"penalty 200ms", "backend alice",
	}
	if got := ev.take(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("events\n got %q\nwant %q", got, want)
	}
	// Timers never fire early: each reply took at least its penalty.
	for i, min := range []time.Duration{0, 50, 100, 200, 200} {
		if took[i] < min*time.Millisecond {
			t.Errorf("attempt %d took %v, penalty %dms", i+1, took[i], min)
		}
	}

	// Another address logs in without a penalty...
	b := dialFrom(t, addr, "127.0.0.3")
	b.login()
	if got := ev.take(); fmt.Sprint(got) != "[backend alice]" {
		t.Errorf("other address: %q", got)
	}
	// ...while a new connection from the first still pays, right ones too.
	a2 := dialFrom(t, addr, "127.0.0.2")
	a2.login()
	if got := ev.take(); fmt.Sprint(got) != "[penalty 200ms backend alice]" {
		t.Errorf("new connection, same address: %q", got)
	}
}

func TestPenaltySamePasswordDoesNotEscalate(t *testing.T) {
	_, ev, addr := penaltyServer(t)
	cl := dialFrom(t, addr, "127.0.0.4")
	for range 4 {
		timedFail(t, cl, "alice", "stale-saved-password")
	}
	timedFail(t, cl, "alice", "another")
	timedFail(t, cl, "alice", "x")
	want := "[backend alice penalty 50ms backend alice penalty 50ms backend alice penalty 50ms backend alice " +
		"penalty 50ms backend alice penalty 100ms backend alice]"
	if got := ev.take(); fmt.Sprint(got) != want {
		t.Errorf("events\n got %q\nwant %s", got, want)
	}
}

// TestFailuresLookAlike: unknown user, wrong password, an upstream AUTH
// failure (with its own text), invalid characters and a refused authzid
// all get the same reply after the same penalty.
func TestFailuresLookAlike(t *testing.T) {
	cases := []struct {
		name, cmd string
		upstream  bool // the fake answers with an upstream-style *Error
	}{
		{"unknown user", "AUTH PLAIN " + b64("\x00mallory\x00secret"), false},
		{"wrong password", "AUTH PLAIN " + b64("\x00alice\x00wrong"), false},
		{"upstream AUTHENTICATIONFAILED", "AUTH PLAIN " + b64("\x00alice\x00secret"), true},
		{"invalid characters", "AUTH PLAIN " + b64("\x00alice\x00sec\x01ret"), false},
		{"authzid refused", "AUTH PLAIN " + b64("admin\x00alice\x00secret"), false},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			be, ev, addr := penaltyServer(t)
			if c.upstream {
				be.LoginErr = &Error{Code: CodeAuth, Text: "[AUTHENTICATIONFAILED] upstream words", Err: fmt.Errorf("NO")}
			}
			cl := dialFrom(t, addr, fmt.Sprintf("127.0.1.%d", i+1))
			timedFail(t, cl, "nobody", "first") // one earlier failure
			if r := cl.cmd(c.cmd); r != "-ERR [AUTH] Authentication failed.\r\n" {
				t.Errorf("reply %q, want %q", r, "-ERR [AUTH] Authentication failed.\r\n")
			}
			if got := ev.take(); len(got) < 2 || got[1] != "penalty 50ms" {
				t.Errorf("events %q", got)
			}
		})
	}
}

func TestMaxAuthAttempts(t *testing.T) {
	be, addr := startFake(t, func(s *Server) { s.Limits.MaxAuthAttempts = 2; s.Limits.MaxBadCommands = 100 })
	cl := dial(t, addr)
	runSteps(t, cl, []step{
		{"FOO", "-ERR Unknown command.\r\n"}, // bad commands are counted apart
		{"USER alice", "+OK Send PASS.\r\n"},
		{"PASS a", "-ERR [AUTH] Authentication failed.\r\n"},
		{"AUTH PLAIN " + b64("\x00alice\x00b"), "-ERR [AUTH] Authentication failed.\r\n"},
	})
	cl.expectClosed()
	waitCalls(t, be, "login alice")
}
