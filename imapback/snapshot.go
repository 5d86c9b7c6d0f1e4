package imapback

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
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
//   - Policy.Keyword, under the keyword policy;
//   - Policy.RetrievedKeyword, under HideRetrieved.
//
// A view (views.go) first picks the UIDs with UID SEARCH and only those
// are fetched. The content UIDL scheme adds
// BODY.PEEK[HEADER.FIELDS (MESSAGE-ID DATE FROM)] to the FETCH; emailid
// and x-gm-msgid fetch their identities with a second command (uidl.go).
func (m *maildrop) snapshot(exists uint32) error {
	m.msgs = nil
	var f *snapFilter
	set := imap.UIDSet{imap.UIDRange{Start: 1, Stop: 0}}
	var keep map[imap.UID]bool
	if exists > 0 && m.policy.viewActive() {
		// views.go: UID SEARCH picks the UIDs, only those are fetched.
		var err error
		if set, keep, err = m.viewSet(); err != nil {
			return err
		}
		exists = min(exists, uint32(m.chosen)) // 0: nothing to fetch; else a capacity hint
	}
	var ids map[imap.UID]string // uidl.go: identities of the other UIDL schemes
	if m.uidlScheme == UIDLContent {
		m.contentIDs = make(map[imap.UID]string)
	}
	if exists > 0 {
		// Most responses are parsed by the filter, off go-imap's decoder
		// (snapfilter.go); go-imap's loop below gets whatever it declines.
		f = newSnapFilter(m.hiddenRaw, int(min(exists, 1<<20)))
		m.conn.setFilter(f)
		opts := &imap.FetchOptions{
			UID:        true,
			RFC822Size: true,
			Flags:      true,
		}
		if m.uidlScheme == UIDLContent {
			// The filter declines these responses (they carry a
			// literal): go-imap's path reads them.
			opts.BodySection = []*imap.FetchItemBodySection{{
				Specifier: imap.PartSpecifierHeader, HeaderFields: contentFields, Peek: true,
			}}
		}
		cmd := m.c.Fetch(set, opts)
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
	if keep != nil {
		m.msgs = slices.DeleteFunc(m.msgs, func(e entry) bool { return !keep[e.uid] })
	}
	m.msgs = slices.Clip(m.msgs)

	switch m.uidlScheme {
	case UIDLContent:
		ids, m.contentIDs = m.contentIDs, nil
	case UIDLEmailID, UIDLGmail:
		if len(m.msgs) > 0 {
			var want imap.UIDSet
			for _, e := range m.msgs {
				want.AddNum(e.uid)
			}
			var err error
			if ids, err = m.fetchObjectIDs(want); err != nil {
				return err
			}
		}
	}
	return m.buildInfos(ids)
}

// snapshotItem reads one FETCH response; item order is not assumed.
func (m *maildrop) snapshotItem(msg *imapclient.FetchMessageData) (e entry, hidden bool, err error) {
	sizeSeen := false
	var header []byte
	headerSeen := false
	for item := msg.Next(); item != nil; item = msg.Next() {
		switch it := item.(type) {
		case imapclient.FetchItemDataUID:
			e.uid = it.UID
		case imapclient.FetchItemDataRFC822Size:
			e.size, sizeSeen = it.Size, true
		case imapclient.FetchItemDataFlags:
			hidden = m.hidden(it.Flags)
		case imapclient.FetchItemDataBodySection:
			// The content scheme's header fields (uidl.go).
			var rerr error
			header, rerr = readHeader(it.Literal)
			headerSeen = true
			if rerr != nil && err == nil {
				err = fmt.Errorf("FETCH response for message %d: header fields: %w", msg.SeqNum, rerr)
			}
		}
	}
	if err != nil {
		return e, false, err
	}
	if e.uid == 0 || !sizeSeen || e.size < 0 {
		return e, false, fmt.Errorf("FETCH response for message %d lacks UID or RFC822.SIZE", msg.SeqNum)
	}
	if m.contentIDs != nil {
		if !headerSeen {
			return e, false, fmt.Errorf("FETCH response for message %d lacks the header fields", msg.SeqNum)
		}
		m.contentIDs[e.uid] = contentID(header, e.size)
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
		if m.policy.HideRetrieved && strings.EqualFold(string(f), m.policy.RetrievedKeyword) {
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
