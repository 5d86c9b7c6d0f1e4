package imapback

import (
	"bytes"
	"fmt"
	"net"
	"strconv"
	"sync"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

// Upstream quirks that go-imap v2 cannot take as they come, and the
// anomaly counter.
//
// GNU Mailutils imap4d sends `* n EXPUNGED` where RFC 3501 has
// `* n EXPUNGE`; go-imap v2 fails the whole connection on a response type
// it does not know ("unsupported response type"). quirkConn sits between
// the connection and go-imap's reader and rewrites exactly that line, at
// the start of a response line, outside literals: literal sizes ({n} at
// the end of a line, the only form go-imap's client accepts) are tracked
// so message bytes are never looked at, let alone changed. The gateway
// needs nothing from the notice itself (the snapshot is the maildrop; a
// message found gone is answered as expunged when it is fetched).

// Anomaly kinds, passed to Observer.Anomaly once per message the
// upstream did not serve as snapshotted:
//
//   - "expunged": a RETR or TOP found the message gone (NIL body, NO,
//     no data, or a different message), so it was answered
//     `-ERR Message n expunged.`; counted once per message and session;
//   - "size_mismatch": the upstream offered bytes of another size than
//     the snapshot's RFC822.SIZE under the message's UID (Courier's
//     substitute "message unavailable", UW's bytes of another message).
//     They were never delivered; the message also counts as "expunged".
const (
	AnomalyExpunged     = "expunged"
	AnomalySizeMismatch = "size_mismatch"
)

// anomaly reports kind to the Observer, if any.
func (b *Backend) anomaly(kind string) {
	if o := b.cfg.Observer; o != nil {
		o.Anomaly(kind)
	}
}

// quirkConn filters what go-imap reads; everything else is the wrapped
// connection's (deadlines, writes, Close).
//
// It reads straight into the caller's buffer and filters through a pooled
// scratch buffer, so an idle session holds no buffer of its own (its
// reader goroutine spends its idle time blocked in Read); only the few
// octets the filter may add back (a held line start) wait in out.
type quirkConn struct {
	net.Conn

	mu  sync.Mutex // go-imap reads from one goroutine; the lock is cheap insurance
	f   lineFilter
	out []byte // filtered, not yet returned (at most a held line start)
	err error  // the wrapped Read's error, returned once out is drained
}

func newQuirkConn(c net.Conn) *quirkConn { return &quirkConn{Conn: c} }

var quirkScratch = sync.Pool{New: func() any { b := make([]byte, 0, 36<<10); return &b }}

func (c *quirkConn) Read(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for len(c.out) == 0 {
		if c.err != nil {
			return 0, c.err
		}
		if len(p) == 0 {
			return 0, nil
		}
		n, err := c.Conn.Read(p)
		if n > 0 && err == nil && int64(n) <= c.f.lit {
			// All of it inside a literal (a message body, mostly): the
			// filter would copy it through unchanged, so skip the copies.
			c.f.lit -= int64(n)
			return n, nil
		}
		sp := quirkScratch.Get().(*[]byte)
		out := c.f.write((*sp)[:0], p[:n])
		if err != nil {
			c.err = err
			out = c.f.flush(out) // a held line start goes out as it came
		}
		k := copy(p, out)
		c.out = append(c.out[:0], out[k:]...)
		*sp = out[:0]
		quirkScratch.Put(sp)
		if k > 0 {
			return k, nil
		}
	}
	n := copy(p, c.out)
	c.out = c.out[n:]
	return n, nil
}

// lineFilter rewrites `* <n> EXPUNGED` CRLF (or LF), at the start of a
// response line outside a literal, to `* <n> EXPUNGE` CRLF. Only the
// start of a line is held back, and only while it can still be that line
// (at most maxHeld octets); everything else passes at once.
type lineFilter struct {
	mid     bool   // inside a line (false: at the start of a response line)
	lit     int64  // literal octets still to pass untouched
	held    []byte // start of the current line, held while it may match
	holding bool   // held is in use for the current line
	tail    []byte // last octets of the current line, to spot "{n}" CRLF
}

const (
	maxHeld = len("* 4294967295 EXPUNGED\r\n")
	maxTail = 32 // "{" + 19 digits + "}" + " \r" fits
)

var expungedWord = []byte("EXPUNGED")

func (f *lineFilter) write(out, in []byte) []byte {
	for len(in) > 0 {
		if f.lit > 0 {
			n := int64(len(in))
			if n > f.lit {
				n = f.lit
			}
			out = append(out, in[:n]...)
			in = in[n:]
			f.lit -= n
			continue
		}
		c := in[0]
		in = in[1:]
		if !f.mid && !f.holding {
			f.holding = true
			f.held = f.held[:0]
		}
		if f.holding {
			f.held = append(f.held, c)
			switch heldState(f.held) {
			case heldMaybe:
				continue
			case heldMatch:
				// "* n EXPUNGED" CR? LF: drop the final "D".
				i := bytes.LastIndexByte(f.held, ' ')
				out = append(out, f.held[:i+1+len("EXPUNGE")]...)
				out = append(out, f.held[i+1+len(expungedWord):]...)
				f.holding, f.mid = false, false
				f.tail = f.tail[:0]
				continue
			}
			// No match: the held octets are an ordinary line start.
			f.holding, f.mid = false, true
			out = append(out, f.held[:len(f.held)-1]...)
			f.tail = append(f.tail[:0], f.held[:len(f.held)-1]...)
		}
		out = append(out, c)
		f.mid = true
		if len(f.tail) == maxTail {
			copy(f.tail, f.tail[1:])
			f.tail = f.tail[:maxTail-1]
		}
		f.tail = append(f.tail, c)
		if c == '\n' {
			n, ok := literalAt(f.tail)
			f.lit = n
			f.mid = ok // after a literal (even {0}) the line goes on
			f.tail = f.tail[:0]
		}
	}
	return out
}

// flush releases a held line start unchanged (the connection ended).
func (f *lineFilter) flush(out []byte) []byte {
	if f.holding {
		out = append(out, f.held...)
		f.holding = false
	}
	return out
}

type heldResult int

const (
	heldNo heldResult = iota
	heldMaybe
	heldMatch
)

// heldState matches a line start against `* <digits> EXPUNGED` [CR] LF
// (the word case-insensitively, as response types are).
func heldState(b []byte) heldResult {
	if len(b) > maxHeld {
		return heldNo
	}
	const pre = "* "
	i := 0
	for ; i < len(pre); i++ {
		if i == len(b) {
			return heldMaybe
		}
		if b[i] != pre[i] {
			return heldNo
		}
	}
	d := i
	for i < len(b) && b[i] >= '0' && b[i] <= '9' {
		i++
	}
	if i == len(b) {
		return heldMaybe
	}
	if i == d || b[i] != ' ' {
		return heldNo
	}
	i++
	for _, w := range expungedWord {
		if i == len(b) {
			return heldMaybe
		}
		if b[i]|0x20 != w|0x20 {
			return heldNo
		}
		i++
	}
	if i == len(b) {
		return heldMaybe
	}
	if b[i] == '\r' {
		i++
		if i == len(b) {
			return heldMaybe
		}
	}
	if b[i] == '\n' && i == len(b)-1 {
		return heldMatch
	}
	return heldNo
}

// literalAt returns the size of the literal announced at the end of a
// line (tail ends with LF), if there is one. go-imap's client reads a literal as
// "{" digits "}" [SP] [CR] LF; a line ending so outside a string position
// (a resp-text ending in "{5}") only makes the filter skip, never change,
// what follows.
func literalAt(tail []byte) (int64, bool) {
	t := tail[:len(tail)-1] // the LF
	t = bytes.TrimSuffix(t, []byte("\r"))
	t = bytes.TrimSuffix(t, []byte(" "))
	if len(t) < 3 || t[len(t)-1] != '}' {
		return 0, false
	}
	open := bytes.LastIndexByte(t, '{')
	if open < 0 {
		return 0, false
	}
	digits := t[open+1 : len(t)-1]
	if len(digits) == 0 {
		return 0, false
	}
	for _, c := range digits {
		if c < '0' || c > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseInt(string(digits), 10, 64)
	if err != nil {
		return 0, false
	}
	return n, true
}

// existing narrows the QUIT update's UID sets to UIDs the mailbox holds
// now, listed with `UID FETCH 1:* (UID)` right after the read-write
// SELECT (none when it is empty). It runs for servers without UIDPLUS,
// because GNU Mailutils imap4d 3.15 (no UIDPLUS) resolves UIDs wrongly:
// a UID above its last one names its last message (`UID STORE 99
// +FLAGS (\Deleted)` marks the newest message), a UID set naming an
// expunged UID in between is refused with BAD, and `UID SEARCH UID` takes
// the set as sequence numbers, so it cannot be used to check. A message
// another client expunged during the session is thus simply left out, as
// on every other server. Ranges are rebuilt from the UIDs that exist, so
// none spans a gap.
func (m *maildrop) existing(exists uint32, sets ...imap.UIDSet) (deleted, retrieved imap.UIDSet, err error) {
	have := make(map[imap.UID]bool, exists)
	if exists > 0 {
		cmd := m.c.Fetch(imap.UIDSet{imap.UIDRange{Start: 1, Stop: 0}}, &imap.FetchOptions{UID: true})
		for msg := cmd.Next(); msg != nil; msg = cmd.Next() {
			for item := msg.Next(); item != nil; item = msg.Next() {
				if it, ok := item.(imapclient.FetchItemDataUID); ok {
					have[it.UID] = true
				}
			}
		}
		if err := cmd.Close(); err != nil {
			return nil, nil, fmt.Errorf("UID FETCH 1:* (UID): %w", err)
		}
	}
	out := make([]imap.UIDSet, len(sets))
	for i, set := range sets {
		var kept imap.UIDSet
		dropped := 0
		for _, r := range set {
			if r.Stop < r.Start {
				continue // "n:*": never built by maildrop.uids
			}
			for u := r.Start; ; u++ {
				if have[u] {
					kept.AddNum(u)
				} else {
					dropped++
				}
				if u == r.Stop {
					break
				}
			}
		}
		if dropped > 0 {
			m.log.Info("messages gone before QUIT left out of the update", "count", dropped)
		}
		out[i] = kept
	}
	return out[0], out[1], nil
}
