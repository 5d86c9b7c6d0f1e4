package nothinglost

import (
	"strings"
	"testing"
	"time"

	"github.com/popbridge/popbridge/imapback"
	"github.com/popbridge/popbridge/internal/faultproxy"
	"github.com/popbridge/popbridge/internal/oracle"
	"github.com/popbridge/popbridge/internal/testmail"
)

// TestDCommitFaults: against Dovecot, the QUIT update is cut at each of
// its steps for each policy (the command never reaches Dovecot, or
// Dovecot carries it out and the reply is lost). The client gets
// -ERR [SYS/TEMP]; the mailbox changes only within the DELE set (UIDs 2
// and 4) and \Seen on the retrieved UID 1; under trash nothing leaves
// INBOX without its copy in Trash; the next session works and the QUIT
// it retries completes the update.
func TestDCommitFaults(t *testing.T) {
	heavy(t)
	up := func(match string) faultproxy.Plan {
		return faultproxy.Plan{Faults: []faultproxy.Fault{{Dir: faultproxy.Up, Action: faultproxy.Cut, Match: []byte(match)}}}
	}
	down := func(a faultproxy.Action, match string) faultproxy.Plan {
		return faultproxy.Plan{Faults: []faultproxy.Fault{{Dir: faultproxy.Down, Action: a, Match: []byte(match)}}}
	}
	// afterFirst lets the first line containing match through and acts
	// before the next one: the untagged replies of UID EXPUNGE and UID
	// MOVE arrive, the tagged OK never does. (Cutting inside the tagged
	// line is no test: go-imap takes "T9 OK " followed by EOF as OK, and
	// rightly so, since the server only says OK once it is done.)
	afterFirst := func(a faultproxy.Action, match string) faultproxy.Plan {
		return faultproxy.Plan{Faults: []faultproxy.Fault{{Dir: faultproxy.Down, Action: a, Match: []byte(match), After: int64(len(match))}}}
	}
	cases := []struct {
		name   string
		policy imapback.DeletePolicy
		plan   faultproxy.Plan
	}{
		{"select never arrives", imapback.DeleteExpunge, up("SELECT ")},
		{"select reply lost", imapback.DeleteExpunge, down(faultproxy.Reset, "[READ-WRITE]")},
		{"seen store never arrives", imapback.DeleteFlag, up("(\\Seen)")},
		{"seen store reply lost", imapback.DeleteFlag, down(faultproxy.Cut, "Store completed")},
		{"flag store reply lost", imapback.DeleteFlag, up("(\\Deleted)")},
		{"keyword store never arrives", imapback.DeleteKeyword, up("($POP3Deleted)")},
		{"expunge: drop after STORE, before UID EXPUNGE", imapback.DeleteExpunge, up("UID EXPUNGE")},
		{"expunge: UID EXPUNGE done, tagged OK lost", imapback.DeleteExpunge, afterFirst(faultproxy.Cut, " EXPUNGE\r\n")},
		{"expunge: UID EXPUNGE done, tagged OK stalled", imapback.DeleteExpunge, afterFirst(faultproxy.Stall, " EXPUNGE\r\n")},
		{"trash: MOVE never arrives", imapback.DeleteTrash, up("UID MOVE")},
		{"trash: MOVE done, tagged OK lost", imapback.DeleteTrash, afterFirst(faultproxy.Cut, " EXPUNGE\r\n")},
		{"trash: MOVE done, tagged OK stalled", imapback.DeleteTrash, afterFirst(faultproxy.Stall, " EXPUNGE\r\n")},
		{"trash: MOVE reply reset", imapback.DeleteTrash, down(faultproxy.Reset, "COPYUID")},
	}
	msgs := testmail.Ordinary(5)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := startD(t, imapback.Policy{Delete: c.policy, Seen: imapback.SeenQuit}, msgs)
			before := e.snap("INBOX")
			rules := oracle.Rules{Policy: string(c.policy), Deleted: []uint32{2, 4}, Retrieved: []uint32{1}}

			e.nextConn(c.plan)
			k := e.fp.Accepted()
			p := e.login()
			if _, err := p.Retr(1); err != nil {
				t.Fatal(err)
			}
			must(t, p.Send("DELE 2\r\nDELE 4\r\n"))
			p.Line()
			p.Line()
			l, _ := p.Quit()
			if !strings.HasPrefix(l, "-ERR [SYS/TEMP]") {
				t.Fatalf("QUIT: %q, want -ERR [SYS/TEMP]", l)
			}
			if conn := e.fp.Conn(k); !conn.Fired(c.plan.Faults[0].Dir) {
				t.Fatal("the fault did not fire")
			}
			time.Sleep(50 * time.Millisecond)
			after := e.snap("INBOX")
			checkOracle(t, oracle.Check(before, after, rules))
			if c.policy == imapback.DeleteTrash {
				checkOracle(t, oracle.CheckCopied(before, after, e.snap("Trash")))
			}

			// A new session works, and its QUIT completes the update.
			p = e.login()
			uidl, err := p.UIDL()
			must(t, err)
			var nums []string
			for i, u := range uidl {
				if u[:8] == "00000002" || u[:8] == "00000004" {
					nums = append(nums, "DELE "+itoa(i+1))
				}
			}
			for _, n := range nums {
				if _, err := p.OK(n); err != nil {
					t.Fatal(err)
				}
			}
			if l, _ := p.Quit(); !strings.HasPrefix(l, "+OK") {
				t.Fatalf("retried QUIT: %q, want prefix %q", l, "+OK")
			}
			final := e.snap("INBOX")
			checkOracle(t, oracle.Check(before, final, rules))
			applied := rules
			if c.policy == imapback.DeleteExpunge {
				// A message the failed update already marked \Deleted is
				// hidden from the next session, which cannot DELE it
				// again: it stays, marked, until something expunges it.
				applied.Policy = "flag"
			}
			checkOracle(t, oracle.CheckApplied(final, applied))
			if c.policy == imapback.DeleteTrash {
				checkOracle(t, oracle.CheckCopied(before, final, e.snap("Trash")))
			}
		})
	}
}
