package e2e

import (
	"slices"
	"testing"

	"github.com/emersion/go-imap/v2"

	"github.com/popbridge/popbridge/internal/dovecottest"
	"github.com/popbridge/popbridge/internal/testmail"
)

// TestDeletePolicies runs one POP3 session per policy (RETR 1, RETR 2,
// RETR 5, TOP 3 0, DELE 2, DELE 4, QUIT) against five messages, then checks
// the whole upstream over IMAP: \Seen exactly on the retrieved messages
// (seen=quit) or nowhere (seen=never), the policy's effect exactly on the
// deleted ones, flags only ever added, nothing else changed, and what the
// next POP3 session shows.
// deleteCase is one TestDeletePolicies case.
type deleteCase struct {
	pol policy
	// deletedFlag is the flag a marking policy adds; moveTo the mailbox a
	// moving policy moves to; gone says the deleted messages leave INBOX.
	deletedFlag string
	moveTo      string
	gone        bool
	// hidden says the next POP3 session no longer lists them.
	hidden bool
}

// afterQuit is what the session of TestDeletePolicies (RETR 1, 2 and 5,
// DELE 2 and 4) should leave of the INBOX before it: the messages left in
// INBOX and those moved, in UID order.
func (c deleteCase) afterQuit(before []dovecottest.MsgState) (inbox, moved []dovecottest.MsgState) {
	old := states(before)
	for _, uid := range []uint32{1, 2, 3, 4, 5} {
		st := old[uid]
		retrieved := uid == 1 || uid == 2 || uid == 5
		if retrieved && c.pol.Seen == "quit" {
			st = withFlags(st, `\Seen`)
		}
		if uid == 3 && c.pol.Delete == "expunge" {
			st = withFlags(st, `\Deleted`)
		}
		deleted := uid == 2 || uid == 4
		switch {
		case deleted && c.deletedFlag != "":
			inbox = append(inbox, withFlags(st, c.deletedFlag))
		case deleted && c.moveTo != "":
			moved = append(moved, st)
		case deleted && c.gone:
		default:
			inbox = append(inbox, st)
		}
	}
	return inbox, moved
}

func TestDeletePolicies(t *testing.T) {
	cases := []deleteCase{
		{pol: policy{Delete: "flag", Seen: "quit"}, deletedFlag: `\Deleted`, hidden: true},
		{pol: policy{Delete: "keyword", Seen: "quit"}, deletedFlag: "$POP3Deleted", hidden: true},
		{pol: policy{Delete: "trash", Seen: "quit"}, moveTo: "Trash", gone: true, hidden: true},
		{pol: policy{Delete: "archive", Seen: "quit"}, moveTo: "Archive", gone: true, hidden: true},
		{pol: policy{Delete: "expunge", Seen: "quit"}, gone: true, hidden: true},
		{pol: policy{Delete: "keep", Seen: "quit"}},
		{pol: policy{Delete: "flag", Seen: "never"}, deletedFlag: `\Deleted`, hidden: true},
	}
	for _, tc := range cases {
		t.Run(tc.pol.Delete+"/seen="+tc.pol.Seen, func(t *testing.T) {
			t.Parallel()
			d := dovecottest.Start(t, dovecottest.User{Name: "u", Password: "p w"})
			for _, m := range testmail.Ordinary(5) {
				d.Deliver("u", "INBOX", m.Raw)
			}
			d.CreateMailbox("u", "Trash")
			d.CreateMailbox("u", "Archive")
			// Another device answered and flagged message 5 earlier.
			imapSetFlags(t, d, "u", []imap.Flag{imap.FlagAnswered, imap.FlagFlagged}, 5)
			before := d.Snapshot(t, "u", "INBOX")
			uv := d.UIDValidity(t, "u", "INBOX")
			g := startGateway(t, d, tc.pol)

			p := dialPOP3(t, g.addr)
			p.login("u", "p w")
			for _, n := range []int{1, 2, 5} {
				p.retr(n)
			}
			p.multi("TOP 3 0")
			p.ok("DELE 2")
			p.ok("DELE 4")
			if tc.pol.Delete == "expunge" {
				// Another device marks message 3 \Deleted mid-session without
				// expunging it: our UID EXPUNGE must leave it alone.
				imapSetFlags(t, d, "u", []imap.Flag{imap.FlagDeleted}, 3)
			}
			p.quit()

			// +OK to QUIT means done: the state is checked right away.
			inbox, moved := tc.afterQuit(before)
			checkSnapshot(t, d, "u", "INBOX", inbox)
			for _, box := range []string{"Trash", "Archive"} {
				var want []dovecottest.MsgState
				if box == tc.moveTo {
					// Moved copies get new UIDs in the target mailbox.
					for i, st := range moved {
						st.UID = uint32(i + 1)
						want = append(want, st)
					}
				}
				checkSnapshot(t, d, "u", box, want)
			}

			// The next session.
			var wantUIDLs []string
			for _, st := range inbox {
				deleted := st.UID == 2 || st.UID == 4
				if deleted && tc.hidden {
					continue
				}
				if st.UID == 3 && tc.pol.Delete == "expunge" {
					continue // \Deleted by another device: whether POP3 shows it is not this test's concern
				}
				wantUIDLs = append(wantUIDLs, uidl(st.UID, uv))
			}
			got := uidlSet(t, g.addr, "u", "p w")
			if tc.pol.Delete == "expunge" {
				got = slices.DeleteFunc(got, func(s string) bool { return s == uidl(3, uv) })
			}
			if !slices.Equal(got, wantUIDLs) {
				t.Errorf("next session's UIDL = %v, want %v", got, wantUIDLs)
			}
		})
	}
}
