package nothinglost

import (
	"bytes"
	"slices"
	"strings"
	"testing"

	"github.com/emersion/go-imap/v2"

	"github.com/popbridge/popbridge/imapback"
	"github.com/popbridge/popbridge/internal/oracle"
	"github.com/popbridge/popbridge/internal/pop3test"
	"github.com/popbridge/popbridge/internal/testmail"
)

// TestDOtherDevices: while POP3 session A is open, an IMAP device
// expunges UID 2, moves UID 3 to Archive, flags UID 4, marks UID 5
// \Deleted without expunging it, and new mail (UID 7) arrives; then a
// second POP3 session B of the same user starts. A's numbering never
// shifts (same UIDL listing, RETR 4 is still the original message 4,
// RETR 2 and 3 answer "expunged"). A deletes 1, 2 (gone: a no-op) and 4;
// B deletes 4 (overlap) and 6. After both QUITs, under each policy, the
// union {1, 4, 6} got the policy's effect and nothing else changed: UID
// 5 keeps its pending \Deleted (no plain EXPUNGE), UID 7 is untouched.
func TestDOtherDevices(t *testing.T) {
	heavy(t)
	for _, pol := range []imapback.DeletePolicy{imapback.DeleteExpunge, imapback.DeleteTrash, imapback.DeleteFlag} {
		t.Run(string(pol), func(t *testing.T) {
			msgs := testmail.Ordinary(7)
			e := startD(t, imapback.Policy{Delete: pol, Seen: imapback.SeenQuit}, msgs[:6])
			a := e.login()
			uidlA, err := a.UIDL()
			must(t, err)
			if len(uidlA) != 6 {
				t.Fatalf("A lists %d messages, want %d", len(uidlA), 6)
			}

			otherDeviceChanges(t, e, msgs[6].Raw)
			mid := e.snap("INBOX")

			b := e.login()
			uidlB, err := b.UIDL()
			must(t, err)
			// B sees 1, 4, 6, 7 (5 is \Deleted: hidden).
			wantB := []string{uidlA[0], uidlA[3], uidlA[5]}
			if len(uidlB) != 4 || !slices.Equal(uidlB[:3], wantB) || strings.HasPrefix(uidlB[3], "00000007") == false {
				t.Fatalf("B lists %q", uidlB)
			}

			checkANotShifted(t, a, uidlA, msgs[3])
			for _, n := range []string{"DELE 1", "DELE 2", "DELE 4"} {
				if _, err := a.OK(n); err != nil {
					t.Fatal(err)
				}
			}
			for _, n := range []string{"DELE 2", "DELE 3"} { // B's 4 and 6
				if _, err := b.OK(n); err != nil {
					t.Fatal(err)
				}
			}
			if l, _ := a.Quit(); !strings.HasPrefix(l, "+OK") {
				t.Fatalf("A QUIT: %q, want prefix %q", l, "+OK")
			}
			if l, _ := b.Quit(); !strings.HasPrefix(l, "+OK") {
				t.Fatalf("B QUIT: %q, want prefix %q", l, "+OK")
			}

			checkOtherDevicesResult(t, e, pol, mid, e.snap("INBOX"))
		})
	}
}

// otherDeviceChanges is the other IMAP device: it expunges UID 2, moves
// UID 3 to Archive, flags UID 4, marks UID 5 \Deleted without expunging
// it, and delivers new mail (UID 7).
func otherDeviceChanges(t *testing.T, e *denv, newMail []byte) {
	t.Helper()
	c := e.d.Login(t, dUser)
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	flags := func(uid imap.UID, f imap.Flag) {
		t.Helper()
		if err := c.Store(imap.UIDSetNum(uid), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{f}}, nil).Close(); err != nil {
			t.Fatal(err)
		}
	}
	flags(2, imap.FlagDeleted)
	if err := c.UIDExpunge(imap.UIDSetNum(2)).Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Move(imap.UIDSetNum(3), "Archive").Wait(); err != nil {
		// Dovecot answers NO [TRYCREATE]: create and retry.
		if err := c.Create("Archive", nil).Wait(); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Move(imap.UIDSetNum(3), "Archive").Wait(); err != nil {
			t.Fatal(err)
		}
	}
	flags(4, imap.FlagFlagged)
	flags(5, imap.FlagDeleted)
	e.d.Deliver(dUser, "INBOX", newMail)
	c.Close()
}

// checkANotShifted checks that session A's numbering never shifted: the
// same UIDL listing, RETR 4 is still the original message 4, RETR 2 and
// 3 answer "expunged".
func checkANotShifted(t *testing.T, a *pop3test.Conn, uidlA []string, msg4 testmail.Message) {
	t.Helper()
	again, err := a.UIDL()
	must(t, err)
	if !slices.Equal(again, uidlA) {
		t.Fatalf("A's numbering shifted: %q, was %q", again, uidlA)
	}
	got, err := a.Retr(4)
	must(t, err)
	if !bytes.Equal(got, testmail.POP3Octets(msg4.Served)) {
		t.Fatal("A: RETR 4 is not the original message 4")
	}
	for _, n := range []string{"RETR 2", "RETR 3"} {
		if l, _ := a.Cmd(n); !strings.HasPrefix(l, "-ERR") || !strings.Contains(l, "expunged") {
			t.Fatalf("A: %s: %q", n, l)
		}
	}
}

// checkOtherDevicesResult checks that the union {1, 4, 6} got the
// policy's effect and nothing else changed: UID 5 keeps its pending
// \Deleted, UID 7 is untouched.
func checkOtherDevicesResult(t *testing.T, e *denv, pol imapback.DeletePolicy, mid, after []oracle.Msg) {
	t.Helper()
	rules := oracle.Rules{Policy: string(pol), Deleted: []uint32{1, 4, 6}, Retrieved: []uint32{4}}
	checkOracle(t, oracle.Check(mid, after, rules))
	checkOracle(t, oracle.CheckApplied(after, rules))
	for _, m := range after {
		if m.UID == 5 && !slices.Contains(m.Flags, `\Deleted`) {
			t.Fatalf("the other device's pending \\Deleted was lost: %v", m)
		}
	}
	if !slices.ContainsFunc(after, func(m oracle.Msg) bool { return m.UID == 5 }) ||
		!slices.ContainsFunc(after, func(m oracle.Msg) bool { return m.UID == 7 }) {
		t.Fatalf("UID 5 or 7 gone: %v", after)
	}
	if pol == imapback.DeleteTrash {
		checkOracle(t, oracle.CheckCopied(mid, after, e.snap("Trash")))
	}
}
