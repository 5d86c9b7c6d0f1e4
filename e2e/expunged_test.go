package e2e

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/emersion/go-imap/v2"

	"github.com/popbridge/popbridge/internal/dovecottest"
	"github.com/popbridge/popbridge/internal/testmail"
)

// TestExpungedMidSession: an IMAP client expunges message 2 while a POP3
// session is open. The session keeps its numbering, RETR 2 answers
// "-ERR Message 2 expunged.", the other messages are still served
// byte-exact, DELE 2 is accepted as a no-op, and QUIT changes only the
// DELE'd message 3.
func TestExpungedMidSession(t *testing.T) {
	t.Parallel()
	d := dovecottest.Start(t, dovecottest.User{Name: "u", Password: "pw"})
	msgs := append(testmail.Ordinary(2), testmail.Tricky()[:3]...)
	for _, m := range msgs {
		d.Deliver("u", "INBOX", m.Raw)
	}
	before := d.Snapshot(t, "u", "INBOX")
	g := startGateway(t, d, policy{Delete: "flag", Seen: "never"})

	p := dialPOP3(t, g.addr)
	p.login("u", "pw")
	stat := p.ok("STAT")

	// Another device: SELECT, UID STORE 2 +FLAGS (\Deleted), UID EXPUNGE 2.
	c := d.Login(t, "u")
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	var two imap.UIDSet
	two.AddNum(2)
	if err := c.Store(two, &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true,
		Flags: []imap.Flag{imap.FlagDeleted}}, nil).Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.UIDExpunge(two).Close(); err != nil {
		t.Fatal(err)
	}
	c.Close()

	if s := p.ok("STAT"); s != stat {
		t.Errorf("STAT changed mid-session: %q, then %q", stat, s)
	}
	if s := p.cmd("RETR 2"); !strings.HasPrefix(s, "-ERR Message 2 expunged.") {
		t.Errorf("RETR 2 = %q, want -ERR Message 2 expunged.", s)
	}
	if s := p.cmd("TOP 2 0"); !strings.HasPrefix(s, "-ERR Message 2 expunged.") {
		t.Errorf("TOP 2 0 = %q, want -ERR Message 2 expunged.", s)
	}
	for n := 3; n <= len(msgs); n++ {
		want := testmail.POP3Octets(msgs[n-1].Served)
		if got := p.retr(n); !bytes.Equal(got, want) {
			t.Errorf("RETR %d (%s): %s", n, msgs[n-1].Name, firstDiff(got, want))
		}
	}
	p.ok("DELE 2")
	p.ok("DELE 3")
	p.quit()

	var want []dovecottest.MsgState
	for _, st := range before {
		switch st.UID {
		case 2:
			continue // expunged by the other device
		case 3:
			st = withFlags(st, `\Deleted`)
		}
		want = append(want, st)
	}
	checkSnapshot(t, d, "u", "INBOX", want)
	if t.Failed() {
		t.Log(fmt.Sprint("before: ", before))
	}
}
