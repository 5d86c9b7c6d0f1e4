package imapback

import (
	"bytes"
	"strings"
	"sync/atomic"

	"github.com/emersion/go-imap/v2"
)

// snapFilter reads the snapshot's FETCH responses off the wire before
// go-imap sees them.
//
// go-imap's decoder costs about 2.5 µs and 600 allocated octets per
// FETCH response (a 32-slot channel per message, one goroutine hand-off
// per item): 250 ms and 60 MB for 100,000 messages, more than the server
// takes to send them. The snapshot's responses have one fixed, literal-free
// shape, `* n FETCH (UID u RFC822.SIZE s FLAGS (...))` in any item order,
// so while the snapshot command is in flight watchConn hands its input to
// this filter, which parses each such line into the compact snapshot and
// passes everything else (other untagged responses, any FETCH line it does
// not fully understand, literals, the tagged completion) to go-imap
// unchanged. What go-imap still gets reaches snapshot's ordinary loop, so
// a line the filter declines costs speed, never correctness. After the
// first tagged line, or on a line longer than maxFilterLine, the filter
// only passes bytes through, and removes itself once drained.
type snapFilter struct {
	hidden func(flags []byte) bool
	// raw, when set, takes every line instead of parse: a command
	// written by hand (uidl.go), whose tagged completion go-imap must
	// never see.
	raw *rawExchange

	entries []entry

	rbuf    []byte
	partial []byte // an incomplete line carried to the next read
	out     []byte // bytes for go-imap, not yet returned
	off     int    // out[:off] already returned
	lit     int64  // literal octets still to pass through raw
	through bool   // pass everything through from now on
	// sync: the first line may be the rest of one go-imap's reader had
	// begun reading before the filter was installed: it passes unread.
	sync bool
	cont bool  // the next line is the rest of one that had a literal
	err  error // a read error to return once out is drained

	// over is set by snapshot once its command completed: from then on
	// the filter only passes bytes through (it may not have seen the
	// tagged line: go-imap's reader can read a small response whole in a
	// Read begun before the filter was installed).
	over atomic.Bool
}

const maxFilterLine = 16 << 10

func newSnapFilter(hidden func([]byte) bool, capHint int) *snapFilter {
	return &snapFilter{hidden: hidden, rbuf: make([]byte, 32<<10), entries: make([]entry, 0, capHint), sync: true}
}

// process consumes data (complete lines and what follows) and returns the
// incomplete tail.
func (f *snapFilter) process(data []byte) []byte {
	if f.over.Load() {
		f.through = true
	}
	for len(data) > 0 {
		if f.through {
			f.lit = 0
			f.out = append(f.out, data...)
			return nil
		}
		if f.lit > 0 {
			k := int(min(f.lit, int64(len(data))))
			f.out = append(f.out, data[:k]...)
			data, f.lit = data[k:], f.lit-int64(k)
			continue
		}
		i := bytes.IndexByte(data, '\n')
		if i < 0 {
			if len(data) > maxFilterLine {
				f.through = true
				continue
			}
			return data
		}
		line := data[:i+1]
		data = data[i+1:]
		cont := f.sync || f.cont // the rest of a line, not a line
		f.sync, f.cont = false, false
		if !cont && f.parse(line) {
			continue
		}
		f.out = append(f.out, line...)
		if n, ok := literalSuffix(line); ok {
			f.lit, f.cont = n, true
		} else if !cont && line[0] != '*' && line[0] != '+' && f.raw == nil {
			f.through = true // the tagged completion: our part is over
		}
	}
	return nil
}

// literalSuffix reports a line that announces a literal: "{n}" or "{n+}".
func literalSuffix(line []byte) (int64, bool) {
	l := bytes.TrimRight(line, "\r\n")
	if len(l) < 3 || l[len(l)-1] != '}' {
		return 0, false
	}
	i := bytes.LastIndexByte(l, '{')
	if i < 0 {
		return 0, false
	}
	num := bytes.TrimSuffix(l[i+1:len(l)-1], []byte("+"))
	v, ok := parseUint(num)
	return int64(v), ok
}

func parseUint(b []byte) (uint64, bool) {
	if len(b) == 0 || len(b) > 19 {
		return 0, false
	}
	var v uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + uint64(c-'0')
	}
	return v, true
}

// parse consumes one snapshot FETCH line: `* n FETCH (` items `)` CRLF,
// items among UID, RFC822.SIZE and FLAGS only, each at most once.
func (f *snapFilter) parse(line []byte) bool {
	if f.raw != nil {
		return f.raw.line(f, line)
	}
	l, ok := fetchLine(line)
	if !ok {
		return false
	}
	var e entry
	var seenUID, seenSize, seenFlags, hidden bool
	for len(l) > 0 {
		var name, val []byte
		if name, val, l, ok = cutItem(l); !ok {
			return false
		}
		switch {
		case asciiFold(name, "UID") && !seenUID:
			v, ok := parseUint(val)
			if !ok || v == 0 || v > 0xffffffff {
				return false
			}
			e.uid, seenUID = imap.UID(v), true
		case asciiFold(name, "RFC822.SIZE") && !seenSize:
			v, ok := parseUint(val)
			if !ok || v > 1<<62 {
				return false
			}
			e.size, seenSize = int64(v), true
		case asciiFold(name, "FLAGS") && !seenFlags:
			if !validFlagList(val) {
				return false
			}
			seenFlags, hidden = true, f.hidden(val)
		default:
			return false
		}
	}
	if !seenUID || !seenSize {
		return false // go-imap's path reports it
	}
	if !hidden {
		f.entries = append(f.entries, e)
	}
	return true
}

// fetchLine returns the items of a `* n FETCH (` items `)` CRLF line.
func fetchLine(line []byte) ([]byte, bool) {
	l, ok := bytes.CutSuffix(line, []byte("\r\n"))
	if !ok {
		return nil, false
	}
	l, ok = bytes.CutPrefix(l, []byte("* "))
	if !ok {
		return nil, false
	}
	sp := bytes.IndexByte(l, ' ')
	if sp < 1 {
		return nil, false
	}
	if _, ok := parseUint(l[:sp]); !ok {
		return nil, false
	}
	l = l[sp+1:]
	if len(l) < 8 || !strings.EqualFold(string(l[:7]), "FETCH (") || l[len(l)-1] != ')' {
		return nil, false
	}
	return l[7 : len(l)-1], true
}

// cutItem cuts the first `name value` pair off items: value is an atom
// or a parenthesised list (its contents, without the parentheses).
func cutItem(l []byte) (name, val, rest []byte, ok bool) {
	sp := bytes.IndexByte(l, ' ')
	if sp < 0 {
		return nil, nil, nil, false
	}
	name, after := l[:sp], l[sp+1:]
	switch {
	case len(after) > 0 && after[0] == '(':
		end := bytes.IndexByte(after, ')')
		if end < 0 {
			return nil, nil, nil, false
		}
		val, l = after[1:end], after[end+1:]
	default:
		end := bytes.IndexByte(after, ' ')
		if end < 0 {
			end = len(after)
		}
		val, l = after[:end], after[end:]
	}
	if len(l) > 0 {
		if l[0] != ' ' {
			return nil, nil, nil, false
		}
		l = l[1:]
	}
	return name, val, l, true
}

// validFlagList accepts a FLAGS value made of atoms and \-flags only.
func validFlagList(val []byte) bool {
	for _, c := range val {
		switch c {
		case '(', ')', '"', '{', 0:
			return false
		}
	}
	return true
}

func asciiFold(b []byte, s string) bool {
	return len(b) == len(s) && strings.EqualFold(string(b), s)
}

// hiddenRaw is maildrop.hidden for a raw FLAGS list (space-separated).
func (m *maildrop) hiddenRaw(val []byte) bool {
	for _, f := range bytes.Fields(val) {
		if asciiFold(f, string(imap.FlagDeleted)) {
			return true
		}
		if m.policy.Delete == DeleteKeyword && asciiFold(f, m.policy.Keyword) {
			return true
		}
		if m.policy.HideRetrieved && asciiFold(f, m.policy.RetrievedKeyword) {
			return true
		}
	}
	return false
}

// readFiltered is watchConn.Read while a filter is installed.
func (c *watchConn) readFiltered(f *snapFilter, p []byte) (int, error) {
	for {
		if f.off < len(f.out) {
			n := copy(p, f.out[f.off:])
			f.off += n
			if f.off == len(f.out) {
				f.out, f.off = f.out[:0], 0
			}
			return n, nil
		}
		if f.err != nil {
			return 0, f.err
		}
		if f.over.Load() {
			f.through = true
		}
		if f.through && len(f.partial) == 0 {
			c.mu.Lock()
			if c.filter == f { // not a filter installed since (uidl.go)
				c.filter = nil
			}
			c.mu.Unlock()
			return c.readConn(p)
		}
		if f.through && len(f.partial) > 0 {
			f.out = append(f.out, f.partial...)
			f.partial = f.partial[:0]
			continue
		}
		n, err := c.readConn(f.rbuf)
		data := f.rbuf[:n]
		if len(f.partial) > 0 {
			f.partial = append(f.partial, data...)
			data = f.partial
		}
		rest := f.process(data)
		if len(f.partial) > 0 && len(rest) > 0 && &rest[0] == &f.partial[len(f.partial)-len(rest)] {
			f.partial = f.partial[:copy(f.partial, rest)]
		} else {
			f.partial = append(f.partial[:0], rest...)
		}
		if err != nil {
			// Hand go-imap what came before the error, then the error.
			f.out = append(f.out, f.partial...)
			f.partial = f.partial[:0]
			f.err = err
		}
	}
}
