// Package oracle reads and compares the upstream state of a mailbox, the
// ground truth of "nothing lost" tests: UID, flags, RFC822.SIZE and the
// SHA-256 of BODY[] of every message, read over a second IMAP connection
// (EXAMINE and BODY.PEEK: reading changes nothing).
//
// The message record is dovecottest.MsgState, so states taken with
// dovecottest's Snapshot (Dovecot tests) and with Take (any IMAP server,
// including memupstream, and outside tests, as in the soak) compare
// alike. Diff lists what changed; Check asserts that what changed stays
// within what POP3 sessions deleted and retrieved, under a delete policy.
package oracle
