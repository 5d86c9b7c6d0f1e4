package imapback

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/popbridge/popbridge/internal/memupstream"
	"github.com/popbridge/popbridge/pop3front"
)

var profiles = []memupstream.Profile{
	memupstream.ProfileIMAP4rev2,
	memupstream.ProfileUIDPlus,
	memupstream.ProfileBare,
	memupstream.ProfileFull,
}

// TestPolicies checks each delete policy's upstream effect on each
// profile. Messages 1-4 are the maildrop; message 5 was marked \Deleted by
// another client (hidden, and it must survive every policy). The session
// deletes 1 and 3 and retrieves 2.
func TestPolicies(t *testing.T) {
	policies := []DeletePolicy{DeleteFlag, DeleteKeyword, DeleteExpunge, DeleteTrash, DeleteArchive, DeleteKeep}
	for _, prof := range profiles {
		for _, pol := range policies {
			t.Run(fmt.Sprintf("%s/%s", prof, pol), func(t *testing.T) { testPolicy(t, prof, pol) })
		}
	}
}

// testPolicy is one TestPolicies case: pol on prof.
func testPolicy(t *testing.T, prof memupstream.Profile, pol DeletePolicy) {
	e := newEnv(t, prof, seed(5), map[int][]imap.Flag{4: {imap.FlagDeleted}})
	b := e.backend(Policy{Delete: pol})
	md, err := b.Login(context.Background(), &pop3front.LoginRequest{Username: testUser, Password: testPass})
	needs := pol == DeleteExpunge || pol == DeleteTrash || pol == DeleteArchive
	if prof == memupstream.ProfileBare && needs {
		pe := wantCode(t, err, pop3front.CodeSysPerm)
		if !strings.Contains(pe.Text, "Server lacks") {
			t.Errorf("text %q, want it to contain %q", pe.Text, "Server lacks")
		}
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	defer md.Close()
	if n := len(md.Messages()); n != 4 {
		t.Fatalf("%d messages, want 4 (\\Deleted hidden)", n)
	}
	body, err := retr(t, md, 1)
	if err != nil || string(body) != string(e.msgs[1]) {
		t.Fatalf("RETR 2: %q, %v", body, err)
	}
	if err := md.Commit(context.Background(), pop3front.Outcome{Deleted: []int{0, 2}, Retrieved: []int{1}}); err != nil {
		t.Fatalf("Commit: %v", err)
	}
	w := e.wire.String()
	checkWire(t, e.wire, prof, pol)

	checkPolicyEffect(t, e, pol)
	if t.Failed() {
		t.Logf("wire:\n%s", w)
	}
}

// checkPolicyEffect checks the INBOX (and Trash or Archive) after
// TestPolicies' session: 2 retrieved, 1 and 3 deleted as pol says, 4 and
// the other client's 5 untouched.
func checkPolicyEffect(t *testing.T, e *env, pol DeletePolicy) {
	t.Helper()
	inbox := e.state("INBOX")
	if !inbox[2].has(imap.FlagSeen) || inbox[4].has(imap.FlagSeen) {
		t.Errorf("\\Seen: 2 %v, 4 %v", inbox[2].flags, inbox[4].flags)
	}
	if len(inbox[5].flags) != 1 || !inbox[5].has(imap.FlagDeleted) {
		t.Errorf("other client's \\Deleted message changed: %+v", inbox[5])
	}
	if len(inbox[4].flags) != 0 {
		t.Errorf("message 4 changed: %v", inbox[4].flags)
	}
	switch pol {
	case DeleteFlag:
		if !inbox[1].has(imap.FlagDeleted) || !inbox[3].has(imap.FlagDeleted) || inbox[2].has(imap.FlagDeleted) {
			t.Errorf("flags: %+v", inbox)
		}
	case DeleteKeyword:
		if !inbox[1].has("$POP3Deleted") || !inbox[3].has("$POP3Deleted") || inbox[1].has(imap.FlagDeleted) || inbox[2].has("$POP3Deleted") {
			t.Errorf("flags: %+v", inbox)
		}
	case DeleteExpunge:
		checkGone(t, e, inbox, "")
	case DeleteTrash:
		checkGone(t, e, inbox, "Trash")
	case DeleteArchive:
		checkGone(t, e, inbox, "Archive")
	case DeleteKeep:
		if len(inbox) != 5 || len(inbox[1].flags)+len(inbox[3].flags) != 0 {
			t.Errorf("keep changed something: %+v", inbox)
		}
	}
}

// checkGone checks that messages 1 and 3 left inbox and, unless box is
// "", that box holds them.
func checkGone(t *testing.T, e *env, inbox map[imap.UID]msgState, box string) {
	t.Helper()
	if _, ok := inbox[1]; ok {
		t.Errorf("message 1 still in INBOX")
	}
	if _, ok := inbox[3]; ok {
		t.Errorf("message 3 still in INBOX")
	}
	if box == "" {
		return
	}
	moved := e.state(box)
	var bodies []string
	for _, m := range moved {
		bodies = append(bodies, m.body)
	}
	if len(moved) != 2 || !strings.Contains(strings.Join(bodies, ""), string(e.msgs[0])) || !strings.Contains(strings.Join(bodies, ""), string(e.msgs[2])) {
		t.Errorf("%s holds %d messages, want messages 1 and 3", box, len(moved))
	}
}

func checkWire(t *testing.T, w *wire, prof memupstream.Profile, pol DeletePolicy) {
	t.Helper()
	if l := w.lines(plainExpunge); len(l) > 0 {
		t.Errorf("plain EXPUNGE on the wire: %q", l)
	}
	if l := w.lines(`(?i)^\S+ ID `); len(l) > 0 {
		t.Errorf("ID sent without the capability: %q", l)
	}
	if l := w.lines(`(?i)^\S+ EXAMINE `); len(l) != 1 {
		t.Errorf("EXAMINE lines %q, want one", l)
	}
	if l := w.lines(`(?i)^\S+ SELECT `); len(l) != 1 {
		t.Errorf("SELECT lines %q, want one (at QUIT)", l)
	}
	if l := w.lines(`(?i)^\S+ (UID )?(STORE|COPY|MOVE|FETCH) [0-9]`); len(l) > 0 {
		for _, x := range l {
			if !strings.Contains(strings.ToUpper(x), "UID ") {
				t.Errorf("sequence-number command: %q", x)
			}
		}
	}
	hasMove := len(w.lines(`(?i)^\S+ UID MOVE `)) > 0
	hasCopy := len(w.lines(`(?i)^\S+ UID COPY `)) > 0
	hasUIDExpunge := len(w.lines(`(?i)^\S+ UID EXPUNGE 1,3\r\n$`)) > 0
	switch pol {
	case DeleteTrash, DeleteArchive:
		if prof == memupstream.ProfileUIDPlus {
			if hasMove || !hasCopy || !hasUIDExpunge {
				t.Errorf("want UID COPY + UID EXPUNGE 1,3 without MOVE: move %v copy %v uidexpunge %v", hasMove, hasCopy, hasUIDExpunge)
			}
		} else if !hasMove || hasCopy {
			t.Errorf("want UID MOVE: move %v copy %v", hasMove, hasCopy)
		}
	case DeleteExpunge:
		if !hasUIDExpunge {
			t.Errorf("no UID EXPUNGE 1,3")
		}
	default:
		if hasMove || hasCopy || len(w.lines(`(?i)^\S+ UID EXPUNGE`)) > 0 {
			t.Errorf("%s policy moved or expunged", pol)
		}
	}
}

// TestFallbackToFlag: on a server without UIDPLUS, FallbackToFlag turns
// expunge, trash and archive into flag.
func TestFallbackToFlag(t *testing.T) {
	for _, pol := range []DeletePolicy{DeleteExpunge, DeleteTrash, DeleteArchive} {
		t.Run(string(pol), func(t *testing.T) {
			e := newEnv(t, memupstream.ProfileBare, seed(3), nil)
			md := e.login(e.backend(Policy{Delete: pol, FallbackToFlag: true}))
			if err := md.Commit(context.Background(), pop3front.Outcome{Deleted: []int{1}}); err != nil {
				t.Fatal(err)
			}
			inbox := e.state("INBOX")
			if len(inbox) != 3 || !inbox[2].has(imap.FlagDeleted) || inbox[1].has(imap.FlagDeleted) {
				t.Errorf("inbox %+v", inbox)
			}
			if l := e.wire.lines(`(?i)UID (EXPUNGE|COPY|MOVE)|^\S+ EXPUNGE`); len(l) > 0 {
				t.Errorf("wire: %q", l)
			}
		})
	}
}

func TestSeenPolicy(t *testing.T) {
	for _, seen := range []SeenPolicy{SeenQuit, SeenNever} {
		t.Run(string(seen), func(t *testing.T) {
			e := newEnv(t, memupstream.ProfileFull, seed(3), nil)
			md := e.login(e.backend(Policy{Delete: DeleteKeep, Seen: seen}))
			for i := range 3 {
				if _, err := retr(t, md, i); err != nil {
					t.Fatal(err)
				}
			}
			// TOP never sets \Seen, RETR uses BODY.PEEK: nothing yet.
			for uid, m := range e.state("INBOX") {
				if m.has(imap.FlagSeen) {
					t.Fatalf("message %d \\Seen before QUIT", uid)
				}
			}
			if err := md.Commit(context.Background(), pop3front.Outcome{Retrieved: []int{0, 2}}); err != nil {
				t.Fatal(err)
			}
			inbox := e.state("INBOX")
			want := seen == SeenQuit
			if inbox[1].has(imap.FlagSeen) != want || inbox[3].has(imap.FlagSeen) != want || inbox[2].has(imap.FlagSeen) {
				t.Errorf("inbox %+v", inbox)
			}
			selects := len(e.wire.lines(`(?i)^\S+ SELECT `))
			if (selects == 1) != want {
				t.Errorf("%d SELECTs; want a SELECT only when there is something to apply", selects)
			}
		})
	}
}

// TestNothingToApply: no deletes, nothing retrieved: LOGOUT without SELECT.
func TestNothingToApply(t *testing.T) {
	e := newEnv(t, memupstream.ProfileFull, seed(2), nil)
	md := e.login(e.backend(Policy{Delete: DeleteExpunge}))
	if err := md.Commit(context.Background(), pop3front.Outcome{}); err != nil {
		t.Fatal(err)
	}
	if l := e.wire.lines(`(?i)^\S+ (SELECT|UID STORE|LOGOUT)`); len(l) != 1 || !strings.Contains(l[0], "LOGOUT") {
		t.Errorf("wire: %q", l)
	}
	if err := md.Close(); err != nil {
		t.Errorf("Close after Commit: %v", err)
	}
}

// TestCloseChangesNothing: a session that ends without Commit (dropped
// connection) leaves the mailbox as it was (docs/design.md, invariant 1).
func TestCloseChangesNothing(t *testing.T) {
	e := newEnv(t, memupstream.ProfileFull, seed(3), nil)
	before := e.state("INBOX")
	md := e.login(e.backend(Policy{Delete: DeleteExpunge}))
	retr(t, md, 0)
	md.Close()
	after := e.state("INBOX")
	if fmt.Sprint(before) != fmt.Sprint(after) {
		t.Errorf("changed: %v -> %v", before, after)
	}
	if l := e.wire.lines(`(?i)^\S+ (SELECT|UID STORE|UID EXPUNGE|UID MOVE|UID COPY) `); len(l) > 0 {
		t.Errorf("wire: %q", l)
	}
}

// TestMoveFallbackCopyFails: without MOVE, a failed COPY (target missing
// and cannot be created) must leave the source untouched: no \Deleted, no
// expunge (go-imap's Move fallback would have expunged it anyway).
func TestMoveFallbackCopyFails(t *testing.T) {
	w := &wire{}
	srv, err := memupstream.Start("127.0.0.1:0", memupstream.Options{Profile: memupstream.ProfileUIDPlus, Wire: w, RefuseCreate: true})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	srv.AddUser(testUser, testPass)
	msgs := seed(3)
	for _, m := range msgs {
		srv.Append(testUser, "INBOX", m)
	}
	e := &env{t: t, srv: srv, wire: w, msgs: msgs}
	md := e.login(e.backend(Policy{Delete: DeleteTrash}))
	err = md.Commit(context.Background(), pop3front.Outcome{Deleted: []int{0, 1}})
	pe := wantCode(t, err, pop3front.CodeSysTemp)
	if pe.Text != commitText {
		t.Errorf("text %q, want %q", pe.Text, commitText)
	}
	inbox := e.state("INBOX")
	if len(inbox) != 3 {
		t.Fatalf("INBOX has %d messages, want %d", len(inbox), 3)
	}
	for uid, m := range inbox {
		if len(m.flags) != 0 {
			t.Errorf("message %d flags %v", uid, m.flags)
		}
	}
	if l := w.lines(`(?i)^\S+ UID (STORE|EXPUNGE)|^\S+ EXPUNGE`); len(l) > 0 {
		t.Errorf("wire after failed COPY: %q", l)
	}
	if l := w.lines(`(?i)^\S+ (UID COPY|CREATE) `); len(l) != 2 {
		t.Errorf("want one UID COPY and one CREATE: %q", l)
	}
}

// TestUIDValidityChange: the mailbox was deleted and recreated between
// login and QUIT; UIDs now name other messages: apply nothing.
func TestUIDValidityChange(t *testing.T) {
	e := newEnv(t, memupstream.ProfileFull, seed(3), nil)
	md := e.login(e.backend(Policy{Delete: DeleteExpunge}))
	e.imapDo(func(c *imapclient.Client) error {
		if err := c.Delete("INBOX").Wait(); err != nil {
			return err
		}
		return c.Create("INBOX", nil).Wait()
	})
	for _, m := range seed(3) {
		e.srv.Append(testUser, "INBOX", m)
	}
	err := md.Commit(context.Background(), pop3front.Outcome{Deleted: []int{0, 1, 2}, Retrieved: []int{0}})
	pe := wantCode(t, err, pop3front.CodeSysTemp)
	if !strings.Contains(pe.Err.Error(), "UIDVALIDITY") {
		t.Errorf("cause %v", pe.Err)
	}
	inbox := e.state("INBOX")
	if len(inbox) != 3 {
		t.Fatalf("INBOX has %d messages, want %d", len(inbox), 3)
	}
	for uid, m := range inbox {
		if len(m.flags) != 0 {
			t.Errorf("message %d flags %v", uid, m.flags)
		}
	}
	if l := e.wire.lines(`(?i)^\S+ UID (STORE|EXPUNGE)`); len(l) > 0 {
		t.Errorf("wire: %q", l)
	}
}

// TestHiddenMessages: the snapshot hides what the policy already marked.
func TestHiddenMessages(t *testing.T) {
	flags := map[int][]imap.Flag{1: {"$POP3Deleted"}, 2: {imap.FlagDeleted}, 3: {imap.FlagSeen}}
	cases := []struct {
		pol  DeletePolicy
		want []int // message numbers (1-based seed order) visible
	}{
		{DeleteFlag, []int{1, 2, 4}},
		{DeleteKeyword, []int{1, 4}},
		{DeleteKeep, []int{1, 2, 4}},
		{DeleteExpunge, []int{1, 2, 4}},
	}
	for _, c := range cases {
		t.Run(string(c.pol), func(t *testing.T) {
			e := newEnv(t, memupstream.ProfileFull, seed(4), flags)
			md := e.login(e.backend(Policy{Delete: c.pol}))
			var got []int
			for _, mi := range md.Messages() {
				var uid, uv uint32
				fmt.Sscanf(mi.UIDL, "%08x%08x", &uid, &uv)
				got = append(got, int(uid))
			}
			if fmt.Sprint(got) != fmt.Sprint(c.want) {
				t.Errorf("visible %v, want %v", got, c.want)
			}
			// Message numbers map to the visible messages, in UID order.
			for i, n := range c.want {
				body, err := retr(t, md, i)
				if err != nil || string(body) != string(e.msgs[n-1]) {
					t.Errorf("RETR %d: %v", i+1, err)
				}
			}
		})
	}
}

// TestKeywordNotPermanent: never reached with imapmemserver (PERMANENTFLAGS
// has \*); the check itself is unit-tested.
func TestPermanent(t *testing.T) {
	if !permanent([]imap.Flag{imap.FlagSeen, imap.FlagWildcard}, "$POP3Deleted") ||
		!permanent([]imap.Flag{"$pop3deleted"}, "$POP3Deleted") ||
		permanent([]imap.Flag{imap.FlagSeen, imap.FlagDeleted}, "$POP3Deleted") {
		t.Error("permanent")
	}
}

func TestCommitBadIndex(t *testing.T) {
	e := newEnv(t, memupstream.ProfileFull, seed(2), nil)
	md := e.login(e.backend(Policy{}))
	err := md.Commit(context.Background(), pop3front.Outcome{Deleted: []int{0, 7}})
	wantCode(t, err, pop3front.CodeSysTemp)
	if inbox := e.state("INBOX"); inbox[1].has(imap.FlagDeleted) {
		t.Error("applied despite a bad index")
	}
	if errors.Is(err, pop3front.ErrExpunged) {
		t.Error("unexpected")
	}
}
