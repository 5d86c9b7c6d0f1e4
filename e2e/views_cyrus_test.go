package e2e

import (
	"context"
	"io"
	"log/slog"
	"slices"
	"strings"
	"testing"

	"github.com/popbridge/popbridge/imapback"
	"github.com/popbridge/popbridge/internal/testmail"
	"github.com/popbridge/popbridge/internal/upstreams"
	"github.com/popbridge/popbridge/pop3front"
)

// TestUIDLEmailIDOnCyrus: Cyrus advertises OBJECTID (RFC 8474), so
// uidl = "emailid" works: the UIDLs are the EMAILIDs, identical copies
// share one and are renamed -2, and after the mailbox is recreated with
// the same messages (a new UIDVALIDITY) the emailid and content UIDLs are
// kept while the dovecot ones all change.
func TestUIDLEmailIDOnCyrus(t *testing.T) {
	s := upstreams.StartCyrus(t, upstreams.User{Name: "u", Password: "p"})
	var msgs [][]byte
	for _, m := range testmail.Ordinary(3) {
		msgs = append(msgs, m.Raw)
	}
	msgs = append(msgs, msgs[0]) // an identical copy
	c := s.Dial(t, "u")
	if err := c.Create("Box", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	c.Logout().Wait()
	s.Append(t, "u", "Box", msgs...)

	list := func(scheme imapback.UIDLScheme) []string {
		t.Helper()
		b, err := imapback.New(imapback.Config{
			Address: s.Addr(), Security: imapback.SecurityNone, Mailbox: "Box",
			Policy: imapback.Policy{UIDL: scheme},
			Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		})
		if err != nil {
			t.Fatal(err)
		}
		md, err := b.Login(context.Background(), &pop3front.LoginRequest{Username: s.Login("u"), Password: s.Password("u"), Mechanism: "USER"})
		if err != nil {
			t.Fatalf("%s: login: %v", scheme, err)
		}
		defer md.Close()
		var out []string
		for _, mi := range md.Messages() {
			out = append(out, mi.UIDL)
		}
		// The session still works after the hand-written EMAILID fetch.
		if err := md.Noop(context.Background()); err != nil {
			t.Errorf("%s: NOOP: %v", scheme, err)
		}
		return out
	}
	email1, content1, dovecot1 := list(imapback.UIDLEmailID), list(imapback.UIDLContent), list(imapback.UIDLDovecot)
	if len(email1) != 4 || !strings.HasPrefix(email1[0], "M") || email1[3] != email1[0]+"-2" {
		t.Errorf("emailid UIDLs %q: want 4 Cyrus EMAILIDs, the copy renamed -2", email1)
	}

	c = s.Dial(t, "u")
	if err := c.Delete("Box").Wait(); err != nil {
		t.Fatal(err)
	}
	if err := c.Create("Box", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	c.Logout().Wait()
	s.Append(t, "u", "Box", msgs...)

	email2, content2, dovecot2 := list(imapback.UIDLEmailID), list(imapback.UIDLContent), list(imapback.UIDLDovecot)
	if !slices.Equal(content1, content2) {
		t.Errorf("content UIDLs changed:\n%q\n%q", content1, content2)
	}
	if slices.Equal(dovecot1, dovecot2) {
		t.Errorf("dovecot UIDLs unchanged: the mailbox was not recreated (%q)", dovecot1)
	}
	// Cyrus derives EMAILID from the message's content (its GUID), so
	// the same bytes get the same EMAILID again.
	if !slices.Equal(email1, email2) {
		t.Errorf("emailid UIDLs changed:\n%q\n%q", email1, email2)
	}
	t.Logf("Cyrus: emailid %q kept, content kept, dovecot %q -> %q", email1, dovecot1, dovecot2)
}
