package pop3front

import (
	"errors"
	"strconv"
	"strings"
)

// maxReplyLine is the longest status line, CRLF included (RFC 2449
// section 4: responses may be up to 512 octets).
const maxReplyLine = 512

// Fixed reply texts. Client bytes are never echoed: a reply is built only
// from these, numbers the server formats, and sanitised strings.
const (
	textAuthFailed     = "[AUTH] Authentication failed."
	textTempFailure    = "[SYS/TEMP] Temporary failure, try again later."
	textShuttingDown   = "[SYS/TEMP] Server shutting down"
	textLoginTimeout   = "[SYS/TEMP] Login timeout"
	textIdleTimeout    = "[SYS/TEMP] Idle timeout"
	textLineTooLong    = "Line too long"
	textTooManyBad     = "Too many bad commands"
	textUnknown        = "Unknown command."
	textBadChars       = "Invalid characters in command."
	textNotLoggedIn    = "Not logged in."
	textLoggedIn       = "Already logged in."
	textNoArgs         = "Too many arguments."
	textMissingMsg     = "Missing message number."
	textBadMsg         = "Invalid message number."
	textNoSuchMsg      = "No such message."
	textMissingLines   = "Missing line count."
	textBadLines       = "Invalid line count."
	textMissingUser    = "Missing user name."
	textUserFirst      = "USER first."
	textCancelled      = "Authentication cancelled."
	textBadBase64      = "Invalid base64 data."
	textBadSASL        = "Malformed SASL response."
	textUnsupportedMec = "Unsupported authentication mechanism."
	textCommitFailed   = "Temporary failure, no changes made."
)

// writeLine writes prefix, text and CRLF, cutting text so that the line
// fits maxReplyLine. text must already be safe (see safeText).
func (s *session) writeLine(prefix, text string) {
	if s.tracing {
		s.trace("S", strings.TrimSpace(prefix+" "+text))
	}
	if text == "" {
		s.bw.WriteString(prefix)
		s.bw.Write(crlf)
		return
	}
	if room := maxReplyLine - len(prefix) - 1 - len(crlf); len(text) > room {
		text = text[:room]
	}
	s.bw.WriteString(prefix)
	s.bw.WriteByte(' ')
	s.bw.WriteString(text)
	s.bw.Write(crlf)
}

func (s *session) ok(text string)  { s.writeLine("+OK", text) }
func (s *session) err(text string) { s.writeLine("-ERR", text) }

// okNums writes "+OK a b[ suffix]" (STAT, LIST n, RETR) without
// allocating.
func (s *session) okNums(a, b int64, suffix string) {
	buf := s.bw.AvailableBuffer()
	buf = append(buf, "+OK "...)
	buf = strconv.AppendInt(buf, a, 10)
	if b >= 0 {
		buf = append(buf, ' ')
		buf = strconv.AppendInt(buf, b, 10)
	}
	if suffix != "" {
		buf = append(buf, ' ')
		buf = append(buf, suffix...)
	}
	buf = append(buf, crlf...)
	s.traceServer(buf)
	s.bw.Write(buf)
}

// errMsg writes "-ERR Message n <what>".
func (s *session) errMsg(num int, what string) {
	buf := s.bw.AvailableBuffer()
	buf = append(buf, "-ERR Message "...)
	buf = strconv.AppendInt(buf, int64(num), 10)
	buf = append(buf, ' ')
	buf = append(buf, what...)
	buf = append(buf, crlf...)
	s.bw.Write(buf)
}

// errReply writes the reply for a backend error other than a login
// failure: an *Error with text as "-ERR [Code] Text", anything else as the
// generic [SYS/TEMP] text (upstream text never reaches the client).
func (s *session) errReply(err error) {
	var pe *Error
	if errors.As(err, &pe) && pe.Text != "" {
		s.err(errorText(pe.Code, pe.Text))
		return
	}
	s.err(textTempFailure)
}

// errorText formats a response code and text (RFC 2449 section 8) from
// backend strings, sanitised.
func errorText(code, text string) string {
	text = safeText(text, maxReplyLine-16)
	if code = safeCode(code); code != "" {
		return "[" + code + "] " + text
	}
	return text
}

// safeCode returns code if it is a well-formed response code (RFC 2449
// section 8: atoms separated by "/"), SYS/TEMP otherwise; "" stays "".
func safeCode(code string) string {
	if code == "" {
		return ""
	}
	if len(code) > 64 {
		return CodeSysTemp
	}
	for i := 0; i < len(code); i++ {
		c := code[i]
		if !(c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '/') {
			return CodeSysTemp
		}
	}
	return code
}

// safeText makes s fit a reply line: printable ASCII only (anything else
// becomes "?", controls become spaces), at most limit octets. It allocates
// only when it changes something.
func safeText(s string, limit int) string {
	clean := len(s) <= limit
	for i := 0; clean && i < len(s); i++ {
		clean = s[i] >= 0x20 && s[i] < 0x7f
	}
	if clean {
		return s
	}
	b := make([]byte, 0, min(len(s), limit))
	for i := 0; i < len(s) && len(b) < limit; i++ {
		switch c := s[i]; {
		case c < 0x20 || c == 0x7f:
			b = append(b, ' ')
		case c >= 0x80:
			b = append(b, '?')
		default:
			b = append(b, c)
		}
	}
	return string(b)
}
