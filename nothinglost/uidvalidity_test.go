package nothinglost

import (
	"strings"
	"testing"

	"github.com/popbridge/popbridge/imapback"
	"github.com/popbridge/popbridge/internal/gwtest"
	"github.com/popbridge/popbridge/internal/oracle"
	"github.com/popbridge/popbridge/internal/testmail"
)

// TestDUIDValidityChange: the gateway's mailbox is deleted and recreated
// (new UIDVALIDITY) and refilled between login and QUIT. The UIDs the
// session mapped at login now name other messages: QUIT answers
// -ERR [SYS/TEMP] and nothing is applied. The next session lists the new
// messages under new UIDLs.
func TestDUIDValidityChange(t *testing.T) {
	heavy(t)
	msgs := testmail.Ordinary(4)
	e := startD(t, imapback.Policy{Delete: imapback.DeleteExpunge, Seen: imapback.SeenQuit}, nil,
		func(o *gwtest.Options) { o.Mailbox = "POP" })
	for _, m := range msgs[:3] {
		e.d.Deliver(dUser, "POP", m.Raw)
	}
	uv := e.d.UIDValidity(t, dUser, "POP")
	p := e.login()
	old, err := p.UIDL()
	must(t, err)
	if _, err := p.Retr(1); err != nil {
		t.Fatal(err)
	}
	for _, c := range []string{"DELE 1", "DELE 2", "DELE 3"} {
		if _, err := p.OK(c); err != nil {
			t.Fatal(err)
		}
	}

	e.d.Doveadm("mailbox", "delete", "-u", dUser, "POP")
	e.d.Doveadm("mailbox", "create", "-u", dUser, "POP")
	for _, m := range append([]testmail.Message{msgs[3]}, msgs[:3]...) {
		e.d.Deliver(dUser, "POP", m.Raw)
	}
	if nuv := e.d.UIDValidity(t, dUser, "POP"); nuv == uv {
		t.Fatalf("UIDVALIDITY unchanged (%d)", uv)
	}
	before := e.d.Snapshot(t, dUser, "POP")
	if l, _ := p.Quit(); !strings.HasPrefix(l, "-ERR [SYS/TEMP]") {
		t.Fatalf("QUIT: %q, want prefix %q", l, "-ERR [SYS/TEMP]")
	}
	checkOracle(t, oracle.CheckUnchanged(before, e.d.Snapshot(t, dUser, "POP")))

	p = e.login()
	now, err := p.UIDL()
	must(t, err)
	if len(now) != 4 {
		t.Fatalf("next session lists %d messages, want %d", len(now), 4)
	}
	for _, u := range now {
		for _, o := range old {
			if u == o {
				t.Fatalf("UIDL %s survived the UIDVALIDITY change", u)
			}
		}
	}
}
