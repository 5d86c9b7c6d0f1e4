package imapback

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/popbridge/popbridge/internal/fakeimap"
	"github.com/popbridge/popbridge/pop3front"
)

// TestGoneTransientVersusConfirmed: a fetch answer that only may mean
// "expunged" (a NO without a code, or no data) is answered as expunged,
// but a later RETR asks again and, when it succeeds, a DELE of the
// message applies at QUIT. Without a successful RETR the DELE stays a
// no-op. A confirmed expunge (NO [EXPUNGEISSUED], BODY[] NIL) is final:
// a later RETR or TOP is answered without asking the server, and the
// DELE is a no-op. Each script lists every command the gateway may send:
// a STORE where none is expected, or a missing one, fails it.
func TestGoneTransientVersusConfirmed(t *testing.T) {
	body := []byte("From: a@example.org\r\nSubject: two\r\n\r\nhello\r\n")
	msgs := []fakeimap.Msg{
		{UID: 3, Body: []byte("Subject: one\r\n\r\nx\r\n")},
		{UID: 5, Body: body},
		{UID: 9, Body: []byte("Subject: three\r\n\r\nzzz\r\n")},
	}
	const caps = "IMAP4rev1 UIDPLUS MOVE"
	fetch5 := fakeimap.Expect(`UID FETCH 5 .*`)
	flagged := fakeimap.S(
		fakeimap.Select(3, 7),
		fakeimap.Expect(`UID STORE 5 \+FLAGS\.SILENT \(\\Deleted\)`),
		fakeimap.SendTagged("OK Store completed"),
		fakeimap.Logout(),
	)
	cases := []struct {
		name    string
		first   fakeimap.Script // the answer to the first UID FETCH 5
		retry   bool            // RETR again, and the server serves it
		retried fakeimap.Script
		rest    fakeimap.Script // the QUIT update
	}{
		{"NO once, then served", fakeimap.S(fakeimap.SendTagged("NO temporarily unavailable")),
			true, fakeimap.FetchBody(2, msgs[1]), flagged},
		{"no data once, then served", fakeimap.S(fakeimap.SendTagged("OK Fetch completed")),
			true, fakeimap.FetchBody(2, msgs[1]), flagged},
		{"NO, no retry", fakeimap.S(fakeimap.SendTagged("NO temporarily unavailable")),
			false, nil, fakeimap.Logout()},
		{"NO EXPUNGEISSUED", fakeimap.S(fakeimap.SendTagged("NO [EXPUNGEISSUED] Message was expunged")),
			true, nil, fakeimap.Logout()},
		{"BODY[] NIL", fakeimap.S(fakeimap.Send("* 2 FETCH (UID 5 BODY[] NIL)"), fakeimap.SendTagged("OK [EXPUNGEISSUED] Some messages were expunged")),
			true, nil, fakeimap.Logout()},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			srv := fakeimap.Start(t, fakeimap.S(fakeimap.Prelude(caps, 7, msgs...), fetch5, c.first, c.retried, c.rest))
			obs := &anomalies{}
			md := loginProfile(t, profileBackend(t, srv.Addr(), Policy{Delete: DeleteFlag, Seen: SeenNever}, obs))

			if _, err := md.Open(context.Background(), 1, pop3front.Section{}); !errors.Is(err, pop3front.ErrExpunged) {
				t.Fatalf("first RETR 2: got %v, want ErrExpunged", err)
			}
			if c.retry {
				got, err := retr(t, md, 1)
				switch {
				case c.retried != nil && (err != nil || !bytes.Equal(got, body)):
					t.Fatalf("second RETR 2: got %q, %v; want the message", got, err)
				case c.retried == nil && !errors.Is(err, pop3front.ErrExpunged):
					t.Fatalf("second RETR 2: got %q, %v; want ErrExpunged", got, err)
				}
				if c.retried == nil {
					// Confirmed: TOP is answered without asking either.
					if _, err := md.Open(context.Background(), 1, pop3front.Section{Top: true}); !errors.Is(err, pop3front.ErrExpunged) {
						t.Fatalf("TOP 2 0: got %v, want ErrExpunged", err)
					}
				}
			}
			if err := md.Commit(context.Background(), pop3front.Outcome{Deleted: []int{1}}); err != nil {
				t.Fatalf("QUIT: %v", err)
			}
			if !srv.WaitDone(0, 10*time.Second) {
				t.Fatalf("script not played to its end; received:\n%s", strings.Join(srv.Received(0), "\n"))
			}
			if got := obs.get(AnomalyExpunged); got != 1 {
				t.Errorf("anomaly expunged = %d, want 1", got)
			}
		})
	}
}

// TestGoneTOPTransient: a TOP answered with a NO without a code marks the
// message only maybe gone: a later RETR that succeeds clears it, and the
// DELE applies.
func TestGoneTOPTransient(t *testing.T) {
	body := []byte("Subject: one\r\n\r\nline\r\n")
	m := fakeimap.Msg{UID: 4, Body: body}
	srv := fakeimap.Start(t, fakeimap.S(
		fakeimap.Prelude("IMAP4rev1 UIDPLUS", 7, m),
		fakeimap.Expect(`UID FETCH 4 .*`),
		fakeimap.SendTagged("NO try again"),
		fakeimap.FetchBody(1, m),
		fakeimap.Select(1, 7),
		fakeimap.Expect(`UID STORE 4 \+FLAGS\.SILENT \(\\Deleted\)`),
		fakeimap.SendTagged("OK Store completed"),
		fakeimap.Logout(),
	))
	md := loginProfile(t, profileBackend(t, srv.Addr(), Policy{Delete: DeleteFlag, Seen: SeenNever}, nil))
	if _, err := md.Open(context.Background(), 0, pop3front.Section{Top: true}); !errors.Is(err, pop3front.ErrExpunged) {
		t.Fatalf("TOP 1 0: got %v, want ErrExpunged", err)
	}
	if got, err := retr(t, md, 0); err != nil || !bytes.Equal(got, body) {
		t.Fatalf("RETR 1: got %q, %v; want the message", got, err)
	}
	if err := md.Commit(context.Background(), pop3front.Outcome{Deleted: []int{0}}); err != nil {
		t.Fatalf("QUIT: %v", err)
	}
	if !srv.WaitDone(0, 10*time.Second) {
		t.Fatalf("script not played to its end; received:\n%s", strings.Join(srv.Received(0), "\n"))
	}
}
