package pop3front

import (
	"bufio"
	"crypto/tls"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

const (
	capaHead  = "+OK Capability list follows\r\nTOP\r\nUIDL\r\n"
	capaMid   = "RESP-CODES\r\nAUTH-RESP-CODE\r\nPIPELINING\r\n"
	capaFull  = capaHead + "USER\r\n" + capaMid + "SASL PLAIN LOGIN\r\n.\r\n"
	capaTrans = capaHead + capaMid + ".\r\n"
)

func lastLogin(t *testing.T, be *fakeBackend) LoginRequest {
	t.Helper()
	be.mu.Lock()
	defer be.mu.Unlock()
	if len(be.logins) == 0 {
		t.Fatal("no login reached the backend")
	}
	return be.logins[len(be.logins)-1]
}

func TestImplicitTLS(t *testing.T) {
	be := newFake()
	addr := testTLSServer(t, &Server{Backend: be, TLSConfig: serverTLS(t)})
	cl := dialTLS(t, addr)
	cs := cl.c.(*tls.Conn).ConnectionState()
	if cs.NegotiatedProtocol != "pop3" || cs.Version < tls.VersionTLS12 {
		t.Errorf("ALPN %q, version %x", cs.NegotiatedProtocol, cs.Version)
	}
	runSteps(t, cl, []step{
		{"CAPA", capaFull}, // no STLS on POP3S
		{"STLS", "-ERR TLS already active.\r\n"},
	})
	cl.login()
	if r := lastLogin(t, be); !r.TLS || r.Client == nil {
		t.Errorf("login request %+v", r)
	}
	runSteps(t, cl, []step{{"CAPA", capaTrans}, {"QUIT", "+OK Logging out.\r\n"}})
}

// TestTLSVersionFloor: TLS 1.1 and older are refused (RFC 8314 section
// 4.1 asks for 1.2 at least; the proxy configures it, the server keeps
// what it is given).
func TestTLSVersionFloor(t *testing.T) {
	addr := testTLSServer(t, &Server{Backend: newFake(), TLSConfig: serverTLS(t)})
	cfg := clientTLS(t)
	cfg.MaxVersion = tls.VersionTLS11
	cfg.MinVersion = tls.VersionTLS10
	c, err := tls.Dial("tcp", addr, cfg)
	if err == nil {
		c.Close()
		t.Fatal("TLS 1.1 handshake succeeded")
	}
}

func TestSTLS(t *testing.T) {
	be := newFake()
	addr := testServer(t, &Server{Backend: be, TLSConfig: serverTLS(t)})
	cl := dial(t, addr)
	runSteps(t, cl, []step{{"CAPA", capaHead + "USER\r\n" + capaMid + "STLS\r\nSASL PLAIN LOGIN\r\n.\r\n"}})
	cl.stls()
	runSteps(t, cl, []step{
		{"CAPA", capaFull},
		{"STLS", "-ERR TLS already active.\r\n"}, // only once
	})
	cl.login()
	if r := lastLogin(t, be); !r.TLS {
		t.Errorf("login request %+v: TLS not set", r)
	}
	runSteps(t, cl, []step{
		{"STLS", "-ERR Already logged in.\r\n"},
		{"CAPA", capaTrans},
		{"QUIT", "+OK Logging out.\r\n"},
	})
}

func TestSTLSRefusals(t *testing.T) {
	t.Run("not configured", func(t *testing.T) {
		_, addr := startFake(t, nil)
		cl := dial(t, addr)
		runSteps(t, cl, []step{{"CAPA", capaFull}, {"STLS", "-ERR Unknown command.\r\n"}})
	})
	t.Run("arguments", func(t *testing.T) {
		addr := testServer(t, &Server{Backend: newFake(), TLSConfig: serverTLS(t)})
		cl := dial(t, addr)
		runSteps(t, cl, []step{{"STLS now", "-ERR Too many arguments.\r\n"}})
		cl.stls() // still possible
	})
	t.Run("after login", func(t *testing.T) {
		addr := testServer(t, &Server{Backend: newFake(), TLSConfig: serverTLS(t)})
		cl := dial(t, addr)
		cl.login()
		runSteps(t, cl, []step{{"STLS", "-ERR Already logged in.\r\n"}, {"NOOP", "+OK\r\n"}})
	})
}

// TestSTLSInjection: commands pipelined after STLS in the clear (a man in
// the middle's favourite) are never executed, in or out of TLS.
func TestSTLSInjection(t *testing.T) {
	be := newFake()
	addr := testServer(t, &Server{Backend: be, TLSConfig: serverTLS(t)})
	t.Run("one segment", func(t *testing.T) {
		out := pipelined(t, addr, "STLS\r\nCAPA\r\nUSER alice\r\nPASS secret\r\n", 0)
		want := "+OK POP3 gateway ready.\r\n-ERR STLS must be the last command sent before TLS.\r\n"
		if out != want {
			t.Errorf("got %q, want %q", out, want)
		}
	})
	t.Run("after the go-ahead", func(t *testing.T) {
		cl := dial(t, addr)
		if r := cl.cmd("STLS"); r != "+OK Begin TLS negotiation.\r\n" {
			t.Fatalf("STLS: %q, want %q", r, "+OK Begin TLS negotiation.\r\n")
		}
		// Cleartext where the handshake belongs: read as a bad record,
		// never as a command.
		io.WriteString(cl.c, "CAPA\r\nUSER alice\r\nPASS secret\r\n")
		rest, _ := io.ReadAll(cl.r)
		if strings.Contains(string(rest), "+OK") || strings.Contains(string(rest), "Capability") {
			t.Errorf("answered in the clear after STLS: %q", rest)
		}
	})
	if len(be.Calls()) != 0 {
		t.Errorf("backend saw %q", be.Calls())
	}
}

// TestSTLSForgetsUser: USER before STLS, PASS after: refused, nothing
// reaches the backend (RFC 2595 section 4: discard prior knowledge).
func TestSTLSForgetsUser(t *testing.T) {
	be := newFake()
	addr := testServer(t, &Server{Backend: be, TLSConfig: serverTLS(t)})
	cl := dial(t, addr)
	runSteps(t, cl, []step{{"USER alice", "+OK Send PASS.\r\n"}})
	cl.stls()
	runSteps(t, cl, []step{{"PASS secret", "-ERR USER first.\r\n"}})
	if len(be.Calls()) != 0 {
		t.Errorf("backend saw %q", be.Calls())
	}
	cl.login() // a fresh USER/PASS over TLS works
}

// TestTLSHandshakeDeadline: a client that connects (or says STLS) and
// then sends nothing, or garbage, is closed within TLSHandshakeTimeout.
func TestTLSHandshakeDeadline(t *testing.T) {
	const hs = 200 * time.Millisecond
	mk := func() *Server {
		return &Server{Backend: newFake(), TLSConfig: serverTLS(t), Limits: Limits{TLSHandshakeTimeout: hs}}
	}
	tlsAddr := testTLSServer(t, mk())
	plainAddr := testServer(t, mk())
	closedWithin := func(t *testing.T, c net.Conn, r io.Reader, start time.Time) {
		t.Helper()
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		io.Copy(io.Discard, r)
		if d := time.Since(start); d < hs-20*time.Millisecond || d > 5*time.Second {
			t.Errorf("closed after %v, want about %v", d, hs)
		}
	}
	t.Run("implicit, silent", func(t *testing.T) {
		c, err := net.Dial("tcp", tlsAddr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		closedWithin(t, c, c, time.Now())
	})
	t.Run("implicit, partial hello", func(t *testing.T) {
		c, err := net.Dial("tcp", tlsAddr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		start := time.Now()
		c.Write([]byte{0x16, 0x03, 0x01, 0x02, 0x00, 0x01}) // a record header, then nothing
		closedWithin(t, c, c, start)
	})
	t.Run("implicit, cleartext POP3", func(t *testing.T) {
		c, err := net.Dial("tcp", tlsAddr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		io.WriteString(c, "CAPA\r\n")
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		b, _ := io.ReadAll(c)
		if strings.Contains(string(b), "+OK") {
			t.Errorf("cleartext answer on POP3S: %q", b)
		}
	})
	t.Run("STLS, silent", func(t *testing.T) {
		cl := dial(t, plainAddr)
		if r := cl.cmd("STLS"); r != "+OK Begin TLS negotiation.\r\n" {
			t.Fatalf("STLS: %q, want %q", r, "+OK Begin TLS negotiation.\r\n")
		}
		closedWithin(t, cl.c, cl.r, time.Now())
	})
}

// TestCertificatePerHandshake: GetCertificate is asked on every
// handshake, so a certificate holder can swap certificates without
// touching running sessions (the proxy's SIGHUP reload relies on it).
func TestCertificatePerHandshake(t *testing.T) {
	_, leaf := getPKI(t)
	calls := make(chan struct{}, 10)
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
		calls <- struct{}{}
		return &leaf, nil
	}}
	addr := testTLSServer(t, &Server{Backend: newFake(), TLSConfig: cfg})
	first := dialTLS(t, addr)
	first.login()
	dialTLS(t, addr).login()
	runSteps(t, first, []step{{"STAT", "+OK 3 88\r\n"}})
	if len(calls) != 2 {
		t.Errorf("GetCertificate called %d times for 2 handshakes, want %d", len(calls), 2)
	}
}

// TestTLSCloseNotify: a TLS session that ends with QUIT ends cleanly
// (close_notify, no truncation error on the client).
func TestTLSCloseNotify(t *testing.T) {
	addr := testTLSServer(t, &Server{Backend: newFake(), TLSConfig: serverTLS(t)})
	cl := dialTLS(t, addr)
	cl.login()
	io.WriteString(cl.c, "QUIT\r\n")
	r := bufio.NewReader(cl.r)
	if l, _ := r.ReadString('\n'); l != "+OK Logging out.\r\n" {
		t.Fatalf("QUIT: %q, want %q", l, "+OK Logging out.\r\n")
	}
	if _, err := r.ReadByte(); err != io.EOF {
		t.Errorf("after QUIT: %v, want a clean EOF", err)
	}
}
