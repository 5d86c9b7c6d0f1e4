package imapback

import (
	"bufio"
	"context"
	"crypto/tls"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/popbridge/popbridge/internal/memupstream"
	"github.com/popbridge/popbridge/pop3front"
)

// scriptServer is a minimal IMAP server for the pre-login exchange: it
// greets, answers each command by its name from replies ("$tag" is the
// client's tag) and hangs up on a command it has no reply for, like
// imapmemserver does. It records every line it reads.
type scriptServer struct {
	greeting string
	replies  map[string]string // upper-case command name -> raw reply

	ln    net.Listener
	mu    sync.Mutex
	lines []string
	wg    sync.WaitGroup
}

func startScript(t *testing.T, s *scriptServer) *scriptServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.ln = ln
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				defer c.Close()
				c.SetDeadline(time.Now().Add(10 * time.Second))
				s.serve(c)
			}()
		}
	}()
	t.Cleanup(func() { ln.Close(); s.wg.Wait() })
	return s
}

func (s *scriptServer) serve(c net.Conn) {
	c.Write([]byte(s.greeting + "\r\n"))
	br := bufio.NewReader(c)
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return
		}
		s.mu.Lock()
		s.lines = append(s.lines, line)
		s.mu.Unlock()
		f := strings.Fields(line)
		if len(f) < 2 {
			return
		}
		reply, ok := s.replies[strings.ToUpper(f[1])]
		if !ok {
			return
		}
		c.Write([]byte(strings.ReplaceAll(reply, "$tag", f[0])))
	}
}

func (s *scriptServer) recorded() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.lines...)
}

func (s *scriptServer) backend(t *testing.T, mod ...func(*Config)) *Backend {
	t.Helper()
	cfg := Config{
		Address: s.ln.Addr().String(), Security: SecurityNone,
		DialTimeout: 2 * time.Second, CommandTimeout: 2 * time.Second,
		Logger: testLogger(t), ForwardClientAddress: true,
	}
	for _, m := range mod {
		m(&cfg)
	}
	b, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

var client7 = &net.TCPAddr{IP: net.IPv4(192, 0, 2, 7), Port: 50312}

func TestIDFields(t *testing.T) {
	for _, tc := range []struct {
		addr net.Addr
		want string
	}{
		{client7, "x-originating-ip 192.0.2.7 x-originating-port 50312"},
		{&net.TCPAddr{IP: net.ParseIP("2001:db8::7"), Port: 1}, "x-originating-ip 2001:db8::7 x-originating-port 1"},
		{&net.TCPAddr{IP: net.ParseIP("::ffff:192.0.2.8"), Port: 2}, "x-originating-ip 192.0.2.8 x-originating-port 2"},
		{&net.TCPAddr{IP: net.ParseIP("fe80::1"), Port: 3, Zone: `eth0") "x`}, "x-originating-ip fe80::1 x-originating-port 3"},
		{&net.TCPAddr{IP: net.IPv4(192, 0, 2, 9)}, "x-originating-ip 192.0.2.9"},
		{&net.UDPAddr{IP: net.IPv4(192, 0, 2, 10), Port: 4}, "x-originating-ip 192.0.2.10 x-originating-port 4"},
		{&net.UnixAddr{Name: "/run/pop3.sock", Net: "unix"}, ""},
		{&net.TCPAddr{}, ""},
		{nil, ""},
	} {
		if got := strings.Join(idFields(tc.addr, nil), " "); got != tc.want {
			t.Errorf("%v: %q, want %q", tc.addr, got, tc.want)
		}
	}
	local := &net.TCPAddr{IP: net.IPv4(198, 51, 100, 1), Port: 995}
	if got := strings.Join(idFields(client7, local), " "); got != "x-originating-ip 192.0.2.7 x-originating-port 50312 x-connected-ip 198.51.100.1 x-connected-port 995" {
		t.Errorf("with the local address: %q, want %q", got, "x-originating-ip 192.0.2.7 x-originating-port 50312 x-connected-ip 198.51.100.1 x-connected-port 995")
	}
	if got := idFields(nil, local); got != nil {
		t.Errorf("no client, local only: %q", got)
	}
	cmd, err := idCommand("I2", idFields(client7, nil))
	if err != nil || cmd != `I2 ID ("x-originating-ip" "192.0.2.7" "x-originating-port" "50312")`+"\r\n" {
		t.Errorf("%q, %v", cmd, err)
	}
	for _, bad := range [][]string{
		{"x-originating-ip", `1" "x`},
		{"x-originating-ip", "1\r\nT1 DELETE INBOX"},
		{"x-originating-ip", ""},
		{`x"`, "1"},
		{"x-originating-ip"},
		nil,
	} {
		if cmd, err := idCommand("I2", bad); err == nil {
			t.Errorf("%q accepted: %q", bad, cmd)
		}
	}
}

// TestIDNotAdvertised: against imapmemserver, which has no ID and hangs
// up on unknown commands, forwarding sends nothing and logins work, over
// plaintext, STARTTLS and TLS. Probe never identifies.
func TestIDNotAdvertised(t *testing.T) {
	_, pool := selfSigned(t)
	for _, sec := range []Security{SecurityNone, SecurityStartTLS, SecurityTLS} {
		t.Run(string(sec), func(t *testing.T) {
			var e *env
			if sec == SecurityNone {
				e = newEnv(t, memupstream.ProfileFull, seed(1), nil)
			} else {
				e = tlsEnv(t, sec == SecurityTLS)
			}
			b := e.backend(Policy{}, func(c *Config) {
				c.ForwardClientAddress = true
				if sec != SecurityNone {
					c.Security, c.TLSConfig = sec, &tls.Config{RootCAs: pool}
				}
			})
			for range 2 {
				md, err := b.Login(context.Background(), &pop3front.LoginRequest{Username: testUser, Password: testPass, Client: client7})
				if err != nil {
					t.Fatal(err)
				}
				if _, err := retr(t, md, 0); err != nil {
					t.Fatal(err)
				}
				md.Close()
			}
			if err := b.Probe(context.Background()); err != nil {
				t.Fatal(err)
			}
			if l := e.wire.lines(`(?i)^\S+ ID\b|192\.0\.2\.7`); len(l) > 0 {
				t.Errorf("ID sent: %q", l)
			}
		})
	}
}

const idReply = "* ID (\"name\" {7}\r\nDovecot \"version\" \"2.3\")\r\n$tag OK ID completed.\r\n"

// TestIDForwarded: where ID is advertised (in the greeting, or only in a
// CAPABILITY response), it goes before LOGIN with the client's address,
// however the server answers it (with a literal, NO, BAD), and go-imap
// stays in step.
func TestIDForwarded(t *testing.T) {
	wantID := `I2 ID ("x-originating-ip" "192.0.2.7" "x-originating-port" "50312")` + "\r\n"
	for _, tc := range []struct {
		name, greeting, id string
		capCmd             bool
	}{
		{"greeting-caps", "* OK [CAPABILITY IMAP4rev1 ID AUTH=PLAIN] hi", idReply, false},
		{"capability-cmd", "* OK hi", idReply, true},
		{"id-no", "* OK [CAPABILITY IMAP4rev1 ID] hi", "$tag NO not now\r\n", false},
		{"id-bad", "* OK [CAPABILITY IMAP4rev1 ID] hi", "$tag BAD what\r\n", false},
		{"id-nil", "* OK [CAPABILITY IMAP4rev1 ID] hi", "* ID NIL\r\n$tag OK\r\n", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := startScript(t, &scriptServer{greeting: tc.greeting, replies: map[string]string{
				"CAPABILITY": "* CAPABILITY IMAP4rev1 ID LITERAL+\r\n$tag OK done\r\n",
				"ID":         tc.id,
				"LOGIN":      "$tag NO [AUTHENTICATIONFAILED] Authentication failed.\r\n",
			}})
			_, err := s.backend(t).Login(context.Background(), &pop3front.LoginRequest{Username: "u", Password: "p", Client: client7})
			if err != pop3front.ErrAuthFailed {
				t.Fatalf("Login: %v, want %v", err, pop3front.ErrAuthFailed)
			}
			got := s.recorded()
			want := []string{wantID, "LOGIN"}
			if tc.capCmd {
				want = []string{"I1 CAPABILITY\r\n", wantID, "LOGIN"}
			}
			if len(got) != len(want) {
				t.Fatalf("recorded %q, want %q", got, want)
			}
			for i := range want {
				if !strings.Contains(got[i], want[i]) {
					t.Errorf("line %d: %q, want %q", i, got[i], want[i])
				}
			}
		})
	}
	t.Run("off", func(t *testing.T) {
		s := startScript(t, &scriptServer{greeting: "* OK [CAPABILITY IMAP4rev1 ID] hi", replies: map[string]string{
			"LOGIN": "$tag NO no\r\n",
		}})
		b := s.backend(t, func(c *Config) { c.ForwardClientAddress = false })
		b.Login(context.Background(), &pop3front.LoginRequest{Username: "u", Password: "p", Client: client7})
		if got := s.recorded(); len(got) != 1 || !strings.Contains(got[0], " LOGIN ") {
			t.Errorf("recorded %q", got)
		}
	})
	t.Run("no-address", func(t *testing.T) {
		s := startScript(t, &scriptServer{greeting: "* OK [CAPABILITY IMAP4rev1 ID] hi", replies: map[string]string{
			"LOGIN": "$tag NO no\r\n",
		}})
		s.backend(t).Login(context.Background(), &pop3front.LoginRequest{Username: "u", Password: "p"})
		if got := s.recorded(); len(got) != 1 || !strings.Contains(got[0], " LOGIN ") {
			t.Errorf("recorded %q", got)
		}
	})
}

// TestIDRefusedGreetings: a PREAUTH or BYE greeting gets neither ID nor
// credentials, with forwarding on; a server that hangs in the ID exchange
// is bounded by DialTimeout.
func TestIDRefusedGreetings(t *testing.T) {
	for _, g := range []string{"* PREAUTH [CAPABILITY IMAP4rev1 ID] welcome", "* BYE [UNAVAILABLE] busy"} {
		s := startScript(t, &scriptServer{greeting: g, replies: map[string]string{}})
		_, err := s.backend(t).Login(context.Background(), &pop3front.LoginRequest{Username: "u", Password: "p", Client: client7})
		wantCode(t, err, pop3front.CodeSysTemp)
		if got := s.recorded(); len(got) > 0 {
			t.Errorf("%s: recorded %q", g, got)
		}
	}
	s := startScript(t, &scriptServer{greeting: "* OK [CAPABILITY IMAP4rev1 ID] hi", replies: map[string]string{"ID": ""}})
	b := s.backend(t, func(c *Config) { c.DialTimeout = 300 * time.Millisecond })
	start := time.Now()
	_, err := b.Login(context.Background(), &pop3front.LoginRequest{Username: "u", Password: "p", Client: client7})
	wantCode(t, err, pop3front.CodeSysTemp)
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("took %v", d)
	}
}
