package nothinglost

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/popbridge/popbridge/imapback"
	"github.com/popbridge/popbridge/internal/fakeimap"
)

// Scripted QUIT-update steps for DELE 2 (UID 5) of fakeMsgs.
var (
	storeDeleted = fakeimap.Expect(`UID STORE 5 \+FLAGS\.SILENT \(\\Deleted\)`)
	storeKeyword = fakeimap.Expect(`UID STORE 5 \+FLAGS\.SILENT \(\$POP3Deleted\)`)
	storeSeen    = fakeimap.Expect(`UID STORE 3 \+FLAGS\.SILENT \(\\Seen\)`)
	uidExpunge   = fakeimap.Expect(`UID EXPUNGE 5`)
	uidMove      = fakeimap.Expect(`UID MOVE 5 "?Trash"?`)
	uidCopy      = fakeimap.Expect(`UID COPY 5 "?Trash"?`)
	create       = fakeimap.Expect(`CREATE "?Trash"?`)
	ok           = fakeimap.SendTagged("OK done")
	no           = fakeimap.SendTagged("NO [SERVERBUG] refused")
	bye          = fakeimap.S(fakeimap.Send("* BYE shutting down"), fakeimap.Close())
	end          = fakeimap.ExpectLogoutOrEOF()
)

// TestFCommitFaults: a fault at every step of the QUIT update, for every
// policy. The client gets -ERR [SYS/TEMP]; the script admits only the
// commands that touch the DELE set (UID 5) and the retrieved set (UID 3,
// \Seen), in the safe order, and nothing after the fault but LOGOUT: in
// particular no STORE or EXPUNGE after a failed COPY, no retry on another
// connection (a second connection fails the test), and never a plain
// EXPUNGE.
func TestFCommitFaults(t *testing.T) {
	const moveCaps = "IMAP4rev1 UIDPLUS MOVE"
	const copyCaps = "IMAP4rev1 UIDPLUS"
	sel := fakeimap.Select(3, 7)
	cases := []struct {
		name   string
		policy imapback.DeletePolicy
		caps   string
		retr   bool // RETR 1 first, with seen=quit
		update fakeimap.Script
		ok     bool // the update succeeds: +OK
	}{
		// The happy paths, so the scripts are known to be the real order.
		{"flag ok", imapback.DeleteFlag, moveCaps, true, fakeimap.S(sel, storeSeen, ok, storeDeleted, ok, fakeimap.Logout()), true},
		{"keyword ok", imapback.DeleteKeyword, moveCaps, false, fakeimap.S(sel, storeKeyword, ok, fakeimap.Logout()), true},
		{"expunge ok", imapback.DeleteExpunge, moveCaps, false, fakeimap.S(sel, storeDeleted, ok, uidExpunge, fakeimap.Send("* 2 EXPUNGE"), ok, fakeimap.Logout()), true},
		{"trash move ok", imapback.DeleteTrash, moveCaps, false, fakeimap.S(sel, uidMove, fakeimap.Send("* OK [COPYUID 1 5 1] moved"), fakeimap.Send("* 2 EXPUNGE"), ok, fakeimap.Logout()), true},
		{"trash copy ok", imapback.DeleteTrash, copyCaps, false, fakeimap.S(sel, uidCopy, ok, storeDeleted, ok, uidExpunge, ok, fakeimap.Logout()), true},

		// SELECT at QUIT.
		{"select NO", imapback.DeleteExpunge, moveCaps, false, fakeimap.S(fakeimap.Expect(`SELECT .*`), no, end), false},
		{"select BAD", imapback.DeleteFlag, moveCaps, false, fakeimap.S(fakeimap.Expect(`SELECT .*`), fakeimap.SendTagged("BAD nope"), end), false},
		{"select BYE", imapback.DeleteTrash, moveCaps, false, fakeimap.S(fakeimap.Expect(`SELECT .*`), bye), false},
		{"select hang", imapback.DeleteExpunge, moveCaps, false, fakeimap.S(fakeimap.Expect(`SELECT .*`), fakeimap.Hang()), false},
		{"uidvalidity changed", imapback.DeleteExpunge, moveCaps, true, fakeimap.S(fakeimap.Select(3, 8), end), false},

		// \Seen for the retrieved message.
		{"store seen NO", imapback.DeleteExpunge, moveCaps, true, fakeimap.S(sel, storeSeen, no, end), false},

		// flag and keyword.
		{"flag store NO", imapback.DeleteFlag, moveCaps, false, fakeimap.S(sel, storeDeleted, no, end), false},
		{"flag store drop", imapback.DeleteFlag, moveCaps, false, fakeimap.S(sel, storeDeleted, fakeimap.Close()), false},
		{"keyword store NO", imapback.DeleteKeyword, moveCaps, false, fakeimap.S(sel, storeKeyword, no, end), false},

		// expunge: STORE then UID EXPUNGE.
		{"expunge store NO", imapback.DeleteExpunge, moveCaps, false, fakeimap.S(sel, storeDeleted, no, end), false},
		{"expunge store hang", imapback.DeleteExpunge, moveCaps, false, fakeimap.S(sel, storeDeleted, fakeimap.Hang()), false},
		{"expunge drop after store", imapback.DeleteExpunge, moveCaps, false, fakeimap.S(sel, storeDeleted, ok, uidExpunge, fakeimap.Close()), false},
		{"expunge NO", imapback.DeleteExpunge, moveCaps, false, fakeimap.S(sel, storeDeleted, ok, uidExpunge, no, end), false},
		{"expunge untagged then drop", imapback.DeleteExpunge, moveCaps, false, fakeimap.S(sel, storeDeleted, ok, uidExpunge, fakeimap.Send("* 2 EXPUNGE"), fakeimap.Reset()), false},

		// trash with MOVE.
		{"move NO", imapback.DeleteTrash, moveCaps, false, fakeimap.S(sel, uidMove, no, end), false},
		{"move without tagged OK", imapback.DeleteTrash, moveCaps, false, fakeimap.S(sel, uidMove, fakeimap.Send("* OK [COPYUID 1 5 1] moved"), fakeimap.Send("* 2 EXPUNGE"), fakeimap.Close()), false},
		{"move hang", imapback.DeleteTrash, moveCaps, false, fakeimap.S(sel, uidMove, fakeimap.Hang()), false},
		{"move TRYCREATE, create NO", imapback.DeleteTrash, moveCaps, false, fakeimap.S(sel, uidMove, fakeimap.SendTagged("NO [TRYCREATE] no Trash"), create, no, end), false},

		// trash without MOVE: COPY, then STORE and UID EXPUNGE.
		{"copy NO", imapback.DeleteTrash, copyCaps, false, fakeimap.S(sel, uidCopy, no, end), false},
		{"copy drop", imapback.DeleteTrash, copyCaps, false, fakeimap.S(sel, uidCopy, fakeimap.Close()), false},
		{"copy hang", imapback.DeleteTrash, copyCaps, false, fakeimap.S(sel, uidCopy, fakeimap.Hang()), false},
		{"copy TRYCREATE, create NO", imapback.DeleteTrash, copyCaps, false, fakeimap.S(sel, uidCopy, fakeimap.SendTagged("NO [TRYCREATE] no Trash"), create, no, end), false},
		{"copy TRYCREATE, create ok, copy NO", imapback.DeleteTrash, copyCaps, false, fakeimap.S(sel, uidCopy, fakeimap.SendTagged("NO [TRYCREATE] no Trash"), create, ok, uidCopy, no, end), false},
		{"copy ok, store NO", imapback.DeleteTrash, copyCaps, false, fakeimap.S(sel, uidCopy, ok, storeDeleted, no, end), false},
		{"copy ok, store ok, expunge drop", imapback.DeleteTrash, copyCaps, false, fakeimap.S(sel, uidCopy, ok, storeDeleted, ok, uidExpunge, fakeimap.Close()), false},
		{"copy ok, store ok, expunge BYE", imapback.DeleteTrash, copyCaps, false, fakeimap.S(sel, uidCopy, ok, storeDeleted, ok, uidExpunge, bye), false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			msgs := fakeMsgs()
			seen := imapback.SeenNever
			script := fakeimap.S(fakeimap.Prelude(c.caps, 7, msgs...))
			if c.retr {
				seen = imapback.SeenQuit
				script = fakeimap.S(script, fakeimap.FetchBody(1, msgs[0]))
			}
			script = fakeimap.S(script, c.update)
			srv := fakeimap.Start(t, script)
			g := startGateway(t, srv.Addr(), imapback.Policy{Delete: c.policy, Seen: seen})
			p := dial(t, g.Addr())
			must(t, p.Login("u", "p"))
			if c.retr {
				got, err := p.Retr(1)
				must(t, err)
				if !bytes.Equal(got, msgs[0].Body) {
					t.Fatal("RETR 1 differs")
				}
			}
			if _, err := p.OK("DELE 2"); err != nil {
				t.Fatal(err)
			}
			l, _ := p.Quit()
			want := "-ERR [SYS/TEMP]"
			if c.ok {
				want = "+OK"
			}
			if !strings.HasPrefix(l, want) {
				t.Fatalf("QUIT: %q, want %s", l, want)
			}
			if !srv.WaitDone(0, 10*time.Second) {
				t.Fatal("upstream connection still open")
			}
		})
	}
}
