package pop3test

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"time"
)

// Conn is a minimal wire-level POP3 client. Every method returns errors
// rather than failing a test, so it serves the soak too.
type Conn struct {
	C        net.Conn
	R        *bufio.Reader
	Greeting string
}

// ErrNoTerminator is returned by ReadMulti when the connection ended
// before the "." line: the message must not be treated as complete.
var ErrNoTerminator = errors.New("pop3: connection ended without the terminating line")

// Dial connects, sets an overall deadline and reads the greeting
// (which must be +OK).
func Dial(addr string, deadline time.Duration) (*Conn, error) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, err
	}
	c.SetDeadline(time.Now().Add(deadline))
	p := &Conn{C: c, R: bufio.NewReaderSize(c, 64<<10)}
	g, err := p.Line()
	if err != nil {
		c.Close()
		return nil, err
	}
	if !strings.HasPrefix(g, "+OK") {
		c.Close()
		return nil, fmt.Errorf("pop3 greeting %q", g)
	}
	p.Greeting = g
	return p, nil
}

// Line reads one line without CRLF.
func (p *Conn) Line() (string, error) {
	l, err := p.R.ReadString('\n')
	if err != nil {
		return strings.TrimRight(l, "\r\n"), err
	}
	return strings.TrimRight(l, "\r\n"), nil
}

// Send writes raw bytes (pipelining: several commands at once).
func (p *Conn) Send(raw string) error {
	_, err := io.WriteString(p.C, raw)
	return err
}

// Cmd sends one command and returns its status line.
func (p *Conn) Cmd(cmd string) (string, error) {
	if err := p.Send(cmd + "\r\n"); err != nil {
		return "", err
	}
	return p.Line()
}

// OK sends a command whose reply must start with +OK.
func (p *Conn) OK(cmd string) (string, error) {
	l, err := p.Cmd(cmd)
	if err != nil {
		return l, fmt.Errorf("%s: %w", redact(cmd), err)
	}
	if !strings.HasPrefix(l, "+OK") {
		return l, fmt.Errorf("%s: %q", redact(cmd), l)
	}
	return l, nil
}

func redact(cmd string) string {
	if strings.HasPrefix(strings.ToUpper(cmd), "PASS ") {
		return "PASS ***"
	}
	return cmd
}

// Login sends USER and PASS.
func (p *Conn) Login(user, pass string) error {
	if _, err := p.OK("USER " + user); err != nil {
		return err
	}
	_, err := p.OK("PASS " + pass)
	return err
}

// ReadMulti reads the body of a multi-line reply after its status line,
// un-stuffed, up to the terminator. It returns what it read and
// ErrNoTerminator (or the read error) if the terminator never came.
func (p *Conn) ReadMulti() ([]byte, error) {
	var out bytes.Buffer
	for {
		l, err := p.R.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			out.Write(l)
			continue
		}
		if err != nil {
			out.Write(l)
			if err == io.EOF {
				err = ErrNoTerminator
			}
			return out.Bytes(), err
		}
		if bytes.Equal(l, []byte(".\r\n")) {
			return out.Bytes(), nil
		}
		if len(l) > 0 && l[0] == '.' && (out.Len() == 0 || out.Bytes()[out.Len()-1] == '\n') {
			l = l[1:]
		}
		out.Write(l)
	}
}

// Retr sends RETR n and returns the message (un-stuffed).
func (p *Conn) Retr(n int) ([]byte, error) {
	if _, err := p.OK(fmt.Sprintf("RETR %d", n)); err != nil {
		return nil, err
	}
	return p.ReadMulti()
}

// UIDL returns the unique-id listing, index 0 for message 1.
func (p *Conn) UIDL() ([]string, error) {
	if _, err := p.OK("UIDL"); err != nil {
		return nil, err
	}
	b, err := p.ReadMulti()
	if err != nil {
		return nil, err
	}
	var out []string
	for _, l := range strings.Split(strings.TrimRight(string(b), "\r\n"), "\r\n") {
		if f := strings.Fields(l); len(f) == 2 {
			out = append(out, f[1])
		}
	}
	return out, nil
}

// Quit sends QUIT and returns its reply line, then closes.
func (p *Conn) Quit() (string, error) {
	defer p.C.Close()
	return p.Cmd("QUIT")
}

// Close closes the connection.
func (p *Conn) Close() error { return p.C.Close() }
