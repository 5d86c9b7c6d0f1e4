package main

// Cheap POP3 and IMAP clients: one bufio reader and writer per connection,
// no allocation per line, bodies counted rather than stored. They are just
// enough to drive the scenarios and check sizes, so the client's own CPU
// stays small next to the servers'.

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"
)

const clientBuf = 64 << 10

var ioTimeout = 2 * time.Minute

type conn struct {
	c  net.Conn
	br *bufio.Reader
	bw *bufio.Writer
}

func dial(addr string) (*conn, error) {
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return nil, err
	}
	c.SetDeadline(time.Now().Add(ioTimeout))
	return &conn{c: c, br: bufio.NewReaderSize(c, clientBuf), bw: bufio.NewWriterSize(c, 4096)}, nil
}

func (c *conn) Close() error { return c.c.Close() }

// line reads one line (without CRLF); the slice is valid until the next read.
func (c *conn) line() ([]byte, error) {
	l, err := c.br.ReadSlice('\n')
	if err == bufio.ErrBufferFull {
		return nil, errors.New("line too long")
	}
	if err != nil {
		return nil, err
	}
	return bytes.TrimRight(l, "\r\n"), nil
}

func (c *conn) send(s string) error {
	c.bw.WriteString(s)
	c.bw.WriteString("\r\n")
	return c.bw.Flush()
}

// ---- POP3 ----

type popConn struct{ conn }

func dialPOP(addr string) (*popConn, error) {
	c, err := dial(addr)
	if err != nil {
		return nil, err
	}
	p := &popConn{*c}
	if _, err := p.status(); err != nil {
		c.Close()
		return nil, fmt.Errorf("greeting: %w", err)
	}
	return p, nil
}

// status reads a status line; -ERR is an error.
func (p *popConn) status() ([]byte, error) {
	l, err := p.line()
	if err != nil {
		return nil, err
	}
	if !bytes.HasPrefix(l, []byte("+OK")) {
		return nil, fmt.Errorf("server said %q", l)
	}
	return l, nil
}

func (p *popConn) cmd(s string) ([]byte, error) {
	if err := p.send(s); err != nil {
		return nil, err
	}
	return p.status()
}

func (p *popConn) login(user, pass string) error {
	if _, err := p.cmd("USER " + user); err != nil {
		return err
	}
	_, err := p.cmd("PASS " + pass)
	return err
}

// multi reads a multi-line body up to its terminator and returns the
// octets it holds after removing dot-stuffing, and its line count.
func (p *popConn) multi() (octets int64, lines int, err error) {
	for {
		l, err := p.br.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			// A long line: count it in pieces.
			octets += int64(len(l))
			continue
		}
		if err != nil {
			return octets, lines, err
		}
		if len(l) > 0 && l[0] == '.' {
			if len(l) == 3 && l[1] == '\r' {
				return octets, lines, nil
			}
			l = l[1:]
		}
		octets += int64(len(l))
		lines++
	}
}

// multiCmd sends a command with a multi-line answer and reads it.
func (p *popConn) multiCmd(s string) (int64, int, error) {
	if _, err := p.cmd(s); err != nil {
		return 0, 0, err
	}
	return p.multi()
}

// listSizes reads a LIST body into sizes.
func (p *popConn) list() ([]int64, error) {
	if _, err := p.cmd("LIST"); err != nil {
		return nil, err
	}
	var sizes []int64
	for {
		l, err := p.line()
		if err != nil {
			return nil, err
		}
		if len(l) == 1 && l[0] == '.' {
			return sizes, nil
		}
		i := bytes.IndexByte(l, ' ')
		if i < 0 {
			return nil, fmt.Errorf("bad LIST line %q", l)
		}
		n, err := strconv.ParseInt(string(l[i+1:]), 10, 64)
		if err != nil {
			return nil, err
		}
		sizes = append(sizes, n)
	}
}

func (p *popConn) quit() error {
	_, err := p.cmd("QUIT")
	p.Close()
	return err
}

// retrAllCmd downloads the messages idx (0-based; "RETR n" or "TOP n 0") with up to depth RETRs in flight and
// checks every size against sizes (which may be nil). lat, if not nil,
// receives each RETR's latency (send to terminator).
func (p *popConn) retrAllCmd(cmd string, idx []int, sizes []int64, depth int, lat *[]time.Duration) (int64, error) {
	var total int64
	sent := 0
	var starts []time.Time
	for got := 0; got < len(idx); got++ {
		for sent < len(idx) && sent-got < depth {
			if cmd == "TOP" {
				fmt.Fprintf(p.bw, "TOP %d 0\r\n", idx[sent]+1)
			} else {
				fmt.Fprintf(p.bw, "%s %d\r\n", cmd, idx[sent]+1)
			}
			starts = append(starts, time.Now())
			sent++
		}
		if err := p.bw.Flush(); err != nil {
			return total, err
		}
		if _, err := p.status(); err != nil {
			return total, fmt.Errorf("%s %d: %w", cmd, idx[got]+1, err)
		}
		n, _, err := p.multi()
		if err != nil {
			return total, err
		}
		if lat != nil {
			*lat = append(*lat, time.Since(starts[got]))
		}
		if sizes != nil && cmd == "RETR" && n != sizes[idx[got]] {
			return total, fmt.Errorf("RETR %d: %d octets, LIST said %d", idx[got]+1, n, sizes[idx[got]])
		}
		total += n
	}
	return total, nil
}

// ---- IMAP ----

type imapConn struct {
	conn
	tag int
}

func dialIMAP(addr string) (*imapConn, error) {
	c, err := dial(addr)
	if err != nil {
		return nil, err
	}
	ic := &imapConn{conn: *c}
	l, err := ic.line()
	if err != nil || !bytes.HasPrefix(l, []byte("* OK")) {
		c.Close()
		return nil, fmt.Errorf("greeting %q: %v", l, err)
	}
	return ic, nil
}

// write sends a tagged command without flushing and returns its tag.
func (c *imapConn) write(s string) string {
	c.tag++
	tag := "b" + strconv.Itoa(c.tag)
	c.bw.WriteString(tag)
	c.bw.WriteByte(' ')
	c.bw.WriteString(s)
	c.bw.WriteString("\r\n")
	return tag
}

// untagged is called for each untagged response line (literals already
// read and counted into lit); it may keep nothing of line.
type untaggedFunc func(line []byte, lit int64)

// wait reads responses until tag completes; it returns the literal octets
// of the untagged responses.
func (c *imapConn) wait(tag string, f untaggedFunc) (int64, error) {
	var total int64
	for {
		l, err := c.line()
		if err != nil {
			return total, err
		}
		if bytes.HasPrefix(l, []byte(tag)) && len(l) > len(tag) && l[len(tag)] == ' ' {
			if !bytes.HasPrefix(l[len(tag)+1:], []byte("OK")) {
				return total, fmt.Errorf("%s", l)
			}
			return total, nil
		}
		// A line ending in {n} is followed by n literal octets and the
		// rest of the response.
		var lit int64
		for {
			n, ok := literalSize(l)
			if !ok {
				break
			}
			if f != nil {
				f(l, -1)
			}
			if _, err := c.br.Discard(int(n)); err != nil {
				return total, err
			}
			lit += n
			if l, err = c.line(); err != nil {
				return total, err
			}
		}
		total += lit
		if f != nil {
			f(l, lit)
		}
	}
}

func literalSize(l []byte) (int64, bool) {
	if len(l) < 3 || l[len(l)-1] != '}' {
		return 0, false
	}
	i := bytes.LastIndexByte(l, '{')
	if i < 0 {
		return 0, false
	}
	n, err := strconv.ParseInt(string(l[i+1:len(l)-1]), 10, 64)
	return n, err == nil
}

func (c *imapConn) do(s string, f untaggedFunc) (int64, error) {
	tag := c.write(s)
	if err := c.bw.Flush(); err != nil {
		return 0, err
	}
	return c.wait(tag, f)
}

func quoteIMAP(s string) string { return strconv.Quote(s) }

func (c *imapConn) login(user, pass string) error {
	_, err := c.do("LOGIN "+quoteIMAP(user)+" "+quoteIMAP(pass), nil)
	return err
}

// snapshot runs EXAMINE and UID FETCH 1:* (UID RFC822.SIZE) and returns
// the UIDs and sizes, ordered as received.
func (c *imapConn) snapshot() (uids []uint32, sizes []int64, err error) {
	if _, err := c.do("EXAMINE INBOX", nil); err != nil {
		return nil, nil, err
	}
	_, err = c.do("UID FETCH 1:* (UID RFC822.SIZE)", func(l []byte, _ int64) {
		if u, ok := fetchNum(l, "UID "); ok {
			uids = append(uids, uint32(u))
			s, _ := fetchNum(l, "RFC822.SIZE ")
			sizes = append(sizes, s)
		}
	})
	return uids, sizes, err
}

func fetchNum(l []byte, key string) (int64, bool) {
	i := bytes.Index(l, []byte(key))
	if i < 0 {
		return 0, false
	}
	j := i + len(key)
	var v int64
	k := j
	for k < len(l) && '0' <= l[k] && l[k] <= '9' {
		v = v*10 + int64(l[k]-'0')
		k++
	}
	return v, k > j
}

func (c *imapConn) logout() {
	c.do("LOGOUT", nil)
	c.Close()
}

// fetchAll fetches item for each UID with up to depth commands in flight
// and returns the literal octets received.
func (c *imapConn) fetchAll(uids []uint32, item string, depth int, lat *[]time.Duration) (int64, error) {
	var total int64
	tags := make([]string, 0, len(uids))
	var starts []time.Time
	sent := 0
	for got := 0; got < len(uids); got++ {
		for sent < len(uids) && sent-got < depth {
			tags = append(tags, c.write(fmt.Sprintf("UID FETCH %d (%s)", uids[sent], item)))
			starts = append(starts, time.Now())
			sent++
		}
		if err := c.bw.Flush(); err != nil {
			return total, err
		}
		n, err := c.wait(tags[got], nil)
		if err != nil {
			return total, err
		}
		if lat != nil {
			*lat = append(*lat, time.Since(starts[got]))
		}
		total += n
	}
	return total, nil
}
