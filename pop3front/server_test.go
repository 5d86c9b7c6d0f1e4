package pop3front

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

func TestShutdownAuthorizationSessions(t *testing.T) {
	be := newFake()
	srv := &Server{Backend: be}
	addr := testServer(t, srv)
	cl := dial(t, addr)
	cl.cmd("USER alice")
	cl2 := dial(t, addr) // idle right after the greeting
	errc := make(chan error, 1)
	go func() { errc <- srv.Shutdown(context.Background()) }()
	for _, c := range []*client{cl, cl2} {
		if got := c.line(); got != "-ERR [SYS/TEMP] Server shutting down\r\n" {
			t.Errorf("got %q, want %q", got, "-ERR [SYS/TEMP] Server shutting down\r\n")
		}
		c.expectClosed()
	}
	if err := <-errc; err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	if _, err := net.Dial("tcp", addr); err == nil {
		t.Errorf("still accepting after Shutdown")
	}
	// ServeConn after Shutdown refuses politely.
	c1, c2 := net.Pipe()
	go srv.ServeConn(c1)
	if b, _ := io.ReadAll(c2); string(b) != "-ERR [SYS/TEMP] Server shutting down\r\n" {
		t.Errorf("ServeConn after Shutdown: %q", b)
	}
}

func TestShutdownWaitsForQuit(t *testing.T) {
	be := newFake()
	srv := &Server{Backend: be}
	addr := testServer(t, srv)
	cl := dial(t, addr)
	cl.login()
	cl.cmd("DELE 2")
	errc := make(chan error, 1)
	go func() { errc <- srv.Shutdown(context.Background()) }()
	time.Sleep(50 * time.Millisecond)
	select {
	case err := <-errc:
		t.Fatalf("Shutdown returned %v with a session open", err)
	default:
	}
	runSteps(t, cl, []step{{"STAT", "+OK 2 44\r\n"}, {"QUIT", "+OK Logging out.\r\n"}})
	if err := <-errc; err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	if len(be.Commits()) != 1 {
		t.Errorf("commits %v", be.Commits())
	}
}

func TestShutdownForced(t *testing.T) {
	be := newFake()
	srv := &Server{Backend: be}
	addr := testServer(t, srv)
	cl := dial(t, addr)
	cl.login()
	cl.cmd("DELE 2")
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := srv.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Shutdown: %v, want DeadlineExceeded", err)
	}
	cl.expectClosed()
	noCommit(t, be)
}

func TestCloseImmediate(t *testing.T) {
	be := newFake()
	srv := &Server{Backend: be}
	addr := testServer(t, srv)
	cl := dial(t, addr)
	cl.login()
	cl.cmd("DELE 2")
	if err := srv.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	cl.expectClosed()
	noCommit(t, be)
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	if err := srv.Serve(l); !errors.Is(err, ErrServerClosed) {
		t.Errorf("Serve after Close: %v", err)
	}
}

// TestShutdownDuringLogin: a login still in flight when Shutdown starts
// does not turn into a session Shutdown would wait for.
func TestShutdownDuringLogin(t *testing.T) {
	be := newFake()
	be.LoginGate = make(chan struct{})
	srv := &Server{Backend: be}
	addr := testServer(t, srv)
	cl := dial(t, addr)
	cl.cmd("USER alice")
	io.WriteString(cl.c, "PASS secret\r\n")
	for len(be.Calls()) == 0 {
		time.Sleep(time.Millisecond)
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Shutdown(context.Background()) }()
	for !srv.inShutdown.Load() {
		time.Sleep(time.Millisecond)
	}
	close(be.LoginGate)
	if got := cl.line(); got != "-ERR [SYS/TEMP] Server shutting down\r\n" {
		t.Errorf("got %q, want %q", got, "-ERR [SYS/TEMP] Server shutting down\r\n")
	}
	cl.expectClosed()
	if err := <-errc; err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	if calls := be.Calls(); strings.Join(calls, ",") != "login alice,close" {
		t.Errorf("calls %q", calls)
	}
}

// TestCapaExpirePerUser: RFC 2449 section 6.7. Before login CAPA gives
// Server.Expire (the smallest value any user may get, with USER); after
// login the maildrop's own value when it is an Expirer, else
// Server.Expire without USER (a TRANSACTION-state value never has it).
func TestCapaExpirePerUser(t *testing.T) {
	for _, tc := range []struct {
		name, server, drop string
		before, after      string
	}{
		{"per user, this one NEVER", "0 USER", "NEVER", "EXPIRE 0 USER", "EXPIRE NEVER"},
		{"per user, this one 0", "0 USER", "0", "EXPIRE 0 USER", "EXPIRE 0"},
		{"one value for all", "NEVER", "", "EXPIRE NEVER", "EXPIRE NEVER"},
		{"USER but no Expirer", "0 USER", "", "EXPIRE 0 USER", "EXPIRE 0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			be := newFake()
			be.Expire = tc.drop
			addr := testServer(t, &Server{Backend: be, Expire: tc.server})
			cl := dial(t, addr)
			expireLine := func(capa string) string {
				for _, l := range strings.Split(capa, "\r\n") {
					if strings.HasPrefix(l, "EXPIRE") {
						return l
					}
				}
				return ""
			}
			if got := expireLine(cl.cmd("CAPA")); got != tc.before {
				t.Errorf("CAPA before login: got %q, want %q", got, tc.before)
			}
			cl.login()
			if got := expireLine(cl.cmd("CAPA")); got != tc.after {
				t.Errorf("CAPA after login: got %q, want %q", got, tc.after)
			}
			cl.cmd("QUIT")
			cl.expectClosed()
		})
	}
}

func TestGreetingAndCapaOptions(t *testing.T) {
	be := newFake()
	srv := &Server{Backend: be, Greeting: "Hi\r\nthere", Implementation: "popbridge 1.0", Expire: "NEVER"}
	addr := testServer(t, srv)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "CAPA\r\nUSER alice\r\nPASS secret\r\nCAPA\r\nQUIT\r\n")
	b, _ := io.ReadAll(c)
	want := "+OK Hi  there\r\n" +
		"+OK Capability list follows\r\nTOP\r\nUIDL\r\nUSER\r\nRESP-CODES\r\nAUTH-RESP-CODE\r\nPIPELINING\r\nSASL PLAIN LOGIN\r\nEXPIRE NEVER\r\nIMPLEMENTATION popbridge 1.0\r\n.\r\n" +
		"+OK Send PASS.\r\n+OK Logged in.\r\n" +
		"+OK Capability list follows\r\nTOP\r\nUIDL\r\nRESP-CODES\r\nAUTH-RESP-CODE\r\nPIPELINING\r\nEXPIRE NEVER\r\nIMPLEMENTATION popbridge 1.0\r\n.\r\n" +
		"+OK Logging out.\r\n"
	if string(b) != want {
		t.Errorf("got %q\nwant %q", b, want)
	}
}
