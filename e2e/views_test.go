package e2e

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"

	"github.com/popbridge/popbridge/imapback"
	"github.com/popbridge/popbridge/internal/dovecottest"
	"github.com/popbridge/popbridge/internal/testmail"
	"github.com/popbridge/popbridge/pop3front"
)

// UIDL schemes and POP views (imapback/uidl.go, imapback/views.go)
// against the real Dovecot 2.3.

func viewsBackend(t *testing.T, d *dovecottest.Dovecot, mailbox string, p imapback.Policy) *imapback.Backend {
	t.Helper()
	b, err := imapback.New(imapback.Config{
		Address:  d.IMAPAddr(),
		Security: imapback.SecurityNone,
		Mailbox:  mailbox,
		Policy:   p,
		Logger:   slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func viewsLogin(t *testing.T, b *imapback.Backend, d *dovecottest.Dovecot, user string) (pop3front.Maildrop, error) {
	t.Helper()
	return b.Login(context.Background(), &pop3front.LoginRequest{Username: user, Password: d.Password(user), Mechanism: "USER"})
}

// listUIDLs logs in, returns the UIDLs and closes (nothing changes).
func listUIDLs(t *testing.T, b *imapback.Backend, d *dovecottest.Dovecot, user string) []string {
	t.Helper()
	md, err := viewsLogin(t, b, d, user)
	if err != nil {
		t.Fatalf("login: %v", err)
	}
	defer md.Close()
	var out []string
	seen := map[string]bool{}
	for _, mi := range md.Messages() {
		if len(mi.UIDL) < 1 || len(mi.UIDL) > 70 || strings.ContainsFunc(mi.UIDL, func(r rune) bool { return r < 0x21 || r > 0x7e }) || seen[mi.UIDL] {
			t.Errorf("UIDL %q breaks invariant 5", mi.UIDL)
		}
		seen[mi.UIDL] = true
		out = append(out, mi.UIDL)
	}
	return out
}

// TestUIDLSchemesAcrossUIDValidityReset recreates a mailbox with the same
// messages in the same order (what a migration or a rebuilt index does:
// a new UIDVALIDITY) and shows which UIDL schemes keep the UIDLs:
// content keeps them, dovecot changes every one, and emailid and
// x-gm-msgid are refused at login on Dovecot 2.3 (no OBJECTID, no
// X-GM-EXT-1) unless the fallback is allowed.
func TestUIDLSchemesAcrossUIDValidityReset(t *testing.T) {
	d := dovecottest.Start(t, dovecottest.User{Name: "u", Password: "p"})
	var msgs [][]byte
	for _, m := range testmail.Ordinary(4) {
		msgs = append(msgs, m.Raw)
	}
	msgs = append(msgs, msgs[2]) // delivered twice
	d.DeliverAll("u", "Box", msgs...)

	dovecot := viewsBackend(t, d, "Box", imapback.Policy{})
	content := viewsBackend(t, d, "Box", imapback.Policy{UIDL: imapback.UIDLContent})
	for _, scheme := range []imapback.UIDLScheme{imapback.UIDLEmailID, imapback.UIDLGmail} {
		_, err := viewsLogin(t, viewsBackend(t, d, "Box", imapback.Policy{UIDL: scheme, UIDLRequired: true}), d, "u")
		var pe *pop3front.Error
		if !errors.As(err, &pe) || pe.Code != pop3front.CodeSysPerm {
			t.Errorf("%s on Dovecot 2.3: login error %v, want -ERR [SYS/PERM]", scheme, err)
		}
	}
	fallback := viewsBackend(t, d, "Box", imapback.Policy{UIDL: imapback.UIDLEmailID})

	uv1 := d.UIDValidity(t, "u", "Box")
	dovecot1, content1, fallback1 := listUIDLs(t, dovecot, d, "u"), listUIDLs(t, content, d, "u"), listUIDLs(t, fallback, d, "u")
	if len(content1) != 5 || content1[4] != content1[2]+"-2" {
		t.Errorf("content UIDLs %q: want 5 with the duplicate renamed -2", content1)
	}
	if !slices.Equal(fallback1, dovecot1) {
		t.Errorf("emailid with fallback: %q, want the dovecot UIDLs %q", fallback1, dovecot1)
	}

	// The reset: DELETE, then the same messages again.
	c := d.Login(t, "u")
	if err := c.Delete("Box").Wait(); err != nil {
		t.Fatal(err)
	}
	c.Logout().Wait()
	time.Sleep(1100 * time.Millisecond) // Dovecot's UIDVALIDITY is time-based
	d.DeliverAll("u", "Box", msgs...)
	if uv2 := d.UIDValidity(t, "u", "Box"); uv2 == uv1 {
		t.Fatalf("UIDVALIDITY %d unchanged: the reset did not happen", uv1)
	}

	dovecot2, content2 := listUIDLs(t, dovecot, d, "u"), listUIDLs(t, content, d, "u")
	if !slices.Equal(content1, content2) {
		t.Errorf("content UIDLs changed across the reset:\n%q\n%q", content1, content2)
	}
	for i := range dovecot1 {
		if dovecot1[i] == dovecot2[i] {
			t.Errorf("dovecot UIDL %d survived the reset: %q", i+1, dovecot1[i])
		}
	}
	t.Logf("UIDVALIDITY reset: content kept %d/5, dovecot kept 0/5, emailid and x-gm-msgid refused (no OBJECTID, no X-GM-EXT-1)", len(content2))
}

// TestViewsOnDovecot: hide_retrieved marks only at QUIT and hides from
// later POP3 sessions while IMAP still shows the message; the listing
// window picks the newest N, and max_age leaves out old mail (SEARCH
// SINCE on INTERNALDATE).
func TestViewsOnDovecot(t *testing.T) {
	d := dovecottest.Start(t, dovecottest.User{Name: "u", Password: "p"})
	for _, m := range testmail.Ordinary(4) {
		d.Deliver("u", "INBOX", m.Raw)
	}
	hide := viewsBackend(t, d, "INBOX", imapback.Policy{HideRetrieved: true, Delete: imapback.DeleteKeep})
	all := listUIDLs(t, hide, d, "u")
	if len(all) != 4 {
		t.Fatalf("listed %d, want 4", len(all))
	}

	// RETR 2 without QUIT: nothing marked.
	md, err := viewsLogin(t, hide, d, "u")
	if err != nil {
		t.Fatal(err)
	}
	r, err := md.Open(context.Background(), 1, pop3front.Section{})
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, r)
	r.Close()
	md.Close()
	if got := listUIDLs(t, hide, d, "u"); !slices.Equal(got, all) {
		t.Fatalf("without QUIT the listing changed: %q, want %q", got, all)
	}

	md, err = viewsLogin(t, hide, d, "u")
	if err != nil {
		t.Fatal(err)
	}
	if err := md.Commit(context.Background(), pop3front.Outcome{Retrieved: []int{1}, Deleted: []int{2}}); err != nil {
		t.Fatal(err)
	}
	if got, want := listUIDLs(t, hide, d, "u"), []string{all[0], all[2], all[3]}; !slices.Equal(got, want) {
		t.Errorf("after QUIT listed %q, want %q", got, want)
	}
	snap := d.Snapshot(t, "u", "INBOX")
	if len(snap) != 4 {
		t.Fatalf("IMAP shows %d messages, want 4", len(snap))
	}
	for i, s := range snap {
		marked := slices.ContainsFunc(s.Flags, func(f string) bool { return strings.EqualFold(f, "$POP3Retrieved") })
		seen := slices.Contains(s.Flags, `\Seen`)
		if marked != (i == 1) || seen != (i == 1) {
			t.Errorf("message %d: %v", i+1, s)
		}
	}

	// Window: newest 2 of everything (no hide_retrieved here).
	if got := listUIDLs(t, viewsBackend(t, d, "INBOX", imapback.Policy{MaxMessages: 2}), d, "u"); !slices.Equal(got, all[2:]) {
		t.Errorf("newest 2: %q, want %q", got, all[2:])
	}
	// max_age: a message that arrived 60 days ago is left out.
	c := d.Login(t, "u")
	old := []byte("From: old@example.org\r\nTo: u@example.org\r\nSubject: old\r\nMessage-ID: <old@example.org>\r\n\r\nold\r\n")
	app := c.Append("INBOX", int64(len(old)), &imap.AppendOptions{Time: time.Now().Add(-60 * 24 * time.Hour)})
	app.Write(old)
	app.Close()
	if _, err := app.Wait(); err != nil {
		t.Fatal(err)
	}
	c.Logout().Wait()
	if got := listUIDLs(t, viewsBackend(t, d, "INBOX", imapback.Policy{}), d, "u"); len(got) != 5 {
		t.Fatalf("listed %d, want 5", len(got))
	}
	if got := listUIDLs(t, viewsBackend(t, d, "INBOX", imapback.Policy{MaxAge: 30 * 24 * time.Hour}), d, "u"); !slices.Equal(got, all) {
		t.Errorf("max_age 30d: %q, want %q", got, all)
	}
}
