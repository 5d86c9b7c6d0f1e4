package e2e

import (
	"testing"
	"time"

	"github.com/popbridge/popbridge/internal/dovecottest"
	"github.com/popbridge/popbridge/internal/testmail"
)

// TestDroppedConnectionChangesNothing: clients that RETR and DELE and then
// close the socket without QUIT (one of them in the middle of a 5 MB RETR)
// leave the upstream exactly as it was (under the expunge and trash
// policies, the most destructive ones).
func TestDroppedConnectionChangesNothing(t *testing.T) {
	for _, pol := range []policy{{Delete: "expunge", Seen: "quit"}, {Delete: "trash", Seen: "quit"}} {
		t.Run(pol.Delete, func(t *testing.T) {
			t.Parallel()
			d := dovecottest.Start(t, dovecottest.User{Name: "u", Password: "pw"})
			msgs := append(testmail.Ordinary(3), testmail.Big())
			for _, m := range msgs {
				d.Deliver("u", "INBOX", m.Raw)
			}
			d.CreateMailbox("u", "Trash")
			before := d.Snapshot(t, "u", "INBOX")
			g := startGateway(t, d, pol)

			a := dialPOP3(t, g.addr)
			a.login("u", "pw")
			a.retr(1)
			a.ok("DELE 1")
			a.ok("DELE 3")
			a.close()

			b := dialPOP3(t, g.addr)
			b.login("u", "pw")
			b.ok("DELE 2")
			if s := b.cmd("RETR 4"); s[:3] != "+OK" {
				t.Fatalf("RETR 4: %q", s)
			}
			b.line() // the first line of the 5 MB message, then hang up
			b.close()

			// Give the gateway time to notice and (wrongly) act.
			time.Sleep(time.Second)
			checkSnapshot(t, d, "u", "INBOX", before)
			checkSnapshot(t, d, "u", "Trash", nil)

			// And a new session sees every message.
			if got := uidlSet(t, g.addr, "u", "pw"); len(got) != len(msgs) {
				t.Errorf("next session lists %d messages, want %d", len(got), len(msgs))
			}
		})
	}
}
