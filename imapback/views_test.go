package imapback

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/popbridge/popbridge/internal/memupstream"
	"github.com/popbridge/popbridge/pop3front"
)

// uidls returns md's UIDLs in message order.
func uidls(md pop3front.Maildrop) []string {
	var out []string
	for _, mi := range md.Messages() {
		out = append(out, mi.UIDL)
	}
	return out
}

// checkUIDLs asserts the UIDL shape of docs/design.md, invariant 5: unique, 1-70 octets in 0x21-0x7E.
func checkUIDLs(t *testing.T, l []string) {
	t.Helper()
	seen := map[string]bool{}
	for _, u := range l {
		if len(u) < 1 || len(u) > 70 {
			t.Errorf("UIDL %q: length %d", u, len(u))
		}
		for i := 0; i < len(u); i++ {
			if u[i] < 0x21 || u[i] > 0x7e {
				t.Errorf("UIDL %q: octet %#x", u, u[i])
			}
		}
		if seen[u] {
			t.Errorf("UIDL %q twice", u)
		}
		seen[u] = true
	}
}

func commit(t *testing.T, md pop3front.Maildrop, o pop3front.Outcome) {
	t.Helper()
	if err := md.Commit(context.Background(), o); err != nil {
		t.Fatalf("Commit: %v", err)
	}
}

// recreate deletes and recreates mailbox with msgs: a UIDVALIDITY reset
// as a server migration or a rebuilt index causes it.
func (e *env) recreate(mailbox string, msgs [][]byte) {
	e.t.Helper()
	e.imapDo(func(c *imapclient.Client) error {
		if err := c.Delete(mailbox).Wait(); err != nil && !strings.Contains(err.Error(), "NONEXISTENT") && !strings.Contains(strings.ToLower(err.Error()), "no such") {
			return err
		}
		return c.Create(mailbox, nil).Wait()
	})
	for _, m := range msgs {
		if err := e.srv.Append(testUser, mailbox, m); err != nil {
			e.t.Fatal(err)
		}
	}
}

func TestUIDLSchemesAcrossUIDValidityReset(t *testing.T) {
	msgs := seed(3)
	msgs = append(msgs, msgs[1]) // the same message delivered twice
	e := newEnv(t, memupstream.ProfileFull, nil, nil)
	e.recreate("Box", msgs)
	list := func(scheme UIDLScheme) []string {
		b := e.backend(Policy{UIDL: scheme}, func(c *Config) { c.Mailbox = "Box" })
		md := e.login(b)
		defer md.Close()
		l := uidls(md)
		checkUIDLs(t, l)
		if len(l) != len(msgs) {
			t.Fatalf("%s: %d UIDLs, want %d", scheme, len(l), len(msgs))
		}
		return l
	}
	dovecot1, content1 := list(UIDLDovecot), list(UIDLContent)
	for i, u := range content1 {
		want := `^[0-9a-f]{32}$`
		if i == 3 {
			want = `^[0-9a-f]{32}-2$`
		}
		if !regexp.MustCompile(want).MatchString(u) {
			t.Errorf("content UIDL %d = %q, want %s", i+1, u, want)
		}
	}
	if content1[3] != content1[1]+"-2" {
		t.Errorf("duplicate: %q, want %q", content1[3], content1[1]+"-2")
	}
	if list(UIDLContent)[0] != content1[0] {
		t.Error("content UIDLs differ between two sessions")
	}

	e.recreate("Box", msgs)
	dovecot2, content2 := list(UIDLDovecot), list(UIDLContent)
	if !slices.Equal(content1, content2) {
		t.Errorf("content UIDLs changed with UIDVALIDITY:\n%q\n%q", content1, content2)
	}
	for i := range dovecot1 {
		if dovecot1[i] == dovecot2[i] {
			t.Errorf("dovecot UIDL %d kept across a UIDVALIDITY reset: %q", i+1, dovecot1[i])
		}
	}
}

func TestUIDLRequiredRefusesLogin(t *testing.T) {
	e := newEnv(t, memupstream.ProfileFull, seed(2), nil)
	for _, scheme := range []UIDLScheme{UIDLEmailID, UIDLGmail} {
		b := e.backend(Policy{UIDL: scheme, UIDLRequired: true})
		_, err := b.Login(context.Background(), &pop3front.LoginRequest{Username: testUser, Password: testPass, Mechanism: "USER"})
		pe := wantCode(t, err, pop3front.CodeSysPerm)
		if !strings.Contains(pe.Text, string(scheme)) {
			t.Errorf("%s: text %q, want it to contain %q", scheme, pe.Text, string(scheme))
		}
		// Fallback: today's UIDLs, and the log line says so.
		b = e.backend(Policy{UIDL: scheme})
		md := e.login(b)
		if got, want := uidls(md)[0], uidl(1, uidValidityOf(t, e)); got != want {
			t.Errorf("%s fallback: UIDL %q, want %q", scheme, got, want)
		}
		if a := attrMap(md); a["uidl_scheme"] != "dovecot" {
			t.Errorf("%s fallback: LogAttrs %v", scheme, a)
		}
		md.Close()
	}
}

func uidValidityOf(t *testing.T, e *env) uint32 {
	var v uint32
	e.imapDo(func(c *imapclient.Client) error {
		sel, err := c.Select("INBOX", &imap.SelectOptions{ReadOnly: true}).Wait()
		if err == nil {
			v = sel.UIDValidity
		}
		return err
	})
	return v
}

func attrMap(md pop3front.Maildrop) map[string]string {
	out := map[string]string{}
	for _, a := range md.(pop3front.SessionInfo).LogAttrs() {
		out[a.Key] = a.Value.String()
	}
	return out
}

func TestHideRetrieved(t *testing.T) {
	e := newEnv(t, memupstream.ProfileFull, seed(4), nil)
	b := e.backend(Policy{HideRetrieved: true, Delete: DeleteKeep})

	// No QUIT: nothing is marked, nothing hidden (docs/design.md, invariant 1).
	md := e.login(b)
	if _, err := retr(t, md, 0); err != nil {
		t.Fatal(err)
	}
	md.Close()
	for uid, st := range e.state("INBOX") {
		if st.has(DefaultRetrievedKeyword) || st.has(imap.FlagSeen) {
			t.Errorf("UID %d changed without QUIT: %v", uid, st.flags)
		}
	}

	md = e.login(b)
	if n := len(md.Messages()); n != 4 {
		t.Fatalf("listed %d, want 4", n)
	}
	first := uidls(md)
	for _, i := range []int{0, 2} {
		if _, err := retr(t, md, i); err != nil {
			t.Fatal(err)
		}
	}
	// Message 4 is only DELE'd (keep: nothing) and TOP'd: not hidden.
	commit(t, md, pop3front.Outcome{Retrieved: []int{0, 2}, Deleted: []int{3}})
	st := e.state("INBOX")
	for uid, want := range map[imap.UID]bool{1: true, 2: false, 3: true, 4: false} {
		if st[uid].has(DefaultRetrievedKeyword) != want || st[uid].has(imap.FlagSeen) != want {
			t.Errorf("UID %d flags %v, want retrieved=%v", uid, st[uid].flags, want)
		}
	}

	md = e.login(b)
	if got, want := uidls(md), []string{first[1], first[3]}; !slices.Equal(got, want) {
		t.Errorf("after QUIT listed %q, want %q", got, want)
	}
	if a := attrMap(md); a["view"] != "hide_retrieved" || a["view_matched"] != "2" {
		t.Errorf("LogAttrs %v", a)
	}
	if n := len(e.wire.lines(`(?i)UID SEARCH .*UNKEYWORD \$POP3Retrieved`)); n == 0 {
		t.Errorf("no UID SEARCH UNKEYWORD $POP3Retrieved on the wire:\n%s", e.wire)
	}
	md.Close()

	// seen=never: only the keyword.
	b = e.backend(Policy{HideRetrieved: true, Seen: SeenNever})
	md = e.login(b)
	commit(t, md, pop3front.Outcome{Retrieved: []int{0}})
	if st := e.state("INBOX")[2]; !st.has(DefaultRetrievedKeyword) || st.has(imap.FlagSeen) {
		t.Errorf("seen=never: UID 2 flags %v", st.flags)
	}
	// A session without the view lists everything, phones see everything.
	md = e.login(e.backend(Policy{}))
	if n := len(md.Messages()); n != 4 {
		t.Errorf("without hide_retrieved listed %d, want 4", n)
	}
}

func TestListingWindow(t *testing.T) {
	e := newEnv(t, memupstream.ProfileFull, seed(5), nil)
	all := uidls(e.login(e.backend(Policy{})))
	for _, tc := range []struct {
		p    Policy
		want []string
	}{
		{Policy{MaxMessages: 2}, all[3:]},
		{Policy{MaxMessages: 2, Window: WindowOldest}, all[:2]},
		{Policy{MaxMessages: 9}, all},
	} {
		before := len(e.wire.lines(`(?i)UID FETCH`))
		md := e.login(e.backend(tc.p))
		if got := uidls(md); !slices.Equal(got, tc.want) {
			t.Errorf("%+v: listed %q, want %q", tc.p, got, tc.want)
		}
		md.Close()
		fetches := e.wire.lines(`(?i)UID FETCH`)[before:]
		if len(fetches) != 1 || strings.Contains(fetches[0], "1:*") {
			t.Errorf("%+v: fetched %q, want one UID FETCH of the window", tc.p, fetches)
		}
	}

	// max_age: a message received 40 days ago is left out.
	old := []byte("From: old@example.org\r\nSubject: old\r\n\r\nold\r\n")
	e.imapDo(func(c *imapclient.Client) error {
		cmd := c.Append("INBOX", int64(len(old)), &imap.AppendOptions{Time: time.Now().Add(-40 * 24 * time.Hour)})
		cmd.Write(old)
		cmd.Close()
		_, err := cmd.Wait()
		return err
	})
	md := e.login(e.backend(Policy{}))
	if n := len(md.Messages()); n != 6 {
		t.Fatalf("listed %d, want 6", n)
	}
	md.Close()
	md = e.login(e.backend(Policy{MaxAge: 30 * 24 * time.Hour}))
	if got := uidls(md); !slices.Equal(got, all) {
		t.Errorf("max_age 30d: listed %q, want %q", got, all)
	}
	if n := len(e.wire.lines(`(?i)UID SEARCH .*SINCE`)); n == 0 {
		t.Errorf("no UID SEARCH SINCE on the wire")
	}
}

func TestWindowEmptyAndHidden(t *testing.T) {
	e := newEnv(t, memupstream.ProfileFull, seed(3), map[int][]imap.Flag{2: {imap.FlagDeleted}})
	md := e.login(e.backend(Policy{MaxMessages: 1}))
	if got := len(md.Messages()); got != 1 || md.Messages()[0].UIDL != uidl(2, uidValidityOf(t, e)) {
		t.Errorf("newest 1 of the undeleted: %v", md.Messages())
	}
	md.Close()
	md = e.login(e.backend(Policy{MaxAge: time.Hour, HideRetrieved: true}))
	commit(t, md, pop3front.Outcome{Retrieved: []int{0, 1}})
	md = e.login(e.backend(Policy{MaxAge: time.Hour, HideRetrieved: true}))
	if n := len(md.Messages()); n != 0 {
		t.Errorf("listed %d, want 0", n)
	}
}

func TestPolicyOverrides(t *testing.T) {
	e := newEnv(t, memupstream.ProfileFull, seed(2), nil)
	if err := e.srv.AddUser("scanner@example.org", "pw"); err != nil {
		t.Fatal(err)
	}
	for _, m := range seed(2) {
		e.srv.Append("scanner@example.org", "INBOX", m)
	}
	b := e.backend(Policy{Delete: DeleteFlag}, func(c *Config) {
		c.Overrides = []PolicyOverride{
			{Match: "SCAN*@example.org", Policy: Policy{Delete: DeleteKeep, UIDL: UIDLContent}},
			{Match: "scanner@example.org", Policy: Policy{Delete: DeleteExpunge}}, // never reached
		}
	})
	if p := b.PolicyFor("scanner@example.org"); p.Delete != DeleteKeep || p.Keyword != "$POP3Deleted" || p.Window != WindowNewest {
		t.Errorf("PolicyFor(scanner) = %+v, want keep with defaults filled in", p)
	}
	if p := b.PolicyFor("alice"); p.Delete != DeleteFlag {
		t.Errorf("PolicyFor(alice) = %+v", p)
	}
	md, err := b.Login(context.Background(), &pop3front.LoginRequest{Username: "scanner@example.org", Password: "pw", Mechanism: "USER"})
	if err != nil {
		t.Fatal(err)
	}
	if a := attrMap(md); a["delete_policy"] != "keep" || a["uidl_scheme"] != "content" {
		t.Errorf("scanner LogAttrs %v", a)
	}
	commit(t, md, pop3front.Outcome{Deleted: []int{0, 1}})
	md = e.login(b)
	commit(t, md, pop3front.Outcome{Deleted: []int{0}})
	if !e.state("INBOX")[1].has(imap.FlagDeleted) {
		t.Error("alice: flag policy not applied")
	}
	if n := strings.Count(e.wire.String(), "STORE"); n != 1 {
		t.Errorf("%d STOREs, want 1 (alice's only; scanner keeps)", n)
	}

	if _, err := New(Config{Address: "h:1", Security: SecurityNone, Overrides: []PolicyOverride{{Match: "[", Policy: Policy{}}}}); err == nil {
		t.Error("bad glob accepted")
	}
	if _, err := New(Config{Address: "h:1", Security: SecurityNone, Overrides: []PolicyOverride{{Match: "x", Policy: Policy{Delete: "shred"}}}}); err == nil {
		t.Error("bad override policy accepted")
	}
}

func TestLoginWith(t *testing.T) {
	e := newEnv(t, memupstream.ProfileFull, seed(3), nil)
	b := e.backend(Policy{Delete: DeleteExpunge})
	md, err := b.LoginWith(context.Background(),
		&pop3front.LoginRequest{Username: testUser, Password: testPass, Mechanism: "USER"},
		LoginOptions{Policy: &Policy{Delete: DeleteKeep, MaxMessages: 1}, Attrs: []slog.Attr{slog.String("modifiers", "keep,recent")}})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(md.Messages()); n != 1 {
		t.Errorf("listed %d, want 1", n)
	}
	a := attrMap(md)
	if a["modifiers"] != "keep,recent" || a["delete_policy"] != "keep" || a["view"] != "max_messages=1/newest" {
		t.Errorf("LogAttrs %v", a)
	}
	commit(t, md, pop3front.Outcome{Deleted: []int{0}})
	if len(e.state("INBOX")) != 3 {
		t.Error("keep: a message was removed")
	}
	if _, err := b.LoginWith(context.Background(), &pop3front.LoginRequest{Username: testUser, Password: testPass},
		LoginOptions{Policy: &Policy{Window: "middle"}}); err == nil {
		t.Error("invalid login policy accepted")
	}
}

// objectIDServer is a minimal IMAP server advertising OBJECTID and
// X-GM-EXT-1: it answers the snapshot and the hand-written identity
// fetch, and interleaves unilateral responses go-imap must still get.
type objectIDServer struct {
	*fakeUpstream
	emailIDs []string
	gmIDs    []uint64
}

func startObjectIDServer(t *testing.T, emailIDs []string, gmIDs []uint64) *objectIDServer {
	s := &objectIDServer{emailIDs: emailIDs, gmIDs: gmIDs}
	s.fakeUpstream = &fakeUpstream{caps: "IMAP4rev1 UIDPLUS OBJECTID X-GM-EXT-1", sizes: make([]int, len(emailIDs))}
	for i := range s.sizes {
		s.sizes[i] = 100 + i
	}
	var mu sync.Mutex
	s.fetch = func(w io.Writer, tag, line string) bool {
		mu.Lock()
		defer mu.Unlock()
		up := strings.ToUpper(line)
		switch {
		case strings.Contains(up, "EMAILID"):
			for i, id := range s.emailIDs {
				fmt.Fprintf(w, "* %d FETCH (UID %d EMAILID (%s))\r\n", i+1, i+1, id)
				if i == 0 {
					fmt.Fprintf(w, "* %d EXISTS\r\n* 1 FETCH (FLAGS (\\Seen))\r\n", len(s.emailIDs))
				}
			}
		case strings.Contains(up, "X-GM-MSGID"):
			for i, id := range s.gmIDs {
				fmt.Fprintf(w, "* %d FETCH (X-GM-MSGID %d UID %d)\r\n", i+1, id, i+1)
			}
		default:
			return false
		}
		fmt.Fprintf(w, "%s OK done\r\n", tag)
		return true
	}
	startFake(t, s.fakeUpstream)
	return s
}

func TestUIDLObjectIDs(t *testing.T) {
	s := startObjectIDServer(t, []string{"M6d99ac3275bb4e", "Mdup", "Mdup", "M-long-" + strings.Repeat("x", 80)}, []uint64{1278455344230334865, 1278455344230334866, 7, 8})
	for _, tc := range []struct {
		scheme UIDLScheme
		want   []string
	}{
		{UIDLEmailID, []string{"M6d99ac3275bb4e", "Mdup", "Mdup-2", uidlBase("M-long-" + strings.Repeat("x", 80))}},
		{UIDLGmail, []string{"1278455344230334865", "1278455344230334866", "7", "8"}},
	} {
		b := s.backend(t, func(c *Config) { c.Policy.UIDL = tc.scheme })
		md, err := b.Login(context.Background(), &pop3front.LoginRequest{Username: "u", Password: "p", Mechanism: "USER"})
		if err != nil {
			t.Fatalf("%s: %v", tc.scheme, err)
		}
		got := uidls(md)
		checkUIDLs(t, got)
		if !slices.Equal(got, tc.want) {
			t.Errorf("%s: UIDLs %q, want %q", tc.scheme, got, tc.want)
		}
		// The session still works after the hand-written command.
		if err := md.Noop(context.Background()); err != nil {
			t.Errorf("%s: NOOP after the identity fetch: %v", tc.scheme, err)
		}
		md.Close()
	}
	if n := strings.Count(s.recorded(), "UID FETCH 1:4 (UID EMAILID)"); n != 1 {
		t.Errorf("EMAILID fetch sent %d times:\n%s", n, s.recorded())
	}
}

func TestContentIDUnits(t *testing.T) {
	h1 := []byte("Message-ID: <a@b>\r\nDate: Mon, 1 Jan 2024\r\n  10:00:00 +0000\r\nFrom: A <a@b>\r\n\r\n")
	h2 := []byte("from:   A <a@b>\r\nDATE: Mon, 1 Jan 2024 10:00:00 +0000\r\nmessage-id:<a@b>\r\n\r\n")
	if contentID(h1, 10) != contentID(h2, 10) {
		t.Error("folding, case, order and white space change the content id")
	}
	if contentID(h1, 10) == contentID(h1, 11) {
		t.Error("size ignored")
	}
	if contentID(nil, 10) == "" || len(contentID(nil, 10)) != 32 {
		t.Error("empty header")
	}
	for in, want := range map[string]string{"abc": "abc", "": "h", "a b": "h", strings.Repeat("a", 64): "h", strings.Repeat("a", 63): strings.Repeat("a", 63)} {
		if got := uidlBase(in); !strings.HasPrefix(got, want) || (want == "h" && len(got) != 33) {
			t.Errorf("uidlBase(%q) = %q", in, got)
		}
	}
	items, ok := fetchItems([]byte(`* 12 FETCH (UID 5 EMAILID (M1) FLAGS (\Seen $x) X-GM-MSGID 99)`))
	if !ok || items["UID"] != "5" || items["EMAILID"] != "(M1)" || items["X-GM-MSGID"] != "99" {
		t.Errorf("fetchItems = %v, %v", items, ok)
	}
	if _, ok := fetchItems([]byte(`* 12 FETCH (UID 5 BODY[] {3}`)); ok {
		t.Error("fetchItems accepted a literal")
	}
}

// TestUIDLObjectIDRefused: a NO to the identity fetch fails the login
// with SYS/TEMP (no UIDLs are invented) and the connection is released.
func TestUIDLObjectIDRefused(t *testing.T) {
	s := startObjectIDServer(t, []string{"M1", "M2"}, nil)
	s.fetch = func(w io.Writer, tag, line string) bool {
		fmt.Fprintf(w, "* 1 FETCH (UID 1 EMAILID (M1))\r\n%s NO [SERVERBUG] oops\r\n", tag)
		return true
	}
	b := s.backend(t, func(c *Config) { c.Policy.UIDL = UIDLEmailID })
	_, err := b.Login(context.Background(), &pop3front.LoginRequest{Username: "u", Password: "p", Mechanism: "USER"})
	wantCode(t, err, pop3front.CodeSysTemp)
}
