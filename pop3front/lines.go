package pop3front

import (
	"bufio"
	"bytes"
	"errors"
)

// errLineTooLong reports a command or SASL line over Limits.MaxLineLength.
var errLineTooLong = errors.New("pop3: line too long")

// minReadBuffer is the smallest read buffer: large enough to hold a typical
// pipelined script, so that PIPELINING clients get their replies in few
// writes.
const minReadBuffer = 4096

// lineReader reads CRLF (or bare LF) terminated lines with a hard bound.
// net/textproto's ReadLine grows without limit; this one never holds more
// than its bufio.Reader's buffer, so a megabyte without a line end sent
// byte by byte costs one buffer and ends with errLineTooLong.
type lineReader struct {
	r   *bufio.Reader
	max int // longest accepted line, terminator not counted
}

func newLineReader(r *bufio.Reader, limit int) lineReader {
	return lineReader{r: r, max: limit}
}

// readBufferSize is the bufio.Reader size for lines of at most limit
// octets: the line and its CRLF must fit.
func readBufferSize(limit int) int {
	return max(minReadBuffer, limit+2)
}

// readLine returns the next line without its terminator. The slice is only
// valid until the next read. A partial line at EOF is dropped and the
// error returned, as a command without its CRLF was never sent.
func (lr *lineReader) readLine() ([]byte, error) {
	line, err := lr.r.ReadSlice('\n')
	if err == bufio.ErrBufferFull {
		return nil, errLineTooLong
	}
	if err != nil {
		return nil, err
	}
	line = line[:len(line)-1]
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	if len(line) > lr.max {
		return nil, errLineTooLong
	}
	return line, nil
}

// hasLine reports whether a complete line is already buffered, so reading
// it will not block. PIPELINING (RFC 2449 section 6.6) output is flushed
// only when it is false.
func (lr *lineReader) hasLine() bool {
	n := lr.r.Buffered()
	if n == 0 {
		return false
	}
	b, _ := lr.r.Peek(n)
	return bytes.IndexByte(b, '\n') >= 0
}
