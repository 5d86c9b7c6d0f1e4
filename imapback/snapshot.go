package imapback

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/popbridge/popbridge/pop3front"
)

// snapshot lists the mailbox in one round trip:
//
//	UID FETCH 1:* (UID RFC822.SIZE FLAGS)
//
// (RFC 3501 section 6.4.8; a UID range is valid on an empty mailbox where
// a sequence range is not, but an empty mailbox is not asked at all). The
// response is streamed into a compact slice rather than collected: go-imap
// allocates about 1 KB per collected message. Messages are ordered by UID,
// so message 1 is the oldest, and hidden when already marked deleted:
//
//   - \Deleted, under every policy: the message is on its way out (marked by
//     the flag policy, by an interrupted expunge/trash commit, or by
//     another client) and must not be downloaded again;
//   - Policy.Keyword, under the keyword policy.
func (m *maildrop) snapshot(exists uint32) error {
	m.msgs = nil
	var f *snapFilter
	if exists > 0 {
		// Most responses are parsed by the filter, off go-imap's decoder
		// (snapfilter.go); go-imap's loop below gets whatever it declines.
		f = newSnapFilter(m.hiddenRaw, int(min(exists, 1<<20)))
		m.conn.setFilter(f)
		cmd := m.c.Fetch(imap.UIDSet{imap.UIDRange{Start: 1, Stop: 0}}, &imap.FetchOptions{
			UID:        true,
			RFC822Size: true,
			Flags:      true,
		})
		m.msgs = nil
		var bad error
		for msg := cmd.Next(); msg != nil; msg = cmd.Next() {
			e, hidden, err := m.snapshotItem(msg)
			if err != nil {
				bad = err
				continue
			}
			if !hidden {
				m.msgs = append(m.msgs, e)
			}
		}
		err := cmd.Close()
		// go-imap has read the tagged response, so the filter has
		// parsed every response before it and touches its entries no
		// more; from now on it only passes bytes through.
		f.over.Store(true)
		if err != nil {
			return err
		}
		if bad != nil {
			return bad
		}
		m.msgs = append(f.entries, m.msgs...)
	}
	slices.SortFunc(m.msgs, func(a, b entry) int { return cmp.Compare(a.uid, b.uid) })
	m.msgs = slices.CompactFunc(m.msgs, func(a, b entry) bool { return a.uid == b.uid })
	m.msgs = slices.Clip(m.msgs)

	// Every UIDL is a 16-octet slice of one string: one allocation, not
	// one per message.
	buf := make([]byte, 0, uidlLen*len(m.msgs))
	for _, e := range m.msgs {
		buf = appendUIDL(buf, e.uid, m.uidValidity)
	}
	all := string(buf)
	m.infos = make([]pop3front.MessageInfo, len(m.msgs))
	for i, e := range m.msgs {
		m.infos[i] = pop3front.MessageInfo{Size: e.size, UIDL: all[i*uidlLen : (i+1)*uidlLen]}
	}
	return nil
}

// snapshotItem reads one FETCH response; item order is not assumed.
func (m *maildrop) snapshotItem(msg *imapclient.FetchMessageData) (e entry, hidden bool, err error) {
	sizeSeen := false
	for item := msg.Next(); item != nil; item = msg.Next() {
		switch it := item.(type) {
		case imapclient.FetchItemDataUID:
			e.uid = it.UID
		case imapclient.FetchItemDataRFC822Size:
			e.size, sizeSeen = it.Size, true
		case imapclient.FetchItemDataFlags:
			hidden = m.hidden(it.Flags)
		}
	}
	if e.uid == 0 || !sizeSeen || e.size < 0 {
		return e, false, fmt.Errorf("FETCH response for message %d lacks UID or RFC822.SIZE", msg.SeqNum)
	}
	return e, hidden, nil
}

// hidden reports whether flags mark a message as already deleted by POP3.
// Flag names are case-insensitive (RFC 3501 section 2.3.2).
func (m *maildrop) hidden(flags []imap.Flag) bool {
	for _, f := range flags {
		if strings.EqualFold(string(f), string(imap.FlagDeleted)) {
			return true
		}
		if m.policy.Delete == DeleteKeyword && strings.EqualFold(string(f), m.policy.Keyword) {
			return true
		}
	}
	return false
}

// uidl is the unique-id listing: UID then UIDVALIDITY, eight lowercase hex
// digits each, byte-identical to Dovecot's default pop3_uidl_format
// %08Xu%08Xv, so users moved from Dovecot's POP3 re-download nothing.
func uidl(uid imap.UID, uidValidity uint32) string {
	return string(appendUIDL(nil, uid, uidValidity))
}

const uidlLen = 16

func appendUIDL(b []byte, uid imap.UID, uidValidity uint32) []byte {
	const hex = "0123456789abcdef"
	for _, v := range [2]uint32{uint32(uid), uidValidity} {
		for sh := 28; sh >= 0; sh -= 4 {
			b = append(b, hex[v>>uint(sh)&0xf])
		}
	}
	return b
}
