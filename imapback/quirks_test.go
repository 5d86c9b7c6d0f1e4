package imapback

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/popbridge/popbridge/internal/fakeimap"
	"github.com/popbridge/popbridge/pop3front"
)

// --- the line filter ---------------------------------------------------

// filterAll runs in through a fresh lineFilter in chunks of size n.
func filterAll(in []byte, n int) []byte {
	var f lineFilter
	var out []byte
	for len(in) > 0 {
		k := min(n, len(in))
		out = f.write(out, in[:k])
		in = in[k:]
	}
	return f.flush(out)
}

func TestLineFilter(t *testing.T) {
	lit := "Subject: x\r\n\r\n* 2 EXPUNGED\r\n* 3 EXPUNGED\n"
	cases := []struct{ in, want string }{
		{"* 2 EXPUNGED\r\n", "* 2 EXPUNGE\r\n"},
		{"* 2 expunged\r\n", "* 2 expunge\r\n"},
		{"* 12 EXPUNGED\n* 0 EXISTS\r\n", "* 12 EXPUNGE\n* 0 EXISTS\r\n"},
		{"* 2 EXPUNGE\r\n", "* 2 EXPUNGE\r\n"},
		{"* 2 EXPUNGEDX\r\n", "* 2 EXPUNGEDX\r\n"},
		{"* 2 EXPUNGED \r\n", "* 2 EXPUNGED \r\n"},
		{"* EXPUNGED\r\n", "* EXPUNGED\r\n"},
		{"T1 OK * 2 EXPUNGED\r\n", "T1 OK * 2 EXPUNGED\r\n"},
		{"* OK x\r\n* 1 EXPUNGED\r\nT2 OK done\r\n", "* OK x\r\n* 1 EXPUNGE\r\nT2 OK done\r\n"},
		// Literal content is never touched, wherever its lines start.
		{fmt.Sprintf("* 1 FETCH (UID 1 BODY[] {%d}\r\n%s)\r\n* 4 EXPUNGED\r\n", len(lit), lit),
			fmt.Sprintf("* 1 FETCH (UID 1 BODY[] {%d}\r\n%s)\r\n* 4 EXPUNGE\r\n", len(lit), lit)},
		// go-imap accepts "{n} LF" and "{n} CRLF" too.
		{"* 1 FETCH (BODY[] {14} \r\n* 2 EXPUNGED\r\n)\r\n", "* 1 FETCH (BODY[] {14} \r\n* 2 EXPUNGED\r\n)\r\n"},
		{"* 1 FETCH (BODY[] {14}\n* 2 EXPUNGED\r\n)\r\n", "* 1 FETCH (BODY[] {14}\n* 2 EXPUNGED\r\n)\r\n"},
		// After a literal the line goes on, even after an empty one.
		{"* 1 FETCH (BODY[] {0}\r\n)\r\n* 2 EXPUNGED\r\n", "* 1 FETCH (BODY[] {0}\r\n)\r\n* 2 EXPUNGE\r\n"},
		// Only ever shortened by the rewrite: a held start that never
		// completes is passed on as it came.
		{"* 2 EXPUNG", "* 2 EXPUNG"},
		{"* 2 EXPUNGED\r", "* 2 EXPUNGED\r"},
	}
	for _, c := range cases {
		for _, n := range []int{1, 2, 3, 7, 1 << 20} {
			if got := filterAll([]byte(c.in), n); string(got) != c.want {
				t.Errorf("chunks of %d: %q\n got  %q\n want %q", n, c.in, got, c.want)
			}
			// The same through quirkConn, whose Read skips the filter
			// for reads wholly inside a literal.
			qc := newQuirkConn(&chunkConn{chunks: chunk([]byte(c.in), n)})
			if got, err := io.ReadAll(qc); err != nil || string(got) != c.want {
				t.Errorf("quirkConn, chunks of %d: %q\n got  %q, %v\n want %q", n, c.in, got, err, c.want)
			}
		}
	}
}

func chunk(b []byte, n int) [][]byte {
	var out [][]byte
	for len(b) > 0 {
		k := min(n, len(b))
		out = append(out, b[:k:k])
		b = b[k:]
	}
	return out
}

// BenchmarkQuirkConnLiteral: a 1 MB FETCH literal read through quirkConn
// in 32 KiB reads, as go-imap reads a message body.
func BenchmarkQuirkConnLiteral(b *testing.B) {
	body := bytes.Repeat([]byte(strings.Repeat("q", 76)+"\r\n"), (1<<20)/78)
	resp := fmt.Appendf(nil, "* 1 FETCH (UID 1 BODY[] {%d}\r\n%s)\r\nT1 OK done\r\n", len(body), body)
	buf := make([]byte, 32<<10)
	b.SetBytes(int64(len(resp)))
	b.ReportAllocs()
	for b.Loop() {
		qc := newQuirkConn(&chunkConn{chunks: chunk(resp, 32<<10)})
		for {
			if _, err := qc.Read(buf); err != nil {
				break
			}
		}
	}
}

// FuzzLineFilter: the filter only ever changes "* n EXPUNGED" lines, and
// chunking never changes the result.
func FuzzLineFilter(f *testing.F) {
	f.Add([]byte("* 2 EXPUNGED\r\n* 1 FETCH (BODY[] {14}\r\n* 3 EXPUNGED\r\n)\r\n"), 3)
	f.Add([]byte("* 1 FETCH (BODY[] {0}\r\n)\r\n"), 1)
	f.Fuzz(func(t *testing.T, in []byte, n int) {
		if n <= 0 || n > 64 {
			n = 1
		}
		whole := filterAll(in, len(in)+1)
		if got := filterAll(in, n); !bytes.Equal(got, whole) {
			t.Fatalf("chunking changed the output: %q vs %q", got, whole)
		}
		if !bytes.Contains(bytes.ToUpper(in), []byte("EXPUNGED")) && !bytes.Equal(whole, in) {
			t.Fatalf("changed without an EXPUNGED line: %q -> %q", in, whole)
		}
		if len(whole) > len(in) {
			t.Fatalf("output grew: %q -> %q", in, whole)
		}
	})
}

// chunkConn is a net.Conn whose reads return the given chunks, then EOF.
type chunkConn struct {
	net.Conn
	chunks [][]byte
}

func (c *chunkConn) Read(p []byte) (int, error) {
	if len(c.chunks) == 0 {
		return 0, io.EOF
	}
	n := copy(p, c.chunks[0])
	c.chunks[0] = c.chunks[0][n:]
	if len(c.chunks[0]) == 0 {
		c.chunks = c.chunks[1:]
	}
	return n, nil
}

func TestQuirkConnEOFReleasesHeldBytes(t *testing.T) {
	qc := newQuirkConn(&chunkConn{chunks: [][]byte{[]byte("* OK hi\r\n* 3 EXP")}})
	got, err := io.ReadAll(qc)
	if err != nil || string(got) != "* OK hi\r\n* 3 EXP" {
		t.Fatalf("%q %v", got, err)
	}
}

// A mailutils-style upstream sends "* n EXPUNGED" untagged, between
// fetches and in the middle of one, and a message whose body holds such
// lines: the session goes on and the body arrives byte for byte.
func TestExpungedNoticeToleratedEndToEnd(t *testing.T) {
	tricky := []byte("Subject: notices\r\n\r\n* 1 EXPUNGED\r\n{5}\r\n* 2 EXPUNGED\r\n")
	plain := []byte("Subject: two\r\n\r\nhello\r\n")
	m1 := fakeimap.Msg{UID: 1, Body: tricky}
	m2 := fakeimap.Msg{UID: 2, Body: plain}
	caps := "IMAP4rev1 NAMESPACE ID IDLE LITERAL+ UNSELECT"
	srv := fakeimap.Start(t, fakeimap.S(
		fakeimap.Prelude(caps, 7, m1, m2),
		fakeimap.Expect(`UID FETCH 1 .*`),
		fakeimap.Send("* 2 EXPUNGED"),
		fakeimap.Literal(fmt.Sprintf("* 1 FETCH (UID 1 RFC822.SIZE %d BODY[] ", len(tricky)), tricky, ")"),
		fakeimap.Send("* 1 EXPUNGED"),
		fakeimap.SendTagged("OK UID FETCH Completed"),
		fakeimap.Expect(`NOOP`),
		fakeimap.Send("* 1 EXPUNGED"),
		fakeimap.SendTagged("OK NOOP Completed"),
		fakeimap.Expect(`UID FETCH 2 .*`),
		fakeimap.Literal(fmt.Sprintf("* 1 FETCH (UID 2 RFC822.SIZE %d BODY[] ", len(plain)), plain, ")"),
		fakeimap.SendTagged("OK UID FETCH Completed"),
		fakeimap.ExpectLogoutOrEOF(),
	))
	b := profileBackend(t, srv.Addr(), Policy{Delete: DeleteFlag}, nil)
	md := loginProfile(t, b)
	if got, err := retr(t, md, 0); err != nil || !bytes.Equal(got, tricky) {
		t.Fatalf("RETR 1: %q %v", got, err)
	}
	if err := md.Noop(context.Background()); err != nil {
		t.Fatalf("NOOP after * 1 EXPUNGED: %v", err)
	}
	if got, err := retr(t, md, 1); err != nil || !bytes.Equal(got, plain) {
		t.Fatalf("RETR 2: %q %v", got, err)
	}
	if err := md.Commit(context.Background(), pop3front.Outcome{}); err != nil {
		t.Fatal(err)
	}
}

// Without the filter go-imap v2 drops the connection on "* n EXPUNGED":
// the reason the filter exists. If a go-imap upgrade starts to accept it,
// this test says the filter may go.
func TestGoIMAPRejectsExpunged(t *testing.T) {
	srv := fakeimap.Start(t, fakeimap.S(
		fakeimap.Greeting("IMAP4rev1"),
		fakeimap.Expect(`NOOP`),
		fakeimap.Send("* 1 EXPUNGED"),
		fakeimap.SendTagged("OK done"),
		fakeimap.ExpectLogoutOrEOF(),
	))
	c, err := imapclient.DialInsecure(srv.Addr(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	err = c.Noop().Wait()
	// Let the script finish before the test's cleanup closes the server's
	// side: closing it mid-script fails the script's write.
	if !srv.WaitDone(0, 10*time.Second) {
		t.Error("the fake server's script did not end")
	}
	if err == nil {
		t.Skip("go-imap now accepts * n EXPUNGED; the filter in quirks.go is no longer needed")
	}
}

// --- quirk profiles: whole gateway sessions ------------------------------

type anomalies struct {
	mu sync.Mutex
	n  map[string]int
}

func (a *anomalies) UpstreamOp(string, time.Duration, error) {}
func (a *anomalies) Committed(string, int)                   {}
func (a *anomalies) Anomaly(kind string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.n == nil {
		a.n = map[string]int{}
	}
	a.n[kind]++
}
func (a *anomalies) get(kind string) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.n[kind]
}

func profileBackend(t *testing.T, addr string, p Policy, obs Observer) *Backend {
	t.Helper()
	b, err := New(Config{
		Address: addr, Security: SecurityNone, Policy: p,
		DialTimeout: 2 * time.Second, CommandTimeout: 2 * time.Second,
		Logger: testLogger(t), Observer: obs,
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func loginProfile(t *testing.T, b *Backend) pop3front.Maildrop {
	t.Helper()
	md, err := b.Login(context.Background(), &pop3front.LoginRequest{Username: testUser, Password: testPass, Mechanism: "USER"})
	if err != nil {
		t.Fatalf("Login: %v", err)
	}
	t.Cleanup(func() { md.Close() })
	return md
}

// profileSeed has distinct sizes, so a different message is never
// mistaken for the snapshotted one by its size alone.
func profileSeed() [][]byte { return seed(4) }

// checkCommands fails on what the gateway must never send: a plain
// EXPUNGE, a sequence-number FETCH (the snapshot and every fetch are by
// UID), and a read-write SELECT before QUIT.
func checkCommands(t *testing.T, mb *fakeimap.Mailbox, selects int) {
	t.Helper()
	n := 0
	for _, l := range mb.Commands() {
		_, cmd, _ := strings.Cut(l, ": ")
		f := strings.Fields(cmd)
		if len(f) < 2 {
			continue
		}
		switch strings.ToUpper(f[1]) {
		case "EXPUNGE":
			t.Errorf("plain EXPUNGE sent: %q", l)
		case "FETCH", "STORE", "COPY", "MOVE", "SEARCH":
			t.Errorf("sequence-number command sent: %q", l)
		case "SELECT":
			n++
		}
	}
	if n != selects {
		t.Errorf("%d read-write SELECTs, want %d", n, selects)
	}
}

func TestProfileDownload(t *testing.T) {
	for _, p := range fakeimap.Profiles() {
		t.Run(p.Name, func(t *testing.T) {
			msgs := profileSeed()
			mb := fakeimap.NewMailbox(1700000000, msgs...)
			srv := fakeimap.StartProfile(t, p, mb, 1)
			md := loginProfile(t, profileBackend(t, srv.Addr(), Policy{Delete: DeleteFlag, Seen: SeenNever}, nil))
			infos := md.Messages()
			if len(infos) != len(msgs) {
				t.Fatalf("%d messages, want %d", len(infos), len(msgs))
			}
			for i, m := range msgs {
				if infos[i].Size != int64(len(m)) || infos[i].UIDL != fmt.Sprintf("%08x%08x", i+1, 1700000000) {
					t.Errorf("message %d: %+v", i+1, infos[i])
				}
				got, err := retr(t, md, i)
				if err != nil || !bytes.Equal(got, m) {
					t.Errorf("RETR %d: %v, %q", i+1, err, got)
				}
			}
			top := readTop(t, md, 2, 0)
			if want := string(msgs[2][:bytes.Index(msgs[2], []byte("\r\n\r\n"))+4]); top != want {
				t.Errorf("TOP 3 0 = %q, want %q", top, want)
			}
			if err := md.Commit(context.Background(), pop3front.Outcome{Retrieved: []int{0, 1, 2, 3}}); err != nil {
				t.Fatal(err)
			}
			checkCommands(t, mb, 0) // nothing to apply: no SELECT at all
		})
	}
}

func readTop(t *testing.T, md pop3front.Maildrop, index, lines int) string {
	t.Helper()
	r, err := md.Open(context.Background(), index, pop3front.Section{Top: true, BodyLines: lines})
	if err != nil {
		t.Fatalf("TOP %d: %v", index+1, err)
	}
	defer r.Close()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("TOP %d: %v", index+1, err)
	}
	return string(b)
}

func TestProfileEmptyMailbox(t *testing.T) {
	for _, p := range fakeimap.Profiles() {
		t.Run(p.Name, func(t *testing.T) {
			mb := fakeimap.NewMailbox(5)
			srv := fakeimap.StartProfile(t, p, mb, 1)
			md := loginProfile(t, profileBackend(t, srv.Addr(), Policy{}, nil))
			if n := len(md.Messages()); n != 0 {
				t.Fatalf("%d messages, want %d", n, 0)
			}
			if err := md.Commit(context.Background(), pop3front.Outcome{}); err != nil {
				t.Fatal(err)
			}
			for _, l := range mb.Commands() {
				if strings.Contains(strings.ToUpper(l), "FETCH") {
					t.Errorf("fetch sent for an empty mailbox: %q", l)
				}
			}
			checkCommands(t, mb, 0)
		})
	}
}

// A phone expunges message 2 after the gateway's snapshot. Whatever the
// server answers (NIL, the original, a substitute, another message's
// bytes, or the original again), the gateway delivers either exactly the
// snapshotted message or "expunged"; never other bytes.
func TestProfilePhoneExpunge(t *testing.T) {
	for _, p := range fakeimap.Profiles() {
		t.Run(p.Name, func(t *testing.T) {
			msgs := profileSeed()
			mb := fakeimap.NewMailbox(9, msgs...)
			srv := fakeimap.StartProfile(t, p, mb, 1)
			obs := &anomalies{}
			md := loginProfile(t, profileBackend(t, srv.Addr(), Policy{Delete: DeleteFlag}, obs))
			mb.Expunge(2)
			for _, order := range [][]int{{1, 0, 2, 3}, {1}} {
				for _, i := range order {
					got, err := retr(t, md, i)
					switch {
					case err == nil && bytes.Equal(got, msgs[i]):
					case i == 1 && errors.Is(err, pop3front.ErrExpunged):
					default:
						t.Fatalf("RETR %d: %v, %q (want the original%s)", i+1, err, got, map[bool]string{true: " or expunged"}[i == 1])
					}
				}
			}
			topErr := func() error {
				r, err := md.Open(context.Background(), 1, pop3front.Section{Top: true, BodyLines: 1})
				if err == nil {
					defer r.Close()
					b, _ := io.ReadAll(r)
					if !bytes.HasPrefix(msgs[1], b) {
						t.Errorf("TOP 2 1 = %q: not the original's", b)
					}
				}
				return err
			}()
			if topErr != nil && !errors.Is(topErr, pop3front.ErrExpunged) {
				t.Fatalf("TOP 2: %v", topErr)
			}
			// Cyrus serves the original once, then has told the session
			// (EXPUNGE): the second RETR finds it gone. mailutils never
			// tells and keeps serving the original.
			wantGone := p.Expunged != fakeimap.ExpungedKeepServing
			if got := obs.get(AnomalyExpunged); (got == 1) != wantGone {
				t.Errorf("anomaly expunged = %d (want 1: %v)", got, wantGone)
			}
			wantMismatch := p.Expunged == fakeimap.ExpungedSubstitute || p.Expunged == fakeimap.ExpungedOtherMessage
			if got := obs.get(AnomalySizeMismatch); (got > 0) != wantMismatch {
				t.Errorf("anomaly size_mismatch = %d (want some: %v)", got, wantMismatch)
			}
			// DELE 2 and 3, QUIT: 3 is flagged, 2 (gone) is not
			// resurrected, nothing else is touched.
			if err := md.Commit(context.Background(), pop3front.Outcome{Deleted: []int{1, 2}}); err != nil {
				t.Fatalf("QUIT: %v", err)
			}
			for _, m := range mb.Messages("INBOX") {
				if deleted := slices.Contains(m.Flags, `\Deleted`); deleted != (m.UID == 3) {
					t.Errorf("UID %d flags %v", m.UID, m.Flags)
				}
			}
			checkCommands(t, mb, 1)
		})
	}
}

// mailutils resolves a UID above its last to its last message. The
// gateway DELEs the newest message, a phone expunges it, and QUIT must
// not flag the message that is now the newest.
func TestMailutilsLooseUIDsAtQuit(t *testing.T) {
	for _, c := range []struct {
		name    string
		gone    []uint32
		deleted []int
	}{
		{"above the last", []uint32{4}, []int{3}},             // STORE 4 would flag UID 3
		{"gap", []uint32{2}, []int{1}},                        // STORE 2 would be BAD: QUIT failing forever
		{"both", []uint32{2, 4}, []int{1, 3}},                 //
		{"kept ones still applied", []uint32{4}, []int{0, 3}}, // UID 1 flagged, nothing else
	} {
		t.Run(c.name, func(t *testing.T) {
			msgs := profileSeed()
			mb := fakeimap.NewMailbox(9, msgs...)
			srv := fakeimap.StartProfile(t, fakeimap.Mailutils, mb, 1)
			md := loginProfile(t, profileBackend(t, srv.Addr(), Policy{Delete: DeleteFlag}, nil))
			for _, i := range c.deleted {
				if _, err := retr(t, md, i); err != nil {
					t.Fatal(err)
				}
			}
			mb.Expunge(c.gone...)
			if err := md.Commit(context.Background(), pop3front.Outcome{Deleted: c.deleted, Retrieved: c.deleted}); err != nil {
				t.Fatalf("QUIT: %v", err)
			}
			for _, m := range mb.Messages("INBOX") {
				want := slices.Contains(c.deleted, int(m.UID-1))
				if slices.Contains(m.Flags, `\Deleted`) != want || slices.Contains(m.Flags, `\Seen`) != want {
					t.Errorf("UID %d flags %v, want flagged: %v", m.UID, m.Flags, want)
				}
			}
		})
	}
}

// Each delete policy works or is refused at login with -ERR [SYS/PERM]
// naming what the server lacks; FallbackToFlag downgrades instead.
func TestProfilePolicies(t *testing.T) {
	policies := []DeletePolicy{DeleteFlag, DeleteKeyword, DeleteTrash, DeleteArchive, DeleteExpunge, DeleteKeep}
	for _, p := range fakeimap.Profiles() {
		for _, pol := range policies {
			for _, fallback := range []bool{false, true} {
				if fallback && p.Has("UIDPLUS") {
					continue
				}
				name := fmt.Sprintf("%s/%s", p.Name, pol)
				if fallback {
					name += "/fallback"
				}
				t.Run(name, func(t *testing.T) { testProfilePolicy(t, p, pol, fallback) })
			}
		}
	}
}

func testProfilePolicy(t *testing.T, p fakeimap.Profile, pol DeletePolicy, fallback bool) {
	msgs := profileSeed()
	mb := fakeimap.NewMailbox(3, msgs...)
	if pol == DeleteArchive {
		mb.CreateFolder("Archive")
	}
	srv := fakeimap.StartProfile(t, p, mb, 1)
	b := profileBackend(t, srv.Addr(), Policy{Delete: pol, FallbackToFlag: fallback}, nil)
	md, err := b.Login(context.Background(), &pop3front.LoginRequest{Username: testUser, Password: testPass, Mechanism: "USER"})
	needs := map[DeletePolicy]bool{DeleteExpunge: true, DeleteTrash: true, DeleteArchive: true}[pol]
	refused := needs && !p.Has("UIDPLUS") && !fallback
	if refused {
		var pe *pop3front.Error
		if !errors.As(err, &pe) || pe.Code != pop3front.CodeSysPerm || !regexp.MustCompile(`lacks .*UIDPLUS.*`+string(pol)).MatchString(pe.Text) {
			t.Fatalf("Login: %v, want SYS/PERM naming UIDPLUS and the policy", err)
		}
		t.Logf("refused as wanted: %v", err)
		return
	}
	if err != nil {
		t.Fatalf("Login: %v", err)
	}
	defer md.Close()
	if err := md.Commit(context.Background(), pop3front.Outcome{Deleted: []int{1}, Retrieved: []int{1}}); err != nil {
		t.Fatalf("QUIT: %v", err)
	}
	effective := pol
	if needs && !p.Has("UIDPLUS") {
		effective = DeleteFlag
	}
	inbox := mb.Messages("INBOX")
	checkProfileEffect(t, mb, inbox, msgs, effective)
	if len(inbox) < 3 {
		t.Errorf("INBOX holds %d messages", len(inbox))
	}
	checkCommands(t, mb, 1)
}

// checkProfileEffect checks what testProfilePolicy's QUIT (DELE 2 after
// RETR 2) did under the effective policy: UID 2 changed or moved as it
// says, every other message untouched.
func checkProfileEffect(t *testing.T, mb *fakeimap.Mailbox, inbox []fakeimap.Message, msgs [][]byte, effective DeletePolicy) {
	t.Helper()
	byUID := map[uint32]fakeimap.Message{}
	for _, m := range inbox {
		byUID[m.UID] = m
	}
	m2, present := byUID[2]
	for uid, m := range byUID {
		if uid != 2 && len(m.Flags) != 0 {
			t.Errorf("UID %d touched: %v", uid, m.Flags)
		}
	}
	has := func(f string) bool { return slices.Contains(m2.Flags, f) }
	switch effective {
	case DeleteFlag:
		if !present || !has(`\Deleted`) || !has(`\Seen`) {
			t.Errorf("flag: UID 2 = %+v", m2.Flags)
		}
	case DeleteKeyword:
		if !present || !has(`$POP3Deleted`) || has(`\Deleted`) {
			t.Errorf("keyword: UID 2 = %+v", m2.Flags)
		}
	case DeleteKeep:
		if !present || has(`\Deleted`) || !has(`\Seen`) {
			t.Errorf("keep: UID 2 = %+v", m2.Flags)
		}
	case DeleteExpunge:
		if present {
			t.Errorf("expunge: UID 2 still there: %+v", m2.Flags)
		}
	case DeleteTrash, DeleteArchive:
		folder := map[DeletePolicy]string{DeleteTrash: "Trash", DeleteArchive: "Archive"}[effective]
		moved := mb.Messages(folder)
		if present || len(moved) != 1 || !bytes.Equal(moved[0].Body, msgs[1]) {
			t.Errorf("%s: UID 2 present %v, %s holds %d", effective, present, folder, len(moved))
		}
	}
}

// UW kills the session holding the mailbox read-write when another
// SELECTs it. The gateway's sessions hold EXAMINE only: a phone holding
// SELECT survives two whole downloads; the short SELECT at QUIT, with
// something to apply, is the one moment it is taken (and the phone, as
// with any UW client, loses the lock then).
func TestUWLockKill(t *testing.T) {
	msgs := profileSeed()
	mb := fakeimap.NewMailbox(4, msgs...)
	srv := fakeimap.StartProfile(t, fakeimap.UW, mb, 4)
	phone, err := imapclient.DialInsecure(srv.Addr(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer phone.Close()
	if err := phone.Login(testUser, testPass).Wait(); err != nil {
		t.Fatal(err)
	}
	if _, err := phone.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	b := profileBackend(t, srv.Addr(), Policy{Delete: DeleteFlag}, nil)
	md1 := loginProfile(t, b)
	md2 := loginProfile(t, b)
	for i := range msgs {
		for _, md := range []pop3front.Maildrop{md1, md2} {
			if got, err := retr(t, md, i); err != nil || !bytes.Equal(got, msgs[i]) {
				t.Fatalf("RETR %d: %v", i+1, err)
			}
		}
	}
	if err := phone.Noop().Wait(); err != nil {
		t.Fatalf("the phone lost its session while the gateway only EXAMINEd: %v", err)
	}
	if err := md1.Commit(context.Background(), pop3front.Outcome{}); err != nil {
		t.Fatal(err)
	}
	if err := phone.Noop().Wait(); err != nil {
		t.Fatalf("QUIT with nothing to apply took the lock: %v", err)
	}
	if err := md2.Commit(context.Background(), pop3front.Outcome{Deleted: []int{0}}); err != nil {
		t.Fatal(err)
	}
	if err := phone.Noop().Wait(); err == nil {
		t.Log("the phone kept its session")
	} else {
		t.Logf("as documented, the phone lost the lock to the QUIT update: %v", err)
	}
	if m := mb.Messages("INBOX"); !slices.Contains(m[0].Flags, `\Deleted`) {
		t.Errorf("DELE 1 not applied: %v", m[0].Flags)
	}
}

// Two gateway sessions of one user coexist on every profile; their DELE
// sets are both applied and nothing else is.
func TestProfileTwoSessions(t *testing.T) {
	for _, p := range fakeimap.Profiles() {
		t.Run(p.Name, func(t *testing.T) {
			msgs := profileSeed()
			mb := fakeimap.NewMailbox(6, msgs...)
			srv := fakeimap.StartProfile(t, p, mb, 2)
			b := profileBackend(t, srv.Addr(), Policy{Delete: DeleteFlag, Seen: SeenNever}, nil)
			md1, md2 := loginProfile(t, b), loginProfile(t, b)
			for i := range msgs {
				for _, md := range []pop3front.Maildrop{md1, md2} {
					if got, err := retr(t, md, i); err != nil || !bytes.Equal(got, msgs[i]) {
						t.Fatalf("RETR %d: %v", i+1, err)
					}
				}
			}
			if err := md1.Commit(context.Background(), pop3front.Outcome{Deleted: []int{0}}); err != nil {
				t.Fatal(err)
			}
			if err := md2.Commit(context.Background(), pop3front.Outcome{Deleted: []int{0, 2}}); err != nil {
				t.Fatal(err)
			}
			for _, m := range mb.Messages("INBOX") {
				if want := m.UID == 1 || m.UID == 3; slices.Contains(m.Flags, `\Deleted`) != want {
					t.Errorf("UID %d flags %v", m.UID, m.Flags)
				}
			}
		})
	}
}
