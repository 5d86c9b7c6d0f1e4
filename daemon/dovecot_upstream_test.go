package daemon

import (
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/popbridge/popbridge/imapback"
	"github.com/popbridge/popbridge/internal/dovecottest"
	"github.com/popbridge/popbridge/internal/pop3test"
	"github.com/popbridge/popbridge/internal/testpki"
)

// The gateway against a real Dovecot (internal/dovecottest): client
// address forwarding with ID, master users, and upstream TLS (implicit
// and STARTTLS) with a CA from ca_file and server_name.

const dovecotMsg = "From: a@example.org\r\nTo: alice@example.org\r\nSubject: over TLS\r\n\r\nhello\r\n"

type tlsDovecot struct {
	*dovecottest.Dovecot
	imaps  string // implicit-TLS listener
	caFile string
}

// startTLSDovecot runs Dovecot with ssl = yes (a leaf for "pop3.test" from
// a CA made here), an imaps listener, login_trusted_networks =
// 127.0.0.0/8 (dovecottest's default) and a master user "admin" (RFC 4616
// authzid logins).
func startTLSDovecot(t *testing.T) *tlsDovecot {
	t.Helper()
	// Dovecot's unprivileged processes read the master-user file: a
	// directory they can traverse, not t.TempDir (0700).
	dir, err := os.MkdirTemp("", "pbtls")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	ca := testpki.New()
	cert, key := ca.WriteLeaf(t, dir, 2)
	caFile := filepath.Join(dir, "ca.pem")
	masters := filepath.Join(dir, "masters")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.Cert.Raw}), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(masters, []byte("admin:{PLAIN}admin-pw::::::\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	imaps := freePort(t)
	_, port, _ := net.SplitHostPort(imaps)
	d := dovecottest.StartWith(t, dovecottest.Options{ExtraConfig: fmt.Sprintf(`
ssl = yes
ssl_cert = <%s
ssl_key = <%s
passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%%u %s
  master = yes
  result_success = continue
}
service imap-login {
  inet_listener imaps {
    address = 127.0.0.1
    port = %s
  }
}
`, cert, key, masters, port)}, dovecottest.User{Name: "alice", Password: "alice-pw"})
	d.Deliver("alice", "INBOX", []byte(dovecotMsg))
	return &tlsDovecot{Dovecot: d, imaps: imaps, caFile: caFile}
}

// log returns Dovecot's log from offset on.
func (d *tlsDovecot) log(t *testing.T, from int) string {
	t.Helper()
	b, err := os.ReadFile(d.LogPath())
	if err != nil {
		t.Fatal(err)
	}
	return string(b[min(from, len(b)):])
}

func (d *tlsDovecot) logSize(t *testing.T) int { return len(d.log(t, 0)) }

// retrieve logs in with USER/PASS, checks the one message and quits.
func retrieve(t *testing.T, c *pop3test.Client, user, pass string) {
	t.Helper()
	c.Cmd("USER " + user)
	if r := c.Cmd("PASS " + pass); !strings.HasPrefix(r, "+OK") {
		t.Fatalf("PASS: %q, want prefix %q", r, "+OK")
	}
	if r := c.Cmd("RETR 1"); !strings.HasPrefix(r, "+OK") {
		t.Fatalf("RETR: %q, want prefix %q", r, "+OK")
	}
	if got := c.Multi(); got != dovecotMsg {
		t.Errorf("RETR got %q, want %q", got, dovecotMsg)
	}
	if r := c.Cmd("QUIT"); !strings.HasPrefix(r, "+OK") {
		t.Errorf("QUIT: %q, want prefix %q", r, "+OK")
	}
}

func TestDovecotUpstream(t *testing.T) {
	d := startTLSDovecot(t)

	// TLS, both modes, trusting the CA from ca_file and verifying the
	// name from server_name.
	for _, tc := range []struct{ security, addr string }{{"tls", d.imaps}, {"starttls", d.IMAPAddr()}} {
		t.Run(tc.security, func(t *testing.T) {
			gw, _ := testGateway(t, func(c *Config) {
				c.Upstream.Address, c.Upstream.Security = tc.addr, imapback.Security(tc.security)
				c.Upstream.CAFile, c.Upstream.ServerName = d.caFile, "pop3.test"
			})
			from := d.logSize(t)
			retrieve(t, dialPOP3(t, gw.POP3Addr()), "alice", "alice-pw")
			if !eventually(func() bool { return strings.Contains(d.log(t, from), "Login: user=<alice>") }) {
				t.Errorf("no login in Dovecot's log:\n%s", d.log(t, from))
			}
			if l := grepLines(d.log(t, from), "Login: user=<alice>"); !strings.Contains(l, "TLS") {
				t.Errorf("login not over TLS: %s, want it to contain %s", l, "TLS")
			}
		})
		t.Run(tc.security+"-wrong-name", func(t *testing.T) {
			gw, logs := testGateway(t, func(c *Config) {
				c.Upstream.Address, c.Upstream.Security = tc.addr, imapback.Security(tc.security)
				c.Upstream.CAFile, c.Upstream.ServerName = d.caFile, "imap.example.org"
			})
			from := d.logSize(t)
			c := dialPOP3(t, gw.POP3Addr())
			c.Cmd("USER alice")
			if r := c.Cmd("PASS alice-pw"); !strings.HasPrefix(r, "-ERR [SYS/TEMP]") {
				t.Errorf("PASS: %q, want prefix %q", r, "-ERR [SYS/TEMP]")
			}
			// Dovecot saw the handshake fail and no authentication.
			if !eventually(func() bool { return strings.Contains(d.log(t, from), "no auth attempts") }) {
				t.Errorf("Dovecot's log:\n%s", d.log(t, from))
			}
			if l := d.log(t, from); strings.Contains(l, "Login:") || strings.Contains(l, "auth failed") || strings.Contains(l, "user=<alice>") {
				t.Errorf("credentials reached Dovecot:\n%s", l)
			}
			if !strings.Contains(logs.String(), "imap.example.org") {
				t.Errorf("gateway log lacks the cause:\n%s", logs)
			}
		})
	}

	// ID: a client relayed by a trusted proxy (PROXY protocol) reaches
	// Dovecot as itself; with forwarding off Dovecot sees the gateway.
	for _, tc := range []struct {
		fwd            bool
		security, addr string
	}{{true, "tls", d.imaps}, {true, "starttls", d.IMAPAddr()}, {false, "tls", d.imaps}} {
		fwd := tc.fwd
		t.Run(fmt.Sprintf("id-forward-%v-%s", fwd, tc.security), func(t *testing.T) {
			gw, _ := testGateway(t, func(c *Config) {
				c.Upstream.Address, c.Upstream.Security = tc.addr, imapback.Security(tc.security)
				c.Upstream.CAFile, c.Upstream.ServerName = d.caFile, "pop3.test"
				c.Upstream.ForwardClientAddress = fwd
				c.POP3.ProxyProtocol, c.POP3.ProxyTrusted = true, []string{"127.0.0.0/8"}
				c.POP3.AllowPlaintext = "always"
			})
			from := d.logSize(t)
			retrieve(t, dialProxied(t, gw.POP3Addr(), proxyHeader(t, 1, "192.0.2.7:50312")), "alice", "alice-pw")
			var line string
			eventually(func() bool {
				line = grepLines(d.log(t, from), "Login: user=<alice>")
				return line != ""
			})
			want := []string{"rip=127.0.0.1,"}
			if fwd {
				// The PROXY header's destination is the address the
				// client connected to (proxyHeader: 10.0.0.11:110).
				want = []string{"rip=192.0.2.7,", "lip=10.0.0.11,"}
			}
			for _, w := range want {
				if !strings.Contains(line, w) {
					t.Errorf("Dovecot's login line %q lacks %q", line, w)
				}
			}
		})
	}

	// Master user: SASL PLAIN with authzid alice, authcid admin opens
	// alice's mailbox, only when allow_master_user is set.
	for _, allow := range []bool{true, false} {
		t.Run(fmt.Sprintf("master-%v", allow), func(t *testing.T) {
			gw, _ := testGateway(t, func(c *Config) {
				c.Upstream.Address, c.Upstream.Security = d.IMAPAddr(), "starttls"
				c.Upstream.CAFile, c.Upstream.ServerName = d.caFile, "pop3.test"
				c.POP3.AllowMasterUser = allow
			})
			from := d.logSize(t)
			c := dialPOP3(t, gw.POP3Addr())
			r := c.Cmd("AUTH PLAIN " + b64("alice\x00admin\x00admin-pw"))
			if !allow {
				if !strings.HasPrefix(r, "-ERR [AUTH]") {
					t.Errorf("AUTH: %q, want prefix %q", r, "-ERR [AUTH]")
				}
				return
			}
			if !strings.HasPrefix(r, "+OK") {
				t.Fatalf("AUTH: %q, want prefix %q", r, "+OK")
			}
			if r := c.Cmd("STAT"); !strings.HasPrefix(r, "+OK 1 ") {
				t.Errorf("STAT %q: not alice's mailbox, want prefix %q", r, "+OK 1 ")
			}
			c.Cmd("QUIT")
			if !eventually(func() bool { return strings.Contains(d.log(t, from), "Login: user=<alice>, method=PLAIN") }) {
				t.Errorf("Dovecot's log:\n%s", d.log(t, from))
			}
		})
	}
}
