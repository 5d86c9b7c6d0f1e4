// Package fakeimap is a scriptable fake IMAP server for tests, in the
// style of Dovecot's test-imapc-client: each accepted connection plays a
// script of steps, such as "expect a line matching this", "send this
// line", "send a literal shorter than it declares", "hang", "close".
//
// It exists for the replies real servers rarely give: NO, BAD or BYE at
// any step, hung greetings and logins, untagged EXPUNGE or FETCH in the
// middle of a fetch, truncated literals, a UIDVALIDITY that changes
// between EXAMINE and SELECT, servers without UIDPLUS or MOVE.
//
// Connection k (0 for the first) plays script k; a connection beyond the
// scripts fails the test. A line that does not match the Expect step
// waiting for it fails the test and closes the connection: a script is
// also a list of what the client may send, so a client that sends
// UID STORE where the script expects LOGOUT is caught. When a script ends
// the server closes the connection. Everything received is recorded.
//
// Tags are taken from the client: Expect stores the first word of the
// line it matched, and SendTagged and "$tag" in Send use it.
//
//	srv := fakeimap.Start(t, fakeimap.S(
//		fakeimap.Prelude("IMAP4rev1 UIDPLUS", 7, fakeimap.Msg{UID: 1, Body: body}),
//		fakeimap.Expect(`UID FETCH 1 .*`),
//		fakeimap.ShortLiteral(`* 1 FETCH (UID 1 RFC822.SIZE 40 BODY[] `, 40, body[:10]),
//		fakeimap.ExpectEOF(),
//	))
package fakeimap
