// Package testmail is a corpus of test messages for the gateway: ordinary
// mail and the cases that break POP3 implementations (lines that are exactly
// ".", leading dots, bare LF, 8-bit headers, a 100 KB line, an empty body, no
// final CRLF, NUL bytes, a 5 MB base64 attachment).
//
// Every message has the bytes that are delivered to the mail store (Raw,
// with CRLF line endings except where the case is about line endings) and
// the bytes an IMAP server serves back as BODY[] (Served). For Dovecot, whose
// IMAP behaviour the end-to-end tests check, Served is Raw with these
// normalisations (see DovecotServes):
//
//   - a bare LF becomes CRLF (Dovecot keeps Maildir files as delivered and
//     converts line endings when it serves them);
//   - a NUL byte becomes 0x80 (IMAP forbids NUL in a literal).
//
// A message without a final CRLF is served without one; RFC822.SIZE is
// len(Served). A POP3 server must end such a message with CRLF before the
// terminating "." line, so what a POP3 client receives is POP3Octets(Served).
package testmail
