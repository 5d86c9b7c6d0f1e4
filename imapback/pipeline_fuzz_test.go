package imapback_test

import (
	"bytes"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/popbridge/popbridge/internal/memupstream"
	"github.com/popbridge/popbridge/internal/pop3test"
	"github.com/popbridge/popbridge/internal/testmail"
)

// maxFuzzCommands bounds a fuzz script, so a run stays cheap.
const maxFuzzCommands = 6

// fuzzScript decodes input into commands, two octets each: the command,
// then the message number (0 and one past the last included).
func fuzzScript(input []byte, msgs int) []string {
	var cmds []string
	for i := 0; i+1 < len(input) && len(cmds) < maxFuzzCommands; i += 2 {
		n := int(input[i+1]) % (msgs + 2)
		var c string
		switch input[i] % 14 {
		case 0, 1:
			c = fmt.Sprintf("RETR %d", n)
		case 2, 3:
			c = fmt.Sprintf("TOP %d 0", n)
		case 4:
			c = fmt.Sprintf("TOP %d %d", n, int(input[i]>>4)%4)
		case 5:
			c = fmt.Sprintf("DELE %d", n)
		case 6:
			c = "RSET"
		case 7:
			c = "LIST"
		case 8:
			c = fmt.Sprintf("LIST %d", n)
		case 9:
			c = "UIDL"
		case 10:
			c = fmt.Sprintf("UIDL %d", n)
		case 11:
			c = "NOOP"
		case 12:
			c = "STAT"
		default:
			c = fmt.Sprintf("TOP %d 1000", n)
		}
		cmds = append(cmds, c)
	}
	return cmds
}

// FuzzPipelining: any mix of transaction commands gives the same answers
// one at a time as pipelined in one write (even inputs) or cut into small
// pieces (odd inputs). One upstream and one gateway serve every input,
// so 150,000 runs stay cheap, with two logged-in sessions per compared
// mode: the mode's own and its one-at-a-time reference, so both have
// seen the same inputs. Each script ends with RSET (nothing is ever
// committed: no QUIT), but what a session learnt stays: a message found
// gone (a size mismatch is answered as expunged, for good) is gone for
// the rest of that session, in both of a pair.
func FuzzPipelining(f *testing.F) {
	msgs := memupstream.DemoMessages()
	for _, m := range testmail.Tricky() {
		if len(m.Raw) < 4096 {
			msgs = append(msgs, m.Raw)
		}
	}
	g := memGateway(f, memupstream.ProfileFull, msgs)
	login := func() *pop3test.Conn {
		p, err := pop3test.Dial(g.Addr(), time.Minute)
		if err != nil {
			f.Fatal(err)
		}
		f.Cleanup(func() { p.Close() })
		if err := p.Login(pipeUser, pipePass); err != nil {
			f.Fatal(err)
		}
		return p
	}
	// pairs[m] is {reference, mode m} for the two compared modes.
	pairs := map[pop3test.Mode][2]*pop3test.Conn{}
	for _, m := range []pop3test.Mode{pop3test.Pipelined, pop3test.Pieces} {
		pairs[m] = [2]*pop3test.Conn{login(), login()}
	}
	f.Add([]byte{2, 3, 0, 3, 5, 3}) // TOP 3 0, RETR 3, DELE 3
	f.Add([]byte{0, 1, 2, 2, 0, 2}) // RETR 1, TOP 2 0, RETR 2
	f.Add([]byte{2, 1, 2, 2, 1, 2, 0, 1, 4, 4, 7, 0})
	f.Add([]byte{5, 1, 0, 1, 6, 0, 0, 1, 9, 0, 13, 5, 3, 8})
	f.Fuzz(func(t *testing.T, input []byte) {
		cmds := append(fuzzScript(input, len(msgs)), "RSET")
		h := fnv.New64a()
		h.Write(input)
		r := rand.New(rand.NewPCG(h.Sum64(), 1))
		other := pop3test.Pipelined
		if len(input)%2 == 1 {
			other = pop3test.Pieces
		}
		var ref []byte
		for i, mode := range []pop3test.Mode{pop3test.OneByOne, other} {
			p := pairs[other][i]
			p.C.SetDeadline(time.Now().Add(30 * time.Second))
			got, err := p.Converse(cmds, mode, r)
			if err != nil {
				t.Fatalf("%q %v: %v", cmds, mode, err)
			}
			if mode == pop3test.OneByOne {
				ref = got
			} else if !bytes.Equal(got, ref) {
				t.Fatalf("%q: %v answers differ from one-by-one: %s", cmds, mode, pop3test.FirstDiff(got, ref))
			}
		}
	})
}
