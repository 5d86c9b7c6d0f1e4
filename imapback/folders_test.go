package imapback

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/popbridge/popbridge/internal/memupstream"
	"github.com/popbridge/popbridge/pop3front"
)

// junkMsgs returns n messages of the same sizes as seed(n) or
// prefetchMsgs(n), with other content: a fetch from the wrong folder
// passes every size check and only a byte comparison catches it.
func junkMsgs(in [][]byte) [][]byte {
	var out [][]byte
	for _, m := range in {
		out = append(out, bytes.ReplaceAll(m, []byte("example.org"), []byte("example.net")))
	}
	return out
}

// newFolderEnv is newEnv with Junk holding junk.
func newFolderEnv(t *testing.T, prof memupstream.Profile, inbox, junk [][]byte) *env {
	t.Helper()
	e := newEnv(t, prof, inbox, nil)
	if err := e.srv.CreateMailbox(testUser, "Junk"); err != nil {
		t.Fatal(err)
	}
	for _, m := range junk {
		if err := e.srv.Append(testUser, "Junk", m); err != nil {
			t.Fatal(err)
		}
	}
	return e
}

func withFolders(f ...string) func(*Config) {
	return func(c *Config) { c.Folders = f }
}

func uidValidityOfBox(t *testing.T, e *env, box string) uint32 {
	var v uint32
	e.imapDo(func(c *imapclient.Client) error {
		sel, err := c.Select(box, &imap.SelectOptions{ReadOnly: true}).Wait()
		if err == nil {
			v = sel.UIDValidity
		}
		return err
	})
	return v
}

// TestFoldersListing: INBOX then Junk, each by UID; a missing folder is
// skipped; INBOX UIDLs unchanged, Junk's tagged, all unique and stable;
// RETR and TOP from both folders, interleaved, byte-exact.
func TestFoldersListing(t *testing.T) {
	inbox := seed(3)
	junk := junkMsgs(seed(2))
	e := newFolderEnv(t, memupstream.ProfileFull, inbox, junk)
	b := e.backend(Policy{}, withFolders("INBOX", "Junk", "Spam"))
	md := e.login(b)
	all := append(slices.Clone(inbox), junk...)
	if n := len(md.Messages()); n != len(all) {
		t.Fatalf("%d messages, want %d", n, len(all))
	}
	l := uidls(md)
	checkUIDLs(t, l)
	uvIn, uvJunk := uidValidityOfBox(t, e, "INBOX"), uidValidityOfBox(t, e, "Junk")
	for i := range 3 {
		if want := uidl(imap.UID(i+1), uvIn); l[i] != want {
			t.Errorf("INBOX UIDL %d = %q, want %q (unchanged)", i+1, l[i], want)
		}
	}
	for i := range 2 {
		if want := uidl(imap.UID(i+1), uvJunk) + "-" + folderTag("Junk"); l[3+i] != want {
			t.Errorf("Junk UIDL %d = %q, want %q", i+1, l[3+i], want)
		}
	}
	for i, mi := range md.Messages() {
		if mi.Size != int64(len(all[i])) {
			t.Errorf("message %d: size %d, want %d", i+1, mi.Size, len(all[i]))
		}
	}
	if got := attrMap(md)["folders"]; got != "INBOX=3,Junk=2,Spam=missing" {
		t.Errorf("folders attr %q, want %q", got, "INBOX=3,Junk=2,Spam=missing")
	}
	for _, i := range []int{3, 0, 4, 1, 2, 3} {
		body, err := retr(t, md, i)
		if err != nil || !bytes.Equal(body, all[i]) {
			t.Fatalf("RETR %d: %q, %v", i+1, body, err)
		}
		r, err := md.Open(context.Background(), i, pop3front.Section{Top: true, BodyLines: 1})
		if err != nil {
			t.Fatalf("TOP %d: %v", i+1, err)
		}
		top, err := io.ReadAll(r)
		r.Close()
		hdr := all[i][:bytes.Index(all[i], []byte("\r\n\r\n"))+4]
		if err != nil || !bytes.HasPrefix(top, hdr) || !bytes.HasPrefix(all[i], top) {
			t.Fatalf("TOP %d 1: %q, %v", i+1, top, err)
		}
	}
	md.Close()
	if l2 := uidls(e.login(b)); !slices.Equal(l, l2) {
		t.Errorf("UIDLs differ between sessions:\n%q\n%q", l, l2)
	}

	// Global identities: a copy of an INBOX message in Junk is renamed.
	e.srv.Append(testUser, "Junk", inbox[0])
	lc := uidls(e.login(e.backend(Policy{UIDL: UIDLContent}, withFolders("INBOX", "Junk"))))
	checkUIDLs(t, lc)
	if len(lc) != 6 || lc[5] != lc[0]+"-2" {
		t.Errorf("content UIDLs %q: want the copy renamed %q", lc, lc[0]+"-2")
	}
	if single := uidls(e.login(e.backend(Policy{UIDL: UIDLContent}))); !slices.Equal(single, lc[:3]) {
		t.Errorf("INBOX content UIDLs changed by adding a folder: %q, %q", single, lc[:3])
	}
}

// TestFoldersCommit: DELE and RETR in both folders apply to the right
// folder, by UID, under each policy.
func TestFoldersCommit(t *testing.T) {
	for _, pol := range []DeletePolicy{DeleteFlag, DeleteExpunge, DeleteTrash, DeleteKeep} {
		t.Run(string(pol), func(t *testing.T) {
			inbox, junk := seed(3), junkMsgs(seed(3))
			e := newFolderEnv(t, memupstream.ProfileFull, inbox, junk)
			md := e.login(e.backend(Policy{Delete: pol}, withFolders("INBOX", "Junk")))
			// DELE INBOX 2 and Junk 1 and 3; RETR INBOX 1 and Junk 2.
			for _, i := range []int{0, 4} {
				if _, err := retr(t, md, i); err != nil {
					t.Fatal(err)
				}
			}
			commit(t, md, pop3front.Outcome{Deleted: []int{1, 3, 5}, Retrieved: []int{0, 4}})
			if l := e.wire.lines(plainExpunge); len(l) > 0 {
				t.Errorf("plain EXPUNGE sent: %q", l)
			}
			in, jk, trash := e.state("INBOX"), e.state("Junk"), e.state("Trash")
			if !in[1].has(imap.FlagSeen) || !jk[2].has(imap.FlagSeen) || in[3].has(imap.FlagSeen) || jk[3].has(imap.FlagSeen) {
				t.Errorf("\\Seen: INBOX %+v Junk %+v", in, jk)
			}
			deletedIn := func(box map[imap.UID]msgState, uid imap.UID) bool {
				s, ok := box[uid]
				switch pol {
				case DeleteFlag:
					return ok && s.has(imap.FlagDeleted)
				case DeleteKeep:
					return ok && !s.has(imap.FlagDeleted)
				}
				return !ok
			}
			if !deletedIn(in, 2) || !deletedIn(jk, 1) || !deletedIn(jk, 3) {
				t.Errorf("%s: INBOX %+v Junk %+v", pol, in, jk)
			}
			if in[1].has(imap.FlagDeleted) || in[3].has(imap.FlagDeleted) || jk[2].has(imap.FlagDeleted) || len(in) < 2 || len(jk) < 1 {
				t.Errorf("other messages changed: INBOX %+v Junk %+v", in, jk)
			}
			if pol == DeleteTrash {
				var bodies []string
				for _, s := range trash {
					bodies = append(bodies, s.body)
				}
				slices.Sort(bodies)
				want := []string{string(inbox[1]), string(junk[0]), string(junk[2])}
				slices.Sort(want)
				if !slices.Equal(bodies, want) {
					t.Errorf("Trash holds %q, want %q", bodies, want)
				}
			}
		})
	}
}

// TestFoldersTrashInTrash: under the trash policy, DELE of a message of
// the Trash folder itself flags it \Deleted where it is.
func TestFoldersTrashInTrash(t *testing.T) {
	e := newEnv(t, memupstream.ProfileFull, seed(1), nil)
	e.srv.CreateMailbox(testUser, "Trash")
	e.srv.Append(testUser, "Trash", junkMsgs(seed(1))[0])
	md := e.login(e.backend(Policy{Delete: DeleteTrash}, withFolders("INBOX", "Trash")))
	commit(t, md, pop3front.Outcome{Deleted: []int{0, 1}})
	in, trash := e.state("INBOX"), e.state("Trash")
	if len(in) != 0 || len(trash) != 2 {
		t.Fatalf("INBOX %+v Trash %+v", in, trash)
	}
	if !trash[1].has(imap.FlagDeleted) || trash[2].has(imap.FlagDeleted) {
		t.Errorf("Trash %+v: want the DELE'd one flagged, the moved one not", trash)
	}
	if n := len(uidls(e.login(e.backend(Policy{Delete: DeleteTrash}, withFolders("INBOX", "Trash"))))); n != 1 {
		t.Errorf("%d messages listed after QUIT, want 1", n)
	}
}

// TestFoldersUIDValidityChange: Junk's UIDVALIDITY changes during the
// session: QUIT applies nothing, in any folder, and says SYS/TEMP.
func TestFoldersUIDValidityChange(t *testing.T) {
	inbox, junk := seed(2), junkMsgs(seed(2))
	e := newFolderEnv(t, memupstream.ProfileFull, inbox, junk)
	md := e.login(e.backend(Policy{Delete: DeleteExpunge}, withFolders("INBOX", "Junk")))
	before := e.state("INBOX")
	e.recreate("Junk", junk)
	if _, err := retr(t, md, 0); err != nil {
		t.Fatal(err)
	}
	err := md.Commit(context.Background(), pop3front.Outcome{Deleted: []int{0, 1, 2}, Retrieved: []int{0}})
	wantCode(t, err, pop3front.CodeSysTemp)
	if !strings.Contains(err.Error(), "UIDVALIDITY") {
		t.Errorf("error %v", err)
	}
	if after := e.state("INBOX"); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Errorf("INBOX changed:\n%v\n%v", before, after)
	}
	if l := e.wire.lines(`(?i)^\S+ UID (STORE|EXPUNGE)`); len(l) > 0 {
		t.Errorf("changes sent: %q", l)
	}
}

// TestFoldersRetrAfterUIDValidityChange: RETR from a folder whose
// UIDVALIDITY changed since login ends the session (SYS/TEMP), rather
// than sending another message.
func TestFoldersRetrAfterUIDValidityChange(t *testing.T) {
	inbox, junk := seed(2), junkMsgs(seed(2))
	e := newFolderEnv(t, memupstream.ProfileFull, inbox, junk)
	md := e.login(e.backend(Policy{}, withFolders("INBOX", "Junk")))
	if _, err := retr(t, md, 0); err != nil { // INBOX examined now
		t.Fatal(err)
	}
	e.recreate("Junk", junk[1:])
	_, err := retr(t, md, 2)
	wantCode(t, err, pop3front.CodeSysTemp)
}

// TestFoldersMissing: a missing folder is skipped; none existing fails
// the login like a missing mailbox.
func TestFoldersMissing(t *testing.T) {
	e := newEnv(t, memupstream.ProfileFull, seed(2), nil)
	md := e.login(e.backend(Policy{}, withFolders("Nope", "INBOX")))
	l := uidls(md)
	if len(l) != 2 || !strings.HasSuffix(l[0], "-"+folderTag("INBOX")) {
		t.Errorf("UIDLs %q: INBOX is not the first configured folder, so it is tagged", l)
	}
	_, err := e.backend(Policy{}, withFolders("Nope", "Neither")).Login(context.Background(),
		&pop3front.LoginRequest{Username: testUser, Password: testPass})
	wantCode(t, err, pop3front.CodeSysTemp)
}

// TestFoldersPrefetch: RETRs pipelined across the folder boundary are
// byte-exact; prefetch batches hold one folder's messages only.
func TestFoldersPrefetch(t *testing.T) {
	inbox := prefetchMsgs(12)
	junk := junkMsgs(inbox)
	for i := range junk {
		junk[i] = bytes.Replace(junk[i], []byte("Subject: m"), []byte("Subject: j"), 1)
	}
	e := newFolderEnv(t, memupstream.ProfileFull, inbox, junk)
	md := e.login(e.backend(Policy{}, withFolders("INBOX", "Junk")))
	all := append(slices.Clone(inbox), junk...)
	for _, sec := range []pop3front.Section{{}, {Top: true}} {
		bodies, errs := openAll(t, md, seq(len(all)), 16, sec)
		for i, m := range all {
			if sec.Top {
				m = m[:bytes.Index(m, []byte("\r\n\r\n"))+4]
			}
			if errs[i] != nil || !bytes.Equal(bodies[i], m) {
				t.Fatalf("%+v message %d: %v %q, want %q", sec, i+1, errs[i], bodies[i], m)
			}
		}
	}
	if len(batchFetches(e.wire)) == 0 {
		t.Error("no batch fetch sent")
	}
	// Backwards, across the boundary again.
	bodies, errs := openAll(t, md, []int{13, 2, 14, 15, 3, 4}, 4, pop3front.Section{})
	for k, i := range []int{13, 2, 14, 15, 3, 4} {
		if errs[k] != nil || !bytes.Equal(bodies[k], all[i]) {
			t.Fatalf("message %d: %v", i+1, errs[k])
		}
	}
}

func TestFoldersConfig(t *testing.T) {
	for _, bad := range [][]string{{"INBOX", "inbox"}, {"Junk", "Junk"}, {""}, {"a\r\nb"}} {
		if _, err := New(Config{Address: "127.0.0.1:1", Security: SecurityNone, Folders: bad}); err == nil {
			t.Errorf("folders %q accepted", bad)
		}
	}
	if _, err := New(Config{Address: "127.0.0.1:1", Security: SecurityNone, Folders: []string{"INBOX", "Junk"}}); err != nil {
		t.Error(err)
	}
}
