package nothinglost

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/popbridge/popbridge/imapback"
	"github.com/popbridge/popbridge/internal/dovecottest"
	"github.com/popbridge/popbridge/internal/faultproxy"
	"github.com/popbridge/popbridge/internal/gwtest"
	"github.com/popbridge/popbridge/internal/oracle"
	"github.com/popbridge/popbridge/internal/pop3test"
	"github.com/popbridge/popbridge/internal/testmail"
)

const (
	dUser = "u"
	dPass = "pw"
)

// denv is a Dovecot with one user, a fault proxy in front of its IMAP
// service, and an in-process gateway using the proxy as its upstream.
type denv struct {
	t    *testing.T
	d    *dovecottest.Dovecot
	fp   *faultproxy.Proxy
	g    *gwtest.Gateway
	msgs []testmail.Message
}

// startD starts the environment; msgs are delivered to INBOX (UIDs 1..n)
// and an empty Trash exists.
func startD(t *testing.T, pol imapback.Policy, msgs []testmail.Message, mod ...func(*gwtest.Options)) *denv {
	t.Helper()
	d := dovecottest.Start(t, dovecottest.User{Name: dUser, Password: dPass})
	for _, m := range msgs {
		d.Deliver(dUser, "INBOX", m.Raw)
	}
	d.CreateMailbox(dUser, "Trash")
	fp, err := faultproxy.Start(d.IMAPAddr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fp.Close() })
	e := &denv{t: t, d: d, fp: fp, msgs: msgs}
	e.g = startGateway(t, fp.Addr(), pol, mod...)
	return e
}

// snap reads a mailbox's state over a direct IMAP connection.
func (e *denv) snap(mailbox string) []oracle.Msg {
	e.t.Helper()
	return e.d.Snapshot(e.t, dUser, mailbox)
}

// nextConn gives the next upstream connection the gateway opens plan p
// (the oracle's connections do not pass through the proxy).
func (e *denv) nextConn(p faultproxy.Plan) {
	e.fp.SetPlanner(faultproxy.Only(e.fp.Accepted(), p))
}

// login opens a POP3 session through the gateway.
func (e *denv) login() *pop3test.Conn {
	e.t.Helper()
	p := dial(e.t, e.g.Addr())
	must(e.t, p.Login(dUser, dPass))
	return p
}

// checkWhole RETRs message n in a new session (closed without QUIT, so it
// changes nothing) and compares it with what Dovecot serves for m.
func (e *denv) checkWhole(n int, m testmail.Message) {
	e.t.Helper()
	p := e.login()
	defer p.Close()
	got, err := p.Retr(n)
	if err != nil {
		e.t.Fatalf("next session: RETR %d: %v", n, err)
	}
	if want := testmail.POP3Octets(m.Served); !bytes.Equal(got, want) {
		e.t.Fatalf("next session: RETR %d: %d octets, want %d", n, len(got), len(want))
	}
}

func checkOracle(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// literalAt is the number of bytes from the start of `BODY[] {` to the
// first octet of the literal of a size-octet body.
func literalAt(size int) int64 {
	return int64(len("BODY[] {") + len(fmt.Sprint(size)) + len("}\r\n"))
}

// noTerminator checks what a client that pipelined "RETR n, DELE n,
// QUIT" received after logging in (rest): no terminator line, and QUIT
// never acknowledged. Either RETR failed before its +OK (then DELE is
// accepted, it is bookkeeping, and QUIT must answer -ERR) or the
// connection closed mid-message without any further reply.
func noTerminator(t *testing.T, rest string) {
	t.Helper()
	if strings.Contains("\r\n"+rest, "\r\n.\r\n") {
		t.Fatalf("terminator reached the client (%d octets received)", len(rest))
	}
	if strings.HasPrefix(rest, "-ERR") {
		lines := strings.SplitAfter(rest, "\r\n")
		if len(lines) >= 3 && !strings.HasPrefix(lines[2], "-ERR [SYS/TEMP]") {
			t.Fatalf("RETR failed, then QUIT answered %q", lines[2])
		}
		return
	}
	if n := strings.Count(rest, "\r\n+OK"); n > 0 {
		t.Fatalf("DELE or QUIT acknowledged after a failed RETR")
	}
}
