package daemon

import (
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/popbridge/popbridge/imapback"
	"github.com/popbridge/popbridge/internal/dovecottest"
	"github.com/popbridge/popbridge/internal/testmail"
)

// TestModifiersAndOverridesOnDovecot: username modifiers, a per-user
// override and hide_retrieved through the whole gateway against the real
// Dovecot. Dovecot's own log shows the upstream login is the plain user.
func TestModifiersAndOverridesOnDovecot(t *testing.T) {
	d := dovecottest.Start(t, dovecottest.User{Name: "alice", Password: "pw"}, dovecottest.User{Name: "scanner", Password: "pw"})
	for _, m := range testmail.Ordinary(4) {
		d.Deliver("alice", "INBOX", m.Raw)
		d.Deliver("scanner", "INBOX", m.Raw)
	}
	gw, _, logs := startGatewayOn(t, d.IMAPAddr(), func(c *Config) {
		c.POP3.UserModifiers = []UserModifier{"keep", "recent"}
		c.POP3.RecentMaxMessages = 1
		c.Policy.HideRetrieved = true
		c.Policy.UIDL = "content"
		o := OverrideConfig{Match: "scan*", UserPolicy: c.Policy.UserPolicy}
		o.Delete = imapback.DeleteKeep
		c.Policy.Override = []OverrideConfig{o}
	})
	deleted := func(user string) int {
		n := 0
		for _, s := range d.Snapshot(t, user, "INBOX") {
			if slices.Contains(s.Flags, `\Deleted`) {
				n++
			}
		}
		return n
	}

	// keep:alice: DELE changes nothing; RETR 1 is marked retrieved.
	c := dialPOP3(t, gw.POP3Addr())
	c.Cmd("USER keep:alice")
	if r := c.Cmd("PASS pw"); !strings.HasPrefix(r, "+OK") {
		t.Fatal(r)
	}
	if r := c.Cmd("RETR 1"); !strings.HasPrefix(r, "+OK") {
		t.Fatal(r)
	}
	c.Multi()
	c.Cmd("DELE 2")
	if r := c.Cmd("QUIT"); !strings.HasPrefix(r, "+OK") {
		t.Fatal(r)
	}
	if n := deleted("alice"); n != 0 {
		t.Errorf("keep:alice: %d deleted, want %d", n, 0)
	}
	// alice: message 1 is no longer listed; DELE flags.
	if st := session(t, gw, "alice", "1"); !strings.HasPrefix(st, "+OK 3 ") {
		t.Errorf("alice after keep:alice RETR 1: STAT %q, want 3", st)
	}
	if n := deleted("alice"); n != 1 {
		t.Errorf("alice: %d deleted, want 1", n)
	}
	// recent:alice: the newest message, retrieved or not.
	if st := session(t, gw, "recent:alice"); !strings.HasPrefix(st, "+OK 1 ") {
		t.Errorf("recent:alice: STAT %q, want 1", st)
	}
	// scanner: override keep.
	session(t, gw, "scanner", "1", "2")
	if n := deleted("scanner"); n != 0 {
		t.Errorf("scanner (override keep): %d deleted, want %d", n, 0)
	}

	waitLog(t, logs, "modifiers=recent")
	log, err := os.ReadFile(d.LogPath())
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(log), "keep:") || strings.Contains(string(log), "recent:") {
		t.Errorf("a modifier reached Dovecot:\n%s", log)
	}
	if !strings.Contains(string(log), "user=<alice>") {
		t.Errorf("Dovecot never saw alice log in:\n%s", log)
	}
	for _, want := range []string{"uidl_scheme=content delete_policy=keep view=hide_retrieved", "modifiers=keep", "user=scanner"} {
		waitLog(t, logs, want)
	}
}
