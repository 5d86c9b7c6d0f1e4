package fakeimap

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Conn is one client connection as a script sees it.
type Conn struct {
	s     *Server
	index int
	nc    net.Conn
	br    *bufio.Reader
	done  chan struct{}

	mu    sync.Mutex
	lines []string
	tag   string
	step  int
}

// Index is the connection's accept order.
func (c *Conn) Index() int { return c.index }

// Tag is the tag of the last line an Expect step matched.
func (c *Conn) Tag() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.tag
}

// Received returns the lines received so far.
func (c *Conn) Received() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.lines...)
}

// Done returns a channel closed when the script ended.
func (c *Conn) Done() <-chan struct{} { return c.done }

// Write sends raw bytes, with "$tag" replaced by the current tag.
func (c *Conn) Write(s string) error {
	s = strings.ReplaceAll(s, "$tag", c.Tag())
	c.nc.SetWriteDeadline(time.Now().Add(c.s.timeout))
	_, err := io.WriteString(c.nc, s)
	return err
}

// WriteBytes sends raw bytes unchanged.
func (c *Conn) WriteBytes(b []byte) error {
	c.nc.SetWriteDeadline(time.Now().Add(c.s.timeout))
	_, err := c.nc.Write(b)
	return err
}

var literalEnd = regexp.MustCompile(`\{(\d+)(\+?)\}$`)

// maxLiteral bounds a client literal the fake accepts.
const maxLiteral = 1 << 20

// ReadLine reads one command line (without CRLF) within timeout,
// records it and returns it. A client literal ({n} or {n+}) is read
// (answering "+ go ahead" to a synchronizing one) and appended to the
// line, followed by the rest of the command.
func (c *Conn) ReadLine(timeout time.Duration) (string, error) {
	c.nc.SetReadDeadline(time.Now().Add(timeout))
	var full strings.Builder
	for {
		line, err := c.br.ReadString('\n')
		if err != nil {
			if full.Len() > 0 || line != "" {
				c.record(full.String() + line)
			}
			return "", err
		}
		line = strings.TrimRight(line, "\r\n")
		full.WriteString(line)
		m := literalEnd.FindStringSubmatch(line)
		if m == nil {
			break
		}
		n, _ := strconv.Atoi(m[1])
		if n > maxLiteral {
			return "", fmt.Errorf("client literal of %d octets", n)
		}
		if m[2] == "" {
			if err := c.Write("+ go ahead\r\n"); err != nil {
				return "", err
			}
		}
		lit := make([]byte, n)
		if _, err := io.ReadFull(c.br, lit); err != nil {
			return "", err
		}
		full.Write(lit)
	}
	l := full.String()
	c.record(l)
	return l, nil
}

func (c *Conn) record(l string) {
	c.mu.Lock()
	c.lines = append(c.lines, l)
	c.mu.Unlock()
}

// Fail reports a script failure for this connection and position.
func (c *Conn) Fail(format string, args ...any) {
	c.mu.Lock()
	step := c.step
	c.mu.Unlock()
	c.s.t.Errorf("fakeimap: connection %d, step %d: %s", c.index, step, fmt.Sprintf(format, args...))
}

// errStop ends a script early without a failure (Close, Reset, EOF).
var errStop = errors.New("script stopped")

func (c *Conn) play(script Script) {
	for i, st := range script {
		c.mu.Lock()
		c.step = i
		c.mu.Unlock()
		if err := st.run(c); err != nil {
			if err != errStop {
				c.Fail("%s: %v", st.name, err)
			}
			return
		}
	}
}

// isClosed reports an error from a connection the client (or Close)
// ended.
func isClosed(err error) bool {
	if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) {
		return true
	}
	var ne *net.OpError
	return errors.As(err, &ne) && !ne.Timeout()
}
