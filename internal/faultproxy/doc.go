// Package faultproxy is a loopback TCP relay for fault tests: it sits
// between the gateway and its IMAP upstream and, per connection, cuts,
// resets, stalls or throttles the stream at a chosen byte.
//
// A Plan describes what happens to one relayed connection. A fault fires
// in one direction (Up: client to upstream, Down: upstream to client)
// after a given number of bytes, counted either from the start of the
// connection or from the start of the first occurrence of a byte pattern
// (Match), so a test can say "cut the upstream's reply 10 bytes into the
// literal that follows `BODY[] {`" without knowing how long the greeting
// was. Exactly After bytes are forwarded before the fault acts:
//
//   - Cut closes both sides (FIN): the reader sees a clean EOF.
//   - Reset closes both sides with SO_LINGER 0 (RST): the reader sees
//     "connection reset by peer".
//   - Stall stops forwarding that direction; the connection stays open
//     (until Release, CutAll, ResetAll or Close), so a client whose
//     reads have no deadline hangs.
//
// Throttle limits each direction to a number of bytes per second.
//
// Every connection counts the bytes forwarded each way; WaitBytes blocks
// until a count is reached. Refuse makes new connections fail at once
// (RST after accept), to play an upstream that is down.
//
// The proxy only listens on loopback.
package faultproxy
