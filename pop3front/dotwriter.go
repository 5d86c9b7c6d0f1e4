package pop3front

import (
	"bufio"
	"bytes"
	"errors"
)

// errTopDone is returned by dotWriter.Write once a TOP body has all the
// lines it asked for: the caller stops reading the stream.
var errTopDone = errors.New("pop3: top line count reached")

var (
	crlf       = []byte("\r\n")
	stuffedDot = []byte(".")
	terminator = []byte(".\r\n")
)

// dotReserve is the room dotWriter keeps free in its buffer, so that the
// terminator (with the CRLF a message may lack) is always written in the
// same flush as the last body octets. Thunderbird misreads a multi-line
// reply whose final ".\r\n" arrives in a separate segment.
const dotReserve = len("\r\n.\r\n")

// minDotBuffer is the smallest bufio.Writer dotWriter accepts.
const minDotBuffer = 64

// dotWriter encodes a message as the body of a POP3 multi-line response
// (RFC 1939 section 3) as Dovecot's POP3 does: a bare LF becomes CRLF, a
// bare CR is data and passes unchanged (so the octets sent, before
// stuffing, are the octets the server counted), a line starting with "."
// gets another "." in front, a message not ending in a line end gets
// CRLF, and Close adds the ".\r\n" terminator. Its state survives chunk boundaries, so any split of the
// input gives the same output; it never allocates.
//
// For TOP it also cuts the message after the header, the blank line and
// limit body lines (RFC 1939 section 7), and then reports errTopDone.
//
// Unlike net/textproto's DotWriter it writes through a caller's
// bufio.Writer without flushing at Close, and copies every octet through
// that buffer (never around it), keeping dotReserve octets free: the
// session decides when to flush, and the terminator never travels alone.
type dotWriter struct {
	w        *bufio.Writer
	bol      bool // the next input octet starts a line
	cr       bool // the last input octet was a CR, not yet written
	top      bool // cut after the header and limit body lines
	inHeader bool
	limit    int
	lines    int   // body lines written (TOP)
	done     bool  // TOP has all its lines
	in       int64 // input octets consumed
	err      error // first write error, sticky
}

// reset prepares d for a new message written to w. w must be at least
// minDotBuffer octets large.
func (d *dotWriter) reset(w *bufio.Writer, top bool, bodyLines int) {
	if w.Size() < minDotBuffer {
		panic("pop3front: dotWriter buffer too small")
	}
	*d = dotWriter{w: w, bol: true, top: top, inHeader: top, limit: bodyLines}
	if w.Available() < dotReserve {
		d.err = w.Flush()
	}
}

// Write encodes p. It returns errTopDone (with the octets consumed up to
// the cut) when a TOP body is complete, and the first write error of the
// underlying writer otherwise.
func (d *dotWriter) Write(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		if d.err != nil {
			d.in += int64(n)
			return n, d.err
		}
		if d.done {
			d.in += int64(n)
			return n, errTopDone
		}
		b := p[n:]
		if !d.top && !d.cr && !(d.bol && b[0] == '.') {
			// The common case: whole CRLF lines, none starting with a
			// dot, copied as they are in one piece.
			if k := cleanLines(b); k > 0 {
				d.put(b[:k])
				d.bol = true
				n += k
				continue
			}
		}
		if d.cr {
			// A CR ended the last input and was held back: with an LF
			// right after it, it is a line end; alone, it is data.
			d.cr = false
			if b[0] == '\n' {
				d.put(crlf)
				d.endLine(d.bol)
				n++
				continue
			}
			d.put(crlf[:1])
			d.bol = false
		}
		if d.bol && b[0] == '.' {
			d.put(stuffedDot)
		}
		lf := bytes.IndexByte(b, '\n')
		if lf < 0 {
			// No line end: all of it is data, but a final CR may be
			// the first half of a CRLF split across writes.
			k := len(b)
			if b[k-1] == '\r' {
				k--
				d.cr = true
			}
			if k > 0 {
				d.put(b[:k])
				d.bol = false
			}
			n = len(p)
			continue
		}
		// A line: CRLF, or a bare LF, which becomes CRLF. CRs before
		// it are data.
		line := b[:lf]
		empty := d.bol && (lf == 0 || lf == 1 && b[0] == '\r')
		if lf > 0 && b[lf-1] == '\r' {
			line = b[:lf-1]
		}
		d.put(line)
		d.put(crlf)
		d.endLine(empty)
		n += lf + 1
	}
	d.in += int64(n)
	return n, d.err
}

// cleanLines returns the length of the longest prefix of b made of
// complete lines that need no change: each ends in CRLF, holds no other
// CR or LF, and (after the first, which the caller checked) does not
// start with a dot. It is 0 when the first line needs the careful path.
// One IndexByte per line and one CR count over the prefix: no per-octet
// loop in Go.
func cleanLines(b []byte) int {
	n, lines := 0, 0
	for {
		lf := bytes.IndexByte(b[n:], '\n')
		if lf < 1 || b[n+lf-1] != '\r' {
			break // no complete line left, or a bare LF
		}
		n += lf + 1
		lines++
		if n < len(b) && b[n] == '.' {
			break // the next line needs stuffing
		}
	}
	if n == 0 || bytes.Count(b[:n], crlf[:1]) != lines {
		return 0 // a stray CR somewhere: take the careful path
	}
	return n
}

// endLine records a line end; empty tells whether the line was empty.
func (d *dotWriter) endLine(empty bool) {
	d.bol = true
	if !d.top || d.done {
		return
	}
	if d.inHeader {
		if empty {
			d.inHeader = false
			d.done = d.limit == 0
		}
		return
	}
	d.lines++
	d.done = d.lines >= d.limit
}

// put copies b into the buffer, flushing only when fewer than dotReserve
// octets would remain free (or a CRLF would be split).
func (d *dotWriter) put(b []byte) {
	for len(b) > 0 && d.err == nil {
		room := d.w.Available() - dotReserve
		// A CRLF is never split either: the last write then holds at
		// least "\r\n.\r\n".
		if room <= 0 || room < len(b) && len(b) <= len(crlf) {
			d.err = d.w.Flush()
			continue
		}
		room = min(room, len(b))
		if _, err := d.w.Write(b[:room]); err != nil {
			d.err = err
			return
		}
		b = b[room:]
	}
}

// Done reports whether a TOP body has all its lines.
func (d *dotWriter) Done() bool { return d.done }

// Close ends the body: a CRLF if the message did not end with a line end,
// then the terminator. It does not flush. Call it only after the whole
// message (or the whole TOP cut) was written.
func (d *dotWriter) Close() error {
	if d.err != nil {
		return d.err
	}
	if d.cr {
		d.put(crlf[:1]) // a bare CR ended the message
		d.cr, d.bol = false, false
		if d.err != nil {
			return d.err
		}
	}
	// The reserve guarantees both fit without a flush.
	if !d.bol {
		d.w.Write(crlf)
	}
	_, d.err = d.w.Write(terminator)
	return d.err
}
