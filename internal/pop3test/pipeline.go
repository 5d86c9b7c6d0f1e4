package pop3test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"time"
)

// Pipelining differential: RFC 2449 section 6.6 lets a client send
// several commands without waiting for their answers, and the answers
// must then be exactly what one command at a time would have produced.
// Converse runs one script in one of three ways; tests compare the answer
// streams byte for byte.

// Mode is how Converse sends a script.
type Mode int

const (
	// OneByOne sends each command and reads its whole answer before the
	// next one.
	OneByOne Mode = iota
	// Pipelined sends the login and every command in one write.
	Pipelined
	// Pieces sends the same bytes as Pipelined cut into random small
	// writes (1 to 16 octets), so commands arrive split at any octet.
	Pieces
)

func (m Mode) String() string {
	switch m {
	case OneByOne:
		return "one-by-one"
	case Pipelined:
		return "pipelined"
	case Pieces:
		return "pieces"
	}
	return fmt.Sprintf("Mode(%d)", int(m))
}

// Modes lists every Mode.
var Modes = []Mode{OneByOne, Pipelined, Pieces}

// RandomScript returns n random transaction-state commands for a
// maildrop of msgs messages: RETR, TOP n 0, TOP n k, DELE, RSET, LIST
// [n], UIDL [n], NOOP and STAT, with message numbers sometimes out of
// range. It never ends the session: no QUIT, so nothing changes upstream
// and every run of a script starts from the same mailbox.
func RandomScript(r *rand.Rand, msgs, n int) []string {
	num := func() int {
		if r.IntN(12) == 0 {
			return msgs + 1 // no such message
		}
		return 1 + r.IntN(max(msgs, 1))
	}
	cmds := make([]string, 0, n)
	for range n {
		var c string
		switch k := r.IntN(16); {
		case k < 4:
			c = fmt.Sprintf("RETR %d", num())
		case k < 7:
			c = fmt.Sprintf("TOP %d 0", num())
		case k < 8:
			c = fmt.Sprintf("TOP %d %d", num(), []int{1, 2, 5, 1000}[r.IntN(4)])
		case k < 10:
			c = fmt.Sprintf("DELE %d", num())
		case k < 11:
			c = "RSET"
		case k < 12:
			c = "LIST"
		case k < 13:
			c = fmt.Sprintf("LIST %d", num())
		case k < 14:
			c = "UIDL"
		case k < 15:
			c = fmt.Sprintf("UIDL %d", num())
		default:
			c = []string{"NOOP", "STAT"}[r.IntN(2)]
		}
		cmds = append(cmds, c)
	}
	return cmds
}

// multiLine reports whether a positive answer to cmd is multi-line.
func multiLine(cmd string) bool {
	f := strings.Fields(strings.ToUpper(cmd))
	if len(f) == 0 {
		return false
	}
	switch f[0] {
	case "RETR", "TOP":
		return true
	case "LIST", "UIDL":
		return len(f) == 1
	}
	return false
}

// Converse logs in as user and runs cmds over one connection to addr,
// sent as mode says (r cuts the pieces), and returns every answer after
// the greeting, raw: status lines and multi-line bodies with their
// terminators. It closes the connection without QUIT.
func Converse(addr, user, pass string, cmds []string, mode Mode, r *rand.Rand) ([]byte, error) {
	p, err := Dial(addr, 60*time.Second)
	if err != nil {
		return nil, err
	}
	defer p.Close()
	all := append([]string{"USER " + user, "PASS " + pass}, cmds...)
	return p.Converse(all, mode, r)
}

// Converse runs cmds (any state) on an open connection as mode says and
// returns the raw answers; see the function Converse.
func (p *Conn) Converse(cmds []string, mode Mode, r *rand.Rand) ([]byte, error) {
	var out bytes.Buffer
	if mode == OneByOne {
		for _, c := range cmds {
			if err := p.Send(c + "\r\n"); err != nil {
				return out.Bytes(), err
			}
			if err := p.readAnswer(&out, c); err != nil {
				return out.Bytes(), fmt.Errorf("answer to %q: %w", c, err)
			}
		}
		return out.Bytes(), nil
	}
	var script strings.Builder
	for _, c := range cmds {
		script.WriteString(c + "\r\n")
	}
	sent := make(chan error, 1)
	go func() {
		b := []byte(script.String())
		if mode == Pipelined {
			_, err := p.C.Write(b)
			sent <- err
			return
		}
		for len(b) > 0 {
			k := min(len(b), 1+r.IntN(16))
			if _, err := p.C.Write(b[:k]); err != nil {
				sent <- err
				return
			}
			b = b[k:]
		}
		sent <- nil
	}()
	var rerr error
	for _, c := range cmds {
		if rerr = p.readAnswer(&out, c); rerr != nil {
			rerr = fmt.Errorf("answer to %q: %w", c, rerr)
			break
		}
	}
	if rerr != nil {
		p.C.Close() // unblocks the writer
	}
	if err := <-sent; err != nil && rerr == nil {
		rerr = err
	}
	return out.Bytes(), rerr
}

// readAnswer appends cmd's whole answer, raw, to out.
func (p *Conn) readAnswer(out *bytes.Buffer, cmd string) error {
	l, err := p.R.ReadString('\n')
	out.WriteString(l)
	if err != nil {
		return err
	}
	if !strings.HasPrefix(l, "+OK") || !multiLine(cmd) {
		return nil
	}
	for {
		l, err := p.R.ReadString('\n')
		out.WriteString(l)
		switch {
		case errors.Is(err, io.EOF):
			return ErrNoTerminator
		case err != nil:
			return err
		case l == ".\r\n":
			return nil
		}
	}
}

// FirstDiff describes where a and b first differ.
func FirstDiff(a, b []byte) string {
	i := 0
	for i < len(a) && i < len(b) && a[i] == b[i] {
		i++
	}
	lo := max(0, i-80)
	return fmt.Sprintf("at octet %d (lengths %d and %d): %q vs %q", i, len(a), len(b),
		a[lo:min(len(a), i+80)], b[lo:min(len(b), i+80)])
}

// Differential runs iters random scripts (RandomScript, seeded with seed)
// against the gateway at addr, each in every Mode over a new session, and
// returns an error naming the seed and script at the first answer stream
// that differs from one-by-one's. Scripts never QUIT, so each run starts
// from the same mailbox.
func Differential(addr, user, pass string, msgs int, seed uint64, iters int) error {
	r := rand.New(rand.NewPCG(seed, 0))
	for it := range iters {
		cmds := RandomScript(r, msgs, 4+r.IntN(20))
		var ref []byte
		for _, mode := range Modes {
			got, err := Converse(addr, user, pass, cmds, mode, r)
			if err != nil {
				return fmt.Errorf("seed %d, script %d %q, %v: %w", seed, it, cmds, mode, err)
			}
			if mode == OneByOne {
				ref = got
			} else if !bytes.Equal(got, ref) {
				return fmt.Errorf("seed %d, script %d %q: %v answers differ from one-by-one: %s", seed, it, cmds, mode, FirstDiff(got, ref))
			}
		}
	}
	return nil
}
