package e2e

import (
	"bufio"
	"crypto/sha256"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/popbridge/popbridge/internal/dovecottest"
	"github.com/popbridge/popbridge/internal/testmail"
)

// The gateway keeps no state between sessions, so several instances behind
// a TCP load balancer must behave as one. TestScaleOutBehindHAProxy runs a
// real HAProxy with PROXY protocol v2 in front of two gateway processes and
// the test Dovecot, drives concurrent sessions of the same users through it
// (downloads, overlapping DELEs, QUITs) while one instance is restarted,
// and checks that:
//   - every message a session DELE'd and got +OK to QUIT for is gone
//     (policy expunge), every message nobody DELE'd is still there,
//     byte-identical; only messages of sessions cut during QUIT are
//     "maybe";
//   - every download was byte-exact;
//   - both instances logged the real client address (127.0.0.9, the
//     source address the clients bind), not HAProxy's.
func TestScaleOutBehindHAProxy(t *testing.T) {
	haproxy := dovecottest.RequireTool(t, "haproxy")
	users := []dovecottest.User{{Name: "alice", Password: "alice-pw"}, {Name: "bob", Password: "bob pw"}}
	d := dovecottest.Start(t, users...)
	const perUser = 40
	msgs := testmail.Ordinary(perUser)
	want := map[string]map[[32]byte]bool{} // user -> sha256 of each seeded message
	for _, u := range users {
		want[u.Name] = map[[32]byte]bool{}
		for _, m := range msgs {
			d.Deliver(u.Name, "INBOX", m.Raw)
			want[u.Name][sha256.Sum256(m.Served)] = true
		}
	}

	initial := map[string][]string{}
	for _, u := range users {
		initial[u.Name] = uidlSet(t, d.POP3Addr(), u.Name, u.Password)
	}

	dir := t.TempDir()
	gw1 := startBalancedGateway(t, dir, "gw1", freeAddr(t), d.IMAPAddr())
	gw2 := startBalancedGateway(t, dir, "gw2", freeAddr(t), d.IMAPAddr())
	front := freeAddr(t)
	startHAProxy(t, haproxy, dir, front, gw1.addr, gw2.addr)

	const workers, rounds, maxRounds = 6, 6, 200
	run := &scaleOutRun{users: users, want: want, front: front, rounds: rounds,
		res: map[string]*scaleOutOutcome{"alice": {deleted: map[string]bool{}}, "bob": {deleted: map[string]bool{}}}}

	// Workers run at least `rounds` sessions each, and go on until the
	// restart of one instance is over, so sessions run before, during and
	// after it (bounded: maxRounds).
	var wg sync.WaitGroup
	var finished, afterRestart atomic.Int32
	var restarted atomic.Bool
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := 0; r < maxRounds && (r < rounds || !restarted.Load()); r++ {
				run.session(w, r)
				finished.Add(1)
				if restarted.Load() {
					afterRestart.Add(1)
				}
			}
		}()
	}
	for finished.Load() < workers*rounds/3 {
		time.Sleep(5 * time.Millisecond)
	}
	restartedAt := finished.Load()
	gw1.restart(t)
	restarted.Store(true)
	wg.Wait()
	if afterRestart.Load() < workers {
		t.Errorf("only %d sessions ran after the restart", afterRestart.Load())
	}

	// A session on each instance, bypassing HAProxy, proves both still serve.
	for _, g := range []*balancedGateway{gw1, gw2} {
		c, err := dialFrom(g.addr, "127.0.0.1")
		if err != nil {
			t.Fatalf("%s: %v", g.name, err)
		}
		c.close()
	}

	for _, u := range users {
		left, confirmed, maybe := checkScaleOutUser(t, d, u, run.res[u.Name], initial[u.Name])
		t.Logf("%s: %d messages left, %d deletes confirmed, %d cut during QUIT; restart after %d sessions, %d of %d after it",
			u.Name, left, confirmed, maybe, restartedAt, afterRestart.Load(), finished.Load())
	}
	for _, g := range []*balancedGateway{gw1, gw2} {
		if log := g.log(); !strings.Contains(log, "client=127.0.0.9:") {
			t.Errorf("%s never logged the real client address 127.0.0.9:\n%s", g.name, tail(log, 4000))
		}
	}
}

// scaleOutOutcome is what the sessions of one user saw.
type scaleOutOutcome struct {
	deleted map[string]bool // UIDL -> confirmed (true) or maybe (false)
	bad     []string
}

// scaleOutRun holds what the concurrent sessions of
// TestScaleOutBehindHAProxy share.
type scaleOutRun struct {
	users  []dovecottest.User
	want   map[string]map[[32]byte]bool // user -> sha256 of each seeded message
	front  string                       // HAProxy's address
	rounds int                          // rounds that DELE; later ones only download

	mu  sync.Mutex
	res map[string]*scaleOutOutcome // by user
}

// session is one worker's session: it logs in, downloads two messages,
// DELEs one message chosen so that sessions overlap, and QUITs.
func (s *scaleOutRun) session(worker, round int) {
	u := s.users[worker%len(s.users)]
	o := s.res[u.Name]
	c, err := dialFrom(s.front, "127.0.0.9")
	if err != nil {
		return // an instance restarting: HAProxy may refuse; nothing was sent
	}
	defer c.close()
	if c.cmd("USER "+u.Name) != "+OK" || c.cmd("PASS "+u.Password) != "+OK" {
		return
	}
	uidls := c.uidl()
	if len(uidls) == 0 {
		return
	}
	for _, n := range []int{1 + (worker+round)%len(uidls), len(uidls)} {
		body, ok := c.retr(n)
		if !ok {
			return
		}
		if !s.want[u.Name][sha256.Sum256(body)] {
			s.mu.Lock()
			o.bad = append(o.bad, fmt.Sprintf("RETR %d through the balancer was not a seeded message (%d octets)", n, len(body)))
			s.mu.Unlock()
		}
	}
	if round >= s.rounds {
		c.cmd("QUIT") // later rounds only download: mail stays to check
		return
	}
	// Overlap: workers of one user pick from the first few messages.
	n := 1 + (worker*7+round)%min(len(uidls), 6)
	if c.cmd(fmt.Sprintf("DELE %d", n)) != "+OK" {
		return
	}
	s.mu.Lock()
	if _, done := o.deleted[uidls[n-1]]; !done {
		o.deleted[uidls[n-1]] = false // maybe, until QUIT says +OK
	}
	s.mu.Unlock()
	if c.cmd("QUIT") == "+OK" {
		s.mu.Lock()
		o.deleted[uidls[n-1]] = true
		s.mu.Unlock()
	}
}

// checkScaleOutUser checks one user's mailbox after the run against what
// the sessions saw and the UIDLs seeded at the start: confirmed deletes
// are gone, nothing else is. It returns the messages left and the deletes
// confirmed and maybe.
func checkScaleOutUser(t *testing.T, d *dovecottest.Dovecot, u dovecottest.User, o *scaleOutOutcome, initial []string) (left, confirmed, maybe int) {
	t.Helper()
	for _, b := range o.bad {
		t.Errorf("%s: %s", u.Name, b)
	}
	present := map[string]bool{}
	for _, id := range uidlSet(t, d.POP3Addr(), u.Name, u.Password) {
		present[id] = true
	}
	// The reference: Dovecot's own POP3 UIDLs of the seeded mail.
	for id, ok := range o.deleted {
		if ok {
			confirmed++
			if present[id] {
				t.Errorf("%s: %s was DELE'd with +OK to QUIT but is still there", u.Name, id)
			}
		} else {
			maybe++
		}
	}
	for _, id := range initial {
		if _, dele := o.deleted[id]; !present[id] && !dele {
			t.Errorf("%s: %s is gone but no session DELE'd it: mail lost", u.Name, id)
		}
	}
	snap := d.Snapshot(t, u.Name, "INBOX")
	if len(snap) != len(present) || len(present) > len(initial) {
		t.Errorf("%s: %d messages over IMAP, %d over POP3, %d seeded", u.Name, len(snap), len(present), len(initial))
	}
	if confirmed == 0 {
		t.Errorf("%s: no session completed a QUIT through the balancer", u.Name)
	}
	return len(snap), confirmed, maybe
}

// balancedGateway is a gateway process behind the balancer; it keeps its
// address across restarts.
type balancedGateway struct {
	name, addr, conf, logPath string
	bin                       string
	cmd                       *exec.Cmd
}

func startBalancedGateway(t *testing.T, dir, name, addr, imapAddr string) *balancedGateway {
	t.Helper()
	g := &balancedGateway{name: name, addr: addr, bin: gatewayBinary(t),
		conf: filepath.Join(dir, name+".toml"), logPath: filepath.Join(dir, name+".log")}
	conf := fmt.Sprintf(`[pop3]
listen = %q
proxy_protocol = true
proxy_trusted = ["127.0.0.2"] # HAProxy connects from there; direct test connections do not
[upstream]
address = %q
[policy]
delete = "expunge"
[limits]
shutdown_grace = "2s"
[log]
level = "info"
`, addr, imapAddr)
	if err := os.WriteFile(g.conf, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	g.start(t)
	t.Cleanup(func() { g.stop() })
	return g
}

func (g *balancedGateway) start(t *testing.T) {
	t.Helper()
	logFile, err := os.OpenFile(g.logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	g.cmd = exec.Command(g.bin, "-config", g.conf)
	g.cmd.Stdout, g.cmd.Stderr = logFile, logFile
	g.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	if err := g.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waitListening(t, g.addr, g.log)
}

func (g *balancedGateway) stop() {
	if g.cmd == nil {
		return
	}
	g.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { g.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		g.cmd.Process.Kill()
		<-done
	}
	g.cmd = nil
}

func (g *balancedGateway) restart(t *testing.T) {
	g.stop()
	g.start(t)
}

func (g *balancedGateway) log() string {
	b, _ := os.ReadFile(g.logPath)
	return string(b)
}

func startHAProxy(t *testing.T, bin, dir, front string, backends ...string) {
	t.Helper()
	var servers strings.Builder
	for i, b := range backends {
		// Health checks send a PROXY header too, so the gateways accept them.
		fmt.Fprintf(&servers, "    server gw%d %s source 127.0.0.2 send-proxy-v2 check check-send-proxy inter 200ms fall 1 rise 1\n", i+1, b)
	}
	cfg := filepath.Join(dir, "haproxy.cfg")
	text := fmt.Sprintf(`global
    maxconn 1000
defaults
    mode tcp
    timeout connect 2s
    timeout client 60s
    timeout server 60s
frontend pop3
    bind %s
    default_backend gateways
backend gateways
    balance roundrobin
    retries 3
    option redispatch
%s`, front, servers.String())
	if err := os.WriteFile(cfg, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(bin, "-c", "-f", cfg).CombinedOutput(); err != nil {
		t.Fatalf("haproxy -c: %v\n%s", err, out)
	}
	logPath := filepath.Join(dir, "haproxy.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	cmd := exec.Command(bin, "-db", "-f", cfg)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	waitListening(t, front, func() string { b, _ := os.ReadFile(logPath); return string(b) })
}

func waitListening(t *testing.T, addr string, log func() string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for greets(addr) != nil {
		if time.Now().After(deadline) {
			t.Fatalf("nothing greets on %s:\n%s", addr, tail(log(), 4000))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}

// lbConn is a tolerant POP3 client for the balancer test: a connection
// cut by a restart is an outcome, not a test failure.
type lbConn struct {
	c net.Conn
	r *bufio.Reader
}

// dialFrom connects to addr from the loopback source address src.
func dialFrom(addr, src string) (*lbConn, error) {
	dialer := net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}
	c, err := dialer.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	c.SetDeadline(time.Now().Add(30 * time.Second))
	lc := &lbConn{c: c, r: bufio.NewReader(c)}
	if g, err := lc.r.ReadString('\n'); err != nil || !strings.HasPrefix(g, "+OK") {
		c.Close()
		return nil, fmt.Errorf("greeting %q: %v", g, err)
	}
	return lc, nil
}

// cmd sends a command and returns "+OK", "-ERR ..." or "" when cut.
func (c *lbConn) cmd(line string) string {
	if _, err := fmt.Fprintf(c.c, "%s\r\n", line); err != nil {
		return ""
	}
	l, err := c.r.ReadString('\n')
	if err != nil {
		return ""
	}
	if strings.HasPrefix(l, "+OK") {
		return "+OK"
	}
	return strings.TrimSpace(l)
}

// multi reads a multi-line body, unstuffed, and whether it ended with the
// terminator.
func (c *lbConn) multi() ([]byte, bool) {
	var b []byte
	for {
		l, err := c.r.ReadBytes('\n')
		if err != nil {
			return nil, false
		}
		if string(l) == ".\r\n" {
			return b, true
		}
		if len(l) > 0 && l[0] == '.' {
			l = l[1:]
		}
		b = append(b, l...)
	}
}

func (c *lbConn) uidl() []string {
	if c.cmd("UIDL") != "+OK" {
		return nil
	}
	body, ok := c.multi()
	if !ok {
		return nil
	}
	var ids []string
	for _, l := range strings.Split(strings.TrimSpace(string(body)), "\r\n") {
		if f := strings.Fields(l); len(f) == 2 {
			ids = append(ids, f[1])
		}
	}
	return ids
}

func (c *lbConn) retr(n int) ([]byte, bool) {
	if c.cmd(fmt.Sprintf("RETR %d", n)) != "+OK" {
		return nil, false
	}
	return c.multi()
}

func (c *lbConn) close() { c.c.Close() }
