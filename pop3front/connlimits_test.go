package pop3front

import (
	"net"
	"strings"
	"testing"
	"time"
)

// refusedQuickly dials and expects the one refusal line, then the close,
// well before any timeout.
func refusedQuickly(t *testing.T, addr, local, want string) {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	start := time.Now()
	c.SetDeadline(start.Add(10 * time.Second))
	cl := &client{t: t, c: c, r: newReader(c)}
	if got := cl.line(); got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
	cl.expectClosed()
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("refusal took %v", d)
	}
}

func TestConnectionCaps(t *testing.T) {
	t.Run("total", func(t *testing.T) {
		_, addr := startFake(t, func(s *Server) { s.Limits.MaxConnections = 2 })
		a := dialFrom(t, addr, "127.0.0.2")
		dialFrom(t, addr, "127.0.0.3")
		refusedQuickly(t, addr, "127.0.0.4", "-ERR [SYS/TEMP] Too many connections, try again later.\r\n")
		a.cmd("QUIT")
		a.expectClosed()
		// The slot frees once the session is over (asynchronously).
		if !eventually(t, func() bool {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				return false
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(5 * time.Second))
			l, _ := newReader(c).ReadString('\n')
			return strings.HasPrefix(l, "+OK")
		}) {
			t.Error("slot not released")
		}
	})
	t.Run("per address", func(t *testing.T) {
		_, addr := startFake(t, func(s *Server) { s.Limits.MaxConnectionsPerIP = 2 })
		dialFrom(t, addr, "127.0.0.2")
		dialFrom(t, addr, "127.0.0.2")
		refusedQuickly(t, addr, "127.0.0.2", "-ERR [SYS/TEMP] Too many connections from your address.\r\n")
		dialFrom(t, addr, "127.0.0.3").login() // others unaffected
	})
	t.Run("per carried address", func(t *testing.T) {
		srv := &Server{Backend: newFake(), Limits: Limits{MaxConnectionsPerIP: 1}}
		addr := serveFrom(t, srv, "2001:db8::7", false)
		dial(t, addr)
		refusedQuickly(t, addr, "127.0.0.1", "-ERR [SYS/TEMP] Too many connections from your address.\r\n")
	})
	t.Run("implicit TLS refusal is readable", func(t *testing.T) {
		srv := &Server{Backend: newFake(), TLSConfig: serverTLS(t), Limits: Limits{MaxConnections: 1}}
		addr := testTLSServer(t, srv)
		dialTLS(t, addr)
		c, err := tlsDial(t, addr)
		if err != nil {
			t.Fatal(err)
		}
		cl := &client{t: t, c: c, r: newReader(c)}
		if got := cl.line(); got != "-ERR [SYS/TEMP] Too many connections, try again later.\r\n" {
			t.Fatalf("got %q, want %q", got, "-ERR [SYS/TEMP] Too many connections, try again later.\r\n")
		}
		cl.expectClosed()
	})
}

func TestSessionsPerUser(t *testing.T) {
	be, addr := startFake(t, func(s *Server) { s.Limits.MaxSessionsPerUser = 1 })
	first := dial(t, addr)
	first.login()
	second := dial(t, addr)
	runSteps(t, second, []step{{"USER alice", "+OK Send PASS.\r\n"}, {"PASS secret", "-ERR [IN-USE] Too many sessions for this user.\r\n"}})
	second.expectClosed()
	// The upstream session it opened is closed again, nothing committed.
	waitCalls(t, be, "close")
	// Failed logins do not take the slot: a wrong password for alice
	// while she is logged in is an ordinary failure.
	third := dial(t, addr)
	runSteps(t, third, []step{{"USER alice", "+OK Send PASS.\r\n"}, {"PASS wrong", "-ERR [AUTH] Authentication failed.\r\n"}})
	first.cmd("QUIT")
	first.expectClosed()
	if !eventually(t, func() bool {
		c := dial(t, addr)
		c.cmd("USER alice")
		ok := c.cmd("PASS secret") == "+OK Logged in.\r\n"
		c.c.Close()
		return ok
	}) {
		t.Error("user slot not released")
	}
}

// TestStalledReaderDropped: over a real socket, a client that stops
// reading in the middle of a large message is dropped by the write
// deadline, and its maildrop (its upstream connection) is closed.
func TestStalledReaderDropped(t *testing.T) {
	be := newFake()
	be.Msgs[0] = strings.Repeat(strings.Repeat("x", 1022)+"\r\n", 16<<10) // 16 MiB: more than any socket buffers
	addr := testServer(t, &Server{Backend: be, Limits: Limits{WriteTimeout: 200 * time.Millisecond}})
	cl := dial(t, addr)
	cl.c.(*net.TCPConn).SetReadBuffer(4096)
	cl.login()
	cl.c.Write([]byte("RETR 1\r\n"))
	if l := cl.line(); !strings.HasPrefix(l, "+OK ") {
		t.Fatalf("RETR: %q, want prefix %q", l, "+OK ")
	}
	// Stop reading. The session must end on its own.
	start := time.Now()
	waitCalls(t, be, "close")
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("dropped after %v", d)
	}
	noCommit(t, be)
}
