package imapback_test

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/popbridge/popbridge/internal/fakeimap"
	"github.com/popbridge/popbridge/internal/gwtest"
	"github.com/popbridge/popbridge/internal/memupstream"
	"github.com/popbridge/popbridge/internal/pop3test"
	"github.com/popbridge/popbridge/internal/testmail"
)

const (
	pipeUser = "alice"
	pipePass = "secret"
)

// pipeMsgs is the mailbox of the pipelining tests: the demo messages
// (headers of a few hundred octets, bodies up to a few KB) and the tricky
// corpus.
func pipeMsgs() [][]byte {
	msgs := memupstream.DemoMessages()
	for _, m := range testmail.Small() {
		msgs = append(msgs, m.Raw)
	}
	return msgs
}

// memGateway starts an in-memory upstream with msgs in INBOX and a
// gateway in front of it.
func memGateway(t testing.TB, prof memupstream.Profile, msgs [][]byte) *gwtest.Gateway {
	t.Helper()
	srv, err := memupstream.Start("127.0.0.1:0", memupstream.Options{Profile: prof})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	if err := srv.AddUser(pipeUser, pipePass); err != nil {
		t.Fatal(err)
	}
	for _, m := range msgs {
		if err := srv.Append(pipeUser, "INBOX", m); err != nil {
			t.Fatal(err)
		}
	}
	return startGW(t, srv.Addr())
}

func startGW(t testing.TB, addr string) *gwtest.Gateway {
	t.Helper()
	g, err := gwtest.Start(gwtest.Options{Upstream: addr})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(g.Close)
	return g
}

// unstuff returns the message a multi-line answer carries: the status
// line, the terminator and the dot-stuffing removed.
func unstuff(answer []byte) []byte {
	_, body, _ := bytes.Cut(answer, []byte("\r\n"))
	body = bytes.TrimSuffix(body, []byte(".\r\n"))
	var out bytes.Buffer
	for _, l := range bytes.SplitAfter(body, []byte("\n")) {
		out.Write(bytes.TrimPrefix(l, []byte(".")))
	}
	return out.Bytes()
}

// answers splits a Converse result into one answer per command.
func answers(t *testing.T, raw []byte, cmds []string) [][]byte {
	t.Helper()
	var out [][]byte
	for _, c := range cmds {
		i := bytes.Index(raw, []byte("\r\n")) + 2
		if i < 2 {
			t.Fatalf("no answer to %q", c)
		}
		if f := strings.Fields(c); bytes.HasPrefix(raw, []byte("+OK")) && (f[0] == "RETR" || f[0] == "TOP" || len(f) == 1 && (f[0] == "LIST" || f[0] == "UIDL")) {
			i = bytes.Index(raw, []byte("\r\n.\r\n")) + 5
		}
		out = append(out, raw[:i])
		raw = raw[i:]
	}
	return out
}

// TestPipelinedTopThenRetr: a TOP n 0 pipelined before RETR n must not
// make the RETR deliver the header alone (both were once fetched ahead as
// BODY.PEEK[HEADER] and the RETR served the header as the whole message).
func TestPipelinedTopThenRetr(t *testing.T) {
	msgs := memupstream.DemoMessages()
	g := memGateway(t, memupstream.ProfileFull, msgs)
	for _, cmds := range [][]string{
		{"TOP 3 0", "RETR 3", "DELE 3"},
		{"RETR 1", "TOP 2 0", "RETR 2"},
		{"TOP 1 0", "TOP 2 0", "RETR 2", "RETR 1", "TOP 3 0", "RETR 3"},
	} {
		got, err := pop3test.Converse(g.Addr(), pipeUser, pipePass, cmds, pop3test.Pipelined, nil)
		if err != nil {
			t.Fatalf("%q: %v", cmds, err)
		}
		for i, a := range answers(t, got, append([]string{"USER", "PASS"}, cmds...))[2:] {
			var n int
			if _, err := fmt.Sscanf(cmds[i], "RETR %d", &n); err != nil {
				continue
			}
			if body := unstuff(a); !bytes.Equal(body, msgs[n-1]) {
				t.Errorf("%q: %s delivered %d octets, want %d: %s", cmds, cmds[i], len(body), len(msgs[n-1]), pop3test.FirstDiff(body, msgs[n-1]))
			}
		}
	}
}

// differential runs pop3test.Differential; a failure names the seed.
func differential(t *testing.T, addr string, nmsgs int, seed uint64, iters int) {
	t.Helper()
	if err := pop3test.Differential(addr, pipeUser, pipePass, nmsgs, seed, iters); err != nil {
		t.Fatal(err)
	}
}

// pipeSeed is a fresh seed per run; failures print it.
func pipeSeed(t *testing.T) uint64 {
	s := rand.Uint64()
	t.Logf("seed %d", s)
	return s
}

// TestPipeliningDifferentialMem: random mixes of RETR, TOP, DELE, RSET,
// LIST, UIDL, NOOP and STAT give byte-identical answers one at a time,
// pipelined in one write and cut into small pieces, against every
// in-memory upstream profile.
func TestPipeliningDifferentialMem(t *testing.T) {
	for _, prof := range []memupstream.Profile{memupstream.ProfileFull, memupstream.ProfileIMAP4rev2, memupstream.ProfileUIDPlus, memupstream.ProfileBare} {
		t.Run(string(prof), func(t *testing.T) {
			msgs := pipeMsgs()
			g := memGateway(t, prof, msgs)
			differential(t, g.Addr(), len(msgs), pipeSeed(t), 12)
		})
	}
}

// TestPipeliningDifferentialFake: the same against every fake server
// profile (their FETCH item orders differ: Courier sends the UID after
// the body).
func TestPipeliningDifferentialFake(t *testing.T) {
	const iters = 8
	for _, prof := range fakeimap.Profiles() {
		t.Run(prof.Name, func(t *testing.T) {
			msgs := pipeMsgs()
			mb := fakeimap.NewMailbox(7, msgs...)
			srv := fakeimap.StartProfile(t, prof, mb, iters*len(pop3test.Modes)+2)
			g := startGW(t, srv.Addr())
			differential(t, g.Addr(), len(msgs), pipeSeed(t), iters)
		})
	}
}
