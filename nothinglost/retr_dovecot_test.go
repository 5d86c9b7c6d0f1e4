package nothinglost

import (
	"testing"
	"time"

	"github.com/popbridge/popbridge/imapback"
	"github.com/popbridge/popbridge/internal/faultproxy"
	"github.com/popbridge/popbridge/internal/oracle"
	"github.com/popbridge/popbridge/internal/testmail"
)

// TestDRetrDropPipelined: between the gateway and Dovecot, the upstream
// connection is cut, reset or stalled at every point of a RETR of a 5 MB
// message (before the command reaches Dovecot, before the literal, in the
// header, in the body, before the last octet, after the literal) while
// the client has pipelined "RETR 4, DELE 4, QUIT". The client never gets
// a terminator or a +OK to DELE or QUIT, the mailbox does not change, and
// the next session serves the message whole.
func TestDRetrDropPipelined(t *testing.T) {
	heavy(t)
	msgs := append(testmail.Ordinary(3), testmail.Big())
	e := startD(t, imapback.Policy{Delete: imapback.DeleteExpunge, Seen: imapback.SeenQuit}, msgs)
	before := e.snap("INBOX")
	size := len(msgs[3].Served)
	lit := literalAt(size)
	body := []byte("BODY[] {")
	down := func(a faultproxy.Action, k int64) faultproxy.Plan {
		return faultproxy.Plan{Faults: []faultproxy.Fault{{Dir: faultproxy.Down, Action: a, Match: body, After: lit + k}}}
	}
	cases := []struct {
		name string
		plan faultproxy.Plan
	}{
		{"command never reaches upstream", faultproxy.Plan{Faults: []faultproxy.Fault{{Dir: faultproxy.Up, Action: faultproxy.Cut, Match: []byte("UID FETCH 4 "), After: 0}}}},
		{"cut before the literal", down(faultproxy.Cut, -lit)},
		{"cut at 0 octets", down(faultproxy.Cut, 0)},
		{"cut in the header", down(faultproxy.Cut, 40)},
		{"reset in the header", down(faultproxy.Reset, 40)},
		{"cut in the body", down(faultproxy.Cut, int64(size/2))},
		{"reset in the body", down(faultproxy.Reset, int64(size/2))},
		{"stall in the body", down(faultproxy.Stall, int64(size/2))},
		{"cut before the last octet", down(faultproxy.Cut, int64(size-1))},
		{"stall before the last octet", down(faultproxy.Stall, int64(size-1))},
		{"cut after the literal", down(faultproxy.Cut, int64(size))},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e.t = t
			e.nextConn(c.plan)
			k := e.fp.Accepted()
			p := e.login()
			must(t, p.Send("RETR 4\r\nDELE 4\r\nQUIT\r\n"))
			rest, _ := readAll(p)
			noTerminator(t, rest)
			if conn := e.fp.Conn(k); conn == nil || !conn.Fired(c.plan.Faults[0].Dir) {
				t.Fatal("the fault did not fire")
			}
			// Give a wrong gateway time to act on the pipelined commands.
			time.Sleep(100 * time.Millisecond)
			checkOracle(t, oracle.CheckUnchanged(before, e.snap("INBOX")))
			e.checkWhole(4, msgs[3])
		})
	}
}
