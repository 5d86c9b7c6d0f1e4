package nothinglost

import (
	"bytes"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/popbridge/popbridge/imapback"
	"github.com/popbridge/popbridge/internal/fakeimap"
)

const fakeCaps = "IMAP4rev1 UIDPLUS MOVE"

// fakeMsgs is a small mailbox: UIDs 3, 5, 9 (gaps on purpose).
func fakeMsgs() []fakeimap.Msg {
	body := func(n string) []byte {
		return []byte("From: a@example.org\r\nSubject: message " + n + "\r\nMessage-ID: <" + n + "@x>\r\n\r\n" +
			strings.Repeat("body line of message "+n+"\r\n", 20) + ".leading dot\r\n")
	}
	return []fakeimap.Msg{{UID: 3, Body: body("a")}, {UID: 5, Body: body("b")}, {UID: 9, Body: body("c")}}
}

// TestFRetrDropPipelined: the upstream fails at every point of a RETR
// while the client has already pipelined DELE and QUIT. The client never
// sees a terminator, the gateway sends nothing that changes the mailbox
// (the script would fail on it) and opens no second connection, and the
// next session serves the message whole.
func TestFRetrDropPipelined(t *testing.T) {
	msgs := fakeMsgs()
	m := msgs[1] // message 2, UID 5
	hdrEnd := bytes.Index(m.Body, []byte("\r\n\r\n"))
	prefix := `* 2 FETCH (UID 5 RFC822.SIZE ` + itoa(len(m.Body)) + ` BODY[] `
	cases := []struct {
		name  string
		fault fakeimap.Script
		gone  bool // the gateway reports the message expunged; DELE and QUIT succeed and change nothing
	}{
		{"no reply, close", fakeimap.S(fakeimap.Close()), false},
		{"no reply, hang", fakeimap.S(fakeimap.Hang()), false},
		{"BYE", fakeimap.S(fakeimap.Send("* BYE shutting down"), fakeimap.Close()), false},
		{"NO SERVERBUG", fakeimap.S(fakeimap.SendTagged("NO [SERVERBUG] oops"), fakeimap.ExpectLogoutOrEOF()), false},
		{"NO without code", fakeimap.S(fakeimap.SendTagged("NO no such message"), fakeimap.ExpectLogoutOrEOF()), true},
		{"BODY[] NIL, EXPUNGEISSUED", fakeimap.S(fakeimap.Send("* 2 FETCH (UID 5 BODY[] NIL)"), fakeimap.SendTagged("OK [EXPUNGEISSUED] Some messages were expunged"), fakeimap.ExpectLogoutOrEOF()), true},
		{"substitute of another size", fakeimap.S(fakeimap.Literal(`* 2 FETCH (UID 5 RFC822.SIZE 12 BODY[] `, []byte("unavailable\n"), ")"), fakeimap.SendTagged("OK done"), fakeimap.ExpectLogoutOrEOF()), true},
		{"BAD", fakeimap.S(fakeimap.SendTagged("BAD what"), fakeimap.ExpectLogoutOrEOF()), false},
		{"0 bytes of literal, close", fakeimap.S(fakeimap.ShortLiteral(prefix, len(m.Body), nil), fakeimap.Close()), false},
		{"in the header, close", fakeimap.S(fakeimap.ShortLiteral(prefix, len(m.Body), m.Body[:20]), fakeimap.Close()), false},
		{"in the header, reset", fakeimap.S(fakeimap.ShortLiteral(prefix, len(m.Body), m.Body[:20]), fakeimap.Reset()), false},
		{"end of header, hang", fakeimap.S(fakeimap.ShortLiteral(prefix, len(m.Body), m.Body[:hdrEnd+4]), fakeimap.Hang()), false},
		{"in the body, close", fakeimap.S(fakeimap.ShortLiteral(prefix, len(m.Body), m.Body[:len(m.Body)/2]), fakeimap.Close()), false},
		{"all but the last byte, hang", fakeimap.S(fakeimap.ShortLiteral(prefix, len(m.Body), m.Body[:len(m.Body)-1]), fakeimap.Hang()), false},
		{"literal whole, no tagged OK, close", fakeimap.S(fakeimap.Literal(prefix, m.Body, ")"), fakeimap.Close()), false},
		{"literal whole, tagged NO", fakeimap.S(fakeimap.Literal(prefix, m.Body, ")"), fakeimap.SendTagged("NO failed"), fakeimap.ExpectLogoutOrEOF()), false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			srv := fakeimap.Start(t,
				fakeimap.S(fakeimap.Prelude(fakeCaps, 7, msgs...), fakeimap.Expect(`UID FETCH 5 .*`), c.fault),
				fakeimap.S(fakeimap.Prelude(fakeCaps, 7, msgs...), fakeimap.FetchBody(2, m), fakeimap.Logout()),
			)
			g := startGateway(t, srv.Addr(), imapback.Policy{Delete: imapback.DeleteExpunge, Seen: imapback.SeenNever})

			p := dial(t, g.Addr())
			must(t, p.Login("u", "p"))
			must(t, p.Send("RETR 2\r\nDELE 2\r\nQUIT\r\n"))
			rest, _ := readAll(p)
			if c.gone {
				if want := "-ERR Message 2 expunged.\r\n+OK"; !strings.HasPrefix(rest, want) {
					t.Fatalf("replies %q, want %q...", rest, want)
				}
			} else {
				noTerminator(t, rest)
			}
			if !srv.WaitDone(0, 10*time.Second) {
				t.Fatal("upstream connection 0 still open")
			}

			p2 := dial(t, g.Addr())
			must(t, p2.Login("u", "p"))
			got, err := p2.Retr(2)
			must(t, err)
			if !bytes.Equal(got, m.Body) {
				t.Fatalf("next session: message 2 differs")
			}
			if l, err := p2.Quit(); err != nil || !strings.HasPrefix(l, "+OK") {
				t.Fatalf("QUIT: %q %v", l, err)
			}
			if !srv.WaitDone(1, 10*time.Second) {
				t.Fatal("upstream connection 1 still open")
			}
		})
	}
}

// TestFRetrRetriedAfterNO: the upstream refuses the first fetch of a
// message with a NO without a code and serves it the second time. The
// client is told "expunged", retries, gets the message whole, DELEs it,
// and QUIT deletes it: a refusal that a later success contradicts is not
// an expunge. The script fails on a QUIT update that leaves it out.
func TestFRetrRetriedAfterNO(t *testing.T) {
	msgs := fakeMsgs()
	m := msgs[1] // message 2, UID 5
	srv := fakeimap.Start(t, fakeimap.S(
		fakeimap.Prelude(fakeCaps, 7, msgs...),
		fakeimap.Expect(`UID FETCH 5 .*`),
		fakeimap.SendTagged("NO temporarily unavailable"),
		fakeimap.FetchBody(2, m),
		fakeimap.Select(3, 7),
		fakeimap.Expect(`UID STORE 5 \+FLAGS\.SILENT \(\\Deleted\)`),
		fakeimap.SendTagged("OK Store completed"),
		fakeimap.Expect(`UID EXPUNGE 5`),
		fakeimap.Send("* 2 EXPUNGE"),
		fakeimap.SendTagged("OK Expunge completed"),
		fakeimap.Logout(),
	))
	g := startGateway(t, srv.Addr(), imapback.Policy{Delete: imapback.DeleteExpunge, Seen: imapback.SeenNever})
	p := dial(t, g.Addr())
	must(t, p.Login("u", "p"))
	if l, err := p.Cmd("RETR 2"); err != nil || l != "-ERR Message 2 expunged." {
		t.Fatalf("first RETR 2: got %q, %v; want -ERR Message 2 expunged.", l, err)
	}
	got, err := p.Retr(2)
	must(t, err)
	if !bytes.Equal(got, m.Body) {
		t.Fatalf("second RETR 2: got %q, want %q", got, m.Body)
	}
	if _, err := p.OK("DELE 2"); err != nil {
		t.Fatal(err)
	}
	if l, err := p.Quit(); err != nil || !strings.HasPrefix(l, "+OK") {
		t.Fatalf("QUIT: got %q, %v; want +OK", l, err)
	}
	if !srv.WaitDone(0, 5*time.Second) {
		t.Fatalf("script not finished; received:\n%s", strings.Join(srv.Received(0), "\n"))
	}
}

// TestFUntaggedMidFetch: untagged EXPUNGE and FETCH responses arrive in
// the middle of a RETR. The message is served whole, numbering does not
// shift, and QUIT applies exactly the DELE'd UID.
func TestFUntaggedMidFetch(t *testing.T) {
	msgs := fakeMsgs()
	m := msgs[2] // message 3, UID 9
	srv := fakeimap.Start(t, fakeimap.S(
		fakeimap.Prelude(fakeCaps, 7, msgs...),
		fakeimap.Expect(`UID FETCH 9 .*`),
		fakeimap.Send("* 1 EXPUNGE"),                     // UID 3 went away: UID 9 is now sequence 2
		fakeimap.Send(`* 1 FETCH (UID 5 FLAGS (\Seen))`), // another device read UID 5
		fakeimap.Literal(`* 2 FETCH (UID 9 RFC822.SIZE `+itoa(len(m.Body))+` BODY[] `, m.Body, ")"),
		fakeimap.Send(`* 1 FETCH (UID 5 FLAGS (\Seen \Flagged))`),
		fakeimap.SendTagged("OK Fetch completed"),
		fakeimap.Select(2, 7),
		fakeimap.Expect(`UID STORE 9 \+FLAGS\.SILENT \(\\Deleted\)`),
		fakeimap.SendTagged("OK Store completed"),
		fakeimap.Expect(`UID EXPUNGE 9`),
		fakeimap.Send("* 2 EXPUNGE"),
		fakeimap.SendTagged("OK Expunge completed"),
		fakeimap.Logout(),
	))
	g := startGateway(t, srv.Addr(), imapback.Policy{Delete: imapback.DeleteExpunge, Seen: imapback.SeenNever})
	p := dial(t, g.Addr())
	must(t, p.Login("u", "p"))
	got, err := p.Retr(3)
	must(t, err)
	if !bytes.Equal(got, m.Body) {
		t.Fatal("message 3 differs")
	}
	for _, c := range []string{"LIST 3", "DELE 3"} {
		if _, err := p.OK(c); err != nil {
			t.Fatal(err)
		}
	}
	if l, err := p.Quit(); err != nil || !strings.HasPrefix(l, "+OK") {
		t.Fatalf("QUIT: %q %v", l, err)
	}
	if !srv.WaitDone(0, 5*time.Second) {
		t.Fatal("script not finished")
	}
}

// TestFSessionStartFaults: NO, BAD, BYE, a hang or a drop at each step
// of a session's start (greeting, LOGIN, EXAMINE, snapshot) gives the
// client -ERR (with [AUTH] only for a refused LOGIN) and never a command
// that changes anything.
func TestFSessionStartFaults(t *testing.T) {
	msgs := fakeMsgs()
	greet := fakeimap.Greeting(fakeCaps)
	login := fakeimap.Login(fakeCaps)
	exam := fakeimap.Examine(len(msgs), 7)
	cases := []struct {
		name   string
		script fakeimap.Script
		code   string
	}{
		{"greeting BYE", fakeimap.S(fakeimap.Send("* BYE too busy"), fakeimap.ExpectEOF()), "[SYS/TEMP]"},
		{"greeting garbage", fakeimap.S(fakeimap.Send("HELLO"), fakeimap.ExpectEOF()), "[SYS/TEMP]"},
		{"greeting hang", fakeimap.S(fakeimap.Hang()), "[SYS/TEMP]"},
		{"greeting close", fakeimap.S(fakeimap.Close()), "[SYS/TEMP]"},
		{"login NO", fakeimap.S(greet, fakeimap.Expect(`LOGIN .*`), fakeimap.SendTagged("NO [AUTHENTICATIONFAILED] bad"), fakeimap.ExpectLogoutOrEOF()), "[AUTH]"},
		{"login NO UNAVAILABLE", fakeimap.S(greet, fakeimap.Expect(`LOGIN .*`), fakeimap.SendTagged("NO [UNAVAILABLE] later"), fakeimap.ExpectLogoutOrEOF()), "[SYS/TEMP]"},
		{"login BYE", fakeimap.S(greet, fakeimap.Expect(`LOGIN .*`), fakeimap.Send("* BYE going away"), fakeimap.Close()), "[SYS/TEMP]"},
		{"login hang", fakeimap.S(greet, fakeimap.Expect(`LOGIN .*`), fakeimap.Hang()), "[SYS/TEMP]"},
		{"examine NO", fakeimap.S(greet, login, fakeimap.Expect(`EXAMINE .*`), fakeimap.SendTagged("NO no mailbox"), fakeimap.ExpectLogoutOrEOF()), "[SYS/TEMP]"},
		{"examine BAD", fakeimap.S(greet, login, fakeimap.Expect(`EXAMINE .*`), fakeimap.SendTagged("BAD parse"), fakeimap.ExpectLogoutOrEOF()), "[SYS/TEMP]"},
		{"examine BYE", fakeimap.S(greet, login, fakeimap.Expect(`EXAMINE .*`), fakeimap.Send("* BYE bye"), fakeimap.Close()), "[SYS/TEMP]"},
		{"examine hang", fakeimap.S(greet, login, fakeimap.Expect(`EXAMINE .*`), fakeimap.Hang()), "[SYS/TEMP]"},
		{"snapshot NO", fakeimap.S(greet, login, exam, fakeimap.Expect(`UID FETCH 1:\* .*`), fakeimap.SendTagged("NO busy"), fakeimap.ExpectLogoutOrEOF()), "[SYS/TEMP]"},
		{"snapshot drop", fakeimap.S(greet, login, exam, fakeimap.Expect(`UID FETCH 1:\* .*`), fakeimap.Send("* 1 FETCH (UID 3 RFC822.SIZE 10 FLAGS ())"), fakeimap.Close()), "[SYS/TEMP]"},
		{"snapshot hang", fakeimap.S(greet, login, exam, fakeimap.Expect(`UID FETCH 1:\* .*`), fakeimap.Hang()), "[SYS/TEMP]"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			srv := fakeimap.Start(t, c.script)
			g := startGateway(t, srv.Addr(), imapback.Policy{Delete: imapback.DeleteExpunge})
			p := dial(t, g.Addr())
			must(t, p.Send("USER u\r\nPASS p\r\n"))
			l1, _ := p.Line()
			l2, _ := p.Line()
			if !strings.HasPrefix(l1, "+OK") || !strings.HasPrefix(l2, "-ERR "+c.code) {
				t.Fatalf("replies %q, %q; want +OK then -ERR %s", l1, l2, c.code)
			}
			p.Close()
			if !srv.WaitDone(0, 10*time.Second) {
				t.Fatal("upstream connection still open")
			}
		})
	}
}

// TestFNoUIDPlusNoMove: a server without UIDPLUS (and MOVE) cannot
// expunge single messages: the expunge and trash policies refuse the
// session ([SYS/PERM]) or, with FallbackToFlag, only flag; a plain
// EXPUNGE is never sent (the script would fail on it).
func TestFNoUIDPlusNoMove(t *testing.T) {
	msgs := fakeMsgs()
	const bare = "IMAP4rev1"
	t.Run("refused", func(t *testing.T) {
		t.Parallel()
		srv := fakeimap.Start(t, fakeimap.S(fakeimap.Greeting(bare), fakeimap.Login(bare), fakeimap.Examine(3, 7), fakeimap.ExpectLogoutOrEOF()))
		g := startGateway(t, srv.Addr(), imapback.Policy{Delete: imapback.DeleteTrash})
		p := dial(t, g.Addr())
		must(t, p.Send("USER u\r\nPASS p\r\n"))
		p.Line()
		if l, _ := p.Line(); !strings.HasPrefix(l, "-ERR [SYS/PERM]") {
			t.Fatalf("PASS: %q, want prefix %q", l, "-ERR [SYS/PERM]")
		}
	})
	t.Run("fallback", func(t *testing.T) {
		t.Parallel()
		srv := fakeimap.Start(t, fakeimap.S(
			fakeimap.Prelude(bare, 7, msgs...),
			fakeimap.Select(3, 7),
			// Without UIDPLUS the update first lists the UIDs that
			// still exist (imapback/quirks.go: mailutils' loose UIDs).
			fakeimap.Expect(`UID FETCH 1:\* \(UID\)`),
			fakeimap.Send("* 1 FETCH (UID 3)"),
			fakeimap.Send("* 2 FETCH (UID 5)"),
			fakeimap.Send("* 3 FETCH (UID 9)"),
			fakeimap.SendTagged("OK Fetch completed"),
			fakeimap.Expect(`UID STORE 3,9 \+FLAGS\.SILENT \(\\Deleted\)`),
			fakeimap.SendTagged("OK Store completed"),
			fakeimap.Logout(),
		))
		g := startGateway(t, srv.Addr(), imapback.Policy{Delete: imapback.DeleteExpunge, FallbackToFlag: true})
		p := dial(t, g.Addr())
		must(t, p.Login("u", "p"))
		must(t, p.Send("DELE 1\r\nDELE 3\r\n"))
		p.Line()
		p.Line()
		if l, _ := p.Quit(); !strings.HasPrefix(l, "+OK") {
			t.Fatalf("QUIT: %q, want prefix %q", l, "+OK")
		}
		if !srv.WaitDone(0, 5*time.Second) {
			t.Fatal("script not finished")
		}
	})
}

func itoa(n int) string { return strconv.Itoa(n) }
