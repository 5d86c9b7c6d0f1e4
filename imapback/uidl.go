package imapback

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/emersion/go-imap/v2"

	"github.com/popbridge/popbridge/pop3front"
)

// UIDL schemes.
//
// The default UIDL, UID and UIDVALIDITY (Dovecot's), changes for every
// message when the mailbox's UIDVALIDITY changes (a server migration, a
// rebuilt index, a mailbox recreated): every POP3 client then downloads
// the whole mailbox again. The other schemes survive that:
//
//   - emailid: the message's EMAILID (RFC 8474 OBJECTID), which the server
//     keeps across moves and UIDVALIDITY changes (Cyrus);
//   - x-gm-msgid: Gmail's X-GM-MSGID (X-GM-EXT-1), in decimal;
//   - content: a hash of the Message-ID, Date and From header fields and
//     RFC822.SIZE: the same message keeps its UIDL on any server.
//
// Two messages of one listing with the same identity (the same message
// delivered twice; EMAILID is shared by identical copies) are told apart
// like Dovecot's pop3_uidl_duplicates = rename: the second, in UID order,
// gets "-2" appended, the third "-3", and so on; UID order is kept by a
// migration, so the renaming is stable. An identity that is not 1-63
// printable characters is replaced by a hash of it, so every UIDL is 1-70
// characters in 0x21-0x7E (RFC 1939 section 7).

// UIDLScheme selects how UIDLs are made.
type UIDLScheme string

const (
	UIDLDovecot UIDLScheme = "dovecot"    // %08x%08x of UID and UIDVALIDITY (default)
	UIDLEmailID UIDLScheme = "emailid"    // RFC 8474 EMAILID; needs OBJECTID
	UIDLGmail   UIDLScheme = "x-gm-msgid" // X-GM-MSGID; needs X-GM-EXT-1
	UIDLContent UIDLScheme = "content"    // hash of Message-ID, Date, From and size
)

// contentFields are the header fields the content scheme hashes.
var contentFields = []string{"MESSAGE-ID", "DATE", "FROM"}

// maxContentHeader bounds the header fields read per message.
const maxContentHeader = 8 << 10

// checkUIDL settles the session's UIDL scheme against the capabilities.
// A scheme whose source the server lacks refuses the login with
// -ERR [SYS/PERM] (UIDLs silently changing would make every client
// download everything again), or, without Policy.UIDLRequired, falls back to
// dovecot with a warning.
func (m *maildrop) checkUIDL() error {
	m.uidlScheme = m.policy.UIDL
	var need imap.Cap
	switch m.policy.UIDL {
	case UIDLEmailID:
		need = "OBJECTID"
	case UIDLGmail:
		need = "X-GM-EXT-1"
	default:
		return nil
	}
	if m.caps.Has(need) {
		return nil
	}
	text := fmt.Sprintf("Server lacks %s; UIDL scheme %s unavailable", need, m.policy.UIDL)
	if !m.policy.UIDLRequired {
		m.log.Warn(text+"; using dovecot UIDLs instead", "uidl", m.policy.UIDL)
		m.uidlScheme = UIDLDovecot
		return nil
	}
	m.log.Error(text+"; refusing the session (set uidl_required = false to fall back to dovecot UIDLs)", "uidl", m.policy.UIDL)
	return permErr(text, errors.New(text))
}

// buildInfos makes the listing from m.msgs (sorted by UID) and ids (the
// identities of the non-default schemes, by UID).
func (m *maildrop) buildInfos(ids map[imap.UID]string) error {
	m.infos = make([]pop3front.MessageInfo, len(m.msgs))
	if m.uidlScheme == UIDLDovecot || m.uidlScheme == "" {
		// Every UIDL is a 16-octet slice of one string: one allocation,
		// not one per message.
		// A folder after the first gets "-" and its tag (folders.go).
		f := &m.folders[m.cur]
		n := uidlLen
		if f.tag != "" {
			n += 1 + len(f.tag)
		}
		buf := make([]byte, 0, n*len(m.msgs))
		for _, e := range m.msgs {
			buf = appendUIDL(buf, e.uid, f.uidValidity)
			if f.tag != "" {
				buf = append(buf, '-')
				buf = append(buf, f.tag...)
			}
		}
		all := string(buf)
		for i, e := range m.msgs {
			m.infos[i] = pop3front.MessageInfo{Size: e.size, UIDL: all[i*n : (i+1)*n]}
		}
		return nil
	}
	// UIDLs of earlier folders count as used (folders.go).
	if m.usedUIDLs == nil {
		m.usedUIDLs = make(map[string]bool, len(m.msgs))
	}
	used := m.usedUIDLs
	for i, e := range m.msgs {
		id, ok := ids[e.uid]
		if !ok {
			return fmt.Errorf("no %s for UID %d", m.uidlScheme, e.uid)
		}
		base := uidlBase(id)
		u := base
		for n := 2; used[u]; n++ {
			u = base + "-" + strconv.Itoa(n)
		}
		used[u] = true
		m.infos[i] = pop3front.MessageInfo{Size: e.size, UIDL: u}
	}
	return nil
}

// uidlBase makes an identity usable as a UIDL before duplicate renaming:
// 1-63 octets in 0x21-0x7E as it is, else a hash of it.
func uidlBase(id string) string {
	ok := len(id) >= 1 && len(id) <= 63
	for i := 0; ok && i < len(id); i++ {
		ok = id[i] >= 0x21 && id[i] <= 0x7e
	}
	if ok {
		return id
	}
	sum := sha256.Sum256([]byte(id))
	return "h" + hex.EncodeToString(sum[:16])
}

// contentID is the content scheme's identity of a message: 32 lowercase
// hex digits of SHA-256 over the unfolded, trimmed Message-ID, Date and
// From fields (the first of each; absent ones empty) and the size.
func contentID(header []byte, size int64) string {
	vals := headerValues(header, contentFields)
	h := sha256.New()
	for _, v := range vals {
		h.Write([]byte(v))
		h.Write([]byte{0})
	}
	h.Write([]byte(strconv.FormatInt(size, 10)))
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// headerValues returns the first value of each field in names (upper
// case), unfolded and with runs of white space made one space.
func headerValues(header []byte, names []string) []string {
	out := make([]string, len(names))
	found := make([]bool, len(names))
	cur := -1
	for _, line := range bytes.Split(header, []byte("\n")) {
		line = bytes.TrimRight(line, "\r")
		if len(line) == 0 {
			break
		}
		if line[0] == ' ' || line[0] == '\t' {
			if cur >= 0 {
				out[cur] += " " + string(line)
			}
			continue
		}
		cur = -1
		name, val, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			continue
		}
		n := strings.ToUpper(strings.TrimSpace(string(name)))
		for i, want := range names {
			if n == want && !found[i] {
				found[i], cur, out[i] = true, i, string(val)
			}
		}
	}
	for i := range out {
		out[i] = strings.Join(strings.Fields(out[i]), " ")
	}
	return out
}

// readHeader reads a fetched header-fields literal, bounded.
func readHeader(r io.Reader) ([]byte, error) {
	if r == nil {
		return nil, nil
	}
	b, err := io.ReadAll(io.LimitReader(r, maxContentHeader))
	if err != nil {
		return nil, err
	}
	_, err = io.Copy(io.Discard, r)
	return b, err
}

// Object identities (EMAILID, X-GM-MSGID) are fetch items go-imap v2 can
// neither ask for nor parse (it fails the connection on an unknown item).
// So they are fetched with a command written by hand,
//
//	P1 UID FETCH <set> (UID EMAILID)
//
// whose responses the snapshot filter (snapfilter.go) takes off the wire
// before go-imap sees them, tagged completion included. A NOOP through
// go-imap comes first: its reader may be blocked in a Read begun before
// the filter was installed (or in the snapshot filter's last one, which
// must not remove this filter: readFiltered checks), and must not get
// these responses. The maildrop's lock keeps go-imap from sending
// anything meanwhile.

var rawSeq atomic.Uint64

// rawExchange is one hand-written command in flight.
type rawExchange struct {
	tag  string
	item string // "EMAILID" or "X-GM-MSGID"
	ids  map[imap.UID]string
	err  error
	done chan struct{}
}

// fetchObjectIDs fetches the scheme's identity of every UID in set.
// Callers run it inside m.do.
func (m *maildrop) fetchObjectIDs(set imap.UIDSet) (map[imap.UID]string, error) {
	item := "EMAILID"
	if m.uidlScheme == UIDLGmail {
		item = "X-GM-MSGID"
	}
	x := &rawExchange{
		tag:  "P" + strconv.FormatUint(rawSeq.Add(1), 10),
		item: item,
		ids:  make(map[imap.UID]string, len(m.msgs)),
		done: make(chan struct{}),
	}
	f := newSnapFilter(func([]byte) bool { return false }, 0)
	f.sync = false // installed while go-imap is idle: reads start at line boundaries
	f.raw = x
	m.conn.setFilter(f)
	if err := m.c.Noop().Wait(); err != nil {
		f.over.Store(true)
		return nil, fmt.Errorf("NOOP: %w", err)
	}
	cmd := fmt.Sprintf("%s UID FETCH %s (UID %s)\r\n", x.tag, set.String(), item)
	m.conn.Conn.SetWriteDeadline(time.Now().Add(m.b.cfg.CommandTimeout))
	_, err := m.conn.Write([]byte(cmd))
	m.conn.Conn.SetWriteDeadline(time.Time{})
	if err != nil {
		m.kill()
		return nil, fmt.Errorf("UID FETCH %s: %w", item, err)
	}
	select {
	case <-x.done:
	case <-m.c.Closed():
		return nil, fmt.Errorf("UID FETCH %s: connection closed", item)
	}
	if x.err != nil {
		return nil, fmt.Errorf("UID FETCH %s: %w", item, x.err)
	}
	return x.ids, nil
}

// line takes one response line (CRLF included) of the exchange off the
// wire; it runs on go-imap's reader goroutine. It returns false for lines
// go-imap should get (other untagged responses, other commands' tagged
// ones, FETCH responses without the item: unilateral flag changes).
func (x *rawExchange) line(f *snapFilter, line []byte) bool {
	l := bytes.TrimRight(line, "\r\n")
	if tag, rest, ok := bytes.Cut(l, []byte(" ")); ok && string(tag) == x.tag {
		if !hasPrefixFold(string(rest), "OK") {
			x.err = fmt.Errorf("server answered %.100q", rest)
		}
		f.through = true
		close(x.done)
		return true
	}
	if _, ok := literalSuffix(line); ok {
		if bytes.Contains(bytes.ToUpper(l), []byte(x.item)) {
			x.err = fmt.Errorf("%s response with a literal", x.item)
		}
		return false
	}
	items, ok := fetchItems(l)
	if !ok {
		return false
	}
	val, has := items[x.item]
	if !has {
		return false
	}
	uid, err := strconv.ParseUint(items["UID"], 10, 32)
	if err != nil || uid == 0 {
		x.err = fmt.Errorf("%s response without a valid UID: %.100q", x.item, l)
		return true
	}
	if x.item == "EMAILID" {
		v, ok := strings.CutPrefix(val, "(")
		v, ok2 := strings.CutSuffix(v, ")")
		if !ok || !ok2 || v == "" {
			x.err = fmt.Errorf("bad EMAILID: %.100q", l)
			return true
		}
		val = v
	} else if _, err := strconv.ParseUint(val, 10, 64); err != nil {
		x.err = fmt.Errorf("bad X-GM-MSGID: %.100q", l)
		return true
	}
	x.ids[imap.UID(uid)] = val
	return true
}

// fetchItems splits `* n FETCH (NAME value NAME (list) ...)` into upper
// case names and raw values; parenthesised values keep their parentheses
// and may not nest.
func fetchItems(l []byte) (map[string]string, bool) {
	s, ok := strings.CutPrefix(string(l), "* ")
	if !ok {
		return nil, false
	}
	num, rest, ok := strings.Cut(s, " ")
	if _, err := strconv.ParseUint(num, 10, 32); !ok || err != nil || !hasPrefixFold(rest, "FETCH (") || !strings.HasSuffix(rest, ")") {
		return nil, false
	}
	rest = rest[len("FETCH (") : len(rest)-1]
	items := map[string]string{}
	for rest != "" {
		name, r, ok := strings.Cut(rest, " ")
		if !ok {
			return nil, false
		}
		var val string
		if strings.HasPrefix(r, "(") {
			end := strings.IndexByte(r, ')')
			if end < 0 || strings.IndexByte(r[1:end], '(') >= 0 {
				return nil, false
			}
			val, r = r[:end+1], r[end+1:]
		} else {
			end := strings.IndexByte(r, ' ')
			if end < 0 {
				end = len(r)
			}
			val, r = r[:end], r[end:]
		}
		items[strings.ToUpper(name)] = val
		rest = strings.TrimPrefix(r, " ")
	}
	return items, true
}
