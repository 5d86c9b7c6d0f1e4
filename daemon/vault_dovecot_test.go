package daemon

import (
	"slices"
	"strings"
	"testing"

	"github.com/emersion/go-imap/v2"

	"github.com/popbridge/popbridge/internal/dovecottest"
	"github.com/popbridge/popbridge/internal/oidctest"
)

// TestVaultDovecotMaster: upstream_auth = "master" against a real
// Dovecot's master users: the device password opens the user's mailbox
// through AUTHENTICATE PLAIN with authzid = user and the master user's
// credentials; DELE shows upstream; a wrong device password never
// reaches Dovecot.
func TestVaultDovecotMaster(t *testing.T) {
	d := startTLSDovecot(t)
	e := startVaultGateway(t, nil, d.IMAPAddr(), func(c *Config) {
		c.Upstream.Security, c.Upstream.CAFile, c.Upstream.ServerName = "starttls", d.caFile, "pop3.test"
		c.Auth.UpstreamAuth = UpstreamMaster
		c.Auth.KeyFile = "" // no tokens to seal
		c.Auth.MasterUser = "admin"
		c.Auth.MasterPasswordFile = filepathIn(t, c.Auth.OAuth2.ClientSecretFile, "master.secret", "admin-pw")
		c.Auth.OAuth2 = OAuth2Config{Grant: GrantDelegated}
	})
	if code, _, errOut := e.admin(t, "enroll", "alice"); code != 1 || !strings.Contains(errOut, "no enrolment") {
		t.Errorf("enroll with master-user access: exit %d, %q; want 1 and no enrolment", code, errOut)
	}
	code, out, errOut := e.admin(t, "device", "add", "alice", "phone")
	m := devicePwRE.FindStringSubmatch(out)
	if code != 0 || m == nil {
		t.Fatalf("device add: exit %d, %q %q", code, out, errOut)
	}
	pw := m[1]

	from := d.logSize(t)
	c := dialPOP3(t, e.gw.POP3Addr())
	c.Cmd("USER alice")
	if r := c.Cmd("PASS " + pw); !strings.HasPrefix(r, "+OK") {
		t.Fatalf("device password over a master user: %q", r)
	}
	if r := c.Cmd("DELE 1"); !strings.HasPrefix(r, "+OK") {
		t.Fatalf("DELE 1: %q", r)
	}
	if r := c.Cmd("QUIT"); !strings.HasPrefix(r, "+OK") {
		t.Fatalf("QUIT: %q", r)
	}
	if f := imapFlags(t, d.IMAPAddr(), "alice", "alice-pw"); len(f) != 1 || !slices.Contains(f[0], imap.FlagDeleted) {
		t.Errorf("Dovecot flags after DELE 1 = %v, want deleted", f)
	}
	if !eventually(func() bool { return strings.Contains(d.log(t, from), "Login: user=<alice>, method=PLAIN") }) {
		t.Errorf("no master-user login for alice in Dovecot's log:\n%s", d.log(t, from))
	}

	from = d.logSize(t)
	c = dialPOP3(t, e.gw.POP3Addr())
	c.Cmd("USER alice")
	if r := c.Cmd("PASS alice-pw"); r != "-ERR [AUTH] Authentication failed.\r\n" {
		t.Errorf("the IMAP password instead of a device password: %q, want -ERR [AUTH]", r)
	}
	c.Cmd("QUIT")
	if strings.Contains(d.log(t, from), "user=<alice>") {
		t.Errorf("a wrong device password reached Dovecot:\n%s", d.log(t, from))
	}
	if strings.Contains(e.logs.String(), "admin-pw") {
		t.Error("the master password appears in the gateway's log")
	}
}

// TestVaultDovecotOAuth2: a real Dovecot whose oauth2 passdb introspects
// tokens at the test provider: enrol, download and delete with the device
// password, an early-expired token replaced by the next session, a
// revoked grant answered [SYS/PERM] with nothing changed upstream.
func TestVaultDovecotOAuth2(t *testing.T) {
	op := startProvider(t)
	d := dovecottest.StartWith(t, dovecottest.Options{OAuth2: &dovecottest.OAuth2{
		IntrospectionURL: op.IntrospectionURL(),
		ClientID:         oidctest.ResourceID,
		ClientSecret:     oidctest.ResourceSecret,
	}, ExtraConfig: "auth_failure_delay = 0"}, dovecottest.User{Name: vaultUser, Password: upstreamPW})
	for i := range 2 {
		d.Deliver(vaultUser, "INBOX", []byte("From: b@example.org\r\nSubject: dovecot "+strings.Repeat("x", i)+"\r\n\r\nbody\r\n"))
	}
	e := startVaultGateway(t, op, d.IMAPAddr(), func(c *Config) { c.Upstream.Security = "none" })
	e.flags = func(t *testing.T) [][]imap.Flag { return imapFlags(t, d.IMAPAddr(), vaultUser, upstreamPW) }
	e.enroll(t)
	pw := e.addDevice(t, "phone")

	c, r := e.login(t, pw)
	if !strings.HasPrefix(r, "+OK") {
		t.Fatalf("login through Dovecot's oauth2 passdb: %q", r)
	}
	if r := c.Cmd("RETR 1"); !strings.HasPrefix(r, "+OK") {
		t.Fatalf("RETR 1: %q", r)
	}
	c.Multi()
	if r := c.Cmd("DELE 2"); !strings.HasPrefix(r, "+OK") {
		t.Fatalf("DELE 2: %q", r)
	}
	c.Cmd("QUIT")
	if f := e.flags(t); len(f) != 2 || !slices.Contains(f[0], imap.FlagSeen) || !slices.Contains(f[1], imap.FlagDeleted) {
		t.Fatalf("Dovecot flags = %v, want 1 seen, 2 deleted", f)
	}

	e.op.ExpireAccessTokens()
	c, r = e.login(t, pw)
	if !strings.HasPrefix(r, "+OK") {
		t.Fatalf("login after the token expired at the provider: %q", r)
	}
	c.Cmd("QUIT")
	if got := e.op.TokenCalls(oidctest.GrantRefresh); got != 1 {
		t.Errorf("refreshes = %d, want 1", got)
	}

	before := e.flags(t)
	e.op.RevokeUser(vaultUser)
	c, r = e.login(t, pw)
	if r != "-ERR [SYS/PERM] "+textReenroll+"\r\n" {
		t.Errorf("revoked grant: %q, want -ERR [SYS/PERM] %s", r, textReenroll)
	}
	c.Cmd("QUIT")
	if after := e.flags(t); !slices.EqualFunc(before, after, slices.Equal) {
		t.Errorf("flags changed by a refused login: %v -> %v", before, after)
	}
}
