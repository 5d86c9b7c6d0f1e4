package imapback

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/popbridge/popbridge/internal/memupstream"
	"github.com/popbridge/popbridge/pop3front"
)

func fakeLogin(t *testing.T, f *fakeUpstream) pop3front.Maildrop {
	t.Helper()
	md, err := f.backend(t).Login(context.Background(), &pop3front.LoginRequest{Username: "u", Password: "p"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { md.Close() })
	return md
}

// TestTruncatedLiteral: the upstream declares {100}, sends 50 octets and
// closes. go-imap reads that as a complete literal; the stream must not.
func TestTruncatedLiteral(t *testing.T) {
	f := startFake(t, &fakeUpstream{sizes: []int{100}, fetch: func(w io.Writer, tag, line string) bool {
		fmt.Fprintf(w, "* 1 FETCH (UID 1 RFC822.SIZE 100 BODY[] {100}\r\n%s", strings.Repeat("x", 50))
		return false
	}})
	md := fakeLogin(t, f)
	r, err := md.Open(context.Background(), 0, pop3front.Section{})
	if err != nil {
		t.Fatal(err)
	}
	data, err := io.ReadAll(r)
	if err == nil {
		t.Fatalf("read %d octets and no error", len(data))
	}
	if len(data) > 50 {
		t.Errorf("read %d octets", len(data))
	}
	r.Close()
	wantCode(t, md.Noop(context.Background()), pop3front.CodeSysTemp)
}

// TestSizeMismatch: servers that send a substitute (Courier: a 129-octet
// "message unavailable", with BODY[] before UID) or another message (UW)
// for an expunged UID: ErrExpunged before any byte, connection still
// usable.
func TestSizeMismatch(t *testing.T) {
	cases := map[string]string{
		"courier-order": "* 1 FETCH (BODY[] {129}\r\n%s UID 1 RFC822.SIZE 129)\r\n",
		"uid-first":     "* 1 FETCH (UID 1 RFC822.SIZE 129 BODY[] {129}\r\n%s)\r\n",
		"literal-only":  "* 1 FETCH (UID 1 RFC822.SIZE 100 BODY[] {129}\r\n%s)\r\n",
	}
	for name, resp := range cases {
		t.Run(name, func(t *testing.T) {
			f := startFake(t, &fakeUpstream{sizes: []int{100}, fetch: func(w io.Writer, tag, line string) bool {
				fmt.Fprintf(w, resp, strings.Repeat("s", 129))
				fmt.Fprintf(w, "%s OK done\r\n", tag)
				return true
			}})
			md := fakeLogin(t, f)
			if _, err := md.Open(context.Background(), 0, pop3front.Section{}); !errors.Is(err, pop3front.ErrExpunged) {
				t.Fatalf("Open: %v, want ErrExpunged", err)
			}
			if err := md.Noop(context.Background()); err != nil {
				t.Errorf("connection unusable after a substitute: %v", err)
			}
		})
	}
}

// TestItemOrder: the right message with BODY[] before UID (Courier)
// streams byte-exact; one whose trailing UID is another is an error.
func TestItemOrder(t *testing.T) {
	body := strings.Repeat("b", 98) + "\r\n"
	for _, tc := range []struct {
		uid  int
		good bool
	}{{1, true}, {9, false}} {
		f := startFake(t, &fakeUpstream{sizes: []int{100}, fetch: func(w io.Writer, tag, line string) bool {
			fmt.Fprintf(w, "* 1 FETCH (BODY[] {100}\r\n%s UID %d RFC822.SIZE 100)\r\n%s OK done\r\n", body, tc.uid, tag)
			return true
		}})
		md := fakeLogin(t, f)
		data, err := retr(t, md, 0)
		if tc.good && (err != nil || string(data) != body) {
			t.Errorf("uid %d: %q, %v", tc.uid, data, err)
		}
		if !tc.good && err == nil {
			t.Errorf("uid %d: no error", tc.uid)
		}
	}
}

// TestExpungeIssued: Dovecot answers BODY[] NIL with OK [EXPUNGEISSUED].
func TestExpungeIssued(t *testing.T) {
	f := startFake(t, &fakeUpstream{sizes: []int{100}, fetch: func(w io.Writer, tag, line string) bool {
		fmt.Fprintf(w, "* 1 FETCH (UID 1 RFC822.SIZE 0 BODY[] NIL)\r\n%s OK [EXPUNGEISSUED] Some messages were expunged\r\n", tag)
		return true
	}})
	md := fakeLogin(t, f)
	if _, err := md.Open(context.Background(), 0, pop3front.Section{}); !errors.Is(err, pop3front.ErrExpunged) {
		t.Fatalf("Open: %v", err)
	}
	if _, err := md.Open(context.Background(), 0, pop3front.Section{Top: true, BodyLines: 1}); !errors.Is(err, pop3front.ErrExpunged) {
		t.Fatalf("Open TOP: %v", err)
	}
}

// TestExpungedMidSession: another device expunges message 2 during the
// session: it still counts, Open says expunged, the others are served
// byte-exact, and a DELE of it is a no-op at QUIT.
func TestExpungedMidSession(t *testing.T) {
	for _, prof := range profiles {
		t.Run(string(prof), func(t *testing.T) {
			e := newEnv(t, prof, seed(4), nil)
			md := e.login(e.backend(Policy{Delete: DeleteFlag}))
			e.imapDo(func(c *imapclient.Client) error {
				if _, err := c.Select("INBOX", nil).Wait(); err != nil {
					return err
				}
				if err := c.Store(imap.UIDSetNum(2), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Flags: []imap.Flag{imap.FlagDeleted}}, nil).Close(); err != nil {
					return err
				}
				return c.Expunge().Close() // the other device may
			})
			if n := len(md.Messages()); n != 4 {
				t.Fatalf("%d messages, want %d", n, 4)
			}
			if _, err := md.Open(context.Background(), 1, pop3front.Section{}); !errors.Is(err, pop3front.ErrExpunged) {
				t.Fatalf("RETR 2: %v", err)
			}
			if _, err := md.Open(context.Background(), 1, pop3front.Section{Top: true}); !errors.Is(err, pop3front.ErrExpunged) {
				t.Fatalf("TOP 2: %v", err)
			}
			for _, i := range []int{0, 2, 3} {
				data, err := retr(t, md, i)
				if err != nil || !bytes.Equal(data, e.msgs[i]) {
					t.Fatalf("RETR %d: %v", i+1, err)
				}
			}
			if err := md.Commit(context.Background(), pop3front.Outcome{Deleted: []int{1, 3}}); err != nil {
				t.Fatal(err)
			}
			inbox := e.state("INBOX")
			if len(inbox) != 3 || !inbox[4].has(imap.FlagDeleted) || inbox[1].has(imap.FlagDeleted) || inbox[3].has(imap.FlagDeleted) {
				t.Errorf("inbox %+v", inbox)
			}
		})
	}
}

// TestPartialClose: closing a RETR stream early tears the connection down
// (documented): no deadlock, later calls fail with SYS/TEMP, Close works.
func TestPartialClose(t *testing.T) {
	big := []byte("Subject: big\r\n\r\n" + strings.Repeat(strings.Repeat("z", 998)+"\r\n", 1000))
	e := newEnv(t, memupstream.ProfileFull, [][]byte{big, seed(1)[0]}, nil)
	md := e.login(e.backend(Policy{}))
	r, err := md.Open(context.Background(), 0, pop3front.Section{})
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 1000)
	if _, err := io.ReadFull(r, buf); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { r.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Close on a partial stream hangs")
	}
	if _, err := md.Open(context.Background(), 1, pop3front.Section{}); err == nil {
		t.Fatal("Open after teardown succeeded")
	} else {
		wantCode(t, err, pop3front.CodeSysTemp)
	}
	wantCode(t, md.Commit(context.Background(), pop3front.Outcome{Deleted: []int{1}}), pop3front.CodeSysTemp)
	if err := md.Close(); err != nil {
		t.Error(err)
	}
	// The upstream mailbox lock was released: another client can fetch.
	if inbox := e.state("INBOX"); len(inbox) != 2 || inbox[2].has(imap.FlagDeleted) {
		t.Errorf("inbox %+v", inbox)
	}
}

// TestCloseWithOpenStream: Maildrop.Close while a stream is open (session
// shutdown) does not hang.
func TestCloseWithOpenStream(t *testing.T) {
	big := []byte("Subject: big\r\n\r\n" + strings.Repeat(strings.Repeat("z", 998)+"\r\n", 1000))
	e := newEnv(t, memupstream.ProfileFull, [][]byte{big}, nil)
	md := e.login(e.backend(Policy{}))
	r, err := md.Open(context.Background(), 0, pop3front.Section{})
	if err != nil {
		t.Fatal(err)
	}
	r.Read(make([]byte, 10))
	closeMidStream(t, md, r, 5*time.Second)
}

// closeMidStream closes md while r is partly read: Close must return
// within limit, and r must then end with an error, never EOF.
func closeMidStream(t *testing.T, md pop3front.Maildrop, r io.ReadCloser, limit time.Duration) {
	t.Helper()
	done := make(chan struct{})
	go func() { md.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(limit):
		t.Fatal("Close hangs with a stream open")
	}
	if _, err := io.ReadAll(r); err == nil {
		t.Error("stream read to a clean end after Close")
	}
	r.Close()
}

// TestContextCancelStream: cancelling the context of Open ends the stream
// with an error, never EOF.
func TestContextCancelStream(t *testing.T) {
	big := []byte("Subject: big\r\n\r\n" + strings.Repeat(strings.Repeat("z", 998)+"\r\n", 1000))
	e := newEnv(t, memupstream.ProfileFull, [][]byte{big}, nil)
	md := e.login(e.backend(Policy{}))
	ctx, cancel := context.WithCancel(context.Background())
	r, err := md.Open(ctx, 0, pop3front.Section{})
	if err != nil {
		t.Fatal(err)
	}
	r.Read(make([]byte, 10))
	cancel()
	if _, err := io.ReadAll(r); err == nil {
		t.Error("stream read to EOF after cancel")
	}
	r.Close()
}

func TestTop(t *testing.T) {
	var body strings.Builder
	for i := range 60 {
		fmt.Fprintf(&body, "line %02d %s\r\n", i, strings.Repeat("t", 200))
	}
	header := "From: a@example.org\r\nSubject: top\r\n\r\n"
	msg := []byte(header + body.String())
	e := newEnv(t, memupstream.ProfileFull, [][]byte{msg, []byte("Subject: short\r\n\r\none\r\ntwo\r\n")}, nil)
	md := e.login(e.backend(Policy{}))
	top := func(i, n int) string {
		t.Helper()
		r, err := md.Open(context.Background(), i, pop3front.Section{Top: true, BodyLines: n})
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		data, err := io.ReadAll(r)
		if err != nil {
			t.Fatal(err)
		}
		return string(data)
	}
	if got := top(0, 0); got != header {
		t.Errorf("TOP 1 0 = %q, want %q", got, header)
	}
	for _, n := range []int{1, 5, 40, 60, 1000} {
		got := top(0, n)
		if !strings.HasPrefix(string(msg), got) {
			t.Fatalf("TOP 1 %d is not a prefix of the message", n)
		}
		if lines := strings.Count(got[len(header):], "\n"); lines < min(n, 60) {
			t.Errorf("TOP 1 %d: %d body lines", n, lines)
		}
	}
	if got := top(1, 10); got != "Subject: short\r\n\r\none\r\ntwo\r\n" {
		t.Errorf("TOP 2 10 = %q, want %q", got, "Subject: short\r\n\r\none\r\ntwo\r\n")
	}
	if n := len(e.wire.lines(`(?i)BODY\.PEEK\[TEXT\]<[1-9]`)); n == 0 {
		t.Error("no follow-up partial fetched for TOP 1 40")
	}
	if l := e.wire.lines(`(?i)BODY\[`); len(l) > 0 {
		t.Errorf("non-PEEK fetch: %q", l)
	}
	// A TOP stream closed early leaves the connection usable.
	r, err := md.Open(context.Background(), 0, pop3front.Section{Top: true, BodyLines: 60})
	if err != nil {
		t.Fatal(err)
	}
	r.Read(make([]byte, 5))
	r.Close()
	if err := md.Noop(context.Background()); err != nil {
		t.Error(err)
	}
	for uid, m := range e.state("INBOX") {
		if m.has(imap.FlagSeen) {
			t.Errorf("TOP set \\Seen on %d", uid)
		}
	}
}

func TestUIDL(t *testing.T) {
	if got := uidl(0x1a, 0xdeadbeef); got != "0000001adeadbeef" {
		t.Errorf("uidl = %q, want %q", got, "0000001adeadbeef")
	}
	e := newEnv(t, memupstream.ProfileFull, seed(3), nil)
	md := e.login(e.backend(Policy{}))
	var sel *imap.SelectData
	e.imapDo(func(c *imapclient.Client) (err error) {
		sel, err = c.Select("INBOX", &imap.SelectOptions{ReadOnly: true}).Wait()
		return err
	})
	for i, mi := range md.Messages() {
		want := fmt.Sprintf("%08x%08x", i+1, sel.UIDValidity)
		if mi.UIDL != want || mi.Size != int64(len(e.msgs[i])) {
			t.Errorf("message %d: %+v, want UIDL %s size %d", i+1, mi, want, len(e.msgs[i]))
		}
	}
}

// TestEmptyMailbox: no FETCH at all (a sequence FETCH 1:* is BAD or NO on
// several servers).
func TestEmptyMailbox(t *testing.T) {
	for _, prof := range profiles {
		e := newEnv(t, prof, nil, nil)
		md := e.login(e.backend(Policy{}))
		if n := len(md.Messages()); n != 0 {
			t.Errorf("%d messages, want %d", n, 0)
		}
		if l := e.wire.lines(`(?i)FETCH`); len(l) > 0 {
			t.Errorf("%s: FETCH sent: %q", prof, l)
		}
	}
}

// TestSnapshotLarge: many messages stream into the snapshot in order.
func TestSnapshotLarge(t *testing.T) {
	const n = 3000
	msgs := make([][]byte, n)
	for i := range msgs {
		msgs[i] = fmt.Appendf(nil, "Subject: %d\r\n\r\nx\r\n", i)
	}
	e := newEnv(t, memupstream.ProfileFull, msgs, nil)
	md := e.login(e.backend(Policy{}))
	got := md.Messages()
	if len(got) != n {
		t.Fatalf("%d messages, want %d", len(got), n)
	}
	for i, mi := range got {
		if mi.Size != int64(len(msgs[i])) || !strings.HasPrefix(mi.UIDL, fmt.Sprintf("%08x", i+1)) {
			t.Fatalf("message %d: %+v", i+1, mi)
		}
	}
	if l := e.wire.lines(`(?i)FETCH`); len(l) != 1 || !strings.Contains(l[0], "UID FETCH 1:* (UID") {
		t.Errorf("snapshot commands: %q", l)
	}
}
