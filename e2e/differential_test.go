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
// The tricky corpus is included byte for byte (bare CR and bare LF, dots,
// NUL, 8-bit, long lines, no final CRLF, a 5 MB message). Known
// differences, excluded here:
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
	// Also against the corpus: what both sent is what the upstream serves,
	// and its octets (before stuffing, without the CRLF POP3 adds to a
	// message not ending in one) are the size LIST announced.
	for n, m := range msgs {
		got, want := gw.retr(n+1), testmail.POP3Octets(m.Served)
		if !bytes.Equal(got, want) {
			t.Errorf("RETR %d (%s) vs corpus: %s", n+1, m.Name, firstDiff(got, want))
		}
		var size int
		if _, err := fmt.Sscanf(gw.ok(fmt.Sprintf("LIST %d", n+1)), "+OK %d %d", new(int), &size); err != nil {
			t.Fatalf("LIST %d: %v", n+1, err)
		}
		if len(m.Served) != len(got) && !bytes.HasSuffix(m.Served, []byte("\r\n")) {
			got = got[:len(got)-2]
		}
		if len(got) != size {
			t.Errorf("RETR %d (%s): %d octets, LIST said %d", n+1, m.Name, len(got), size)
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
