package imapback

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/popbridge/popbridge/internal/memupstream"
	"github.com/popbridge/popbridge/internal/testpki"
	"github.com/popbridge/popbridge/pop3front"
)

// TestSpecialCredentials: usernames and passwords with specials reach the
// upstream as exactly one well-formed LOGIN (quoted, or a literal).
func TestSpecialCredentials(t *testing.T) {
	creds := [][2]string{
		{"alice smith", "pa ss word"},
		{`quo"te`, `pa"ss`},
		{`back\slash`, `pa\ss\`},
		{"{5}", "{5}\r"[:3]},
		{"*", "*"},
		{"%user(", ")pass%"},
		{"jürgen", "pässwörd€"},
		{"long", strings.Repeat(`a"\ {5}* é`, 25)},
		{"limit", strings.Repeat("p", maxCredential)},
		{"", ""}, // placeholder: skipped
	}
	for _, prof := range []memupstream.Profile{memupstream.ProfileFull, memupstream.ProfileIMAP4rev2, memupstream.ProfileBare} {
		t.Run(string(prof), func(t *testing.T) {
			e := newEnv(t, prof, nil, nil)
			b := e.backend(Policy{})
			for _, c := range creds {
				if c[0] == "" {
					continue
				}
				if err := e.srv.AddUser(c[0], c[1]); err != nil {
					t.Fatal(err)
				}
				before := len(e.wire.lines(`(?i)^\S+ LOGIN `))
				md, err := b.Login(context.Background(), &pop3front.LoginRequest{Username: c[0], Password: c[1]})
				if err != nil {
					t.Errorf("login %q: %v", c[0], err)
					continue
				}
				md.Close()
				if n := len(e.wire.lines(`(?i)^\S+ LOGIN `)) - before; n != 1 {
					t.Errorf("login %q: %d LOGIN commands, want %d", c[0], n, 1)
				}
				// A wrong password with the same specials fails cleanly.
				_, err = b.Login(context.Background(), &pop3front.LoginRequest{Username: c[0], Password: c[1] + "x"})
				if err != pop3front.ErrAuthFailed {
					t.Errorf("wrong password for %q: %v, want %v", c[0], err, pop3front.ErrAuthFailed)
				}
			}
			if l := e.wire.lines(`(?i)^\S+ (BAD|AUTHENTICATE)`); len(l) > 0 {
				t.Errorf("wire: %q", l)
			}
		})
	}
}

// TestRejectedCredentials: NUL, CR, LF, an empty username or a foreign
// authorization identity never reach the upstream.
func TestRejectedCredentials(t *testing.T) {
	f := startFake(t, &fakeUpstream{})
	b := f.backend(t)
	for _, req := range []pop3front.LoginRequest{
		{Username: "a\x00b", Password: "p"},
		{Username: "a", Password: "p\r"},
		{Username: "a", Password: "p\nq"},
		{Username: "a\r\nT1 DELETE INBOX", Password: "p"},
		{Username: "a", Password: "p", AuthzID: "a\x00"},
		{Username: "", Password: "p"},
		{Username: "a", Password: "p", AuthzID: "root"},
		{Username: "a", Password: strings.Repeat("p", maxCredential+1)},
	} {
		_, err := b.Login(context.Background(), &req)
		if err != pop3front.ErrAuthFailed {
			t.Errorf("%q: %v, want ErrAuthFailed", req.Username, err)
		}
	}
	if n := f.accepts.Load(); n != 0 {
		t.Errorf("upstream contacted %d times, want %d", n, 0)
	}
}

func TestAuthzIDSameAsUser(t *testing.T) {
	e := newEnv(t, memupstream.ProfileFull, nil, nil)
	md, err := e.backend(Policy{}).Login(context.Background(), &pop3front.LoginRequest{Username: testUser, Password: testPass, AuthzID: testUser, Mechanism: "PLAIN"})
	if err != nil {
		t.Fatal(err)
	}
	md.Close()
}

func TestAuthFailure(t *testing.T) {
	e := newEnv(t, memupstream.ProfileFull, nil, nil)
	b := e.backend(Policy{})
	for _, req := range []pop3front.LoginRequest{
		{Username: testUser, Password: "wrong"},
		{Username: "nobody", Password: testPass},
	} {
		if _, err := b.Login(context.Background(), &req); err != pop3front.ErrAuthFailed {
			t.Errorf("%v, want ErrAuthFailed", err)
		}
	}
}

// TestLoginResponses classifies tagged LOGIN responses (RFC 5530 codes).
func TestLoginResponses(t *testing.T) {
	for resp, want := range map[string]string{
		"NO [AUTHENTICATIONFAILED] Authentication failed.": "auth",
		"NO [AUTHORIZATIONFAILED] no":                      "auth",
		"NO Login failed":                                  "auth",
		"BAD Syntax error":                                 "auth",
		"NO [UNAVAILABLE] Try again later":                 pop3front.CodeSysTemp,
		"NO [SERVERBUG] oops":                              pop3front.CodeSysTemp,
	} {
		f := startFake(t, &fakeUpstream{login: resp})
		_, err := f.backend(t).Login(context.Background(), &pop3front.LoginRequest{Username: "u", Password: "p"})
		if want == "auth" {
			if err != pop3front.ErrAuthFailed {
				t.Errorf("%s: %v, want %v", resp, err, pop3front.ErrAuthFailed)
			}
			continue
		}
		pe := wantCode(t, err, want)
		if strings.Contains(pe.Text, "later\"") || strings.Contains(pe.Text, "oops") || strings.Contains(pe.Text, "Try again later") {
			t.Errorf("upstream text leaked: %q", pe.Text)
		}
	}
}

func TestConnectionRefused(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	b, err := New(Config{Address: addr, Security: SecurityNone, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	_, err = b.Login(context.Background(), &pop3front.LoginRequest{Username: "u", Password: "p"})
	wantCode(t, err, pop3front.CodeSysTemp)
	wantCode(t, b.Probe(context.Background()), pop3front.CodeSysTemp)
}

// TestHangs: a server that never greets, one that never answers LOGIN
// (black hole) and a cancelled context all end within their bounds.
func TestHangs(t *testing.T) {
	quick := func(c *Config) { c.DialTimeout, c.CommandTimeout = 300*time.Millisecond, 300*time.Millisecond }
	req := &pop3front.LoginRequest{Username: "u", Password: "p"}
	for name, f := range map[string]*fakeUpstream{
		"greeting": {greeting: "-"},
		"login":    {login: "-"},
	} {
		t.Run(name, func(t *testing.T) {
			b := startFake(t, f).backend(t, quick)
			start := time.Now()
			_, err := b.Login(context.Background(), req)
			wantCode(t, err, pop3front.CodeSysTemp)
			if d := time.Since(start); d > 3*time.Second {
				t.Errorf("took %v", d)
			}
		})
	}
	t.Run("context", func(t *testing.T) {
		b := startFake(t, &fakeUpstream{login: "-"}).backend(t)
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		start := time.Now()
		_, err := b.Login(ctx, req)
		wantCode(t, err, pop3front.CodeSysTemp)
		if d := time.Since(start); d > 900*time.Millisecond {
			t.Errorf("took %v (CommandTimeout is 1s)", d)
		}
	})
	t.Run("fetch", func(t *testing.T) {
		f := startFake(t, &fakeUpstream{sizes: []int{10}, fetch: func(w io.Writer, tag, line string) bool {
			return true // never answers
		}})
		b := f.backend(t, quick)
		md, err := b.Login(context.Background(), req)
		if err != nil {
			t.Fatal(err)
		}
		defer md.Close()
		start := time.Now()
		_, err = md.Open(context.Background(), 0, pop3front.Section{})
		wantCode(t, err, pop3front.CodeSysTemp)
		if d := time.Since(start); d > 3*time.Second {
			t.Errorf("took %v", d)
		}
	})
}

func TestOddGreetings(t *testing.T) {
	for _, g := range []string{
		"* PREAUTH [CAPABILITY IMAP4rev1] welcome",
		"* BYE [UNAVAILABLE] overloaded",
		"* OK [CAPABILITY IMAP4rev1 LOGINDISABLED AUTH=PLAIN] plaintext",
	} {
		f := startFake(t, &fakeUpstream{greeting: g})
		_, err := f.backend(t).Login(context.Background(), &pop3front.LoginRequest{Username: "u", Password: "p"})
		wantCode(t, err, pop3front.CodeSysTemp)
		if r := f.recorded(); strings.Contains(strings.ToUpper(r), "LOGIN") || strings.Contains(strings.ToUpper(r), "AUTHENTICATE") {
			t.Errorf("%s: credentials sent: %q", g, r)
		}
	}
}

// --- TLS ---

var (
	certOnce sync.Once
	testCert tls.Certificate
	testPool *x509.CertPool
)

// selfSigned returns a certificate for 127.0.0.1 and a pool trusting it
// (internal/testpki).
func selfSigned(t *testing.T) (tls.Certificate, *x509.CertPool) {
	certOnce.Do(func() {
		ca := testpki.New()
		testCert, testPool = ca.Leaf(1), ca.Pool
	})
	return testCert, testPool
}

func tlsEnv(t *testing.T, implicit bool) *env {
	cert, _ := selfSigned(t)
	w := &wire{}
	srv, err := memupstream.Start("127.0.0.1:0", memupstream.Options{
		Wire: w, TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}}, ImplicitTLS: implicit,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	srv.AddUser(testUser, testPass)
	msgs := seed(2)
	for _, m := range msgs {
		srv.Append(testUser, "INBOX", m)
	}
	return &env{t: t, srv: srv, wire: w, msgs: msgs}
}

func TestTLS(t *testing.T) {
	_, pool := selfSigned(t)
	for _, sec := range []Security{SecurityTLS, SecurityStartTLS} {
		t.Run(string(sec), func(t *testing.T) {
			e := tlsEnv(t, sec == SecurityTLS)
			b := e.backend(Policy{}, func(c *Config) { c.Security, c.TLSConfig = sec, &tls.Config{RootCAs: pool} })
			md := e.login(b)
			if data, err := retr(t, md, 1); err != nil || !bytes.Equal(data, e.msgs[1]) {
				t.Fatalf("RETR over %s: %v", sec, err)
			}
			if err := b.Probe(context.Background()); err != nil {
				t.Errorf("Probe: %v", err)
			}
			// An untrusted certificate: refused before any credential.
			bad := e.backend(Policy{}, func(c *Config) { c.Security, c.TLSConfig = sec, &tls.Config{RootCAs: x509.NewCertPool()} })
			before := e.wire.String()
			_, err := bad.Login(context.Background(), &pop3front.LoginRequest{Username: testUser, Password: testPass})
			wantCode(t, err, pop3front.CodeSysTemp)
			if sec == SecurityStartTLS && strings.Contains(e.wire.String()[len(before):], testPass) {
				t.Error("password sent")
			}
		})
	}
	t.Run("starttls-not-offered", func(t *testing.T) {
		e := newEnv(t, memupstream.ProfileFull, nil, nil)
		b := e.backend(Policy{}, func(c *Config) { c.Security, c.TLSConfig = SecurityStartTLS, &tls.Config{RootCAs: pool} })
		_, err := b.Login(context.Background(), &pop3front.LoginRequest{Username: testUser, Password: testPass})
		wantCode(t, err, pop3front.CodeSysTemp)
		if l := e.wire.lines(`(?i)LOGIN|AUTHENTICATE|STARTTLS`); len(l) > 0 {
			t.Errorf("wire: %q", l)
		}
	})
	t.Run("starttls-injection", func(t *testing.T) {
		f := startFake(t, &fakeUpstream{greeting: "* OK [CAPABILITY IMAP4rev1 STARTTLS] x", fetch: nil})
		f.starttls = "S2 OK Begin TLS\r\n* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] injected\r\n"
		b := f.backend(t, func(c *Config) { c.Security, c.TLSConfig = SecurityStartTLS, &tls.Config{RootCAs: pool} })
		_, err := b.Login(context.Background(), &pop3front.LoginRequest{Username: "u", Password: "p"})
		pe := wantCode(t, err, pop3front.CodeSysTemp)
		if !strings.Contains(pe.Err.Error(), "injection") {
			t.Errorf("cause: %v", pe.Err)
		}
	})
}

// TestAuthenticatePlain: LOGINDISABLED over TLS with AUTH=PLAIN uses
// AUTHENTICATE PLAIN (with SASL-IR when advertised).
func TestAuthenticatePlain(t *testing.T) {
	cert, pool := selfSigned(t)
	f := &fakeUpstream{
		greeting: "* OK [CAPABILITY IMAP4rev1 LOGINDISABLED AUTH=PLAIN SASL-IR] tls",
		tls:      &tls.Config{Certificates: []tls.Certificate{cert}},
	}
	startFake(t, f)
	b := f.backend(t, func(c *Config) { c.Security, c.TLSConfig = SecurityTLS, &tls.Config{RootCAs: pool} })
	md, err := b.Login(context.Background(), &pop3front.LoginRequest{Username: "ü ser", Password: `p"w`})
	if err != nil {
		t.Fatal(err)
	}
	md.Close()
	want := "AUTHENTICATE PLAIN " + base64.StdEncoding.EncodeToString([]byte("\x00ü ser\x00p\"w"))
	if r := f.recorded(); !strings.Contains(r, want) || strings.Contains(r, " LOGIN ") {
		t.Errorf("recorded %q", r)
	}
}

func TestProbe(t *testing.T) {
	e := newEnv(t, memupstream.ProfileFull, nil, nil)
	if err := e.backend(Policy{}).Probe(context.Background()); err != nil {
		t.Fatal(err)
	}
	if l := e.wire.lines(`(?i)^\S+ (LOGIN|LOGOUT)`); len(l) != 1 || !strings.Contains(l[0], "LOGOUT") {
		t.Errorf("wire %q", l)
	}
}

func TestNewValidation(t *testing.T) {
	ok := Config{Address: "127.0.0.1:143", Security: SecurityNone}
	if _, err := New(ok); err != nil {
		t.Fatal(err)
	}
	for name, f := range map[string]func(*Config){
		"address":  func(c *Config) { c.Address = "nohost" },
		"security": func(c *Config) { c.Security = "" },
		"delete":   func(c *Config) { c.Policy.Delete = "nuke" },
		"seen":     func(c *Config) { c.Policy.Seen = "always" },
		"keyword":  func(c *Config) { c.Policy.Keyword = `\Deleted` },
		"keyword2": func(c *Config) { c.Policy.Keyword = "two words" },
		"insecure": func(c *Config) { c.Security, c.TLSConfig = SecurityTLS, &tls.Config{InsecureSkipVerify: true} },
		"mailbox":  func(c *Config) { c.Mailbox = "a\r\nb" },
	} {
		c := ok
		f(&c)
		if _, err := New(c); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

type countingObserver struct {
	mu  sync.Mutex
	ops map[string]int
}

func (o *countingObserver) UpstreamOp(op string, d time.Duration, err error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.ops[op]++
}

func (o *countingObserver) Committed(string, int) {}
func (o *countingObserver) Anomaly(string)        {}

func TestObserver(t *testing.T) {
	e := newEnv(t, memupstream.ProfileFull, seed(2), nil)
	o := &countingObserver{ops: map[string]int{}}
	md := e.login(e.backend(Policy{}, func(c *Config) { c.Observer = o }))
	retr(t, md, 0)
	md.Commit(context.Background(), pop3front.Outcome{Deleted: []int{1}})
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, op := range []string{"connect", "login", "examine", "snapshot", "fetch", "commit", "logout"} {
		if o.ops[op] == 0 {
			t.Errorf("no %s observed: %v", op, o.ops)
		}
	}
}

// TestNoPasswordInLogs: a canary password never appears in log output.
func TestNoPasswordInLogs(t *testing.T) {
	const canary = "Canary-Pw-7f3a"
	var buf bytes.Buffer
	var mu sync.Mutex
	e := newEnv(t, memupstream.ProfileFull, seed(1), nil)
	b := e.backend(Policy{}, func(c *Config) {
		c.Logger = newBufLogger(&buf, &mu)
	})
	b.Login(context.Background(), &pop3front.LoginRequest{Username: testUser, Password: canary})
	b.Login(context.Background(), &pop3front.LoginRequest{Username: testUser, Password: canary + "\r\n"})
	mu.Lock()
	defer mu.Unlock()
	if strings.Contains(buf.String(), canary) || strings.Contains(buf.String(), base64.StdEncoding.EncodeToString([]byte(canary))[:12]) {
		t.Errorf("password logged: %s", buf.String())
	}
	if !strings.Contains(buf.String(), "login failed") {
		t.Errorf("no log line at all? %q, want it to contain %q", buf.String(), "login failed")
	}
}

var _ = errors.Is
var _ = fmt.Sprint
