package imapback

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"strings"
	"sync"
	"testing"

	"github.com/popbridge/popbridge/pop3front"
)

// Upstream TLS (RFC 8314 implicit TLS, RFC 3501/9051 STARTTLS): each
// refusal is -ERR [SYS/TEMP] for the client, and no credential (nor ID)
// leaves before the certificate and host name are verified.

// TestTLSHostName: a certificate from a trusted CA but for another name is
// refused, in both modes, before anything is sent over it.
func TestTLSHostName(t *testing.T) {
	_, pool := selfSigned(t) // the certificate names 127.0.0.1
	for _, sec := range []Security{SecurityTLS, SecurityStartTLS} {
		t.Run(string(sec), func(t *testing.T) {
			e := tlsEnv(t, sec == SecurityTLS)
			b := e.backend(Policy{}, func(c *Config) {
				c.Security, c.TLSConfig = sec, &tls.Config{RootCAs: pool, ServerName: "imap.example.org"}
				c.ForwardClientAddress = true
			})
			_, err := b.Login(context.Background(), &pop3front.LoginRequest{Username: testUser, Password: testPass, Client: client7})
			pe := wantCode(t, err, pop3front.CodeSysTemp)
			var he x509.HostnameError
			if !strings.Contains(pe.Err.Error(), "imap.example.org") {
				t.Errorf("cause %v, want a %T", pe.Err, he)
			}
			if w := e.wire.String(); strings.Contains(w, testPass) || strings.Contains(strings.ToUpper(w), "LOGIN") || strings.Contains(w, "192.0.2.7") {
				t.Errorf("sent before verification: %q", w)
			}
			wantCode(t, b.Probe(context.Background()), pop3front.CodeSysTemp)
		})
	}
}

// TestStartTLSRefusals: STARTTLS not advertised (in the greeting or the
// CAPABILITY response), answered NO or BAD, or a PREAUTH greeting: the
// login is refused and nothing but the plaintext negotiation is sent.
func TestStartTLSRefusals(t *testing.T) {
	_, pool := selfSigned(t)
	for _, tc := range []struct {
		name, greeting, starttls, sent string
	}{
		{"not-in-greeting", "* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] x", "", ""},
		{"not-in-capability", "* OK hi", "", "S1 CAPABILITY\r\n"},
		{"no", "* OK [CAPABILITY IMAP4rev1 STARTTLS] x", "S2 NO [UNAVAILABLE] not today\r\n", "S2 STARTTLS\r\n"},
		{"bad", "* OK [CAPABILITY IMAP4rev1 STARTTLS] x", "S2 BAD what\r\n", "S2 STARTTLS\r\n"},
		{"bye", "* OK [CAPABILITY IMAP4rev1 STARTTLS] x", "* BYE going\r\n", "S2 STARTTLS\r\n"},
		{"preauth", "* PREAUTH [CAPABILITY IMAP4rev1 STARTTLS] welcome", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := startFake(t, &fakeUpstream{greeting: tc.greeting, starttls: tc.starttls})
			b := f.backend(t, func(c *Config) {
				c.Security, c.TLSConfig = SecurityStartTLS, &tls.Config{RootCAs: pool}
				c.ForwardClientAddress = true
			})
			_, err := b.Login(context.Background(), &pop3front.LoginRequest{Username: "u", Password: "pw-canary", Client: client7})
			wantCode(t, err, pop3front.CodeSysTemp)
			if r := f.recorded(); r != tc.sent {
				t.Errorf("sent %q, want %q", r, tc.sent)
			}
		})
	}
}

// TestTLSPreauth: PREAUTH is refused over implicit TLS too (and in the
// clear: TestOddGreetings). The gateway must log in as the user: a
// pre-authenticated connection is some other identity's mailbox.
func TestTLSPreauth(t *testing.T) {
	cert, pool := selfSigned(t)
	f := startFake(t, &fakeUpstream{
		greeting: "* PREAUTH [CAPABILITY IMAP4rev1 ID] welcome",
		tls:      &tls.Config{Certificates: []tls.Certificate{cert}},
	})
	for _, fwd := range []bool{false, true} {
		b := f.backend(t, func(c *Config) {
			c.Security, c.TLSConfig = SecurityTLS, &tls.Config{RootCAs: pool}
			c.ForwardClientAddress = fwd
		})
		_, err := b.Login(context.Background(), &pop3front.LoginRequest{Username: "u", Password: "p", Client: client7})
		wantCode(t, err, pop3front.CodeSysTemp)
		wantCode(t, b.Probe(context.Background()), pop3front.CodeSysTemp)
	}
	if r := f.recorded(); r != "" {
		t.Errorf("sent %q, want %q", r, "")
	}
}

// injector relays a client to an upstream and, in the plaintext phase,
// slips extra lines in front of the server's tagged STARTTLS answer, as a
// man in the middle would: capabilities that would downgrade the login
// (LOGINDISABLED pushes to AUTHENTICATE) or invite ID.
func injector(t *testing.T, upstream, inject string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", upstream)
			if err != nil {
				c.Close()
				continue
			}
			mu.Lock()
			conns = append(conns, c, s)
			mu.Unlock()
			wg.Add(2)
			go func() { defer wg.Done(); io.Copy(s, c); s.Close() }()
			go func() {
				defer wg.Done()
				defer c.Close()
				br := bufio.NewReader(s)
				for {
					l, err := br.ReadString('\n')
					if err != nil {
						return
					}
					if strings.HasPrefix(l, "S2 ") {
						l = inject + l
					}
					io.WriteString(c, l)
					if strings.HasPrefix(l, inject) {
						break
					}
				}
				io.Copy(c, br)
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().String()
}

// TestStartTLSNoCarryOver: capabilities a man in the middle injected
// before the TLS handshake are not used after it. Had they been, the
// login would fail: LOGINDISABLED without AUTH=PLAIN is refused, and ID
// makes imapmemserver hang up (it has no ID). The real capabilities,
// asked again over TLS, allow LOGIN.
func TestStartTLSNoCarryOver(t *testing.T) {
	_, pool := selfSigned(t)
	for _, fwd := range []bool{false, true} {
		e := tlsEnv(t, false)
		addr := injector(t, e.srv.Addr(), "* CAPABILITY IMAP4rev1 STARTTLS LOGINDISABLED ID\r\n")
		b := e.backend(Policy{}, func(c *Config) {
			c.Address = addr
			c.Security, c.TLSConfig = SecurityStartTLS, &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}
			c.ForwardClientAddress = fwd
		})
		md, err := b.Login(context.Background(), &pop3front.LoginRequest{Username: testUser, Password: testPass, Client: client7})
		if err != nil {
			t.Fatalf("forward=%v: %v", fwd, err)
		}
		if _, err := retr(t, md, 0); err != nil {
			t.Errorf("forward=%v: %v", fwd, err)
		}
		md.Close()
	}
}

// TestInsecureSkipVerify: the lab switch accepts an untrusted
// certificate (the daemon logs a warning at start; proxy tests check it).
func TestInsecureSkipVerify(t *testing.T) {
	for _, sec := range []Security{SecurityTLS, SecurityStartTLS} {
		e := tlsEnv(t, sec == SecurityTLS)
		b := e.backend(Policy{}, func(c *Config) { c.Security, c.InsecureSkipVerify = sec, true })
		md := e.login(b)
		if _, err := retr(t, md, 0); err != nil {
			t.Errorf("%s: %v", sec, err)
		}
	}
}
