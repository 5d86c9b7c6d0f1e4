package e2e

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/popbridge/popbridge/internal/dovecottest"
	"github.com/popbridge/popbridge/internal/testmail"
)

// TestDifferentialAgainstDovecotPOP3 serves one mailbox through the gateway
// and through Dovecot's own POP3 (same store, same UIDL format) and compares
// the raw wire bytes of STAT, LIST, UIDL (all and per message) and of the
// bodies of TOP n 0, TOP n 5 and RETR n (dot-stuffed, terminator included).
//
// Known differences, excluded here:
//   - NUL bytes: Dovecot's POP3 sends them as stored, its IMAP (and so the
//     gateway) as 0x80; Dovecot's side is mapped NUL -> 0x80 before comparing.
//   - The free text after +OK in the status lines of multi-line replies
//     (e.g. "+OK 304 octets") is not compared, only that both are +OK.
func TestDifferentialAgainstDovecotPOP3(t *testing.T) {
	t.Parallel()
	d := dovecottest.Start(t, dovecottest.User{Name: "u", Password: "pw"})
	msgs := append(testmail.Small(), testmail.Big())
	for _, m := range msgs {
		d.Deliver("u", "INBOX", m.Raw)
	}
	g := startGateway(t, d, defaultPolicy)

	ref := dialPOP3(t, d.POP3Addr())
	ref.login("u", "pw")
	gw := dialPOP3(t, g.addr)
	gw.login("u", "pw")

	same := func(what string, gotGW, gotRef []byte) {
		t.Helper()
		gotRef = bytes.ReplaceAll(gotRef, []byte{0}, []byte{0x80})
		if !bytes.Equal(gotGW, gotRef) {
			t.Errorf("%s: gateway differs from Dovecot's POP3: %s", what, firstDiff(gotGW, gotRef))
		}
	}
	single := func(cmd string) {
		t.Helper()
		same(cmd, []byte(gw.cmd(cmd)), []byte(ref.cmd(cmd)))
	}
	multi := func(cmd string) {
		t.Helper()
		sg, bg := gw.multi(cmd)
		sr, br := ref.multi(cmd)
		if sg[:3] != sr[:3] {
			t.Errorf("%s: gateway answered %q, Dovecot %q", cmd, sg, sr)
			return
		}
		same(cmd, bg, br)
	}

	single("STAT")
	multi("LIST")
	multi("UIDL")
	for n := 1; n <= len(msgs); n++ {
		single(fmt.Sprintf("LIST %d", n))
		single(fmt.Sprintf("UIDL %d", n))
		multi(fmt.Sprintf("TOP %d 0", n))
		multi(fmt.Sprintf("TOP %d 5", n))
		multi(fmt.Sprintf("RETR %d", n))
	}
	// Also against the corpus: what both sent is what the upstream serves.
	for n, m := range msgs {
		if got, want := gw.retr(n+1), testmail.POP3Octets(m.Served); !bytes.Equal(got, want) {
			t.Errorf("RETR %d (%s) vs corpus: %s", n+1, m.Name, firstDiff(got, want))
		}
	}
	for _, cmd := range []string{"LIST 99", "UIDL 99", "RETR 99", "TOP 99 0"} {
		sg, sr := gw.cmd(cmd), ref.cmd(cmd)
		if !strings.HasPrefix(sg, "-ERR") || !strings.HasPrefix(sr, "-ERR") {
			t.Errorf("%s: gateway %q, Dovecot %q, want -ERR from both", cmd, sg, sr)
		}
	}
	ref.close() // no QUIT: Dovecot changes nothing
	gw.quit()
}
