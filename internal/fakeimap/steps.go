package fakeimap

import (
	"fmt"
	"net"
	"regexp"
	"strings"
	"time"
)

// Step is one action of a script.
type Step struct {
	name string
	run  func(c *Conn) error
}

// String names the step, for failure messages.
func (s Step) String() string { return s.name }

// Script is what one connection plays, step by step.
type Script []Step

// S builds a script from Steps and Scripts, flattened in order.
func S(parts ...any) Script {
	var out Script
	for _, p := range parts {
		switch v := p.(type) {
		case Step:
			out = append(out, v)
		case Script:
			out = append(out, v...)
		case []Step:
			out = append(out, v...)
		default:
			panic(fmt.Sprintf("fakeimap.S: %T is neither a Step nor a Script", p))
		}
	}
	return out
}

// Func is a custom step: f gets the connection and returns an error to
// fail the test (or ErrStop to end the script quietly).
func Func(name string, f func(c *Conn) error) Step { return Step{name, f} }

// ErrStop, returned by a Func step, ends the script without failing.
var ErrStop = errStop

// Expect reads one line and requires it to match pattern, a regular
// expression matched case-insensitively against the whole line after the
// tag (so `LOGIN .*` matches `T1 LOGIN "u" "p"`). A pattern that names a
// group "tag" is matched against the whole line instead and the group is
// the tag. The matched tag is kept for SendTagged. End of input, a
// timeout or a mismatch fails the test.
func Expect(pattern string) Step {
	full := pattern
	if !strings.Contains(pattern, "(?P<tag>") {
		full = `(?P<tag>\S+) (?:` + pattern + `)`
	}
	re := regexp.MustCompile(`(?is)^(?:` + full + `)$`)
	name := "Expect(" + pattern + ")"
	return Step{name, func(c *Conn) error {
		line, err := c.ReadLine(c.s.timeout)
		if err != nil {
			return fmt.Errorf("no line: %v", err)
		}
		m := re.FindStringSubmatch(line)
		if m == nil {
			return fmt.Errorf("unexpected input %q", line)
		}
		c.mu.Lock()
		c.tag = m[re.SubexpIndex("tag")]
		c.mu.Unlock()
		return nil
	}}
}

// ExpectEOF requires the client to close the connection without sending
// anything more (within the timeout). It ends the script.
func ExpectEOF() Step {
	return Step{"ExpectEOF", func(c *Conn) error {
		line, err := c.ReadLine(c.s.timeout)
		if err == nil {
			return fmt.Errorf("unexpected input %q, want the connection closed", line)
		}
		if isClosed(err) {
			return errStop
		}
		return fmt.Errorf("connection not closed: %v", err)
	}}
}

// ExpectLogoutOrEOF accepts either LOGOUT (answered with BYE and OK) or
// the connection closing; anything else fails. It ends the script.
func ExpectLogoutOrEOF() Step {
	return Step{"ExpectLogoutOrEOF", func(c *Conn) error {
		line, err := c.ReadLine(c.s.timeout)
		if err != nil {
			if isClosed(err) {
				return errStop
			}
			return fmt.Errorf("neither LOGOUT nor close: %v", err)
		}
		f := strings.Fields(line)
		if len(f) != 2 || !strings.EqualFold(f[1], "LOGOUT") {
			return fmt.Errorf("unexpected input %q, want LOGOUT or close", line)
		}
		c.Write("* BYE Logging out\r\n" + f[0] + " OK Logout completed\r\n")
		return errStop
	}}
}

// Send writes line and CRLF; "$tag" becomes the last matched tag.
func Send(line string) Step {
	return Step{"Send(" + line + ")", func(c *Conn) error { return c.Write(line + "\r\n") }}
}

// SendTagged writes the last matched tag, a space, rest and CRLF.
func SendTagged(rest string) Step {
	return Step{"SendTagged(" + rest + ")", func(c *Conn) error { return c.Write("$tag " + rest + "\r\n") }}
}

// SendRaw writes s as is (no CRLF added, "$tag" still replaced).
func SendRaw(s string) Step {
	return Step{"SendRaw", func(c *Conn) error { return c.Write(s) }}
}

// Literal writes prefix, "{len(body)}" CRLF, body, suffix and CRLF: a
// whole response line carrying one literal, e.g.
// Literal(`* 1 FETCH (UID 1 BODY[] `, body, `)`).
func Literal(prefix string, body []byte, suffix string) Step {
	return Step{"Literal(" + prefix + ")", func(c *Conn) error {
		if err := c.Write(fmt.Sprintf("%s{%d}\r\n", prefix, len(body))); err != nil {
			return err
		}
		if err := c.WriteBytes(body); err != nil {
			return err
		}
		return c.Write(suffix + "\r\n")
	}}
}

// ShortLiteral writes prefix and "{declared}" CRLF, then only body
// (shorter than declared): the rest never comes. Follow it with Hang,
// Close or Reset.
func ShortLiteral(prefix string, declared int, body []byte) Step {
	return Step{"ShortLiteral(" + prefix + ")", func(c *Conn) error {
		if len(body) >= declared {
			return fmt.Errorf("ShortLiteral: body of %d octets is not shorter than %d", len(body), declared)
		}
		if err := c.Write(fmt.Sprintf("%s{%d}\r\n", prefix, declared)); err != nil {
			return err
		}
		return c.WriteBytes(body)
	}}
}

// Hang stops answering: input is read and recorded but never answered,
// until the client closes the connection (or the server is closed). A
// client that never gives up fails the test after the timeout. It ends
// the script.
func Hang() Step {
	return Step{"Hang", func(c *Conn) error {
		for {
			_, err := c.ReadLine(c.s.timeout)
			if err == nil {
				continue
			}
			if isClosed(err) {
				return errStop
			}
			return fmt.Errorf("client still connected after %v of silence", c.s.timeout)
		}
	}}
}

// Close closes the connection (FIN). It ends the script.
func Close() Step {
	return Step{"Close", func(c *Conn) error { c.nc.Close(); return errStop }}
}

// Reset closes the connection with RST. It ends the script.
func Reset() Step {
	return Step{"Reset", func(c *Conn) error {
		if tc, ok := c.nc.(*net.TCPConn); ok {
			tc.SetLinger(0)
		}
		c.nc.Close()
		return errStop
	}}
}

// Sleep pauses the script.
func Sleep(d time.Duration) Step {
	return Step{"Sleep", func(*Conn) error { time.Sleep(d); return nil }}
}
