package testmail

import (
	"bytes"
	"fmt"
)

// Message is one message of the corpus.
type Message struct {
	// Name identifies the message in test output; unique within the corpus.
	Name string
	// Raw is the message as delivered to the store.
	Raw []byte
	// Served is the message as Dovecot's IMAP serves it (BODY[]):
	// DovecotServes(Raw).
	Served []byte
	// Notes says what is tricky about the message.
	Notes string
}

// newMessage builds a Message, computing Served from raw.
func newMessage(name, notes string, raw []byte) Message {
	return Message{Name: name, Raw: raw, Served: DovecotServes(raw), Notes: notes}
}

// DovecotServes returns raw as Dovecot's IMAP serves it: every bare LF
// becomes CRLF and every NUL becomes 0x80. Other bytes, including a bare
// CR, a missing final CRLF and 8-bit bytes, are served unchanged.
func DovecotServes(raw []byte) []byte { return normalise(raw, true) }

// DovecotPOP3Serves returns raw as Dovecot's own POP3 service sends it
// (before dot-stuffing and the final CRLF that POP3Octets adds): every bare
// LF becomes CRLF, but unlike its IMAP service it sends NUL bytes as stored.
// This is the one known content difference between Dovecot's POP3 and a
// gateway serving the same mailbox over IMAP.
func DovecotPOP3Serves(raw []byte) []byte { return normalise(raw, false) }

// normalise turns bare LF into CRLF and, if nul, NUL into 0x80.
func normalise(raw []byte, nul bool) []byte {
	out := make([]byte, 0, len(raw)+len(raw)/64)
	for i, c := range raw {
		switch {
		case c == '\n' && (i == 0 || raw[i-1] != '\r'):
			out = append(out, '\r', '\n')
		case c == 0 && nul:
			out = append(out, 0x80)
		default:
			out = append(out, c)
		}
	}
	return out
}

// POP3Octets returns what a POP3 client receives for a message served as
// served, after the client removed the dot-stuffing and the terminating
// ".\r\n": the message itself, plus CRLF if it did not end with CRLF (RFC 1939
// ends the last line of a multi-line response with CRLF before the ".").
func POP3Octets(served []byte) []byte {
	if len(served) == 0 || bytes.HasSuffix(served, []byte("\r\n")) {
		return bytes.Clone(served)
	}
	return append(bytes.Clone(served), '\r', '\n')
}

// LF returns b with every CRLF replaced by LF, for comparing with clients
// that store messages with Unix line endings (getmail, mpop, fetchmail's
// MDA delivery).
func LF(b []byte) []byte {
	return bytes.ReplaceAll(b, []byte("\r\n"), []byte("\n"))
}

// DotStuff returns the body of a POP3 multi-line response carrying msg,
// without the terminating line: msg ended with CRLF if needed, and a "." put
// before every line that starts with ".".
func DotStuff(msg []byte) []byte {
	m := POP3Octets(msg)
	var out bytes.Buffer
	out.Grow(len(m) + 16)
	atLineStart := true
	for _, c := range m {
		if atLineStart && c == '.' {
			out.WriteByte('.')
		}
		out.WriteByte(c)
		atLineStart = c == '\n'
	}
	return out.Bytes()
}

// header returns a CRLF header block (without the blank line) for a corpus
// message named name.
func header(name, subject string, extra ...string) string {
	h := fmt.Sprintf("Return-Path: <sender@example.org>\r\n"+
		"From: Test Sender <sender@example.org>\r\n"+
		"To: POP User <user@example.org>\r\n"+
		"Subject: %s\r\n"+
		"Date: Thu, 26 Nov 2026 10:00:00 +0000\r\n"+
		"Message-ID: <%s@testmail.popbridge.example>\r\n"+
		"MIME-Version: 1.0\r\n", subject, name)
	for _, e := range extra {
		h += e + "\r\n"
	}
	return h
}
