package e2e

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/emersion/go-imap/v2"

	"github.com/popbridge/popbridge/internal/dovecottest"
)

// states indexes an oracle snapshot by UID.
func states(s []dovecottest.MsgState) map[uint32]dovecottest.MsgState {
	m := make(map[uint32]dovecottest.MsgState, len(s))
	for _, st := range s {
		m[st.UID] = st
	}
	return m
}

// withFlags returns st with flags added (kept sorted and unique).
func withFlags(st dovecottest.MsgState, flags ...string) dovecottest.MsgState {
	out := slices.Clone(st.Flags)
	for _, f := range flags {
		if !slices.Contains(out, f) {
			out = append(out, f)
		}
	}
	slices.Sort(out)
	st.Flags = out
	return st
}

// checkSnapshot compares a mailbox's state with what is expected, message
// by message.
func checkSnapshot(t *testing.T, d *dovecottest.Dovecot, user, mailbox string, want []dovecottest.MsgState) {
	t.Helper()
	got := d.Snapshot(t, user, mailbox)
	if fmt.Sprint(got) == fmt.Sprint(want) {
		return
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s/%s differs from the expected state:\n", user, mailbox)
	for _, g := range got {
		fmt.Fprintf(&b, "   got  %v\n", g)
	}
	for _, w := range want {
		fmt.Fprintf(&b, "   want %v\n", w)
	}
	t.Error(b.String())
}

// imapSetFlags adds flags to messages by UID, as another device would.
func imapSetFlags(t *testing.T, d *dovecottest.Dovecot, user string, flags []imap.Flag, uids ...uint32) {
	t.Helper()
	c := d.Login(t, user)
	defer c.Close()
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatalf("SELECT: %v", err)
	}
	var set imap.UIDSet
	for _, u := range uids {
		set.AddNum(imap.UID(u))
	}
	if err := c.Store(set, &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: flags}, nil).Close(); err != nil {
		t.Fatalf("UID STORE: %v", err)
	}
	if err := c.Logout().Wait(); err != nil {
		t.Fatalf("LOGOUT: %v", err)
	}
}

// uidlSet returns the UIDL strings a fresh POP3 session lists.
func uidlSet(t *testing.T, addr, user, pass string) []string {
	t.Helper()
	p := dialPOP3(t, addr)
	p.login(user, pass)
	_, raw := p.multi("UIDL")
	p.quit()
	var out []string
	for _, line := range strings.Split(strings.TrimSuffix(string(raw), ".\r\n"), "\r\n") {
		if _, uidl, ok := strings.Cut(line, " "); ok {
			out = append(out, uidl)
		}
	}
	return out
}

// uidl is the gateway's (and Dovecot's) UIDL of a message.
func uidl(uid, uidvalidity uint32) string { return fmt.Sprintf("%08x%08x", uid, uidvalidity) }
