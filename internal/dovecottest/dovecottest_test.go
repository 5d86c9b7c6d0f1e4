package dovecottest_test

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"

	"github.com/popbridge/popbridge/internal/dovecottest"
	"github.com/popbridge/popbridge/internal/testmail"
)

// TestServesCorpusAsDocumented checks the harness end to end and pins down
// the normalisations package testmail documents: every corpus message,
// delivered as a Maildir file, is served by Dovecot's IMAP exactly as
// Message.Served, with RFC822.SIZE = len(Served), under UIDs in delivery
// order.
func TestServesCorpusAsDocumented(t *testing.T) {
	t.Parallel()
	d := dovecottest.Start(t, dovecottest.User{Name: "alice", Password: "secret"})
	corpus := append(testmail.Small(), testmail.Big())
	for _, m := range corpus {
		d.Deliver("alice", "INBOX", m.Raw)
	}
	msgs := d.Messages(t, "alice", "INBOX")
	if len(msgs) != len(corpus) {
		t.Fatalf("got %d messages, want %d", len(msgs), len(corpus))
	}
	for i, m := range msgs {
		want := corpus[i]
		if m.UID != uint32(i+1) {
			t.Errorf("message %d (%s): UID %d, want %d", i+1, want.Name, m.UID, i+1)
		}
		if !bytes.Equal(m.Body, want.Served) {
			t.Errorf("%s: BODY[] differs from Served (%d vs %d octets)\n got: %.200q\nwant: %.200q",
				want.Name, len(m.Body), len(want.Served), m.Body, want.Served)
		}
		if m.Size != int64(len(want.Served)) {
			t.Errorf("%s: RFC822.SIZE %d, want %d", want.Name, m.Size, len(want.Served))
		}
		if len(m.Flags) != 0 {
			t.Errorf("%s: flags %v, want none", want.Name, m.Flags)
		}
	}
}

// TestPOP3UIDLFormat checks that Dovecot's own POP3 answers UIDL with
// exactly %08x%08x of UID and UIDVALIDITY (lowercase), the gateway's format.
func TestPOP3UIDLFormat(t *testing.T) {
	t.Parallel()
	d := dovecottest.Start(t, dovecottest.User{Name: "bob", Password: "pw"})
	for _, m := range testmail.Ordinary(11) { // UID 10 and 11 show hex letters
		d.Deliver("bob", "INBOX", m.Raw)
	}
	uv := d.UIDValidity(t, "bob", "INBOX")
	var want strings.Builder
	for i := 1; i <= 11; i++ {
		fmt.Fprintf(&want, "%d %08x%08x\r\n", i, i, uv)
	}
	got := pop3(t, d.POP3Addr(), "USER bob", "PASS pw", "UIDL")
	if got[3] != want.String() {
		t.Fatalf("UIDL:\n got %q\nwant %q", got[3], want.String())
	}
}

// TestSnapshotAndMailboxes checks the oracle sees flag changes, that
// CreateMailbox and Deliver work for other mailboxes, and that Snapshot
// itself changes nothing.
func TestSnapshotAndMailboxes(t *testing.T) {
	t.Parallel()
	d := dovecottest.Start(t, dovecottest.User{Name: "carol", Password: "pw"})
	d.CreateMailbox("carol", "Trash")
	ord := testmail.Ordinary(3)
	for _, m := range ord {
		d.Deliver("carol", "INBOX", m.Raw)
	}
	d.Deliver("carol", "Archive", ord[0].Raw) // created on the fly

	before := d.Snapshot(t, "carol", "INBOX")
	if again := d.Snapshot(t, "carol", "INBOX"); fmt.Sprint(again) != fmt.Sprint(before) {
		t.Fatalf("Snapshot changed the mailbox:\n%v\n%v", before, again)
	}
	if n := len(d.Snapshot(t, "carol", "Trash")); n != 0 {
		t.Fatalf("Trash has %d messages, want 0", n)
	}
	arch := d.Snapshot(t, "carol", "Archive")
	if len(arch) != 1 || arch[0].SHA256 != before[0].SHA256 {
		t.Fatalf("Archive = %v, want a copy of %v", arch, before[0])
	}

	c := d.Login(t, "carol")
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	var uids imap.UIDSet
	uids.AddNum(2)
	if err := c.Store(uids, &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true,
		Flags: []imap.Flag{imap.FlagSeen, "$POP3Deleted"}}, nil).Close(); err != nil {
		t.Fatal(err)
	}
	after := d.Snapshot(t, "carol", "INBOX")
	if got := strings.Join(after[1].Flags, " "); got != `$POP3Deleted \Seen` {
		t.Fatalf("flags of UID 2 = %q, want %q", got, `$POP3Deleted \Seen`)
	}
	if fmt.Sprint(after[0], after[2]) != fmt.Sprint(before[0], before[2]) {
		t.Fatal("other messages changed")
	}

	d.Doveadm("expunge", "-u", "carol", "mailbox", "INBOX", "all")
	if n := len(d.Snapshot(t, "carol", "INBOX")); n != 0 {
		t.Fatalf("INBOX has %d messages after doveadm expunge, want 0", n)
	}
}

// pop3 runs a POP3 dialogue, one command at a time, and returns the
// greeting followed by each reply (a multi-line reply's body without its
// status line and terminator, un-stuffed).
func pop3(t *testing.T, addr string, cmds ...string) []string {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	r := bufio.NewReader(c)
	line := func() string {
		l, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("POP3 read: %v", err)
		}
		return l
	}
	replies := []string{line()}
	for _, cmd := range cmds {
		fmt.Fprintf(c, "%s\r\n", cmd)
		status := line()
		if !strings.HasPrefix(status, "+OK") {
			t.Fatalf("%s: %q, want prefix %q", cmd, status, "+OK")
		}
		if cmd != "UIDL" && cmd != "LIST" && !strings.HasPrefix(cmd, "RETR") {
			replies = append(replies, status)
			continue
		}
		var body strings.Builder
		for {
			l := line()
			if l == ".\r\n" {
				break
			}
			body.WriteString(strings.TrimPrefix(l, "."))
		}
		replies = append(replies, body.String())
	}
	return replies
}
