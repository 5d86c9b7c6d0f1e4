package e2e

import (
	"math/rand/v2"
	"testing"

	"github.com/popbridge/popbridge/internal/dovecottest"
	"github.com/popbridge/popbridge/internal/memupstream"
	"github.com/popbridge/popbridge/internal/pop3test"
	"github.com/popbridge/popbridge/internal/testmail"
)

// TestPipeliningDifferentialDovecot: against real Dovecot, random mixes
// of RETR, TOP n 0, TOP n k, DELE, RSET, LIST [n], UIDL [n], NOOP and
// STAT give byte-identical answers one command at a time, pipelined in
// one write, and cut into random small pieces. Scripts never QUIT, so
// every run starts from the same mailbox; the seed is logged and named in
// any failure.
func TestPipeliningDifferentialDovecot(t *testing.T) {
	t.Parallel()
	d := dovecottest.Start(t, dovecottest.User{Name: "u", Password: "pw"})
	n := 0
	for _, raw := range memupstream.DemoMessages() {
		d.Deliver("u", "INBOX", raw)
		n++
	}
	for _, m := range testmail.Small() {
		d.Deliver("u", "INBOX", m.Raw)
		n++
	}
	g := startGateway(t, d, defaultPolicy)
	seed := rand.Uint64()
	t.Logf("seed %d", seed)
	if err := pop3test.Differential(g.addr, "u", "pw", n, seed, 10); err != nil {
		t.Fatal(err)
	}
}
