package testmail

import (
	"fmt"
	"strings"
)

// Tricky returns the small tricky messages (everything but Big), in a fixed
// order. Each call returns fresh slices.
func Tricky() []Message {
	return []Message{
		newMessage("dot-lines", "lines that are exactly \".\", \"..\", \"...\" in the body",
			[]byte(header("dot-lines", "Lines that are dots")+"\r\n"+
				"First line.\r\n.\r\nafter a lone dot\r\n..\r\n...\r\n.\r\n.\r\nend\r\n")),
		newMessage("leading-dots", "body lines starting with \".\", first and last body line included",
			[]byte(header("leading-dots", "Leading dots")+"\r\n"+
				".first body line starts with a dot\r\n"+
				".. two dots\r\n. dot space\r\n.x\r\n..x\r\nnormal\r\n"+
				"\t.tab-dot is not stuffed\r\n .space-dot is not stuffed\r\n"+
				".last line starts with a dot\r\n")),
		newMessage("ends-with-dot-line", "the last line is a lone \".\" (stuffed it sits just before the terminator)",
			[]byte(header("ends-with-dot-line", "Ends with a dot line")+"\r\n"+
				"text\r\n.\r\n")),
		newMessage("bare-lf", "bare LF line endings in the body and a header (served as CRLF)",
			[]byte(header("bare-lf", "Bare LF", "X-Bare-LF: yes\nX-After: 1")+"\r\n"+
				"crlf line\r\nlf line\nanother lf line\n.dot after lf\n\nblank line was lf\r\nend\r\n")),
		newMessage("bare-cr", "bare CRs inside body lines (served unchanged, not as a line end)",
			[]byte(header("bare-cr", "Bare CR")+"\r\n"+
				"arrow ->\r<- here\r\n.\rdot after a CR\r\nends in CR\r\r\nend\r\n")),
		newMessage("8bit-utf8", "raw UTF-8 in headers and body (no MIME encoded-words)",
			[]byte(header("8bit-utf8", "Grüße aus Köln – 日本語のメール ✓",
				"Content-Type: text/plain; charset=utf-8",
				"Content-Transfer-Encoding: 8bit",
				"X-Name: Zoë Ünal <zoe@example.org>")+"\r\n"+
				"Prüfung: äöü ß € 漢字 🙂\r\n")),
		newMessage("8bit-latin1", "raw ISO-8859-1 bytes in headers and body (invalid UTF-8)",
			[]byte(header("8bit-latin1", "Caf\xe9 cr\xe8me \xe0 la fran\xe7aise",
				"Content-Type: text/plain; charset=iso-8859-1",
				"Content-Transfer-Encoding: 8bit")+"\r\n"+
				"Gr\xfc\xdfe, \xa9 2026, \xbd price\r\n")),
		newMessage("long-line", "one body line of 102400 octets (over the 998 of RFC 5322, over poplib's 2048)",
			[]byte(header("long-line", "A 100 KB line")+"\r\n"+
				"before\r\n"+longLine(100*1024)+"\r\nafter\r\n")),
		newMessage("empty-body", "header block and the blank line, no body",
			[]byte(header("empty-body", "Empty body")+"\r\n")),
		newMessage("no-final-crlf", "the last line has no CRLF (served without; POP3 adds one)",
			[]byte(header("no-final-crlf", "No final CRLF")+"\r\n"+
				"first line\r\nlast line without CRLF")),
		newMessage("dot-no-final-crlf", "the last line is a lone \".\" without CRLF",
			[]byte(header("dot-no-final-crlf", "Dot without final CRLF")+"\r\n"+
				"text\r\n.")),
		newMessage("nul-bytes", "NUL bytes in the body (served as 0x80)",
			[]byte(header("nul-bytes", "NUL bytes")+"\r\n"+
				"before\x00after\r\n\x00\r\n\x00\x00\x00\r\nend\r\n")),
	}
}

// Ordinary returns n plain, well-formed messages with distinct contents.
func Ordinary(n int) []Message {
	msgs := make([]Message, n)
	for i := range msgs {
		name := fmt.Sprintf("ordinary-%d", i+1)
		var body strings.Builder
		fmt.Fprintf(&body, "Hello,\r\n\r\nthis is ordinary message number %d.\r\n", i+1)
		for j := 0; j < 8; j++ {
			fmt.Fprintf(&body, "Line %d of message %d: the quick brown fox jumps over the lazy dog.\r\n", j+1, i+1)
		}
		body.WriteString("\r\n-- \r\nSender\r\n")
		msgs[i] = newMessage(name, "an ordinary message",
			[]byte(header(name, fmt.Sprintf("Ordinary message %d", i+1),
				"Content-Type: text/plain; charset=us-ascii")+"\r\n"+body.String()))
	}
	return msgs
}

// Small returns a few ordinary messages followed by the tricky ones: the
// mailbox most end-to-end tests use.
func Small() []Message {
	return append(Ordinary(2), Tricky()...)
}

// longLine returns n octets of printable ASCII without spaces or dots.
func longLine(n int) string {
	const pattern = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	var b strings.Builder
	b.Grow(n)
	for b.Len() < n {
		b.WriteString(pattern)
	}
	return b.String()[:n]
}
