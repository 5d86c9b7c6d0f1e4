// Package pop3front is the POP3 side of the gateway: the protocol and
// nothing else. It speaks RFC 1939 (POP3) with the RFC 2449 extensions
// (CAPA, PIPELINING, RESP-CODES, EXPIRE, IMPLEMENTATION), RFC 3206
// response codes and RFC 5034 SASL (PLAIN, LOGIN) to clients, and serves
// every session from a Backend (backend.go). It knows nothing of how a
// mail store is reached and must never import one.
//
// The obligations it keeps on the wire, from docs/design.md:
//
//   - exactly one reply per command; with PIPELINING, output is flushed
//     only when no further complete command is buffered, and nothing
//     after QUIT is executed;
//   - a multi-line body is CRLF-normalised and dot-stuffed (dotwriter.go);
//     its terminator is written only after the Maildrop stream returned
//     io.EOF, in the same write as the last body octets; on any failure
//     mid-body the connection is closed without a terminator
//     (invariant 4);
//   - Maildrop.Commit is called only for QUIT in the TRANSACTION state;
//     every other end (EOF, timeout, error, shutdown, panic) only calls
//     Maildrop.Close (invariant 1);
//   - command lines, SASL lines, bad commands, and every read and write
//     are bounded (limits.go, lines.go; invariant 9);
//   - no password or SASL payload is ever logged or echoed, and every
//     reply line is built from fixed text, numbers and sanitised
//     strings, at most 512 octets (invariant 7, RFC 2449 section 4);
//   - passwords only over TLS or where the cleartext policy allows
//     (plaintext.go); STLS (RFC 2595, stls.go) and implicit TLS (RFC
//     8314, tls.go) start over with fresh buffers, so nothing sent in the
//     clear is read after the handshake (invariant 6);
//   - failed logins look alike and are slowed per client address
//     (penalty.go); connections are capped in total, per address and per
//     user (connlimits.go).
//
// The client address is whatever the net.Conn's RemoteAddr says: behind
// a PROXY protocol listener, the address the proxy carried.
//
// Fuzzing: FuzzSession (whole sessions) and FuzzSASLDecode (the SASL
// decoder) run their seed corpora under go test; to fuzz, e.g.
//
//	go test -run '^$' -fuzz '^FuzzSession$' -fuzztime 10m ./pop3front
//
// and commit any failing input the fuzzer saves under testdata/fuzz.
package pop3front
