package e2e

import (
	"slices"
	"testing"

	"github.com/popbridge/popbridge/internal/dovecottest"
	"github.com/popbridge/popbridge/internal/testmail"
)

// TestRSETUndoesRetrievals checks over IMAP what RETR, RSET, QUIT leaves
// behind, on Dovecot's own POP3 and on the gateway (with and without
// hide_retrieved): RSET forgets the RETRs and DELEs before it, so the
// first session changes nothing and the second marks only the message
// retrieved after its RSET.
func TestRSETUndoesRetrievals(t *testing.T) {
	cases := []struct {
		name string
		pol  *policy // nil: Dovecot's own POP3
	}{
		{name: "dovecot-pop3"},
		{name: "gateway", pol: &defaultPolicy},
		{name: "gateway-hide_retrieved", pol: &policy{Delete: "flag", Seen: "quit", HideRetrieved: true}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			d := dovecottest.Start(t, dovecottest.User{Name: "u", Password: "pw"})
			for _, m := range testmail.Ordinary(3) {
				d.Deliver("u", "INBOX", m.Raw)
			}
			before := d.Snapshot(t, "u", "INBOX")
			uv := d.UIDValidity(t, "u", "INBOX")
			addr := d.POP3Addr()
			if tc.pol != nil {
				addr = startGateway(t, d, *tc.pol).addr
			}

			// USER, PASS, RETR 1, RSET, QUIT: nothing changes.
			p := dialPOP3(t, addr)
			p.login("u", "pw")
			p.retr(1)
			p.ok("RSET")
			p.quit()
			checkSnapshot(t, d, "u", "INBOX", before)

			// RETR 1, DELE 3, RSET, RETR 2, QUIT: only message 2 is marked.
			p = dialPOP3(t, addr)
			p.login("u", "pw")
			p.retr(1)
			p.ok("DELE 3")
			p.ok("RSET")
			p.retr(2)
			p.quit()
			want := slices.Clone(before)
			want[1] = withFlags(want[1], `\Seen`)
			if tc.pol != nil && tc.pol.HideRetrieved {
				want[1] = withFlags(want[1], "$POP3Retrieved")
			}
			checkSnapshot(t, d, "u", "INBOX", want)

			// What the next session lists: everything, except message 2
			// under hide_retrieved.
			wantUIDLs := []string{uidl(1, uv), uidl(2, uv), uidl(3, uv)}
			if tc.pol != nil && tc.pol.HideRetrieved {
				wantUIDLs = []string{uidl(1, uv), uidl(3, uv)}
			}
			if got := uidlSet(t, addr, "u", "pw"); !slices.Equal(got, wantUIDLs) {
				t.Errorf("next session's UIDLs: got %q, want %q", got, wantUIDLs)
			}
		})
	}
}
